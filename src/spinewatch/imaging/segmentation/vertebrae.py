"""Whole vertebrae: bodies cut at the discs, posterior elements grown from their own body.

1. The column's bone (filled bone inside a box around the tracked bodies: the body itself
   within ``BODY_MARGIN_MM`` of its width, the posterior elements up to ``LATERAL_FACTOR`` body
   half-widths to each side and ``POSTERIOR_FACTOR`` body depths behind -- past the transverse
   and spinous processes, short of most of the ribs and the ilium), minus the spinal canal.
2. Body and pedicle-root voxels (in front of the canal) are cut into vertebrae by the disc
   planes (through each disc centre, normal to the column).
3. The rest (laminae, transverse, articular and spinous processes) is flooded from those seeds
   through bone only (:func:`scipy.ndimage.watershed_ift` ordered by the distance from the
   seeds), so
   each process goes to the vertebra it is attached to, and neighbours meet at the facet joints
   and the interspinous gap -- the separation Klinder et al. (Med Image Anal 2009) obtain with
   their model, here from connectivity alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from spinewatch.imaging.segmentation.bone import in_plane_structure
from spinewatch.imaging.segmentation.column import Column
from spinewatch.imaging.segmentation.discs import Disc

__all__ = ["column_roi", "label_segments"]

BODY_MARGIN_MM = 3.0
LATERAL_FACTOR = 1.9
POSTERIOR_FACTOR = 2.2
ANTERIOR_MARGIN_MM = 6.0
#: Seeds stop this far in front of the body's posterior wall: the pedicle roots belong to the
#: body's level, the arch is left to the flood. Engineering choice.
SEED_BEHIND_WALL_MM = 4.0
#: Pedicle seeds reach this far behind the posterior wall, lateral to the canal (pedicles are
#: roughly 1-2 cm long from the thoracic to the lumbar spine). Engineering choice.
PEDICLE_LENGTH_MM = 10.0
#: Behind the bodies, the boundary between a vertebra and the one below descends by this many
#: mm per mm behind the posterior wall: laminae, inferior articular and spinous processes of a
#: vertebra reach down beside and behind the next one's (steeply in the thoracic spine, less in
#: the lumbar). Engineering choice.
ARCH_SLOPE = 0.3
#: Disc tissue is followed from the disc's plane to its endplates up to this many times the
#: disc's half height (from the profile's valley): a wedged disc (the lumbosacral disc is
#: twice as high in front as behind) or a concave endplate reaches beyond the mean half
#: height; where an endplate is missing the growth stops there. Engineering choice.
ENDPLATE_REACH = 2.0
#: Posterior-element bone farther than this from every disc plane is labelled by the (sloped)
#: planes directly; nearer, by the flood. About two working voxels: at 1.5-3 mm the facet
#: joint's gap is bridged by bone, so the flood's split there is only the distance to the
#: nearest seed; wider bands (8 mm was used) handed whole laminae and articular processes to
#: the neighbour. Chosen by a measured sweep (0-16 mm) on the real references and phantoms,
#: docs/segmentation.md: 0-4 mm help the real scans alike, below 4 mm the phantoms lose.
ARCH_MARGIN_MM = 4.0


def _per_slice(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return values[None, None, :]


def column_roi(
    shape: tuple[int, int, int], column: Column, spacing_mm: tuple[float, float, float]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(roi, front): the box the column's bone may occupy, and its part in front of the bodies'
    posterior wall (less ``SEED_BEHIND_WALL_MM``), both bool (nx, ny, nz)."""
    nx, ny, nz = shape
    x = np.arange(nx, dtype=np.float64)[:, None, None]
    y = np.arange(ny, dtype=np.float64)[None, :, None]
    cx, cy = _per_slice(column.x), _per_slice(column.y)
    hw, hd = _per_slice(column.half_width), _per_slice(column.half_depth)
    dx_mm = np.abs(x - cx) * spacing_mm[0]
    dy_mm = (y - cy) * spacing_mm[1]
    hw_mm, hd_mm = hw * spacing_mm[0], hd * spacing_mm[1]
    wall = -hd_mm
    in_front = dy_mm >= wall
    body_box = in_front & (dx_mm <= hw_mm + BODY_MARGIN_MM) & (dy_mm <= hd_mm + ANTERIOR_MARGIN_MM)
    post_box = (
        ~in_front
        & (dx_mm <= LATERAL_FACTOR * hw_mm + BODY_MARGIN_MM)
        & (dy_mm >= wall - POSTERIOR_FACTOR * 2 * hd_mm)
    )
    roi = body_box | post_box
    # seeds: the body, and the pedicles -- lateral to the canal, just behind the wall
    pedicles = (dy_mm >= wall - PEDICLE_LENGTH_MM) & (dx_mm >= 0.45 * hw_mm) & (dx_mm <= hw_mm)
    front = (body_box & (dy_mm >= wall + SEED_BEHIND_WALL_MM)) | (post_box & pedicles)
    zmask = np.zeros(nz, dtype=bool)
    zmask[column.z0 : column.z1 + 1] = True
    roi &= zmask[None, None, :]
    front &= zmask[None, None, :]
    return roi, front


def _between_endplates(
    s: npt.NDArray[np.float32],
    region: npt.NDArray[np.bool_],
    barrier: npt.NDArray[np.bool_],
    reach_mm: float,
    spacing_z_mm: float,
    half_height_mm: float,
) -> npt.NDArray[np.bool_]:
    """The disc between its endplates: from the voxels nearest the disc plane (``s``: signed
    distance to it, mm, per voxel), grown up and down along S through ``region`` (in front of
    the posterior wall) without entering ``barrier`` (bone: the endplates) and no farther than
    ``reach_mm`` from the plane. Follows a concave or wedged endplate wherever it is, which a
    slab of fixed thickness does not, on either side: where the endplate is nearer than the
    disc's mean half height (``half_height_mm``, from the profile), the disc ends at it. A column
    (fixed R, A) whose growth runs the whole reach without meeting an endplate, or that has no
    disc voxel at the plane to start from, has shown no endplate to follow -- on a noisy CT the
    growth then runs through gaps in the endplate into marrow that reads like disc tissue -- so
    there the disc is its half height on that side."""
    open_ = region & ~barrier
    seed = open_ & (np.abs(s) <= 0.5 * spacing_z_mm + 1e-3)
    out = seed.copy()
    steps = int(np.ceil(reach_mm / spacing_z_mm))
    for sign in (1, -1):
        allowed = open_ & (sign * s > 0) & (sign * s <= reach_mm)
        grown = np.zeros_like(seed)
        cur = seed
        for _ in range(steps):
            nxt = np.zeros_like(cur)
            if sign > 0:
                nxt[:, :, 1:] = cur[:, :, :-1]
            else:
                nxt[:, :, :-1] = cur[:, :, 1:]
            cur = nxt & allowed
            if not cur.any():
                break
            grown |= cur
        # an endplate met: the disc ends there; none (the growth still going at the reach, or
        # no disc voxel at the plane to start from): the disc's half height
        unbounded = (grown & (sign * s > reach_mm - spacing_z_mm)).any(axis=2, keepdims=True)
        stopped = seed.any(axis=2, keepdims=True) & ~unbounded
        half = region & (sign * s > 0) & (sign * s < half_height_mm)
        out |= np.where(stopped, grown, half)
    return out


def _segment_index(
    shape: tuple[int, int, int],
    discs: list[Disc],
    spacing_mm: tuple[float, float, float],
    lift_mm: npt.NDArray[np.float32] | None = None,
    region: npt.NDArray[np.bool_] | None = None,
    barrier: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Per voxel: how many disc planes lie below it (0 = below the lowest disc), int16; its
    distance to the nearest disc plane in mm, float32 (inf without discs); and whether it lies
    within a disc's half height of that disc's plane, or (given ``region`` and ``barrier``)
    between the disc's endplates (:func:`_between_endplates`: up to ``ENDPLATE_REACH`` half
    heights, the half height where no endplate is met), bool. ``lift_mm`` (broadcastable to
    ``shape``) moves each voxel up by so many mm against every plane (the neural arch of a
    vertebra reaches below its disc plane, see ``ARCH_SLOPE``); it must be 0 in ``region``."""
    nx, ny, nz = shape
    idx = np.zeros(shape, dtype=np.int16)
    near = np.full(shape, np.inf, dtype=np.float32)
    slab = np.zeros(shape, dtype=bool)
    x = (np.arange(nx) * spacing_mm[0])[:, None, None]
    y = (np.arange(ny) * spacing_mm[1])[None, :, None]
    z = (np.arange(nz) * spacing_mm[2])[None, None, :]
    for d in discs:
        p, n = d.point_mm, d.normal
        # float32 keeps the temporaries at 4 bytes per voxel
        s = (
            np.float32(n[0]) * (x - p[0]).astype(np.float32)
            + np.float32(n[1]) * (y - p[1]).astype(np.float32)
        ) + np.float32(n[2]) * (z - p[2]).astype(np.float32)
        if lift_mm is not None:
            s = s + lift_mm
        idx += (s > 0).astype(np.int16)
        if region is not None and barrier is not None:
            reach = max(ENDPLATE_REACH * d.half_height_mm, d.half_height_mm + spacing_mm[2])
            slab |= _between_endplates(s, region, barrier, reach, spacing_mm[2], d.half_height_mm)
        np.abs(s, out=s)
        np.minimum(near, s, out=near)
        if region is None or barrier is None:
            slab |= s < np.float32(d.half_height_mm)
    return idx, near, slab


def label_segments(
    filled: npt.NDArray[np.bool_],
    cortex: npt.NDArray[np.bool_],
    canal: npt.NDArray[np.bool_],
    column: Column,
    discs: list[Disc],
    spacing_mm: tuple[float, float, float],
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.bool_]]:
    """Vertebra segments on the working grid: 1 = the segment below the lowest disc, 2 the next
    one up, ...; 0 = not column bone. int16 (nx, ny, nz). Also the disc tissue left out of
    them, bool (nx, ny, nz): in front of the bodies' posterior wall, within a disc's half height
    of its plane and below the cortical threshold (``cortex``: bone by HU alone) -- disc tissue
    reads like osteoporotic marrow, and only its place between the endplates tells them apart.

    The work (distance transform, flood) runs on the bounding box of the column's region only.
    """
    roi, front = column_roi(filled.shape, column, spacing_mm)
    out = np.zeros(filled.shape, dtype=np.int16)
    disc_tissue = np.zeros(filled.shape, dtype=bool)
    box = ndi.find_objects(roi.astype(np.uint8))
    if not box or box[0] is None:
        return out, disc_tissue
    sl = box[0]
    origin = tuple(float(s.start) * sp for s, sp in zip(sl, spacing_mm, strict=True))
    shifted = [
        dataclasses.replace(
            d,
            z=d.z - sl[2].start,
            point_mm=(
                d.point_mm[0] - origin[0],
                d.point_mm[1] - origin[1],
                d.point_mm[2] - origin[2],
            ),
        )
        for d in discs
    ]
    yy = np.arange(sl[1].start, sl[1].stop, dtype=np.float64)[None, :, None]
    wall = (column.y - column.half_depth)[None, None, sl[2]]
    lift = (ARCH_SLOPE * np.clip(wall - yy, 0.0, None) * spacing_mm[1]).astype(np.float32)
    index, near, slab = _segment_index(
        out[sl].shape, shifted, spacing_mm, lift, front[sl], cortex[sl]
    )
    disc_tissue[sl] = slab & front[sl] & ~cortex[sl]
    bone = filled[sl] & roi[sl] & ~canal[sl] & ~disc_tissue[sl]
    out[sl] = _label_box(bone, front[sl], canal[sl], index, near, spacing_mm)
    return out, disc_tissue


def _label_box(
    bone: npt.NDArray[np.bool_],
    front: npt.NDArray[np.bool_],
    canal: npt.NDArray[np.bool_],
    index: npt.NDArray[np.int16],
    near: npt.NDArray[np.float32],
    spacing_mm: tuple[float, float, float],
) -> npt.NDArray[np.int16]:
    """:func:`label_segments` inside the column's bounding box (``index``/``near`` from
    :func:`_segment_index` there)."""
    seg = index + 1
    # seeds: the bodies and pedicle roots, and the posterior elements well away from every
    # disc plane (their own vertebra's laminae, transverse and spinous processes); bone near a
    # plane behind the bodies -- the facet joints, where a vertebra's inferior articular
    # processes reach down beside the next one's superior processes -- is flooded from them
    # only bone connected to a body: noise specks and loose fragments seed nothing
    comp, n = ndi.label(bone)
    attached = np.zeros(n + 1, dtype=bool)
    attached[np.unique(comp[bone & front])] = True
    attached[0] = False
    bone = attached[comp]
    seeds = bone & (front | (near >= ARCH_MARGIN_MM))
    markers = np.where(seeds, seg, 0).astype(np.int16)
    markers[~bone] = -1
    # flood in order of distance from the seeds (the image-foresting transform processes
    # lower values first), through bone only: outside bone the cost is the maximum
    dist = ndi.distance_transform_edt(~seeds, sampling=spacing_mm)
    cost = np.clip(dist, 0, 65000).astype(np.uint16)
    cost[~bone] = 65535
    flooded = ndi.watershed_ift(cost, markers, structure=ndi.generate_binary_structure(3, 1))
    out = np.where(bone & (flooded > 0), flooded, 0).astype(np.int16)
    # bone the flood could not reach from any body (a rib or the ilium inside the box) is
    # dropped; marrow pockets left below the thresholds inside a body are filled
    inside = ndi.binary_fill_holes(out > 0, structure=in_plane_structure()) & front & ~canal
    pockets = inside & (out == 0)
    if pockets.any():
        out[pockets] = seg[pockets]
    return out
