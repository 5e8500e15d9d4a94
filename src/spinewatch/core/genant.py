"""Genant semi-quantitative grading of vertebral fractures (Genant et al., JBMR 1993).

A Genant grade is the largest *reduction of a body height against the height expected for that
vertebra*: < 20 % normal, 20-25 % mild, 25-40 % moderate, > 40 % severe; the type follows the
height that is reduced -- anterior (wedge), middle (biconcave), posterior or all (crush).

Heights are in millimetres: anterior (Ha), middle (Hm) and posterior (Hp) height of the body,
measured as :mod:`spinewatch.imaging.heights` does. What each height should be comes from two
places, as a reader grading a radiograph does it:

* the **normal shape of the level** (:mod:`spinewatch.core.vertebral_shape`): the expected
  ``Ha / Hp`` (``r_a``: 0.92-0.94 in the thoracic spine, 1.10 at L5) and the expected
  ``Hm / ((Ha + Hp) / 2)`` (``r_m`` = 0.922, the normal endplate concavity). Without a level the
  body is taken as rectangular (``r_a = r_m = 1``), Genant's textbook comparison;
* the **neighbours**: ``reference_mm`` is the posterior height expected from the nearest
  unfractured neighbours, already scaled to this level (see :mod:`spinewatch.imaging.grading`).

The expected heights: posterior ``E_p = reference_mm``; the posterior wall that anchors the
anterior and middle expectations is ``P = max(Hp, (1 - NEIGHBOUR_TOLERANCE) * E_p)`` -- the
vertebra's own posterior wall, unless that wall itself falls more than
:data:`NEIGHBOUR_TOLERANCE` short of its neighbours (then the neighbours, less the tolerance,
say better what it was); anterior ``E_a = r_a * P``; middle
``E_m = r_m * (1 + r_a) / 2 * W`` where ``W`` is the wall height in posterior-equivalent mm:
the mean of ``P`` and ``Ha / r_a`` while they agree, ``(1 - NEIGHBOUR_TOLERANCE)`` times the
taller one once one wall is itself reduced (``W = max(mean, 0.9 * max)``, continuous), so a
crushed wall cannot hide a central depression. The reductions, in percent:

* ``anterior_loss_pct`` = 1 - Ha / E_a (decides WEDGE);
* ``middle_loss_pct``   = 1 - Hm / E_m (decides BICONCAVE);
* ``posterior_loss_pct`` = 1 - Hp / E_p (decides CRUSH); without a reference, the posterior
  wall against the anterior one, 1 - Hp * r_a / Ha (a posterior collapse is crush in Genant's
  scheme; a normal L5, taller in front, is not).

The largest reduction decides grade and type (grade 0 -> NONE); exact ties are broken crush >
wedge > biconcave; when every one of the three heights is reduced by 20 % or more, the body is
compressed as a whole and the type is CRUSH whichever height is reduced most.

The descriptive within-vertebra losses are kept too: ``wedge_loss_pct``
= 1 - (Ha / Hp) / r_a, ``biconcave_loss_pct`` = 1 - Hm / (r_m (1 + r_a) / 2 W(Hp, Ha / r_a))
and ``crush_loss_pct`` = 1 - Hp / E_p (None without a reference). Without a reference, or when
the own posterior wall is within the tolerance, these equal the anterior and middle losses.

Percentages are rounded to 9 decimals so that e.g. Ha = 16, Hp = 20 is exactly 20 % (grade 1)
rather than 19.999999999999996 %.

>>> assess_vertebra(anterior_mm=16.0, middle_mm=20.0, posterior_mm=20.0).grade
<GenantGrade.MILD: 1>
>>> assess_vertebra(anterior_mm=28.7, middle_mm=24.0, posterior_mm=26.0, level="L5").grade
<GenantGrade.NORMAL: 0>
"""

from __future__ import annotations

import enum
import math
import numbers
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from spinewatch.core._enum import parse_enum
from spinewatch.core.errors import InputError
from spinewatch.core.levels import VertebralLevel
from spinewatch.core.vertebral_shape import normal_shape

__all__ = [
    "NEIGHBOUR_TOLERANCE",
    "DeformityType",
    "GenantAssessment",
    "GenantError",
    "GenantGrade",
    "assess_vertebra",
    "height_loss_pct",
    "reference_height_mm",
]


class GenantError(InputError):
    """A height or percentage that cannot be graded."""


#: A posterior wall up to this fraction shorter than its neighbours predict is taken as intact
#: (it anchors the vertebra's own anterior and middle expectations). Engineering choice: about
#: twice the measurement error of one height ratio (1-1.5 mm on a 25 mm body, 4-6 %), and about
#: twice the SD assumed for the level-to-level posterior ratio (0.05-0.06).
NEIGHBOUR_TOLERANCE = 0.10


_GRADE_LABELS = {0: "Normal", 1: "Mild", 2: "Moderate", 3: "Severe"}


class GenantGrade(enum.IntEnum):
    """Genant grade: 0 normal (< 20 %), 1 mild (20-25 %), 2 moderate (25-40 %), 3 severe (> 40 %).

    (Boundaries: 20 % is mild, 25 % and 40 % are moderate.)
    """

    NORMAL = 0
    MILD = 1
    MODERATE = 2
    SEVERE = 3

    @property
    def label(self) -> str:
        """Human-readable name (``"Moderate"``)."""
        return _GRADE_LABELS[int(self)]

    @classmethod
    def from_height_loss_pct(cls, height_loss_pct: float) -> GenantGrade:
        """Grade of a height loss in percent.

        p < 20 -> 0; 20 <= p < 25 -> 1; 25 <= p <= 40 -> 2; p > 40 -> 3. A negative loss
        (taller than the reference) is grade 0. Non-numbers, NaN, infinities and p > 100 raise
        :class:`GenantError`.
        """
        p = _finite(height_loss_pct, "height_loss_pct")
        if p > 100.0:
            raise GenantError(
                f"height_loss_pct {height_loss_pct!r} is invalid; expected a percentage <= 100"
            )
        if p < 20.0:
            return cls.NORMAL
        if p < 25.0:
            return cls.MILD
        if p <= 40.0:
            return cls.MODERATE
        return cls.SEVERE

    @classmethod
    def parse(cls, value: GenantGrade | int | str) -> GenantGrade:
        """A member, 0..3, ``"2"`` or a name (``"moderate"``); else :class:`GenantError`."""
        return parse_enum(cls, value, what="Genant grade", error=GenantError)


class DeformityType(enum.Enum):
    """Which height is reduced: anterior (wedge), middle (biconcave), posterior or all (crush)."""

    NONE = "none"
    WEDGE = "wedge"
    BICONCAVE = "biconcave"
    CRUSH = "crush"

    @property
    def label(self) -> str:
        """Human-readable name (``"Biconcave"``)."""
        return self.value.capitalize()

    @classmethod
    def parse(cls, value: DeformityType | str) -> DeformityType:
        """A member, its value or name (any case); else :class:`GenantError`."""
        return parse_enum(cls, value, what="deformity type", error=GenantError)


@dataclass(frozen=True)
class GenantAssessment:
    """Grade and type of one vertebra, with the losses (percent) they were derived from.

    ``height_loss_pct`` is the reduction that decided the grade (>= 0): the largest of
    ``anterior_loss_pct``, ``middle_loss_pct`` and ``posterior_loss_pct`` (each height against
    its expected value, see the module docstring). ``wedge_loss_pct`` and
    ``biconcave_loss_pct`` are the within-vertebra comparisons against the level's normal
    shape; ``crush_loss_pct`` is the posterior height against the neighbours (None without a
    reference). Losses may be negative (a height above its expected value).
    ``expected_anterior_mm`` / ``expected_middle_mm`` / ``expected_posterior_mm`` are the
    expected heights in mm (the posterior one None without a reference); ``level`` the level
    whose normal shape was used (None: rectangular).
    """

    grade: GenantGrade
    deformity: DeformityType
    height_loss_pct: float
    wedge_loss_pct: float
    biconcave_loss_pct: float
    crush_loss_pct: float | None
    anterior_loss_pct: float | None = None
    middle_loss_pct: float | None = None
    posterior_loss_pct: float | None = None
    expected_anterior_mm: float | None = None
    expected_middle_mm: float | None = None
    expected_posterior_mm: float | None = None
    level: VertebralLevel | None = None

    @property
    def is_fracture(self) -> bool:
        """True from grade 1 (mild) up."""
        return self.grade >= GenantGrade.MILD

    @property
    def label(self) -> str:
        """``"Moderate wedge (32.0 %)"`` or ``"Normal"``."""
        if self.deformity is DeformityType.NONE:
            return self.grade.label
        return f"{self.grade.label} {self.deformity.value} ({self.height_loss_pct:.1f} %)"


def _finite(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GenantError(f"{field} {value!r} is not a number; expected a finite number")
    result = float(value)
    if not math.isfinite(result):
        raise GenantError(f"{field} {value!r} is not finite; expected a finite number")
    return result


def _height(value: object, field: str) -> float:
    result = _finite(value, field)
    if result <= 0.0:
        raise GenantError(f"{field} {value!r} is invalid; expected a positive height in mm")
    return result


def height_loss_pct(height_mm: float, reference_mm: float) -> float:
    """Percent by which ``height_mm`` falls short of ``reference_mm`` (negative when taller).

    Both must be positive finite numbers; the result is rounded to 9 decimals.
    """
    h = _height(height_mm, "height_mm")
    ref = _height(reference_mm, "reference_mm")
    return round(100.0 * (ref - h) / ref, 9)


_MILD_PCT = 20.0


def _walls(posterior: float, anterior: float) -> float:
    """The posterior-equivalent wall height the middle is expected from: the mean of the two
    walls while they agree, the taller one (less the tolerance) once one wall is itself reduced
    by more than twice the tolerance -- so a crushed wall cannot hide a central depression and
    the noise of two agreeing walls is averaged rather than maximised."""
    return max((posterior + anterior) / 2.0, (1.0 - NEIGHBOUR_TOLERANCE) * max(posterior, anterior))


def _loss(height: float, expected: float) -> float:
    return round(100.0 * (expected - height) / expected, 9)


def assess_vertebra(
    *,
    anterior_mm: float,
    middle_mm: float,
    posterior_mm: float,
    reference_mm: float | None = None,
    level: VertebralLevel | str | None = None,
) -> GenantAssessment:
    """Genant grade and deformity type from the three body heights (mm).

    ``reference_mm``: the posterior height expected from the neighbours, scaled to this level
    (:func:`spinewatch.imaging.grading.grade_spine` chooses it), or None. ``level``: the
    vertebra's level, whose normal shape (:func:`spinewatch.core.vertebral_shape.normal_shape`)
    sets the expected ratios; None grades against a rectangular body. See the module docstring.
    """
    ha = _height(anterior_mm, "anterior_mm")
    hm = _height(middle_mm, "middle_mm")
    hp = _height(posterior_mm, "posterior_mm")
    ref = None if reference_mm is None else _height(reference_mm, "reference_mm")
    lv = None if level is None else VertebralLevel.parse(level)
    if lv is None:
        r_a = r_m = 1.0
    else:
        shape = normal_shape(lv)
        r_a, r_m = shape.anterior_ratio.mean, shape.middle_ratio.mean
    wall = (1.0 + r_a) / 2.0 * r_m  # normal Hm per unit of posterior height

    # within the vertebra, against the level's normal shape
    wedge = _loss(ha, r_a * hp)
    biconcave = _loss(hm, wall * _walls(hp, ha / r_a))
    crush = None if ref is None else _loss(hp, ref)

    # each height against its expected value
    p_wall = hp if ref is None else max(hp, (1.0 - NEIGHBOUR_TOLERANCE) * ref)
    e_a = r_a * p_wall
    e_m = wall * _walls(p_wall, ha / r_a)
    anterior = _loss(ha, e_a)
    middle = _loss(hm, e_m)
    posterior = crush if crush is not None else _loss(hp * r_a, ha)

    # Order = tie preference: crush, then wedge, then biconcave.
    candidates = [
        (posterior, DeformityType.CRUSH),
        (anterior, DeformityType.WEDGE),
        (middle, DeformityType.BICONCAVE),
    ]
    loss, deformity = candidates[0]
    for value, kind in candidates[1:]:
        if value > loss:
            loss, deformity = value, kind
    loss = max(loss, 0.0)
    grade = GenantGrade.from_height_loss_pct(loss)
    if min(posterior, anterior, middle) >= _MILD_PCT:
        deformity = DeformityType.CRUSH  # every height reduced: compressed as a whole
    if grade is GenantGrade.NORMAL:
        deformity = DeformityType.NONE
    return GenantAssessment(
        grade=grade,
        deformity=deformity,
        height_loss_pct=loss,
        wedge_loss_pct=wedge,
        biconcave_loss_pct=biconcave,
        crush_loss_pct=crush,
        anterior_loss_pct=anterior,
        middle_loss_pct=middle,
        posterior_loss_pct=posterior,
        expected_anterior_mm=e_a,
        expected_middle_mm=e_m,
        expected_posterior_mm=ref,
        level=lv,
    )


def reference_height_mm(neighbour_heights_mm: Sequence[float]) -> float | None:
    """Expected (normal) height from the neighbours' posterior heights, in mm; None when empty.

    The median of the upper half of the heights (the ceil(n/2) tallest): with two neighbours
    that is the taller one, with three or four the mean of the two tallest. One neighbour that is
    itself collapsed (lower) therefore never lowers the reference. Heights must be positive
    finite numbers (:class:`GenantError` otherwise).
    """
    heights = [_height(h, f"neighbour_heights_mm[{i}]") for i, h in enumerate(neighbour_heights_mm)]
    if not heights:
        return None
    heights.sort(reverse=True)
    upper = heights[: (len(heights) + 1) // 2]
    return float(statistics.median(upper))
