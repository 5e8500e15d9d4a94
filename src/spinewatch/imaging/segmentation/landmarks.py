"""Landmarks that name the levels: the sacrum and the ribs.

* **Sacrum**: right below the lumbosacral disc the first sacral vertebra joins the ilia at the
  sacroiliac joints; bone continuous from the body to both ilia within one vertebral pitch
  below the lowest disc marks the segment below that disc as the sacrum (:func:`sacrum_segment`).
* **Ribs**: a rib-bearing (thoracic) vertebra has a rib *articulating with it*: a long bone
  whose medial end (head, neck) lies next to that vertebra's body, at its level
  (:func:`rib_bearing`). Bone merely lying lateral to a vertebra is not enough: the 12th rib
  often runs caudally past the first lumbar vertebra, well lateral to it. Counting ribs is how
  the thoracic and lumbar levels are told apart in clinical practice (the vertebra bearing the
  last rib is taken as T12); variants with 11 or 13 rib pairs and lumbosacral transitional
  vertebrae make this unreliable in some 5-10 % of patients: Nakajima et al., Insights Imaging
  2014;5:77-83 report lumbar ribs in 5.8 %, lumbarisation in 6.2 % and sacralisation in 2.7 %
  of 226 whole-spine CTs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from spinewatch.imaging.segmentation.column import Column

__all__ = ["SACRUM_REACH_MM", "body_segment_per_slice", "rib_bearing", "sacrum_segment"]

#: Half-span of the pelvic ring at the sacroiliac joints, mm: the joints lie ~40-60 mm from the
#: midline in adults and the iliac bone continues laterally from them, while lumbar transverse
#: processes end ~40-50 mm from it. Engineering choice between the two.
SACRUM_REACH_MM = 70.0
#: A rib reaches at least this far beyond the body's lateral edge; a lumbar transverse process
#: ends ~20-35 mm beyond it. Engineering choice between the two.
RIB_REACH_MM = 45.0
#: A rib's medial end (its head and neck, next to the costovertebral joint) lies at most this
#: far beyond the body's lateral edge, mm (the iliac crest, which also reaches far laterally in
#: the band, ends ~20 mm or more from the lumbar bodies)...
RIB_ROOT_LATERAL_MM = 12.0
#: ...and rib candidates are looked for from this far beyond the edge (the facets and laminae
#: medial to it would chain all posterior elements into one component), mm.
RIB_START_MM = -3.0
#: A rib is slender: its volume per mm of lateral extent stays below this, mm^2 (a rib's
#: section is ~1 cm^2; measured ~70 mm^2 at 3 mm voxels on the example CT), while the iliac
#: wing, a plate spanning many slices, has 120-310 mm^2 there. Engineering choice.
RIB_MAX_SECTION_MM2 = 100.0
#: ...within this band around the body's posterior wall (behind it: pedicles, transverse
#: processes; in front of it: the rib head at the costal facet), mm.
RIB_BAND_BEHIND_MM = 30.0
RIB_BAND_FRONT_MM = 10.0


def sacrum_segment(
    bone: npt.NDArray[np.bool_],
    column: Column,
    lowest_disc_z: float | None,
    pitch_vox: float,
    spacing_mm: tuple[float, float, float],
) -> int | None:
    """The slice at which the bone below the lowest disc joins both ilia, or None.

    Below the lumbosacral disc the first sacral vertebra carries the alae, which meet the ilia at
    the sacroiliac joints within a few centimetres of the promontory. So the segment below the
    lowest disc is the sacrum when, within one vertebral pitch below that disc, an axial slice
    holds bone continuous (``bone``: closed and marrow-filled, nx, ny, nz) from the body to at
    least ``SACRUM_REACH_MM`` on both sides of the column. A fifth lumbar vertebra, even with
    large transverse processes, is separated from the iliac crests by the iliolumbar soft tissue;
    and if the lumbosacral disc was missed, the alae lie more than a pitch below the lowest disc
    found, so the count cannot silently shift by one.
    """
    if lowest_disc_z is None:
        return None
    nx, ny, nz = bone.shape
    z1 = int(np.floor(lowest_disc_z))
    z0 = max(0, int(np.ceil(lowest_disc_z - pitch_vox)))
    for z in range(min(z1, nz - 1), z0 - 1, -1):
        x, y = column.x[z], column.y[z]
        hw, hd = column.half_width[z], column.half_depth[z]
        xa, xb = max(0, round(x - hw)), min(nx, round(x + hw) + 1)
        ya, yb = max(0, round(y - hd)), min(ny, round(y + hd) + 1)
        comp, _ = ndi.label(bone[:, :, z])
        ids = np.unique(comp[xa:xb, ya:yb])
        ids = ids[ids > 0]
        if ids.size == 0:
            continue
        xs = np.flatnonzero(np.isin(comp, ids).any(axis=1))
        left_mm, right_mm = (x - xs.min()) * spacing_mm[0], (xs.max() - x) * spacing_mm[0]
        if min(left_mm, right_mm) >= SACRUM_REACH_MM:
            return z
    return None


def rib_bearing(
    bone: npt.NDArray[np.bool_],
    segments: npt.NDArray[np.int16],
    column: Column,
    spacing_mm: tuple[float, float, float],
) -> dict[int, bool]:
    """Per segment label: whether a rib was seen articulating with it (on at least one side).

    ``bone``: thresholded bone (nx, ny, nz, axes R, A, S). On each side, bone lateral to the
    body's edge within a band around its posterior wall is split into 3D components. A
    slender component (``RIB_MAX_SECTION_MM2``) reaching ``RIB_REACH_MM`` beyond the body's edge
    whose *medial end* comes within ``RIB_ROOT_LATERAL_MM`` of that edge is a rib leading to the
    spine; a rib descends laterally
    from its head, so the slice of its medial end is the level of its head, and the vertebra
    whose body fills that slice bears it. A 12th rib running caudally past the first lumbar
    vertebra, lateral to it, is therefore credited to the twelfth thoracic vertebra, not the
    first lumbar. Only positive findings count: at 3 mm a rib head often breaks up, so a
    vertebra without a rib found is not taken as proven rib-free.
    """
    nx, ny, nz = bone.shape
    body_seg = body_segment_per_slice(segments, column)
    # work in the box the test can look at: the band around the posterior wall and the reach
    # past the body's edge (components cut at the box edge still reach far enough to count)
    zs = slice(column.z0, column.z1 + 1)
    wall = column.y[zs] - column.half_depth[zs]
    y0 = max(0, int(np.floor(wall.min() - RIB_BAND_BEHIND_MM / spacing_mm[1])) - 1)
    y1 = min(ny, int(np.ceil(wall.max() + RIB_BAND_FRONT_MM / spacing_mm[1])) + 2)
    span = column.half_width[zs] + (RIB_REACH_MM + 2 * spacing_mm[0]) / spacing_mm[0]
    x0 = max(0, int(np.floor((column.x[zs] - span).min())))
    x1 = min(nx, int(np.ceil((column.x[zs] + span).max())) + 1)
    bone = bone[x0:x1, y0:y1]
    nx, ny = bone.shape[:2]
    x = np.arange(x0, x0 + nx, dtype=np.float64)[:, None, None]
    y = np.arange(y0, y0 + ny, dtype=np.float64)[None, :, None]
    hw_mm = (column.half_width * spacing_mm[0])[None, None, :]
    dx_mm = (x - column.x[None, None, :]) * spacing_mm[0]
    dy_mm = (y - column.y[None, None, :] + column.half_depth[None, None, :]) * spacing_mm[1]
    band = (dy_mm >= -RIB_BAND_BEHIND_MM) & (dy_mm <= RIB_BAND_FRONT_MM)
    zi = np.broadcast_to(np.arange(nz, dtype=np.float64)[None, None, :], bone.shape)
    found = np.zeros(int(segments.max()) + 1, dtype=bool)
    for sign in (-1.0, 1.0):
        lateral = np.broadcast_to(sign * dx_mm - hw_mm, bone.shape)
        comp, n = ndi.label(bone & band & (lateral >= RIB_START_MM))
        if n == 0:
            continue
        index = np.arange(1, n + 1)
        reach = np.atleast_1d(ndi.maximum(lateral, comp, index))
        medial = np.atleast_1d(ndi.minimum(lateral, comp, index))
        volume = np.bincount(comp.ravel(), minlength=n + 1)[1:] * float(np.prod(spacing_mm))
        section = volume / np.maximum(reach - medial, 1.0)  # mean cross-section, mm^2
        ribs = index[
            (reach >= RIB_REACH_MM)
            & (medial <= RIB_ROOT_LATERAL_MM)
            & (section <= RIB_MAX_SECTION_MM2)
        ]
        if ribs.size == 0:
            continue
        # slice of each rib's medial end: mean z of its voxels within 6 mm of its medial edge
        near = np.isin(comp, ribs) & (lateral <= medial[comp - 1] + 6.0)
        head_z = np.atleast_1d(ndi.mean(zi, np.where(near, comp, 0), ribs))
        for z in head_z:
            lab = int(body_seg[round(float(z))])
            if lab > 0:
                found[lab] = True
    return {lab: bool(found[lab]) for lab in range(1, found.size)}


def body_segment_per_slice(
    segments: npt.NDArray[np.int16], column: Column
) -> npt.NDArray[np.int64]:
    """The segment label at the body centre of each slice (0 where none), int (nz,)."""
    nx, ny, nz = segments.shape
    xi = np.clip(np.round(column.x).astype(int), 0, nx - 1)
    yi = np.clip(np.round(column.y).astype(int), 0, ny - 1)
    out: npt.NDArray[np.int64] = np.asarray(segments[xi, yi, np.arange(nz)], dtype=np.int64)
    out[: column.z0] = 0
    out[column.z1 + 1 :] = 0
    return out
