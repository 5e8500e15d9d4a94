"""The spine report: one record per vertebra, serialised to the JSON contract.

:meth:`SpineReport.to_json_dict` is the contract that ``compare``, ``render``, the registry and the
acceptance checks consume (see ``docs``/the imaging design): ``{"scan": {...}, "vertebrae":
[...]}`` in cranio-caudal order, world RAS+ mm, ml and HU, floats rounded (0.1 mm, 0.01 ml,
1 HU, 0.1 %, 4 decimals for unit vectors), never NaN (missing values are null). Without a CT the
density, lesion and cement fields are null.

``diffuse_infiltration`` (true/false/null) says whether the body's trabecular background lies far
below the patient's own other vertebrae (:mod:`spinewatch.imaging.infiltration`; null when not
assessable: no CT, a truncated or cemented body, or fewer than three other whole bodies);
``diffuse_infiltration_hu_below_own`` is the expected minus the measured background (HU; positive
= below its own spine), null likewise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from spinewatch.core.genant import GenantAssessment
from spinewatch.core.levels import VertebralLevel

__all__ = ["ScanInfo", "SpineReport", "VertebraReport", "format_text"]


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
    genant: GenantAssessment | None = None
    density: Any = None  # density.TrabecularDensity | None
    lytic: Any = None  # lesions.LyticFindings | None
    cement: Any = None  # cement.CementFindings | None
    risk: Any = None  # risk.RiskAssessment | None
    has_ct: bool = False
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
            "sins_imaging": None if rk is None else _sins(rk.sins_imaging),
            "quality_flags": list(self.quality_flags),
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
    }


@dataclass(frozen=True)
class SpineReport:
    """The analysis of one study: scan facts and vertebrae in cranio-caudal order."""

    scan: ScanInfo
    vertebrae: tuple[VertebraReport, ...]

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON contract (plain dicts, lists, str, int, float, bool, None; no NaN)."""
        return {
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


def _cell(value: Any, spec: str) -> str:
    if value is None:
        digits = "".join(c for c in spec.split(".")[0] if c.isdigit())
        return "-".rjust(int(digits or 0))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


def format_text(report: dict[str, Any]) -> str:
    """A readable table of a report's JSON dict (one line per vertebra)."""
    scan = report["scan"]
    lines = [
        f"CT: {scan.get('ct') or '(none: geometry only)'}",
        f"labels: {scan['labels']} ({scan['labels_convention']}), grid {scan['shape']} "
        f"at {scan['spacing_mm']} mm, {scan['orientation']}",
        "",
        f"{'level':<6}{'Ha':>6}{'Hm':>6}{'Hp':>6}{'ref':>6} {'grade':>5} {'deformity':<10}"
        f"{'loss%':>6}{'HU':>6}{'lytic ml':>9}{'frac':>6} {'PW':<4}{'cement':>7} {'risk':<9}"
        "reasons / flags",
    ]
    for v in report["vertebrae"]:
        notes = list(v.get("reasons") or [])
        if v.get("truncated"):
            notes.insert(0, "truncated")
        notes += [f"[{f}]" for f in v.get("quality_flags") or []]
        lines.append(
            f"{v['level']:<6}{_cell(v['height_anterior_mm'], '6.1f')}"
            f"{_cell(v['height_middle_mm'], '6.1f')}{_cell(v['height_posterior_mm'], '6.1f')}"
            f"{_cell(v['reference_height_mm'], '6.1f')} {_cell(v['genant_grade'], '5d'):>5} "
            f"{_cell(v['deformity'], '<10')}{_cell(v['height_loss_pct'], '6.1f')}"
            f"{_cell(v['trabecular_hu_median'], '6.0f')}{_cell(v['lytic_volume_ml'], '9.2f')}"
            f"{_cell(v['lytic_fraction'], '6.2f')} {_cell(v['posterior_wall_involved'], '<4')}"
            f"{_cell(v['cement_volume_ml'], '7.2f')} {_cell(v['collapse_risk'], '<9')}"
            f"{'; '.join(notes)}"
        )
    return "\n".join(lines)
