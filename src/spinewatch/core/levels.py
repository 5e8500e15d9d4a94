"""Vertebral levels: C1..C7, T1..T12 (+ T13 variant), L1..L5 (+ L6 variant), S1.

A :class:`VertebralLevel` is ordered cranio-caudally (``C1 < C2 < ... < T12 < T13 < L1 < ... < L5 <
L6 < S1``), knows its :class:`Region` and its SINS location class (:class:`SinsLocation`, Fisher
2010), and is parsed once at the boundary from ``"L1"``, ``"l1"``, ``" L1 "`` or the
TotalSegmentator name ``"vertebrae_L1"``.

>>> VertebralLevel.parse("vertebrae_L1") is VertebralLevel.L1
True
>>> sorted([VertebralLevel.L1, VertebralLevel.T13, VertebralLevel.T12])
[<VertebralLevel.T12: 'T12'>, <VertebralLevel.T13: 'T13'>, <VertebralLevel.L1: 'L1'>]
"""

from __future__ import annotations

import enum
import numbers
from collections.abc import Iterable

from spinewatch.core._enum import parse_enum
from spinewatch.core.errors import InputError

__all__ = [
    "ALL_LEVELS",
    "STANDARD_LEVELS",
    "LevelError",
    "Region",
    "SinsLocation",
    "VertebralLevel",
    "neighbours",
    "parse_level",
]


class LevelError(InputError):
    """A value that is not a vertebral level (C1..C7, T1..T13, L1..L6, S1)."""


class Region(enum.Enum):
    """Spinal region of a vertebra."""

    CERVICAL = "cervical"
    THORACIC = "thoracic"
    LUMBAR = "lumbar"
    SACRAL = "sacral"

    @property
    def label(self) -> str:
        """Human-readable name (``"Cervical"``)."""
        return self.value.capitalize()

    @classmethod
    def parse(cls, value: Region | str) -> Region:
        """A member, its value or name (any case); else :class:`LevelError`."""
        return parse_enum(cls, value, what="spinal region", error=LevelError)


class SinsLocation(enum.Enum):
    """SINS location component (Fisher 2010): junctional 3, mobile 2, semi-rigid 1, rigid 0.

    Junctional: O-C2, C7-T2, T11-L1, L5-S1; mobile: C3-C6, L2-L4; semi-rigid: T3-T10;
    rigid: S2-S5.
    """

    JUNCTIONAL = "junctional"
    MOBILE = "mobile"
    SEMI_RIGID = "semi_rigid"
    RIGID = "rigid"

    @property
    def points(self) -> int:
        """SINS points for this location (0-3)."""
        return _SINS_LOCATION_POINTS[self]

    @property
    def label(self) -> str:
        """Human-readable name with the SINS segments (``"Junctional (O-C2, C7-T2, ...)"``)."""
        return _SINS_LOCATION_LABELS[self]

    @classmethod
    def parse(cls, value: SinsLocation | str) -> SinsLocation:
        """A member, its value or name (any case); else :class:`LevelError`."""
        return parse_enum(cls, value, what="SINS location", error=LevelError)


_SINS_LOCATION_POINTS: dict[SinsLocation, int] = {
    SinsLocation.JUNCTIONAL: 3,
    SinsLocation.MOBILE: 2,
    SinsLocation.SEMI_RIGID: 1,
    SinsLocation.RIGID: 0,
}
_SINS_LOCATION_LABELS: dict[SinsLocation, str] = {
    SinsLocation.JUNCTIONAL: "Junctional (O-C2, C7-T2, T11-L1, L5-S1)",
    SinsLocation.MOBILE: "Mobile spine (C3-C6, L2-L4)",
    SinsLocation.SEMI_RIGID: "Semi-rigid (T3-T10)",
    SinsLocation.RIGID: "Rigid (S2-S5)",
}


class VertebralLevel(enum.Enum):
    """One vertebra, in cranio-caudal order (the definition order is the anatomical order).

    T13 (a thirteenth thoracic vertebra) and L6 (a sixth lumbar vertebra) are anatomical variants;
    ``is_variant`` marks them. Comparison (``<``, ``sorted``) follows :attr:`rank`.
    """

    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"
    C6 = "C6"
    C7 = "C7"
    T1 = "T1"
    T2 = "T2"
    T3 = "T3"
    T4 = "T4"
    T5 = "T5"
    T6 = "T6"
    T7 = "T7"
    T8 = "T8"
    T9 = "T9"
    T10 = "T10"
    T11 = "T11"
    T12 = "T12"
    T13 = "T13"
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"
    L5 = "L5"
    L6 = "L6"
    S1 = "S1"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """Cranio-caudal position: 0 for C1 ... 26 for S1 (T13 and L6 counted)."""
        return _RANK[self]

    @property
    def region(self) -> Region:
        """Cervical, thoracic, lumbar or sacral."""
        return _REGION_BY_LETTER[self.value[0]]

    @property
    def number(self) -> int:
        """The number within the region (``L1`` -> 1, ``T13`` -> 13)."""
        return int(self.value[1:])

    @property
    def is_variant(self) -> bool:
        """True for the transitional variants T13 and L6."""
        return self in (VertebralLevel.T13, VertebralLevel.L6)

    @property
    def sins_location(self) -> SinsLocation:
        """SINS location class (T13 counts as thoracolumbar junction, L6 as lumbosacral)."""
        return _SINS_LOCATION[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, VertebralLevel):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, VertebralLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, VertebralLevel):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, VertebralLevel):
            return NotImplemented
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: VertebralLevel | str) -> VertebralLevel:
        """Return the level named by ``value``.

        Accepts a level, ``"L1"``, ``"l1"``, ``" L1 "`` and the TotalSegmentator name
        ``"vertebrae_L1"``; anything else raises :class:`LevelError` naming the value and listing
        the valid names.
        """
        if isinstance(value, VertebralLevel):
            return value
        if isinstance(value, str):
            key = value.strip().upper()
            if key.startswith(_TS_PREFIX):
                key = key[len(_TS_PREFIX) :]
            level = _BY_NAME.get(key)
            if level is not None:
                return level
        raise LevelError(
            f"vertebral level {value!r} is not recognised; expected one of "
            f"{', '.join(level.value for level in ALL_LEVELS)} "
            "(optionally prefixed 'vertebrae_')"
        )


_TS_PREFIX = "VERTEBRAE_"

ALL_LEVELS: tuple[VertebralLevel, ...] = tuple(VertebralLevel)
"""Every level, C1..S1 with the T13 and L6 variants, in cranio-caudal order."""

STANDARD_LEVELS: tuple[VertebralLevel, ...] = tuple(
    level for level in ALL_LEVELS if not level.is_variant
)
"""C1..S1 without the variants (25 levels)."""

_RANK: dict[VertebralLevel, int] = {level: i for i, level in enumerate(ALL_LEVELS)}
_BY_NAME: dict[str, VertebralLevel] = {level.value: level for level in ALL_LEVELS}
_REGION_BY_LETTER: dict[str, Region] = {
    "C": Region.CERVICAL,
    "T": Region.THORACIC,
    "L": Region.LUMBAR,
    "S": Region.SACRAL,
}


def _sins_location(level: VertebralLevel) -> SinsLocation:
    region, number = level.region, level.number
    if region is Region.CERVICAL:
        return SinsLocation.MOBILE if 3 <= number <= 6 else SinsLocation.JUNCTIONAL
    if region is Region.THORACIC:
        return SinsLocation.SEMI_RIGID if 3 <= number <= 10 else SinsLocation.JUNCTIONAL
    if region is Region.LUMBAR:
        return SinsLocation.MOBILE if 2 <= number <= 4 else SinsLocation.JUNCTIONAL
    # S1 is part of the lumbosacral junction (L5-S1); S2-S5 (rigid) are not modelled as levels.
    return SinsLocation.JUNCTIONAL if number == 1 else SinsLocation.RIGID


_SINS_LOCATION: dict[VertebralLevel, SinsLocation] = {
    level: _sins_location(level) for level in ALL_LEVELS
}


def parse_level(value: VertebralLevel | str) -> VertebralLevel:
    """Module-level alias of :meth:`VertebralLevel.parse`."""
    return VertebralLevel.parse(value)


def neighbours(
    level: VertebralLevel | str,
    present: Iterable[VertebralLevel | str],
    *,
    max_distance: int = 2,
) -> list[VertebralLevel]:
    """The levels of ``present`` within ``max_distance`` vertebrae of ``level``, nearest first.

    Distance counts vertebrae, not ranks: a variant (T13, L6) occupies a position only when it is
    in ``present`` or is ``level`` itself, so in a spine without T13 the distance T12-L1 is 1,
    and with T13 it is 2. ``level`` itself is excluded; at equal distance the cranial one comes
    first. ``max_distance`` must be >= 0.
    """
    centre = VertebralLevel.parse(level)
    if (
        isinstance(max_distance, bool)
        or not isinstance(max_distance, numbers.Integral)
        or max_distance < 0
    ):
        raise LevelError(f"max_distance {max_distance!r} is invalid; expected an integer >= 0")
    present_set = {VertebralLevel.parse(p) for p in present}
    sequence = [lv for lv in ALL_LEVELS if not lv.is_variant or lv in present_set or lv is centre]
    position = {lv: i for i, lv in enumerate(sequence)}
    found = [
        (abs(position[lv] - position[centre]), lv.rank, lv)
        for lv in present_set
        if lv is not centre and abs(position[lv] - position[centre]) <= max_distance
    ]
    return [lv for _, _, lv in sorted(found)]
