"""Where a lytic lesion matters for the decision: the posterior wall zone and the pedicle zone.

Private helpers of :mod:`spinewatch.imaging.lesions` (world mm, the vertebra's own frame; arrays
are crops ``[i, j, k]`` on ``region.grid``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinewatch.imaging.density import distance_within_mm, mask_box

if TYPE_CHECKING:
    from spinewatch.imaging.anatomy import VertebraRegion

Box = tuple[slice, slice, slice]


def bbox(mask: npt.NDArray[np.bool_], pad_mm: float, spacing: tuple[float, float, float]) -> Box:
    """The bounding box of ``mask`` (not empty) padded by ``pad_mm`` + 1 voxel (clipped)."""
    sl = mask_box(mask)
    if sl is None:
        raise ValueError("bbox needs a non-empty mask")
    return grow(sl[0], sl[1], sl[2], pad_mm=pad_mm, spacing=spacing, shape=mask.shape)


def grow(
    *box: slice, pad_mm: float, spacing: tuple[float, float, float], shape: tuple[int, ...]
) -> Box:
    """The box ``box`` (three slices) grown by ``pad_mm`` (+1 voxel) on every side, clipped."""
    out = []
    for axis in range(3):
        pad = int(np.ceil(pad_mm / spacing[axis])) + 1
        out.append(slice(max(box[axis].start - pad, 0), min(box[axis].stop + pad, shape[axis])))
    return out[0], out[1], out[2]


def body_points(
    body: npt.NDArray[np.bool_], region: VertebraRegion
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Indices (n, 3) of the True voxels of ``body`` and their local (right, anterior,
    superior) mm; the region's cached arrays when ``body`` is the region's own body."""
    if body is region.body:
        return region.body_voxels, region.body_local_mm
    from spinewatch.imaging.anatomy import local_coordinates

    idx = np.argwhere(body)
    return idx, local_coordinates(region.grid, region.frame, idx)


def posterior_wall_zone(
    body: npt.NDArray[np.bool_], region: VertebraRegion, depth_zone_mm: float
) -> npt.NDArray[np.bool_]:
    """Body voxels within ``depth_zone_mm`` of the posterior wall along ``-frame.anterior``.

    The body's voxels are binned into columns parallel to ``frame.anterior`` (bins of the largest
    voxel spacing in the right/superior plane); in each column the posterior-most voxel marks the
    wall, and the voxels within ``depth_zone_mm`` in front of it that lie in the posterior half of
    the body are the zone. (Columns, not a step test, so a voxel staircase on an oblique endplate
    is not mistaken for the wall.)
    """
    idx, local = body_points(body, region)
    zone = np.zeros(body.shape, dtype=np.bool_)
    if idx.size == 0:
        return zone
    r, a, sup = local[:, 0], local[:, 1], local[:, 2]
    bin_mm = max(region.grid.spacing_mm)
    kr = np.floor(r / bin_mm).astype(np.int64)
    ks = np.floor(sup / bin_mm).astype(np.int64)
    kr -= kr.min()
    ks -= ks.min()
    col = kr * (int(ks.max()) + 1) + ks  # one index per (right, superior) column
    wall = np.full(int(col.max()) + 1, np.inf)
    np.minimum.at(wall, col, a)
    # the wall surface lies about half a voxel behind the posterior-most voxel centre
    half = 0.5 * min(region.grid.spacing_mm)
    sel = (a - wall[col] + half <= depth_zone_mm + 1e-9) & (a <= float(np.median(a)))
    zone[tuple(idx[sel].T)] = True
    return zone


def pedicle_zone(
    region: VertebraRegion,
    mask: npt.NDArray[np.bool_],
    body: npt.NDArray[np.bool_],
    excluded: npt.NDArray[np.bool_],
    *,
    zone_mm: float,
    edge_margin_mm: float,
) -> npt.NDArray[np.bool_]:
    """Posterior-element voxels within ``zone_mm`` of the body (the pedicles and their bases),
    at least ``edge_margin_mm`` inside the vertebra mask's outer surface (the segmentation's
    edge voxels mix with fat and would look lytic), not ``excluded`` (cortex, cement)."""
    spacing = region.grid.spacing_mm
    posterior = np.asarray(region.posterior, dtype=np.bool_) & mask & ~body
    found = np.zeros(mask.shape, dtype=np.bool_)
    if not posterior.any() or not body.any():
        return found
    box = bbox(posterior, zone_mm, spacing)
    post, bod, msk = posterior[box], body[box], mask[box]
    if not bod.any():
        return found
    # The distance to the body is needed only in the body's box grown by the zone (a posterior
    # voxel within the zone distance has its nearest body voxel in that box).
    near = grow(*bbox(bod, 0.0, spacing), pad_mm=zone_mm, spacing=spacing, shape=bod.shape)
    to_body = ndimage.distance_transform_edt(~bod[near], sampling=spacing)
    half = 0.5 * min(spacing)
    # depth inside the mask (the box's edges count as outside), exact up to margin + half
    reach_mm = edge_margin_mm + half
    ext = grow(*near, pad_mm=reach_mm, spacing=spacing, shape=bod.shape)
    depth = distance_within_mm(~np.pad(msk[ext], 1), spacing, reach_mm)
    inner = tuple(
        slice(1 + n.start - e.start, 1 + n.stop - e.start) for n, e in zip(near, ext, strict=True)
    )
    inside = depth[inner] - half > edge_margin_mm - 1e-9
    zone = np.zeros(post.shape, dtype=np.bool_)
    zone[near] = post[near] & (to_body <= zone_mm) & inside & ~excluded[box][near]
    found[box] = zone
    return found


def sides(
    found: npt.NDArray[np.bool_], region: VertebraRegion, min_vox: float
) -> tuple[bool, bool]:
    """(left, right): at least ``min_vox`` voxels of ``found`` on the patient's left / right of the
    body centre, judged along ``frame.right``."""
    idx = np.argwhere(found)
    if idx.size == 0:
        return False, False
    xyz = region.grid.to_world(idx)
    r = (xyz - np.asarray(region.frame.origin_mm, dtype=np.float64)) @ np.asarray(
        region.frame.right, dtype=np.float64
    )
    left = int(np.count_nonzero(r < 0)) >= min_vox - 1e-9
    right = int(np.count_nonzero(r > 0)) >= min_vox - 1e-9
    return left, right


def endplate_distances(
    body: npt.NDArray[np.bool_], region: VertebraRegion
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64], int]:
    """For each body voxel: its distance (mm, along ``frame.superior``) below the body's upper
    surface and above its lower surface in its own column, and the column's index; and the
    number of columns. Columns run along ``frame.superior`` on a grid of the largest voxel
    spacing in the right/anterior plane (as the wall zone's columns run along the anterior axis),
    so concave or tilted endplates are followed column by column. Outside the body: inf / -1."""
    idx, local = body_points(body, region)
    top = np.full(body.shape, np.inf)
    bottom = np.full(body.shape, np.inf)
    column = np.full(body.shape, -1, dtype=np.int64)
    if idx.size == 0:
        return top, bottom, column, 0
    bin_mm = max(region.grid.spacing_mm)
    kr = np.floor(local[:, 0] / bin_mm).astype(np.int64)
    ka = np.floor(local[:, 1] / bin_mm).astype(np.int64)
    kr -= kr.min()
    ka -= ka.min()
    col = kr * (int(ka.max()) + 1) + ka
    sup = local[:, 2]
    n = int(col.max()) + 1
    hi = np.full(n, -np.inf)
    lo = np.full(n, np.inf)
    np.maximum.at(hi, col, sup)
    np.minimum.at(lo, col, sup)
    where = tuple(idx.T)
    top[where] = hi[col] - sup
    bottom[where] = sup - lo[col]
    _, dense_col = np.unique(col, return_inverse=True)
    column[where] = dense_col
    return top, bottom, column, int(dense_col.max()) + 1
