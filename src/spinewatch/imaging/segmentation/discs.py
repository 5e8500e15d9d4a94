"""Vertebral bodies and discs along the column.

Yao et al. (IEEE ISBI 2006) partition the column with an intensity profile along the spinal
cord; Klinder et al. ("Automated model-based vertebra detection, identification, and segmentation
in CT images", Medical Image Analysis 13(3):471-482, 2009) likewise separate neighbours at the
disc. Here the profile is the fraction of marrow-dense bone in a small box at the body centre of
each slice: near 1 through a body (its cortex and marrow), low through a disc (soft tissue at
~80-100 HU), whatever the bone density -- an osteoporotic or lytic body still keeps its ring.
Discs are the profile's clear minima, at least ``MIN_GAP_FRACTION`` of the expected vertebral
pitch apart.

The expected pitch (body + disc height along the column) comes from the body's own width: adult
body height is roughly 0.7-0.8 times its width from C3 to L5 (Panjabi et al., Spine 1991/1992
morphometry series give C: width ~17 mm, height ~14 mm; L: ~45-50 mm, ~27 mm) -- so the pitch
adapts along a full spine without knowing the level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from spinewatch.imaging.segmentation.column import Column

__all__ = ["Disc", "body_profile", "find_discs"]

#: A disc is a profile minimum at most this deep (fraction of dense bone in the box)...
DISC_MAX_FRACTION = 0.55
#: ...lying this far below the bodies on either side (prominence). Engineering choices.
DISC_PROMINENCE = 0.25
#: Neighbouring discs are at least this fraction of the expected pitch apart.
MIN_GAP_FRACTION = 0.5
#: Expected pitch (body height + disc) per mm of body width (see the module docstring).
PITCH_PER_WIDTH = 0.75


@dataclass(frozen=True)
class Disc:
    """A disc: slice index ``z`` (float, sub-slice), centre ``point`` and unit ``normal`` (the
    column's local superior direction), both in working-voxel coordinates scaled to mm."""

    z: float
    point_mm: tuple[float, float, float]
    normal: tuple[float, float, float]
    depth: float


def body_profile(
    dense: npt.NDArray[np.bool_], column: Column, spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.float64]:
    """Fraction of ``dense`` voxels in a box at the body centre of each slice (length nz).

    The box spans 0.5 of the body's half width to each side and 0.5 of its half depth front and
    back -- inside the body, clear of its curved rim and of the pedicles.
    """
    _nx, _ny, nz = dense.shape
    prof = np.zeros(nz)
    for z in range(nz):
        hw = max(1, round(0.5 * column.half_width[z]))
        hd = max(1, round(0.5 * column.half_depth[z]))
        x, y = round(column.x[z]), round(column.y[z])
        box = dense[max(x - hw, 0) : x + hw + 1, max(y - hd, 0) : y + hd + 1, z]
        prof[z] = float(box.mean()) if box.size else 0.0
    return prof


def find_discs(
    dense: npt.NDArray[np.bool_], column: Column, spacing_mm: tuple[float, float, float]
) -> tuple[list[Disc], npt.NDArray[np.float64]]:
    """The discs along ``column`` (cranial first is *not* implied: ordered by ascending z, i.e.
    caudal first) and the profile they were found in."""
    prof = body_profile(dense, column, spacing_mm)
    smooth = ndi.gaussian_filter1d(prof, max(0.5, 1.0 / spacing_mm[2]), mode="nearest")
    nz = smooth.size
    width_mm = 2.0 * column.half_width * spacing_mm[0]
    pitch_vox = PITCH_PER_WIDTH * width_mm / spacing_mm[2]
    candidates = [
        z
        for z in range(1, nz - 1)
        if smooth[z] <= smooth[z - 1]
        and smooth[z] < smooth[z + 1]
        and smooth[z] <= DISC_MAX_FRACTION
    ]
    kept: list[int] = []
    for z in sorted(candidates, key=lambda k: smooth[k]):
        reach = max(2, round(MIN_GAP_FRACTION * pitch_vox[z]))
        if any(abs(z - k) < reach for k in kept):
            continue
        lo, hi = max(0, z - reach), min(nz, z + reach + 1)
        left, right = smooth[lo:z].max(initial=0.0), smooth[z + 1 : hi].max(initial=0.0)
        if min(left, right) - smooth[z] < DISC_PROMINENCE:
            continue
        kept.append(z)
    discs = []
    cx = column.x * spacing_mm[0]
    cy = column.y * spacing_mm[1]
    for z in sorted(kept):
        zf = float(z)
        # sub-slice position: parabola through the minimum and its neighbours
        a, b, c = smooth[z - 1], smooth[z], smooth[z + 1]
        den = a - 2 * b + c
        if den > 1e-9:
            zf += float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
        lo, hi = max(z - 2, 0), min(z + 2, nz - 1)
        t = np.array(
            [cx[hi] - cx[lo], cy[hi] - cy[lo], (hi - lo) * spacing_mm[2]], dtype=np.float64
        )
        t /= np.linalg.norm(t)
        point = (
            float(np.interp(zf, np.arange(nz), cx)),
            float(np.interp(zf, np.arange(nz), cy)),
            zf * spacing_mm[2],
        )
        discs.append(Disc(zf, point, (float(t[0]), float(t[1]), float(t[2])), float(smooth[z])))
    return discs, prof
