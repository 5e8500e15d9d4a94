"""Split a one-label mask of several vertebrae into one piece per vertebra.

Used when a label map gives all vertebrae one label (a binary mask, TotalSegmentator
``vertebrae_body`` label 1, ``total_mr`` label 19) and the user names the lowest level.

Method (marker-controlled watershed on the distance map, scipy only):

1. The mask is reduced to a working grid of about :data:`WORK_MM` (blocks of voxels at least
   half inside), and its Euclidean distance to the background is computed in mm.
2. **Markers** are the regional maxima of that distance whose *dynamic* (how far the distance
   must drop before the maximum joins a higher one) is large: a vertebral body is far thicker
   than the disc gap or the facet contacts that join it to its neighbours, so its maximum
   stands out (dynamics 7-12 mm in lumbar bodies, about 3 mm in a thin collapsed body) while
   the maxima of processes and pedicles hardly do (<= 4 mm). A maximum is a marker when its
   dynamic is at least ``max(2.5 mm, 0.4 x the largest thickness)`` (or it never joins another:
   separate pieces, as bodies-only masks are), or at least 2 mm and it lies on the column of
   the other markers (within :data:`BODY_LINE_MM`, horizontally): a thin body between two
   bodies, not a process behind them.
3. **Bodies the maxima missed**: a crushed body fused to its neighbours has no maximum of its
   own (VerSe004's grade-3 L1). Along the column, the tissue within :data:`CORE_MM` of the line
   through the markers is cut into runs at the disc gaps; a run without a marker becomes one.
   Missing such a body would name every vertebra above it one level too low.
4. **Flooding by levels**: the distance levels are visited from the top down; each new part of
   ``distance >= level`` joins the marker region it touches (the nearest one when it touches
   several), so neighbouring vertebrae meet where the tissue is thinnest (the disc level, the
   facet joints).
5. The pieces are brought back to the full grid (every tissue voxel takes the label of the
   nearest working-grid piece); pieces under :data:`MIN_PIECE_FRACTION` of the largest are
   fragments, not vertebrae.

Measured on real maps of ``../shared/data`` merged into one label and split back
(``tests/imaging/test_label_maps.py``): bodies-only masks (TPTBox CT and MRI bodies) come apart
exactly (Dice 1.0: they are separate at the discs). Whole vertebrae touch at the facet joints,
where geometry alone shares the posterior elements out imperfectly: Dice 0.92-0.96
(TotalSegmentator example, 3 mm), 0.82-0.99 (VerSe004 T9-L5, its crushed L1 0.89), 0.93-1.00
(TPTBox CT; 0.76 for the L2 cut by the scan's edge). The bodies -- what is measured -- agree: on
VerSe004 the body centroids of the split map are within 0.5 mm of the original's, the heights
within 1.5 mm and the Genant grades identical. A vertebra cut to a sliver at the scan's edge
(1.9 ml) is a fragment of its neighbour.

Arrays are indexed like the label map (``[i, j, k]``); ``affine`` maps voxel to world RAS+ mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

__all__ = [
    "BODY_LINE_MM",
    "MIN_PIECE_FRACTION",
    "WORK_MM",
    "VertebraPieces",
    "split_vertebrae",
]

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int32]

#: Working voxel size (mm): finer scans are grouped into blocks of at most this size.
WORK_MM = 2.0
#: A candidate marker within this horizontal distance (mm) of the line through the other
#: markers is a vertebral body (the column of bodies); engineering choice (a body is 30-50 mm
#: wide, the processes lie 30-60 mm behind its centre).
BODY_LINE_MM = 12.0
#: Radius (mm) of the core of the body column (around the line through the bodies' markers)
#: whose cross-section along the column shows the disc gaps; engineering choice: inside every
#: adult vertebral body (cervical bodies are ~15 mm deep), in front of the canal.
CORE_MM = 7.0
#: Shortest run of body tissue along the column (mm) taken as a body of its own (a vertebra
#: plana keeps ~ a quarter of a 25 mm body). Engineering choice.
MIN_BODY_RUN_MM = 4.0
#: A piece under this fraction of the largest piece's volume is a fragment, not a vertebra.
MIN_PIECE_FRACTION = 0.1
_STEP_MM = 0.5
_H_LOW_MM = 2.0
_H_MIN_MM = 2.5
_H_FRACTION = 0.4


@dataclass(frozen=True)
class VertebraPieces:
    """The result of :func:`split_vertebrae`: ``labels`` (same shape as the mask; 0 background,
    1..n the pieces, ordered cranial first by world S of their centroid), their centroids (world
    mm, shape (n, 3)) and volumes (ml, shape (n,)), and the tissue volume (ml) left out as
    fragments."""

    labels: IntArray
    centroids_mm: npt.NDArray[np.float64]
    volumes_ml: npt.NDArray[np.float64]
    fragments_ml: float

    @property
    def count(self) -> int:
        return len(self.volumes_ml)


def _blocks(spacing: tuple[float, float, float]) -> tuple[int, int, int]:
    f = [max(1, math.floor(WORK_MM / s + 1e-6)) for s in spacing]
    return (f[0], f[1], f[2])


def _reduce(mask: BoolArray, f: tuple[int, int, int]) -> BoolArray:
    if f == (1, 1, 1):
        return mask
    pad = [(0, (-n) % k) for n, k in zip(mask.shape, f, strict=True)]
    m = np.pad(mask, pad).astype(np.float32)
    s = m.shape
    m = m.reshape(s[0] // f[0], f[0], s[1] // f[1], f[1], s[2] // f[2], f[2])
    return np.asarray(m.mean(axis=(1, 3, 5)) >= 0.5)


def _dynamics(edt: npt.NDArray[np.float64]) -> tuple[IntArray, dict[int, tuple[float, float]]]:
    """Regional maxima of ``edt`` by descending thresholds: the seed region of each (its
    component where it first appears) and (peak, dynamic) per seed id."""
    seed = np.zeros(edt.shape, dtype=np.int32)
    info: dict[int, list[float]] = {}
    alive: set[int] = set()
    top = float(edt.max())
    key = 1 << 20
    for level in np.arange(top - _STEP_MM, 0.0, -_STEP_MM):
        comp, n = ndimage.label(edt > level)
        if n == 0:
            continue
        has = seed > 0
        owners: dict[int, list[int]] = {}
        if has.any():
            for code in np.unique(comp[has].astype(np.int64) * key + seed[has]):
                c, s = divmod(int(code), key)
                if s in alive:
                    owners.setdefault(c, []).append(s)
        new = [c for c in range(1, n + 1) if c not in owners]
        if new:
            peaks = ndimage.maximum(edt, comp, index=new)
            lut = np.zeros(n + 1, dtype=np.int32)
            for c, peak in zip(new, np.atleast_1d(peaks), strict=True):
                sid = len(info) + 1
                lut[c] = sid
                info[sid] = [float(peak), math.inf]
                alive.add(sid)
            add = lut[comp]
            seed = np.where(add > 0, add, seed)
        for ss in owners.values():
            if len(ss) > 1:
                ss.sort(key=lambda s: -info[s][0])
                for s in ss[1:]:
                    alive.discard(s)
                    info[s][1] = info[s][0] - float(level)
    return seed, {s: (v[0], v[1]) for s, v in info.items()}


def _world(affine: npt.NDArray[np.float64], ijk: npt.NDArray[np.float64]) -> Any:
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _line(points: list[Any]) -> Any:
    """x(z), y(z) of the line through ``points`` (world mm), constant beyond its ends."""
    pts = np.array(sorted(points, key=lambda p: float(p[2])), dtype=np.float64).reshape(-1, 3)

    def at(z: Any) -> tuple[Any, Any]:
        return np.interp(z, pts[:, 2], pts[:, 0]), np.interp(z, pts[:, 2], pts[:, 1])

    return at


def _markers(edt: npt.NDArray[np.float64], affine: npt.NDArray[np.float64]) -> IntArray:
    seed, info = _dynamics(edt)
    ids = sorted(info)
    if not ids:
        return seed
    centres = ndimage.center_of_mass(np.ones(seed.shape), seed, ids)
    world = {
        s: _world(affine, np.asarray(c, dtype=np.float64))
        for s, c in zip(ids, centres, strict=True)
    }
    high = max(_H_MIN_MM, _H_FRACTION * float(edt.max()))
    chosen = [s for s in ids if info[s][1] >= high]
    candidates = sorted(
        (s for s in ids if _H_LOW_MM <= info[s][1] < high), key=lambda s: -info[s][1]
    )
    for s in candidates:
        x, y = _line([world[c] for c in chosen])(float(world[s][2]))
        if math.hypot(float(world[s][0]) - x, float(world[s][1]) - y) <= BODY_LINE_MM:
            chosen.append(s)
    lut = np.zeros(len(info) + 1, dtype=np.int32)
    for i, s in enumerate(chosen, start=1):
        lut[s] = i
    markers = lut[seed]
    return _add_missed_bodies(markers, edt > 0, affine, [world[c] for c in chosen])


def _add_missed_bodies(
    markers: IntArray, mask: BoolArray, affine: npt.NDArray[np.float64], line: list[Any]
) -> IntArray:
    """Add a marker for each body the distance maxima missed (a crushed body is too thin to
    stand out): along the column, the tissue within :data:`CORE_MM` of the line through the
    bodies is cut into runs by the disc gaps (slabs holding under 40 % of the median core
    area); a run of at least :data:`MIN_BODY_RUN_MM` without a marker is a body of its own."""
    idx = np.nonzero(mask)
    world = _world(affine, np.stack(idx, axis=1).astype(np.float64))
    x, y = _line(line)(world[:, 2])
    core = np.hypot(world[:, 0] - x, world[:, 1] - y) <= CORE_MM
    if not core.any():
        return markers
    step = max(1.0, float(np.abs(affine[2, :3]).max()))
    zbin = np.floor(world[:, 2] / step).astype(np.int64)
    lo = int(zbin[core].min())
    area = np.bincount(zbin[core] - lo)
    threshold = 0.4 * float(np.median(area[area > 0]))
    full = area >= threshold
    edges = np.flatnonzero(np.diff(np.concatenate([[0], full.astype(np.int8), [0]])))
    out = markers.copy()
    marked = markers[idx] > 0
    next_id = int(markers.max()) + 1
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if (stop - start) * step < MIN_BODY_RUN_MM:
            continue
        in_run = core & (zbin - lo >= start) & (zbin - lo < stop)
        if (in_run & marked).any():
            continue
        sel = tuple(axis[in_run] for axis in idx)
        out[sel] = next_id
        next_id += 1
    return out


def _flood(markers: IntArray, edt: npt.NDArray[np.float64], mask: BoolArray) -> IntArray:
    lab = markers.copy()
    key = 1 << 20
    levels = [*np.arange(float(edt.max()), 0.0, -_STEP_MM), 0.0]
    for level in levels:
        region = mask & (edt >= level)
        comp, n = ndimage.label(region)
        has = lab > 0
        codes = np.unique(comp[has].astype(np.int64) * key + lab[has])
        cs, ls = np.divmod(codes, key)
        count = np.bincount(cs, minlength=n + 1)
        owner = np.zeros(n + 1, dtype=np.int32)
        single = count[cs] == 1
        owner[cs[single]] = ls[single]
        todo = region & ~has
        own = owner[comp]
        take = todo & (own > 0)
        lab[take] = own[take]
        contested = todo & (own == 0) & (count[comp] > 1)
        if contested.any():
            box = ndimage.find_objects(contested.astype(np.int8))[0]
            box = tuple(slice(max(b.start - 6, 0), b.stop + 6) for b in box)
            sub = lab[box]
            _, ind = ndimage.distance_transform_edt(sub == 0, return_indices=True)
            near = sub[tuple(ind)]
            here = contested[box]
            sub[here] = near[here]
    return lab


def _to_full(work: IntArray, f: tuple[int, int, int], mask: BoolArray) -> IntArray:
    if f == (1, 1, 1):
        full = work
    else:
        full = work.repeat(f[0], 0).repeat(f[1], 1).repeat(f[2], 2)
        full = full[: mask.shape[0], : mask.shape[1], : mask.shape[2]]
    full = np.where(mask, full, 0).astype(np.int32)
    missing = mask & (full == 0)
    if missing.any() and full.any():
        _, ind = ndimage.distance_transform_edt(full == 0, return_indices=True)
        full[missing] = full[tuple(ind)][missing]
    return full


def split_vertebrae(mask: npt.ArrayLike, affine: npt.ArrayLike) -> VertebraPieces:
    """Split the vertebral tissue ``mask`` (3D bool, indexed like the label map) into one piece
    per vertebra (see the module docstring). ``affine``: voxel -> world RAS+ mm (4x4)."""
    m = np.asarray(mask, dtype=bool)
    aff = np.asarray(affine, dtype=np.float64)
    empty = VertebraPieces(np.zeros(m.shape, np.int32), np.zeros((0, 3)), np.zeros(0), 0.0)
    if m.ndim != 3 or not m.any():
        return empty
    box = ndimage.find_objects(m.astype(np.int8))[0]
    crop = m[box]
    spacing_t = tuple(float(x) for x in np.sqrt((aff[:3, :3] ** 2).sum(axis=0)))
    spacing = (spacing_t[0], spacing_t[1], spacing_t[2])
    f = _blocks(spacing)
    work = _reduce(crop, f)
    if not work.any():
        work = crop
        f = (1, 1, 1)
    wspacing = tuple(s * k for s, k in zip(spacing, f, strict=True))
    offset = np.array([b.start for b in box], dtype=np.float64)
    waff = aff.copy()
    waff[:3, :3] = aff[:3, :3] * np.array(f, dtype=np.float64)
    waff[:3, 3] = aff[:3, :3] @ (offset + (np.array(f) - 1) / 2.0) + aff[:3, 3]
    edt = ndimage.distance_transform_edt(work, sampling=wspacing)
    markers = _markers(np.asarray(edt, dtype=np.float64), waff)
    lab = _flood(markers, np.asarray(edt, dtype=np.float64), work)
    full_crop = _to_full(lab, f, crop)
    n = int(full_crop.max())
    voxel_ml = abs(float(np.linalg.det(aff[:3, :3]))) / 1000.0
    counts = np.bincount(full_crop.ravel(), minlength=n + 1)[1:].astype(np.float64)
    volumes = counts * voxel_ml
    keep = [
        i + 1
        for i in range(n)
        if counts[i] > 0 and volumes[i] >= MIN_PIECE_FRACTION * volumes.max()
    ]
    fragments = float(volumes.sum() - sum(volumes[k - 1] for k in keep))
    centres = ndimage.center_of_mass(np.ones(full_crop.shape), full_crop, keep)
    world = [aff[:3, :3] @ (np.asarray(c) + offset) + aff[:3, 3] for c in centres]
    order = sorted(range(len(keep)), key=lambda i: -float(world[i][2]))
    lut = np.zeros(n + 1, dtype=np.int32)
    for new, i in enumerate(order, start=1):
        lut[keep[i]] = new
    out = np.zeros(m.shape, dtype=np.int32)
    out[box] = lut[full_crop]
    return VertebraPieces(
        labels=out,
        centroids_mm=np.array([world[i] for i in order], dtype=np.float64).reshape(-1, 3),
        volumes_ml=np.array([volumes[keep[i] - 1] for i in order], dtype=np.float64),
        fragments_ml=fragments,
    )
