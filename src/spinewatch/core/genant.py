"""Genant semi-quantitative grading of vertebral fractures (Genant et al., JBMR 1993).

Heights are in millimetres: anterior (Ha), middle (Hm) and posterior (Hp) height of the vertebral
body, plus optionally a reference posterior height expected from the neighbours
(:func:`reference_height_mm`). Three height losses are computed, in percent:

* wedge loss = 1 - Ha / Hp (anterior vs posterior);
* biconcave loss = 1 - Hm / max(Ha, Hp) (middle vs the taller wall; the standard ratio is Hm/Hp,
  but when the posterior wall itself is crushed a small Hp would hide a central depression, so
  the taller of the two walls is used);
* crush loss = 1 - Hp / reference (posterior height vs the neighbours) -- when all three heights
  are reduced against the neighbours, only this loss sees it.

The largest loss decides grade and type (grade 0 -> type NONE). Exact ties are broken crush >
wedge > biconcave, so a vertebra whose heights are all reduced alike reads as a crush.
Without a reference, a posterior wall lower than the anterior one (a "reverse wedge",
1 - Hp / Ha) is the crush candidate, since posterior collapse is crush in Genant's scheme;
``crush_loss_pct`` stays None then (it is defined against the reference).

Percentages are rounded to 9 decimals so that e.g. Ha = 16, Hp = 20 is exactly 20 % (grade 1)
rather than 19.999999999999996 %.

>>> assess_vertebra(anterior_mm=16.0, middle_mm=20.0, posterior_mm=20.0).grade
<GenantGrade.MILD: 1>
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

__all__ = [
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

    ``height_loss_pct`` is the loss that decided the grade (>= 0). ``wedge_loss_pct`` and
    ``biconcave_loss_pct`` may be negative (the anterior or middle height exceeds its
    comparator); ``crush_loss_pct`` is None when no reference height was given.
    """

    grade: GenantGrade
    deformity: DeformityType
    height_loss_pct: float
    wedge_loss_pct: float
    biconcave_loss_pct: float
    crush_loss_pct: float | None

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


def assess_vertebra(
    *,
    anterior_mm: float,
    middle_mm: float,
    posterior_mm: float,
    reference_mm: float | None = None,
) -> GenantAssessment:
    """Genant grade and deformity type from the three body heights (mm).

    ``reference_mm`` is the posterior height expected from the neighbours
    (:func:`reference_height_mm`), or None. See the module docstring for the rule.
    """
    ha = _height(anterior_mm, "anterior_mm")
    hm = _height(middle_mm, "middle_mm")
    hp = _height(posterior_mm, "posterior_mm")
    ref = None if reference_mm is None else _height(reference_mm, "reference_mm")

    wedge = height_loss_pct(ha, hp)
    biconcave = height_loss_pct(hm, max(ha, hp))
    crush = None if ref is None else height_loss_pct(hp, ref)
    crush_candidate = crush if crush is not None else height_loss_pct(hp, ha)

    # Order = tie preference: crush, then wedge, then biconcave.
    candidates = [
        (crush_candidate, DeformityType.CRUSH),
        (wedge, DeformityType.WEDGE),
        (biconcave, DeformityType.BICONCAVE),
    ]
    loss, deformity = candidates[0]
    for value, kind in candidates[1:]:
        if value > loss:
            loss, deformity = value, kind
    loss = max(loss, 0.0)
    grade = GenantGrade.from_height_loss_pct(loss)
    if grade is GenantGrade.NORMAL:
        deformity = DeformityType.NONE
    return GenantAssessment(
        grade=grade,
        deformity=deformity,
        height_loss_pct=loss,
        wedge_loss_pct=wedge,
        biconcave_loss_pct=biconcave,
        crush_loss_pct=crush,
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
