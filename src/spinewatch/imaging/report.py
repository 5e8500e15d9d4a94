"""The spine report: one record per vertebra, serialised to the JSON contract.

:meth:`SpineReport.to_json_dict` is the contract that ``compare``, ``render``, the registry and the
acceptance checks consume (every key documented in ``docs/report.md``): ``{"scan": {...},
"vertebrae": [...]}`` in cranio-caudal order, world RAS+ mm, ml and HU, floats rounded (0.1 mm,
0.01 ml, 1 HU, 0.1 %, 4 decimals for unit vectors), never NaN (missing values are null). The scan
record carries ``orientation_note`` (a sentence) only when the header's axes disagree with the
anatomy or had to be used for a frame.

Without a CT -- an MRI (geometry only: its signal is not HU) or no image at all -- the density,
lesion and cement fields are null and each vertebra's ``not_assessed`` lists why
(``["MRI: not assessed"]``, ``["No CT: not assessed"]``; empty when they were measured). The
scan record says how the scan was acquired: ``modality`` (``CT``/``MR``), ``contrast_phase``
(``native``, ``arterial``, ``portal_venous``, ``delayed``, ``contrast_unknown_phase``), each with
its ``*_source`` (``dicom``, ``user``, ``detected``, ``assumed``) and ``*_evidence`` (the tag and
value, the detection figures...), and ``density_offset_hu`` (added to native-CT density
thresholds for the phase); :func:`acquisition_summary` puts it in one line.

How the label map was read (:mod:`spinewatch.imaging.label_reading`) is in ``scan``:
``labels_convention`` (``totalsegmentator``, ``totalsegmentator_mr``,
``totalsegmentator_vertebrae_mr``, ``totalsegmentator_vertebrae_body``, ``verse``, ``tptbox`` or
``binary``), ``labels_convention_source`` (``user`` or ``detected``),
``labels_convention_evidence`` (why), ``levels_named_by`` (null, or ``"user: --lowest-level L5"``
when the user named the levels), ``rejected_labels`` (``[{"label", "level", "reason"}]``: labels
named a vertebra that do not look like one for their level; they are not analysed) and
``label_notes`` (endplates merged, pieces split...). A vertebra's ``label`` is its id in the
analysed map -- the VerSe id of its level when the user named the levels.

``diffuse_infiltration`` (true/false/null) says whether the body's trabecular background lies far
below the patient's own other vertebrae (:mod:`spinewatch.imaging.infiltration`; null when not
assessable: no CT, a truncated or cemented body, or fewer than three other whole bodies);
``diffuse_infiltration_hu_below_own`` is the expected minus the measured background (HU; positive
= below its own spine), null likewise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spinewatch.core.acquisition import Acquisition, ContrastPhase
from spinewatch.core.genant import GenantAssessment
from spinewatch.core.levels import VertebralLevel

__all__ = [
    "NO_IMAGE_NOT_ASSESSED",
    "REPORT_VERSION",
    "ScanInfo",
    "SpineReport",
    "VertebraReport",
    "acquisition_summary",
    "format_text",
]

#: Version of the JSON contract, written as the top-level ``report_version``. Version 1 reports
#: (no such key) are still read. 2: the scan's modality and contrast phase (``scan.modality``,
#: ``scan.contrast_phase`` with their sources and evidence, ``scan.density_offset_hu``); per
#: vertebra ``not_assessed`` (why density, lesion and cement fields are null), ``collapse_risk``
#: may be ``"not_assessable"``, with ``not_measured``, ``confidence``/``confidence_reasons``,
#: ``noise_hu_sd``, and the comparison with a prior report (``treat_signal``,
#: ``treat_signal_reasons``, ``change_flags``; ``scan.compared_with``); how the label map was read
#: (``scan.labels_convention_*``, ``rejected_labels``...), the Genant expected heights and the
#: frame's ``scan.orientation_note``. Keys are only ever added within a version.
REPORT_VERSION = 2

#: The reason recorded per vertebra when only a label map was analysed (no image at all).
NO_IMAGE_NOT_ASSESSED = "No CT: not assessed"


def _r(value: float | None, digits: int) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    out = round(value, digits)
    return 0.0 if out == 0 else out


def _vec(values: Sequence[float] | None, digits: int) -> list[float] | None:
    if values is None:
        return None
    return [_r(float(v), digits) or 0.0 for v in values]


@dataclass(frozen=True)
class ScanInfo:
    """Facts about the analysed scan (paths as given, grid of the analysis)."""

    ct: str | None
    labels: str
    labels_convention: str
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    orientation: str
    series_uid: str | None
    spinewatch_version: str
    analysed_at: str
    extra: dict[str, Any] = field(default_factory=dict)
    acquisition: Acquisition = field(default_factory=Acquisition)

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ct": self.ct,
            "labels": self.labels,
            "labels_convention": self.labels_convention,
            "shape": [int(s) for s in self.shape],
            "spacing_mm": [_r(s, 4) for s in self.spacing_mm],
            "orientation": self.orientation,
            "series_uid": self.series_uid,
            "spinewatch_version": self.spinewatch_version,
            "analysed_at": self.analysed_at,
            "modality": self.acquisition.modality.value,
            "modality_source": self.acquisition.modality_source,
            "modality_evidence": self.acquisition.modality_evidence,
            "contrast_phase": self.acquisition.contrast_phase.value,
            "contrast_source": self.acquisition.contrast_source,
            "contrast_evidence": self.acquisition.contrast_evidence,
            "density_offset_hu": _r(self.acquisition.contrast_phase.density_offset_hu, 2),
            "compared_with": None,
        }
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class VertebraReport:
    """Everything measured for one vertebra (None = not measured)."""

    level: VertebralLevel
    label: int
    body_centroid_mm: tuple[float, float, float]
    body_volume_ml: float
    superior: tuple[float, float, float]
    anterior: tuple[float, float, float]
    truncated: bool
    quality_flags: tuple[str, ...]
    height_anterior_mm: float | None = None
    height_middle_mm: float | None = None
    height_posterior_mm: float | None = None
    reference_height_mm: float | None = None
    reference_levels: tuple[str, ...] = ()
    genant: GenantAssessment | None = None
    density: Any = None  # density.TrabecularDensity | None
    lytic: Any = None  # lesions.LyticFindings | None
    cement: Any = None  # cement.CementFindings | None
    risk: Any = None  # risk.RiskAssessment | None
    has_ct: bool = False
    not_assessed: tuple[str, ...] = ()
    confidence: Any = None  # confidence.Confidence | None
    noise_hu: float | None = None
    infiltration: Any = None  # infiltration.InfiltrationFinding | None

    def to_json_dict(self) -> dict[str, Any]:
        g, d, ly, ce, rk = self.genant, self.density, self.lytic, self.cement, self.risk
        inf = self.infiltration
        out: dict[str, Any] = {
            "level": str(self.level.value),
            "label": int(self.label),
            "body_centroid_mm": _vec(self.body_centroid_mm, 1),
            "body_volume_ml": _r(self.body_volume_ml, 2),
            "frame": {"superior": _vec(self.superior, 4), "anterior": _vec(self.anterior, 4)},
            "height_anterior_mm": _r(self.height_anterior_mm, 1),
            "height_middle_mm": _r(self.height_middle_mm, 1),
            "height_posterior_mm": _r(self.height_posterior_mm, 1),
            "reference_height_mm": _r(self.reference_height_mm, 1),
            "genant_grade": None if g is None else int(g.grade),
            "deformity": None if g is None else str(g.deformity.value),
            "height_loss_pct": None if g is None else _r(g.height_loss_pct, 1),
            "wedge_loss_pct": None if g is None else _r(g.wedge_loss_pct, 1),
            "biconcave_loss_pct": None if g is None else _r(g.biconcave_loss_pct, 1),
            "crush_loss_pct": None if g is None else _r(g.crush_loss_pct, 1),
            # each height against its expected value (level's normal shape, unfractured
            # neighbours; spinewatch.core.genant) and what was expected, mm
            "anterior_loss_pct": None if g is None else _r(g.anterior_loss_pct, 1),
            "middle_loss_pct": None if g is None else _r(g.middle_loss_pct, 1),
            "posterior_loss_pct": None if g is None else _r(g.posterior_loss_pct, 1),
            "expected_anterior_mm": None if g is None else _r(g.expected_anterior_mm, 1),
            "expected_middle_mm": None if g is None else _r(g.expected_middle_mm, 1),
            "reference_levels": list(self.reference_levels),
            "truncated": bool(self.truncated),
            "trabecular_hu_median": None if d is None else _r(d.median_hu, 0),
            "trabecular_hu_mean": None if d is None else _r(d.mean_hu, 0),
            "erosion_mm": None if d is None else _r(d.erosion_mm, 1),
            "density_flags": [] if d is None else [str(f) for f in d.flags],
            "lytic_volume_ml": None if ly is None else _r(ly.volume_ml, 2),
            "lytic_fraction": None if ly is None else _r(ly.fraction, 3),
            "n_lesions": None if ly is None else int(ly.n_lesions),
            "largest_lesion_ml": None if ly is None else _r(ly.largest_ml, 2),
            "posterior_wall_involved": None if ly is None else bool(ly.posterior_wall_involved),
            "pedicle_left_involved": None if ly is None else bool(ly.pedicle_left_involved),
            "pedicle_right_involved": None if ly is None else bool(ly.pedicle_right_involved),
            "diffuse_infiltration": None if inf is None else inf.infiltrated,
            "diffuse_infiltration_hu_below_own": None if inf is None else _r(inf.hu_below_own, 0),
            "cement_volume_ml": None if ce is None else _r(ce.volume_ml, 2),
            "cement_present": None if ce is None else bool(ce.present),
            "collapse_risk": None if rk is None else str(rk.risk.value),
            "reasons": [] if rk is None else [str(r) for r in rk.reasons],
            "not_measured": [] if rk is None else [str(r) for r in rk.not_measured],
            "sins_imaging": None if rk is None else _sins(rk.sins_imaging),
            "quality_flags": list(self.quality_flags),
            "not_assessed": list(self.not_assessed),
            "confidence": None if self.confidence is None else str(self.confidence.level.value),
            "confidence_reasons": []
            if self.confidence is None
            else [str(r) for r in self.confidence.reasons],
            "noise_hu_sd": _r(self.noise_hu, 1),
            "treat_signal": None,
            "treat_signal_reasons": [],
            "change_flags": [],
        }
        return out


def _sins(part: Any) -> dict[str, Any]:
    lo, hi = part.possible_total_range
    return {
        "location": str(part.location.value),
        "bone_lesion": str(part.bone_lesion.value),
        "collapse": str(part.collapse.value),
        "posterolateral": str(part.posterolateral.value),
        "points": int(part.points),
        "possible_total_range": [int(lo), int(hi)],
        "not_assessed": [str(name) for name in part.unassessed],
    }


@dataclass(frozen=True)
class SpineReport:
    """The analysis of one study: scan facts and vertebrae in cranio-caudal order."""

    scan: ScanInfo
    vertebrae: tuple[VertebraReport, ...]

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON contract (plain dicts, lists, str, int, float, bool, None; no NaN)."""
        return {
            "report_version": REPORT_VERSION,
            "scan": self.scan.to_json_dict(),
            "vertebrae": [v.to_json_dict() for v in self.vertebrae],
        }

    def vertebra(self, level: VertebralLevel | str) -> VertebraReport:
        """The record of ``level`` (KeyError when the level is not in the report)."""
        lv = VertebralLevel.parse(level)
        for v in self.vertebrae:
            if v.level is lv:
                return v
        raise KeyError(str(lv.value))


def acquisition_summary(scan: Mapping[str, Any], *, evidence: bool = True) -> str:
    """One line saying how a scan was acquired, from a report's ``scan`` record ("" for a
    version 1 report, which does not record it); ``evidence=False`` leaves out why (the
    picture's subtitle has room for the facts only).

    >>> acquisition_summary({"modality": "CT", "contrast_phase": "portal_venous",
    ...     "contrast_source": "dicom", "contrast_evidence": "DICOM SeriesDescription 'ABD PV'"})
    "CT, portal-venous (DICOM SeriesDescription 'ABD PV')"
    >>> acquisition_summary({"modality": "MR"})
    'MRI: geometry only'
    """
    modality = scan.get("modality")
    if modality == "MR":
        return "MRI: geometry only"
    if modality != "CT":
        return ""
    try:
        phase = ContrastPhase.parse(str(scan.get("contrast_phase") or "native"))
    except ValueError:
        return "CT"
    text = f"CT, {phase.label}"
    if scan.get("contrast_source") == "assumed":
        text += ", assumed"
    why = str(scan.get("contrast_evidence") or "") if evidence else ""
    return f"{text} ({why})" if why else text


def _cell(value: Any, spec: str) -> str:
    if value is None:
        digits = "".join(c for c in spec.split(".")[0] if c.isdigit())
        return "-".rjust(int(digits or 0))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


def format_text(report: dict[str, Any]) -> str:
    """A readable table of a report's JSON dict (one line per vertebra).

    ``risk`` "not assessable": the reasons say why; ``conf`` the confidence class
    (H/M/L, its reasons after ``confidence:``); ``TREAT`` marks the comparison's signal to treat
    before collapse (its reasons after ``signal:``).
    """
    scan = report["scan"]
    image = "MRI" if scan.get("modality") == "MR" else "CT"
    summary = acquisition_summary(scan)
    lines = [
        f"{image}: {scan.get('ct') or '(none: geometry only)'}",
        f"labels: {scan['labels']} ({scan['labels_convention']}), grid {scan['shape']} "
        f"at {scan['spacing_mm']} mm, {scan['orientation']}",
        *([f"acquisition: {summary}"] if summary and scan.get("ct") else []),
        *([f"note: {scan['orientation_note']}"] if scan.get("orientation_note") else []),
    ]
    phase = scan.get("contrast_phase")
    if phase and phase != "native":
        lines.append(
            f"contrast phase: {phase} (density thresholds +{scan.get('density_offset_hu')} HU)"
        )
    compared = scan.get("compared_with")
    if isinstance(compared, dict):
        lines.append(f"compared with: {compared.get('source') or compared.get('study_date')}")
    lines += [
        "",
        f"{'level':<6}{'Ha':>6}{'Hm':>6}{'Hp':>6}{'ref':>6} {'grade':>5} {'deformity':<10}"
        f"{'loss%':>6}{'HU':>6}{'lytic ml':>9}{'frac':>6} {'PW':<4}{'cement':>7} {'risk':<15}"
        f"{'conf':<5}{'':<6}reasons / flags",
    ]
    for v in report["vertebrae"]:
        notes = list(v.get("reasons") or [])
        if v.get("truncated"):
            notes.insert(0, "truncated")
        notes += [f"[{f}]" for f in v.get("quality_flags") or []]
        notes += [str(r) for r in v.get("not_assessed") or [] if scan.get("ct")]
        if v.get("treat_signal"):
            notes.append("signal: " + "; ".join(v.get("treat_signal_reasons") or []))
        if v.get("confidence") and v.get("confidence") != "high":
            notes.append("confidence: " + "; ".join(v.get("confidence_reasons") or []))
        risk = v.get("collapse_risk")
        risk_text = risk.replace("_", " ") if isinstance(risk, str) else None
        conf = v.get("confidence")
        lines.append(
            f"{v['level']:<6}{_cell(v['height_anterior_mm'], '6.1f')}"
            f"{_cell(v['height_middle_mm'], '6.1f')}{_cell(v['height_posterior_mm'], '6.1f')}"
            f"{_cell(v['reference_height_mm'], '6.1f')} {_cell(v['genant_grade'], '5d'):>5} "
            f"{_cell(v['deformity'], '<10')}{_cell(v['height_loss_pct'], '6.1f')}"
            f"{_cell(v['trabecular_hu_median'], '6.0f')}{_cell(v['lytic_volume_ml'], '9.2f')}"
            f"{_cell(v['lytic_fraction'], '6.2f')} {_cell(v['posterior_wall_involved'], '<4')}"
            f"{_cell(v['cement_volume_ml'], '7.2f')} {_cell(risk_text, '<15')}"
            f"{(conf or '-')[:1].upper():<5}{'TREAT' if v.get('treat_signal') else '':<6}"
            f"{'; '.join(notes)}"
        )
    return "\n".join(lines)
