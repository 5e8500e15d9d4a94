"""The analysis as a DICOM SR Measurement Report (TID 1500, highdicom Comprehensive 3D SR).

One measurement group (TID 1501 "Measurements and Qualitative Evaluations") per vertebra of the
report, in cranio-caudal order:

- tracking identifier ``SpineWatch <level>`` with a fresh UID; finding type "Vertebra";
  finding site the level's SNOMED CT code (:func:`~.codes.level_code`);
- measurements (TID 300): body heights (DCM Height, mm) with topographical modifier anterior /
  central / posterior; height loss (%); median trabecular attenuation (DCM Attenuation
  Coefficient, derivation Median, HU); lytic lesion volume (ml);
- qualitative evaluations: Genant grade and deformity type, collapse risk (SNOMED CT low /
  moderate / high risk; "not assessable" as Indeterminate).

The document's evidence is the CT series (every image header given), so the SR lands in the
CT's study and its CurrentRequestedProcedureEvidenceSequence references the series. The report
is a :class:`~spinewatch.imaging.report.SpineReport` (its reader checked every value); null
values are left out, and a value with no code here (a risk added later) is skipped with a
warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import highdicom as hd
from pydicom import Dataset
from pydicom.sr.codedict import codes

from spinewatch import __version__
from spinewatch.core.errors import InputError
from spinewatch.imaging.dicom_export import codes as sw
from spinewatch.imaging.dicom_export.seg import MANUFACTURER
from spinewatch.imaging.report import SpineReport, VertebraReport

__all__ = ["ReportContentError", "build_measurement_report"]

log = logging.getLogger(__name__)

DEVICE_UID = "2.25.233887615040563820996955147792045029537"
"""Fixed UID of the SpineWatch device observer: a UUID-derived "2.25" UID (ISO/IEC 9834-8),
drawn once, so every SR names the same device."""


class ReportContentError(InputError):
    """A report that cannot become an SR (no vertebra, not the JSON contract)."""


def _measurements(v: VertebraReport, site: hd.sr.FindingSite) -> list[hd.sr.Measurement]:
    out: list[hd.sr.Measurement] = []
    anatomic = site.value  # the level's code (the anatomic location of the group's site)
    for where, value in (
        ("anterior", v.heights.anterior_mm),
        ("middle", v.heights.middle_mm),
        ("posterior", v.heights.posterior_mm),
    ):
        if value is not None:
            out.append(
                hd.sr.Measurement(
                    name=sw.HEIGHT,
                    value=value,
                    unit=sw.UNIT_MM,
                    finding_sites=[
                        hd.sr.FindingSite(
                            anatomic_location=anatomic,
                            topographical_modifier=sw.HEIGHT_SITES[where],
                        )
                    ],
                )
            )
    loss = v.genant.height_loss_pct
    if loss is not None:
        out.append(hd.sr.Measurement(name=sw.HEIGHT_LOSS, value=loss, unit=sw.UNIT_PERCENT))
    hu = v.density.median_hu
    if hu is not None:
        out.append(
            hd.sr.Measurement(name=sw.ATTENUATION, value=hu, unit=sw.UNIT_HU, derivation=sw.MEDIAN)
        )
    lytic = v.lesions.volume_ml
    if lytic is not None:
        out.append(hd.sr.Measurement(name=sw.LYTIC_VOLUME, value=lytic, unit=sw.UNIT_ML))
    return out


def _evaluations(v: VertebraReport) -> list[hd.sr.QualitativeEvaluation]:
    out: list[hd.sr.QualitativeEvaluation] = []
    grade = v.genant.grade
    if grade is not None and int(grade) in sw.GENANT_GRADE_VALUES:
        out.append(hd.sr.QualitativeEvaluation(sw.GENANT_GRADE, sw.GENANT_GRADE_VALUES[int(grade)]))
    deformity = v.genant.deformity
    if deformity is not None and deformity.value in sw.DEFORMITY_VALUES:
        out.append(
            hd.sr.QualitativeEvaluation(sw.GENANT_DEFORMITY, sw.DEFORMITY_VALUES[deformity.value])
        )
    risk = v.collapse_risk
    if risk is not None and risk.value in sw.COLLAPSE_RISK_VALUES:
        out.append(
            hd.sr.QualitativeEvaluation(sw.COLLAPSE_RISK, sw.COLLAPSE_RISK_VALUES[risk.value])
        )
    elif risk is not None:
        log.warning("%s: collapse risk %r has no code; left out of the SR", v.level, risk.value)
    return out


def _group(v: VertebraReport) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    site = hd.sr.FindingSite(anatomic_location=sw.level_code(v.level).code)
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=hd.UID(), identifier=f"SpineWatch {v.level}"
        ),
        finding_type=sw.VERTEBRA,
        finding_sites=[site],
        algorithm_id=hd.sr.AlgorithmIdentification(name="SpineWatch", version=__version__),
        measurements=_measurements(v, site) or None,
        qualitative_evaluations=_evaluations(v) or None,
    )


def _private_scheme() -> Dataset:
    item = Dataset()
    item.CodingSchemeDesignator = sw.PRIVATE_SCHEME
    item.CodingSchemeName = sw.PRIVATE_SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = "SpineWatch"
    return item


def build_measurement_report(
    report: SpineReport,
    datasets: Sequence[Dataset],
    *,
    series_uid: str,
    series_number: int = 9000,
    instance_number: int = 1,
    verified_by: str | None = None,
    verifying_organization: str = "SpineWatch level check",
) -> hd.sr.Comprehensive3DSR:
    """A TID 1500 Measurement Report of ``report`` about the CT images ``datasets`` (headers,
    one series). Raises :class:`ReportContentError` for a report without vertebrae.

    ``verified_by`` (a person's name, DICOM PN ``Family^Given``): the document is FINAL and
    VERIFIED by them (the radiologist who confirmed the levels); without it, PRELIMINARY and
    UNVERIFIED."""
    if not report.vertebrae:
        raise ReportContentError("report vertebrae: expected a non-empty list of vertebrae")
    if not datasets:
        raise ReportContentError("no CT image to refer to: the SR needs the CT series' headers")
    groups = [_group(v) for v in report.vertebrae]
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=DEVICE_UID,
            name="SpineWatch",
            manufacturer_name=MANUFACTURER,
            model_name=__version__,
        ),
    )
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=sw.CT_PROCEDURE,
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=list(datasets),
        content=content[0],
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=verified_by is not None,
        is_verified=verified_by is not None,
        verifying_observer_name=verified_by,
        verifying_organization=verifying_organization if verified_by is not None else None,
        series_description="SpineWatch vertebra measurements",
    )
    sr.CodingSchemeIdentificationSequence = [_private_scheme()]
    return sr
