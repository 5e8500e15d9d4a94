"""Cement (and metal) in and around a vertebra: the mark of a treated level.

Vertebroplasty cement (PMMA opacified with barium sulphate or zirconium dioxide) measures roughly
1500-3000 HU on CT, far above any bone (dense cortex stays below ~1200-1400 HU at 120 kVp), so a
plain threshold at :data:`CEMENT_HU` finds it. Cement leaks out of the body (through the cortex,
into the basivertebral and segmental veins, the disc, the epidural space), so the search zone is
the vertebra mask dilated by :data:`CEMENT_SEARCH_MARGIN_MM` -- small enough not to reach the
neighbouring vertebra across a disc (~8-10 mm lumbar), and limited by the crop
(``region.bbox`` is padded by only a few voxels), so distant venous leaks are not counted.

Metal (pedicle screws, rods) also exceeds the threshold; SpineWatch reports it the same way
(``present``, ``max_hu``): whatever it is, it is not bone and density and lesion detection leave it
out. The cement is reported, never treated as bone.

Arrays are crops ``[i, j, k]`` on ``region.grid``, the shape of ``region.mask``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from spinewatch.imaging.density import CEMENT_HU, check_crop, distance_within_mm, mask_box

if TYPE_CHECKING:
    from spinewatch.imaging.anatomy import VertebraRegion

__all__ = [
    "CEMENT_HU",
    "CEMENT_SEARCH_MARGIN_MM",
    "MIN_CEMENT_ML",
    "CementFindings",
    "cement_mask",
    "detect_cement",
]

#: The search zone: the vertebra mask dilated by this many mm (leaks just outside the cortex).
CEMENT_SEARCH_MARGIN_MM = 3.0
#: Cement is "present" from this volume on: 0.05 ml is ~50 voxels at 1 mm, well above isolated
#: hot voxels (noise, calcified vessel wall), well below the smallest vertebroplasty (~1-2 ml).
MIN_CEMENT_ML = 0.05


@dataclass(frozen=True)
class CementFindings:
    """Cement/metal in the search zone of one vertebra.

    ``volume_ml``: voxels > :data:`CEMENT_HU` in the vertebra mask dilated by
    :data:`CEMENT_SEARCH_MARGIN_MM`, in ml; ``present``: ``volume_ml >= MIN_CEMENT_ML``;
    ``max_hu``: the highest HU in the search zone (whether or not cement is present).
    """

    volume_ml: float
    present: bool
    max_hu: float


def _search_zone(region: VertebraRegion) -> npt.NDArray[np.bool_]:
    mask = np.asarray(region.mask, dtype=np.bool_)
    if not mask.any():
        return mask
    to_mask = distance_within_mm(mask, region.grid.spacing_mm, CEMENT_SEARCH_MARGIN_MM + 1e-9)
    return np.asarray(to_mask <= CEMENT_SEARCH_MARGIN_MM + 1e-9, dtype=np.bool_)


def _in_zone(region: VertebraRegion, points: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """``points & _search_zone(region)``, with the distance transform run only in the bounding
    box of ``points`` grown by the margin: a mask voxel outside that box is farther than the
    margin from every point, so the result is exact."""
    mask = np.asarray(region.mask, dtype=np.bool_)
    out = np.zeros(mask.shape, dtype=np.bool_)
    found = mask_box(points)
    if found is None or not mask.any():
        return out
    spacing = region.grid.spacing_mm
    box = tuple(
        slice(
            max(sl.start - int(np.ceil(CEMENT_SEARCH_MARGIN_MM / sp)) - 1, 0),
            min(sl.stop + int(np.ceil(CEMENT_SEARCH_MARGIN_MM / sp)) + 1, n),
        )
        for sl, sp, n in zip(found, spacing, mask.shape, strict=True)
    )
    sub = mask[box]
    if not sub.any():
        return out
    to_mask = distance_within_mm(sub, spacing, CEMENT_SEARCH_MARGIN_MM + 1e-9)
    out[box] = points[box] & (to_mask <= CEMENT_SEARCH_MARGIN_MM + 1e-9)
    return out


def cement_mask(hu: npt.NDArray[Any], region: VertebraRegion) -> npt.NDArray[np.bool_]:
    """Boolean crop: voxels > :data:`CEMENT_HU` in the search zone of ``region``."""
    check_crop(hu, region)
    return np.asarray((np.asarray(hu) > CEMENT_HU) & _search_zone(region), dtype=np.bool_)


def detect_cement(hu: npt.NDArray[Any], region: VertebraRegion) -> CementFindings:
    """Cement or metal (> :data:`CEMENT_HU`) in and around the vertebra.

    ``hu`` is the CT cut to ``region.bbox`` (HU, same shape as ``region.mask``).

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from spinewatch.imaging.volume import Grid
    >>> mask = np.zeros((10, 10, 10), bool); mask[2:8, 2:8, 2:8] = True
    >>> region = SimpleNamespace(mask=mask, grid=Grid((10, 10, 10), np.eye(4)), level="L1")
    >>> hu = np.full((10, 10, 10), 200.0); hu[3:7, 3:7, 3:7] = 2000.0
    >>> detect_cement(hu, region)
    CementFindings(volume_ml=0.064, present=True, max_hu=2000.0)
    """
    check_crop(hu, region)
    hu = np.asarray(hu)
    mask = np.asarray(region.mask, dtype=np.bool_)
    # The search zone (the mask dilated by the margin) is only needed for the voxels that can
    # change the answer: the dense ones (the volume) and those hotter than the mask's own
    # maximum (max_hu; the mask is part of the zone). Same result as testing every voxel.
    n_dense = int(np.count_nonzero(_in_zone(region, hu > CEMENT_HU)))
    volume_ml = n_dense * region.grid.voxel_volume_ml
    if mask.any():
        mask_max = hu[mask].max()
        hotter = _in_zone(region, (hu > mask_max) & ~mask)
        max_hu = float(hu[hotter].max()) if hotter.any() else float(mask_max)
    else:
        max_hu = float(np.max(hu))
    return CementFindings(
        volume_ml=float(volume_ml),
        present=bool(volume_ml >= MIN_CEMENT_ML - 1e-12),
        max_hu=max_hu,
    )
