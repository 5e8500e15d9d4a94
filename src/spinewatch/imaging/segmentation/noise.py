"""Image noise, estimated from the CT itself, and a smoothing that brings it down to the level
the segmenter's HU thresholds were set for.

Thin-slice or low-dose CTs carry voxel noise of 40-60 HU (standard deviation) where a routine
3 mm reconstruction has 10-20 HU. Every later step compares HU with fixed thresholds (bone at
200 HU, marrow and disc tissue at 80-100 HU), so a noise of 50 HU breaks a thin cortex into
specks and scatters "bone" through fatty marrow. The noise is measured robustly in soft tissue:
the median absolute difference between neighbouring voxels along R, where both lie in the
soft-tissue range (-100..100 HU), scaled to a standard deviation (1.4826 * MAD / sqrt(2) for
the difference of two independent Gaussian samples) -- edges between tissues are a minority
of such pairs, and the median ignores them. The estimate is per-voxel (white) noise; CT noise
is spatially correlated, so the true variance after smoothing is somewhat higher than
computed, which errs towards smoothing a little less than needed.

When the estimate exceeds ``TARGET_NOISE_HU``, the working grid is smoothed with an isotropic
Gaussian whose width is the smallest that brings white noise of that level to the target, and
never wider than ``MAX_SIGMA_MM`` (a 1 mm cortex must survive: a Gaussian of ~1 mm keeps the
peak of a one-voxel plate at about two thirds of its contrast).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

__all__ = ["MAX_SIGMA_MM", "TARGET_NOISE_HU", "denoise", "noise_sd_hu", "smoothing_sigma_vox"]

#: Noise (SD, HU) the thresholds of the segmenter were chosen at: routine abdominal CT at 2-3 mm
#: carries 10-20 HU (the project's 3 mm example: ~18 HU measured this way). Engineering choice.
TARGET_NOISE_HU = 20.0
#: Widest smoothing applied, mm (see the module docstring). Engineering choice.
MAX_SIGMA_MM = 1.2
_SOFT_TISSUE_HU = (-100.0, 100.0)


def noise_sd_hu(hu: npt.NDArray[np.float32]) -> float:
    """Robust per-voxel noise SD of ``hu`` (any 3D array in HU, axis 0 used), HU; 0.0 when no
    soft tissue is found."""
    a, b = hu[1:], hu[:-1]
    lo, hi = _SOFT_TISSUE_HU
    m = (a > lo) & (a < hi) & (b > lo) & (b < hi)
    if np.count_nonzero(m) < 100:
        return 0.0
    d = (a[m] - b[m]).astype(np.float64)
    mad = float(np.median(np.abs(d - np.median(d))))
    return float(1.4826 * mad / np.sqrt(2.0))


def _gain(sigma: tuple[float, float, float]) -> float:
    """Factor by which a separable Gaussian of ``sigma`` (voxels per axis, as scipy truncates it
    at 4 sigma) scales the SD of white noise."""
    g = 1.0
    for s in sigma:
        if s <= 0:
            continue
        r = int(4.0 * s + 0.5)
        x = np.arange(-r, r + 1, dtype=np.float64)
        k = np.exp(-0.5 * (x / s) ** 2)
        k /= k.sum()
        g *= float((k * k).sum())
    return float(np.sqrt(g))


def smoothing_sigma_vox(
    noise_hu: float, spacing_mm: tuple[float, float, float]
) -> tuple[float, float, float] | None:
    """Per-axis Gaussian sigma in voxels that brings ``noise_hu`` to ``TARGET_NOISE_HU`` (the
    same width in mm on every axis, at most ``MAX_SIGMA_MM``), or None when no smoothing is
    needed."""
    if noise_hu <= TARGET_NOISE_HU:
        return None
    best: tuple[float, float, float] = (0.0, 0.0, 0.0)
    for sigma_mm in np.arange(0.1, MAX_SIGMA_MM + 1e-6, 0.05):
        best = tuple(float(sigma_mm / s) for s in spacing_mm)  # type: ignore[assignment]
        if noise_hu * _gain(best) <= TARGET_NOISE_HU:
            break
    return best


def denoise(
    hu: npt.NDArray[np.float32], spacing_mm: tuple[float, float, float]
) -> tuple[npt.NDArray[np.float32], float, tuple[float, float, float] | None]:
    """(``hu`` smoothed when its noise exceeds the target, the noise measured in HU, the sigma
    used in voxels or None). ``hu``: float32 (nx, ny, nz); not modified."""
    noise = noise_sd_hu(hu)
    sigma = smoothing_sigma_vox(noise, spacing_mm)
    if sigma is None:
        return hu, noise, None
    out = ndi.gaussian_filter(hu, sigma, mode="nearest").astype(np.float32, copy=False)
    return out, noise, sigma
