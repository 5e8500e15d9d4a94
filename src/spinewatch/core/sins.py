"""Spinal Instability Neoplastic Score (SINS; Fisher et al., Spine 2010; Fourney et al., JCO 2011).

Six components, 0-18 in total: location (:class:`~spinewatch.core.levels.SinsLocation`, 0-3),
pain (0-3), bone lesion (0-2), radiographic alignment (0-4), vertebral body collapse (0-3) and
posterolateral involvement of the spinal elements (0-3). 0-6 stable, 7-12 potentially unstable,
13-18 unstable. Location, lesion, collapse and posterolateral involvement can be read from
imaging (:class:`SinsImagingPart`); pain and alignment need the clinician (and standing films).

Every enum has string values (so it serialises) and a ``.points`` int.

What the imaging could not say is never scored as if it had been seen:

* :attr:`SinsBoneLesion.NONE_FOUND` (0 points, as the scale scores a lesion-free component) is
  the CT's answer when it found no focal lesion -- distinct from :attr:`SinsBoneLesion.BLASTIC`,
  which is a finding.
* ``NOT_ASSESSED`` (bone lesion, collapse, posterolateral involvement) is the answer when the
  component could not be read -- an MRI or a label map without a CT (no HU: no lesion quality, no
  pedicle destruction), a vertebra cut by the scan edge (no heights). It counts 0 towards
  :attr:`SinsImagingPart.points` but its whole range (``max_points``) is added to the upper end
  of :attr:`SinsImagingPart.possible_total_range`; a complete :class:`SinsScore` refuses it (the
  clinician reads that component from the images instead).

Stored values stay readable: the earlier members keep their values (``"blastic"`` in a report
written before ``"none_found"`` existed still parses as blastic).
"""

from __future__ import annotations

import enum
import math
import numbers
from dataclasses import dataclass
from typing import Any

from spinewatch.core._enum import parse_enum
from spinewatch.core.errors import InputError
from spinewatch.core.levels import SinsLocation

__all__ = [
    "SinsAlignment",
    "SinsBoneLesion",
    "SinsCategory",
    "SinsCollapse",
    "SinsError",
    "SinsImagingPart",
    "SinsLocation",
    "SinsPain",
    "SinsPosterolateral",
    "SinsScore",
    "sins_collapse_from",
]


class SinsError(InputError):
    """A SINS component or total that is not valid."""


class SinsPain(enum.Enum):
    """Pain: mechanical 3, occasional non-mechanical 1, pain-free 0."""

    MECHANICAL = "mechanical"
    OCCASIONAL_NON_MECHANICAL = "occasional_non_mechanical"
    NONE = "none"

    @property
    def points(self) -> int:
        """SINS points (0-3)."""
        return {"mechanical": 3, "occasional_non_mechanical": 1, "none": 0}[self.value]

    @property
    def label(self) -> str:
        """Human-readable name."""
        return {
            "mechanical": "Mechanical pain",
            "occasional_non_mechanical": "Occasional pain but not mechanical",
            "none": "Pain-free lesion",
        }[self.value]

    @classmethod
    def parse(cls, value: SinsPain | str) -> SinsPain:
        """A member, its value or name (any case); else :class:`SinsError`."""
        return parse_enum(cls, value, what="SINS pain", error=SinsError)


class SinsBoneLesion(enum.Enum):
    """Bone lesion: lytic 2, mixed (lytic/blastic) 1, blastic 0; no focal lesion found 0;
    not assessed (0 now, up to 2)."""

    LYTIC = "lytic"
    MIXED = "mixed"
    BLASTIC = "blastic"
    NONE_FOUND = "none_found"
    NOT_ASSESSED = "not_assessed"

    @property
    def points(self) -> int:
        """SINS points (0-2); 0 for none found and for not assessed."""
        return {"lytic": 2, "mixed": 1, "blastic": 0, "none_found": 0, "not_assessed": 0}[
            self.value
        ]

    @property
    def assessed(self) -> bool:
        """False for :attr:`NOT_ASSESSED`."""
        return self is not SinsBoneLesion.NOT_ASSESSED

    @property
    def max_points(self) -> int:
        """The most this component can score: its points, or 2 when not assessed."""
        return self.points if self.assessed else 2

    @property
    def label(self) -> str:
        """Human-readable name."""
        return {
            "lytic": "Lytic",
            "mixed": "Mixed (lytic/blastic)",
            "blastic": "Blastic",
            "none_found": "No focal lesion found",
            "not_assessed": "Not assessed (no CT)",
        }[self.value]

    @classmethod
    def parse(cls, value: SinsBoneLesion | str) -> SinsBoneLesion:
        """A member, its value or name (any case); else :class:`SinsError`."""
        return parse_enum(cls, value, what="SINS bone lesion", error=SinsError)


class SinsAlignment(enum.Enum):
    """Radiographic alignment: subluxation/translation 4, de novo kyphosis/scoliosis 2, normal 0."""

    SUBLUXATION_TRANSLATION = "subluxation_translation"
    DE_NOVO_DEFORMITY = "de_novo_deformity"
    NORMAL = "normal"

    @property
    def points(self) -> int:
        """SINS points (0-4)."""
        return {"subluxation_translation": 4, "de_novo_deformity": 2, "normal": 0}[self.value]

    @property
    def label(self) -> str:
        """Human-readable name."""
        return {
            "subluxation_translation": "Subluxation/translation present",
            "de_novo_deformity": "De novo deformity (kyphosis/scoliosis)",
            "normal": "Normal alignment",
        }[self.value]

    @classmethod
    def parse(cls, value: SinsAlignment | str) -> SinsAlignment:
        """A member, its value or name (any case); else :class:`SinsError`."""
        return parse_enum(cls, value, what="SINS alignment", error=SinsError)


class SinsCollapse(enum.Enum):
    """Vertebral body collapse: > 50 % 3, < 50 % 2, none but > 50 % of the body involved 1,
    none 0; not assessed (no heights: 0 now, up to 3)."""

    OVER_50_PCT = "over_50_pct"
    UNDER_50_PCT = "under_50_pct"
    NO_COLLAPSE_OVER_50_PCT_INVOLVED = "no_collapse_over_50_pct_involved"
    NONE = "none"
    NOT_ASSESSED = "not_assessed"

    @property
    def points(self) -> int:
        """SINS points (0-3); 0 when not assessed."""
        return {
            "over_50_pct": 3,
            "under_50_pct": 2,
            "no_collapse_over_50_pct_involved": 1,
            "none": 0,
            "not_assessed": 0,
        }[self.value]

    @property
    def assessed(self) -> bool:
        """False for :attr:`NOT_ASSESSED`."""
        return self is not SinsCollapse.NOT_ASSESSED

    @property
    def max_points(self) -> int:
        """The most this component can score: its points, or 3 when not assessed."""
        return self.points if self.assessed else 3

    @property
    def label(self) -> str:
        """Human-readable name."""
        return {
            "over_50_pct": "> 50 % collapse",
            "under_50_pct": "< 50 % collapse",
            "no_collapse_over_50_pct_involved": "No collapse with > 50 % of the body involved",
            "none": "None of the above",
            "not_assessed": "Not assessed (heights not measured)",
        }[self.value]

    @classmethod
    def parse(cls, value: SinsCollapse | str) -> SinsCollapse:
        """A member, its value or name (any case); else :class:`SinsError`."""
        return parse_enum(cls, value, what="SINS collapse", error=SinsError)


class SinsPosterolateral(enum.Enum):
    """Posterolateral involvement (facet, pedicle or costovertebral joint): bilateral 3,
    unilateral 1, none 0; not assessed (no CT: 0 now, up to 3)."""

    BILATERAL = "bilateral"
    UNILATERAL = "unilateral"
    NONE = "none"
    NOT_ASSESSED = "not_assessed"

    @property
    def points(self) -> int:
        """SINS points (0-3); 0 when not assessed."""
        return {"bilateral": 3, "unilateral": 1, "none": 0, "not_assessed": 0}[self.value]

    @property
    def assessed(self) -> bool:
        """False for :attr:`NOT_ASSESSED`."""
        return self is not SinsPosterolateral.NOT_ASSESSED

    @property
    def max_points(self) -> int:
        """The most this component can score: its points, or 3 when not assessed."""
        return self.points if self.assessed else 3

    @property
    def label(self) -> str:
        """Human-readable name."""
        return {
            "bilateral": "Bilateral",
            "unilateral": "Unilateral",
            "none": "None",
            "not_assessed": "Not assessed (no CT)",
        }[self.value]

    @classmethod
    def parse(cls, value: SinsPosterolateral | str) -> SinsPosterolateral:
        """A member, its value or name (any case); else :class:`SinsError`."""
        return parse_enum(cls, value, what="SINS posterolateral involvement", error=SinsError)


class SinsCategory(enum.Enum):
    """Stable (0-6), potentially unstable (7-12), unstable (13-18)."""

    STABLE = "stable"
    POTENTIALLY_UNSTABLE = "potentially_unstable"
    UNSTABLE = "unstable"

    @property
    def total_range(self) -> tuple[int, int]:
        """Inclusive range of totals in this category."""
        return {"stable": (0, 6), "potentially_unstable": (7, 12), "unstable": (13, 18)}[self.value]

    @property
    def label(self) -> str:
        """Human-readable name (``"Potentially unstable"``)."""
        return self.value.replace("_", " ").capitalize()

    @classmethod
    def from_total(cls, total: int) -> SinsCategory:
        """Category of a SINS total 0..18 (an int; else :class:`SinsError`)."""
        if (
            isinstance(total, bool)
            or not isinstance(total, numbers.Integral)
            or not 0 <= total <= 18
        ):
            raise SinsError(f"SINS total {total!r} is invalid; expected an integer from 0 to 18")
        if total <= 6:
            return cls.STABLE
        if total <= 12:
            return cls.POTENTIALLY_UNSTABLE
        return cls.UNSTABLE

    @classmethod
    def parse(cls, value: SinsCategory | str) -> SinsCategory:
        """A member, its value or name (any case); else :class:`SinsError`."""
        return parse_enum(cls, value, what="SINS category", error=SinsError)


def _coerce(obj: Any, field: str, enum_cls: Any, what: str) -> None:
    """Convert ``obj.field`` to ``enum_cls`` in a frozen dataclass (strings accepted)."""
    value = getattr(obj, field)
    if not isinstance(value, enum_cls):
        object.__setattr__(obj, field, parse_enum(enum_cls, value, what=what, error=SinsError))


@dataclass(frozen=True)
class SinsImagingPart:
    """The four SINS components read from imaging; strings are converted on construction."""

    location: SinsLocation
    bone_lesion: SinsBoneLesion
    collapse: SinsCollapse
    posterolateral: SinsPosterolateral

    def __post_init__(self) -> None:
        _coerce(self, "location", SinsLocation, "SINS location")
        _coerce(self, "bone_lesion", SinsBoneLesion, "SINS bone lesion")
        _coerce(self, "collapse", SinsCollapse, "SINS collapse")
        _coerce(self, "posterolateral", SinsPosterolateral, "SINS posterolateral involvement")

    @property
    def points(self) -> int:
        """Sum of the four imaging components (0-11)."""
        return (
            self.location.points
            + self.bone_lesion.points
            + self.collapse.points
            + self.posterolateral.points
        )

    @property
    def unassessed(self) -> tuple[str, ...]:
        """Names of the components the imaging could not assess (``"bone_lesion"``, ...)."""
        parts = (
            ("bone_lesion", self.bone_lesion),
            ("collapse", self.collapse),
            ("posterolateral", self.posterolateral),
        )
        return tuple(name for name, value in parts if not value.assessed)

    @property
    def possible_total_range(self) -> tuple[int, int]:
        """Inclusive range of the full SINS once pain (0-3) and alignment (0-4) are added --
        and, for each component not assessed, whatever it may score (bone lesion up to 2,
        collapse and posterolateral involvement up to 3)."""
        unknown = (
            (self.bone_lesion.max_points - self.bone_lesion.points)
            + (self.collapse.max_points - self.collapse.points)
            + (self.posterolateral.max_points - self.posterolateral.points)
        )
        return (self.points, min(18, self.points + 3 + 4 + unknown))

    @property
    def possible_categories(self) -> tuple[SinsCategory, ...]:
        """The categories the full score can still fall into, in order."""
        low, high = self.possible_total_range
        return tuple(
            c for c in SinsCategory if c.total_range[0] <= high and c.total_range[1] >= low
        )


@dataclass(frozen=True)
class SinsScore:
    """A complete SINS; strings are converted on construction."""

    location: SinsLocation
    pain: SinsPain
    bone_lesion: SinsBoneLesion
    alignment: SinsAlignment
    collapse: SinsCollapse
    posterolateral: SinsPosterolateral

    def __post_init__(self) -> None:
        _coerce(self, "location", SinsLocation, "SINS location")
        _coerce(self, "pain", SinsPain, "SINS pain")
        _coerce(self, "bone_lesion", SinsBoneLesion, "SINS bone lesion")
        _coerce(self, "alignment", SinsAlignment, "SINS alignment")
        _coerce(self, "collapse", SinsCollapse, "SINS collapse")
        _coerce(self, "posterolateral", SinsPosterolateral, "SINS posterolateral involvement")
        missing = self.imaging_part.unassessed
        if missing:
            raise SinsError(
                f"SINS {', '.join(missing)} 'not_assessed': a complete SINS needs every component;"
                " read it from the images"
            )

    @property
    def total(self) -> int:
        """Sum of the six components (0-18)."""
        return (
            self.location.points
            + self.pain.points
            + self.bone_lesion.points
            + self.alignment.points
            + self.collapse.points
            + self.posterolateral.points
        )

    @property
    def category(self) -> SinsCategory:
        """Stable, potentially unstable or unstable."""
        return SinsCategory.from_total(self.total)

    @property
    def imaging_part(self) -> SinsImagingPart:
        """The four imaging components."""
        return SinsImagingPart(
            location=self.location,
            bone_lesion=self.bone_lesion,
            collapse=self.collapse,
            posterolateral=self.posterolateral,
        )

    @classmethod
    def from_imaging(
        cls,
        part: SinsImagingPart,
        *,
        pain: SinsPain | str,
        alignment: SinsAlignment | str,
        bone_lesion: SinsBoneLesion | str | None = None,
        collapse: SinsCollapse | str | None = None,
        posterolateral: SinsPosterolateral | str | None = None,
    ) -> SinsScore:
        """Complete an imaging part with the clinical pain and the alignment.

        ``bone_lesion``/``collapse``/``posterolateral``: the clinician's reading of a component
        the imaging did not assess; refused for a component the imaging did assess (a measured
        value is never silently overwritten). A component left not assessed raises
        :class:`SinsError`.
        """
        given = {"bone_lesion": bone_lesion, "collapse": collapse, "posterolateral": posterolateral}
        for name, value in given.items():
            if value is not None and getattr(part, name).assessed:
                raise SinsError(
                    f"SINS {name} {value!r}: the imaging assessed it as "
                    f"{getattr(part, name).value!r}; only a component not assessed is completed"
                )
        return cls(
            location=part.location,
            pain=SinsPain.parse(pain),
            bone_lesion=part.bone_lesion
            if bone_lesion is None
            else SinsBoneLesion.parse(bone_lesion),
            alignment=SinsAlignment.parse(alignment),
            collapse=part.collapse if collapse is None else SinsCollapse.parse(collapse),
            posterolateral=part.posterolateral
            if posterolateral is None
            else SinsPosterolateral.parse(posterolateral),
        )


def sins_collapse_from(
    height_loss_pct: float | None,
    involved_fraction: float | None,
    *,
    min_collapse_pct: float = 20.0,
) -> SinsCollapse:
    """SINS collapse component from a measured height loss and the lesion's share of the body.

    ``height_loss_pct``: body height loss in percent (e.g. the Genant
    :attr:`~spinewatch.core.genant.GenantAssessment.height_loss_pct`), or None if not measured.
    A loss below ``min_collapse_pct`` (default 20 %, Genant's threshold for a fracture, so that
    measurement noise is not called collapse) counts as no collapse; a loss > 50 % is ">50 %
    collapse" (3); from ``min_collapse_pct`` up to and including 50 % it is "<50 % collapse" (2).
    ``involved_fraction``: the fraction 0..1 of the body involved by tumour, or None. Without
    collapse, > 0.5 gives 1 point. None values contribute nothing (unknown is scored as absent;
    the caller decides whether that is acceptable).
    """
    loss = None
    if height_loss_pct is not None:
        loss = _number(height_loss_pct, "height_loss_pct")
        if loss > 100.0:
            raise SinsError(
                f"height_loss_pct {height_loss_pct!r} is invalid; expected a percentage <= 100"
            )
    involved = None
    if involved_fraction is not None:
        involved = _number(involved_fraction, "involved_fraction")
        if not 0.0 <= involved <= 1.0:
            raise SinsError(
                f"involved_fraction {involved_fraction!r} is invalid; expected a fraction from "
                "0 to 1"
            )
    threshold = _number(min_collapse_pct, "min_collapse_pct")
    if loss is not None and loss > 50.0:
        return SinsCollapse.OVER_50_PCT
    if loss is not None and loss >= threshold:
        return SinsCollapse.UNDER_50_PCT
    if involved is not None and involved > 0.5:
        return SinsCollapse.NO_COLLAPSE_OVER_50_PCT_INVOLVED
    return SinsCollapse.NONE


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SinsError(f"{field} {value!r} is not a number; expected a finite number")
    result = float(value)
    if not math.isfinite(result):
        raise SinsError(f"{field} {value!r} is not finite; expected a finite number")
    return result
