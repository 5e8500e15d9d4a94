"""Crops, boxes and distances on a voxel grid: the helpers every per-vertebra measurement shares.

Distances are Euclidean in millimetres with the voxel spacing per array axis (``spacing_mm``;
anisotropic voxels honoured); masks are boolean arrays indexed ``[i, j, k]`` like the volume they
were cut from. Nothing here knows about vertebrae: :mod:`spinewatch.imaging.anatomy` (regions,
frames), :mod:`spinewatch.imaging.density`, :mod:`spinewatch.imaging.lesions` and
:mod:`spinewatch.imaging.cement` build on it, so none of them has to import another for a box or
a distance (they used to: anatomy and density imported each other).

>>> import numpy as np
>>> from spinewatch.imaging.grid import depth_mm, mask_box
>>> cube = np.zeros((7, 7, 7), bool); cube[1:6, 1:6, 1:6] = True
>>> mask_box(cube)
(slice(1, 6, None), slice(1, 6, None), slice(1, 6, None))
>>> float(depth_mm(cube, (1.0, 1.0, 1.0)).max())  # the centre voxel: 3 voxels from outside
3.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinewatch.imaging.volume import Grid

__all__ = [
    "MAX_WINDOW_OFFSETS",
    "crop_grid",
    "depth_mm",
    "distance_within_mm",
    "gaussian_within",
    "largest_component",
    "mask_box",
    "padded_box",
    "within_mm",
]

BoolArray = npt.NDArray[np.bool_]


def crop_grid(grid: Grid, bbox: tuple[slice, slice, slice]) -> Grid:
    """The grid of ``bbox`` (slices with explicit starts/stops) inside ``grid``."""
    start = np.array([s.start for s in bbox], dtype=np.float64)
    affine = grid.affine.copy()
    affine[:3, 3] = grid.affine[:3, :3] @ start + grid.affine[:3, 3]
    shape = (
        bbox[0].stop - bbox[0].start,
        bbox[1].stop - bbox[1].start,
        bbox[2].stop - bbox[2].start,
    )
    return Grid(shape, affine)


def mask_box(mask: npt.NDArray[np.bool_]) -> tuple[slice, ...] | None:
    """The bounding box (slices) of the True voxels of ``mask``, None when there is none.

    The same as ``scipy.ndimage.find_objects(mask.view(np.uint8))[0]``, from projections: one
    ``any`` over the last axis of the whole array and one over the box it leaves (find_objects
    walks every voxel with a generic iterator, tens of times slower on a Fortran-ordered crop).
    """
    m: npt.NDArray[np.bool_] = np.asarray(mask, dtype=np.bool_)
    if m.ndim != 3:
        found = ndimage.find_objects(m.view(np.uint8))
        return found[0] if found else None
    plane = np.any(m, axis=2)
    rows = np.flatnonzero(plane.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(plane.any(axis=0))
    b0 = slice(int(rows[0]), int(rows[-1]) + 1)
    b1 = slice(int(cols[0]), int(cols[-1]) + 1)
    slabs = np.flatnonzero(np.any(m[b0, b1], axis=(0, 1)))
    return b0, b1, slice(int(slabs[0]), int(slabs[-1]) + 1)


def depth_mm(
    mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.float64]:
    """Distance in mm from each voxel of ``mask`` to the nearest voxel outside it (0 outside).

    The crop's border counts as outside, so a mask cut by the crop is not mistaken for a deep one.
    A surface voxel has depth = one voxel spacing (distance between voxel centres).
    """
    mask = np.asarray(mask, dtype=np.bool_)
    out = np.zeros(mask.shape, dtype=np.float64)
    box = mask_box(mask)
    if box is None:
        return out
    # Only the mask's bounding box (plus a ring of outside voxels) is transformed: the nearest
    # outside voxel of any mask voxel is never farther than that ring, so this is exact.
    padded = np.pad(mask[box], 1, constant_values=False)
    dist = ndimage.distance_transform_edt(padded, sampling=spacing_mm)
    out[box] = dist[1:-1, 1:-1, 1:-1]
    return out


#: :func:`distance_within_mm` runs its windowed passes when the windows along axes 1 and 2 hold
#: at most this many offsets in all, and uses ``scipy.ndimage.distance_transform_edt`` beyond.
MAX_WINDOW_OFFSETS = 16


def distance_within_mm(
    source: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float], radius_mm: float
) -> npt.NDArray[np.float64]:
    """Euclidean distance (mm) from each voxel to the nearest True voxel of ``source`` (0 on
    it), exact wherever it is <= ``radius_mm``; larger (possibly ``inf``) beyond.

    Equal to ``distance_transform_edt(~source, sampling=spacing_mm)`` up to the radius, for
    thresholds at or below it. The squared distance is separable: the distance along axis 0 to
    the nearest True voxel of the same line (two running extrema), then one pass per further
    axis: the minimum over the offsets ``a`` with ``|a| * spacing <= radius`` of the previous
    pass shifted by ``a`` plus ``(a * spacing)**2`` (summed in scipy's axis order, so the values
    are the same to the last bit). For a small radius in voxels this is several times faster
    than the full feature transform; for a large one the feature transform is used.
    """
    src = np.asarray(source, dtype=np.bool_)
    if src.ndim != 3 or not np.isfinite(radius_mm) or src.size == 0:
        return np.asarray(ndimage.distance_transform_edt(~src, sampling=spacing_mm))
    reach = [
        min(int(np.floor(radius_mm / s)) + 1, n - 1)
        for s, n in zip(spacing_mm, src.shape, strict=True)
    ]
    if reach[1] + reach[2] > MAX_WINDOW_OFFSETS:
        return np.asarray(ndimage.distance_transform_edt(~src, sampling=spacing_mm))
    # axis 0: distance (voxels) to the nearest True voxel before / after along the line
    pos = np.arange(src.shape[0], dtype=np.float64)[:, None, None]
    before = np.where(src, pos, -np.inf)
    np.maximum.accumulate(before, axis=0, out=before)
    np.subtract(pos, before, out=before)
    after = np.where(src, pos, np.inf)[::-1]
    np.minimum.accumulate(after, axis=0, out=after)
    after = after[::-1]
    np.subtract(after, pos, out=after)
    d2 = np.minimum(before, after, out=before)
    del after
    d2 *= spacing_mm[0]
    np.multiply(d2, d2, out=d2)
    tmp = np.empty_like(d2)
    for axis in (1, 2):
        n_off, sp = reach[axis], spacing_mm[axis]
        if n_off <= 0:
            continue
        out = d2.copy()
        for a in range(1, n_off + 1):
            w = (a * sp) * (a * sp)
            lo: list[slice] = [slice(None)] * 3
            hi: list[slice] = [slice(None)] * 3
            lo[axis], hi[axis] = slice(None, -a), slice(a, None)
            lo_t, hi_t = tuple(lo), tuple(hi)
            t = tmp[lo_t]
            np.add(d2[hi_t], w, out=t)
            np.minimum(out[lo_t], t, out=out[lo_t])
            np.add(d2[lo_t], w, out=t)
            np.minimum(out[hi_t], t, out=out[hi_t])
        d2 = out
    return np.asarray(np.sqrt(d2, out=d2), dtype=np.float64)


def largest_component(mask: BoolArray) -> tuple[BoolArray, float]:
    """The largest 26-connected component and its share of the True voxels.

    Labelled by cc3d (``connected-components-3d``, the field's library for it: several times
    faster than ``scipy.ndimage.label`` and it releases the GIL); the components are the same.
    Between components of equal size the one whose first voxel comes first in C order wins,
    as with ``scipy.ndimage.label``'s numbering, so the result does not depend on the library.
    """
    import cc3d

    m = np.asarray(mask, dtype=np.bool_)
    lab, n = cc3d.connected_components(m, connectivity=26, return_N=True)
    if n <= 1:
        return m, 1.0
    counts = np.bincount(lab.ravel(order="K"), minlength=n + 1)
    counts[0] = 0
    top = np.flatnonzero(counts == counts.max())
    best = int(top[0])
    if top.size > 1:  # a tie: the component met first in C order, as scipy numbers them
        flat = lab.ravel(order="C")
        best = int(min(top, key=lambda c: int(np.argmax(flat == c))))
    return np.asarray(lab == best), float(counts[best] / counts.sum())


def padded_box(
    mask: BoolArray, pad_mm: float, spacing_mm: tuple[float, float, float]
) -> tuple[slice, ...]:
    """Bounding box of the True voxels of ``mask`` (not empty) grown by ``pad_mm`` (+1 voxel)."""
    found = mask_box(mask)
    assert found is not None
    out = []
    for axis, sl in enumerate(found):
        pad = int(np.ceil(pad_mm / spacing_mm[axis])) + 1
        out.append(slice(max(sl.start - pad, 0), min(sl.stop + pad, mask.shape[axis])))
    return tuple(out)


def within_mm(
    mask: BoolArray, spacing_mm: tuple[float, float, float], radius_mm: float
) -> BoolArray:
    """Voxels whose centre lies within ``radius_mm`` of a True voxel of ``mask`` (the mask
    included): ``distance_transform_edt(~mask, sampling=spacing_mm) <= radius_mm``.

    Exact, but the distance transform runs only in the bounding box of ``mask`` grown by the
    radius (no voxel outside it can be that close), not over the whole array.
    """
    out = np.zeros(mask.shape, dtype=np.bool_)
    if not mask.any():
        return out
    box = padded_box(mask, radius_mm, spacing_mm)
    out[box] = distance_within_mm(mask[box], spacing_mm, radius_mm) <= radius_mm
    return out


def gaussian_within(
    arr: npt.NDArray[np.float32],
    sigma_vox: Sequence[float],
    nonzero: Sequence[tuple[int, int]],
) -> tuple[npt.NDArray[np.float32], list[tuple[int, int]]]:
    """``scipy.ndimage.gaussian_filter(arr, sigma_vox)`` (mode ``reflect``, ``truncate=4``,
    float32 between the axes as scipy keeps it) bit for bit, for an ``arr`` that is zero
    outside the box ``nonzero`` (per axis ``(start, stop)``); returns the result and the box
    outside which the result is zero.

    Each 1D pass filters only the lines that can hold a non-zero value, over the box grown by
    the kernel's radius: every output value is the same sum of the same products as scipy's
    (a line's outputs do not depend on the other lines, and the values a shortened line
    mirrors at its ends are the zeros the full line has there). Smoothing a vertebral body's
    crop grown by 4 sigma mostly filtered zeros before.
    """
    out = np.asarray(arr, dtype=np.float32)
    box = [(int(lo), int(hi)) for lo, hi in nonzero]
    if any(hi <= lo for lo, hi in box):
        return np.zeros(out.shape, dtype=np.float32), box
    for axis, sigma in enumerate(sigma_vox):
        if not sigma > 1e-15:
            continue
        radius = int(4.0 * float(sigma) + 0.5)
        n = out.shape[axis]
        lo, hi = max(box[axis][0] - radius, 0), min(box[axis][1] + radius, n)
        sub: list[slice] = [slice(a, b) for a, b in box]
        sub[axis] = slice(lo, hi)
        region = tuple(sub)
        filtered = ndimage.gaussian_filter1d(out[region], float(sigma), axis=axis, truncate=4.0)
        out = np.zeros(out.shape, dtype=np.float32)
        out[region] = filtered
        box[axis] = (lo, hi)
    return out, box
