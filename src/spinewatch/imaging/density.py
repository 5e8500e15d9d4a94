"""Trabecular attenuation of a vertebral body: the opportunistic-CT bone density measure.

The body mask is eroded *in millimetres* away from its surface (cortex, endplates, partial volume
with the disc and soft tissue) with a Euclidean distance transform that honours anisotropic voxel
spacing (``scipy.ndimage.distance_transform_edt(..., sampling=spacing_mm)``); the median and mean
HU of what remains is the trabecular attenuation. This is the measure of TotalSegmentator's spine
report (median HU of the body eroded by 4 mm) and of Pickhardt et al. 2013.

Cement (PMMA, > 1500 HU) and metal are not bone: voxels within
:data:`DENSE_EXCLUSION_MARGIN_MM` of any voxel above :data:`CEMENT_HU` are left out (their
streak and blooming artefacts would bias the figure either way).

Pickhardt thresholds (Ann Intern Med 2013; validated for **L1** -- SpineWatch reports the flags at
every level for orientation, but only L1 has the published accuracy):

* ``osteoporosis_likely_hu_le_160``: <= 160 HU, 90% sensitive for osteoporosis;
* ``fracture_risk_hu_le_145``: <= 145 HU, 97% of patients with moderate/severe vertebral
  fractures were at or below it;
* ``osteoporosis_hu_le_110``: <= 110 HU, > 90% specific for osteoporosis.

The flags are judged on the *median*, the robust figure (a small lesion or a bone island moves the
mean, barely the median).

On a contrast CT the thresholds are raised by ``contrast_offset_hu`` (the phase's
:attr:`~spinewatch.core.acquisition.ContrastPhase.density_offset_hu`: +20 HU arterial, +14.75 HU
portal-venous, from TotalSegmentator's spine report): the flag names keep their native meaning
(``osteoporosis_hu_le_110`` is "osteoporotic by the 110 HU criterion") and one more flag,
``contrast_offset_plus_<offset>_hu`` (e.g. ``contrast_offset_plus_20_hu``), says that each was
judged at its threshold + offset.

Arrays are crops ``[i, j, k]`` on ``region.grid`` (voxel axes as stored; the grid's affine gives
world RAS+ mm), the same shape as ``region.mask``.

>>> import numpy as np
>>> from spinewatch.imaging.density import eroded_mask
>>> box = np.zeros((20, 20, 20), bool); box[2:18, 2:18, 2:18] = True
>>> int(eroded_mask(box, (1.0, 1.0, 1.0), 4.0).sum())  # 16 -> 8 voxels per side
512
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.errors import InputError
from spinewatch.imaging.grid import (
    MAX_WINDOW_OFFSETS,
    depth_mm,
    distance_within_mm,
    mask_box,
)

if TYPE_CHECKING:
    from spinewatch.imaging.anatomy import VertebraRegion

__all__ = [
    "CEMENT_HU",
    "DEFAULT_EROSION_MM",
    "DENSE_EXCLUSION_MARGIN_MM",
    "MAX_EROSION_FRACTION_OF_DEPTH",
    "MAX_WINDOW_OFFSETS",
    "MIN_TRABECULAR_VOLUME_ML",
    "MIN_TRABECULAR_VOXELS",
    "PICKHARDT_FLAGS",
    "CropShapeError",
    "ErosionError",
    "TrabecularDensity",
    "check_crop",
    "dense_exclusion",
    "depth_mm",
    "distance_within_mm",
    "eroded_mask",
    "mask_box",
    "pickhardt_flags",
    "trabecular_density",
]

log = logging.getLogger(__name__)

#: Above this, a voxel is cement (PMMA opacified with barium/zirconia: ~1500-3000 HU) or metal,
#: never bone: dense cortical bone stays below ~1200-1400 HU at 120 kVp. The one definition, used
#: by :mod:`spinewatch.imaging.cement` (detection) and here and in lesions (exclusion).
CEMENT_HU = 1500.0
#: Default erosion from the body surface, mm (TotalSegmentator's spine report uses 4 mm).
DEFAULT_EROSION_MM = 4.0
#: The erosion never exceeds this fraction of the body's largest inscribed depth (its "inradius"),
#: so a small cervical body (depth ~6 mm) keeps its core: 0.5 x 6 mm = 3 mm is used there.
MAX_EROSION_FRACTION_OF_DEPTH = 0.5
#: Fewer trabecular voxels than this, or less volume than :data:`MIN_TRABECULAR_VOLUME_ML`, and no
#: density is reported (None): the figure would be noise and partial volume.
MIN_TRABECULAR_VOXELS = 30
MIN_TRABECULAR_VOLUME_ML = 0.1
#: Voxels this close (mm) to cement or metal (> CEMENT_HU) are excluded: blooming and streaks.
DENSE_EXCLUSION_MARGIN_MM = 2.0
#: (flag, threshold HU): a flag is set when the median HU is <= its threshold (Pickhardt 2013).
PICKHARDT_FLAGS: tuple[tuple[str, float], ...] = (
    ("osteoporosis_likely_hu_le_160", 160.0),
    ("fracture_risk_hu_le_145", 145.0),
    ("osteoporosis_hu_le_110", 110.0),
)


class CropShapeError(InputError):
    """A CT crop whose shape is not the vertebra region's crop shape."""


class ErosionError(InputError):
    """An erosion depth that is negative or not finite."""


@dataclass(frozen=True)
class TrabecularDensity:
    """Trabecular attenuation of one vertebral body.

    ``median_hu``/``mean_hu`` in Hounsfield units over ``n_voxels`` voxels of the body eroded by
    ``erosion_mm`` (the depth actually used, which may be smaller than asked for a small body);
    ``flags`` are the Pickhardt flags met by the median (see :data:`PICKHARDT_FLAGS`), judged at
    each threshold + ``threshold_offset_hu`` (the contrast phase's offset; 0 on a native CT).
    """

    median_hu: float
    mean_hu: float
    n_voxels: int
    erosion_mm: float
    flags: tuple[str, ...]
    threshold_offset_hu: float = 0.0


def pickhardt_flags(median_hu: float, contrast_offset_hu: float = 0.0) -> tuple[str, ...]:
    """The :data:`PICKHARDT_FLAGS` met by ``median_hu`` with every threshold raised by
    ``contrast_offset_hu`` (HU), plus ``contrast_offset_plus_<offset>_hu`` when it is not 0.

    >>> pickhardt_flags(125.0, 20.0)
    ('osteoporosis_likely_hu_le_160', 'fracture_risk_hu_le_145', 'osteoporosis_hu_le_110', \
'contrast_offset_plus_20_hu')
    >>> pickhardt_flags(125.0)
    ('osteoporosis_likely_hu_le_160', 'fracture_risk_hu_le_145')
    """
    if not math.isfinite(contrast_offset_hu) or contrast_offset_hu < 0:
        raise InputError(
            f"contrast offset {contrast_offset_hu!r} HU: expected a finite number of HU >= 0"
        )
    flags = [name for name, limit in PICKHARDT_FLAGS if median_hu <= limit + contrast_offset_hu]
    if contrast_offset_hu:
        flags.append(f"contrast_offset_plus_{contrast_offset_hu:g}_hu")
    return tuple(flags)


def check_crop(hu: npt.NDArray[Any], region: VertebraRegion) -> None:
    """Raise :class:`CropShapeError` unless ``hu`` has the shape of ``region.mask``."""
    if np.shape(hu) != region.mask.shape:
        raise CropShapeError(
            f"{region.level}: CT crop has shape {np.shape(hu)}, expected the vertebra crop shape "
            f"{region.mask.shape} (the CT cut to region.bbox)"
        )


def eroded_mask(
    mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float], erosion_mm: float
) -> npt.NDArray[np.bool_]:
    """``mask`` eroded by ``erosion_mm`` mm: the voxels whose centre lies more than ``erosion_mm``
    inside the mask's surface (the surface taken half a voxel outside the surface voxels' centres,
    so ``erosion_mm = 0`` returns the mask itself)."""
    if not math.isfinite(erosion_mm) or erosion_mm < 0:
        raise ErosionError(f"erosion must be a finite number of mm >= 0, got {erosion_mm!r}")
    half = 0.5 * min(spacing_mm)
    return np.asarray(depth_mm(mask, spacing_mm) - half > erosion_mm - 1e-9, dtype=np.bool_) & mask


def dense_exclusion(
    hu: npt.NDArray[Any],
    spacing_mm: tuple[float, float, float],
    *,
    threshold_hu: float = CEMENT_HU,
    margin_mm: float = DENSE_EXCLUSION_MARGIN_MM,
) -> npt.NDArray[np.bool_]:
    """Voxels within ``margin_mm`` mm of any voxel above ``threshold_hu`` (cement, metal), the
    dense voxels included; all False when there is none."""
    dense = np.asarray(hu > threshold_hu)
    if not dense.any():
        return np.zeros(dense.shape, dtype=np.bool_)
    dist = distance_within_mm(dense, spacing_mm, margin_mm)
    return np.asarray(dist <= margin_mm, dtype=np.bool_)


def trabecular_density(
    hu: npt.NDArray[Any],
    region: VertebraRegion,
    *,
    erosion_mm: float = DEFAULT_EROSION_MM,
    contrast_offset_hu: float = 0.0,
) -> TrabecularDensity | None:
    """Median and mean HU of the vertebral body eroded by ``erosion_mm`` mm from its surface.

    ``contrast_offset_hu``: added to the Pickhardt flag thresholds (the contrast phase's
    offset; see the module docstring); the measured HU are never changed.

    ``hu`` is the CT cut to ``region.bbox`` (same shape as ``region.mask``; any dtype, HU). The
    erosion used is ``min(erosion_mm, MAX_EROSION_FRACTION_OF_DEPTH x the body's largest depth)``
    and is reported. Cement/metal and their surroundings are excluded. Returns None when the body
    is empty or fewer than :data:`MIN_TRABECULAR_VOXELS` voxels (or
    :data:`MIN_TRABECULAR_VOLUME_ML`) remain.
    """
    check_crop(hu, region)
    if not math.isfinite(erosion_mm) or erosion_mm < 0:
        raise ErosionError(f"erosion must be a finite number of mm >= 0, got {erosion_mm!r}")
    body = np.asarray(region.body, dtype=np.bool_)
    if not body.any():
        return None
    spacing = region.grid.spacing_mm
    depth = region.body_depth_mm
    half = 0.5 * min(spacing)
    max_depth = float(depth.max()) - half
    used_mm = max(0.0, min(float(erosion_mm), MAX_EROSION_FRACTION_OF_DEPTH * max_depth))
    core = (depth - half > used_mm - 1e-9) & body
    core &= ~dense_exclusion(hu, spacing)
    values = np.asarray(hu, dtype=np.float64)[core]
    n = int(values.size)
    if n < MIN_TRABECULAR_VOXELS or n * region.grid.voxel_volume_ml < MIN_TRABECULAR_VOLUME_ML:
        log.info("%s: only %d trabecular voxels after %.1f mm erosion", region.level, n, used_mm)
        return None
    median_hu = float(np.median(values))
    return TrabecularDensity(
        median_hu=median_hu,
        mean_hu=float(values.mean()),
        n_voxels=n,
        erosion_mm=used_mm,
        flags=pickhardt_flags(median_hu, contrast_offset_hu),
        threshold_offset_hu=float(contrast_offset_hu),
    )
