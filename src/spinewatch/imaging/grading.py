"""Genant grades of a whole spine: each vertebra against its level's normal shape and the
posterior height expected from its nearest *unfractured* neighbours.

:func:`spinewatch.core.genant.assess_vertebra` grades one vertebra given the posterior height
its neighbours predict (``reference_mm``). Choosing that reference is the part that needs the
whole spine, because a fractured neighbour must not set it (a grade-2 crush next to a grade-3
one was graded 0 when the reference came from the collapsed neighbour). :func:`grade_spine`:

1. grades every measured vertebra **within itself** (no reference): anterior, middle and
   posterior height against the level's normal shape (:mod:`spinewatch.core.vertebral_shape`).
   A vertebra graded >= 1 here is deformed and is no neighbour for the others;
2. predicts each vertebra's posterior height from every usable neighbour up to
   :data:`MAX_DISTANCE` levels away on each side: the neighbour's posterior height times the
   normal level-to-level ratio (:func:`~spinewatch.core.vertebral_shape.posterior_scale`);
3. combines them (:func:`expected_posterior_mm`): with a cranial and a caudal prediction that
   agree within :data:`AGREEMENT_RATIO`, their interpolation, weighted by distance (heights grow
   along the spine, so the nearer side counts more); otherwise the robust
   :func:`~spinewatch.core.genant.reference_height_mm` of all predictions (the taller ones, since
   a fracture can only lower a neighbour, never raise it); on one side only, the nearest
   prediction unless a further one on that side is taller by more than the agreement ratio;
4. grades each vertebra against that reference; a vertebra that is now graded >= 1 (a crush the
   within-vertebra look cannot see) joins the excluded neighbours, and steps 2-4 repeat until no
   new fracture appears (the excluded set only grows, so this ends; at most one pass per
   vertebra).

A truncated vertebra (no heights) is neither graded nor used as a neighbour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from spinewatch.core.genant import GenantAssessment, assess_vertebra, reference_height_mm
from spinewatch.core.levels import VertebralLevel, neighbours
from spinewatch.core.vertebral_shape import posterior_scale

__all__ = [
    "AGREEMENT_RATIO",
    "MAX_DISTANCE",
    "Heights",
    "SpineGrade",
    "expected_posterior_mm",
    "grade_spine",
]

#: Two predictions of a posterior height agree when the lower is at least this fraction of the
#: higher (a 15 % gap is about three times the assumed SD of the level-to-level ratio).
AGREEMENT_RATIO = 0.85
#: Neighbours are looked for up to this many levels away on each side.
MAX_DISTANCE = 2


class Heights(Protocol):
    """Anything with the three body heights in mm (e.g. ``imaging.heights.BodyHeights``)."""

    @property
    def anterior_mm(self) -> float: ...

    @property
    def middle_mm(self) -> float: ...

    @property
    def posterior_mm(self) -> float: ...


@dataclass(frozen=True)
class SpineGrade:
    """The grade of one vertebra in its spine: the assessment, the expected posterior height
    (mm, None without a usable neighbour) and the neighbours it was predicted from."""

    assessment: GenantAssessment
    reference_mm: float | None
    reference_levels: tuple[VertebralLevel, ...]


def _side_prediction(
    near: list[tuple[int, VertebralLevel, float]],
) -> tuple[int, VertebralLevel, float] | None:
    """The prediction of one side, nearest first: the nearest, unless a further one is clearly
    taller (then the nearest is probably a fracture the within-vertebra look could not see)."""
    if not near:
        return None
    best = near[0]
    for cand in near[1:]:
        if best[2] < AGREEMENT_RATIO * cand[2]:
            best = cand
    return best


def _distances(level: VertebralLevel, present: list[VertebralLevel]) -> dict[VertebralLevel, int]:
    out: dict[VertebralLevel, int] = {}
    for d in range(MAX_DISTANCE, 0, -1):
        for lv in neighbours(level, present, max_distance=d):
            out[lv] = d
    return out


def expected_posterior_mm(
    level: VertebralLevel,
    posterior_mm: Mapping[VertebralLevel, float],
    *,
    exclude: frozenset[VertebralLevel] = frozenset(),
) -> tuple[float | None, tuple[VertebralLevel, ...]]:
    """The posterior height (mm) expected at ``level`` from its neighbours, and which ones.

    ``posterior_mm``: measured posterior heights by level (``level`` itself may be among them;
    it is not used). ``exclude``: levels not to use (fractured). See the module docstring.
    """
    usable = [lv for lv in posterior_mm if lv is not level and lv not in exclude]
    dist = _distances(level, usable)
    sides: dict[bool, list[tuple[int, VertebralLevel, float]]] = {True: [], False: []}
    for lv in sorted(dist, key=lambda x: (dist[x], x.rank)):
        sides[lv < level].append((dist[lv], lv, posterior_mm[lv] * posterior_scale(lv, level)))
    cranial, caudal = _side_prediction(sides[True]), _side_prediction(sides[False])
    if cranial is not None and caudal is not None:
        lo, hi = sorted((cranial[2], caudal[2]))
        if lo >= AGREEMENT_RATIO * hi:
            d_up, d_down = cranial[0], caudal[0]
            value = (d_down * cranial[2] + d_up * caudal[2]) / (d_up + d_down)
            return value, (cranial[1], caudal[1])
        every = sorted(sides[True] + sides[False], key=lambda c: -c[2])
        ref = reference_height_mm([p for _, _, p in every])
        upper = every[: (len(every) + 1) // 2]  # the predictions reference_height_mm uses
        return ref, tuple(lv for _, lv, _ in upper)
    one = cranial if cranial is not None else caudal
    if one is None:
        return None, ()
    return one[2], (one[1],)


def grade_spine(
    heights: Mapping[VertebralLevel, Heights | None],
) -> dict[VertebralLevel, SpineGrade]:
    """Genant grades of every vertebra of ``heights`` that has heights (None: not measured).

    Keys may be levels or their names; the result is keyed by :class:`VertebralLevel`.
    """
    measured = {VertebralLevel.parse(lv): h for lv, h in heights.items() if h is not None}
    posterior = {lv: h.posterior_mm for lv, h in measured.items()}

    def grade(lv: VertebralLevel, ref: float | None) -> GenantAssessment:
        h = measured[lv]
        return assess_vertebra(
            anterior_mm=h.anterior_mm,
            middle_mm=h.middle_mm,
            posterior_mm=h.posterior_mm,
            reference_mm=ref,
            level=lv,
        )

    excluded = frozenset(lv for lv in measured if grade(lv, None).is_fracture)
    result: dict[VertebralLevel, SpineGrade] = {}
    for _ in range(len(measured) + 1):
        result = {}
        for lv in measured:
            ref, used = expected_posterior_mm(lv, posterior, exclude=excluded)
            result[lv] = SpineGrade(grade(lv, ref), ref, used)
        newly = frozenset(lv for lv, g in result.items() if g.assessment.is_fracture)
        if newly <= excluded:
            break
        excluded = excluded | newly
    return result
