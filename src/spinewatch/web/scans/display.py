"""What the scan pages show, computed from a study, its latest job and its report (no HTML).

Numbers are formatted here (units in the column headers: mm, HU, ml, %), so templates stay
simple and a missing value is always an em dash, never ``None``.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from spinewatch.registry.models import ImagingStudy
from spinewatch.web.scans.models import AnalysisJob, JobStatus

__all__ = [
    "AcquisitionLine",
    "ScanStatus",
    "acquisition_line",
    "compare_with_prior",
    "comparison_rows",
    "dated_report",
    "level_rows",
    "prior_study",
    "scan_status",
]

DASH = "\u2014"

_FLAG_LABELS = {
    "new_lesion": "New lesion",
    "lesion_growth": "Lesion growth",
    "new_fracture": "New fracture",
    "worse_fracture": "Worse fracture",
    "height_loss": "Height loss",
    "density_drop": "Density drop",
    "newly_treated": "Newly treated",
    "level_not_in_prior": "Not on prior scan",
    "level_not_in_current": "Not on this scan",
}


@dataclass(frozen=True)
class ScanStatus:
    """The state of a study's analysis as shown to people: key, words and badge colour."""

    key: str  # queued / running / done / failed / imported / none
    label: str
    badge: str  # a badge-* suffix of app.css
    active: bool


def scan_status(study: ImagingStudy, job: AnalysisJob | None) -> ScanStatus:
    """The status of ``study`` given its latest job (None: never uploaded through the web)."""
    if job is None:
        if study.report is not None:
            return ScanStatus("imported", "Analysed", "ok", False)
        return ScanStatus("none", "Not analysed", "neutral", False)
    if job.status == JobStatus.QUEUED:
        return ScanStatus("queued", "Queued", "info", True)
    if job.status == JobStatus.RUNNING:
        return ScanStatus("running", f"Analysing {job.progress_pct}%", "info", True)
    if job.status == JobStatus.DONE:
        return ScanStatus("done", "Analysed", "ok", False)
    return ScanStatus("failed", "Analysis failed", "high", False)


@dataclass(frozen=True)
class AcquisitionLine:
    """How the scan was acquired, for the scan page: ``text`` (e.g. "CT, portal-venous (DICOM
    SeriesDescription 'ABD PV')" or "MRI: geometry only"), the modality's evidence, and whether
    the HU measurements were left out (``geometry_only``)."""

    text: str
    modality_evidence: str
    geometry_only: bool
    density_offset_hu: float | None


def acquisition_line(report: Mapping[str, Any] | None) -> AcquisitionLine | None:
    """The acquisition of an analysed study (None before the analysis, or for a version 1
    report, which does not record it)."""
    from spinewatch.imaging.report import acquisition_summary

    scan = (report or {}).get("scan")
    if not isinstance(scan, Mapping):
        return None
    text = acquisition_summary(scan)
    if not text:
        return None
    offset = scan.get("density_offset_hu")
    return AcquisitionLine(
        text=text,
        modality_evidence=str(scan.get("modality_evidence") or ""),
        geometry_only=scan.get("modality") == "MR",
        density_offset_hu=float(offset) if isinstance(offset, (int, float)) and offset else None,
    )


def _num(value: Any, digits: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return DASH
    return f"{value:.{digits}f}"


def _signed(value: Any, digits: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return DASH
    text = f"{value:+.{digits}f}"
    return text.replace("-", "\u2212")


def _involved(value: Any) -> str:
    if value is None:
        return DASH
    return "Involved" if value else "Intact"


def _pedicles(left: Any, right: Any) -> str:
    if left is None and right is None:
        return DASH
    sides = [name for name, flag in (("left", left), ("right", right)) if flag]
    return ("Involved: " + ", ".join(sides)) if sides else "Intact"


def _cement(entry: Mapping[str, Any]) -> str:
    present = entry.get("cement_present")
    volume = entry.get("cement_volume_ml")
    if present is None and volume is None:
        return DASH
    if present:
        return f"{_num(volume, 1)} ml" if volume is not None else "Present"
    return "None"


def _infiltration(entry: Mapping[str, Any]) -> str:
    """ "diffuse infiltration, N HU below own spine" when the report finds it, else ""."""
    if entry.get("diffuse_infiltration") is not True:
        return ""
    below = entry.get("diffuse_infiltration_hu_below_own")
    if isinstance(below, (int, float)) and not isinstance(below, bool):
        return f"diffuse infiltration, {below:.0f} HU below own spine"
    return "diffuse infiltration"


def level_rows(
    report: Mapping[str, Any] | None, decisions: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per vertebra of a SpineWatch report (cranio-caudal, as stored).

    ``risk`` may be ``not_assessable`` (the badge says why from ``reasons``); ``confidence`` and
    ``signal`` (the comparison's treat-before-collapse verdict stored in the report) are None /
    False for reports written before those keys existed; a level with the signal is highlighted
    like a high-risk one.
    """
    if not report:
        return []
    rows = []
    decisions = decisions or {}
    for entry in report.get("vertebrae") or []:
        if not isinstance(entry, Mapping):
            continue
        fraction = entry.get("lytic_fraction")
        flags = [str(f).replace("_", " ") for f in entry.get("quality_flags") or []]
        if entry.get("truncated") and "truncated" not in flags:
            flags.insert(0, "truncated")
        grade = entry.get("genant_grade")
        rows.append(
            {
                "level": str(entry.get("level", DASH)),
                "anterior": _num(entry.get("height_anterior_mm"), 1),
                "middle": _num(entry.get("height_middle_mm"), 1),
                "posterior": _num(entry.get("height_posterior_mm"), 1),
                "grade": DASH if grade is None else str(grade),
                "deformity": str(entry.get("deformity") or DASH),
                "height_loss": _num(entry.get("height_loss_pct"), 0),
                "hu": _num(entry.get("trabecular_hu_median"), 0),
                "infiltration": _infiltration(entry),
                "lytic_ml": _num(entry.get("lytic_volume_ml"), 2),
                "lytic_pct": DASH
                if not isinstance(fraction, (int, float))
                else f"{100.0 * fraction:.0f}",
                "posterior_wall": _involved(entry.get("posterior_wall_involved")),
                "pedicles": _pedicles(
                    entry.get("pedicle_left_involved"), entry.get("pedicle_right_involved")
                ),
                "cement": _cement(entry),
                "risk": entry.get("collapse_risk"),
                "is_high": entry.get("collapse_risk") == "high"
                or entry.get("treat_signal") is True,
                "reasons": [str(r) for r in entry.get("reasons") or []],
                "flags": flags,
                "decision": decisions.get(str(entry.get("level"))),
                "confidence": entry.get("confidence"),
                "confidence_reasons": [str(r) for r in entry.get("confidence_reasons") or []],
                "signal": entry.get("treat_signal") is True,
                "signal_reasons": [str(r) for r in entry.get("treat_signal_reasons") or []],
            }
        )
    return rows


def prior_study(study: ImagingStudy) -> ImagingStudy | None:
    """The patient's latest analysed study before ``study`` (by date, then registration)."""
    return (
        ImagingStudy.objects.filter(patient_id=study.patient_id, report__isnull=False)
        .exclude(pk=study.pk)
        .filter(
            Q(study_date__lt=study.study_date) | Q(study_date=study.study_date, pk__lt=study.pk)
        )
        .order_by("-study_date", "-pk")
        .first()
    )


def dated_report(report: Mapping[str, Any], date: dt.date) -> dict[str, Any]:
    """A copy of a stored report with ``scan.study_date`` set (to ``date``) when it lacks one."""
    out = copy.deepcopy(dict(report))
    scan = dict(out.get("scan") or {})
    scan.setdefault("study_date", date.isoformat())
    out["scan"] = scan
    return out


def compare_with_prior(
    study: ImagingStudy, prior: ImagingStudy | None
) -> tuple[dict[str, Any] | None, str | None]:
    """``(comparison, None)`` or ``(None, why not)``; both None without a prior study."""
    if prior is None or not study.report or not prior.report:
        return None, None
    from spinewatch.core.errors import InputError
    from spinewatch.imaging.compare import compare_reports

    try:
        result = compare_reports(
            dated_report(prior.report, prior.study_date),
            dated_report(study.report, study.study_date),
            prior_source=f"the study of {prior.study_date.isoformat()}",
            current_source=f"the study of {study.study_date.isoformat()}",
        )
    except InputError as exc:
        return None, str(exc)
    return result, None


def _change(block: Mapping[str, Any] | None, key: str, digits: int) -> str:
    if not isinstance(block, Mapping):
        return DASH
    return _signed(block.get(key), digits)


def comparison_rows(comparison: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One row per level of :func:`spinewatch.imaging.compare.compare_reports`' result."""
    if not comparison:
        return []
    rows = []
    for entry in comparison.get("levels") or []:
        risk = entry.get("collapse_risk") or {}
        rows.append(
            {
                "level": entry.get("level"),
                "anterior": _change(entry.get("height_anterior_mm"), "change_mm", 1),
                "middle": _change(entry.get("height_middle_mm"), "change_mm", 1),
                "posterior": _change(entry.get("height_posterior_mm"), "change_mm", 1),
                "hu": _change(entry.get("trabecular_hu_median"), "change_hu", 0),
                "lytic_ml": _change(entry.get("lytic_volume_ml"), "change_ml", 2),
                "risk_prior": risk.get("prior"),
                "risk_current": risk.get("current"),
                "flags": [_FLAG_LABELS.get(f, f.replace("_", " ")) for f in entry.get("flags", [])],
                "signal": bool(entry.get("signal_to_treat")),
                "reasons": list(entry.get("reasons") or []),
            }
        )
    return rows


def decisions_of(study: ImagingStudy) -> dict[str, str]:
    """Level -> the team's decision (none/watch/treat/treated) from the study's findings."""
    return dict(study.findings.values_list("level", "decision"))


def count_signals(rows: Sequence[Mapping[str, Any]]) -> int:
    """How many compared levels carry a signal to treat."""
    return sum(1 for r in rows if r.get("signal"))
