"""The level check: how a radiologist's correction renames the labelled vertebrae.

Automatic labelling counts vertebrae by their look; at the thoraco-lumbar and lumbo-sacral
junctions a transitional vertebra or a miscount shifts every name. Before a scan's findings count,
the radiologist confirms the levels or corrects them with one of:

- ``shift=+1``: every vertebra is one level *caudal* of its label (the label said L1, it is L2);
  ``shift=-1``: one level *cranial*;
- ``variant="T13"``: a thirteenth thoracic vertebra -- the vertebra labelled L1 is T13 and the
  lumbar labels below it move up one (L2 -> L1 ... L5 -> L4); the sacrum keeps its name;
- ``variant="L6"``: a sixth lumbar vertebra -- the vertebra labelled S1 is L6 (a lumbarised S1).

A variant is applied first, then the shift along the sequence that includes the variant level.
:func:`renamed_levels` returns the old -> new name of every given level and refuses a correction
that would leave the spine (C1 shifted cranially, S1 caudally) or give two vertebrae one name.

>>> from spinewatch.core.levels import VertebralLevel as V
>>> renamed_levels([V.T12, V.L1, V.L2], shift=0, variant="T13")[V.L1]
<VertebralLevel.T13: 'T13'>
>>> renamed_levels([V.L1, V.L2], shift=1, variant="")[V.L2]
<VertebralLevel.L3: 'L3'>
"""

from __future__ import annotations

from collections.abc import Iterable

from spinewatch.core.errors import InputError
from spinewatch.core.levels import ALL_LEVELS, VertebralLevel

__all__ = ["VARIANTS", "LevelCheckError", "renamed_levels"]

VARIANTS: tuple[str, ...] = ("", "T13", "L6")

_V = VertebralLevel


class LevelCheckError(InputError):
    """A level correction that cannot be applied to the scan's vertebrae."""


def _sequence(variants: set[VertebralLevel]) -> list[VertebralLevel]:
    return [lv for lv in ALL_LEVELS if not lv.is_variant or lv in variants]


def _apply_variant(level: VertebralLevel, variant: str) -> VertebralLevel:
    if variant == "T13":
        lumbar = [_V.L1, _V.L2, _V.L3, _V.L4, _V.L5]
        if level in lumbar:
            return ([_V.T13, *lumbar])[lumbar.index(level)]
    elif variant == "L6" and level is _V.S1:
        return _V.L6
    return level


def renamed_levels(
    levels: Iterable[VertebralLevel | str], *, shift: int, variant: str
) -> dict[VertebralLevel, VertebralLevel]:
    """Old level -> new level for each of ``levels`` under the correction (see module doc).

    Raises :class:`LevelCheckError` for a shift other than -1/0/+1, an unknown variant, a name
    beyond C1 or S1, or two vertebrae ending with one name.
    """
    if isinstance(shift, bool) or shift not in (-1, 0, 1):
        raise LevelCheckError(f"level shift {shift!r}: expected -1, 0 or +1")
    if variant not in VARIANTS:
        raise LevelCheckError(f"transitional vertebra {variant!r}: expected none, T13 or L6")
    old = sorted({VertebralLevel.parse(lv) for lv in levels}, key=lambda lv: lv.rank)
    after_variant = {lv: _apply_variant(lv, variant) for lv in old}
    variants = {lv for lv in (*old, *after_variant.values()) if lv.is_variant}
    sequence = _sequence(variants)
    out: dict[VertebralLevel, VertebralLevel] = {}
    for lv in old:
        position = sequence.index(after_variant[lv]) + shift
        if not 0 <= position < len(sequence):
            edge = "cranial to C1" if position < 0 else "caudal to S1"
            raise LevelCheckError(f"shifting {lv} by {shift:+d} would name a vertebra {edge}")
        out[lv] = sequence[position]
    names = list(out.values())
    if len(set(names)) != len(names):
        clash = next(n for n in names if names.count(n) > 1)
        raise LevelCheckError(f"the correction gives two vertebrae the name {clash}")
    return out
