"""The trabecular bone's own statistics: normalised smoothing over a support, the background
(mode) of a body's values and the bone's spread below it.

Private helpers of :mod:`spinewatch.imaging.lesions` (which re-exports the public names). Values
in HU; ``spacing_mm`` per array axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinewatch.imaging.grid import gaussian_within, mask_box

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

#: The fine scale (mm) of a lesion's own HU, the pedicle zone and the blastic search.
SMOOTHING_SIGMA_MM = 1.0
#: Mode-seeking background: start at this percentile (in the bone while a lesion fills less than
#: ~75-90 % of the core).
BACKGROUND_START_PERCENTILE = 90.0
#: ... then climbs to the nearest mode by mean shift, Gaussian kernel of half a spread (at least
#: this, HU).
BACKGROUND_MIN_BANDWIDTH_HU = 3.0
_MODE_BIN_HU = 0.5


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
    inside = _box_in(found, box)  # num and den are zero outside the support's own box
    num, _ = gaussian_within(np.asarray(hu[box], dtype=np.float32) * weights, sigma_vox, inside)
    den, _ = gaussian_within(weights, sigma_vox, inside)
    out_box = np.zeros(num.shape, dtype=np.float32)
    np.divide(num, den, out=out_box, where=den > 1e-3)
    out[box] = out_box
    return out


def _box_in(found: tuple[slice, ...], box: tuple[slice, ...]) -> list[tuple[int, int]]:
    """``found`` (slices of the crop) as (start, stop) pairs inside ``box``."""
    return [(f.start - b.start, f.stop - b.start) for f, b in zip(found, box, strict=True)]


#: Scales from twice this (mm) up are smoothed on a grid decimated to voxels of at most this
#: size (blur-then-subsample: after the 1 mm scale the signal holds < 1 % of its amplitude at
#: that grid's Nyquist frequency) and brought back by cubic convolution; only sub-millimetre
#: axes are decimated (0.5 mm: every second voxel). 0 turns the pyramid off.
PYRAMID_STEP_MM = 1.0


def pyramid_factors(
    spacing_mm: tuple[float, float, float], sigmas_mm: tuple[float, ...]
) -> tuple[int, int, int]:
    """The decimation of the scales after the first (one integer per axis; 1: none) that
    :func:`smooth_scales` uses: voxels of at most :data:`PYRAMID_STEP_MM`, when the second
    scale is at least twice that."""
    if PYRAMID_STEP_MM <= 0 or len(sigmas_mm) < 2 or sigmas_mm[1] < 2.0 * PYRAMID_STEP_MM:
        return (1, 1, 1)
    f = [max(1, int(np.floor(PYRAMID_STEP_MM / s + 1e-9))) for s in spacing_mm]
    return (f[0], f[1], f[2])


def smooth_scales(
    hu: FloatArray,
    support: BoolArray,
    spacing_mm: tuple[float, float, float],
    sigmas_mm: tuple[float, ...],
    *,
    used: BoolArray | None = None,
) -> list[FloatArray]:
    """:func:`masked_smooth` at each of the increasing ``sigmas_mm``, as a cascade: a Gaussian of
    sigma ``s2`` is one of sigma ``s1`` followed by one of ``sqrt(s2^2 - s1^2)``, for the
    numerator and the denominator alike (both linear), so each scale costs a short kernel; each
    pass filters only the lines that can be non-zero (:func:`~spinewatch.imaging.grid.
    gaussian_within`, the same values bit for bit).

    On sub-millimetre voxels the scales after the first run on a decimated grid
    (:func:`pyramid_factors`): the numerator and denominator of the first scale are subsampled,
    the cascade continues there, and each scale's numerator and denominator are brought back to
    voxel of the box of ``used`` (default ``support``; grown by a voxel) by cubic convolution
    (:func:`_upsample`) before the division, zero beyond it. The values then
    differ from the full-resolution ones by a fraction of a HU (a few HU at most next to a
    lesion's edge); ``tests/imaging/test_lesions_pyramid.py`` bounds what that does to the
    findings."""
    out = [np.zeros(support.shape, dtype=np.float32) for _ in sigmas_mm]
    found = mask_box(support)
    if found is None:
        return out
    reach = [int(4.0 * max(sigmas_mm) / s + 0.5) + 1 for s in spacing_mm]
    box = tuple(
        slice(max(sl.start - r, 0), min(sl.stop + r, n))
        for sl, r, n in zip(found, reach, support.shape, strict=True)
    )
    den = support[box].astype(np.float32)
    num = np.asarray(hu[box], dtype=np.float32) * den
    inside = _box_in(found, box)  # where num and den may be non-zero, growing scale by scale
    factors = pyramid_factors(spacing_mm, sigmas_mm)
    used_box = found if used is None else (mask_box(used) or found)
    step_mm = list(spacing_mm)
    previous = 0.0
    for i, sigma in enumerate(sigmas_mm):
        step = float(np.sqrt(sigma * sigma - previous * previous))
        step_vox = [step / s for s in step_mm]
        num, _ = gaussian_within(num, step_vox, inside)
        den, inside = gaussian_within(den, step_vox, inside)
        previous = sigma
        if i == 0 or factors == (1, 1, 1):
            smooth = np.zeros(num.shape, dtype=np.float32)
            np.divide(num, den, out=smooth, where=den > 1e-3)
            out[i][box] = smooth
        else:
            # back on the full grid only where the values are used (and a voxel around it)
            near = tuple(
                (max(sl.start - b.start - 1, 0), min(sl.stop - b.start + 1, b.stop - b.start))
                for sl, b in zip(used_box, box, strict=True)
            )
            num_i = _upsample(num, factors, near)
            den_i = _upsample(den, factors, near)
            smooth = np.zeros(num_i.shape, dtype=np.float32)
            np.divide(num_i, den_i, out=smooth, where=den_i > 1e-3)
            out[i][
                tuple(
                    slice(b.start + lo, b.start + hi) for (lo, hi), b in zip(near, box, strict=True)
                )
            ] = smooth
        if i == 0 and factors != (1, 1, 1):
            sub = tuple(slice(None, None, f) for f in factors)
            num, den = np.ascontiguousarray(num[sub]), np.ascontiguousarray(den[sub])
            inside = [(lo // f, -(-hi // f)) for (lo, hi), f in zip(inside, factors, strict=True)]
            step_mm = [s * f for s, f in zip(spacing_mm, factors, strict=True)]
    return out


def _upsample(
    coarse: FloatArray, factors: tuple[int, int, int], wanted: Sequence[tuple[int, int]]
) -> FloatArray:
    """The values of the full grid's box ``wanted`` (per axis ``(start, stop)``) from ``coarse``,
    the full grid sampled at every ``factors``-th voxel from 0: axis by axis by cubic
    convolution (Keys, a = -0.5: exact on the samples, error O(h^3) between them; beyond the
    last sample the edge value continues)."""
    arr = coarse
    for axis, f in enumerate(factors):
        start, stop = wanted[axis]
        if f == 1:
            sl: list[slice] = [slice(None)] * 3
            sl[axis] = slice(start, stop)
            arr = arr[tuple(sl)]
            continue
        # the samples the wanted outputs need: one before the first, two after the last
        k0 = max(start // f - 1, 0)
        k1 = min(-(-stop // f) + 2, arr.shape[axis])
        take: list[slice] = [slice(None)] * 3
        take[axis] = slice(k0, k1)
        pad = [(0, 0)] * 3
        pad[axis] = (1, 2)
        padded = np.pad(arr[tuple(take)], pad, mode="edge")
        n = stop - start
        new_shape = list(arr.shape)
        new_shape[axis] = n
        res = np.empty(new_shape, dtype=np.float32)
        for phase in range(f):
            # outputs j = start + r with (j % f) == phase use samples k - 1 .. k + 2, k = j // f
            first = start + (phase - start) % f
            if first >= stop:
                continue
            count = len(range(first, stop, f))
            t = phase / f
            weights = (
                (-(t**3) + 2 * t**2 - t) / 2,
                (3 * t**3 - 5 * t**2 + 2) / 2,
                (-3 * t**3 + 4 * t**2 + t) / 2,
                (t**3 - t**2) / 2,
            )
            kfirst = first // f - k0  # index of sample k in arr[k0:]; padded is shifted by 1
            acc: FloatArray | None = None
            for tap, w in enumerate(weights):
                if w == 0.0:
                    continue
                src: list[slice] = [slice(None)] * 3
                src[axis] = slice(kfirst + tap, kfirst + tap + count)
                term = padded[tuple(src)] * np.float32(w)
                acc = term if acc is None else np.add(acc, term, out=acc)
            dst: list[slice] = [slice(None)] * 3
            dst[axis] = slice(first - start, n, f)
            res[tuple(dst)] = acc
        arr = res
    return np.asarray(arr, dtype=np.float32)


def background_hu(values: npt.NDArray[Any]) -> tuple[float, float]:
    """Robust trabecular background of ``values`` (HU of the body's core) and its spread.

    The bone is the upper mode of the core's distribution; a lesion, its partial-volume rim and
    vessels only add values *below* it. A first spread is read from the upper tail (the 80th to
    95th percentiles span 0.80 SD of Gaussian bone, and stay in the bone while a lesion fills
    less than ~75 % of the core). From the :data:`BACKGROUND_START_PERCENTILE` th percentile the
    estimate climbs to the nearest *mode* of the values' kernel density (Gaussian kernel of half a
    spread; the fixed point of a mean shift): a flat spread of partial-volume values below the
    bone does not move a density maximum, where it would move a median. The
    spread is one-sided: 1.4826 x the median excess of the values *above* the background (the SD
    for a symmetric bone distribution), so lesion voxels cannot inflate it. Returns
    ``(background_hu, spread_hu)``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("background_hu needs at least one value")
    p80, p95, start = np.percentile(v, [80.0, 95.0, BACKGROUND_START_PERCENTILE])
    spread = max(float(p95 - p80) / 0.803, 1.0)
    lo = float(v.min())
    counts = np.bincount(((v - lo) / _MODE_BIN_HU).astype(np.int64)).astype(np.float64)
    bg = float(start)
    for _stage in range(2):
        h = max(BACKGROUND_MIN_BANDWIDTH_HU, 0.5 * spread)
        bg = _climb(counts, lo, h, bg)
        above = v[v > bg] - bg
        spread = max(1.4826 * float(np.median(above)), 1.0) if above.size else 1.0
    return bg, spread


def bone_spread_below(values: npt.NDArray[Any], bg: float, upper_spread: float) -> float:
    """The SD of the bone *below* its mode ``bg`` (HU), from the half width at half maximum of
    the lower flank of the values' kernel density (``HWHM = 1.1774 SD`` for a Gaussian; the
    kernel's own width, a quarter of ``upper_spread``, is taken out in quadrature).

    The flank near the mode is bone: a lesion -- even one filling a third of the core -- and its
    partial-volume rim add values far below it or a flat spread across it, which barely move
    the half-maximum point, where they would move a median of the shortfalls. Falls back to
    1.4826 x the median shortfall when the flank has no half-maximum point.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    h = max(BACKGROUND_MIN_BANDWIDTH_HU, 0.25 * upper_spread)
    lo = float(v.min())
    counts = np.bincount(((v - lo) / _MODE_BIN_HU).astype(np.int64)).astype(np.float64)
    dens = ndimage.gaussian_filter1d(counts, h / _MODE_BIN_HU, mode="constant", truncate=4.0)
    i = int(min(max(round((bg - lo) / _MODE_BIN_HU - 0.5), 0), dens.size - 1))
    half = 0.5 * float(dens[i])
    below = np.flatnonzero(dens[:i] < half)
    if below.size == 0:
        shortfall = bg - v[v < bg]
        return max(1.4826 * float(np.median(shortfall)), 1.0) if shortfall.size else 1.0
    j = int(below[-1])  # dens[j] < half <= dens[j + 1]
    x_half = lo + (j + 0.5 + (half - dens[j]) / max(dens[j + 1] - dens[j], 1e-12)) * _MODE_BIN_HU
    sd_obs = max(bg - x_half, 0.0) / 1.1774
    return max(float(np.sqrt(max(sd_obs**2 - h**2, 0.25 * sd_obs**2))), 1.0)


def _climb(counts: npt.NDArray[np.float64], lo: float, h: float, start: float) -> float:
    """The kernel density (Gaussian, bandwidth ``h`` HU) of values binned by ``_MODE_BIN_HU``
    from ``lo``: the local maximum reached uphill from ``start`` (the fixed point of a Gaussian
    mean shift), refined by a parabola through the top three bins."""
    dens = ndimage.gaussian_filter1d(counts, h / _MODE_BIN_HU, mode="constant", truncate=4.0)
    n = dens.size
    i = int(min(max(round((start - lo) / _MODE_BIN_HU - 0.5), 0), n - 1))
    while True:
        if i + 1 < n and dens[i + 1] > dens[i]:
            i += 1
        elif i > 0 and dens[i - 1] > dens[i]:
            i -= 1
        else:
            break
    offset = 0.0
    if 0 < i < n - 1:
        a, b, c = dens[i - 1], dens[i], dens[i + 1]
        denom = a - 2.0 * b + c
        if denom < 0:
            offset = 0.5 * (a - c) / denom
    return lo + (i + 0.5 + offset) * _MODE_BIN_HU
