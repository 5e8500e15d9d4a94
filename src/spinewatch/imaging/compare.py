"""Follow-up: compare a patient's current spine report with the prior one, level by level.

Both inputs are :class:`~spinewatch.imaging.report.SpineReport` records read from the JSON contract
(:meth:`~spinewatch.imaging.report.SpineReport.from_json_dict`, :func:`load_report`), so a report
stored months ago (version 1 or 2) compares with today's. The result is a JSON-able dict: per
vertebral level (cranio-caudal), the change in the three body heights (mm and %), in trabecular
attenuation (HU), in lytic volume (ml) and fraction; flags for what changed; and the *signal to
treat*: a lesion that is new or growing, or a vertebra that is weakening but has not yet collapsed
-- the moment vertebroplasty is easiest and prevents the collapse.

Thresholds (module constants, reported in the output under ``"thresholds"``), chosen above the
measurement noise of the analysis (heights about 1 mm, lesion volume about 15%, median HU a few HU):

- ``new_lesion``: lytic volume below :data:`NEGLIGIBLE_LYTIC_ML` before and at least
  :data:`NEW_LESION_MIN_ML` now.
- ``lesion_growth``: lytic volume up by more than :data:`GROWTH_MIN_ML` *and* more than
  :data:`GROWTH_MIN_PCT` % of the prior volume (a lesion already present before).
- ``new_fracture``: Genant grade 0 before, grade 1 or more now.
- ``worse_fracture``: a vertebra fractured before whose grade rose, or whose height loss rose by
  :data:`HEIGHT_LOSS_PROGRESSION_PCT` percentage points or more with one of its heights down by
  :data:`HEIGHT_DROP_MM` mm or more (twice the ~1 mm noise).
- ``height_loss``: an unfractured vertebra (grade 0 both times) with a height down by
  :data:`HEIGHT_DROP_MM` mm or more -- early settling.
- ``density_drop``: median trabecular HU down by :data:`DENSITY_DROP_HU` HU or more (normal ageing
  loses ~2.5 HU a year, Jang 2019).
- ``newly_treated``: cement (:data:`CEMENT_PRESENT_ML` ml or more) now, none before.
- ``level_not_in_prior`` / ``level_not_in_current``: the level was measured on one scan only.

``signal_to_treat`` is true when the level is in both reports, is not already cemented, has not
collapsed (current Genant grade below :data:`COLLAPSED_GRADE`), and shows a new or growing lesion,
a new or worse fracture, early height loss or a density drop. ``reasons`` says which, in words.

The signal acts (:func:`apply_comparison`): the current report's vertebrae carry it
(``treat_signal``, ``treat_signal_reasons``, ``change_flags``) and it raises the level's
``collapse_risk`` -- to *high* for a new or worse fracture or a new or growing lesion
(:data:`RAISE_TO_HIGH_FLAGS`: the vertebra is failing now, the actionable finding the
surveillance exists for), to at least *moderate* for early height loss or a density drop alone
-- with a reason saying so. ``spinewatch analyze --prior`` and the web worker apply it, so the
stored report, the registry's findings and the decision worklist all see it.

>>> prior = SpineReport.from_json_dict({"scan": {"labels": "a.nii.gz"}, "vertebrae": [{
...     "level": "L1", "height_anterior_mm": 25.0, "lytic_volume_ml": 0.0, "genant_grade": 0}]})
>>> current = SpineReport.from_json_dict({"scan": {"labels": "b.nii.gz"}, "vertebrae": [{
...     "level": "L1", "height_anterior_mm": 24.6, "lytic_volume_ml": 1.2, "genant_grade": 0}]})
>>> result = compare_reports(prior, current)
>>> result["levels"][0]["flags"], result["levels"][0]["signal_to_treat"]
(['new_lesion'], True)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from spinewatch.core.collapse_risk import CollapseRisk
from spinewatch.imaging.limits import (
    InputLimits,
    InputTooLargeError,
    JsonInputError,
    current_limits,
    format_bytes,
    parse_json,
)
from spinewatch.imaging.report import (
    MAX_MAGNITUDE,
    ChangeRecord,
    ComparedWith,
    ReportFormatError,
    ScanInfo,
    SpineReport,
    VertebraReport,
)

__all__ = [
    "CEMENT_PRESENT_ML",
    "COLLAPSED_GRADE",
    "DENSITY_DROP_HU",
    "GROWTH_MIN_ML",
    "GROWTH_MIN_PCT",
    "HEIGHT_DROP_MM",
    "HEIGHT_LOSS_PROGRESSION_PCT",
    "MAX_MAGNITUDE",
    "NEGLIGIBLE_LYTIC_ML",
    "NEW_LESION_MIN_ML",
    "RAISE_TO_HIGH_FLAGS",
    "ReportFormatError",
    "apply_comparison",
    "compare_reports",
    "format_comparison_text",
    "load_report",
]

NEGLIGIBLE_LYTIC_ML = 0.1
"""Lytic volume (ml) below which a vertebra counts as free of lesion."""
NEW_LESION_MIN_ML = 0.2
"""Lytic volume (ml) a previously lesion-free vertebra must reach to flag ``new_lesion``."""
GROWTH_MIN_ML = 0.5
"""Absolute lytic volume increase (ml) needed for ``lesion_growth`` (and GROWTH_MIN_PCT)."""
GROWTH_MIN_PCT = 25.0
"""Relative lytic volume increase (% of prior) needed for ``lesion_growth``."""
HEIGHT_DROP_MM = 2.0
"""A body height decrease (mm) beyond measurement noise (~1 mm, twice over)."""
HEIGHT_LOSS_PROGRESSION_PCT = 5.0
"""Rise of Genant height loss (percentage points) that, with a height drop, is a worse fracture."""
DENSITY_DROP_HU = 20.0
"""Fall of the median trabecular attenuation (HU) that flags ``density_drop``."""
CEMENT_PRESENT_ML = 0.05
"""Cement volume (ml) from which a vertebra counts as treated: the analysis' own threshold,
``imaging.cement.MIN_CEMENT_ML`` (repeated, not imported, to keep ``spinewatch compare`` free of
numpy/scipy start-up; a test keeps the two equal)."""
COLLAPSED_GRADE = 3
"""Genant grade from which a vertebra counts as collapsed (> 40% height loss): too late."""

_HEIGHTS = ("height_anterior_mm", "height_middle_mm", "height_posterior_mm")
RAISE_TO_HIGH_FLAGS = ("new_fracture", "worse_fracture", "new_lesion", "lesion_growth")
"""Change flags that, with the signal to treat, raise the level's collapse risk to high."""
_WEAKENING = (
    "new_lesion",
    "lesion_growth",
    "new_fracture",
    "worse_fracture",
    "height_loss",
    "density_drop",
)


# -- loading ------------------------------------------------------------------------------------


def load_report(path: Path, *, limits: InputLimits | None = None) -> SpineReport:
    """Read a SpineWatch report JSON file (:meth:`SpineReport.from_json_dict`).

    Raises :class:`ReportFormatError` naming the file (with line and column for malformed JSON,
    ``NaN``/``Infinity`` or nesting deeper than ``limits.max_json_depth``; with the key path for
    a value the contract refuses), :class:`~spinewatch.imaging.report.ReportVersionError` for a
    version this SpineWatch does not read,
    :class:`~spinewatch.imaging.limits.InputTooLargeError` for a file larger than
    ``limits.max_report_bytes`` (checked before reading) and :class:`FileNotFoundError` for a
    missing file.
    """
    path = Path(path)
    limits = current_limits(limits)
    size = path.stat().st_size
    if size > limits.max_report_bytes:
        raise InputTooLargeError(
            f"{path}: the report is {format_bytes(size)}; the limit is "
            f"{format_bytes(limits.max_report_bytes)} (SPINEWATCH_MAX_REPORT_BYTES)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ReportFormatError(
            f"{path}: not a SpineWatch report (not UTF-8 text: byte {exc.start})"
        ) from None
    try:
        data = parse_json(text, source=str(path), max_depth=limits.max_json_depth)
    except JsonInputError as exc:
        raise ReportFormatError(str(exc)) from None
    return SpineReport.from_json_dict(data, source=str(path))


def _study_date(scan: ScanInfo, source: str) -> dt.date | None:
    value = scan.study_date
    if value is None or value == "":
        return None
    text = value.strip()
    for parse in (dt.date.fromisoformat, lambda s: dt.datetime.strptime(s, "%Y%m%d").date()):
        try:
            return parse(text[:10] if "T" in text else text)
        except ValueError:
            continue
    raise ReportFormatError(
        f"{source}: scan.study_date: expected a date like '2024-03-01' or '20240301', "
        f"got {value!r:.60}",
        field="scan.study_date",
    )


# -- the comparison ---------------------------------------------------------------------------


def _height(v: VertebraReport | None, key: str) -> float | None:
    if v is None:
        return None
    h = v.heights
    return {
        "height_anterior_mm": h.anterior_mm,
        "height_middle_mm": h.middle_mm,
        "height_posterior_mm": h.posterior_mm,
    }[key]


def _grade(v: VertebraReport | None) -> int | None:
    return None if v is None or v.genant.grade is None else int(v.genant.grade)


def _diff(prior: float | None, current: float | None, digits: int) -> float | None:
    if prior is None or current is None:
        return None
    return round(current - prior, digits)


def _pct(prior: float | None, current: float | None) -> float | None:
    if prior is None or current is None or prior == 0:
        return None
    try:
        pct = (current - prior) / abs(prior) * 100.0
    except OverflowError:
        return None
    return round(pct, 1) if math.isfinite(pct) else None


def _cement(v: VertebraReport | None) -> bool | None:
    """True/False when known, None when the report had no CT (cement not measured)."""
    if v is None:
        return None
    if any("cement" in f or "metal" in f for f in v.quality_flags):
        return True
    volume = v.cement.volume_ml
    if volume is None:
        return None
    return volume >= CEMENT_PRESENT_ML


def _measurements(prior: VertebraReport | None, current: VertebraReport | None) -> dict[str, Any]:
    """The ``{"prior", "current", "change_*"}`` block of every measurement compared."""
    out: dict[str, Any] = {}
    for key in _HEIGHTS:
        p, c = _height(prior, key), _height(current, key)
        out[key] = {"prior": p, "current": c, "change_mm": _diff(p, c, 1), "change_pct": _pct(p, c)}

    def get(v: VertebraReport | None, pick: Any) -> Any:
        return None if v is None else pick(v)

    p_loss = get(prior, lambda v: v.genant.height_loss_pct)
    c_loss = get(current, lambda v: v.genant.height_loss_pct)
    out["height_loss_pct"] = {
        "prior": p_loss,
        "current": c_loss,
        "change": _diff(p_loss, c_loss, 1),
    }
    out["genant_grade"] = {"prior": _grade(prior), "current": _grade(current)}
    deformity = lambda v: None if v.genant.deformity is None else v.genant.deformity.value  # noqa: E731
    out["deformity"] = {"prior": get(prior, deformity), "current": get(current, deformity)}
    p_hu = get(prior, lambda v: v.density.median_hu)
    c_hu = get(current, lambda v: v.density.median_hu)
    out["trabecular_hu_median"] = {
        "prior": p_hu,
        "current": c_hu,
        "change_hu": _diff(p_hu, c_hu, 0),
    }
    p_ml = get(prior, lambda v: v.lesions.volume_ml)
    c_ml = get(current, lambda v: v.lesions.volume_ml)
    out["lytic_volume_ml"] = {
        "prior": p_ml,
        "current": c_ml,
        "change_ml": _diff(p_ml, c_ml, 2),
        "change_pct": _pct(p_ml, c_ml),
    }
    p_fr = get(prior, lambda v: v.lesions.fraction)
    c_fr = get(current, lambda v: v.lesions.fraction)
    out["lytic_fraction"] = {"prior": p_fr, "current": c_fr, "change": _diff(p_fr, c_fr, 3)}
    out["cement"] = {"prior": _cement(prior), "current": _cement(current)}
    risk = lambda v: None if v.collapse_risk is None else v.collapse_risk.value  # noqa: E731
    out["collapse_risk"] = {"prior": get(prior, risk), "current": get(current, risk)}
    return out


def _lesion_change(block: dict[str, Any]) -> tuple[str, str] | None:
    """``new_lesion`` or ``lesion_growth`` with its reason, from the lytic volume block."""
    p_ml, c_ml = block["prior"], block["current"]
    if p_ml is None or c_ml is None:
        return None
    if p_ml < NEGLIGIBLE_LYTIC_ML and c_ml >= NEW_LESION_MIN_ML:
        return "new_lesion", f"new lytic lesion: {c_ml:.2f} ml (prior {p_ml:.2f} ml)"
    if (
        p_ml >= NEGLIGIBLE_LYTIC_ML
        and c_ml - p_ml > GROWTH_MIN_ML
        and (c_ml - p_ml) / p_ml * 100.0 > GROWTH_MIN_PCT
    ):
        return "lesion_growth", (
            f"lytic lesion grew from {p_ml:.2f} to {c_ml:.2f} ml "
            f"(+{(c_ml - p_ml) / p_ml * 100.0:.0f}%)"
        )
    return None


def _fracture_change(m: dict[str, Any]) -> tuple[str, str] | None:
    """A new or worse fracture, or early height loss, with its reason."""
    drops = [(key, m[key]["prior"], m[key]["current"]) for key in _HEIGHTS]
    worst_drop = max(
        ((p - c, key) for key, p, c in drops if p is not None and c is not None),
        default=None,
    )
    big_drop = worst_drop is not None and worst_drop[0] >= HEIGHT_DROP_MM
    drop_text = (
        f"{worst_drop[1].removeprefix('height_').removesuffix('_mm')} height "
        f"-{worst_drop[0]:.1f} mm"
        if worst_drop is not None
        else ""
    )
    p_grade, c_grade = m["genant_grade"]["prior"], m["genant_grade"]["current"]
    p_loss, c_loss = m["height_loss_pct"]["prior"], m["height_loss_pct"]["current"]
    if p_grade is None or c_grade is None:
        # Grades unknown (e.g. no reference height): judge on the heights alone.
        return ("height_loss", f"height loss: {drop_text}") if big_drop else None
    if p_grade == 0 and c_grade >= 1:
        return "new_fracture", f"new fracture: Genant grade 0 → {c_grade}"
    if p_grade >= 1 and c_grade > p_grade:
        return "worse_fracture", f"fracture worse: Genant grade {p_grade} → {c_grade}"
    if (
        p_grade >= 1
        and big_drop
        and p_loss is not None
        and c_loss is not None
        and c_loss - p_loss >= HEIGHT_LOSS_PROGRESSION_PCT
    ):
        return "worse_fracture", (
            f"fracture progressing: height loss {p_loss:.0f}% → {c_loss:.0f}%, {drop_text}"
        )
    if p_grade == 0 and c_grade == 0 and big_drop:
        return "height_loss", f"early height loss without fracture: {drop_text}"
    return None


def _changes(m: dict[str, Any]) -> list[tuple[str, str]]:
    """Every change flag of a level measured on both scans, with its reason, in rule order."""
    found = [_lesion_change(m["lytic_volume_ml"]), _fracture_change(m)]
    hu = m["trabecular_hu_median"]
    if (
        hu["prior"] is not None
        and hu["current"] is not None
        and hu["prior"] - hu["current"] >= DENSITY_DROP_HU
    ):
        found.append(
            (
                "density_drop",
                f"trabecular attenuation fell {hu['prior']:.0f} → {hu['current']:.0f} HU",
            )
        )
    if m["cement"]["prior"] is False and m["cement"]["current"] is True:
        found.append(
            ("newly_treated", "cement present now, not on the prior scan: treated in between")
        )
    return [f for f in found if f is not None]


def _signal(flags: list[str], m: dict[str, Any]) -> tuple[bool, str | None]:
    """The signal to treat before collapse, and why a weakening level has none."""
    if not any(f in _WEAKENING for f in flags):
        return False, None
    c_grade = m["genant_grade"]["current"]
    if m["cement"]["current"]:
        return False, "already cemented: no further signal"
    if c_grade is not None and c_grade >= COLLAPSED_GRADE:
        return False, f"already collapsed (Genant grade {c_grade}): too late to prevent"
    return True, None


def _compare_level(
    level: str, prior: VertebraReport | None, current: VertebraReport | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "level": level,
        "in_prior": prior is not None,
        "in_current": current is not None,
    }
    m = _measurements(prior, current)
    out.update(m)
    flags: list[str] = []
    reasons: list[str] = []
    if prior is None:
        flags.append("level_not_in_prior")
        reasons.append(f"{level} was not measured on the prior scan: nothing to compare")
    if current is None:
        flags.append("level_not_in_current")
        reasons.append(f"{level} was not measured on the current scan")
    if prior is not None and current is not None:
        for flag, reason in _changes(m):
            flags.append(flag)
            reasons.append(reason)
    signal, why_not = _signal(flags, m)
    if why_not is not None:
        reasons.append(why_not)
    out["flags"] = flags
    out["signal_to_treat"] = signal
    out["reasons"] = reasons
    return out


def compare_reports(
    prior: SpineReport,
    current: SpineReport,
    *,
    prior_source: str = "prior report",
    current_source: str = "current report",
) -> dict[str, Any]:
    """Compare two SpineWatch reports level by level; return a JSON-able dict.

    ``prior_source``/``current_source`` name the inputs in error messages (the file paths when
    read from disk). Raises :class:`ReportFormatError` when the current study date precedes the
    prior one (arguments swapped?) or a study date is not a date.

    Result: ``{"prior": {...}, "current": {...}, "interval_days": int | None, "thresholds": {...},
    "levels": [...], "summary": {...}}``; each level entry carries ``{"prior", "current",
    "change_*"}`` blocks per measurement, ``flags``, ``signal_to_treat`` and ``reasons``.
    Levels are in cranio-caudal order, every level present in either report.
    """
    p_date = _study_date(prior.scan, prior_source)
    c_date = _study_date(current.scan, current_source)
    interval: int | None = None
    if p_date is not None and c_date is not None:
        interval = (c_date - p_date).days
        if interval < 0:
            raise ReportFormatError(
                f"{current_source}: scan.study_date {c_date.isoformat()} is before the prior "
                f"study's {p_date.isoformat()} ({prior_source}): are PRIOR and CURRENT swapped?",
                field="scan.study_date",
            )

    by_prior, by_current = prior.by_level(), current.by_level()
    names = sorted(set(by_prior) | set(by_current))
    levels = [_compare_level(str(lv.value), by_prior.get(lv), by_current.get(lv)) for lv in names]
    for entry in levels:
        hu = entry["trabecular_hu_median"]
        hu["change_hu_per_year"] = (
            round(hu["change_hu"] * 365.25 / interval, 1)
            if interval and hu["change_hu"] is not None
            else None
        )

    def scan_info(report: SpineReport, source: str, date: dt.date | None) -> dict[str, Any]:
        return {
            "source": source,
            "ct": report.scan.ct,
            "labels": report.scan.labels,
            "study_date": date.isoformat() if date else None,
            "analysed_at": report.scan.analysed_at,
        }

    all_flags = sorted({f for e in levels for f in e["flags"]})
    return {
        "prior": scan_info(prior, prior_source, p_date),
        "current": scan_info(current, current_source, c_date),
        "interval_days": interval,
        "thresholds": {
            "negligible_lytic_ml": NEGLIGIBLE_LYTIC_ML,
            "new_lesion_min_ml": NEW_LESION_MIN_ML,
            "growth_min_ml": GROWTH_MIN_ML,
            "growth_min_pct": GROWTH_MIN_PCT,
            "height_drop_mm": HEIGHT_DROP_MM,
            "height_loss_progression_pct": HEIGHT_LOSS_PROGRESSION_PCT,
            "density_drop_hu": DENSITY_DROP_HU,
            "cement_present_ml": CEMENT_PRESENT_ML,
            "collapsed_grade": COLLAPSED_GRADE,
        },
        "levels": levels,
        "summary": {
            "n_levels": len(levels),
            "signal_to_treat": [e["level"] for e in levels if e["signal_to_treat"]],
            **{flag: [e["level"] for e in levels if flag in e["flags"]] for flag in all_flags},
        },
    }


def _raised(
    entry: dict[str, Any], current_risk: CollapseRisk | None
) -> tuple[CollapseRisk, str] | None:
    """``(new risk, reason)`` when the level's signal raises its risk, else None."""
    flags = list(entry.get("flags") or [])
    target = (
        CollapseRisk.HIGH if any(f in RAISE_TO_HIGH_FLAGS for f in flags) else CollapseRisk.MODERATE
    )
    if current_risk is not None and current_risk.rank >= target.rank:
        return None
    why = "; ".join(str(r) for r in entry.get("reasons") or [])
    before = "not rated" if current_risk is None else current_risk.value.replace("_", " ")
    return target, (
        f"signal to treat before collapse since the prior scan ({why}): collapse risk raised "
        f"from {before} to {target.value}"
    )


def apply_comparison(current: SpineReport, comparison: dict[str, Any]) -> SpineReport:
    """The ``current`` report with ``comparison``'s verdict on its vertebrae.

    ``comparison``: :func:`compare_reports` (prior, ``current``). Per vertebra:
    ``treat_signal`` (true/false; null when the level was not on the prior scan),
    ``treat_signal_reasons`` (the comparison's reasons), ``change_flags`` (its flags); a level
    with the signal has its ``collapse_risk`` raised (:data:`RAISE_TO_HIGH_FLAGS`: high; other
    weakening: at least moderate) and a reason first in ``reasons`` says why.
    ``scan.compared_with`` names the prior report. Raises :class:`ReportFormatError` for a
    report that already carries a comparison (the raise would be counted twice).
    """
    if current.scan.compared_with is not None:
        raise ReportFormatError(
            "current report: scan.compared_with is already set "
            f"({current.scan.compared_with.to_json_dict()!r:.80}): apply a comparison to a "
            "fresh report",
            field="scan.compared_with",
        )
    by_level = {str(e.get("level")): e for e in comparison.get("levels") or []}
    vertebrae = []
    for v in current.vertebrae:
        found = by_level.get(str(v.level.value))
        if found is None or not found.get("in_prior"):
            change = ChangeRecord(
                treat_signal=None,
                reasons=("not on the prior scan: no comparison",),
                change_flags=tuple(found.get("flags") or []) if found else (),
            )
            vertebrae.append(v.with_change(change))
            continue
        change = ChangeRecord(
            treat_signal=bool(found.get("signal_to_treat")),
            reasons=tuple(str(r) for r in found.get("reasons") or []),
            change_flags=tuple(str(f) for f in found.get("flags") or []),
        )
        raised = _raised(found, v.collapse_risk) if change.treat_signal else None
        risk = None
        if raised is not None:
            risk = replace(v.risk, collapse_risk=raised[0], reasons=(raised[1], *v.risk.reasons))
        vertebrae.append(v.with_change(change, risk=risk))
    prior = comparison.get("prior") or {}
    compared = ComparedWith(
        source=prior.get("source"),
        study_date=prior.get("study_date"),
        analysed_at=prior.get("analysed_at"),
        interval_days=comparison.get("interval_days"),
    )
    return replace(
        current, scan=current.scan.with_fields(compared_with=compared), vertebrae=tuple(vertebrae)
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_comparison_text(comparison: Mapping[str, Any]) -> str:
    """A plain-text table of :func:`compare_reports`' result for a terminal (one line per level)."""
    p, c = comparison["prior"], comparison["current"]
    lines = [
        f"prior:   {p['source']}" + (f"  ({p['study_date']})" if p["study_date"] else ""),
        f"current: {c['source']}" + (f"  ({c['study_date']})" if c["study_date"] else ""),
    ]
    if comparison["interval_days"] is not None:
        lines.append(f"interval: {comparison['interval_days']} days")
    lines.append("")
    header = (
        f"{'level':<6}{'d ant mm':>9}{'d mid mm':>9}{'d post mm':>10}{'grade':>7}"
        f"{'d HU':>7}{'lytic ml':>14}  {'treat':<6}flags"
    )
    lines += [header, "-" * len(header)]
    for e in comparison["levels"]:
        g = e["genant_grade"]
        grade = f"{_fmt(g['prior'], 'd')}>{_fmt(g['current'], 'd')}"
        ml = e["lytic_volume_ml"]
        lytic = f"{_fmt(ml['prior'], '.2f')}>{_fmt(ml['current'], '.2f')}"
        lines.append(
            f"{e['level']:<6}{_fmt(e['height_anterior_mm']['change_mm'], '+.1f'):>9}"
            f"{_fmt(e['height_middle_mm']['change_mm'], '+.1f'):>9}"
            f"{_fmt(e['height_posterior_mm']['change_mm'], '+.1f'):>10}{grade:>7}"
            f"{_fmt(e['trabecular_hu_median']['change_hu'], '+.0f'):>7}{lytic:>14}  "
            f"{'YES' if e['signal_to_treat'] else '':<6}{', '.join(e['flags'])}"
        )
    signal = comparison["summary"]["signal_to_treat"]
    lines.append("")
    if signal:
        lines.append("Signal to treat before collapse: " + ", ".join(signal))
        for e in comparison["levels"]:
            if e["signal_to_treat"]:
                lines.append(f"  {e['level']}: " + "; ".join(e["reasons"]))
    else:
        lines.append("No level shows the signal to treat before collapse.")
    return "\n".join(lines)
