"""Relabel a vertebra label map after the level check renamed its vertebrae.

The renamed map is written in the **VerSe** convention (the one that has T13 and L6 labels), so
any correction of :mod:`spinewatch.core.level_check` can be expressed. Labels that are not
vertebrae in the source convention (organs, ribs, TotalSegmentator's sacrum) are dropped: the
re-analysis needs the vertebrae only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.conventions import LabelConvention, label_for_level, level_for_label
from spinewatch.core.errors import InputError
from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.volume import LabelVolume

__all__ = ["relabel_vertebrae"]


def relabel_vertebrae(
    labels: LabelVolume,
    convention: LabelConvention | str,
    renamed: Mapping[VertebralLevel | str, VertebralLevel | str],
) -> LabelVolume:
    """``labels`` (read in ``convention``) with every vertebra renamed by ``renamed`` (old level
    -> new level; a level not in it keeps its name), as a VerSe label map on the same grid."""
    conv = LabelConvention.parse(convention)
    names = {VertebralLevel.parse(k): VertebralLevel.parse(v) for k, v in renamed.items()}
    source = np.asarray(labels.labels)
    present = [int(v) for v in np.unique(source) if v != 0]
    lookup: npt.NDArray[Any] = np.zeros(max(present, default=0) + 1, dtype=np.uint8)
    for value in present:
        level = level_for_label(value, conv)
        if level is None:
            continue
        new = names.get(level, level)
        lookup[value] = label_for_level(new, LabelConvention.VERSE)
    out = lookup[source]
    targets = [int(v) for v in np.unique(out) if v != 0]
    if not targets:
        raise InputError(f"{labels.source}: no vertebra to relabel in the {conv.label} convention")
    return LabelVolume(labels=out, grid=labels.grid, source=f"{labels.source} (relabelled)")
