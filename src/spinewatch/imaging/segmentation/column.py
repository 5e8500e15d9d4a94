"""The vertebral column, tracked slice by slice, and the spinal canal behind it.

Following the classical route of Yao, O'Connor & Summers ("Automated spinal column extraction and
partitioning", IEEE ISBI 2006, 390-393): threshold, find the column's landmark structure in each
axial slice, and link the per-slice findings into the one longest smooth chain with a directed
graph search. Yao et al. track the canal; at 2-3 mm voxels the thin neural arch is often open in
every slice, so here the chain is built from the vertebral *bodies* -- the thickest bone near the
midline, which an axial opening of ``BODY_OPEN_MM`` keeps while it removes ribs, laminae, spinous
and transverse processes (all thinner than ~10 mm). The canal is then found behind each body: the
soft-tissue gap between the body's posterior wall and the arch.

Where no body is seen (the discs, up to ``MAX_JUMP_MM``) the chain jumps over slices and the
centre line is interpolated; it is smoothed along S with a Gaussian of ``SMOOTH_MM``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from spinewatch.imaging.segmentation.bone import FilledBone, disc_structure, in_plane_structure

__all__ = [
    "BODY_AREA_MM2",
    "BODY_OPEN_MM",
    "MARROW_HU",
    "Column",
    "body_mask",
    "track_column",
]

#: Radius of the axial opening that keeps vertebral bodies (>= ~15 mm across even in the
#: cervical spine) and removes thinner bone, mm. Engineering choice.
BODY_OPEN_MM = 4.5
#: Cross-section of a body candidate after opening, mm^2 (cervical body ~2 cm^2, sacrum with its
#: alae up to ~40 cm^2).
BODY_AREA_MM2 = (80.0, 5000.0)
#: Longest stretch along S without a body that the chain may jump, mm: a disc (up to ~15 mm in
#: the lumbar spine) plus partial-volume slices.
MAX_JUMP_MM = 30.0
#: In-plane movement allowed between linked bodies: a fixed part plus a slope (tan 27 deg covers
#: a scoliotic curve or a tilted scan), mm.
LINK_TOL_MM = 6.0
LINK_SLOPE = 0.5
#: Score lost per mm of skipped slices (a linked slice earns its thickness). Engineering choice.
JUMP_COST = 0.3
SMOOTH_MM = 6.0
#: Marrow: trabecular bone is about 100-250 HU in adults (Pickhardt et al., Ann Intern Med 2013:
#: L1 below 110 HU is > 90 % specific for osteoporosis), above muscle (~40-60 HU). After a light
#: axial smoothing a body reads above this even when its thin cortex does not reach
#: ``bone.BONE_HU`` on 3 mm voxels. Engineering choice between the two.
MARROW_HU = 90.0
MARROW_SMOOTH_MM = 1.5
#: Candidates farther than this from the patient's left-right midline are not bodies, mm (the
#: femoral heads, the ilium); a scoliotic column stays well within it.
MIDLINE_MM = 60.0
#: A candidate is dropped as lying in front of the column (an enhanced aorta: ~4-6 cm^2) when a
#: candidate at least this fraction of its size lies behind it (a body: 9-15 cm^2 thoracic to
#: lumbar). Not a half: the spinal canal enclosed by its arch, filled as a hole, makes a blob of
#: a third to a half of a body's size behind every body. Engineering choice.
BEHIND_AREA_FRACTION = 0.8
#: How far behind a candidate the body may lie for it to be dropped, mm: the sternum lies
#: 100-160 mm in front of the thoracic bodies in adults. Engineering choice.
BEHIND_MM = 200.0
#: A body is at least this deep (antero-posterior) for its width: about 0.7 in the lumbar spine
#: (~35 x 50 mm), more higher up (Panjabi et al., Spine 1991/1992); half of the smallest ratio
#: keeps a margin for the width estimate and partial volume.
CANAL_DEPTH_FRACTION = 0.35
#: Shortest gap in the cortex taken for the spinal canal behind a body, mm: the canal is >= 10
#: mm deep at every level (cervical ~12-14 mm, lumbar 15-20 mm); a gap of a few mm is a
#: vascular channel or a marrow pocket. Engineering choice below the anatomy.
CANAL_GAP_MM = 6.0
#: Smallest axial piece of cortex taken for a wall, mm^2: a speck of noise above the bone
#: threshold is a voxel or two; a posterior wall 1-2 mm thick and >= 15 mm wide is far more.
#: Engineering choice.
WALL_MIN_MM2 = 20.0
#: How far behind a body's anterior wall the neural arch's blob may start, mm: a body's depth
#: (<= ~50 mm in the lumbar spine) plus the canal; an aorta lies in front of the body, the
#: sternum 100-160 mm in front of it. Engineering choice.
ARCH_MM = 70.0
#: A chain ending this close to the first or last slice is taken to run on to it, mm (less than
#: a vertebral body's height: a body cut by the field of view). Engineering choice.
EDGE_MM = 15.0


@dataclass(frozen=True, eq=False)
class Column:
    """The tracked column on the working grid (axes R, A, S), all per slice (length nz).

    ``z0..z1``: first and last slice of the chain; ``x``, ``y``: body centre (voxel indices,
    float; flat beyond the chain); ``half_width``, ``half_depth``: the body's half extents along
    R and A in voxels (smoothed per slice); ``seen``: slices where a body was linked;
    ``body``: the opened body mask, bool (nx, ny, nz).
    """

    z0: int
    z1: int
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    half_width: npt.NDArray[np.float64]
    half_depth: npt.NDArray[np.float64]
    seen: npt.NDArray[np.bool_]
    body: npt.NDArray[np.bool_]
    raw_half_width: npt.NDArray[np.float64]

    def posterior_wall(self) -> npt.NDArray[np.float64]:
        """A (voxel index) of the bodies' posterior wall per slice."""
        return np.asarray(self.y - self.half_depth, dtype=np.float64)


def _patient_midline(hu: npt.NDArray[np.float32]) -> float:
    """R index of the patient's left-right midline (centre of the voxels above -500 HU)."""
    prof = (hu > -500).sum(axis=(1, 2)).astype(np.float64)
    total = float(prof.sum())
    if total <= 0:
        return float(hu.shape[0]) / 2.0
    return float((prof * np.arange(hu.shape[0])).sum() / total)


def _walls(
    cortex: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.bool_]:
    """``cortex`` without its small axial pieces (below ``WALL_MIN_MM2``): noise specks of a
    noisy thin-slice CT reach the bone threshold inside low-density marrow, while a body's
    walls are continuous plates."""
    lab, n = ndi.label(cortex, structure=in_plane_structure())
    if n == 0:
        return cortex
    area = np.bincount(lab.ravel(), minlength=n + 1) * (spacing_mm[0] * spacing_mm[1])
    area[0] = 0.0
    return np.asarray(area[lab] >= WALL_MIN_MM2, dtype=bool)


def _posterior_wall(
    blob: npt.NDArray[np.bool_],
    cortex: npt.NDArray[np.bool_],
    hu: npt.NDArray[np.float32],
    front: int,
    width_mm: float,
    spacing_a_mm: float,
) -> int:
    """Index (along A) of the body's posterior wall on one antero-posterior line of a body
    candidate: ``blob``, ``cortex`` (bone by HU, closed) and ``hu`` are that line (1D, index
    increasing anteriorly), ``front`` the anterior wall's index.

    A candidate's blob often runs on through the spinal canal to the laminae: where the neural
    arch is closed in the slice, the canal is an enclosed hole and was filled with the marrow.
    Walking back from the anterior wall, the canal is the first gap in the cortex that (a)
    starts at least ``CANAL_DEPTH_FRACTION`` of the body's width behind the anterior wall --
    the body is at least that deep, and the marrow gap of an osteoporotic body starts right
    behind its anterior cortex -- (b) is at least ``CANAL_GAP_MM`` long (or reaches the
    blob's end), and (c) reads below ``MARROW_HU`` on average (cerebrospinal fluid, cord and
    epidural fat, not marrow near the bone threshold). Without such a gap the body is the
    whole run of the blob from the front."""
    y = front
    while y > 0 and blob[y - 1]:
        y -= 1
    end = y  # the blob's last voxel behind the front
    min_gap = max(1, round(CANAL_GAP_MM / spacing_a_mm))
    k = front
    while k >= end:
        if cortex[k]:
            k -= 1
            continue
        g = k
        while g >= end and not cortex[g]:
            g -= 1
        length = k - g
        deep = (front - k) * spacing_a_mm >= CANAL_DEPTH_FRACTION * width_mm
        if deep and (length >= min_gap or g < end) and float(hu[g + 1 : k + 1].mean()) < MARROW_HU:
            return k + 1
        k = g
    return end


def _candidates(
    body: npt.NDArray[np.bool_],
    cortex: npt.NDArray[np.bool_],
    hu: npt.NDArray[np.float32],
    spacing_mm: tuple[float, float, float],
    midline: float,
) -> list[tuple[int, float, float, float, float]]:
    """(slice, x, anterior wall y, half width, half depth) of each body-sized blob near the
    midline (voxel units). ``cortex``: bone by HU (closed), ``hu``: the working grid; both
    used to find the posterior wall (:func:`_posterior_wall`)."""
    labels, n = ndi.label(body, structure=in_plane_structure())
    if n == 0:
        return []
    px = spacing_mm[0] * spacing_mm[1]
    out = []
    for lab, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        sub = labels[sl] == lab
        area = float(sub.sum()) * px
        if not BODY_AREA_MM2[0] <= area <= BODY_AREA_MM2[1]:
            continue
        ii, jj, _ = np.nonzero(sub)
        x = float(ii.mean()) + sl[0].start
        if abs(x - midline) * spacing_mm[0] > MIDLINE_MM:
            continue
        # the anterior wall is the stable anchor: the blob may carry pedicle stumps behind
        xi = min(max(round(x) - sl[0].start, 0), sub.shape[0] - 1)
        col = sub[xi, :, 0]
        row = sub[:, min(max(round(jj.mean()), 0), sub.shape[1] - 1), 0]
        half_width = max(row.sum(), 1) / 2.0
        if col.any():
            f = int(np.flatnonzero(col).max())
            line = (xi + sl[0].start, slice(sl[1].start, sl[1].stop), sl[2].start)
            wall = _posterior_wall(
                col, cortex[line], hu[line], f, 2.0 * half_width * spacing_mm[0], spacing_mm[1]
            )
            front, half_depth = float(f + sl[1].start), max(f - wall + 1, 1) / 2.0
        else:
            front, half_depth = float(jj.max() + sl[1].start), 0.5
        out.append((sl[2].start, x, front, half_width, half_depth))
    return out


def _longest_chain(
    cands: list[tuple[int, float, float, float, float]], spacing_mm: tuple[float, float, float]
) -> list[int]:
    """Indices of the best chain (directed graph, longest path): most linked slices, fewest
    and shortest jumps. A slice earns its thickness in proportion to the candidate's size
    relative to the largest candidate of that slice (capped at 1 from half of it): the
    vertebral body is the largest thick bone near the midline, while a contrast-filled vessel
    or bowel loop beside it can make an equally long, equally smooth chain."""
    order = sorted(range(len(cands)), key=lambda i: cands[i][0])
    z = np.array([cands[i][0] for i in order])
    area = np.array([cands[i][3] * cands[i][4] for i in order])
    largest: dict[int, float] = {}
    for zi, a in zip(z.tolist(), area.tolist(), strict=True):
        largest[zi] = max(largest.get(zi, 0.0), a)
    weight = np.array(
        [min(1.0, a / (0.5 * largest[zi])) for zi, a in zip(z.tolist(), area.tolist(), strict=True)]
    )
    xy = np.array([[cands[i][1] * spacing_mm[0], cands[i][2] * spacing_mm[1]] for i in order])
    jump = max(1, round(MAX_JUMP_MM / spacing_mm[2]))
    score = np.zeros(len(order))
    prev = np.full(len(order), -1)
    for n in range(len(order)):
        lo = int(np.searchsorted(z, z[n] - jump))
        hi = int(np.searchsorted(z, z[n]))
        if hi <= lo:
            continue
        dz_mm = (z[n] - z[lo:hi]) * spacing_mm[2]
        dist = np.hypot(*(xy[lo:hi] - xy[n]).T)
        # each linked slice earns its thickness; a jump pays for the slices it skips and for
        # its in-plane move, so the chain follows the column slice by slice where it can
        earn = spacing_mm[2] * weight[n]
        gain = earn - JUMP_COST * (dz_mm - spacing_mm[2]) - 0.5 * dist
        s = np.where(dist <= LINK_TOL_MM + LINK_SLOPE * dz_mm, score[lo:hi] + gain, -np.inf)
        m = int(np.argmax(s))
        score[n] = earn
        if s[m] > score[n]:
            score[n] = s[m]
            prev[n] = lo + m
    n = int(np.argmax(score))
    chain = [n]
    while prev[chain[-1]] >= 0:
        chain.append(int(prev[chain[-1]]))
    return [order[i] for i in reversed(chain)]


def body_mask(
    hu: npt.NDArray[np.float32],
    bone: FilledBone,
    spacing_mm: tuple[float, float, float],
    exclude: npt.NDArray[np.bool_] | None = None,
    *,
    partly_enclosed: bool = False,
) -> npt.NDArray[np.bool_]:
    """Thick bone: marrow-dense tissue (``MARROW_HU`` after an axial smoothing of
    ``MARROW_SMOOTH_MM``) or filled bone, opened with a disc of ``BODY_OPEN_MM``.
    ``partly_enclosed``: also what bone surrounds on three sides (a body with a broken cortex;
    in the chest, ribs surround lungs and muscles that way too: a known weakness there)."""
    sigma = (MARROW_SMOOTH_MM / spacing_mm[0], MARROW_SMOOTH_MM / spacing_mm[1], 0.0)
    dense = (ndi.gaussian_filter(hu, sigma) >= MARROW_HU) & (hu >= MARROW_HU - 30.0)
    if exclude is not None:  # enhanced blood (see :mod:`.vessels`)
        dense &= ~exclude
    dense |= bone.filled
    if partly_enclosed:
        dense |= bone.partly_enclosed
    st = disc_structure(spacing_mm, BODY_OPEN_MM)
    pad = ((st.shape[0], st.shape[0]), (st.shape[1], st.shape[1]), (0, 0))
    opened = ndi.binary_opening(np.pad(dense, pad), structure=st)
    return np.asarray(opened[pad[0][0] : -pad[0][1], pad[1][0] : -pad[1][1]], dtype=bool)


def _drop_anterior(
    cands: list[tuple[int, float, float, float, float]], spacing_mm: tuple[float, float, float]
) -> list[tuple[int, float, float, float, float]]:
    """Drop a candidate with another of at least ``BEHIND_AREA_FRACTION`` of its size straight
    behind it (within ``BEHIND_MM``): the body is the most posterior *thick* structure of the
    midline -- what lies in front of it (an enhanced aorta, the sternum) is not the column.
    And drop a candidate with a larger one (by more than that fraction) straight in front of it
    within ``ARCH_MM``: the neural arch, its canal filled as an enclosed hole, behind the body
    (in a low-density, noisy body the body's blob breaks up and the arch would otherwise make
    an equally long chain)."""
    by_z: dict[int, list[tuple[int, float, float, float, float]]] = {}
    for c in cands:
        by_z.setdefault(c[0], []).append(c)
    out = []
    for c in cands:
        area = c[3] * c[4]
        behind = any(
            o is not c
            and abs(o[1] - c[1]) * spacing_mm[0] < 25.0
            and 0 < (c[2] - o[2]) * spacing_mm[1] < BEHIND_MM
            and o[3] * o[4] >= BEHIND_AREA_FRACTION * area
            for o in by_z[c[0]]
        )
        arch = any(
            o is not c
            and abs(o[1] - c[1]) * spacing_mm[0] < 25.0
            and 0 < (o[2] - c[2]) * spacing_mm[1] < ARCH_MM
            and area < BEHIND_AREA_FRACTION * o[3] * o[4]
            for o in by_z[c[0]]
        )
        if not behind and not arch:
            out.append(c)
    return out


def _extend(
    chain: list[tuple[int, float, float, float, float]],
    cands: list[tuple[int, float, float, float, float]],
    spacing_mm: tuple[float, float, float],
) -> list[tuple[int, float, float, float, float]]:
    """Follow the column past both ends of the chain, one nearest blob at a time, with a
    looser in-plane tolerance: the sacrum bends backwards below the promontory and the
    cervicothoracic junction forwards, faster than the chain's link slope allows."""
    by_z: dict[int, list[tuple[int, float, float, float, float]]] = {}
    for c in cands:
        by_z.setdefault(c[0], []).append(c)
    jump = max(1, round(MAX_JUMP_MM / spacing_mm[2]))
    out = list(chain)
    for step in (-1, 1):
        last = out[0] if step < 0 else out[-1]
        z = last[0]
        while True:
            found = None
            for dz in range(1, jump + 1):
                best = None
                for c in by_z.get(z + step * dz, ()):
                    d = float(
                        np.hypot((c[1] - last[1]) * spacing_mm[0], (c[2] - last[2]) * spacing_mm[1])
                    )
                    if d <= LINK_TOL_MM + 1.2 * dz * spacing_mm[2] and (
                        best is None or d < best[0]
                    ):
                        best = (d, c)
                if best is not None:
                    found = best[1]
                    break
            if found is None:
                break
            if step < 0:
                out.insert(0, found)
            else:
                out.append(found)
            last, z = found, found[0]
    return out


def track_column(
    hu: npt.NDArray[np.float32],
    bone: FilledBone,
    spacing_mm: tuple[float, float, float],
    *,
    exclude: npt.NDArray[np.bool_] | None = None,
) -> Column | None:
    """Track the vertebral bodies through ``hu`` (working grid, axes R, A, S); None when no
    body-like bone is found. ``exclude``: voxels that are not marrow however dense (enhanced
    blood)."""
    body = body_mask(hu, bone, spacing_mm, exclude, partly_enclosed=True)
    cands = _candidates(body, _walls(bone.bone, spacing_mm), hu, spacing_mm, _patient_midline(hu))
    cands = _drop_anterior(cands, spacing_mm)
    if not cands:
        return None
    chain = _extend([cands[i] for i in _longest_chain(cands, spacing_mm)], cands, spacing_mm)
    nz = hu.shape[2]
    zs = np.array([c[0] for c in chain], dtype=np.float64)
    allz = np.arange(nz, dtype=np.float64)
    sigma = max(1.0, SMOOTH_MM / spacing_mm[2])

    def along(values: list[float]) -> npt.NDArray[np.float64]:
        v = np.interp(allz, zs, np.asarray(values, dtype=np.float64))
        return np.asarray(ndi.gaussian_filter1d(v, sigma, mode="nearest"), dtype=np.float64)

    # body size: a running median over ~2 vertebrae damps pedicle stumps and endplate slices
    win = max(3, round(60.0 / spacing_mm[2]) | 1)
    hw = ndi.median_filter(np.array([c[3] for c in chain]), size=min(win, len(chain)) | 1)
    hd = ndi.median_filter(np.array([c[4] for c in chain]), size=min(win, len(chain)) | 1)
    front = along([c[2] for c in chain])
    seen = np.zeros(nz, dtype=bool)
    seen[zs.astype(int)] = True
    # a chain ending within EDGE_MM of the scan's first or last slice is a column cut by the
    # field of view: the vertebra there continues to the edge (its body is partial, so it was
    # not seen as a candidate in the last slices)
    z0, z1 = int(zs.min()), int(zs.max())
    if z0 * spacing_mm[2] <= EDGE_MM:
        z0 = 0
    if (nz - 1 - z1) * spacing_mm[2] <= EDGE_MM:
        z1 = nz - 1
    return Column(
        z0=z0,
        z1=z1,
        x=along([c[1] for c in chain]),
        y=front - along(hd.tolist()),
        half_width=along(hw.tolist()),
        half_depth=along(hd.tolist()),
        seen=seen,
        body=body,
        raw_half_width=np.interp(allz, zs, np.array([c[3] for c in chain])),
    )
