"""The C2 landmark: the dens (odontoid process) rising from the axis's body into the atlas ring.

Anatomy (Standring (ed.), Gray's Anatomy, 42nd ed., 2020): the atlas (C1) has no body -- an
anterior arch, two lateral masses and a posterior arch make a ring; the axis (C2) has a body
from which the dens projects cranially into the front of that ring; there is no disc between C1
and C2, so the first intervertebral disc is C2/C3. On CT the dens is ~9-10 mm across and ~11-12
mm antero-posterior (Kulkarni et al., Indian J Orthop 2013;47:250, 100 CTs) and ~13-18 mm tall
above the body (Makhlouf et al., Sci J Univ Benghazi, 167 CTs); cervical bodies are ~15-18 mm
wide (Panjabi et al., Spine 1991;16:861).

The rule (:func:`find_dens`), on the CT's own voxels (at the ~2 mm working grid the dens
touches the atlas across the 1-3 mm atlanto-dental interval): starting inside the body just
above one of the two most cranial discs found, bone within the body's footprint (in front of
the canal) is followed upward slice by slice without a break -- so no disc lies above that
body; it must narrow into a *slender process* (``DENS_MIN_WIDTH_MM`` to ``DENS_MAX_WIDTH_MM``
across, under ``DENS_WIDTH_FRACTION`` of the body's width); bone on the process's axis must end
inside the scan (its tip; ``DENS_MIN_MM`` to ``DENS_MAX_MM`` above the process's base), and in
those slices bone outside the footprint must lie on both sides and behind (the lateral masses
and the posterior arch of the ring) over ``RING_MIN_MM``. Then that body is C2, the bone beside
the dens is C1 (:func:`split_atlas`), and the levels are counted downward from C2. A lower
cervical, thoracic or lumbar body has no such process (the next disc stops the trace first,
or the bone stays body-wide); a process cut by the scan's top edge is reported but never
confirms a name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from spinewatch.imaging.segmentation.column import Column
from spinewatch.imaging.segmentation.discs import Disc

__all__ = [
    "DENS_MAX_WIDTH_MM",
    "DENS_MIN_MM",
    "DensFinding",
    "find_dens",
    "split_atlas",
]

#: Bone for the trace, HU (the CT's voxels after a 3 x 3 in-plane median against noise): above
#: disc, ligament and muscle (40-90 HU), below the dens's cancellous bone and cortex. Engineering
#: choice; no closing, so the 1-3 mm atlanto-dental interval keeps the dens apart from the ring.
TRACE_HU = 150.0
#: The dens is at most this wide (left-right and antero-posterior), mm: ~9-10 x 11-12 mm in
#: adults (module docstring), with a voxel of partial volume on each side.
DENS_MAX_WIDTH_MM = 16.0
#: ...and at least this wide, mm: no adult dens is narrower than ~5.5 mm on CT (Kulkarni et al.
#: 2013); thinner bone above a body is a spur, a cortex fragment or noise.
DENS_MIN_WIDTH_MM = 5.0
#: ...and narrower than this fraction of the body's width below it (the dens is ~0.6 of it).
DENS_WIDTH_FRACTION = 0.8
#: Shortest run of the slender process taken for a dens, mm (it is ~13-18 mm tall; a rounded
#: endplate rim or an osteophyte narrows over a slice or two at most). Engineering choice.
DENS_MIN_MM = 6.0
#: ...and at most this tall, mm: bone on its axis running on further is not a free dens tip (a
#: dens fused to the skull base, an os odontoideum joined to the clivus, or not a dens at all).
DENS_MAX_MM = 30.0
#: Bone of the ring must be seen in slices spanning at least this, mm (the anterior arch is
#: ~10 mm tall, the lateral masses more).
RING_MIN_MM = 4.0
#: Where the ring is looked for around the dens's centre, mm: on each side within this reach
#: (lateral masses ~5-20 mm from the dens's edge) and behind it beyond the cord's space.
RING_REACH_MM = 30.0
RING_BEHIND_MM = (8.0, 40.0)
#: Half-size of the CT crop the trace looks at around the body, mm (the atlas spans ~80 mm).
CROP_MM = 50.0
#: The trace's box: the body's footprint widened by this on each side, behind up to this past
#: its posterior wall and twice this in front (the anterior arch of the atlas), mm.
BOX_MARGIN_MM = 3.0
#: The trace looks for the process at most this many expected pitches above the disc (the C2
#: body is ~15 mm tall, its pitch with the C2/C3 disc ~20 mm).
BODY_PITCHES = 1.5


@dataclass(frozen=True)
class DensFinding:
    """A dens found. ``segment``: the C2 segment (1 = most caudal); ``base_z``/``tip_z``: the
    working-grid slices of the slender process's base and of its tip; ``width_mm``: its median
    width; ``height_mm``: from its base to its tip along S; ``cut``: bone on its axis reaches
    the scan's top edge (its tip is not seen); ``ring_mm``: the span of slices with the ring on
    both sides and behind; ``mask``: the process's voxels on the working grid, bool (nx, ny,
    nz); ``disc_index``: the disc below C2's body (C2/C3) in the list searched (discs above it
    lie within C2 or C1)."""

    segment: int
    base_z: int
    tip_z: int
    width_mm: float
    height_mm: float
    cut: bool
    ring_mm: float
    mask: npt.NDArray[np.bool_]
    disc_index: int = -1

    @property
    def confirmable(self) -> bool:
        """Whole and ringed: the process ends inside the scan, is tall enough, and the atlas
        ring is seen around it."""
        return (
            not self.cut
            and DENS_MIN_MM <= self.height_mm <= DENS_MAX_MM
            and self.ring_mm >= RING_MIN_MM
        )

    def describe(self) -> str:
        """One sentence of evidence."""
        ring = f"atlas ring seen around it over {self.ring_mm:.0f} mm"
        if self.ring_mm < RING_MIN_MM:
            ring = f"atlas ring seen over only {self.ring_mm:.0f} mm"
        end = "its tip cut off by the scan's edge" if self.cut else "its tip inside the scan"
        if self.height_mm > DENS_MAX_MM:
            end = f"bone on its axis running on beyond {DENS_MAX_MM:.0f} mm (no free tip)"
        return (
            f"dens: a {self.width_mm:.0f} mm wide process rising {self.height_mm:.0f} mm from the "
            f"body above the C2/C3 disc without a disc between, {end}; {ring}"
        )


def _components_touching(
    solid: npt.NDArray[np.bool_], seed: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """The axial components of ``solid`` (2D) overlapping ``seed`` grown by one voxel."""
    comp, n = ndi.label(solid)
    if n == 0:
        return np.zeros(solid.shape, dtype=bool)
    ids = np.unique(comp[ndi.binary_dilation(seed, iterations=1) & solid])
    ids = ids[ids > 0]
    return np.asarray(np.isin(comp, ids), dtype=bool)


def _ring_around(
    other: npt.NDArray[np.bool_], cx: float, cy: float, half_w: float, sp: tuple[float, float]
) -> bool:
    """Bone (``other``: 2D, not the dens) on both sides of the dens and behind it."""
    xs, ys = np.nonzero(other)
    if xs.size == 0:
        return False
    dx = (xs - cx) * sp[0]
    dy = (ys - cy) * sp[1]
    beside = (np.abs(dy) <= 15.0) & (np.abs(dx) > half_w) & (np.abs(dx) <= half_w + RING_REACH_MM)
    left = bool(np.any(beside & (dx < 0)))
    right = bool(np.any(beside & (dx > 0)))
    behind = bool(
        np.any((np.abs(dx) <= 15.0) & (-dy >= RING_BEHIND_MM[0]) & (-dy <= RING_BEHIND_MM[1]))
    )
    return left and right and behind


def find_dens(
    view: npt.NDArray[Any],
    factors: tuple[int, int, int],
    segments: npt.NDArray[np.int16],
    column: Column,
    discs: list[Disc],
    pitch_vox: float,
    spacing_mm: tuple[float, float, float],
) -> DensFinding | None:
    """The dens above the body over one of the two most cranial discs, or None (see the module
    docstring).

    The trace runs on the CT's own voxels (``view``: the CT in R, A, S voxel order;
    ``factors``: CT voxels per working voxel): the 1-3 mm atlanto-dental interval is below the
    working grid's ~2 mm, where the dens and the ring merge. ``segments``: the vertebra segments
    on the working grid (1 = most caudal); ``column``, ``discs``, ``pitch_vox`` (the expected
    pitch, slices) and ``spacing_mm`` are the working grid's. Two discs are tried because the
    narrowing of the column where the dens enters the ring can read as one more disc. A process
    reaching the scan's top edge is returned with ``cut`` (never confirmable)."""
    for index in range(len(discs) - 1, max(len(discs) - 3, -1), -1):
        found = _trace(view, factors, segments, column, discs[index].z, pitch_vox, spacing_mm)
        # a process must be dens-tall and ringed (an axis has an atlas) even when the scan's
        # edge cuts it (then it is never confirmable): the top of a body cut by the edge
        # narrows over a slice or two, with no ring around it
        if found is not None and found.height_mm >= DENS_MIN_MM and found.ring_mm >= RING_MIN_MM:
            return replace(found, disc_index=index)
    return None


def _trace(
    view: npt.NDArray[Any],
    factors: tuple[int, int, int],
    segments: npt.NDArray[np.int16],
    column: Column,
    disc_z: float,
    pitch_vox: float,
    spacing_mm: tuple[float, float, float],
) -> DensFinding | None:
    """Trace bone upward from the body above the disc at working slice ``disc_z``."""
    nx, ny, nz = segments.shape
    f = factors
    sp = (spacing_mm[0] / f[0], spacing_mm[1] / f[1], spacing_mm[2] / f[2])
    zw = int(np.ceil(disc_z + max(1.0, 4.0 / spacing_mm[2])))  # inside the body above the disc
    if zw >= nz:
        return None
    xw, yw = min(max(round(column.x[zw]), 0), nx - 1), min(max(round(column.y[zw]), 0), ny - 1)
    segment = int(segments[xw, yw, zw])
    if segment == 0:
        return None
    # the crop, in CT voxels: +-CROP_MM around the body's centre, from the start slice up
    rx, ry = round(CROP_MM / spacing_mm[0]), round(CROP_MM / spacing_mm[1])
    bx = (max(0, xw - rx), min(nx, xw + rx + 1))
    by = (max(0, yw - ry), min(ny, yw + ry + 1))
    crop = np.asarray(
        view[bx[0] * f[0] : bx[1] * f[0], by[0] * f[1] : by[1] * f[1], zw * f[2] : nz * f[2]],
        dtype=np.float32,
    )
    solid = ndi.median_filter(crop, size=(3, 3, 1)) >= TRACE_HU
    # the trace stays in front of the canal, within the body's footprint: the pedicles and the
    # arch, which join the body, are cut off at its posterior wall
    col_x = (np.arange(crop.shape[0]) + 0.5) / f[0] + bx[0] - 0.5
    col_y = (np.arange(crop.shape[1]) + 0.5) / f[1] + by[0] - 0.5
    hw = float(column.half_width[zw]) + BOX_MARGIN_MM / spacing_mm[0]
    wall = float(column.posterior_wall()[zw]) - BOX_MARGIN_MM / spacing_mm[1]
    front = float(column.y[zw] + column.half_depth[zw]) + 2 * BOX_MARGIN_MM / spacing_mm[1]
    footprint = (np.abs(col_x - column.x[zw]) <= hw)[:, None] & (
        (col_y >= wall) & (col_y <= front)
    )[None, :]
    traced = solid & footprint[:, :, None]
    seed = np.zeros(solid.shape[:2], dtype=bool)
    seed[(xw - bx[0]) * f[0] + f[0] // 2, (yw - by[0]) * f[1] + f[1] // 2] = True
    cur = _components_touching(traced[:, :, 0], seed)
    if not cur.any():
        return None
    xs0 = np.flatnonzero(cur.any(axis=1))
    body_w_mm = (xs0.max() - xs0.min() + 1) * sp[0]
    max_w = min(DENS_MAX_WIDTH_MM, DENS_WIDTH_FRACTION * body_w_mm)
    mask = np.zeros(solid.shape, dtype=bool)
    widths: list[float] = []
    base = -1
    cx = cy = 0
    limit = int(np.ceil(BODY_PITCHES * pitch_vox * f[2]))
    n_k = solid.shape[2]
    for k in range(1, n_k):
        nxt = _components_touching(traced[:, :, k], cur)
        if not nxt.any():
            break  # bone ends: the tip (or, before any process, a disc above the body)
        xs, ys = np.nonzero(nxt)
        width = (xs.max() - xs.min() + 1) * sp[0]
        depth = (ys.max() - ys.min() + 1) * sp[1]
        if min(width, depth) < DENS_MIN_WIDTH_MM:
            break  # a spur or a fragment, not a process of a dens's girth
        if width > max_w or depth > DENS_MAX_WIDTH_MM:
            if base >= 0:
                break  # widens again: the process touches other bone (the atlas, the skull)
            if k > limit:
                return None  # still body-wide a pitch and a half above the disc
            cur = nxt
            continue
        if base < 0:
            base = k
        widths.append(width)
        mask[:, :, k] = nxt
        cx, cy = round(float(xs.mean())), round(float(ys.mean()))
        cur = nxt
    if base < 0:
        return None
    # the tip: where bone on the process's axis ends (followed past any contact with the ring);
    # the ring: bone outside the body's footprint on both sides and behind, in the same slices
    tip = base
    ring_slices = 0
    for k in range(base, n_k):
        if not solid[max(cx - 1, 0) : cx + 2, max(cy - 1, 0) : cy + 2, k].any():
            break
        tip = k
        other = solid[:, :, k] & ~footprint
        if _ring_around(other, cx, cy, float(np.median(widths)) / 2.0, sp[:2]):
            ring_slices += 1
    # back to the working grid: a working voxel holding any of the process's CT voxels
    full = np.zeros(segments.shape, dtype=bool)
    pad = [(-n) % k for n, k in zip(mask.shape, f, strict=True)]
    m = np.pad(mask, [(0, p) for p in pad])
    blocks: npt.NDArray[np.bool_] = np.asarray(
        m.reshape(m.shape[0] // f[0], f[0], m.shape[1] // f[1], f[1], -1, f[2]).any(axis=(1, 3, 5)),
        dtype=bool,
    )
    full[bx[0] : bx[0] + blocks.shape[0], by[0] : by[0] + blocks.shape[1], zw:] = blocks[
        : bx[1] - bx[0], : by[1] - by[0], : nz - zw
    ]
    return DensFinding(
        segment=segment,
        base_z=zw + base // f[2],
        tip_z=zw + tip // f[2],
        width_mm=float(np.median(widths)),
        height_mm=(tip - base + 1) * sp[2],
        cut=tip == n_k - 1,
        ring_mm=ring_slices * sp[2],
        mask=full,
    )


def split_atlas(
    segments: npt.NDArray[np.int16], dens: DensFinding, spacing_mm: tuple[float, float, float]
) -> tuple[npt.NDArray[np.int16], int]:
    """Segments relabelled around the dens: the dens is C2's segment; the other bone of C2's
    segment and the segments above it, from the slice above the dens's base up to 5 mm above
    its tip, becomes one segment -- C1, the ring around the dens (the segmenter may have cut
    between the ring and C2 or not, depending on where it saw the column narrow); bone higher
    up (the skull base) is dropped. Returns (segments, number of segments)."""
    out = segments.copy()
    k = dens.segment
    zi = np.arange(out.shape[2])[None, None, :]
    top = dens.tip_z + int(np.ceil(5.0 / spacing_mm[2]))
    upper = (out >= k) & (zi > dens.base_z)
    out[upper & dens.mask] = k
    ring = upper & ~dens.mask & (zi <= top)
    out[(out > k) & ~dens.mask] = 0
    out[ring] = 0
    if ring.any():
        out[ring] = k + 1
        return out, k + 1
    return out, k
