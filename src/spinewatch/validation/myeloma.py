"""A simulated myeloma pattern in a real CT: one vertebra's trabecular bone made far less dense
than the patient's other vertebrae, texture and noise kept.

Diffuse marrow infiltration (multiple myeloma, diffuse metastatic disease) lowers the density of
a whole body without a focal lesion; the analysis reports it by comparing each level with the
same patient's other levels (:mod:`spinewatch.imaging.infiltration`). To measure that on real
bone, :func:`lower_level_density` moves one level's trabecular background down by ``drop_hu``
with :func:`~spinewatch.validation.lesion_insertion.with_trabecular_background` (cortex and
everything outside the vertebra untouched) and returns the whole CT for a full analysis.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from spinewatch.validation.lesion_insertion import (
    InsertionError,
    TrabecularShift,
    with_trabecular_background,
)

if TYPE_CHECKING:
    from spinewatch.core.levels import VertebralLevel
    from spinewatch.imaging.volume import CtVolume, LabelVolume

__all__ = ["lower_level_density"]


def lower_level_density(
    ct: CtVolume,
    labels: LabelVolume,
    convention: str,
    level: VertebralLevel | str,
    drop_hu: float,
) -> tuple[CtVolume, TrabecularShift]:
    """``ct`` with the trabecular background of ``level`` lowered by ``drop_hu`` (HU, > 0).

    ``labels`` (on the CT's grid) and ``convention`` say where the level is. Raises
    :class:`~spinewatch.validation.lesion_insertion.InsertionError` when the level is not in the
    map, the drop is not positive, or the result would fall below the toolkit's 20 HU floor.
    """
    from spinewatch.core.levels import VertebralLevel
    from spinewatch.imaging.anatomy import find_vertebrae
    from spinewatch.imaging.volume import CtVolume

    want = VertebralLevel.parse(str(level))
    if not drop_hu > 0:
        raise InsertionError(f"drop_hu={drop_hu!r}: expected a positive drop in HU")
    regions = [r for r in find_vertebrae(labels, convention) if r.level == want]
    if not regions:
        raise InsertionError(f"{want} is not in the label map {labels.source}")
    region = regions[0]
    if region.block != (1, 1, 1):
        raise InsertionError(f"{want}: the label map is not on the CT's grid")
    crop = np.asarray(ct.hu[region.bbox], dtype=np.float32)
    _, before = with_trabecular_background(crop, region, 100.0)
    moved, shift = with_trabecular_background(crop, region, before.original_hu - drop_hu)
    hu = np.asarray(ct.hu, dtype=np.float32).copy()
    hu[region.bbox] = moved
    source = f"{ct.source} ({want} trabecular bone lowered by {drop_hu:.0f} HU)"
    return CtVolume(hu, ct.grid, source, dict(ct.meta), replace(ct.acquisition)), shift
