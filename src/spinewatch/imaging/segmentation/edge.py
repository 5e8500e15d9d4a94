"""The vertebrae's outer surface re-drawn on the CT's own grid at the half-maximum of the cortex
next to it.

Why: the labels come from a bone mask made on a (denoised) working grid, so their outer surface
sits where the *smoothed* HU crosses the bone and marrow thresholds. Smoothing carries a bright
cortex a voxel into the soft tissue around it, and on a thin-slice CT with voxel noise of ~50 HU
the soft tissue next to the cortex crosses them in places: the labels end up with a one-voxel
shell outside the bone (measured on the TPTBox crop against its expert mask: three quarters of
the leak lies within one voxel of the expert surface, docs/segmentation.md).

The rule (partial volume, linear mixing): a voxel that straddles the bone surface reads the
bone's and the soft tissue's HU weighted by how much of each it holds, so it holds more bone
than soft tissue exactly when it reads above the midpoint between them -- the half-maximum edge
of a blurred step (Hangartner, "Thresholding technique for accurate analysis of density and
geometry in QCT, pQCT and muCT images", J Musculoskelet Neuronal Interact 2007;7:9-16), which
a symmetric blur does not move. The two levels are taken locally: the bone level from the
brightest voxel of the vertebra directly behind the surface voxel (its own cortex; no cortex
reading as bone behind it -> nothing is decided), the soft-tissue level from the mean of the
unlabelled soft tissue around it. Only the outermost layer is tested, once: marrow reads like
soft tissue (osteoporotic or lytic marrow ~50 HU), so a rule that peeled inwards would empty a
body through any gap in its cortex. Surface voxels are those next to the outside in their axial
slice's filled outline or across a slice (so the canal closed by the arch and marrow pockets do
not count as outside, while the endplates' faces do).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from spinewatch.imaging.segmentation.bone import BONE_HU, in_plane_structure

__all__ = ["SOFT_REACH_MM", "SOFT_TISSUE_MAX_HU", "refine_edge"]

#: Soft tissue is averaged over a box of this half-size, mm: wide enough to hold soft tissue
#: beside any surface voxel, narrow enough to tell fat from muscle or a disc. Engineering choice.
SOFT_REACH_MM = 8.0
#: Unlabelled voxels reading below this (HU, after the noise smoothing) count as soft tissue
#: (fat, muscle, disc: -100..100 HU); brighter ones are other bone. Engineering choice.
SOFT_TISSUE_MAX_HU = 150.0
#: Soft-tissue level where no soft tissue lies within reach, HU (muscle).
_DEFAULT_SOFT_HU = 40.0
_SLAB = 64


def refine_edge(
    hu: npt.NDArray[Any],
    labels: npt.NDArray[np.uint8],
    spacing_mm: tuple[float, float, float],
    sigma_vox: tuple[float, float, float] | None = None,
    box: tuple[slice, slice, slice] | None = None,
) -> int:
    """Drop the outer-surface voxels of ``labels`` that read below the local half-maximum
    (module docstring); ``labels`` is modified in place. Returns how many voxels were dropped.

    ``hu``: the CT (any numeric dtype; a view is fine), ``labels``: uint8 of the same shape,
    axes R, A, S (axis 2 is the slice axis); ``spacing_mm``: voxel size per axis;
    ``sigma_vox``: Gaussian smoothing of the HU before the decision (the noise module's, for a
    noisy CT; it does not move a half-maximum edge), None for none; ``box``: slices holding
    every label (found when None -- a pass over the whole grid the caller may already know).

    Works slab by slab along axis 2 on the labelled box, deciding on the labels as given.

    >>> hu = np.full((9, 6, 5), 40.0, dtype=np.float32)
    >>> hu[2:7] = 800.0  # a bone plate, 5 voxels thick, in soft tissue at 40 HU
    >>> hu[1] = 300.0  # voxels holding about a third bone: outside (midpoint 420 HU)
    >>> hu[7] = 500.0  # ... about 60 % bone: inside
    >>> labels = np.zeros(hu.shape, dtype=np.uint8)
    >>> labels[1:8] = 1
    >>> refine_edge(hu, labels, (1.0, 1.0, 1.0))
    30
    >>> int(labels[1].sum()), int(labels[7].sum())
    (0, 30)
    """
    if box is None:
        found = ndi.find_objects((labels > 0).astype(np.uint8))
        if not found or found[0] is None:
            return 0
        box = (found[0][0], found[0][1], found[0][2])
    reach = [max(1, round(SOFT_REACH_MM / s)) for s in spacing_mm]
    smooth = 0 if sigma_vox is None else int(np.ceil(2.0 * max(sigma_vox)))
    pad = [r + smooth + 1 for r in reach]
    lo = [max(0, b.start - p) for b, p in zip(box, pad, strict=True)]
    hi = [min(n, b.stop + p) for b, p, n in zip(box, pad, labels.shape, strict=True)]
    drops = []
    for k0 in range(box[2].start, box[2].stop, _SLAB):
        k1 = min(box[2].stop, k0 + _SLAB)
        a, b = max(lo[2], k0 - pad[2]), min(hi[2], k1 + pad[2])
        lab = labels[lo[0] : hi[0], lo[1] : hi[1], a:b]
        crop = np.asarray(hu[lo[0] : hi[0], lo[1] : hi[1], a:b], dtype=np.float32)
        drop = _outside_half_max(crop, lab, spacing_mm, reach, sigma_vox)
        drops.append((k0, k1, drop[:, :, k0 - a : k1 - a]))
    # applied once all are decided: each slab decides on the labels as given
    dropped = 0
    for k0, k1, drop in drops:
        labels[lo[0] : hi[0], lo[1] : hi[1], k0:k1][drop] = 0
        dropped += int(np.count_nonzero(drop))
    return dropped


def _outside_half_max(
    hu: npt.NDArray[np.float32],
    lab: npt.NDArray[np.uint8],
    spacing_mm: tuple[float, float, float],
    reach: list[int],
    sigma_vox: tuple[float, float, float] | None,
) -> npt.NDArray[np.bool_]:
    if sigma_vox is not None:
        hu = ndi.gaussian_filter(hu, sigma_vox, truncate=2.0)
    inside = lab > 0
    soft = ~inside & (hu < SOFT_TISSUE_MAX_HU)
    size = [2 * r + 1 for r in reach]
    weight = ndi.uniform_filter(soft.astype(np.float32), size=size, mode="nearest")
    total = ndi.uniform_filter(np.where(soft, hu, 0.0), size=size, mode="nearest")
    soft_hu = np.where(weight > 1e-3, total / np.maximum(weight, 1e-6), _DEFAULT_SOFT_HU)
    cross = ndi.generate_binary_structure(3, 1)
    # outside: what is connected to the crop's in-plane border within its axial slice (a
    # labelling pass; iterated hole filling is several times slower on the CT grid)
    gaps, _ = ndi.label(~inside, structure=in_plane_structure())
    border = np.zeros(int(gaps.max()) + 1, dtype=bool)
    for face in (gaps[0], gaps[-1], gaps[:, 0], gaps[:, -1]):
        border[face] = True
    border[0] = False
    outside = border[gaps]
    surface = inside & _next_to(outside)
    behind = inside & ~surface
    bone_hu = ndi.maximum_filter(np.where(behind, hu, -np.inf), footprint=cross, mode="nearest")
    return np.asarray(surface & (bone_hu >= BONE_HU) & (hu < 0.5 * (bone_hu + soft_hu)))


def _next_to(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Voxels with a face neighbour in ``mask`` (the array's border counts as not in it)."""
    out = np.zeros_like(mask)
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        out[tuple(lo)] |= mask[tuple(hi)]
        out[tuple(hi)] |= mask[tuple(lo)]
    return out
