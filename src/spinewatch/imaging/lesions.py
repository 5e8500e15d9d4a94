"""Lytic (and blastic) lesions of a vertebral body, with posterior wall and pedicle involvement.

A lytic lesion is a *focal* region where tumour (myeloma, metastasis: soft tissue, ~20-60 HU)
replaces trabecular bone. Two look-alikes must not be called lesions:

* **osteoporotic but intact bone** -- diffusely low HU (60-110 HU), but nowhere *markedly below the
  vertebra's own background*. Every threshold below is therefore relative to a robust estimate of
  the body's own trabecular background (:func:`background_hu`), not only absolute;
* **noise** -- the image is smoothed first (Gaussian, :data:`SMOOTHING_SIGMA_MM` in mm, so the
  filter is the same physical size at any spacing), seeds must lie several noise standard
  deviations below the background, and components smaller than :data:`MIN_LESION_ML` are dropped.

Method (all distances in mm, honouring anisotropic spacing):

1. *Support*: the body mask without cortex/blastic/cement voxels -- raw HU above the background by
   more than :data:`DENSE_RISE_HU` (or near cement, :data:`~spinewatch.imaging.density.CEMENT_HU`).
   Smoothing is a *normalised* Gaussian over the support only (``G(hu*s)/G(s)``), so the bright
   cortex and the disc/soft tissue outside the label do not leak into the trabecular values.
2. *Background*: the mode-seeking median of the smoothed trabecular core (body eroded by
   :data:`BACKGROUND_EROSION_MM`), started at the :data:`BACKGROUND_START_PERCENTILE` th percentile
   and re-centred on the values within :data:`BACKGROUND_WINDOW_HU` of it -- unaffected by a lesion
   filling most of the body; its spread (MAD) is the smoothed noise + texture.
3. *Hysteresis*: seeds where the smoothed HU is <= :data:`LESION_CEILING_HU` (soft-tissue, not
   bone) **and** at least ``max(SEED_DROP_HU, SEED_NOISE_FACTOR x spread)`` below the background,
   inside the body eroded by :data:`BODY_MARGIN_MM` (partial volume at the cortex and disc); grown
   through voxels ``max(GROW_DROP_HU, GROW_NOISE_FACTOR x spread)`` below the background. Connected
   components (26-connectivity) containing a seed are lesions.
4. *Volume*: a threshold on a smoothed image shrinks small round lesions (a 4 mm sphere loses ~20%
   at the half-way contour), so each lesion's volume is the **partial-volume sum**
   ``sum((background - hu) / (background - lesion_hu))`` of the *raw* HU over the body's support
   voxels within :data:`PV_MARGIN_SIGMAS` smoothing sigmas (+ one voxel) of the component, each
   voxel going to its nearest lesion; ``lesion_hu`` is the median smoothed HU of the lesion's
   centre (its voxels deeper than :data:`LESION_CORE_DEPTH_FRACTION` of its largest distance from
   surrounding bone). The sum is unbiased for any size and voxel size (partial-volume voxels count
   by their share), and noise averages out (no clipping at 0; only above 1.5). Lesions below
   :data:`MIN_LESION_ML` are dropped. ``lesion_mask`` is the voxels with a fraction >= 0.5.
5. *Posterior wall*: lesion voxels in the posterior :data:`POSTERIOR_WALL_MM` of the body along the
   frame's anterior axis (a body voxel is there when stepping posteriorly by at most that distance
   leaves the body), at least :data:`MIN_INVOLVEMENT_ML`.
6. *Pedicles*: posterior-element voxels within :data:`PEDICLE_ZONE_MM` of the body, split left/right
   by the sign of their coordinate along ``frame.right`` relative to the body centre; a pedicle is
   involved when at least :data:`MIN_INVOLVEMENT_ML` of it (eroded by
   :data:`PEDICLE_EDGE_MARGIN_MM` against partial volume with fat) is soft-tissue-like: smoothed HU
   meets the seed criterion (a lytic pedicle has lost both its cortex and its cancellous bone).
7. *Blastic*: smoothed HU >= background + :data:`BLASTIC_RISE_HU` (and below cement) inside the
   body eroded by :data:`BLASTIC_MARGIN_MM` or 1.5 voxels (away from the cortex), components >=
   :data:`MIN_LESION_ML`.
8. A body thinner than :data:`MIN_BODY_DEPTH_MM` (largest inscribed depth) is not analysed.

Arrays are crops ``[i, j, k]`` on ``region.grid`` (the shape of ``region.mask``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinewatch.imaging.density import (
    CEMENT_HU,
    TrabecularDensity,
    check_crop,
    dense_exclusion,
    distance_within_mm,
    mask_box,
)

if TYPE_CHECKING:
    from spinewatch.imaging.anatomy import VertebraRegion

__all__ = [
    "BACKGROUND_EROSION_MM",
    "BACKGROUND_MIN_WINDOW_HU",
    "BACKGROUND_SPREAD_WINDOW",
    "BACKGROUND_START_PERCENTILE",
    "BACKGROUND_WINDOW_HU",
    "BLASTIC_MARGIN_MM",
    "BLASTIC_RISE_HU",
    "BODY_MARGIN_MM",
    "DENSE_RISE_HU",
    "GROW_DROP_HU",
    "GROW_NOISE_FACTOR",
    "LESION_CEILING_HU",
    "LESION_CORE_DEPTH_FRACTION",
    "MIN_BODY_DEPTH_MM",
    "MIN_INVOLVEMENT_ML",
    "MIN_LESION_ML",
    "PEDICLE_BASE_BEHIND_WALL_MM",
    "PEDICLE_EDGE_MARGIN_MM",
    "PEDICLE_MIDLINE_MM",
    "PEDICLE_ZONE_MM",
    "POSTERIOR_WALL_MM",
    "PV_MARGIN_SIGMAS",
    "SEED_DROP_HU",
    "SEED_NOISE_FACTOR",
    "SMOOTHING_SIGMA_MM",
    "LyticFindings",
    "background_hu",
    "detect_lytic_lesions",
    "masked_smooth",
    "posterior_wall_zone",
]

log = logging.getLogger(__name__)

#: Gaussian smoothing sigma in mm: suppresses CT noise (a 1 mm sigma cuts 10-25 HU voxel noise to a
#: few HU at 1 mm voxels) while keeping a 4 mm lesion's centre at its own HU.
SMOOTHING_SIGMA_MM = 1.0
#: Seeds only deeper than this inside the body: the label's outer voxels mix with the disc, fat
#: and soft tissue (partial volume) and would look lytic.
BODY_MARGIN_MM = 1.0
#: The background is measured in the body eroded by this much (the trabecular core), shrunk to
#: half the body's depth for small bodies as in :mod:`spinewatch.imaging.density`.
BACKGROUND_EROSION_MM = 3.0
#: Mode-seeking background: start at this percentile (above any lesion filling < 90% of the core).
BACKGROUND_START_PERCENTILE = 90.0
#: ... then the median of the values within this window below the current estimate, repeated.
BACKGROUND_WINDOW_HU = 80.0
#: Raw voxels this far above the background are cortex, blastic bone or bone islands: excluded
#: from the smoothing support (a 1 mm cortex at ~800 HU would otherwise lift the neighbouring
#: trabecular values by ~100 HU and hide a lesion touching the wall).
DENSE_RISE_HU = 150.0
#: Absolute ceiling for a lytic seed: soft tissue/fluid is 0-80 HU, the seed must be soft-tissue-
#: like whatever the background. (Osteoporotic bone may be below it too: the relative drop decides.)
LESION_CEILING_HU = 100.0
#: A seed lies at least this far below the vertebra's own background (the body's own bone).
SEED_DROP_HU = 60.0
#: ... and at least this many spreads (smoothed noise + texture, MAD) below it.
SEED_NOISE_FACTOR = 6.0
#: Lesion voxels are grown through voxels at least this far below the background ...
GROW_DROP_HU = 30.0
#: ... and this many spreads below it.
GROW_NOISE_FACTOR = 3.0
#: Minimum lesion volume (partial-volume sum): 0.1 ml is a sphere of radius 2.9 mm; smaller foci
#: cannot be told from noise, vessels or a Schmorl node reliably.
MIN_LESION_ML = 0.1
#: A lesion's own HU is the median smoothed HU of its voxels deeper than this fraction of its
#: largest depth (its centre: the smoothing has not mixed the surrounding bone in there).
LESION_CORE_DEPTH_FRACTION = 0.75
#: The partial-volume sum extends this many smoothing sigmas beyond the component (plus a voxel).
PV_MARGIN_SIGMAS = 3.0
#: The posterior wall zone: the posterior-most body voxels within this distance (mm) of the wall.
POSTERIOR_WALL_MM = 3.0
#: Posterior-element voxels within this distance (mm) of the body are the pedicle (base) region.
PEDICLE_ZONE_MM = 10.0
#: The pedicle region is eroded by this much (mm) from the vertebra mask's outer surface before
#: looking for low HU: the segmentation's edge voxels mix with fat (-100 HU) and would look lytic.
PEDICLE_EDGE_MARGIN_MM = 1.0
#: The smallest lesion volume in the posterior wall zone or in a pedicle that counts as involvement
#: (0.01 ml = 10 voxels at 1 mm: a few-voxel breach is below what CT can call).
MIN_INVOLVEMENT_ML = 0.01
#: The posterior wall's position is read within this distance (mm) of the mid-sagittal plane ...
PEDICLE_MIDLINE_MM = 3.0
#: ... and body voxels more than this (mm) behind it are pedicle bases (posterolateral corners).
PEDICLE_BASE_BEHIND_WALL_MM = 1.0
#: Blastic: smoothed HU at least this far above the background (sclerotic metastasis, ~ +300 HU
#: and more), inside the body eroded by BLASTIC_MARGIN_MM (away from the cortex and endplates).
BLASTIC_RISE_HU = 300.0
BLASTIC_MARGIN_MM = 2.5
#: ... and finally the median of the values within +-max(this, BACKGROUND_SPREAD_WINDOW x spread)
#: of it (symmetric, so unbiased for the bone's own spread; lesion partial-volume voxels fall out).
BACKGROUND_MIN_WINDOW_HU = 15.0
BACKGROUND_SPREAD_WINDOW = 2.5
#: A body whose largest inscribed depth is below this (mm) is not analysed (empty findings,
#: ``background_hu`` None): a cervical body is ~5-7 mm deep, a slab cut by the scan's edge less.
MIN_BODY_DEPTH_MM = 4.0
#: Fewer voxels than this in the background region and the vertebra is not analysed.
_MIN_BACKGROUND_VOXELS = 20
_PV_FRACTION_MAX = 1.5


@dataclass(frozen=True)
class LyticFindings:
    """Lytic lesions of one vertebral body.

    ``volume_ml``: total lesion volume in the body (partial-volume sum, ml); ``fraction``:
    ``volume_ml`` / body volume (0..1); ``n_lesions``: connected lesions >= :data:`MIN_LESION_ML`;
    ``largest_ml``: the largest one; involvement flags as described in the module docstring;
    ``lesion_mask``: boolean crop (shape of ``region.mask``), not serialised.

    Extensions beyond the shared interface (defaults keep constructors compatible):
    ``blastic_volume_ml`` and ``blastic_fraction`` (focal sclerotic regions, for the SINS lesion
    quality); ``background_hu``: the body's own trabecular background (smoothed), None when the
    body was too small to analyse.
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


def masked_smooth(
    hu: npt.NDArray[Any],
    support: npt.NDArray[np.bool_],
    spacing_mm: tuple[float, float, float],
    sigma_mm: float = SMOOTHING_SIGMA_MM,
) -> npt.NDArray[np.float32]:
    """Normalised Gaussian smoothing of ``hu`` over ``support`` only: ``G(hu*s) / G(s)``.

    ``sigma_mm`` is converted per axis with ``spacing_mm``. Values outside ``support`` are
    meaningless (set to the nearest-support-weighted value or 0 where no support is near).
    """
    sigma_vox = [sigma_mm / s for s in spacing_mm]
    support = np.asarray(support, dtype=np.bool_)
    out = np.zeros(support.shape, dtype=np.float32)
    found = mask_box(support)
    if found is None:
        return out
    # Work in the support's bounding box grown by the kernel's reach (gaussian_filter's default
    # truncate=4 sigma): outside it num = den = 0, and the box's own edges only ever mirror
    # zeros, so the result is identical to filtering the whole crop.
    box = tuple(
        slice(max(sl.start - int(4.0 * sg + 0.5) - 1, 0), min(sl.stop + int(4.0 * sg + 0.5) + 1, n))
        for sl, sg, n in zip(found, sigma_vox, support.shape, strict=True)
    )
    weights = support[box].astype(np.float32)
    num = ndimage.gaussian_filter(np.asarray(hu[box], dtype=np.float32) * weights, sigma_vox)
    den = ndimage.gaussian_filter(weights, sigma_vox)
    out_box = np.zeros(num.shape, dtype=np.float32)
    np.divide(num, den, out=out_box, where=den > 1e-3)
    out[box] = out_box
    return out


def background_hu(values: npt.NDArray[Any]) -> tuple[float, float]:
    """Robust trabecular background of ``values`` (smoothed HU of the body's core) and its spread.

    Mode-seeking: start at the :data:`BACKGROUND_START_PERCENTILE` th percentile, then repeatedly
    take the median of the values within +-:data:`BACKGROUND_WINDOW_HU` of the estimate; then
    again within the narrower +-max(:data:`BACKGROUND_MIN_WINDOW_HU`,
    :data:`BACKGROUND_SPREAD_WINDOW` x spread). Returns ``(background_hu, spread_hu)``, the spread
    being 1.4826 x the MAD of the values in the first window (noise + bone texture).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("background_hu needs at least one value")
    bg = float(np.percentile(v, BACKGROUND_START_PERCENTILE))
    window = BACKGROUND_WINDOW_HU
    spread = 0.0
    for stage in range(2):
        for _ in range(20):
            near = v[np.abs(v - bg) <= window]
            if near.size == 0:
                break
            new = float(np.median(near))
            converged = abs(new - bg) < 0.05
            bg = new
            if converged:
                break
        near = v[np.abs(v - bg) <= window]
        if near.size == 0:
            near = v
        if stage == 0:
            spread = 1.4826 * float(np.median(np.abs(near - bg)))
            window = max(BACKGROUND_MIN_WINDOW_HU, BACKGROUND_SPREAD_WINDOW * spread)
    return bg, spread


def posterior_wall_zone(
    body: npt.NDArray[np.bool_], region: VertebraRegion, depth_zone_mm: float = POSTERIOR_WALL_MM
) -> npt.NDArray[np.bool_]:
    """Body voxels within ``depth_zone_mm`` of the posterior wall along ``-frame.anterior``.

    The body's voxels are binned into columns parallel to ``frame.anterior`` (bins of the largest
    voxel spacing in the right/superior plane); in each column the posterior-most voxel marks the
    wall, and the voxels within ``depth_zone_mm`` in front of it that lie in the posterior half of
    the body are the zone. (Columns, not a step test, so a voxel staircase on an oblique endplate
    is not mistaken for the wall.)
    """
    idx, local = _body_points(body, region)
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


def _core(depth: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_], half: float) -> Any:
    max_depth = float(depth[mask].max()) - half if mask.any() else 0.0
    erosion = min(BACKGROUND_EROSION_MM, 0.5 * max(max_depth, 0.0))
    return (depth - half > erosion - 1e-9) & mask


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
    mask = np.asarray(region.mask, dtype=np.bool_) | body
    shape = body.shape
    if not body.any():
        return _empty(shape, None)
    grid = region.grid
    spacing = grid.spacing_mm
    voxel_ml = grid.voxel_volume_ml
    half = 0.5 * min(spacing)
    hu_f = np.asarray(hu, dtype=np.float32)
    near_cement = dense_exclusion(hu_f, spacing)

    depth = region.body_depth_mm
    if float(depth.max()) - half < MIN_BODY_DEPTH_MM:
        # a sliver of a body (cut by the scan, or a thin label at coarse slices): every voxel is
        # partial volume with cortex, endplate or disc, and no background can be measured
        log.info("%s: body too thin for lesion detection", region.level)
        return _empty(shape, None)
    core = _core(depth, body, half) & ~near_cement

    # Background from the raw core first (to find the cortex), then from the smoothed support.
    raw_core = hu_f[core]
    if raw_core.size < _MIN_BACKGROUND_VOXELS:
        if density is None:
            log.info("%s: body too small for lesion detection", region.level)
            return _empty(shape, None)
        raw_bg, raw_spread = float(density.median_hu), 0.0
    else:
        raw_bg, raw_spread = background_hu(raw_core)
    dense = hu_f > raw_bg + max(DENSE_RISE_HU, 5.0 * raw_spread)
    # the body is smoothed on its own: lytic pedicles or the disc must not leak into it
    body_support = body & ~dense & ~near_cement
    smooth = masked_smooth(hu_f, body_support, spacing)

    core_s = core & body_support
    if np.count_nonzero(core_s) >= _MIN_BACKGROUND_VOXELS:
        bg, spread = background_hu(smooth[core_s])
    else:
        bg, spread = raw_bg, 0.0

    seed_drop = max(SEED_DROP_HU, SEED_NOISE_FACTOR * spread)
    grow_drop = max(GROW_DROP_HU, GROW_NOISE_FACTOR * spread)
    seed_thr = min(LESION_CEILING_HU, bg - seed_drop)
    inner = (depth - half > BODY_MARGIN_MM - 1e-9) & body_support
    seeds = inner & (smooth <= seed_thr)
    grow = inner & (smooth <= bg - grow_drop)

    comp, n_comp = ndimage.label(grow, structure=np.ones((3, 3, 3), dtype=np.bool_))
    seeded = np.unique(comp[seeds])
    seeded = seeded[seeded > 0]
    lesion_mask = np.zeros(shape, dtype=np.bool_)
    volumes_kept: list[float] = []
    if n_comp and seeded.size:
        keep = np.zeros(n_comp + 1, dtype=np.bool_)
        keep[seeded] = True
        comp = np.where(keep[comp], comp, 0)
        owner, frac, vox = _partial_volumes(
            comp, hu_f, smooth, body_support, bg, bg - grow_drop, spacing
        )
        big = np.zeros(n_comp + 1, dtype=np.bool_)
        for label in seeded:
            ml = float(vox[label]) * voxel_ml
            if ml >= MIN_LESION_ML:
                big[label] = True
                volumes_kept.append(ml)
        lesion_mask = big[owner] & (frac >= 0.5)
    total_ml = float(sum(volumes_kept))
    body_ml = float(np.count_nonzero(body)) * voxel_ml

    wall = posterior_wall_zone(body, region)
    min_vox = MIN_INVOLVEMENT_ML / voxel_ml
    posterior_wall = bool(np.count_nonzero(lesion_mask & wall) >= min_vox - 1e-9)

    lytic_pedicle = _lytic_pedicle(hu_f, region, mask, body, dense | near_cement, seed_thr)
    lytic_pedicle |= lesion_mask & _pedicle_base(body, region)
    left, right = _sides(lytic_pedicle, region, min_vox)

    blastic_ml = _blastic_volume(hu_f, body, depth, half, near_cement, bg, spacing, voxel_ml)

    return LyticFindings(
        volume_ml=total_ml,
        fraction=float(min(1.0, max(0.0, total_ml / body_ml))) if body_ml > 0 else 0.0,
        n_lesions=len(volumes_kept),
        largest_ml=float(max(volumes_kept, default=0.0)),
        posterior_wall_involved=posterior_wall,
        pedicle_left_involved=left,
        pedicle_right_involved=right,
        lesion_mask=lesion_mask,
        blastic_volume_ml=blastic_ml,
        blastic_fraction=float(min(1.0, blastic_ml / body_ml)) if body_ml > 0 else 0.0,
        background_hu=float(bg),
    )


def _bbox(
    mask: npt.NDArray[np.bool_], pad_mm: float, spacing: tuple[float, float, float]
) -> tuple[slice, slice, slice]:
    """The bounding box of ``mask`` (not empty) padded by ``pad_mm`` (clipped to the array)."""
    sl = mask_box(mask)
    if sl is None:
        raise ValueError("_bbox needs a non-empty mask")
    out = []
    for axis in range(3):
        pad = int(np.ceil(pad_mm / spacing[axis])) + 1
        out.append(slice(max(sl[axis].start - pad, 0), min(sl[axis].stop + pad, mask.shape[axis])))
    return out[0], out[1], out[2]


def _partial_volumes(
    comp: npt.NDArray[np.int32],
    raw: npt.NDArray[np.float32],
    smooth: npt.NDArray[np.float32],
    support: npt.NDArray[np.bool_],
    bg: float,
    grow_thr: float,
    spacing: tuple[float, float, float],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """Assign support voxels near the lesion components to the nearest one and sum their
    partial-volume fractions. Returns (owner label per voxel, fraction per voxel, voxel-equivalent
    volume per label); the work is done in the components' bounding box padded by the margin."""
    n = int(comp.max())
    margin_mm = PV_MARGIN_SIGMAS * SMOOTHING_SIGMA_MM + max(spacing)
    box = _bbox(comp > 0, margin_mm, spacing)
    c, sm, sup, rw = comp[box], smooth[box], support[box], raw[box]
    dist, inds = ndimage.distance_transform_edt(c == 0, sampling=spacing, return_indices=True)
    owner_c = np.where((dist <= margin_mm) & sup, c[inds[0], inds[1], inds[2]], 0).astype(np.intp)
    del dist, inds
    # each lesion's own HU: the median smoothed HU of its centre, the voxels farthest from bone
    # (the body's edge, where the lesion may go on into a pedicle or through the cortex, is not
    # a boundary of the lesion)
    bone_like = sup & (c == 0) & (sm > grow_thr)
    inner_depth = ndimage.distance_transform_edt(~bone_like, sampling=spacing)
    lesion_hu = np.full(n + 1, np.nan)
    for label, sl in enumerate(ndimage.find_objects(c), start=1):
        if sl is None:
            continue
        own = c[sl] == label
        d = inner_depth[sl][own]
        vals = sm[sl][own]
        lesion_hu[label] = float(np.median(vals[d >= LESION_CORE_DEPTH_FRACTION * d.max()]))
    contrast = bg - lesion_hu
    contrast[~(contrast > 0)] = np.inf  # no lesion / unusable: contributes 0
    frac_c = np.zeros(c.shape, dtype=np.float32)
    sel = owner_c > 0
    frac_c[sel] = np.minimum((bg - rw[sel]) / contrast[owner_c[sel]], _PV_FRACTION_MAX)
    vox = np.bincount(owner_c[sel], weights=frac_c[sel], minlength=n + 1).astype(np.float64)
    owner = np.zeros(comp.shape, dtype=np.intp)
    frac = np.zeros(comp.shape, dtype=np.float32)
    owner[box] = owner_c
    frac[box] = frac_c
    return owner, frac, vox


def _pedicle_base(body: npt.NDArray[np.bool_], region: VertebraRegion) -> npt.NDArray[np.bool_]:
    """Body-mask voxels behind the posterior wall's mid-sagittal plane: the pedicle bases that a
    body/posterior-element separation may have left in the body (the wall is found at the
    midline, within PEDICLE_MIDLINE_MM of the sagittal plane, and the bases start
    PEDICLE_BASE_BEHIND_WALL_MM behind it)."""
    idx, local = _body_points(body, region)
    out = np.zeros(body.shape, dtype=np.bool_)
    if idx.size == 0:
        return out
    midline = np.abs(local[:, 0]) <= PEDICLE_MIDLINE_MM
    if not midline.any():
        return out
    wall = float(local[midline, 1].min())
    sel = local[:, 1] < wall - PEDICLE_BASE_BEHIND_WALL_MM
    out[tuple(idx[sel].T)] = True
    return out


def _body_points(
    body: npt.NDArray[np.bool_], region: VertebraRegion
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Indices (n, 3) of the True voxels of ``body`` and their local (right, anterior,
    superior) mm; the region's cached arrays when ``body`` is the region's own body."""
    if body is region.body:
        return region.body_voxels, region.body_local_mm
    idx = np.argwhere(body)
    return idx, _to_local(region, idx)


def _to_local(region: VertebraRegion, idx: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
    from spinewatch.imaging.anatomy import local_coordinates

    return local_coordinates(region.grid, region.frame, idx)


def _lytic_pedicle(
    hu_f: npt.NDArray[np.float32],
    region: VertebraRegion,
    mask: npt.NDArray[np.bool_],
    body: npt.NDArray[np.bool_],
    excluded: npt.NDArray[np.bool_],
    seed_thr: float,
) -> npt.NDArray[np.bool_]:
    """Soft-tissue-like voxels in the pedicle zone (posterior-element voxels within
    PEDICLE_ZONE_MM of the body, eroded from the mask's outer surface by PEDICLE_EDGE_MARGIN_MM):
    smoothed over the posterior elements' own non-dense voxels, at or below the seed threshold."""
    spacing = region.grid.spacing_mm
    posterior = np.asarray(region.posterior, dtype=np.bool_) & mask & ~body
    found = np.zeros(mask.shape, dtype=np.bool_)
    if not posterior.any():
        return found
    box = _bbox(posterior, PEDICLE_ZONE_MM + SMOOTHING_SIGMA_MM, spacing)
    post, bod, msk = posterior[box], body[box], mask[box]
    if not bod.any():
        return found
    # The zone lies within PEDICLE_ZONE_MM of the body: the distance to the body is needed only
    # in the body's bounding box grown by that much (within `box`). A posterior voxel there that
    # is within the zone distance of the body has its nearest body voxel in the same box, so the
    # thresholded distance is exact.
    near = _grow(_bbox(bod, 0.0, spacing), PEDICLE_ZONE_MM, spacing, bod.shape)
    to_body = ndimage.distance_transform_edt(~bod[near], sampling=spacing)
    half = 0.5 * min(spacing)
    # depth_mm(msk) - half > margin (the voxels inside the mask's outer surface by the margin),
    # with the depth exact up to margin + half (enough for the threshold), in `near` grown by
    # that reach: the box's edges count as outside, as in depth_mm, and `near`'s own inner
    # edges are farther than the reach from its voxels.
    reach_mm = PEDICLE_EDGE_MARGIN_MM + half
    ext = _grow(near, reach_mm, spacing, bod.shape)
    depth = distance_within_mm(~np.pad(msk[ext], 1), spacing, reach_mm)
    inner = tuple(
        slice(1 + n.start - e.start, 1 + n.stop - e.start) for n, e in zip(near, ext, strict=True)
    )
    inside = depth[inner] - half > PEDICLE_EDGE_MARGIN_MM - 1e-9
    del depth
    support = post & ~excluded[box]
    zone = np.zeros(post.shape, dtype=np.bool_)
    zone[near] = post[near] & (to_body <= PEDICLE_ZONE_MM) & inside & support[near]
    del to_body, inside
    if not zone.any():
        return found
    # The smoothed value of a zone voxel depends only on the support within the Gaussian's
    # reach (gaussian_filter truncates at 4 sigma per axis, reflections included): the support
    # outside the zone's box grown by that reach is left out.
    reach_vox = [int(4.0 * SMOOTHING_SIGMA_MM / sp + 0.5) + 1 for sp in spacing]
    zbox = _bbox(zone, 0.0, spacing)
    keep = []
    for axis in range(3):
        lo = max(zbox[axis].start - reach_vox[axis], 0)
        keep.append(slice(lo, min(zbox[axis].stop + reach_vox[axis], int(zone.shape[axis]))))
    keep_t = (keep[0], keep[1], keep[2])
    local_support = np.zeros(post.shape, dtype=np.bool_)
    local_support[keep_t] = support[keep_t]
    smooth = masked_smooth(hu_f[box], local_support, spacing)
    found[box] = zone & (smooth <= seed_thr)
    return found


def _grow(
    box: tuple[slice, slice, slice],
    pad_mm: float,
    spacing: tuple[float, float, float],
    shape: tuple[int, ...],
) -> tuple[slice, slice, slice]:
    """``box`` grown by ``pad_mm`` (+1 voxel) on every side, clipped to ``shape``."""
    out = []
    for axis in range(3):
        pad = int(np.ceil(pad_mm / spacing[axis])) + 1
        out.append(slice(max(box[axis].start - pad, 0), min(box[axis].stop + pad, shape[axis])))
    return out[0], out[1], out[2]


def _sides(
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


def _blastic_volume(
    hu_f: npt.NDArray[np.float32],
    body: npt.NDArray[np.bool_],
    depth: npt.NDArray[np.float64],
    half: float,
    near_cement: npt.NDArray[np.bool_],
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
    comp, n = ndimage.label(cand, structure=np.ones((3, 3, 3), dtype=np.bool_))
    if n == 0:
        return 0.0
    counts = np.bincount(comp.ravel(), minlength=n + 1)[1:] * voxel_ml
    return float(counts[counts >= MIN_LESION_ML].sum())
