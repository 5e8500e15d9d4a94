"""The registry as FHIR: a patient's Bundle (:func:`fhir_bundle`) and pain scores from a Bundle
(:func:`import_pain_bundle`).

The resources and codes are :mod:`spinewatch.outcomes.fhir`'s; this module reads the registry
into its plain data (identifiable, or de-identified by :mod:`spinewatch.registry.deid`'s rules:
study id, sex, day offsets from the index procedure, no names, numbers, dates or DICOM UIDs) and
writes imported pain scores through the follow-up service (audit trail, validation) in ONE
transaction: a Bundle is imported whole or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from spinewatch.core.levels import VertebralLevel
from spinewatch.outcomes.fhir import (
    FhirBundleError,
    FhirDiagnosis,
    FhirFinding,
    FhirImagingStudy,
    FhirPain,
    FhirPatient,
    FhirProcedure,
    combined_bundle,
    patient_bundle,
    read_pain_bundle,
)
from spinewatch.registry import models as m
from spinewatch.registry.choices import EnteredVia
from spinewatch.registry.deid import _identity, days_from, index_date
from spinewatch.registry.errors import NotFoundError, RegistryError

__all__ = [
    "FhirImportSummary",
    "all_patients_bundle",
    "fhir_bundle",
    "fhir_patient",
    "import_pain_bundle",
]


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def fhir_patient(patient: m.Patient, *, deidentified: bool) -> FhirPatient:
    """The patient's record as :class:`FhirPatient` (voided procedures and studies left out)."""
    index = index_date(patient)
    identity = _identity(patient)
    keep = not deidentified

    def rel(day: dt.date | None) -> int | None:
        return days_from(index, day) if deidentified else None

    procedures = []
    performed = (
        patient.procedures.filter(voided_at__isnull=True, status="performed")
        .order_by("performed_on", "pk")
        .prefetch_related("levels", "follow_ups")
    )
    for number, proc in enumerate(performed, start=1):
        treated = sorted(proc.levels.all(), key=lambda t: VertebralLevel.parse(t.level).rank)
        pains = tuple(
            FhirPain(
                timepoint=fu.timepoint,
                vas=float(fu.vas),
                date=_iso(fu.completed_on) if keep else None,
                days_after_procedure=(fu.completed_on - proc.performed_on).days
                if deidentified
                else None,
            )
            for fu in sorted(proc.follow_ups.all(), key=lambda f: (f.due_date, f.pk))
            if fu.voided_at is None and fu.vas is not None and fu.completed_on is not None
        )
        procedures.append(
            FhirProcedure(
                key=str(number),
                procedure_type=proc.procedure_type,
                levels=tuple(t.level for t in treated),
                performed=_iso(proc.performed_on) if keep else None,
                days_from_index=rel(proc.performed_on),
                pains=pains,
            )
        )
    studies = []
    for number, study in enumerate(
        patient.imaging_studies.filter(voided_at__isnull=True)
        .order_by("study_date", "pk")
        .prefetch_related("findings"),
        start=1,
    ):
        studies.append(
            FhirImagingStudy(
                key=str(number),
                modality=study.modality,
                started=_iso(study.study_date) if keep else None,
                days_from_index=rel(study.study_date),
                study_instance_uid=(study.study_instance_uid or None) if keep else None,
                series_instance_uid=(study.series_instance_uid or None) if keep else None,
                findings=tuple(
                    FhirFinding(
                        level=f.level,
                        genant_grade=f.genant_grade,
                        height_loss_pct=f.height_loss_pct,
                        trabecular_hu_median=f.trabecular_hu_median,
                        collapse_risk=f.collapse_risk,
                    )
                    for f in study.findings.all()
                ),
            )
        )
    return FhirPatient(
        study_id=patient.study_id,
        deidentified=deidentified,
        sex=identity.sex if identity else None,
        family_name=identity.family_name if identity and keep else None,
        given_name=identity.given_name if identity and keep else None,
        hospital_number=identity.hospital_number if identity and keep else None,
        birth_date=_iso(identity.birth_date) if identity and keep else None,
        diagnoses=tuple(
            FhirDiagnosis(
                kind=d.kind,
                primary_tumour=d.primary_tumour,
                onset=_iso(d.diagnosed_on) if keep else None,
                onset_days_from_index=rel(d.diagnosed_on),
            )
            for d in patient.diagnoses.order_by("diagnosed_on", "pk")
        ),
        procedures=tuple(procedures),
        imaging_studies=tuple(studies),
    )


def _find(study_id: str) -> m.Patient:
    patient = (
        m.Patient.objects.filter(study_id=study_id, voided_at__isnull=True)
        .select_related("identity")
        .first()
    )
    if patient is None:
        raise NotFoundError(f"patient {study_id!r} does not exist (or is voided)")
    return patient


def fhir_bundle(patient: m.Patient | str, *, deidentified: bool = False) -> dict[str, Any]:
    """The FHIR Bundle of one patient (a Patient row or its study id), validated."""
    row = _find(patient) if isinstance(patient, str) else patient
    return patient_bundle(fhir_patient(row, deidentified=deidentified))


def all_patients_bundle(*, deidentified: bool = False) -> dict[str, Any]:
    """One Bundle with every not voided patient's resources."""
    patients = m.Patient.objects.filter(voided_at__isnull=True).select_related("identity")
    return combined_bundle(
        patient_bundle(fhir_patient(p, deidentified=deidentified))
        for p in patients.order_by("study_id")
    )


@dataclass(frozen=True)
class FhirImportSummary:
    """What :func:`import_pain_bundle` wrote; ``warnings``: values outside their visit window."""

    patients: int
    pain_scores: int
    warnings: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"imported {self.pain_scores} pain scores of {self.patients} patients"


def import_pain_bundle(
    data: bytes | str | dict[str, Any],
    *,
    source: str = "Bundle",
    check: Callable[[m.Patient], None] | None = None,
) -> FhirImportSummary:
    """Record the Bundle's pain Observations on their patients' visits, all or nothing.

    Each Observation names its patient (study id), visit (time point) and date; the visit is
    that time point's visit of the patient's performed, not voided procedure whose due date is
    closest to the date. Unknown patients, visits that do not exist and values the follow-up
    service refuses raise :class:`FhirBundleError` naming the entry, and nothing is written.
    ``check(patient)`` (the API's per-patient permission) runs before a patient's first value;
    whatever it raises ends the import, nothing written.
    """
    from spinewatch.registry.services import record_follow_up

    observations = read_pain_bundle(data, source=source)
    warnings: list[str] = []
    done: dict[int, int] = {}  # visit pk -> entry index
    with transaction.atomic():
        for obs in observations:
            where = f"{source}, entry {obs.entry} (Observation)"
            patient = m.Patient.objects.filter(
                study_id=obs.study_id, voided_at__isnull=True
            ).first()
            if patient is None:
                raise FhirBundleError(
                    f"{where}, subject: study id {obs.study_id!r} is not in the registry; "
                    "expected an existing patient"
                )
            if check is not None:
                check(patient)
            try:
                when = dt.date.fromisoformat(obs.date)
            except ValueError:
                raise FhirBundleError(
                    f"{where}, effectiveDateTime: {obs.date!r}; expected a date YYYY-MM-DD"
                ) from None
            visits = list(
                m.FollowUp.objects.filter(
                    procedure__patient=patient,
                    procedure__voided_at__isnull=True,
                    procedure__status="performed",
                    timepoint=obs.timepoint,
                    voided_at__isnull=True,
                )
            )
            if not visits:
                raise FhirBundleError(
                    f"{where}: patient {obs.study_id!r} has no {obs.timepoint!r} visit; expected "
                    "a visit of one of the patient's procedures"
                )
            visit = min(visits, key=lambda v: (abs((v.due_date - when).days), v.pk))
            if visit.pk in done:
                raise FhirBundleError(
                    f"{where}: a second value for the {obs.timepoint!r} visit of patient "
                    f"{obs.study_id!r} (entry {done[visit.pk]} has one); expected one per visit"
                )
            done[visit.pk] = obs.entry
            try:
                result = record_follow_up(
                    follow_up=visit,
                    expected_version=visit.version,
                    completed_on=when,
                    vas=obs.vas,
                    entered_via=EnteredVia.IMPORT.value,
                )
            except RegistryError as exc:
                raise FhirBundleError(f"{where}: {exc}") from None
            warnings.extend(result.warnings)
    return FhirImportSummary(
        patients=len({o.study_id for o in observations}),
        pain_scores=len(observations),
        warnings=tuple(warnings),
    )
