"""Anterior, middle and posterior vertebral body heights, in mm, in the vertebra's own frame.

Method (:func:`body_heights`):

1. The body's voxel centres are projected into the vertebra frame
   (:class:`~spinewatch.imaging.anatomy.VertebraFrame`: right ``u``, anterior ``v``, superior
   ``w``, mm; ``superior`` is perpendicular to the endplates).
2. The antero-posterior depth ``D`` is the extent along ``v`` of the mid-sagittal band
   (``|u| <= COLUMN_HALF_WIDTH_MM``), from the most anterior to the most posterior voxel centre
   plus one voxel's extent along ``v``.
3. Three columns of the body, ``2 * COLUMN_HALF_WIDTH_MM`` wide in ``u`` and ``v``, are taken on
   the mid-sagittal line at 15 % (anterior), 50 % (middle) and 85 % (posterior) of ``D`` from the
   anterior edge -- the positions TotalSegmentator's vertebral-body report uses.
4. Each column is sampled by ``RAYS_PER_SIDE**2`` rays parallel to ``superior`` on a regular
   grid across the column. Along each ray the body mask is sampled every ``RAY_STEP_MM``
   (<= a quarter voxel) by nearest neighbour -- i.e. each voxel is treated as the box it stands
   for -- and the ray's height is the number of body samples times the step. This is exact
   for the voxelised body in any orientation (oblique, tilted, permuted axes), with sub-voxel
   resolution. The column's height is the straight-line fit of its rays' heights against ``v``
   evaluated at the column's centre, which removes the bias of a sloping (wedged) endplate
   across the column's width; rays whose height is an outlier (more than 3 MAD plus half a
   voxel from the median) are dropped first.

A voxel's extent along a unit direction ``d`` is ``sum_i s_i |a_i . d|`` (``s_i`` the spacing and
``a_i`` the world direction of voxel axis ``i``): the spacing itself on an axis-aligned grid.
The heights of a truncated vertebra (cut by the scan's edge) are not measured: None.

On a grid whose slices are parallel to the endplates the surfaces are staircases, so a height is
exact only to about +-half a slice per endplate; oblique endplates (the usual lordosis and kyphosis)
average the staircase out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinewatch.imaging.anatomy import VertebraRegion
from spinewatch.imaging.volume import Grid

__all__ = [
    "COLUMN_FRACTIONS",
    "COLUMN_HALF_WIDTH_MM",
    "BodyHeights",
    "body_heights",
    "voxel_extent_mm",
]

FloatArray = npt.NDArray[np.float64]

#: Column positions as fractions of the AP depth from the anterior edge.
COLUMN_FRACTIONS: tuple[float, float, float] = (0.15, 0.50, 0.85)
#: Half-width of each column in the right and anterior directions, mm.
COLUMN_HALF_WIDTH_MM = 2.0
_MIN_RAYS = 3
#: Rays per column side (RAYS_PER_SIDE**2 rays per column) and their sampling step, mm.
RAYS_PER_SIDE = 5
RAY_STEP_MM = 0.1


@dataclass(frozen=True)
class BodyHeights:
    """Body heights (mm) and where they were measured.

    ``ap_depth_mm``: antero-posterior depth of the body on the mid-sagittal line;
    ``columns_v_mm``: the anterior coordinates (frame ``v``, mm from the body centroid) of the
    anterior, middle and posterior columns.
    """

    anterior_mm: float
    middle_mm: float
    posterior_mm: float
    ap_depth_mm: float
    columns_v_mm: tuple[float, float, float]


def voxel_extent_mm(grid: Grid, direction: npt.ArrayLike) -> float:
    """Extent of one voxel of ``grid`` along the unit world ``direction``, mm."""
    d = np.asarray(direction, dtype=np.float64)
    spacing = np.asarray(grid.spacing_mm)
    return float(np.sum(spacing * np.abs(grid.axis_directions.T @ d)))


Sampler = Callable[[FloatArray], FloatArray]


def _block_body_sampler(region: VertebraRegion) -> Sampler | None:
    """On a working grid (``region.block`` != (1, 1, 1)): linear interpolation, at voxel
    coordinates of ``region.grid``, of the body on the full-resolution voxels -- the label's own
    voxels within one block of the block body -- so the endplates keep the scan's resolution.
    None on the scan's own grid or without the full-resolution label map."""
    if region.block == (1, 1, 1) or region.full_labels is None:
        return None
    f = np.asarray(region.block, dtype=np.float64)
    start = np.array([s.start for s in region.bbox], dtype=np.int64)
    shape = np.array([s.stop - s.start for s in region.bbox], dtype=np.int64)
    near_body = ndimage.binary_dilation(region.body, structure=np.ones((3, 3, 3), dtype=bool))
    labels, label = region.full_labels, region.label
    fk = np.asarray(region.block, dtype=np.int64)

    def sample(ijk: FloatArray) -> FloatArray:
        fine = ijk * f[:, None] + ((f - 1.0) / 2.0)[:, None]  # (3, n) full-resolution coords
        lo = np.clip(np.floor(fine.min(axis=1)).astype(np.int64), 0, shape)
        hi = np.clip(np.floor(fine.max(axis=1)).astype(np.int64) + 2, 0, shape)
        if np.any(hi <= lo):
            return np.zeros(fine.shape[1], dtype=np.float64)
        # only the rays' box of the full-resolution label map is read
        sub = np.asarray(
            labels[
                start[0] + lo[0] : start[0] + hi[0],
                start[1] + lo[1] : start[1] + hi[1],
                start[2] + lo[2] : start[2] + hi[2],
            ]
            == label
        )
        blocks = [np.arange(lo[a], hi[a]) // fk[a] for a in range(3)]
        sub &= near_body[np.ix_(blocks[0], blocks[1], blocks[2])]
        return np.asarray(
            ndimage.map_coordinates(
                sub.astype(np.float32), fine - lo[:, None], order=1, mode="constant", cval=0.0
            ),
            dtype=np.float64,
        )

    return sample


def _ray_heights(
    region: VertebraRegion,
    rays_uv: FloatArray,
    w_max_mm: float,
    step_mm: float,
    sampler: Sampler | None = None,
) -> FloatArray:
    """Length (mm) of body along ``superior`` on rays through the local points ``rays_uv``.

    The mask is sampled by nearest neighbour (each voxel a box) every ``step_mm`` from
    ``-w_max_mm`` to ``+w_max_mm``; the length is the number of body samples times the step.
    ``sampler``: :func:`_block_body_sampler` on a working grid.
    """
    frame, grid = region.frame, region.grid
    ws = np.arange(-w_max_mm, w_max_mm + step_mm / 2, step_mm)
    n_r, n_w = len(rays_uv), len(ws)
    local = np.empty((n_r, n_w, 3))
    local[:, :, 0] = rays_uv[:, 0, None]
    local[:, :, 1] = rays_uv[:, 1, None]
    local[:, :, 2] = ws[None, :]
    ijk = grid.to_voxel(frame.to_world(local)).reshape(-1, 3).T
    if sampler is not None:
        values = sampler(np.asarray(ijk, dtype=np.float64)).reshape(n_r, n_w)
    else:
        values = ndimage.map_coordinates(
            region.body.astype(np.float32), ijk, order=1, mode="constant", cval=0.0
        ).reshape(n_r, n_w)
    hit = values >= 0.5
    return np.asarray(hit.sum(axis=1) * step_mm, dtype=np.float64)


def _column_height(v: FloatArray, heights: FloatArray, v0: float, tol_mm: float) -> float | None:
    """Height at ``v0`` from the ray heights of one column (outliers dropped, linear in v)."""
    ok = heights > 0
    heights, v = heights[ok], v[ok]
    if len(heights) < _MIN_RAYS:
        return None
    med = float(np.median(heights))
    mad = float(np.median(np.abs(heights - med))) * 1.4826
    keep = np.abs(heights - med) <= 3.0 * mad + tol_mm
    heights, v = heights[keep], v[keep]
    if len(heights) >= 3 and float(np.ptp(v)) > 0.5:
        _slope, intercept = np.polyfit(v - v0, heights, 1)
        return float(intercept)
    return float(np.mean(heights))


def body_heights(region: VertebraRegion) -> BodyHeights | None:
    """Anterior, middle and posterior body heights of ``region`` (see the module docstring).

    None when the vertebra is truncated or its body too small to hold the three columns.
    """
    if region.truncated or not region.body.any():
        return None
    frame, grid = region.frame, region.grid
    local = region.body_local_mm
    u, v, w = local[:, 0], local[:, 1], local[:, 2]
    ext_v = voxel_extent_mm(grid, frame.anterior)
    in_plane = max(voxel_extent_mm(grid, frame.right), ext_v)
    half = max(COLUMN_HALF_WIDTH_MM, 0.75 * in_plane)
    band = np.abs(u) <= half
    if band.sum() < 4:
        return None
    v_front = float(v[band].max()) + ext_v / 2
    v_back = float(v[band].min()) - ext_v / 2
    depth = v_front - v_back
    w_max = float(np.abs(w).max()) + 2.0 * max(grid.spacing_mm)
    sampler = _block_body_sampler(region)
    # the resolution of the mask sampled: the scan's own voxels on a working grid too
    sampled_mm = np.asarray(grid.spacing_mm) / (
        1.0 if sampler is None else np.asarray(region.block)
    )
    step = min(RAY_STEP_MM, float(sampled_mm.min()) / 4)
    offsets = np.linspace(-half, half, RAYS_PER_SIDE)
    du, dv = np.meshgrid(offsets, offsets, indexing="ij")
    out: list[float] = []
    cols: list[float] = []
    for frac in COLUMN_FRACTIONS:
        v0 = v_front - frac * depth
        rays = np.column_stack([du.ravel(), v0 + dv.ravel()])
        ray_h = _ray_heights(region, rays, w_max, step, sampler)
        h = _column_height(rays[:, 1], ray_h, v0, float(sampled_mm.max()) / 2)
        if h is None or not np.isfinite(h) or h <= 0:
            return None
        out.append(h)
        cols.append(v0)
    return BodyHeights(
        anterior_mm=out[0],
        middle_mm=out[1],
        posterior_mm=out[2],
        ap_depth_mm=depth,
        columns_v_mm=(cols[0], cols[1], cols[2]),
    )
