"""How far to trust one vertebra's findings: a class (high / medium / low) with its reasons.

The class is the lowest that any of five factors allows; every factor that lowers it adds a
reason, and a vertebra left at *high* says what was checked. Factors:

1. **Voxel size along the vertebra's superior axis** (:func:`superior_voxel_mm`: the voxel
   spacing seen along the vertebra's own superior direction, ``|(spacing_i * axis_i . sup)_i|``
   -- the voxel size for isotropic voxels, the slice spacing for an upright vertebra on axial
   slices):
   heights are good to about half a voxel per endplate, and small lesions vanish in partial
   volume. Up to :data:`HIGH_MAX_SUPERIOR_VOXEL_MM` (1.5 mm) high; up to
   :data:`MEDIUM_MAX_SUPERIOR_VOXEL_MM` (3 mm) medium; coarser low. These are the resolutions
   at which issue 7's lesion targets are set (lesions >= 1 ml found at <= 1.5 mm voxels, >= 2 ml
   at 3 mm); at 5 mm slices half a voxel per endplate is +-5 mm on a 25 mm lumbar body -- a 20 %
   height change, the whole Genant grade-1 band -- so Genant cannot be trusted there.
2. **Truncation**: a vertebra cut by the scan edge has no heights and a partial body: low.
3. **Label plausibility** (the region's ``quality_flags``): ``implausible_size``,
   ``body_not_separated`` and ``frame_unreliable`` mean the measured object or its frame is not
   trustworthy: low. ``small_label``, ``fragmented_label``, ``body_by_canal`` (a fallback body
   separation), ``touches_scan_edge``, ``coarse_slices``, ``header_orientation_disagrees`` and
   ``anterior_from_header`` lower it to medium. Flags that are findings rather than quality
   concerns (:data:`FINDING_FLAGS`, e.g. ``cement_present``) do not count; any other, unknown
   flag lowers to medium (conservative: a flag this module does not know is a doubt).
4. **Image noise** (CT only): the noise SD in HU estimated from the data around the vertebra
   (:func:`estimate_noise_hu`). Up to :data:`NOISE_MEDIUM_HU` (50 HU) no change; up to
   :data:`NOISE_LOW_HU` (100 HU) medium; noisier low. Engineering choices: at 100 HU the
   per-voxel noise exceeds the contrast between a lytic lesion (0-35 HU) and osteoporotic
   trabecular bone (~110 HU), so lesion edges and small lesions are uncertain even after the
   detector's smoothing; 50 HU is half that contrast. A noise that cannot be estimated (too
   little soft tissue in view) is said, without lowering the class.
5. **Modality**: an MRI gives geometry only (no HU: no density, lesions or noise figure), and
   a label map without a CT likewise: at most medium, since the collapse risk then rests on the
   heights alone.

The noise estimate follows the idea of Christianson et al.'s global noise level (Christianson O,
Winslow J, Frush DP, Samei E, "Automated technique to measure noise in clinical CT
examinations", AJR 2015;205:W93-W99): the standard deviation of HU in small windows that lie
entirely in soft tissue, summarised over many windows (they take the histogram's mode;
SpineWatch takes the median, robust on the few hundred windows around one vertebra, unbiased for
Gaussian noise). The window (about 5 mm square in the slice plane), the soft-tissue range and the
box around the vertebra are engineering choices given as constants below. On the real CTs of
``../shared/data`` the estimate recovers Gaussian noise added to the scan to within a few HU
(tests/imaging/test_confidence.py).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> hu = (40.0 + rng.normal(0.0, 20.0, (60, 60, 12))).astype(np.float32)
>>> round(estimate_noise_hu(hu, np.zeros(hu.shape, bool), (0.8, 0.8, 3.0)))
20
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinewatch.core.acquisition import Modality

__all__ = [
    "FINDING_FLAGS",
    "HIGH_MAX_SUPERIOR_VOXEL_MM",
    "LOW_FLAGS",
    "MEDIUM_FLAGS",
    "MEDIUM_MAX_SUPERIOR_VOXEL_MM",
    "MIN_NOISE_WINDOWS",
    "NOISE_BOX_MARGIN_MM",
    "NOISE_LOW_HU",
    "NOISE_MAX_SLICES",
    "NOISE_MEDIUM_HU",
    "NOISE_WINDOW_MM",
    "PADDING_SHARE",
    "SOFT_TISSUE_HU",
    "SOFT_TISSUE_MEAN_HU",
    "Confidence",
    "ConfidenceClass",
    "assess_confidence",
    "estimate_noise_hu",
    "noise_around",
    "superior_voxel_mm",
]


class ConfidenceClass(enum.Enum):
    """How far the findings of one vertebra can be trusted."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """2 high, 1 medium, 0 low (``min`` of ranks is the combined class)."""
        return {"high": 2, "medium": 1, "low": 0}[self.value]

    @property
    def label(self) -> str:
        """Human-readable name (``"High"``)."""
        return self.value.capitalize()


#: Voxel width along the vertebra's superior axis (mm) up to which the class can be high ...
HIGH_MAX_SUPERIOR_VOXEL_MM = 1.5
#: ... and up to which it can be medium (coarser: low).
MEDIUM_MAX_SUPERIOR_VOXEL_MM = 3.0
#: Noise SD (HU) above which the class is at most medium ...
NOISE_MEDIUM_HU = 50.0
#: ... and above which it is low.
NOISE_LOW_HU = 100.0
#: Quality flags that make the findings untrustworthy (low).
LOW_FLAGS: dict[str, str] = {
    "implausible_size": "label of implausible size for its level",
    "body_not_separated": "body not separated from the posterior elements",
    "frame_unreliable": "vertebra frame did not fit its endplates",
}
#: Quality flags that lower the class to medium.
MEDIUM_FLAGS: dict[str, str] = {
    "small_label": "small label (partial vertebra?)",
    "fragmented_label": "label in several pieces",
    "body_by_canal": "body found by the canal fallback",
    "touches_scan_edge": "vertebra touches the scan edge",
    "coarse_slices": "coarse slices along the vertebra",
    "header_orientation_disagrees": "header orientation disagrees with the anatomy",
    "anterior_from_header": "anterior direction from the header alone",
}
#: Flags that report a finding, not a doubt about the measurement.
FINDING_FLAGS: frozenset[str] = frozenset({"cement_present"})

#: Soft tissue for the noise estimate: every voxel of a window within this HU range ...
SOFT_TISSUE_HU: tuple[float, float] = (-200.0, 300.0)
#: ... and the window's mean within this one (muscle, organs, unenhanced vessels; not fat,
#: not bone). The wide per-voxel range keeps noise tails of up to ~+-150 HU around muscle.
SOFT_TISSUE_MEAN_HU: tuple[float, float] = (-20.0, 120.0)
#: Side of the square window (mm, in the slice plane) of each local standard deviation: the odd
#: number of voxels nearest to it, at least 3 (3 mm voxels: 3; 1 mm: 5; 0.7 mm: 7). Small enough
#: to fit between anatomical edges, large enough to hold a correlated noise grain.
NOISE_WINDOW_MM = 5.0
#: Fewer qualifying windows than this and no noise figure is given.
MIN_NOISE_WINDOWS = 200
#: The noise is estimated in the vertebra's bounding box grown by this margin (mm) each way,
#: every vertebra of the label map excluded ...
NOISE_BOX_MARGIN_MM = 20.0
#: ... on at most this many slices of it (the in-plane windows need no neighbouring slice).
NOISE_MAX_SLICES = 4

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Confidence:
    """The class of one vertebra and its reasons (human-readable, most serious first)."""

    level: ConfidenceClass
    reasons: tuple[str, ...]


def superior_voxel_mm(spacing_mm: Sequence[float], axis_directions: Any, superior: Any) -> float:
    """Sampling interval (mm) of the voxel grid along the unit vector ``superior`` (world RAS+).

    ``axis_directions``: (3, 3) unit world directions of the voxel axes, one per column (as
    :attr:`spinewatch.imaging.volume.Grid.axis_directions`). The interval is the Euclidean norm
    of ``spacing_i * (axis_i . superior)``: ``s`` for isotropic ``s`` mm voxels in any
    direction, the slice spacing for an axial scan of an upright vertebra, between the two for
    a tilted one.

    >>> superior_voxel_mm((0.7, 0.7, 5.0), np.eye(3), (0.0, 0.0, 1.0))
    5.0
    >>> round(superior_voxel_mm((3.0, 3.0, 3.0), np.eye(3), (0.0, 0.6, 0.8)), 6)
    3.0
    """
    dirs = np.asarray(axis_directions, dtype=np.float64)
    sup = np.asarray(superior, dtype=np.float64)
    sup = sup / max(float(np.linalg.norm(sup)), 1e-12)
    return float(np.linalg.norm(np.asarray(spacing_mm, dtype=np.float64) * (dirs.T @ sup)))


def _plane_axes(spacing_mm: Sequence[float]) -> tuple[int, int]:
    """The two voxel axes with the finest spacing (the slice plane); the last axis on ties."""
    coarse = max(range(3), key=lambda a: (float(spacing_mm[a]), a))
    plane = [a for a in range(3) if a != coarse]
    return plane[0], plane[1]


#: A single soft-tissue HU value held by more than this share of a box's voxels is padding (a
#: crop masked to the vertebra, filled with 0): real CT noise never repeats one value that often.
PADDING_SHARE = 0.10


def _padding_value(soft: FloatArray, n_total: int) -> float | None:
    """The value repeated by more than :data:`PADDING_SHARE` of ``n_total`` voxels, if any."""
    if soft.size == 0:
        return None
    lo = SOFT_TISSUE_HU[0]
    counts = np.bincount(np.rint(soft - lo).astype(np.intp))
    top = int(np.argmax(counts))
    if counts[top] <= PADDING_SHARE * n_total:
        return None
    exact = soft[np.rint(soft - lo) == top]
    values, n = np.unique(exact, return_counts=True)
    best = int(np.argmax(n))
    return float(values[best]) if n[best] > PADDING_SHARE * n_total else None


def estimate_noise_hu(
    hu: npt.ArrayLike,
    exclude: npt.ArrayLike,
    spacing_mm: Sequence[float],
    *,
    window_mm: float = NOISE_WINDOW_MM,
) -> float | None:
    """Noise SD (HU) of a CT box: the median local SD over soft-tissue windows.

    ``hu``: (i, j, k) HU; ``exclude``: boolean of the same shape, voxels not to use (labelled
    bone); ``spacing_mm``: voxel spacing per axis, whose two finest axes are taken as the slice
    plane. Each in-plane window of about ``window_mm`` (:data:`NOISE_WINDOW_MM`) whose voxels
    all lie in :data:`SOFT_TISSUE_HU`, none excluded and none padding (:data:`PADDING_SHARE`),
    with a mean in :data:`SOFT_TISSUE_MEAN_HU`, gives a local variance; the square root of their
    median, unbiased for Gaussian noise, is returned -- None when fewer than
    :data:`MIN_NOISE_WINDOWS` windows qualify. Anatomical edges inside a window raise its
    variance, so the median (most windows are homogeneous) rather than the mean is taken.
    """
    values = np.asarray(hu, dtype=np.float64)
    skip = np.asarray(exclude, dtype=np.bool_)
    if values.ndim != 3 or values.shape != skip.shape:
        return None
    size = [1, 1, 1]
    for axis in _plane_axes(spacing_mm):
        size[axis] = max(3, 2 * round(window_mm / (2.0 * float(spacing_mm[axis]))) + 1)
    if any(n < s for n, s in zip(values.shape, size, strict=True)):
        return None
    lo, hi = SOFT_TISSUE_HU
    usable = (values >= lo) & (values <= hi) & ~skip
    padding = _padding_value(values[usable], values.size)
    if padding is not None:
        usable &= values != padding
    n = float(size[0] * size[1] * size[2])
    full = ndimage.uniform_filter(usable.astype(np.float64), size=size, mode="constant") > 1 - 1e-6
    if np.count_nonzero(full) < MIN_NOISE_WINDOWS:
        return None
    mean = ndimage.uniform_filter(values, size=size, mode="constant")
    mean_sq = ndimage.uniform_filter(values * values, size=size, mode="constant")
    var = np.maximum(mean_sq - mean * mean, 0.0) * (n / (n - 1.0))
    m_lo, m_hi = SOFT_TISSUE_MEAN_HU
    # a window of identical values is padding or a masked-out region, never scanned tissue
    keep = full & (mean >= m_lo) & (mean <= m_hi) & (var > 1e-6)
    if np.count_nonzero(keep) < MIN_NOISE_WINDOWS:
        return None
    # median of s^2 for Gaussian noise is sigma^2 * median(chi2_{n-1}) / (n-1): unbias it.
    # chdtri(dof, 0.5) is the chi2 median (what scipy.stats.chi2.median computes), without
    # importing scipy.stats: its import alone took 0.9 s of every `spinewatch analyze`
    from scipy.special import chdtri

    dof = n - 1.0
    return float(np.sqrt(np.median(var[keep]) * dof / float(chdtri(dof, 0.5))))


def noise_around(
    hu: npt.NDArray[Any],
    labels: npt.NDArray[Any],
    bbox: tuple[slice, slice, slice],
    spacing_mm: Sequence[float],
    *,
    exclude_labels: Sequence[int] | None = None,
    margin_mm: float = NOISE_BOX_MARGIN_MM,
) -> float | None:
    """:func:`estimate_noise_hu` in the box ``bbox`` (full-grid slices) grown by ``margin_mm``
    on each side, the voxels of ``exclude_labels`` (the vertebrae; None: every labelled voxel)
    grown by one voxel in the slice plane excluded -- bone texture is not noise. Organs and
    muscles that a multi-label map also labels stay in: they are the soft tissue the estimate
    needs.

    Only :data:`NOISE_MAX_SLICES` slices of the box, evenly spread along its through-plane axis,
    are read (the windows lie in the slice plane, so the estimate needs no neighbouring slice):
    the cost stays a few milliseconds per vertebra on sub-millimetre scans. ``hu`` and
    ``labels`` are the whole CT and label map on the same grid (any array-likes that index, such
    as memory maps).
    """
    box = []
    for sl, sp, n in zip(bbox, spacing_mm, np.shape(hu), strict=True):
        grow = math.ceil(margin_mm / float(sp))
        start = 0 if sl.start is None else int(sl.start)
        stop = n if sl.stop is None else int(sl.stop)
        box.append(slice(max(0, start - grow), min(n, stop + grow)))
    plane = _plane_axes(spacing_mm)
    through = next(a for a in range(3) if a not in plane)
    length = box[through].stop - box[through].start
    picks = np.unique(np.linspace(0, length - 1, min(length, NOISE_MAX_SLICES)).round().astype(int))
    box[through] = box[through].start + picks  # type: ignore[call-overload]
    crop = tuple(box)  # basic slices and one index array: only those slices are copied
    found = np.asarray(labels[crop])
    values = np.asarray(hu[crop])
    if exclude_labels is None:
        bone = found != 0
    else:
        ids = np.asarray(sorted(set(exclude_labels)), dtype=found.dtype)
        bone = np.isin(found, ids, kind="table") if ids.size else np.zeros(found.shape, bool)
    # one voxel in the slice plane (the slices read are not neighbours)
    grow_in_plane = np.zeros((3, 3, 3), dtype=bool)
    grow_in_plane[1, 1, 1] = True
    for axis in plane:
        for step in (0, 2):
            at = [1, 1, 1]
            at[axis] = step
            grow_in_plane[tuple(at)] = True
    bone = ndimage.binary_dilation(bone, structure=grow_in_plane)
    return estimate_noise_hu(values, bone, spacing_mm)


def assess_confidence(
    *,
    superior_voxel_mm: float,
    truncated: bool,
    quality_flags: Sequence[str],
    noise_hu: float | None,
    modality: Modality | str = Modality.CT,
    has_ct: bool = True,
) -> Confidence:
    """The confidence class of one vertebra from the factors of the module docstring.

    ``superior_voxel_mm``: :func:`superior_voxel_mm` of the vertebra; ``noise_hu``: the CT noise
    SD (None: not estimated, or not a CT); ``modality``: the scan's; ``has_ct``: whether voxel
    values were analysed at all (False for a label map alone).
    """
    mod = Modality.parse(modality)
    worst = ConfidenceClass.HIGH
    low: list[str] = []
    medium: list[str] = []
    notes: list[str] = []

    def lower(to: ConfidenceClass, text: str) -> None:
        nonlocal worst
        (low if to is ConfidenceClass.LOW else medium).append(text)
        if to.rank < worst.rank:
            worst = to

    vox = round(float(superior_voxel_mm), 3)  # 3.0000001 mm is a 3 mm scan
    if vox > MEDIUM_MAX_SUPERIOR_VOXEL_MM:
        lower(ConfidenceClass.LOW, f"voxel {vox:.1f} mm along the superior axis (> 3 mm)")
    elif vox > HIGH_MAX_SUPERIOR_VOXEL_MM:
        lower(ConfidenceClass.MEDIUM, f"voxel {vox:.1f} mm along the superior axis (> 1.5 mm)")
    else:
        notes.append(f"voxel {vox:.1f} mm along the superior axis")
    if truncated:
        lower(ConfidenceClass.LOW, "vertebra cut by the scan edge (partial body, no heights)")
    for flag in dict.fromkeys(quality_flags):
        if flag in FINDING_FLAGS:
            continue
        if flag in LOW_FLAGS:
            lower(ConfidenceClass.LOW, f"{LOW_FLAGS[flag]} [{flag}]")
        elif flag in MEDIUM_FLAGS:
            if flag == "coarse_slices" and vox > HIGH_MAX_SUPERIOR_VOXEL_MM:
                continue  # already said by the voxel size
            lower(ConfidenceClass.MEDIUM, f"{MEDIUM_FLAGS[flag]} [{flag}]")
        else:
            lower(ConfidenceClass.MEDIUM, f"unrecognised quality flag [{flag}]")
    if mod is not Modality.CT:
        lower(ConfidenceClass.MEDIUM, f"{mod.label}: geometry only (no HU: no density, lesions)")
    elif not has_ct:
        lower(ConfidenceClass.MEDIUM, "label map only: no density, lesions")
    elif noise_hu is None:
        notes.append("noise not estimated (too little soft tissue in view)")
    elif noise_hu > NOISE_LOW_HU:
        lower(ConfidenceClass.LOW, f"noise SD {noise_hu:.0f} HU (> {NOISE_LOW_HU:.0f} HU)")
    elif noise_hu > NOISE_MEDIUM_HU:
        lower(ConfidenceClass.MEDIUM, f"noise SD {noise_hu:.0f} HU (> {NOISE_MEDIUM_HU:.0f} HU)")
    else:
        notes.append(f"noise SD {noise_hu:.0f} HU")
    if worst is ConfidenceClass.HIGH:
        notes.insert(0, "no quality concern")
    return Confidence(level=worst, reasons=tuple(low + medium + notes))
