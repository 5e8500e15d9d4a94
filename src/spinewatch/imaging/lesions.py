"""Lytic (and blastic) lesions of a vertebral body, with posterior wall and pedicle involvement.

A lytic lesion is a *connected region whose HU is markedly below the vertebra's own trabecular
background, at soft-tissue/fluid attenuation* (myeloma, metastasis: ~0-60 HU replacing bone).
Real trabecular bone is not a flat background: at 1-3 mm voxels its texture, the scanner's noise
and partial volume spread the body's values by tens of HU, and a large lesion fills much of the
body. The method therefore never lets the lesion, the texture or the partial volume set its own
thresholds, and it works at several smoothing scales in mm, so a small lesion is found where the
smoothing has not washed it out and a faint large one where the noise has been averaged away.

Method (all distances in mm, honouring anisotropic spacing):

1. *Support*: the body without cortex/sclerotic/cement voxels (raw HU more than
   :data:`DENSE_RISE_HU` above the raw background, or near cement). Detection smoothing leaves
   out the body's outermost voxel layer as well (its partial volume with disc, fat and cortex
   would leak inwards); smoothing is *normalised* over the support (``G(hu*s)/G(s)``,
   :func:`masked_smooth`). On sub-millimetre voxels the scales from 2 mm up are smoothed on a
   grid of ~1 mm voxels (:data:`PYRAMID_STEP_MM`, :func:`smooth_scales`): the findings stay
   within the tolerance ``tests/imaging/test_lesions_pyramid.py`` documents.
2. *Bone statistics per scale* (:data:`SCALES_MM`) in the trabecular core (body eroded by
   :data:`BACKGROUND_EROSION_MM`): the background is the upper *mode* of the smoothed values
   (:func:`background_hu`: kernel-density mode reached from a high percentile; a lesion filling
   half the core does not move it), and the spread is the SD of the bone *below* that mode
   (:func:`bone_spread_below`: from the half-maximum point of the density's lower flank, which
   a lesion's far-off values do not move): the side a false lesion comes from; real bone is often
   right-skewed (denser near the endplates), so the upper side would overstate it. Before the
   spread is read, the core voxels near *probable lesions* (:data:`PROBABLE_NOISE_FACTOR`
   spreads down, at least :data:`MIN_LESION_ML`) are left out, with a reach of two sigmas: at
   a coarse scale a lesion's smoothed halo would otherwise drag the statistics down.
3. *Seeds* (scale-space detection, after Lindeberg, "Feature detection with automatic scale
   selection", Int J Comput Vis 1998;30:79-116: a blob of radius ``R`` responds best at a
   Gaussian scale of the order of ``R``): a voxel at least :data:`BODY_MARGIN_MM` inside the
   body (and not in its outer layer) is a seed when, at some scale, its smoothed HU lies at
   least ``max(MIN_DROP_HU, SEED_NOISE_FACTOR x spread)`` below that scale's background.
   ``MIN_DROP_HU`` is the absolute floor (a faint 5-30 HU dip is never a lesion); the noise
   factor keeps healthy bone above the threshold at every scale.
4. *Extent*: scale by scale from fine to coarse, from each seed component whose centre is not
   already in a finer lesion and which lies :data:`EXTENT_NOISE_FACTOR` spreads deep (else a
   coarser scale draws it), the connected voxels within ``2 s`` + a voxel of the seeds whose
   smoothed HU is below half-way between the background and the seed's own HU (the
   half-contrast contour, where a partial-volume edge is half lesion; the short reach keeps it
   from running along a vessel or a channel next to the lesion). The extent may continue from
   the body into the pedicle zone (posterior-element voxels within :data:`PEDICLE_ZONE_MM` of
   the body, at least :data:`PEDICLE_EDGE_MARGIN_MM` inside the mask's outer surface).
5. *Each lesion's own HU and local background*: the lesion HU ``L`` is the median fine-scale HU
   of its *deep core* -- the voxels at least :func:`core_depth_mm` (and half the deepest
   voxel's depth) away from anything outside the extent: no partial volume there (read in the
   blob of the extent's voxels below half-way, when they form one: a coarse extent is wider
   than a small lesion). The local
   background is the median raw HU of the trabecular core in a shell of :data:`SHELL_MM` around
   it (bone density varies across a body by tens of HU).
6. *Volume*: the **partial-volume sum** ``sum((B - hu) / (B - L))`` of the raw HU over the
   support voxels within half a voxel diagonal + :data:`PSF_MM` of the lesion proper (the
   extent's voxels at least :data:`LESION_LIKE_FRACTION` of the contrast below the bone,
   connected to its lowest voxel; each voxel to its nearest lesion), where ``B`` is the bone that
   voxel would hold: the bone around the lesion smoothed into it (:data:`BONE_FIELD_SIGMA_MM`;
   the body's outer layer from its own kind, so the denser subchondral rim a large lesion
   reaches is not counted as negative lesion). Unbiased for any size and voxel size as far as
   ``B`` is right, the noise averaging out (no clipping at 0; only above 1.5).
   ``lesion_mask`` is the body voxels with a fraction >= 0.5.
7. *Acceptance*: a lesion is reported when its HU is soft-tissue-like (between
   :data:`LESION_FLOOR_HU` and :data:`LESION_CEILING_HU`: not fat), at least
   :data:`MIN_CONTRAST_HU` below its local background, its body volume at least
   :func:`min_lesion_ml` (0.1 ml and :data:`MIN_LESION_VOXELS` voxels), and it is a blob: its
   deep core exists, and it is not a layer of disc along an endplate (at least 90 % of it
   within :data:`DISC_LAYER_MM` of the body's upper or lower surface, over at least
   :data:`DISC_LAYER_COVER` of the endplate: a label that takes in part of the disc). The known
   look-alikes of real bone fail one of these: the basivertebral venous channel and its
   branches (a few mm wide: no core at 1-1.5 mm; below 30 voxels at 3 mm), the endplate's
   partial volume with the disc and the body's edge on coarse slices (outer voxel layer excluded
   from seeding; sheets one or two voxels thick have no core; thicker disc layers by the layer
   rule), focal fatty marrow (below the floor), slivers of a body cut by the scan (not analysed,
   11).
   Schmorl nodes (disc material, 70-100 HU, entering through an endplate) are *not* told apart
   yet: one of 0.1 ml and more would be reported.
8. *Posterior wall*: lesion voxels in the posterior :data:`POSTERIOR_WALL_MM` of the body along
   the frame's anterior axis (:func:`posterior_wall_zone`), at least :data:`MIN_INVOLVEMENT_ML`
   and :data:`MIN_INVOLVEMENT_VOXELS`.
9. *Pedicles*: lesion voxels (fraction >= 0.5) in the pedicle zone, split left/right along
   ``frame.right`` about the body centre, at least as much on a side.
10. *Blastic*: smoothed HU >= background + :data:`BLASTIC_RISE_HU` (and below cement) inside the
    body eroded by :data:`BLASTIC_MARGIN_MM` or 1.5 voxels, components >= :data:`MIN_LESION_ML`.
11. A body thinner than :data:`MIN_BODY_DEPTH_MM` (largest inscribed depth; a body cut by the
    scan's edge: :data:`MIN_TRUNCATED_BODY_DEPTH_MM`) is not analysed.

The published CT detectors of spinal metastases use the same ingredients -- the trabecular body
as the search region, attenuation relative to the patient's own bone, candidate regions, then
size and shape rules -- e.g. Hammon et al., "Automatic detection of lytic and blastic
thoracolumbar spine metastases on computed tomography", Eur Radiol 2013
(doi:10.1007/s00330-013-2774-5), and Burns et al., "Automated detection of sclerotic metastases
in the thoracolumbar spine at CT", Radiology 2013;268:69-78 (whose reference standard counted
lesions > 0.3 cm^3). The numbers below are engineering choices, each with its reason; they were
checked on lesions inserted into real scans (:mod:`spinewatch.validation.lesion_insertion`,
``tests/imaging/test_lesions_real.py``) and on phantoms.

Arrays are crops ``[i, j, k]`` on ``region.grid`` (the shape of ``region.mask``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinewatch.imaging import _lesion_zones as zones
from spinewatch.imaging._bone_statistics import (
    BACKGROUND_MIN_BANDWIDTH_HU,
    BACKGROUND_START_PERCENTILE,
    PYRAMID_STEP_MM,
    SMOOTHING_SIGMA_MM,
    background_hu,
    bone_spread_below,
    masked_smooth,
    smooth_scales,
)
from spinewatch.imaging.density import (
    CEMENT_HU,
    TrabecularDensity,
    check_crop,
    dense_exclusion,
    distance_within_mm,
)

if TYPE_CHECKING:
    from spinewatch.imaging.anatomy import VertebraRegion

__all__ = [
    "BACKGROUND_EROSION_MM",
    "BACKGROUND_MIN_BANDWIDTH_HU",
    "BACKGROUND_START_PERCENTILE",
    "BLASTIC_MARGIN_MM",
    "BLASTIC_RISE_HU",
    "BODY_MARGIN_MM",
    "BONE_FIELD_SIGMA_MM",
    "DENSE_RISE_HU",
    "DISC_LAYER_COVER",
    "DISC_LAYER_MM",
    "EXTENT_NOISE_FACTOR",
    "LESION_CEILING_HU",
    "LESION_FLOOR_HU",
    "LESION_LIKE_FRACTION",
    "MIN_BODY_DEPTH_MM",
    "MIN_CONTRAST_HU",
    "MIN_CORE_DEPTH_MM",
    "MIN_DROP_HU",
    "MIN_INVOLVEMENT_ML",
    "MIN_INVOLVEMENT_VOXELS",
    "MIN_LESION_ML",
    "MIN_LESION_VOXELS",
    "MIN_TRUNCATED_BODY_DEPTH_MM",
    "PEDICLE_EDGE_MARGIN_MM",
    "PEDICLE_ZONE_MM",
    "POSTERIOR_WALL_MM",
    "PROBABLE_NOISE_FACTOR",
    "PSF_MM",
    "PYRAMID_STEP_MM",
    "SCALES_MM",
    "SEED_NOISE_FACTOR",
    "SHELL_MM",
    "SMOOTHING_SIGMA_MM",
    "LyticFindings",
    "background_hu",
    "bone_spread_below",
    "core_depth_mm",
    "detect_lytic_lesions",
    "masked_smooth",
    "min_lesion_ml",
    "posterior_wall_zone",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

#: Detection scales, Gaussian sigma in mm: 1 mm keeps a 0.3 ml lesion (radius 4 mm) at its own HU
#: in the centre; 4 mm averages 1-1.5 mm voxel noise by ~20x for faint lesions of 1 ml and more.
SCALES_MM: tuple[float, ...] = (SMOOTHING_SIGMA_MM, 2.0, 3.0, 4.0)
#: Seeds only deeper than this inside the body (on top of the excluded outer voxel layer).
BODY_MARGIN_MM = 1.0
#: The background is measured in the body eroded by this much (the trabecular core), shrunk to
#: half the body's depth for small bodies as in :mod:`spinewatch.imaging.density`.
BACKGROUND_EROSION_MM = 3.0
#: Raw voxels this far above the background are cortex, blastic bone or bone islands: excluded
#: from the support (a 1 mm cortex at ~800 HU would otherwise lift the neighbouring trabecular
#: values by ~100 HU and hide a lesion touching the wall).
DENSE_RISE_HU = 150.0
#: A seed's smoothed HU lies at least this far below the scale's background (absolute floor: the
#: real bodies tested vary by ~20 HU between centre and periphery; a lesion is markedly below).
MIN_DROP_HU = 40.0
#: ... and at least this many spreads (SD of the smoothed bone below its mode at that scale):
#: with the outer layer, thinness and size rules, no false lesion on the real vertebrae tested
#: at 3.5 (native and moved to 75 and 200 HU); 4 missed more faint lesions.
SEED_NOISE_FACTOR = 3.5
#: A probable lesion (left out of the bone statistics of the coarser scales): this many spreads.
PROBABLE_NOISE_FACTOR = 2.5
#: A lesion's extent is drawn at the finest scale where its seed lies this many spreads below the
#: background.
EXTENT_NOISE_FACTOR = 5.0
#: An accepted lesion's own HU: soft tissue or fluid, whatever the background ...
LESION_CEILING_HU = 100.0
#: ... and not fat: focal fatty marrow and haemangiomas (-50 to -100 HU) are benign look-alikes.
LESION_FLOOR_HU = -60.0
#: ... and at least this far below its local background (HU).
MIN_CONTRAST_HU = 40.0
#: The scanner's blur beyond the voxel (mm): partial volume reaches this far past a voxel.
PSF_MM = 1.0
#: The partial-volume region surrounds the lesion proper: the extent's voxels at least this share
#: of the contrast below the bone (:func:`_lesion_like`; half-way would take in the low patches of
#: correlated noise next to a lesion, three quarters lose a noisy lesion's own voxels).
LESION_LIKE_FRACTION = 0.65
#: The bone a partial-volume voxel would hold without the lesion: the bone around the lesion,
#: smoothed with this sigma (mm).
BONE_FIELD_SIGMA_MM = 3.0
#: A lesion's deepest voxel lies at least this far (mm) from the nearest voxel outside it (and
#: 1.4 voxels; :func:`core_depth_mm`): a blob about 4-5 mm across at least. The basivertebral
#: venous channel (2-4 mm wide) and partial-volume sheets are thinner.
MIN_CORE_DEPTH_MM = 2.0
#: Local background: the bone within this distance (mm) beyond the partial-volume margin.
SHELL_MM = 4.0
#: Minimum lesion volume in the body (partial-volume sum, ml): 0.1 ml is a sphere of radius
#: 2.9 mm; smaller foci cannot be told from noise, vessels or a Schmorl node reliably.
MIN_LESION_ML = 0.1
#: ... and at least this many voxels (:func:`min_lesion_ml`): a blob about four voxels across, one
#: core voxel inside a partial-volume shell. Fewer voxels do not resolve a shape, and on 3 mm
#: slices venous channels and foramina make 0.3-0.6 ml low-density regions in normal bodies
#: (seen in the TotalSegmentator example's L1 and L2).
MIN_LESION_VOXELS = 30
#: A low-density layer within this distance (mm) of an endplate surface ...
DISC_LAYER_MM = 8.0
#: ... spread over at least this share of the endplate's columns is disc in the label (a quarter
#: of a lumbar endplate is ~4 cm^2: a layer under 8 mm thick and over 20 mm across; a disc layer
#: found only in part, next to a lesion that shifted the statistics, covered 39 %).
DISC_LAYER_COVER = 0.25
#: The posterior wall zone: the posterior-most body voxels within this distance of the wall (mm).
POSTERIOR_WALL_MM = 3.0
#: Posterior-element voxels within this distance (mm) of the body are the pedicle (base) region.
PEDICLE_ZONE_MM = 10.0
#: The pedicle region is eroded by this much (mm) from the vertebra mask's outer surface.
PEDICLE_EDGE_MARGIN_MM = 1.0
#: The smallest lesion volume in the posterior wall zone or in a pedicle that counts as
#: involvement (0.01 ml = 10 voxels at 1 mm: a few-voxel breach is below what CT can call) ...
MIN_INVOLVEMENT_ML = 0.01
#: ... and at least this many voxels (on 3 mm slices one voxel is 0.027 ml, and one noisy voxel
#: at the rim of a lesion is not a breach).
MIN_INVOLVEMENT_VOXELS = 2
#: Blastic: smoothed HU at least this far above the background (sclerotic metastasis, ~ +300 HU
#: and more), inside the body eroded by BLASTIC_MARGIN_MM (away from the cortex and endplates).
BLASTIC_RISE_HU = 300.0
BLASTIC_MARGIN_MM = 2.5
#: A body whose largest inscribed depth is below this (mm) is not analysed (empty findings,
#: ``background_hu`` None): a cervical body is ~5-7 mm deep, a slab cut by the scan's edge less.
MIN_BODY_DEPTH_MM = 4.0
#: ... and a body cut by the scan's edge (``region.truncated``) below this: a slab thinner than
#: ~12 mm is all within a few mm of the cut, an endplate or the cortex, where the label mixes
#: with disc and soft tissue (a TotalSegmentator label of a vertebra cut at the series' first
#: slices showed a 0.6 ml disc-density "lesion" in a 4 mm deep slab).
MIN_TRUNCATED_BODY_DEPTH_MM = 6.0
#: Fewer voxels than this in the background region and the vertebra is not analysed.
_MIN_BACKGROUND_VOXELS = 20
_PV_FRACTION_MAX = 1.5
_MAX_STAT_ROUNDS = 4
_MIN_BONE_WEIGHT = 0.05
_MIN_SHELL_VOXELS = 10
_CONN = np.ones((3, 3, 3), dtype=np.bool_)


@dataclass(frozen=True)
class LyticFindings:
    """Lytic lesions of one vertebral body.

    ``volume_ml``: total lesion volume in the body (partial-volume sum, ml); ``fraction``:
    ``volume_ml`` / body volume (0..1); ``n_lesions``: connected lesions of at least
    :func:`min_lesion_ml` in the body;
    ``largest_ml``: the largest one; involvement flags as described in the module docstring;
    ``lesion_mask``: boolean crop (shape of ``region.mask``), not serialised.

    Extensions beyond the shared interface (defaults keep constructors compatible):
    ``blastic_volume_ml`` and ``blastic_fraction`` (focal sclerotic regions, for the SINS lesion
    quality); ``background_hu``: the body's own trabecular background (smoothed at the fine
    scale), None when the body was too small to analyse; ``lesion_hu``: the HU of the largest
    lesion's core (None without a lesion).
    """

    volume_ml: float
    fraction: float
    n_lesions: int
    largest_ml: float
    posterior_wall_involved: bool
    pedicle_left_involved: bool
    pedicle_right_involved: bool
    lesion_mask: npt.NDArray[np.bool_] = field(repr=False, compare=False)
    blastic_volume_ml: float = 0.0
    blastic_fraction: float = 0.0
    background_hu: float | None = None
    lesion_hu: float | None = None


def posterior_wall_zone(
    body: npt.NDArray[np.bool_], region: VertebraRegion, depth_zone_mm: float = POSTERIOR_WALL_MM
) -> npt.NDArray[np.bool_]:
    """Body voxels within ``depth_zone_mm`` of the posterior wall along ``-frame.anterior`` (see
    :func:`spinewatch.imaging._lesion_zones.posterior_wall_zone`: columns along the anterior axis,
    the posterior-most voxel of each marking the wall, posterior half of the body only)."""
    return zones.posterior_wall_zone(body, region, depth_zone_mm)


def _empty(shape: tuple[int, ...], bg: float | None) -> LyticFindings:
    return LyticFindings(
        volume_ml=0.0,
        fraction=0.0,
        n_lesions=0,
        largest_ml=0.0,
        posterior_wall_involved=False,
        pedicle_left_involved=False,
        pedicle_right_involved=False,
        lesion_mask=np.zeros(shape, dtype=np.bool_),
        background_hu=bg,
    )


def _core(depth: npt.NDArray[np.float64], mask: BoolArray, half: float) -> Any:
    max_depth = float(depth[mask].max()) - half if mask.any() else 0.0
    erosion = min(BACKGROUND_EROSION_MM, 0.5 * max(max_depth, 0.0))
    return (depth - half > erosion - 1e-9) & mask


@dataclass
class _Scale:
    """One detection scale: the smoothed HU (crop shape), the bone's background and lower spread
    there, the seed threshold and the seeds."""

    sigma_mm: float
    smooth: FloatArray
    bg: float
    spread: float
    thr: float
    seeds: BoolArray


@dataclass
class _Domain:
    """The voxels the detector works on (crop shape) and what it measured of the bone."""

    support: BoolArray  # body voxels that may be lesion (not cortex, not near cement)
    domain: BoolArray  # support + pedicle zone: where an extent may grow
    pedicle: BoolArray  # the pedicle zone
    fine: FloatArray  # fine-scale smoothed HU on the domain
    bg: float  # fine-scale background (reported)
    excluded: BoolArray  # dense or near cement (also in the posterior elements)
    core: BoolArray  # the trabecular core of the body (support, away from the surface)
    inner: BoolArray  # the support without the body's outermost voxel layer
    near_cement: BoolArray
    scales: list[_Scale]


def _scale_space(
    hu_f: FloatArray,
    inner: BoolArray,
    used: BoolArray,
    core: BoolArray,
    seed_ok: BoolArray,
    spacing: tuple[float, float, float],
    voxel_ml: float,
) -> list[_Scale]:
    """Step 3: smoothing, bone statistics and seeds at every scale, fine to coarse.

    At a coarse scale a lesion's smoothed halo reaches far into the bone around it and would
    drag that scale's statistics down (in a small body, most of the core). So the bone
    statistics of each scale leave out the core voxels near the *probable lesions* found so far
    (:func:`_away_from`): components of at least :data:`MIN_LESION_ML` lying
    :data:`PROBABLE_NOISE_FACTOR` spreads (and :data:`MIN_DROP_HU`) below the background at this
    or a finer scale; healthy texture rarely forms such a component. The seed threshold then
    uses the spread of the bone *below* its background in what is left
    (:func:`bone_spread_below`). The smoothed HU is read only on ``used`` (the support: the
    seeds and the extents lie in it; the pedicle zone gets its own values).
    """
    out: list[_Scale] = []
    probable = np.zeros(inner.shape, dtype=np.bool_)
    min_core = max(_MIN_BACKGROUND_VOXELS, int(0.1 * np.count_nonzero(core)))
    min_vox = MIN_LESION_ML / voxel_ml
    smoothed = smooth_scales(hu_f, inner, spacing, SCALES_MM, used=used)
    for sigma, smooth in zip(SCALES_MM, smoothed, strict=True):
        bg_s = spread_s = 0.0
        # the bone statistics and the probable lesions refine each other: a lesion left in the
        # statistics widens the spread, which hides it; once found, it is left out
        for _round in range(_MAX_STAT_ROUNDS):
            stats = _away_from(probable, core, spacing, sigma, min_core)
            bg_s, upper = background_hu(smooth[stats])
            spread_s = bone_spread_below(smooth[stats], bg_s, upper)
            # a lesion still in the statistics widens the lower flank, not the upper one
            drop = max(MIN_DROP_HU, PROBABLE_NOISE_FACTOR * min(spread_s, upper))
            more = _big_components(seed_ok & (smooth <= bg_s - drop), min_vox) & ~probable
            if not more.any():
                break
            probable |= more
        thr = bg_s - max(MIN_DROP_HU, SEED_NOISE_FACTOR * spread_s)
        seeds = seed_ok & (smooth <= thr)
        log.debug("scale %.1f mm: background %.0f HU, lower spread %.1f HU", sigma, bg_s, spread_s)
        out.append(_Scale(sigma, smooth, bg_s, spread_s, thr, seeds))
    return out


def _away_from(
    probable: BoolArray,
    core: BoolArray,
    spacing: tuple[float, float, float],
    sigma_mm: float,
    min_core: int,
) -> BoolArray:
    """The core voxels farther than two sigmas + a voxel from ``probable``; with a large lesion
    that leaves fewer than ``min_core`` voxels, farther than one sigma + a voxel, then a voxel;
    else the whole core."""
    if not probable.any():
        return core
    for reach in (2.0 * sigma_mm + max(spacing), sigma_mm + max(spacing), max(spacing)):
        box = zones.bbox(probable, reach, spacing)
        away = core.copy()
        away[box] &= distance_within_mm(probable[box], spacing, reach) > reach
        if np.count_nonzero(away) >= min_core:
            return away
    return core


def _big_components(mask: BoolArray, min_voxels: float) -> BoolArray:
    """The 26-connected components of ``mask`` with at least ``min_voxels`` voxels."""
    if not mask.any():
        return mask
    comp, n = ndimage.label(mask, structure=_CONN)
    counts = np.bincount(comp.ravel(), minlength=n + 1)
    big = counts >= min_voxels
    big[0] = False
    return np.asarray(big[comp], dtype=np.bool_)


def _prepare(
    hu_f: FloatArray, region: VertebraRegion, density: TrabecularDensity | None
) -> _Domain | None:
    """Support, background and seeds (steps 1-3 of the module docstring); None when the body is
    too thin or too small to have a background of its own."""
    body = np.asarray(region.body, dtype=np.bool_)
    mask = np.asarray(region.mask, dtype=np.bool_) | body
    spacing = region.grid.spacing_mm
    half = 0.5 * min(spacing)
    depth = region.body_depth_mm
    min_depth = MIN_TRUNCATED_BODY_DEPTH_MM if region.truncated else MIN_BODY_DEPTH_MM
    if float(depth.max()) - half < min_depth:
        # a sliver of a body (cut by the scan, or a thin label at coarse slices): every voxel is
        # partial volume with cortex, endplate or disc, and no background can be measured
        log.info("%s: body too thin for lesion detection", region.level)
        return None
    near_cement = dense_exclusion(hu_f, spacing)
    core = _core(depth, body, half) & ~near_cement
    if np.count_nonzero(core) >= _MIN_BACKGROUND_VOXELS:
        raw_bg, raw_spread = background_hu(hu_f[core])
    elif density is not None:
        raw_bg, raw_spread = float(density.median_hu), 0.0
    else:
        log.info("%s: body too small for lesion detection", region.level)
        return None
    excluded = (hu_f > raw_bg + max(DENSE_RISE_HU, 5.0 * raw_spread)) | near_cement
    support = body & ~excluded
    # the outermost voxel layer mixes with disc, fat and cortex: not used to smooth or seed
    inner = support & ndimage.binary_erosion(body, border_value=0)
    seed_ok = inner & (depth - half >= BODY_MARGIN_MM - 1e-9)
    core_s = core & inner
    if np.count_nonzero(core_s) < _MIN_BACKGROUND_VOXELS:
        log.info("%s: no trabecular core for lesion detection", region.level)
        return None
    scales = _scale_space(
        hu_f, inner, support, core_s, seed_ok, spacing, region.grid.voxel_volume_ml
    )
    # the fine scale for the lesion's own HU: over the whole support (its edge voxels included)
    fine = masked_smooth(hu_f, support, spacing, SMOOTHING_SIGMA_MM)
    pedicle = zones.pedicle_zone(
        region, mask, body, excluded, zone_mm=PEDICLE_ZONE_MM, edge_margin_mm=PEDICLE_EDGE_MARGIN_MM
    )
    if pedicle.any():
        # the posterior elements are smoothed on their own (the body must not leak into them),
        # at the fine scale only: a pedicle is a few mm wide
        post_support = np.asarray(region.posterior, dtype=np.bool_) & mask & ~body & ~excluded
        post_smooth = masked_smooth(hu_f, post_support, spacing, SMOOTHING_SIGMA_MM)
        fine[pedicle] = post_smooth[pedicle]
        for sc in scales:
            sc.smooth[pedicle] = post_smooth[pedicle]
        scales[0].seeds |= pedicle & (post_smooth <= scales[0].thr)
    return _Domain(
        support=support,
        domain=support | pedicle,
        pedicle=pedicle,
        fine=fine,
        bg=scales[0].bg,
        excluded=excluded,
        core=core_s,
        inner=inner,
        near_cement=near_cement,
        scales=scales,
    )


def _extents(dom: _Domain, spacing: tuple[float, float, float]) -> BoolArray:
    """Step 4: the half-contrast region grown from each seed component, scale by scale from fine
    to coarse.

    A coarser seed component whose centre (its lowest tenth) lies mostly in extents already found
    is the same lesion seen again and is skipped (its half-contrast contour would be wider than
    the lesion); one whose centre they miss -- a faint lesion -- is grown. A seed component is
    grown at its own scale only if it lies at least :data:`EXTENT_NOISE_FACTOR` spreads below
    the background (half the contrast is then more than half that many spreads from both bone
    and lesion; a contour drawn in noise would pick the lowest voxels, fall inside the lesion and
    split it into fragments): otherwise the same lesion is drawn at a coarser scale (or at the
    coarsest, whatever its depth). The extent stays within two sigmas + a voxel of its seed."""
    found = np.full(dom.support.shape, -1, dtype=np.int8)
    out = np.zeros(dom.support.shape, dtype=np.bool_)
    for index, sc in enumerate(dom.scales):
        comp, _n = ndimage.label(sc.seeds, structure=_CONN)
        for label, sl in enumerate(ndimage.find_objects(comp), start=1):
            if sl is None:
                continue
            own = comp[sl] == label
            vals = sc.smooth[sl][own]
            deepest = vals <= np.percentile(vals, 10.0)
            finer = found[sl] >= 0
            if np.count_nonzero(finer[own][deepest]) >= 0.5 * np.count_nonzero(deepest):
                continue  # its centre lies in a lesion found at a finer scale: seen again
            last = index == len(dom.scales) - 1
            if sc.bg - float(np.median(vals)) < EXTENT_NOISE_FACTOR * sc.spread and not last:
                continue  # too close to the noise here: the lesion is drawn at a coarser scale
            ext_sc = sc
            # a seed found at scale s lies within about s of the lesion's half-contrast contour
            reach_mm = 2.0 * ext_sc.sigma_mm + max(spacing)
            box = zones.grow(*sl, pad_mm=reach_mm, spacing=spacing, shape=comp.shape)
            seed = comp[box] == label
            ext_vals = ext_sc.smooth[box]
            # the seed's own low values (a coarse seed reaches beyond the lesion)
            level = float(np.percentile(ext_vals[seed], 10.0))
            half_way = 0.5 * (ext_sc.bg + min(level, ext_sc.bg))
            reach = distance_within_mm(seed, spacing, reach_mm) <= reach_mm
            cand = dom.domain[box] & reach & (ext_vals <= half_way)
            lab, _ = ndimage.label(cand, structure=_CONN)
            touching = np.unique(lab[seed])
            keep = np.isin(lab, touching[touching > 0])
            out[box] |= keep
            sub = found[box]
            sub[keep & (sub < 0)] = index
    return out


@dataclass
class _Lesion:
    label: int
    level_hu: float
    background_hu: float
    has_core: bool
    body_ml: float = 0.0
    disc_layer: bool = False


def _lesion_level(
    fine: FloatArray, own: BoolArray, spacing: tuple[float, float, float]
) -> tuple[float, bool]:
    """Step 5: the lesion's own HU and whether it is a blob (``has_core``).

    Depth is the distance (mm) from a voxel of the extent to the nearest voxel outside it. The
    core is the extent's voxels at least :func:`core_depth_mm` deep and at least half as deep as
    the deepest: no partial volume there, and the 1 mm smoothing mixes in at most ~2 % of the
    surrounding bone. The HU is the median fine-scale HU of the core. Without such a core (a
    sheet or a channel at most two voxels or ~4 mm thick) the deepest quarter gives the HU and
    ``has_core`` is False.
    """
    depth = ndimage.distance_transform_edt(np.pad(own, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    d = depth[own]
    vals = fine[own]
    deepest = float(d.max())
    if deepest >= core_depth_mm(spacing) - 1e-9:
        return float(np.median(vals[d >= max(core_depth_mm(spacing), 0.5 * deepest) - 1e-9])), True
    return float(np.median(vals[d >= 0.75 * deepest])), False


def core_depth_mm(spacing_mm: tuple[float, float, float]) -> float:
    """The depth (mm, between voxel centres) a lesion's deepest voxel must reach to count as a
    blob: :data:`MIN_CORE_DEPTH_MM`, and 1.4 voxels of the coarsest axis (more than one voxel:
    a sheet two voxels thick on coarse slices -- an endplate's partial volume -- has none)."""
    return max(MIN_CORE_DEPTH_MM, 1.4 * max(spacing_mm))


def _measure(
    hu_f: FloatArray, dom: _Domain, ext: BoolArray, spacing: tuple[float, float, float]
) -> tuple[npt.NDArray[np.intp], FloatArray, list[_Lesion]]:
    """Steps 5-6: per extent component its HU, local background and the partial-volume fractions.
    Returns (owner label per voxel, fraction per voxel, lesions), crop shape.

    The partial-volume region is the support within half a voxel diagonal + :data:`PSF_MM` of the
    extent's *lesion-like* voxels: those whose fine-scale HU is below half-way between the
    lesion's background and its own HU (an extent drawn at a coarse scale is wider than a small
    lesion, and bone in the region only adds the error of ``B``)."""
    comp, _n = ndimage.label(ext, structure=_CONN)
    margin = 0.5 * float(np.linalg.norm(spacing)) + PSF_MM
    box = zones.bbox(ext, margin + SHELL_MM, spacing)
    c = comp[box]
    dist, inds = ndimage.distance_transform_edt(c == 0, sampling=spacing, return_indices=True)
    nearest = c[inds[0], inds[1], inds[2]]
    del inds
    owner_b = np.where((dist <= margin) & dom.domain[box], nearest, 0).astype(np.intp)
    shell_b = (dist > margin) & (dist <= margin + SHELL_MM) & dom.core[box]
    raw = hu_f[box]
    lesions: list[_Lesion] = []
    for label, sl in enumerate(ndimage.find_objects(c), start=1):
        if sl is None:
            continue
        own = c == label
        level, has_core = _lesion_level(dom.fine[box], own, spacing)
        # not selected on value: dropping the shell's low voxels would bias the background up
        shell = shell_b & (nearest == label)
        bg = (
            float(np.median(raw[shell])) if np.count_nonzero(shell) >= _MIN_SHELL_VOXELS else dom.bg
        )
        # an extent drawn at a coarse scale is wider than a small lesion: where its lesion-like
        # voxels form a blob of their own, the lesion's HU is read in that blob's core
        like = own & (dom.fine[box] <= 0.5 * (bg + level))
        if like.any():
            like_level, like_core = _lesion_level(dom.fine[box], like, spacing)
            if like_core:
                level = like_level
        lesions.append(_Lesion(label, level, bg, has_core))
        log.debug(
            "lesion %d: %d extent voxels, level %.0f HU, local background %.0f HU, core %s",
            label,
            int(np.count_nonzero(own)),
            level,
            bg,
            has_core,
        )
    # the partial-volume region: around the extent's voxels that are lesion-like at the fine
    # scale (a contour drawn at a coarse scale is wider than a small lesion: its rim is bone)
    lesion_like = _lesion_like(dom.fine[box], c, lesions)
    if lesion_like.any():
        dist, inds = ndimage.distance_transform_edt(
            ~lesion_like, sampling=spacing, return_indices=True
        )
        nearest = c[inds[0], inds[1], inds[2]]
        del inds
        owner_b = np.where((dist <= margin) & dom.domain[box], nearest, 0).astype(np.intp)
    sup = dom.support[box]
    frac_b = _fractions(raw, owner_b, sup & (owner_b == 0), sup & ~dom.inner[box], lesions, spacing)
    owner = np.zeros(ext.shape, dtype=np.intp)
    frac = np.zeros(ext.shape, dtype=np.float32)
    owner[box] = owner_b
    frac[box] = frac_b
    return owner, frac, lesions


def _lesion_like(
    fine: FloatArray, comp: npt.NDArray[np.int32], lesions: list[_Lesion]
) -> BoolArray:
    """The extent voxels (``comp`` > 0) at least :data:`LESION_LIKE_FRACTION` of the contrast
    below their lesion's bone (fine scale), connected to the lesion's lowest voxel: the lesion
    proper. (Half-way would also take the low patches of noisy bone next to it.)"""
    out = np.zeros(comp.shape, dtype=np.bool_)
    for les in lesions:
        own = comp == les.label
        like = own & (
            fine <= les.background_hu - LESION_LIKE_FRACTION * (les.background_hu - les.level_hu)
        )
        if not like.any():
            continue
        lab, _n = ndimage.label(like, structure=_CONN)
        vals = np.where(like, fine, np.inf)
        centre = lab.flat[int(np.argmin(vals))]
        out |= lab == centre
    return out


def _bone_field(
    raw: FloatArray, bone: BoolArray, spacing: tuple[float, float, float], at: BoolArray
) -> tuple[FloatArray, FloatArray]:
    """The normalised Gaussian (sigma :data:`BONE_FIELD_SIGMA_MM`) of ``raw`` over ``bone``, and
    its weight, at the voxels ``at`` (n,). (A first-order fit -- a plane -- was tried: on the
    inserted lesions it followed the bone no better and extrapolated worse.)"""
    sigma_vox = [BONE_FIELD_SIGMA_MM / sp for sp in spacing]
    w = bone.astype(np.float32)
    num = ndimage.gaussian_filter(raw * w, sigma_vox, mode="constant")[at]
    den = ndimage.gaussian_filter(w, sigma_vox, mode="constant")[at]
    return np.asarray(num / np.maximum(den, 1e-6), dtype=np.float32), den


def _fractions(
    raw: FloatArray,
    owner: npt.NDArray[np.intp],
    free: BoolArray,
    outer: BoolArray,
    lesions: list[_Lesion],
    spacing: tuple[float, float, float],
) -> FloatArray:
    """Step 6: each owned voxel's lesion fraction ``(B - hu) / (B - L)``, at most 1.5.

    ``B`` is the bone the voxel would hold without the lesion: the normalised Gaussian
    (:data:`BONE_FIELD_SIGMA_MM`) of the bone around the lesions (``free``: support voxels owned
    by no lesion), like with like -- for a voxel of the body's outer layer (``outer``: mixed
    with the cortex, denser) the outer layer's bone, inside the inner bone -- so the denser
    subchondral rim a large lesion reaches is not counted as negative lesion. Where no such bone
    is near (deep inside a large lesion, where the fraction is ~1 whatever ``B``) the lesion's
    shell median is used.
    """
    sel = owner > 0
    b_in, w_in = _bone_field(raw, free & ~outer, spacing, sel)
    b_out, w_out = _bone_field(raw, free & outer, spacing, sel)
    level = np.array([np.nan] + [les.level_hu for les in lesions])
    shell_bg = np.array([np.nan] + [les.background_hu for les in lesions])
    lab = owner[sel]
    use_out = outer[sel] & (w_out > _MIN_BONE_WEIGHT)
    b = np.where(use_out, b_out, b_in)
    b = np.where(use_out | (w_in > _MIN_BONE_WEIGHT), b, shell_bg[lab])
    contrast = b - level[lab]
    good = contrast > 1.0
    frac = np.zeros(raw.shape, dtype=np.float32)
    vals = np.zeros(lab.shape, dtype=np.float64)
    vals[good] = (b[good] - raw[sel][good]) / contrast[good]
    frac[sel] = np.minimum(vals, _PV_FRACTION_MAX)
    return frac


def _reject_disc_layers(
    lesions: list[_Lesion],
    owner: npt.NDArray[np.intp],
    frac: FloatArray,
    body: BoolArray,
    region: VertebraRegion,
) -> None:
    """Mark the lesions that are disc inside the label (``disc_layer``): at least 90 % of their
    voxels (fraction >= 0.5) within :data:`DISC_LAYER_MM` of the body's upper or lower surface,
    spread over at least :data:`DISC_LAYER_COVER` of the endplate. A segmentation that takes in
    part of the disc (or the disc's partial volume on coarse slices) puts such a layer of soft
    tissue along an endplate; a lytic lesion grows from inside the bone and is not an
    endplate-wide layer a few mm thick."""
    if not lesions:
        return
    to_top, to_bottom, column, n_columns = zones.endplate_distances(body, region)
    if n_columns == 0:
        return
    strong = (frac >= 0.5) & body & (owner > 0)
    for les in lesions:
        own = strong & (owner == les.label)
        n = np.count_nonzero(own)
        if n == 0:
            continue
        for dist in (to_top, to_bottom):
            near = own & (dist <= DISC_LAYER_MM)
            cover = np.unique(column[near]).size / n_columns
            if np.count_nonzero(near) >= 0.9 * n and cover >= DISC_LAYER_COVER:
                les.disc_layer = True
                log.info("%s: a disc-like layer along an endplate is not a lesion", region.level)


def min_lesion_ml(voxel_ml: float) -> float:
    """The smallest lesion reported (ml): :data:`MIN_LESION_ML`, and at least
    :data:`MIN_LESION_VOXELS` voxels (0.81 ml at 3 mm, 0.1 ml at 1.5 mm and finer)."""
    return max(MIN_LESION_ML, MIN_LESION_VOXELS * voxel_ml)


def _accept(
    lesions: list[_Lesion],
    owner: npt.NDArray[np.intp],
    frac: FloatArray,
    body: BoolArray,
    pedicle: BoolArray,
    voxel_ml: float,
) -> tuple[list[_Lesion], BoolArray]:
    """Step 7: the lesions reported (body volume >= :func:`min_lesion_ml`) and, per label,
    whether the lesion counts for the involvement flags (accepted, and at least that volume in
    the body and the pedicle zone together: a lesion of the pedicle alone still involves it)."""
    n = len(lesions) + 1
    in_body = owner > 0
    in_body &= body
    body_vox = np.bincount(owner[in_body], weights=frac[in_body], minlength=n)
    in_ped = (owner > 0) & pedicle
    ped_vox = np.bincount(owner[in_ped], weights=frac[in_ped], minlength=n)
    counted = np.zeros(n, dtype=np.bool_)
    kept: list[_Lesion] = []
    min_ml = min_lesion_ml(voxel_ml)
    for les in lesions:
        les.body_ml = float(body_vox[les.label]) * voxel_ml
        contrast = les.background_hu - les.level_hu
        soft_tissue = LESION_FLOOR_HU <= les.level_hu <= LESION_CEILING_HU
        if les.disc_layer or not (les.has_core and soft_tissue and contrast >= MIN_CONTRAST_HU):
            continue
        if les.body_ml >= min_ml:
            kept.append(les)
        counted[les.label] = les.body_ml + float(ped_vox[les.label]) * voxel_ml >= min_ml
    return kept, counted


def detect_lytic_lesions(
    hu: npt.NDArray[Any],
    region: VertebraRegion,
    *,
    density: TrabecularDensity | None,
) -> LyticFindings:
    """Find lytic lesions in ``region``'s body; see the module docstring for the method.

    ``hu``: the CT cut to ``region.bbox`` (HU, shape of ``region.mask``). ``density``: the body's
    trabecular density, used only as the background when the body is too small for its own
    estimate. Volumes in ml, fraction of the body volume (0..1).
    """
    check_crop(hu, region)
    body = np.asarray(region.body, dtype=np.bool_)
    shape = body.shape
    if not body.any():
        return _empty(shape, None)
    grid = region.grid
    spacing = grid.spacing_mm
    voxel_ml = grid.voxel_volume_ml
    hu_f = np.asarray(hu, dtype=np.float32)
    dom = _prepare(hu_f, region, density)
    if dom is None:
        return _empty(shape, None)

    lesion_mask = np.zeros(shape, dtype=np.bool_)
    involved = np.zeros(shape, dtype=np.bool_)
    kept: list[_Lesion] = []
    ext = _extents(dom, spacing) if any(sc.seeds.any() for sc in dom.scales) else None
    if ext is not None and ext.any():
        owner, frac, lesions = _measure(hu_f, dom, ext, spacing)
        _reject_disc_layers(lesions, owner, frac, body, region)
        kept, counted = _accept(lesions, owner, frac, body, dom.pedicle, voxel_ml)
        strong = counted[owner] & (frac >= 0.5)
        lesion_mask = strong & body
        involved = strong & dom.pedicle
    volumes = [les.body_ml for les in kept]
    total_ml = float(sum(volumes))
    body_ml = float(np.count_nonzero(body)) * voxel_ml

    wall = posterior_wall_zone(body, region)
    # at least two voxels as well: one noisy voxel at the rim of a lesion is not a breach
    min_vox = max(MIN_INVOLVEMENT_ML / voxel_ml, MIN_INVOLVEMENT_VOXELS)
    posterior_wall = bool(np.count_nonzero(lesion_mask & wall) >= min_vox - 1e-9)
    left, right = zones.sides(involved, region, min_vox)

    depth = region.body_depth_mm
    half = 0.5 * min(spacing)
    blastic_ml = _blastic_volume(
        hu_f, body, depth, half, dom.near_cement, dom.bg, spacing, voxel_ml
    )
    largest = max(kept, key=lambda les: les.body_ml, default=None)
    return LyticFindings(
        volume_ml=total_ml,
        fraction=float(min(1.0, max(0.0, total_ml / body_ml))) if body_ml > 0 else 0.0,
        n_lesions=len(kept),
        largest_ml=float(max(volumes, default=0.0)),
        posterior_wall_involved=posterior_wall,
        pedicle_left_involved=left,
        pedicle_right_involved=right,
        lesion_mask=lesion_mask,
        blastic_volume_ml=blastic_ml,
        blastic_fraction=float(min(1.0, blastic_ml / body_ml)) if body_ml > 0 else 0.0,
        background_hu=float(dom.bg),
        lesion_hu=None if largest is None else float(largest.level_hu),
    )


def _blastic_volume(
    hu_f: FloatArray,
    body: BoolArray,
    depth: npt.NDArray[np.float64],
    half: float,
    near_cement: BoolArray,
    bg: float,
    spacing: tuple[float, float, float],
    voxel_ml: float,
) -> float:
    """Volume (ml) of focal sclerotic regions (smoothed HU >= bg + BLASTIC_RISE_HU), deep inside."""
    # at least 1.5 voxels deep as well: on coarse slices the endplates' partial volume reaches far
    margin = max(BLASTIC_MARGIN_MM, 1.5 * max(spacing))
    inner = (depth - half > margin - 1e-9) & body & ~near_cement
    if not np.any(hu_f[inner] >= bg + BLASTIC_RISE_HU):
        return 0.0
    smooth = masked_smooth(hu_f, body & ~near_cement, spacing)
    cand = inner & (smooth >= bg + BLASTIC_RISE_HU) & (smooth < CEMENT_HU)
    comp, n = ndimage.label(cand, structure=_CONN)
    if n == 0:
        return 0.0
    counts = np.bincount(comp.ravel(), minlength=n + 1)[1:] * voxel_ml
    return float(counts[counts >= MIN_LESION_ML].sum())
