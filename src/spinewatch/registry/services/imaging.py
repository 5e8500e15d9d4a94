"""Imaging studies, their analysis report (JSON) and the per-vertebra findings copied from it.

The report is the ``SpineReport.to_json_dict()`` contract of :mod:`spinewatch.imaging.report`
(``{"scan": {...}, "vertebrae": [{"level": "L1", "height_anterior_mm": ..., ...}, ...]}``).
It is stored whole on the study, and each vertebra becomes a :class:`VertebraFinding` row so the
clinic can query "all high-risk vertebrae not yet decided" -- with the comparison's signal to
treat before collapse (``treat_signal`` and its reasons) and the confidence class (``confidence``
and its reasons) of each vertebra (report keys that reports written before them lack: stored
as null and empty lists). A re-analysis replaces the findings
atomically; the team's decision about a level (and its note) is carried over to the new finding
of the same level, because a new measurement does not undo a clinical decision.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from spinewatch.core.genant import DeformityType, GenantGrade
from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.limits import JsonInputError, check_json_value, current_limits
from spinewatch.registry import models as m
from spinewatch.registry.choices import CollapseRisk, Confidence, Decision, Modality
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import (
    changed,
    check_date,
    created,
    deleted,
    get,
    parse_field,
)
from spinewatch.registry.services.surveillance import advance_plan

__all__ = [
    "add_imaging_study",
    "findings_from_report",
    "set_finding_decision",
    "store_analysis",
]


class _Field:
    """Validators for one vertebra entry of the report; ``where`` names it (``vertebrae[2].x``)."""

    def __init__(self, entry: Mapping[str, Any], where: str) -> None:
        self.entry = entry
        self.where = where

    def _fail(self, key: str, expected: str) -> RegistryError:
        return RegistryError(
            f"report {self.where}.{key} {self.entry.get(key)!r}: expected {expected}"
        )

    def number(
        self, key: str, *, low: float | None = None, high: float | None = None
    ) -> float | None:
        value = self.entry.get(key)
        if value is None:
            return None
        ok = (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
        if ok and low is not None and value < low:
            ok = False
        if ok and high is not None and value > high:
            ok = False
        if not ok:
            bounds = (
                f" in [{low}, {high}]"
                if low is not None and high is not None
                else (f" >= {low}" if low is not None else "")
            )
            raise self._fail(key, f"a finite number{bounds} or null")
        return float(value)

    def flag(self, key: str, *, default: bool | None = None) -> bool | None:
        value = self.entry.get(key, default)
        if value is not None and not isinstance(value, bool):
            raise self._fail(key, "true, false or null")
        return value

    def texts(self, key: str) -> list[str]:
        """A list of strings (absent: empty)."""
        value = self.entry.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings")
        return list(value)

    def choice(self, key: str, values: list[str]) -> str | None:
        """One of ``values`` or null."""
        value = self.entry.get(key)
        if value is not None and value not in values:
            raise self._fail(key, f"one of {', '.join(values)} or null")
        return value

    def centroid(self, key: str) -> list[float] | None:
        value = self.entry.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 3
            or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in value
            )
        ):
            raise self._fail(key, "[x, y, z] in world mm or null")
        return [float(v) for v in value]


def findings_from_report(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Validate a report and return one dict of :class:`VertebraFinding` fields per vertebra.

    Raises RegistryError naming the entry and key (``report vertebrae[2].lytic_fraction 1.7:
    expected a finite number in [0, 1] or null``).
    """
    if not isinstance(report, Mapping):
        raise RegistryError(f"report {type(report).__name__}: expected a JSON object (dict)")
    limits = current_limits()
    try:  # depth first: json.dumps of a 10^5-deep document would exhaust the stack
        check_json_value(report, source="report", max_depth=limits.max_json_depth)
        size = len(json.dumps(report, allow_nan=False))
    except JsonInputError as exc:
        raise RegistryError(str(exc)) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise RegistryError(f"report: not storable as JSON ({exc})") from exc
    if size > limits.max_report_bytes:
        raise RegistryError(
            f"report: {size} bytes of JSON; the limit is {limits.max_report_bytes} "
            "(SPINEWATCH_MAX_REPORT_BYTES)"
        )
    vertebrae = report.get("vertebrae")
    if not isinstance(vertebrae, list):
        raise RegistryError(f"report vertebrae {vertebrae!r}: expected a list of vertebrae")
    rows: list[dict[str, Any]] = []
    seen: dict[VertebralLevel, int] = {}
    for i, entry in enumerate(vertebrae):
        where = f"vertebrae[{i}]"
        if not isinstance(entry, Mapping):
            raise RegistryError(f"report {where} {entry!r}: expected an object")
        level = parse_field(f"report {where}.level", VertebralLevel.parse, entry.get("level"))
        if level in seen:
            raise RegistryError(
                f"report {where}.level {level}: already given in vertebrae[{seen[level]}]"
            )
        seen[level] = i
        f = _Field(entry, where)
        grade = entry.get("genant_grade")
        deformity = entry.get("deformity")
        risk = f.choice("collapse_risk", list(CollapseRisk.values))
        reasons = f.texts("reasons")
        sins = entry.get("sins_imaging")
        sins_points = None
        if sins is not None:
            if not isinstance(sins, Mapping):
                raise f._fail("sins_imaging", "an object or null")
            points = _Field(sins, f"{where}.sins_imaging").number("points", low=0, high=18)
            if points is not None and points != int(points):
                raise _Field(sins, f"{where}.sins_imaging")._fail("points", "an integer")
            sins_points = None if points is None else int(points)
        rows.append(
            {
                "level": str(level),
                "body_centroid_mm": f.centroid("body_centroid_mm"),
                "height_anterior_mm": f.number("height_anterior_mm", low=0),
                "height_middle_mm": f.number("height_middle_mm", low=0),
                "height_posterior_mm": f.number("height_posterior_mm", low=0),
                "reference_height_mm": f.number("reference_height_mm", low=0),
                "genant_grade": None
                if grade is None
                else int(parse_field(f"report {where}.genant_grade", GenantGrade.parse, grade)),
                "deformity": None
                if deformity is None
                else parse_field(f"report {where}.deformity", DeformityType.parse, deformity).value,
                "height_loss_pct": f.number("height_loss_pct"),
                "truncated": bool(f.flag("truncated", default=False)),
                "trabecular_hu_median": f.number("trabecular_hu_median"),
                "lytic_volume_ml": f.number("lytic_volume_ml", low=0),
                "lytic_fraction": f.number("lytic_fraction", low=0, high=1),
                "posterior_wall_involved": f.flag("posterior_wall_involved"),
                "pedicle_left_involved": f.flag("pedicle_left_involved"),
                "pedicle_right_involved": f.flag("pedicle_right_involved"),
                "diffuse_infiltration": f.flag("diffuse_infiltration"),
                "diffuse_infiltration_hu_below_own": f.number("diffuse_infiltration_hu_below_own"),
                "collapse_risk": risk,
                "reasons": reasons,
                "sins_imaging_points": sins_points,
                "treat_signal": f.flag("treat_signal"),
                "treat_signal_reasons": f.texts("treat_signal_reasons"),
                "confidence": f.choice("confidence", list(Confidence.values)),
                "confidence_reasons": f.texts("confidence_reasons"),
            }
        )
    return rows


def _analysed_at(report: Mapping[str, Any]) -> dt.datetime:
    scan = report.get("scan")
    raw = scan.get("analysed_at") if isinstance(scan, Mapping) else None
    if raw is None:
        return timezone.now()
    try:
        when = dt.datetime.fromisoformat(str(raw))
    except ValueError:
        raise RegistryError(f"report scan.analysed_at {raw!r}: expected an ISO date-time") from None
    if timezone.is_naive(when):
        when = timezone.make_aware(when, dt.UTC)
    return when


def _report_modality(report: Mapping[str, Any]) -> str | None:
    """The registry modality (``ct``/``mr``) the report's ``scan.modality`` records, if any."""
    scan = report.get("scan")
    raw = scan.get("modality") if isinstance(scan, Mapping) else None
    if raw is None:
        return None  # a version 1 report: the modality was not recorded
    value = str(raw).strip().lower()
    if value not in Modality.values:
        raise RegistryError(
            f"report scan.modality {raw!r}: expected one of "
            f"{', '.join(v.upper() for v in Modality.values)}"
        )
    return value


def _check_series(study: m.ImagingStudy, report: Mapping[str, Any]) -> None:
    scan = report.get("scan")
    uid = scan.get("series_uid") if isinstance(scan, Mapping) else None
    if uid and study.series_instance_uid and uid != study.series_instance_uid:
        raise RegistryError(
            f"report scan.series_uid {uid!r}: the study's series is {study.series_instance_uid!r}"
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
    report: Mapping[str, Any] | None = None,
) -> m.ImagingStudy:
    """Register a CT/MR study, optionally with its analysis report (-> one finding per vertebra).

    ``modality`` (``ct``/``mr``) defaults to the one the report records, else ``ct``; given
    explicitly, it must agree with the report.
    """
    check_date("study_date", study_date, not_future=True)
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
            study.report, study.analysed_at = dict(report), _analysed_at(report)
        created(study)
        if rows is not None:
            _write_findings(study, rows, {})
        advance_plan(row)
        return study


def store_analysis(
    *,
    study: m.ImagingStudy | int,
    expected_version: int,
    report: Mapping[str, Any],
    renamed: Mapping[str, str] | None = None,
) -> m.ImagingStudy:
    """Store a (re-)analysis: the report replaces the old one and its findings, all or nothing.

    Decisions (and notes) made on the previous findings are kept for the levels still present.
    The study's modality follows the report's ``scan.modality`` (what the analysis read from the
    file) when the report records it. ``renamed`` (old level -> new level, after a level check
    shifted the labels) makes a decision follow its vertebra to the vertebra's new name.
    """
    rows = findings_from_report(report)
    modality = _report_modality(report)
    with transaction.atomic():
        row = get(m.ImagingStudy, study, "imaging study")
        what = f"imaging study {row.pk} of patient {row.patient.study_id}"
        _check_series(row, report)
        changes: dict[str, Any] = {"report": dict(report), "analysed_at": _analysed_at(report)}
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
        raise RegistryError(f"note {note!r}: expected text")
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
