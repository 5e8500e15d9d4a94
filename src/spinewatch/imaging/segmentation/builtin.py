"""The built-in, classical CT vertebra segmenter (no model weights, no network, CPU only).

Steps (each in its own module): the working grid (:mod:`.working`), bone (:mod:`.bone`), the
column and canal (:mod:`.column`), discs (:mod:`.discs`), whole vertebrae with their posterior
elements (:mod:`.vertebrae`), landmarks (:mod:`.landmarks`, :mod:`.dens`) and level names
(:mod:`.levels`); finally the labels are carried back to the CT's own grid, where the bone edge
is re-drawn at the CT's resolution.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from spinewatch.core.conventions import LabelConvention, label_for_level
from spinewatch.imaging.segmentation.bone import (
    BONE_HU,
    FilledBone,
    filled_bone,
    in_plane_structure,
)
from spinewatch.imaging.segmentation.column import (
    CANAL_DEPTH_FRACTION,
    MARROW_HU,
    MARROW_SMOOTH_MM,
    Column,
    track_column,
)
from spinewatch.imaging.segmentation.dens import find_dens, split_atlas
from spinewatch.imaging.segmentation.discs import (
    Disc,
    body_profile_smooth,
    expected_pitch_vox,
    find_discs,
    spacing_problem,
)
from spinewatch.imaging.segmentation.edge import refine_edge
from spinewatch.imaging.segmentation.landmarks import rib_bearing, sacrum_segment
from spinewatch.imaging.segmentation.levels import LevelNaming, name_levels
from spinewatch.imaging.segmentation.noise import denoise, smoothing_sigma_vox
from spinewatch.imaging.segmentation.result import (
    NoSpineError,
    NotCtError,
    ScoutError,
    SegmentationResult,
    VertebraEvidence,
)
from spinewatch.imaging.segmentation.vertebrae import column_roi, label_segments
from spinewatch.imaging.segmentation.vessels import enhanced_vessels
from spinewatch.imaging.segmentation.working import (
    WorkingGrid,
    canonical_view,
    make_working_grid,
    to_ct_grid,
)
from spinewatch.imaging.volume import CtVolume, LabelVolume

__all__ = [
    "BUILTIN_NAME",
    "BUILTIN_VERSION",
    "MIN_EXTENT_MM",
    "behind_the_body",
    "canal_holes",
    "check_ct",
    "overlong_end_segments",
    "segment_ct",
]

log = logging.getLogger(__name__)

BUILTIN_NAME = "spinewatch-classical"
BUILTIN_VERSION = "1.1"
#: A volume shorter than this along any axis is a scout or a single slice, mm (a vertebra with
#: its disc is >= ~15 mm even in the cervical spine). Engineering choice.
MIN_EXTENT_MM = 20.0
MIN_SLICES = 5
#: A CT in HU has negative values (air, fat, or water and soft tissue with noise); an MRI's
#: magnitude signal, or raw stored values without their rescale, never do.
LOW_HU = 0.0
#: Smallest vertebra kept, ml (a fragment at the edge of the field of view is still labelled).
MIN_VERTEBRA_ML = 0.5
#: Working slices re-drawn at CT resolution at a time (bounds the float32 temporaries).
_RIM_SLAB = 8
#: An end segment reaching the scan's edge this many expected pitches beyond its last disc may
#: hide a disc near the edge (its name stays unconfirmed). Engineering choice: a whole vertebra
#: with its disc is one pitch.
EDGE_SEGMENT_PITCH = 0.9
_TS = LabelConvention.TOTALSEGMENTATOR


def check_ct(ct: CtVolume) -> None:
    """Refuse what cannot be segmented: a scout (too few slices or too short along an axis)
    and an image that is not in Hounsfield units (no air or fat values: an MRI)."""
    extent = [n * s for n, s in zip(ct.grid.shape, ct.grid.spacing_mm, strict=True)]
    for axis, (n, e) in enumerate(zip(ct.grid.shape, extent, strict=True)):
        if n < MIN_SLICES or e < MIN_EXTENT_MM:
            raise ScoutError(
                f"{ct.source}: {n} voxel(s) ({e:.0f} mm) along axis {axis}: a scout/localiser or "
                f"a single slice, not a CT volume; expected at least {MIN_SLICES} slices and "
                f"{MIN_EXTENT_MM:.0f} mm"
            )
    lo, hi = float(ct.hu.min()), float(ct.hu.max())
    if lo >= LOW_HU:
        raise NotCtError(
            f"{ct.source}: values {lo:.0f}..{hi:.0f}, none below {LOW_HU:.0f} (no air, fat or "
            "water): not a CT in Hounsfield units (an MRI?); expected a CT"
        )


def _dense(hu: npt.NDArray[np.float32], spacing: tuple[float, float, float]) -> Any:
    # the smoothing carries a bright cortex a few mm into the soft tissue around it: a voxel
    # must also be above soft tissue on its own. Axial only (axes 0, 1), the kernel cut at two
    # sigmas (the tails change a threshold at MARROW_HU by a few HU at most).
    out = hu
    for axis in (0, 1):
        sigma = MARROW_SMOOTH_MM / spacing[axis]
        out = ndi.gaussian_filter1d(out, sigma, axis=axis, truncate=2.0)
    return (out >= MARROW_HU) & (hu >= MARROW_HU - 30.0)


def canal_holes(
    bone: FilledBone, column: Column, spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.bool_]:
    """The enclosed axial holes that are the spinal canal, bool (nx, ny, nz).

    HU cannot tell the canal from marrow (osteoporotic marrow reads 50-100 HU, like the
    canal's contents; Pickhardt et al., Ann Intern Med 2013), but position can: a body's marrow
    cavity starts just behind its anterior cortex, while the canal starts behind the whole body,
    whose depth is at least ``CANAL_DEPTH_FRACTION`` of its width at every level. A hole near
    the midline whose anterior edge lies farther than that behind the column's anterior wall
    is the canal."""
    return behind_the_body(bone.holes, column, spacing_mm)


def behind_the_body(
    mask: npt.NDArray[np.bool_], column: Column, spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.bool_]:
    """The axial components of ``mask`` (bool, nx, ny, nz) that start behind the body (see
    :func:`canal_holes`), bool, same shape."""
    lab, n = ndi.label(mask, structure=in_plane_structure())
    if n == 0:
        return np.zeros(lab.shape, dtype=bool)
    idx = np.nonzero(lab)
    ids = lab[idx]
    count = np.bincount(ids, minlength=n + 1).astype(np.float64)
    count[0] = 1.0
    cx = np.bincount(ids, weights=idx[0], minlength=n + 1) / count
    z = np.zeros(n + 1, dtype=np.int64)
    z[ids] = idx[2]
    front_edge = np.full(n + 1, -1.0)
    np.maximum.at(front_edge, ids, idx[1].astype(np.float64))
    front = column.y[z] + column.half_depth[z]
    width_mm = 2.0 * column.half_width[z] * spacing_mm[0]
    gap_mm = (front - front_edge) * spacing_mm[1]
    behind = (gap_mm > CANAL_DEPTH_FRACTION * width_mm) & (
        np.abs(cx - column.x[z]) <= column.half_width[z]
    )
    behind &= (z >= column.z0) & (z <= column.z1)
    behind[0] = False
    return np.asarray(behind[lab], dtype=bool)


def _to_native(
    ct: CtVolume,
    working: WorkingGrid,
    seg: npt.NDArray[np.uint8],
    canal: npt.NDArray[np.bool_],
    noise_hu: float = 0.0,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The working-grid labels carried to the CT grid: each CT voxel of bone (re-thresholded
    at the CT's resolution) takes the label of its working voxel, or of the neighbouring one
    when its own is empty (the edge moves by at most one working voxel). Also returns the CT
    voxel count per label (256,), summed per working voxel (a bincount over every CT voxel
    costs seconds on a 512 x 512 x 600 CT).

    ``noise_hu``: the working grid's noise; the CT's own is larger by the square root of the
    voxels averaged (white noise). When that exceeds the segmenter's target (:mod:`.noise`),
    the edge decision on the CT grid is a 3 x 3 x 3 majority vote (see :func:`_rim`)."""
    view, _ = canonical_view(ct.hu, ct.grid)
    # Fortran order, like the arrays nibabel reads and writes: writing a C-ordered label map of
    # 157 M voxels costs seconds of transposition
    out = np.zeros(working.canonical_shape, dtype=np.uint8, order="F")
    if not seg.any():
        return to_ct_grid(out, working), np.zeros(256, dtype=np.int64)
    # the labelled box, one working voxel wider on each side (the dilation's reach)
    box = ndi.find_objects((seg > 0).astype(np.uint8))[0]
    assert box is not None
    lo = [max(0, s.start - 1) for s in box]
    hi = [min(n, s.stop + 1) for s, n in zip(box, seg.shape, strict=True)]
    sl_w = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    seg, canal = seg[sl_w], canal[sl_w]
    if max(working.factors) > 1:
        grown = np.where(seg > 0, seg, ndi.grey_dilation(seg, size=3)).astype(np.uint8)
    else:  # the working grid is the CT's: nothing was averaged away at the edge
        grown = seg
    blocked = canal & (seg == 0)
    # working voxels well inside a vertebra stay labelled whatever their own HU (osteoporotic
    # or lytic marrow); only the rim is re-drawn from the CT's own voxels
    core = ndi.binary_erosion(seg > 0, structure=in_plane_structure())
    f = working.factors
    sp = working.canonical_spacing_mm
    ct_sigma = smoothing_sigma_vox(noise_hu * float(np.sqrt(np.prod(f))), sp)
    noisy = ct_sigma is not None
    margin = 1 if noisy else 0
    # slab by slab along S (the slow axis of a Fortran-ordered CT): the float32 crop and its
    # smoothing stay a few slices deep instead of the whole column's box
    for k0 in range(0, grown.shape[2], _RIM_SLAB):
        k1 = min(grown.shape[2], k0 + _RIM_SLAB)
        sl_n = (
            slice(lo[0] * f[0], hi[0] * f[0]),
            slice(lo[1] * f[1], hi[1] * f[1]),
            slice((lo[2] + k0) * f[2], (lo[2] + k1) * f[2]),
        )
        a = max(0, sl_n[2].start - margin)
        b = min(view.shape[2], sl_n[2].stop + margin)
        wide = np.asarray(view[sl_n[0], sl_n[1], a:b], dtype=np.float32)
        part = (slice(None), slice(None), slice(k0, k1))
        labels_w = grown[part]
        keep = _rim(wide, sp, f, labels_w, blocked[part], core[part], sl_n[2].start - a, noisy)
        up = _upsample(labels_w, f, keep.shape)
        out[sl_n] = np.where(keep, up, 0)
    # the outer surface re-drawn at the half-maximum of its cortex, on the CT's own voxels
    box_n = tuple(
        slice(a * k, min(b * k, n)) for a, b, k, n in zip(lo, hi, f, out.shape, strict=True)
    )
    refine_edge(view, out, sp, ct_sigma, (box_n[0], box_n[1], box_n[2]))
    return to_ct_grid(out, working), _label_counts(out, box_n)


def _label_counts(labels: npt.NDArray[np.uint8], box: tuple[slice, ...]) -> npt.NDArray[np.int64]:
    """Voxels per label (256,) inside ``box`` (it holds every label), counted a few slices at
    a time (a bincount widens each voxel to 8 bytes)."""
    counts = np.zeros(256, dtype=np.int64)
    for k0 in range(box[2].start, box[2].stop, _RIM_SLAB):
        part = labels[box[0], box[1], k0 : min(k0 + _RIM_SLAB, box[2].stop)]
        counts += np.bincount(part.ravel(), minlength=256)[:256]
    return counts


def _upsample(
    a: npt.NDArray[Any], factors: tuple[int, int, int], shape: tuple[int, ...]
) -> npt.NDArray[Any]:
    """Working-grid array ``a`` repeated to CT resolution and cut to ``shape``."""
    for axis, k in enumerate(factors):
        if k > 1:
            a = np.repeat(a, k, axis=axis)
    return a[: shape[0], : shape[1], : shape[2]]


def _rim(
    wide: npt.NDArray[np.float32],
    spacing_mm: tuple[float, float, float],
    factors: tuple[int, int, int],
    labels_w: npt.NDArray[np.uint8],
    blocked_w: npt.NDArray[np.bool_],
    core_w: npt.NDArray[np.bool_],
    first: int = 0,
    noisy: bool = False,
) -> npt.NDArray[np.bool_]:
    """Which CT voxels of the crop keep their working voxel's label: bone or marrow-dense at the
    CT's resolution (no closing, which would also fill the canal and the notches between
    processes at this finer scale), or inside a vertebra's core; never in a blocked voxel.

    ``wide``: the CT crop with ``first`` extra slices below (and as many or fewer above) it.
    ``noisy``: the CT's noise exceeds the segmenter's target (:mod:`.noise`); the bone/marrow
    decision is then a majority vote over each voxel's 3 x 3 x 3 neighbourhood -- single-voxel
    noise specks in or out of the edge are undone, while the edge is not moved outwards the
    way smoothing the HU before a threshold below half the bone's contrast would move it."""
    mask = (wide >= BONE_HU) | _dense(wide, spacing_mm)
    if noisy:
        mask = ndi.uniform_filter(mask.astype(np.float32), size=3, mode="nearest") > 0.5
    crop = wide[:, :, first : first + labels_w.shape[2] * factors[2]]
    mask = mask[:, :, first : first + crop.shape[2]]
    up_core = _upsample(core_w, factors, crop.shape)
    up_block = _upsample(blocked_w, factors, crop.shape)
    return np.asarray((mask | up_core) & ~up_block & (_upsample(labels_w, factors, crop.shape) > 0))


def overlong_end_segments(
    discs: list[Disc],
    column: Column,
    pitch_vox: npt.NDArray[np.float64],
    nz: int,
    sacrum: bool,
) -> set[int]:
    """Segments (1 = most caudal) at a scan edge that run on from their last disc for at least
    ``EDGE_SEGMENT_PITCH`` expected pitches: a disc may be hidden in them near the edge, so they
    may hold part of the next vertebra as well as their own (their names stay unconfirmed)."""
    out: set[int] = set()
    if not discs:
        return out
    n = len(discs) + 1
    top = discs[-1].z
    if column.z1 >= nz - 1 and column.z1 - top >= EDGE_SEGMENT_PITCH * _at(pitch_vox, top):
        out.add(n)
    low = discs[0].z
    if (
        not sacrum
        and column.z0 <= 0
        and low - column.z0 >= EDGE_SEGMENT_PITCH * _at(pitch_vox, low)
    ):
        out.add(1)
    return out


def _evidence(
    labels: npt.NDArray[np.uint8],
    counts: npt.NDArray[np.int64],
    naming: LevelNaming,
    ribs: dict[int, bool],
    voxel_ml: float,
    doubtful: set[int],
) -> tuple[VertebraEvidence, ...]:
    edge = np.zeros(256, dtype=bool)
    # the six faces as views (np.take copies, and is pathologically slow on Fortran order)
    faces = (labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1])
    for face in faces:
        edge[np.unique(face)] = True
    out = []
    first = 2 if naming.sacrum else 1
    if naming.sacrum:
        out.append(
            VertebraEvidence(
                "sacrum", 25, naming.confirmed, counts[25] * voxel_ml, None, bool(edge[25])
            )
        )
    for k, level in enumerate(naming.levels):
        lab = label_for_level(level, _TS)
        if counts[lab] == 0:
            continue
        out.append(
            VertebraEvidence(
                str(level),
                lab,
                naming.confirmed and first + k not in doubtful,
                counts[lab] * voxel_ml,
                ribs.get(first + k),
                bool(edge[lab]),
            )
        )
    return tuple(reversed(out))  # cranial first


def _at(values: npt.NDArray[np.float64], z: float | None) -> float:
    if z is None:
        return float(np.median(values))
    return float(values[min(max(round(z), 0), values.size - 1)])


def segment_ct(ct: CtVolume) -> SegmentationResult:
    """Segment and name the vertebrae of ``ct``; raises :class:`ScoutError`,
    :class:`NotCtError` or :class:`NoSpineError` (all :class:`InputError`) when it cannot."""
    check_ct(ct)
    working = make_working_grid(ct)
    sp = working.spacing_mm
    hu, noise_hu, sigma = denoise(working.hu, sp)
    bone = filled_bone(hu, sp)
    blood = enhanced_vessels(hu, sp) & ~bone.filled & ~bone.partly_enclosed
    column = track_column(hu, bone, sp, exclude=blood)
    if column is None or (column.z1 - column.z0 + 1) * sp[2] < MIN_EXTENT_MM / 2:
        raise NoSpineError(
            f"{ct.source}: no vertebral column found (no chain of vertebral bodies near the "
            "midline); expected a CT that shows the spine"
        )
    # a body's marrow inside a cortex broken on one side (thin, noisy) is filled too, but only
    # in front of the posterior wall, where no rib or transverse process makes a notch
    _, body_region = column_roi(hu.shape, column, sp)
    part = bone.partly_enclosed & body_region & ~bone.bone
    part &= ~behind_the_body(part, column, sp)  # an open canal, surrounded on three sides
    dense = bone.filled | (_dense(hu, sp) & ~blood) | part
    discs, profile = find_discs(hu, column, sp)
    pitch = expected_pitch_vox(column, sp, body_profile_smooth(profile, sp))
    canal = canal_holes(bone, column, sp)
    segments, disc_tissue = label_segments(dense, bone.bone, canal, column, discs, sp)
    voxel_ml = working.voxel_volume_mm3 / 1000.0
    counts = np.bincount(segments.ravel())
    if counts.size <= 1 or counts[1:].max() * voxel_ml < MIN_VERTEBRA_ML:
        raise NoSpineError(f"{ct.source}: no vertebra found along the column; expected a spine CT")
    n = int(segments.max())
    lowest = discs[0].z if discs else None
    sacrum_z = sacrum_segment(bone.filled, column, lowest, _at(pitch, lowest), sp)
    top_disc = discs[-1].z if discs else None
    view, _ = canonical_view(ct.hu, ct.grid)
    dens = find_dens(view, working.factors, segments, column, discs, _at(pitch, top_disc), sp)
    if dens is not None:  # C1 = the ring around the dens; the skull base above is not a vertebra
        segments, n = split_atlas(segments, dens, sp)
        counts = np.bincount(segments.ravel(), minlength=n + 1)
    sacrum = sacrum_z is not None and n >= 2 and (dens is None or dens.segment >= 2)
    ribs = rib_bearing(bone.bone, segments, column, sp)
    note = ""
    if sacrum and lowest is not None and sacrum_z is not None:
        note = f"bone joins both ilia {(lowest - sacrum_z) * sp[2]:.0f} mm below the lowest disc"
    if dens is not None:  # discs found above C2/C3 lie within C2 or between the dens and C1
        discs = discs[: dens.disc_index + 1]
    problem = spacing_problem(discs, pitch, sp)
    guessed = [d for d in discs if d.inferred]
    if problem is None and guessed:
        problem = "disc(s) at " + ", ".join(f"{d.point_mm[2]:.0f} mm" for d in guessed)
        problem += " placed from the spacing of their neighbours (not clearly seen)"
    naming = name_levels(
        n,
        sacrum,
        ribs,
        spacing_problem=problem,
        sacrum_note=note,
        c2=None if dens is None else dens.segment,
        c2_confirmable=dens is not None and dens.confirmable,
        c2_note="" if dens is None else dens.describe(),
    )
    lut = np.zeros(n + 1, dtype=np.uint8)
    first = 2 if sacrum else 1
    if sacrum:
        lut[1] = 25
    for k, level in enumerate(naming.levels):
        if first + k <= n:
            lut[first + k] = label_for_level(level, _TS)
    seg_ts = lut[segments]
    small = [lab for lab in range(1, n + 1) if counts[lab] * voxel_ml < MIN_VERTEBRA_ML]
    for lab in small:
        seg_ts[segments == lab] = 0
    native, native_counts = _to_native(ct, working, seg_ts, canal | disc_tissue | blood, noise_hu)
    labels = LabelVolume(native, ct.grid, f"{BUILTIN_NAME} {BUILTIN_VERSION} of {ct.source}")
    doubtful = overlong_end_segments(discs, column, pitch, hu.shape[2], sacrum)
    if dens is not None and dens.confirmable:  # the top ends at the dens's tip, in view
        doubtful -= set(range(dens.segment, n + 1))
    vertebrae = _evidence(native, native_counts, naming, ribs, ct.grid.voxel_volume_ml, doubtful)
    evidence = naming.evidence
    for v in vertebrae:
        if naming.confirmed and not v.level_confirmed:
            evidence += (
                f"{v.level} reaches the scan's edge over more than a vertebra's height from its "
                "last disc: it may hold part of the next vertebra; its name is unconfirmed",
            )
    log.info("%s: %d vertebrae, levels by %s", ct.source, len(vertebrae), naming.method)
    return SegmentationResult(
        labels=labels,
        segmenter=BUILTIN_NAME,
        version=BUILTIN_VERSION,
        level_method=naming.method,
        levels_confirmed=naming.confirmed,
        level_evidence=evidence,
        vertebrae=vertebrae,
        noise_hu=noise_hu,
        smoothing_sigma_mm=None if sigma is None else sigma[0] * sp[0],
    )
