"""Imaging studies, their analysis report (JSON) and the per-vertebra findings copied from it.

The report is a :class:`~spinewatch.imaging.report.SpineReport` (or its JSON dict, read through the
contract's one reader, :meth:`SpineReport.from_json_dict`). It is stored whole on the study, and
each vertebra becomes a :class:`VertebraFinding` row so the clinic can query "all high-risk
vertebrae not yet decided" -- with the comparison's signal to treat before collapse
(``treat_signal`` and its reasons) and the confidence class (``confidence`` and its reasons) of each
vertebra (report keys that reports written before them lack: stored as null and empty lists). A
re-analysis replaces the findings atomically; the team's decision about a level (and its note) is
carried over to the new finding of the same level, because a new measurement does not undo a
clinical decision."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from spinewatch.imaging.limits import current_limits
from spinewatch.imaging.report import ReportFormatError, SpineReport
from spinewatch.registry import models as m
from spinewatch.registry.choices import Decision, Modality
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import (
    changed,
    check_date,
    created,
    deleted,
    get,
)
from spinewatch.registry.services.surveillance import advance_plan

__all__ = [
    "add_imaging_study",
    "findings_from_report",
    "read_report",
    "set_finding_decision",
    "store_analysis",
]


def read_report(report: SpineReport | Mapping[str, Any]) -> SpineReport:
    """``report`` itself, or a report dict read through the contract
    (:meth:`SpineReport.from_json_dict`), within the storage limits.

    Raises RegistryError naming the key path and the value (``report: vertebrae[2].lytic_fraction:
    expected a finite number in [0, 1] or null, got 1.7``; ``field`` holds the path).
    """
    try:
        if not isinstance(report, SpineReport):
            report = SpineReport.from_json_dict(report, source="report")
        data = report.to_json_dict()
        size = len(json.dumps(data, allow_nan=False))
    except ReportFormatError as exc:
        raise RegistryError(str(exc), field=exc.field) from None
    limits = current_limits()
    if size > limits.max_report_bytes:
        raise RegistryError(
            f"report: {size} bytes of JSON; the limit is {limits.max_report_bytes} "
            "(SPINEWATCH_MAX_REPORT_BYTES)"
        )
    return report


def findings_from_report(report: SpineReport) -> list[dict[str, Any]]:
    """One dict of :class:`VertebraFinding` fields per vertebra of ``report``."""
    rows: list[dict[str, Any]] = []
    for v in report.vertebrae:
        sins = v.risk.sins_imaging
        rows.append(
            {
                "level": str(v.level),
                "body_centroid_mm": None
                if v.body_centroid_mm is None
                else list(v.body_centroid_mm),
                "height_anterior_mm": v.heights.anterior_mm,
                "height_middle_mm": v.heights.middle_mm,
                "height_posterior_mm": v.heights.posterior_mm,
                "reference_height_mm": v.heights.reference_mm,
                "genant_grade": None if v.genant.grade is None else int(v.genant.grade),
                "deformity": None if v.genant.deformity is None else v.genant.deformity.value,
                "height_loss_pct": v.genant.height_loss_pct,
                "truncated": v.truncated,
                "trabecular_hu_median": v.density.median_hu,
                "lytic_volume_ml": v.lesions.volume_ml,
                "lytic_fraction": v.lesions.fraction,
                "posterior_wall_involved": v.lesions.posterior_wall_involved,
                "pedicle_left_involved": v.lesions.pedicle_left_involved,
                "pedicle_right_involved": v.lesions.pedicle_right_involved,
                "diffuse_infiltration": v.infiltration.infiltrated,
                "diffuse_infiltration_hu_below_own": v.infiltration.hu_below_own,
                "collapse_risk": None if v.collapse_risk is None else v.collapse_risk.value,
                "reasons": list(v.risk.reasons),
                "sins_imaging_points": None if sins is None else sins.points,
                "treat_signal": v.change.treat_signal,
                "treat_signal_reasons": list(v.change.reasons),
                "confidence": None
                if v.confidence.confidence is None
                else v.confidence.confidence.value,
                "confidence_reasons": list(v.confidence.reasons),
            }
        )
    return rows


def _analysed_at(report: SpineReport) -> dt.datetime:
    raw = report.scan.analysed_at
    if raw is None:
        return timezone.now()
    try:
        when = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise RegistryError(
            f"report scan.analysed_at {raw!r}: expected an ISO date-time",
            field="scan.analysed_at",
        ) from None
    if timezone.is_naive(when):
        when = timezone.make_aware(when, dt.UTC)
    return when


def _report_modality(report: SpineReport) -> str | None:
    """The registry modality (``ct``/``mr``) the report's ``scan.modality`` records, if any."""
    modality = report.scan.modality
    return None if modality is None else modality.value.lower()


def _check_series(study: m.ImagingStudy, report: SpineReport) -> None:
    uid = report.scan.series_uid
    if uid and study.series_instance_uid and uid != study.series_instance_uid:
        raise RegistryError(
            f"report scan.series_uid {uid!r}: the study's series is {study.series_instance_uid!r}",
            field="scan.series_uid",
        )


def _write_findings(
    study: m.ImagingStudy,
    rows: list[dict[str, Any]],
    keep: Mapping[str, tuple[str, str, int | None]],
) -> None:
    for values in rows:
        decision, note, treated_by = keep.get(values["level"], (Decision.NONE.value, "", None))
        created(
            m.VertebraFinding(
                study=study,
                decision=decision,
                decision_note=note,
                treated_by_id=treated_by,
                **values,
            )
        )


def _text(field: str, value: object, max_length: int) -> str:
    if not isinstance(value, str) or len(value.strip()) > max_length:
        raise RegistryError(f"{field} {value!r}: expected text of at most {max_length} characters")
    return value.strip()


def add_imaging_study(
    *,
    patient: m.Patient | int,
    study_date: dt.date,
    modality: str | None = None,
    study_instance_uid: str = "",
    series_instance_uid: str = "",
    description: str = "",
    report: SpineReport | Mapping[str, Any] | None = None,
) -> m.ImagingStudy:
    """Register a CT/MR study, optionally with its analysis report (-> one finding per vertebra).

    ``modality`` (``ct``/``mr``) defaults to the one the report records, else ``ct``; given
    explicitly, it must agree with the report. ``report``: a :class:`SpineReport` or its JSON
    dict (read through the contract).
    """
    check_date("study_date", study_date, not_future=True)
    report = None if report is None else read_report(report)
    recorded = _report_modality(report) if report is not None else None
    if modality is None:
        modality = recorded or Modality.CT.value
    if modality not in Modality.values:
        raise RegistryError(f"modality {modality!r}: expected one of {', '.join(Modality.values)}")
    if recorded is not None and recorded != modality:
        raise RegistryError(
            f"report scan.modality {recorded.upper()!r}: the study is registered as "
            f"{modality.upper()!r}"
        )
    rows = findings_from_report(report) if report is not None else None
    with transaction.atomic():
        row = get(m.Patient, patient, "patient")
        study = m.ImagingStudy(
            patient=row,
            study_date=study_date,
            modality=modality,
            study_instance_uid=_text("study_instance_uid", study_instance_uid, 64),
            series_instance_uid=_text("series_instance_uid", series_instance_uid, 64),
            description=_text("description", description, 200),
        )
        if report is not None:
            _check_series(study, report)
            study.report, study.analysed_at = report.to_json_dict(), _analysed_at(report)
        created(study)
        if rows is not None:
            _write_findings(study, rows, {})
        advance_plan(row)
        return study


def store_analysis(
    *,
    study: m.ImagingStudy | int,
    expected_version: int,
    report: SpineReport | Mapping[str, Any],
    renamed: Mapping[str, str] | None = None,
) -> m.ImagingStudy:
    """Store a (re-)analysis: the report replaces the old one and its findings, all or nothing.

    Decisions (and notes) made on the previous findings are kept for the levels still present.
    The study's modality follows the report's ``scan.modality`` (what the analysis read from the
    file) when the report records it. ``renamed`` (old level -> new level, after a level check
    shifted the labels) makes a decision follow its vertebra to the vertebra's new name.
    """
    report = read_report(report)
    rows = findings_from_report(report)
    modality = _report_modality(report)
    with transaction.atomic():
        row = get(m.ImagingStudy, study, "imaging study")
        what = f"imaging study {row.pk} of patient {row.patient.study_id}"
        _check_series(row, report)
        changes: dict[str, Any] = {
            "report": report.to_json_dict(),
            "analysed_at": _analysed_at(report),
        }
        if modality is not None:
            changes["modality"] = modality
        row = changed(
            row,
            what=what,
            changes=changes,
            expected_version=expected_version,
        )
        keep = {}
        for old in row.findings.all():
            level = (renamed or {}).get(old.level, old.level)
            keep[level] = (old.decision, old.decision_note, old.treated_by_id)
            deleted(old)
        _write_findings(row, rows, keep)
        advance_plan(row.patient)
        return row


def set_finding_decision(
    *,
    finding: m.VertebraFinding | int,
    expected_version: int,
    decision: str,
    note: str = "",
) -> m.VertebraFinding:
    """Record the team's decision about one vertebra: none / watch / treat / treated."""
    if decision not in Decision.values:
        raise RegistryError(f"decision {decision!r}: expected one of {', '.join(Decision.values)}")
    if not isinstance(note, str):
        raise RegistryError(f"note {note!r}: expected text", field="note")
    with transaction.atomic():
        row = get(m.VertebraFinding, finding, "finding")
        changes: dict[str, Any] = {"decision": decision, "decision_note": note.strip()}
        if decision != Decision.TREATED.value:
            changes["treated_by"] = None
        saved = changed(
            row,
            what=f"finding {row.level} of imaging study {row.study_id}",
            changes=changes,
            expected_version=expected_version,
        )
        advance_plan(saved.study.patient)
        return saved
