"""Which modality a scan is -- CT in Hounsfield units or MRI in arbitrary signal -- at input.

Order of authority (:func:`decide_modality`):

1. **DICOM**: the Modality tag (0008,0060). ``CT`` and ``MR`` are read (anything else is refused
   by :mod:`spinewatch.imaging.dicom`, naming the tag and value). A modality the user gave must
   agree with the tag; a disagreement is refused rather than silently resolved.
2. **The user** (``spinewatch analyze --modality ct|mr``, the upload form, the batch manifest):
   decides for NIfTI, which has no modality field.
3. **Detection from the voxel values** (:func:`detect_modality`; NIfTI with ``auto``, or DICOM
   with an empty Modality value). It refuses when unsure -- the caller must then say which it is.

Detection rests on what only a calibrated CT has: fixed tissue values on the Hounsfield scale.

* **Air/lung**: air is -1000 HU by the definition of the scale and aerated lung lies between air
  and soft tissue; at least :data:`MIN_AIR_FRACTION` of the voxels in :data:`AIR_LUNG_HU` means
  CT. A magnitude MRI is non-negative (air is dark, near 0), so it never has such values.
* **Fat with soft tissue**: adipose tissue at -190..-30 HU (the fixed range of Yoshizumi et al.,
  Radiology 1999;211:283-286) in at least :data:`MIN_FAT_FRACTION` of the voxels together with
  soft tissue (-30..100 HU) in at least :data:`MIN_SOFT_FRACTION` means CT (a crop with no air,
  such as the TPTBox CT crop, still has paraspinal fat).
* **Vertebrae with cortical rims** (only with the label map, and only when there is neither air
  nor fat): cortical bone is the densest tissue on CT -- a bright rim around trabecular bone and
  the brightest thing in the image -- and a signal void on conventional MRI (very short T2*:
  Du & Bydder, NMR Biomed 2013;26:489-506). The vertebra labels' border voxels against their
  cores: a rim brighter by at least :data:`RIM_CONTRAST_HU` whose upper decile reaches
  :data:`RIM_CORTEX_HU`, around a core in the trabecular range :data:`RIM_CORE_HU`, with the
  vertebrae's 99th percentile at least :data:`BRIGHTEST_RATIO` of that of everything else, is
  CT (a tight CT crop, or a synthetic phantom). The brightest-tissue test keeps out a
  fat-suppressed MRI whose vertebra borders catch bright disc and CSF: there fluid, not bone,
  is brightest.
* **MRI**: no air, no fat and (almost) no value below -30 -- at most
  :data:`MAX_MR_NEGATIVE_FRACTION` of the voxels, the overshoot resampling leaves beside sharp
  edges -- in an image that is not a masked crop, *and* a label map none of whose structures
  (any label, vertebra or not, whatever the convention) has a cortical-bone rim by the rim rule
  below. The real MRIs' vertebra rims are 0.7-0.8 x their cores, the real CTs' 2-5 x. Without a
  label map such an image is refused: a tight CT crop of soft tissue and bone (a synthetic
  phantom, say) has neither air nor fat either. An MRI whose non-vertebra structures show
  bright borders (fat around an organ) may be refused too -- the safe side: the user says MR.
* **Masked crops** (at least :data:`FILL_FRACTION` of the voxels share one exact value, 0 or the
  minimum: everything outside a structure was blanked, so there are no surroundings to judge):
  the border of what is left is compared with its core by the same rim rule (without the
  brightest-tissue test: nothing else is left); a rim darker than the core in non-negative data
  is MRI. The rim thresholds are engineering choices (partial volume at 1-3 mm keeps a cortical
  rim's upper decile above 300 HU -- 381-864 HU on the real CTs; trabecular bone is 50-300 HU),
  not published figures.
* Anything else -- e.g. a crop with neither air nor fat but negative values -- is refused with
  the figures, asking for the modality.

The fractions are engineering choices set well below what the real scans show (the CTs: >= 3 %
air/lung or >= 26 % fat; the MRIs: no value below -47) and well above what one stray voxel can
give. Large volumes are judged on a regular subsample of at most :data:`MAX_SAMPLE_VOXELS`.

>>> rng = np.random.default_rng(0)
>>> ct = np.concatenate([np.full(2000, -1000.0), rng.normal(40, 10, 8000)]).reshape(10, 10, 100)
>>> detect_modality(ct, where="x").modality.value
'CT'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.acquisition import AcquisitionError, Modality

__all__ = [
    "ADIPOSE_HU",
    "AIR_LUNG_HU",
    "BRIGHTEST_RATIO",
    "FILL_FRACTION",
    "MAX_MR_NEGATIVE_FRACTION",
    "MAX_SAMPLE_VOXELS",
    "MIN_AIR_FRACTION",
    "MIN_FAT_FRACTION",
    "MIN_SOFT_FRACTION",
    "MODALITY_TAG",
    "RIM_CONTRAST_HU",
    "RIM_CORE_HU",
    "RIM_CORTEX_HU",
    "ModalityDecision",
    "ModalityUndecidedError",
    "ValueFigures",
    "VertebraFigures",
    "decide_modality",
    "detect_modality",
    "parse_modality_request",
    "value_figures",
    "vertebra_figures",
]

log = logging.getLogger(__name__)

#: How messages name the DICOM Modality attribute.
MODALITY_TAG = "Modality (0008,0060)"

AIR_LUNG_HU = (-1100.0, -500.0)
ADIPOSE_HU = (-190.0, -30.0)
SOFT_TISSUE_HU = (-30.0, 100.0)
MIN_AIR_FRACTION = 0.005
MIN_FAT_FRACTION = 0.02
MIN_SOFT_FRACTION = 0.05
MAX_MR_NEGATIVE_FRACTION = 0.001
FILL_FRACTION = 0.4
RIM_CONTRAST_HU = 50.0
RIM_CORTEX_HU = 300.0
#: Core (trabecular) median accepted by the masked-crop CT rule, HU.
RIM_CORE_HU = (-100.0, 500.0)
BRIGHTEST_RATIO = 0.8
MAX_SAMPLE_VOXELS = 4_000_000
_MIN_VOXELS = 100
_MIN_RIM_VOXELS = 100

_ASK = "say which it is (--modality ct|mr, or the upload form's Modality field)"


class ModalityUndecidedError(AcquisitionError):
    """The voxel values do not show whether a scan is CT or MRI; the user must say which."""


@dataclass(frozen=True)
class ModalityDecision:
    """A decided modality, where it came from (``dicom``/``user``/``detected``) and why."""

    modality: Modality
    source: str
    evidence: str


@dataclass(frozen=True)
class ValueFigures:
    """The figures detection looks at (fractions of the judged voxels, 0-1; values as stored).

    ``fill_value``/``fill_fraction``: the exact value that blanks a masked crop (None when no
    value fills :data:`FILL_FRACTION` of the voxels); the other figures are then of the voxels
    left. ``rim_*``/``core_median``: masked crops only.
    """

    n_voxels: int
    fill_value: float | None
    fill_fraction: float
    air_fraction: float
    fat_fraction: float
    soft_fraction: float
    negative_fraction: float
    low: float
    high: float
    rim_median: float | None = None
    rim_p90: float | None = None
    core_median: float | None = None

    def describe(self) -> str:
        """One line of the figures, for evidence and refusal messages."""
        parts = []
        if self.fill_value is not None:
            parts.append(f"masked: {self.fill_fraction:.0%} of voxels exactly {self.fill_value:g}")
        parts += [
            f"{self.air_fraction:.1%} at {AIR_LUNG_HU[0]:g}..{AIR_LUNG_HU[1]:g} (air/lung)",
            f"{self.fat_fraction:.1%} at {ADIPOSE_HU[0]:g}..{ADIPOSE_HU[1]:g} (fat)",
            f"{self.soft_fraction:.1%} at {SOFT_TISSUE_HU[0]:g}..{SOFT_TISSUE_HU[1]:g}",
            f"{self.negative_fraction:.2%} below {ADIPOSE_HU[1]:g}",
            f"0.5-99.5th percentile {self.low:.4g}..{self.high:.4g}",
        ]
        if self.rim_median is not None and self.core_median is not None:
            parts.append(
                f"rim median {self.rim_median:.0f} (upper decile {self.rim_p90:.0f}) vs core "
                f"median {self.core_median:.0f}"
            )
        return "; ".join(parts)


def parse_modality_request(value: Modality | str | None) -> Modality | None:
    """``"auto"``/None -> None (decide from the header or the values); else the Modality."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    return Modality.parse(value)


def _strided(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A regular view (same stride on every axis) of at most MAX_SAMPLE_VOXELS voxels."""
    stride = 1
    while values.size / stride**values.ndim > MAX_SAMPLE_VOXELS:
        stride += 1
    return values[(slice(None, None, stride),) * values.ndim]


def _subsample(values: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """:func:`_strided` as float32."""
    return np.asarray(_strided(values), dtype=np.float32)


def _fill(sample: npt.NDArray[np.float32]) -> tuple[float | None, float]:
    """The exact value blanking a masked crop (0 or the minimum) and its fraction, if any."""
    best: tuple[float | None, float] = (None, 0.0)
    for candidate in {0.0, float(sample.min())}:
        fraction = float(np.count_nonzero(sample == candidate)) / sample.size
        if fraction > best[1]:
            best = (candidate, fraction)
    return best if best[1] >= FILL_FRACTION else (None, best[1])


def _fraction(values: npt.NDArray[np.float32], lo: float, hi: float) -> float:
    return float(np.count_nonzero((values >= lo) & (values <= hi))) / values.size


def _rim_figures(
    sample: npt.NDArray[np.float32], fill: float
) -> tuple[float | None, float | None, float | None]:
    """Median and 90th percentile of the masked structure's border, median of its core."""
    from scipy import ndimage

    kept = sample != fill
    solid = ndimage.binary_fill_holes(kept)
    rim = solid & ~ndimage.binary_erosion(solid) & kept
    core = ndimage.binary_erosion(solid, iterations=3) & kept
    if np.count_nonzero(rim) < _MIN_RIM_VOXELS or np.count_nonzero(core) < _MIN_RIM_VOXELS:
        return None, None, None
    rim_values = sample[rim]
    return (
        float(np.median(rim_values)),
        float(np.percentile(rim_values, 90)),
        float(np.median(sample[core])),
    )


def value_figures(values: npt.NDArray[Any]) -> ValueFigures:
    """The detection figures of a volume (any shape, any real dtype; values as stored).

    Non-finite values are ignored (the loaders refuse them before detection anyway).
    """
    sample = _subsample(values)
    if sample.ndim == 3 and not np.all(np.isfinite(sample)):
        sample = np.where(np.isfinite(sample), sample, np.float32(0))
    fill, fill_fraction = _fill(sample) if sample.size else (None, 0.0)
    judged = sample[sample != fill] if fill is not None else sample.reshape(-1)
    if judged.size == 0:
        return ValueFigures(0, fill, fill_fraction, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    low, high = (float(v) for v in np.percentile(judged, [0.5, 99.5]))
    rim_median = rim_p90 = core_median = None
    if fill is not None and sample.ndim == 3:
        rim_median, rim_p90, core_median = _rim_figures(sample, fill)
    return ValueFigures(
        n_voxels=int(judged.size),
        fill_value=fill,
        fill_fraction=fill_fraction,
        air_fraction=_fraction(judged, *AIR_LUNG_HU),
        fat_fraction=_fraction(judged, *ADIPOSE_HU),
        soft_fraction=_fraction(judged, *SOFT_TISSUE_HU),
        negative_fraction=float(np.count_nonzero(judged < ADIPOSE_HU[1])) / judged.size,
        low=low,
        high=high,
        rim_median=rim_median,
        rim_p90=rim_p90,
        core_median=core_median,
    )


@dataclass(frozen=True)
class VertebraFigures:
    """How the label map's structures look in the image (values as stored).

    Pooled over the vertebrae the label convention names (None when it names none): border
    ("rim") median and 90th percentile, core median, 99th percentile inside the vertebrae and of
    the rest of the image. Over every labelled structure (vertebra or not, largest first, at
    most :data:`MAX_STRUCTURES`): how many were examined and how many have a rim like cortical
    bone on CT.
    """

    n_vertebrae: int
    rim_median: float | None
    rim_p90: float | None
    core_median: float | None
    vertebra_p99: float | None
    outside_p99: float | None
    n_structures: int
    n_cortical: int

    def describe(self) -> str:
        parts = [f"{self.n_cortical} of {self.n_structures} labelled structures with a "
                 "cortical-bone rim"]  # fmt: skip
        if self.n_vertebrae and self.rim_median is not None and self.core_median is not None:
            parts.insert(
                0,
                f"{self.n_vertebrae} vertebrae: rim median {self.rim_median:.0f} (upper decile "
                f"{self.rim_p90:.0f}) vs core median {self.core_median:.0f}, 99th percentile "
                f"{self.vertebra_p99:.0f} inside vs {self.outside_p99:.0f} outside",
            )
        return "; ".join(parts)


#: Labelled structures examined at most (largest first) for a cortical-bone rim.
MAX_STRUCTURES = 40


def _rim_and_core(
    values: npt.NDArray[Any], labels: npt.NDArray[Any], label: int, box: Any
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
    from scipy import ndimage

    mask = labels[box] == label
    core = ndimage.binary_erosion(mask, iterations=2)
    if np.count_nonzero(core) < 20:
        return None
    crop = np.asarray(values[box], dtype=np.float32)
    return crop[mask & ~ndimage.binary_erosion(mask)], crop[core], crop[mask]


def vertebra_figures(
    values: npt.NDArray[Any], labels: npt.NDArray[Any], vertebra_ids: Sequence[int]
) -> VertebraFigures | None:
    """:class:`VertebraFigures` of ``labels`` (on the grid of ``values``; ``vertebra_ids``: the
    labels that are vertebrae, possibly none); None when no structure has a rim and a core."""
    from scipy import ndimage

    if labels.shape != values.shape:
        return None
    int_labels = labels if labels.dtype.kind in "iu" else labels.astype(np.int64)
    boxes = ndimage.find_objects(int_labels)
    sizes = {
        i + 1: int(np.prod([sl.stop - sl.start for sl in box]))
        for i, box in enumerate(boxes)
        if box is not None
    }
    vertebrae = {int(i) for i in vertebra_ids} & set(sizes)
    ranked = sorted(sizes, key=lambda lab: -sizes[lab])[:MAX_STRUCTURES]
    n_structures = n_cortical = 0
    rims, cores, inside = [], [], []
    for label in sorted(set(ranked) | vertebrae):
        parts = _rim_and_core(values, int_labels, label, boxes[label - 1])
        if parts is None:
            continue
        rim, core, whole = parts
        n_structures += 1
        n_cortical += _cortical_rim(
            float(np.median(rim)), float(np.percentile(rim, 90)), float(np.median(core))
        )
        if label in vertebrae:
            rims.append(rim)
            cores.append(core)
            inside.append(whole)
    if n_structures == 0:
        return None
    if not rims:
        return VertebraFigures(0, None, None, None, None, None, n_structures, n_cortical)
    rim_values, core_values, vertebra_values = (np.concatenate(x) for x in (rims, cores, inside))
    sampled = _subsample(values)
    outside = sampled[~np.isin(_strided(labels), sorted(vertebrae))]
    return VertebraFigures(
        n_vertebrae=len(rims),
        rim_median=float(np.median(rim_values)),
        rim_p90=float(np.percentile(rim_values, 90)),
        core_median=float(np.median(core_values)),
        vertebra_p99=float(np.percentile(vertebra_values, 99)),
        outside_p99=float(np.percentile(outside, 99)) if outside.size else float("-inf"),
        n_structures=n_structures,
        n_cortical=n_cortical,
    )


def _cortical_rim(rim_median: float, rim_p90: float, core_median: float) -> bool:
    """A rim like cortical bone on CT around a core like trabecular bone (HU)."""
    lo, hi = RIM_CORE_HU
    return (
        rim_p90 >= RIM_CORTEX_HU
        and rim_median - core_median >= RIM_CONTRAST_HU
        and lo <= core_median <= hi
    )


def _vertebrae_ct(v: VertebraFigures) -> bool:
    if v.rim_median is None or v.rim_p90 is None or v.core_median is None:
        return False
    if v.vertebra_p99 is None or v.outside_p99 is None:
        return False
    brightest = v.vertebra_p99 >= BRIGHTEST_RATIO * v.outside_p99
    return _cortical_rim(v.rim_median, v.rim_p90, v.core_median) and brightest


def _rim_decision(f: ValueFigures) -> Modality | None:
    if f.rim_median is None or f.rim_p90 is None or f.core_median is None:
        return None
    if _cortical_rim(f.rim_median, f.rim_p90, f.core_median):
        return Modality.CT
    if f.rim_median < f.core_median and f.negative_fraction <= MAX_MR_NEGATIVE_FRACTION:
        return Modality.MR
    return None


Vertebrae = VertebraFigures | Callable[[], VertebraFigures | None] | None


def detect_modality(
    values: npt.NDArray[Any],
    *,
    where: str,
    vertebrae: Vertebrae = None,
) -> ModalityDecision:
    """CT or MRI from the voxel values (see the module docstring), or ModalityUndecidedError.

    ``values``: the image as stored after its scaling (HU for a CT), any shape (3D for the
    masked-crop rule). ``vertebrae``: :func:`vertebra_figures` of the label map's vertebrae, or
    a function computing them (called only when air and fat do not decide), when a label map is
    at hand. ``where`` names the file in messages.
    """
    f = value_figures(values)
    if callable(vertebrae):
        decided = f.air_fraction >= MIN_AIR_FRACTION or (
            f.fat_fraction >= MIN_FAT_FRACTION and f.soft_fraction >= MIN_SOFT_FRACTION
        )
        vertebrae = None if decided else vertebrae()
    figures = f.describe() + (f"; {vertebrae.describe()}" if vertebrae is not None else "")
    if f.n_voxels < _MIN_VOXELS or f.high <= f.low:
        raise ModalityUndecidedError(
            f"{where}: cannot tell CT from MRI from the voxel values ({f.n_voxels} varying "
            f"voxels to judge; {figures}); {_ASK}"
        )
    modality: Modality | None = None
    why = ""
    no_bone_rim = vertebrae is not None and vertebrae.n_cortical == 0
    if f.air_fraction >= MIN_AIR_FRACTION:
        modality, why = Modality.CT, "air/lung at the Hounsfield scale's fixed values"
    elif f.fat_fraction >= MIN_FAT_FRACTION and f.soft_fraction >= MIN_SOFT_FRACTION:
        modality, why = Modality.CT, "fat and soft tissue at their Hounsfield values"
    elif vertebrae is not None and _vertebrae_ct(vertebrae):
        modality, why = Modality.CT, "vertebrae with bright cortical rims, the brightest tissue"
    elif f.fill_value is not None:
        modality = _rim_decision(f)
        why = (
            "masked crop whose rim is brighter than its core, like cortical bone on CT"
            if modality is Modality.CT
            else "masked crop whose rim is darker than its core, like cortical bone on MRI"
        )
    elif f.negative_fraction <= MAX_MR_NEGATIVE_FRACTION and no_bone_rim:
        modality, why = (
            Modality.MR,
            "non-negative signal without air or fat values, no labelled structure with a "
            "cortical-bone rim",
        )
    if modality is None:
        if vertebrae is None and f.negative_fraction <= MAX_MR_NEGATIVE_FRACTION:
            figures += "; no label map to look for cortical-bone rims"
        raise ModalityUndecidedError(
            f"{where}: cannot tell CT from MRI from the voxel values ({figures}); {_ASK}"
        )
    evidence = f"detected from the voxel values: {why} ({figures})"
    log.info("%s: %s %s", where, modality.value, evidence)
    return ModalityDecision(modality, "detected", evidence)


def decide_modality(
    requested: Modality | str | None,
    *,
    where: str,
    header_value: str | None = None,
    from_dicom: bool = False,
    values: npt.NDArray[Any] | None = None,
    vertebrae: Vertebrae = None,
) -> ModalityDecision:
    """The modality of one image, by the order of authority of the module docstring.

    ``requested``: the user's choice (``"auto"``/None, ``"ct"``, ``"mr"``...). ``from_dicom``:
    the image is DICOM and ``header_value`` its Modality value (None/"" when empty; only
    ``CT``/``MR`` reach here). ``values``: the image's values, needed only when detection runs;
    ``vertebrae``: the label map's :func:`vertebra_figures`, when at hand.
    Raises AcquisitionError when the user contradicts the header, ModalityUndecidedError when
    detection cannot tell.
    """
    wanted = parse_modality_request(requested)
    prefix = ""
    if from_dicom:
        tag_value = (header_value or "").strip().upper()
        if tag_value:
            found = Modality.parse(tag_value)
            if wanted is not None and wanted is not found:
                raise AcquisitionError(
                    f"{where}: DICOM tag {MODALITY_TAG} is {tag_value!r} but {wanted.label} was "
                    f"requested; the header decides (omit the modality or fix it)"
                )
            return ModalityDecision(found, "dicom", f"DICOM {MODALITY_TAG} {tag_value!r}")
        prefix = f"DICOM {MODALITY_TAG} is empty; "
    if wanted is not None:
        return ModalityDecision(wanted, "user", f"{prefix}set by the user")
    if values is None:
        raise ModalityUndecidedError(f"{where}: {prefix}no voxel values to judge; {_ASK}")
    found_by_values = detect_modality(values, where=where, vertebrae=vertebrae)
    return ModalityDecision(found_by_values.modality, "detected", prefix + found_by_values.evidence)
