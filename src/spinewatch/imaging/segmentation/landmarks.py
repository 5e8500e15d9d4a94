"""Landmarks that name the levels: the sacrum and the ribs.

* **Sacrum**: below the lumbosacral disc the column widens into the sacral alae, thick bone that
  the axial opening of :mod:`.column` keeps (a lumbar transverse process is too thin to survive
  it). A segment whose opened cross-section is at least ``SACRUM_WIDTH_RATIO`` times as wide as
  the bodies above it, over ``SACRUM_MIN_MM`` along the column, is the sacrum.
* **Ribs**: a rib-bearing (thoracic) vertebra has bone on both sides lateral to its transverse
  processes at its own level -- the rib neck and angle. Counting ribs is how the thoracic and
  lumbar levels are told apart in clinical practice (the vertebra bearing the last rib is taken as
  T12; variants with 11 or 13 rib pairs and lumbosacral transitional vertebrae make this
  unreliable in some 5-10 % of patients: Nakajima et al., Insights Imaging 2014;5:77-83 report
  lumbar ribs in 5.8 %, lumbarisation in 6.2 % and sacralisation in 2.7 % of 226 whole-spine CTs).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from spinewatch.imaging.segmentation.column import Column

__all__ = ["rib_bearing", "sacrum_segment"]

SACRUM_WIDTH_RATIO = 1.6
SACRUM_MIN_MM = 15.0
#: The rib box: lateral from the body centre between body half-width + RIB_NEAR_MM and
#: + RIB_FAR_MM, from the front of the canal to RIB_BACK_MM behind it. Engineering choice: past
#: the tips of the thoracic transverse processes, where the rib runs on its own.
RIB_NEAR_MM = 30.0
RIB_FAR_MM = 60.0
RIB_BACK_MM = 30.0
#: Fraction of the box's slices (within the vertebra's own height) that must hold bone, per side.
RIB_MIN_FRACTION = 0.25


def sacrum_segment(
    segments: npt.NDArray[np.int16], column: Column, spacing_mm: tuple[float, float, float]
) -> bool:
    """True when the lowest segment (label 1) is the sacrum (see the module docstring)."""
    zs = np.flatnonzero(np.any(segments == 1, axis=(0, 1)))
    above = np.flatnonzero(np.any(segments >= 2, axis=(0, 1)))
    if zs.size == 0 or above.size == 0:
        return False
    seen = column.seen
    ref = np.median(column.raw_half_width[above][seen[above]]) if seen[above].any() else None
    if ref is None or ref <= 0:
        return False
    wide = seen[zs] & (column.raw_half_width[zs] >= SACRUM_WIDTH_RATIO * ref)
    return bool(wide.sum() * spacing_mm[2] >= SACRUM_MIN_MM)


def rib_bearing(
    bone: npt.NDArray[np.bool_],
    segments: npt.NDArray[np.int16],
    column: Column,
    spacing_mm: tuple[float, float, float],
) -> dict[int, bool]:
    """Per segment label: whether ribs leave it on both sides (see the module docstring)."""
    nx, ny, _ = bone.shape
    out: dict[int, bool] = {}
    for lab in range(1, int(segments.max()) + 1):
        zs = np.flatnonzero(np.any(segments == lab, axis=(0, 1)))
        if zs.size == 0:
            continue
        hits = np.zeros(2)
        for z in zs:
            cx, cy = column.x[z], column.y[z]
            hw_mm = column.half_width[z] * spacing_mm[0]
            wall = cy - column.half_depth[z]
            y0 = max(0, round(wall - RIB_BACK_MM / spacing_mm[1]))
            y1 = min(ny, round(wall) + 1)
            for side, sign in enumerate((-1, 1)):
                a = cx + sign * (hw_mm + RIB_NEAR_MM) / spacing_mm[0]
                b = cx + sign * (hw_mm + RIB_FAR_MM) / spacing_mm[0]
                x0, x1 = sorted((round(a), round(b)))
                x0, x1 = max(0, x0), min(nx, x1 + 1)
                if x1 > x0 and y1 > y0 and bone[x0:x1, y0:y1, z].any():
                    hits[side] += 1
        out[lab] = bool(np.all(hits / zs.size >= RIB_MIN_FRACTION))
    return out
