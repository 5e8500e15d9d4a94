"""Follow-up: compare a patient's current spine report with the prior one, level by level.

Both inputs are SpineWatch report dicts (the JSON written by :mod:`spinewatch.imaging.report`,
``{"scan": {...}, "vertebrae": [...]}``), never the in-memory classes, so a report stored months
ago compares with today's. The result is a JSON-able dict: per vertebral level (cranio-caudal), the
change in the three body heights (mm and %), in trabecular attenuation (HU), in lytic volume (ml)
and fraction; flags for what changed; and the *signal to treat*: a lesion that is new or growing,
or a vertebra that is weakening but has not yet collapsed -- the moment vertebroplasty is easiest
and prevents the collapse.

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

>>> prior = {"scan": {"labels": "a.nii.gz"}, "vertebrae": [{"level": "L1",
...     "height_anterior_mm": 25.0, "lytic_volume_ml": 0.0, "genant_grade": 0}]}
>>> current = {"scan": {"labels": "b.nii.gz"}, "vertebrae": [{"level": "L1",
...     "height_anterior_mm": 24.6, "lytic_volume_ml": 1.2, "genant_grade": 0}]}
>>> result = compare_reports(prior, current)
>>> result["levels"][0]["flags"], result["levels"][0]["signal_to_treat"]
(['new_lesion'], True)
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spinewatch.core.errors import InputError
from spinewatch.imaging.limits import (
    InputLimits,
    InputTooLargeError,
    JsonInputError,
    check_json_value,
    current_limits,
    format_bytes,
    parse_json,
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
_NUMERIC_FIELDS = (
    *_HEIGHTS,
    "reference_height_mm",
    "height_loss_pct",
    "trabecular_hu_median",
    "trabecular_hu_mean",
    "lytic_volume_ml",
    "lytic_fraction",
    "cement_volume_ml",
)
#: imaging.risk.CollapseRisk values and ranks (repeated for a light import; a test keeps them equal)
_RISK_RANK = {"low": 0, "not_assessable": 1, "moderate": 2, "high": 3}
_RISKS = tuple(_RISK_RANK)
RAISE_TO_HIGH_FLAGS = ("new_fracture", "worse_fracture", "new_lesion", "lesion_growth")
"""Change flags that, with the signal to treat, raise the level's collapse risk to high."""


#: Largest magnitude a measurement of a report may have (mm, HU, ml, %): far beyond anything a
#: body holds, small enough that differences and percentages stay finite.
MAX_MAGNITUDE = 1e6


class ReportFormatError(InputError):
    """A file or dict that is not a SpineWatch report (names the file, the key and the value)."""


# -- loading and validation -------------------------------------------------------------------


def load_report(path: Path, *, limits: InputLimits | None = None) -> dict[str, Any]:
    """Read a SpineWatch report JSON file and check its shape.

    Raises :class:`ReportFormatError` naming the file (with line and column for malformed JSON,
    ``NaN``/``Infinity`` or nesting deeper than ``limits.max_json_depth``),
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
    _validate_report(data, str(path))
    assert isinstance(data, dict)
    return data


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _validate_report(report: object, source: str) -> list[Mapping[str, Any]]:
    """Check ``report`` is a SpineWatch report; return its vertebra entries.

    Anything nested deeper than the limit or any non-finite number, wherever it is (a text
    field included), is refused: a report is written back out as JSON, which has no NaN.
    """
    if not isinstance(report, Mapping):
        raise ReportFormatError(
            f"{source}: not a SpineWatch report: expected a JSON object with 'scan' and "
            f"'vertebrae', got {type(report).__name__}"
        )
    try:
        check_json_value(report, source=source, max_depth=current_limits().max_json_depth)
    except JsonInputError as exc:
        raise ReportFormatError(str(exc)) from None
    for key in ("scan", "vertebrae"):
        if key not in report:
            raise ReportFormatError(
                f"{source}: not a SpineWatch report: key {key!r} missing "
                f"(keys found: {sorted(map(str, report))[:8]})"
            )
    if not isinstance(report["scan"], Mapping):
        raise ReportFormatError(
            f"{source}: key 'scan': expected an object, got {report['scan']!r:.60}"
        )
    vertebrae = report["vertebrae"]
    if not isinstance(vertebrae, Sequence) or isinstance(vertebrae, str | bytes):
        raise ReportFormatError(
            f"{source}: key 'vertebrae': expected a list, got {vertebrae!r:.60}"
        )
    seen: dict[str, int] = {}
    for i, entry in enumerate(vertebrae):
        where = f"{source}: vertebrae[{i}]"
        if not isinstance(entry, Mapping):
            raise ReportFormatError(f"{where}: expected an object, got {entry!r:.60}")
        level = entry.get("level")
        if not isinstance(level, str):
            raise ReportFormatError(
                f"{where}.level: expected a level name like 'L1', got {level!r}"
            )
        _parse_level(level, f"{where}.level")
        if level in seen:
            raise ReportFormatError(
                f"{where}.level: {level!r} appears twice (also vertebrae[{seen[level]}])"
            )
        seen[level] = i
        for key in _NUMERIC_FIELDS:
            value = entry.get(key)
            if value is not None and not (
                _is_number(value) and math.isfinite(value) and abs(value) <= MAX_MAGNITUDE
            ):
                raise ReportFormatError(
                    f"{where}.{key}: expected a finite number of magnitude at most "
                    f"{MAX_MAGNITUDE:g} or null, got {value!r:.60}"
                )
        grade = entry.get("genant_grade")
        if grade is not None and (
            not isinstance(grade, int) or isinstance(grade, bool) or not 0 <= grade <= 3
        ):
            raise ReportFormatError(
                f"{where}.genant_grade: expected 0, 1, 2, 3 or null, got {grade!r:.60}"
            )
        risk = entry.get("collapse_risk")
        if risk is not None and risk not in _RISKS:
            raise ReportFormatError(
                f"{where}.collapse_risk: expected one of {_RISKS} or null, got {risk!r:.60}"
            )
    return list(vertebrae)


def _parse_level(name: str, where: str) -> Any:
    from spinewatch.core.levels import VertebralLevel

    try:
        return VertebralLevel.parse(name)
    except (InputError, ValueError, KeyError) as exc:
        raise ReportFormatError(f"{where}: {name!r} is not a vertebral level ({exc})") from None


def _study_date(scan: Mapping[str, Any], source: str) -> dt.date | None:
    value = scan.get("study_date")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        for parse in (dt.date.fromisoformat, lambda s: dt.datetime.strptime(s, "%Y%m%d").date()):
            try:
                return parse(text[:10] if "T" in text else text)
            except ValueError:
                continue
    raise ReportFormatError(
        f"{source}: scan.study_date: expected a date like '2024-03-01' or '20240301', "
        f"got {value!r:.60}"
    )


# -- the comparison ---------------------------------------------------------------------------


def _num(entry: Mapping[str, Any] | None, key: str) -> float | None:
    if entry is None:
        return None
    value = entry.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


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


def _cement(entry: Mapping[str, Any] | None) -> bool | None:
    """True/False when known, None when the report had no CT (cement not measured)."""
    if entry is None:
        return None
    flags = entry.get("quality_flags") or ()
    if any(isinstance(f, str) and ("cement" in f or "metal" in f) for f in flags):
        return True
    volume = _num(entry, "cement_volume_ml")
    if volume is None:
        return None
    return volume >= CEMENT_PRESENT_ML


def _compare_level(
    level: str, prior: Mapping[str, Any] | None, current: Mapping[str, Any] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "level": level,
        "in_prior": prior is not None,
        "in_current": current is not None,
    }
    flags: list[str] = []
    reasons: list[str] = []

    for key in _HEIGHTS:
        p, c = _num(prior, key), _num(current, key)
        out[key] = {"prior": p, "current": c, "change_mm": _diff(p, c, 1), "change_pct": _pct(p, c)}
    p_loss, c_loss = _num(prior, "height_loss_pct"), _num(current, "height_loss_pct")
    out["height_loss_pct"] = {
        "prior": p_loss,
        "current": c_loss,
        "change": _diff(p_loss, c_loss, 1),
    }
    p_grade = prior.get("genant_grade") if prior is not None else None
    c_grade = current.get("genant_grade") if current is not None else None
    out["genant_grade"] = {"prior": p_grade, "current": c_grade}
    out["deformity"] = {
        "prior": prior.get("deformity") if prior is not None else None,
        "current": current.get("deformity") if current is not None else None,
    }
    p_hu, c_hu = _num(prior, "trabecular_hu_median"), _num(current, "trabecular_hu_median")
    out["trabecular_hu_median"] = {
        "prior": p_hu,
        "current": c_hu,
        "change_hu": _diff(p_hu, c_hu, 0),
    }
    p_ml, c_ml = _num(prior, "lytic_volume_ml"), _num(current, "lytic_volume_ml")
    out["lytic_volume_ml"] = {
        "prior": p_ml,
        "current": c_ml,
        "change_ml": _diff(p_ml, c_ml, 2),
        "change_pct": _pct(p_ml, c_ml),
    }
    p_fr, c_fr = _num(prior, "lytic_fraction"), _num(current, "lytic_fraction")
    out["lytic_fraction"] = {"prior": p_fr, "current": c_fr, "change": _diff(p_fr, c_fr, 3)}
    p_cem, c_cem = _cement(prior), _cement(current)
    out["cement"] = {"prior": p_cem, "current": c_cem}
    out["collapse_risk"] = {
        "prior": prior.get("collapse_risk") if prior is not None else None,
        "current": current.get("collapse_risk") if current is not None else None,
    }

    if prior is None:
        flags.append("level_not_in_prior")
        reasons.append(f"{level} was not measured on the prior scan: nothing to compare")
    if current is None:
        flags.append("level_not_in_current")
        reasons.append(f"{level} was not measured on the current scan")

    if prior is not None and current is not None:
        # Lesions.
        if p_ml is not None and c_ml is not None:
            if p_ml < NEGLIGIBLE_LYTIC_ML and c_ml >= NEW_LESION_MIN_ML:
                flags.append("new_lesion")
                reasons.append(f"new lytic lesion: {c_ml:.2f} ml (prior {p_ml:.2f} ml)")
            elif (
                p_ml >= NEGLIGIBLE_LYTIC_ML
                and c_ml - p_ml > GROWTH_MIN_ML
                and (c_ml - p_ml) / p_ml * 100.0 > GROWTH_MIN_PCT
            ):
                flags.append("lesion_growth")
                reasons.append(
                    f"lytic lesion grew from {p_ml:.2f} to {c_ml:.2f} ml "
                    f"(+{(c_ml - p_ml) / p_ml * 100.0:.0f}%)"
                )
        # Fractures and height.
        drops = [(key, _num(prior, key), _num(current, key)) for key in _HEIGHTS]
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
        if isinstance(p_grade, int) and isinstance(c_grade, int):
            if p_grade == 0 and c_grade >= 1:
                flags.append("new_fracture")
                reasons.append(f"new fracture: Genant grade 0 → {c_grade}")
            elif p_grade >= 1 and c_grade > p_grade:
                flags.append("worse_fracture")
                reasons.append(f"fracture worse: Genant grade {p_grade} → {c_grade}")
            elif (
                p_grade >= 1
                and big_drop
                and p_loss is not None
                and c_loss is not None
                and c_loss - p_loss >= HEIGHT_LOSS_PROGRESSION_PCT
            ):
                flags.append("worse_fracture")
                reasons.append(
                    f"fracture progressing: height loss {p_loss:.0f}% → {c_loss:.0f}%, {drop_text}"
                )
            elif p_grade == 0 and c_grade == 0 and big_drop:
                flags.append("height_loss")
                reasons.append(f"early height loss without fracture: {drop_text}")
        elif big_drop:
            # Grades unknown (e.g. no reference height): judge on the heights alone.
            flags.append("height_loss")
            reasons.append(f"height loss: {drop_text}")
        # Density.
        if p_hu is not None and c_hu is not None and p_hu - c_hu >= DENSITY_DROP_HU:
            flags.append("density_drop")
            reasons.append(f"trabecular attenuation fell {p_hu:.0f} → {c_hu:.0f} HU")
        # Treatment.
        if p_cem is False and c_cem is True:
            flags.append("newly_treated")
            reasons.append("cement present now, not on the prior scan: treated in between")

    weakening = [
        f
        for f in flags
        if f
        in (
            "new_lesion",
            "lesion_growth",
            "new_fracture",
            "worse_fracture",
            "height_loss",
            "density_drop",
        )
    ]
    signal = False
    if weakening:
        if c_cem:
            reasons.append("already cemented: no further signal")
        elif isinstance(c_grade, int) and c_grade >= COLLAPSED_GRADE:
            reasons.append(f"already collapsed (Genant grade {c_grade}): too late to prevent")
        else:
            signal = True
    out["flags"] = flags
    out["signal_to_treat"] = signal
    out["reasons"] = reasons
    return out


def compare_reports(
    prior: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    prior_source: str = "prior report",
    current_source: str = "current report",
) -> dict[str, Any]:
    """Compare two SpineWatch report dicts level by level; return a JSON-able dict.

    ``prior_source``/``current_source`` name the inputs in error messages (the file paths when
    read from disk). Raises :class:`ReportFormatError` when either is not a SpineWatch report, or
    when the current study date precedes the prior one (arguments swapped?).

    Result: ``{"prior": {...}, "current": {...}, "interval_days": int | None, "thresholds": {...},
    "levels": [...], "summary": {...}}``; each level entry carries ``{"prior", "current",
    "change_*"}`` blocks per measurement, ``flags``, ``signal_to_treat`` and ``reasons``.
    Levels are in cranio-caudal order, every level present in either report.
    """
    prior_v = _validate_report(prior, prior_source)
    current_v = _validate_report(current, current_source)
    p_date = _study_date(prior["scan"], prior_source)
    c_date = _study_date(current["scan"], current_source)
    interval: int | None = None
    if p_date is not None and c_date is not None:
        interval = (c_date - p_date).days
        if interval < 0:
            raise ReportFormatError(
                f"{current_source}: scan.study_date {c_date.isoformat()} is before the prior "
                f"study's {p_date.isoformat()} ({prior_source}): are PRIOR and CURRENT swapped?"
            )

    by_prior = {str(v["level"]): v for v in prior_v}
    by_current = {str(v["level"]): v for v in current_v}
    names = sorted(set(by_prior) | set(by_current), key=lambda n: _parse_level(n, n))
    levels = [_compare_level(n, by_prior.get(n), by_current.get(n)) for n in names]
    for entry in levels:
        hu = entry["trabecular_hu_median"]
        hu["change_hu_per_year"] = (
            round(hu["change_hu"] * 365.25 / interval, 1)
            if interval and hu["change_hu"] is not None
            else None
        )

    def scan_info(report: Mapping[str, Any], source: str, date: dt.date | None) -> dict[str, Any]:
        scan = report["scan"]
        return {
            "source": source,
            "ct": scan.get("ct"),
            "labels": scan.get("labels"),
            "study_date": date.isoformat() if date else None,
            "analysed_at": scan.get("analysed_at"),
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


def _raised(entry: Mapping[str, Any], current_risk: object) -> tuple[str, str] | None:
    """``(new risk, reason)`` when the level's signal raises its risk, else None."""
    flags = list(entry.get("flags") or [])
    target = "high" if any(f in RAISE_TO_HIGH_FLAGS for f in flags) else "moderate"
    now = current_risk if isinstance(current_risk, str) and current_risk in _RISK_RANK else None
    if now is not None and _RISK_RANK[now] >= _RISK_RANK[target]:
        return None
    why = "; ".join(str(r) for r in entry.get("reasons") or [])
    before = (now or "not rated").replace("_", " ")
    return target, (
        f"signal to treat before collapse since the prior scan ({why}): collapse risk raised "
        f"from {before} to {target}"
    )


def apply_comparison(current: Mapping[str, Any], comparison: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the ``current`` report whose vertebrae carry ``comparison``'s verdict.

    ``comparison``: :func:`compare_reports` (prior, ``current``). Per vertebra:
    ``treat_signal`` (true/false; null when the level was not on the prior scan),
    ``treat_signal_reasons`` (the comparison's reasons), ``change_flags`` (its flags); a level
    with the signal has its ``collapse_risk`` raised (:data:`RAISE_TO_HIGH_FLAGS`: high; other
    weakening: at least moderate) and a reason first in ``reasons`` says why.
    ``scan.compared_with`` names the prior report. Raises :class:`ReportFormatError` for a
    report that already carries a comparison (the raise would be counted twice).
    """
    vertebrae = _validate_report(current, "current report")
    scan = current["scan"]
    if scan.get("compared_with"):
        raise ReportFormatError(
            "current report: scan.compared_with is already set "
            f"({scan.get('compared_with')!r:.80}): apply a comparison to a fresh report"
        )
    by_level = {str(e.get("level")): e for e in comparison.get("levels") or []}
    out = copy.deepcopy(dict(current))
    out_vertebrae = []
    for entry in vertebrae:
        v = dict(copy.deepcopy(entry))
        found = by_level.get(str(v["level"]))
        if found is None or not found.get("in_prior"):
            v["treat_signal"] = None
            v["treat_signal_reasons"] = ["not on the prior scan: no comparison"]
            v["change_flags"] = list(found.get("flags") or []) if found else []
        else:
            v["treat_signal"] = bool(found.get("signal_to_treat"))
            v["treat_signal_reasons"] = [str(r) for r in found.get("reasons") or []]
            v["change_flags"] = [str(f) for f in found.get("flags") or []]
            raised = _raised(found, v.get("collapse_risk")) if v["treat_signal"] else None
            if raised is not None:
                v["collapse_risk"] = raised[0]
                v["reasons"] = [raised[1], *(v.get("reasons") or [])]
        out_vertebrae.append(v)
    out["vertebrae"] = out_vertebrae
    prior = comparison.get("prior") or {}
    out["scan"] = {
        **dict(scan),
        "compared_with": {
            "source": prior.get("source"),
            "study_date": prior.get("study_date"),
            "analysed_at": prior.get("analysed_at"),
            "interval_days": comparison.get("interval_days"),
        },
    }
    return out


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
