"""Diffuse infiltration: a vertebra whose trabecular density is far below the patient's own spine.

Multiple myeloma (and diffuse metastatic disease) may replace the marrow of a whole vertebral body
without any focal lesion: the body then stands out only by being much less dense than the same
patient's other vertebrae. Population thresholds (Pickhardt 2013) cannot see it -- an infiltrated
level of a young patient can still read "normal" -- so the comparison is within the scan.

Method (:func:`assess_diffuse_infiltration`, a pure function of the per-level trabecular
densities of one scan; :func:`spinewatch.imaging.analysis.analyze` passes each body's
lesion-robust trabecular background, ``LyticFindings.background_hu``, so a focal lesion does not
pass for diffuse loss):

* Reference levels: the *other* levels whose density was measured on a whole body
  (``LevelDensity.reliable``: not truncated by the scan, no cement, not a sliver). At least
  :data:`MIN_REFERENCE_LEVELS` are needed, else the verdict is None ("not assessable").
* Expected density at the tested level: a robust line through the reference levels' densities
  against their cranio-caudal rank -- Siegel's repeated-median regression (Siegel, "Robust
  regression using repeated medians", Biometrika 1982;69:242-4; breakdown point 50 %), so the
  normal cranio-caudal gradient (thoracic bodies denser than lumbar) is followed and up to half
  of the reference levels may be infiltrated themselves without moving the line. With fewer than
  :data:`MIN_LEVELS_FOR_GRADIENT` reference levels the median of the references is used (a
  slope from three points extrapolates badly).
* Verdict: infiltrated when the level lies below the expected value by at least
  ``max(MIN_DROP_HU, NOISE_FACTOR x s)``, where ``s`` is the robust scatter (1.4826 x MAD) of the
  reference levels about the line, at least :data:`MIN_SCATTER_HU`. ``MIN_DROP_HU`` (40 HU) is
  about one between-person SD of L1 attenuation at a given age (38-44 HU; Jang et al., Radiology
  2019;291:360-7): one vertebra as far below its own spine as one person lies below the next is
  no longer normal variation. Both numbers are engineering choices on that scale, not published
  cut-offs for myeloma.

The result is reported per level as ``diffuse_infiltration`` (True/False/None) and
``diffuse_infiltration_hu_below_own`` (expected minus measured HU; positive means below its own
spine).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from spinewatch.core.levels import VertebralLevel

__all__ = [
    "MIN_DROP_HU",
    "MIN_LEVELS_FOR_GRADIENT",
    "MIN_REFERENCE_LEVELS",
    "MIN_SCATTER_HU",
    "NOISE_FACTOR",
    "InfiltrationFinding",
    "LevelDensity",
    "assess_diffuse_infiltration",
    "repeated_median_line",
]

#: At least this many other, reliably measured levels are needed for a verdict.
MIN_REFERENCE_LEVELS = 3
#: With at least this many reference levels the cranio-caudal gradient is fitted; below, the
#: reference median is the expectation.
MIN_LEVELS_FOR_GRADIENT = 4
#: A level is infiltrated when it lies at least this far (HU) below its expected value ...
MIN_DROP_HU = 40.0
#: ... and at least this many robust scatters of the reference levels about their line ...
NOISE_FACTOR = 3.0
#: ... the scatter taken as at least this (HU): with a handful of levels the MAD may be ~0.
MIN_SCATTER_HU = 8.0


@dataclass(frozen=True)
class LevelDensity:
    """The trabecular density of one level (HU, None when not measured) and whether it was
    measured on a whole body (``reliable``: not truncated, no cement, not a sliver)."""

    level: VertebralLevel
    median_hu: float | None
    reliable: bool


@dataclass(frozen=True)
class InfiltrationFinding:
    """The verdict for one level: ``infiltrated`` (None: not assessable), the ``expected_hu``
    from the patient's other levels, ``hu_below_own`` (expected minus measured; positive =
    below), the threshold used (HU) and the number of reference levels."""

    level: VertebralLevel
    infiltrated: bool | None
    expected_hu: float | None
    hu_below_own: float | None
    threshold_hu: float | None
    n_reference: int


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise ValueError("median of no values")
    mid = n // 2
    return s[mid] if n % 2 else 0.5 * (s[mid - 1] + s[mid])


def repeated_median_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Siegel's repeated-median line through ``points`` (x, y): ``(slope, intercept)``.

    slope = median over i of the median over j != i of the pairwise slopes; intercept = median of
    ``y - slope x``. Needs at least two distinct x.
    """
    if len({x for x, _ in points}) < 2:
        raise ValueError("repeated_median_line needs at least two distinct x values")
    inner = []
    for i, (xi, yi) in enumerate(points):
        slopes = [(yj - yi) / (xj - xi) for j, (xj, yj) in enumerate(points) if j != i and xj != xi]
        if slopes:
            inner.append(_median(slopes))
    slope = _median(inner)
    intercept = _median([y - slope * x for x, y in points])
    return slope, intercept


def _expected(reference: list[tuple[float, float]], x: float) -> tuple[float, float]:
    """(expected HU at rank ``x``, robust scatter of the references about the model)."""
    if len(reference) >= MIN_LEVELS_FOR_GRADIENT:
        slope, intercept = repeated_median_line(reference)
    else:
        slope, intercept = 0.0, _median([y for _, y in reference])
    residuals = [y - (slope * xr + intercept) for xr, y in reference]
    scatter = 1.4826 * _median([abs(r) for r in residuals])
    return slope * x + intercept, scatter


def assess_diffuse_infiltration(
    levels: Iterable[LevelDensity],
) -> dict[VertebralLevel, InfiltrationFinding]:
    """The diffuse-infiltration verdict of every level of one scan (see the module docstring).

    A level without a reliable density gets ``infiltrated=None``; so does any level when fewer
    than :data:`MIN_REFERENCE_LEVELS` other reliable levels exist.
    """
    items = list(levels)
    usable = {
        d.level: float(d.median_hu)
        for d in items
        if d.reliable and d.median_hu is not None and math.isfinite(d.median_hu)
    }
    out: dict[VertebralLevel, InfiltrationFinding] = {}
    for d in items:
        reference = [(float(lv.rank), hu) for lv, hu in usable.items() if lv is not d.level]
        if d.level not in usable or len(reference) < MIN_REFERENCE_LEVELS:
            out[d.level] = InfiltrationFinding(d.level, None, None, None, None, len(reference))
            continue
        expected, scatter = _expected(reference, float(d.level.rank))
        threshold = max(MIN_DROP_HU, NOISE_FACTOR * max(scatter, MIN_SCATTER_HU))
        below = expected - usable[d.level]
        out[d.level] = InfiltrationFinding(
            level=d.level,
            infiltrated=below >= threshold,
            expected_hu=expected,
            hu_below_own=below,
            threshold_hu=threshold,
            n_reference=len(reference),
        )
    return out
