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
* **MRI**: no air, no fat and (almost) no value below -30 -- at most
  :data:`MAX_MR_NEGATIVE_FRACTION` of the voxels, the overshoot resampling leaves beside sharp
  edges -- in an image that is not a masked crop.
* **Masked crops** (at least :data:`FILL_FRACTION` of the voxels share one exact value, 0 or the
  minimum: everything outside a structure was blanked, so there are no surroundings to judge):
  the border of what is left is compared with its core. Cortical bone is the densest tissue on CT
  (a bright rim around trabecular bone) and a signal void on conventional MRI (very short T2*:
  Du & Bydder, NMR Biomed 2013;26:489-506), so a rim brighter than the core by at least
  :data:`RIM_CONTRAST_HU` whose upper decile reaches :data:`RIM_CORTEX_HU`, around a core in the
  trabecular range, is CT; a rim darker than the core in non-negative data is MRI. The two
  thresholds are engineering choices (partial volume at 1-1.5 mm keeps a cortical rim's upper
  decile above 300 HU; trabecular bone is 50-300 HU), not published figures.
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
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.acquisition import AcquisitionError, Modality

__all__ = [
    "ADIPOSE_HU",
    "AIR_LUNG_HU",
    "FILL_FRACTION",
    "MAX_MR_NEGATIVE_FRACTION",
    "MAX_SAMPLE_VOXELS",
    "MIN_AIR_FRACTION",
    "MIN_FAT_FRACTION",
    "MIN_SOFT_FRACTION",
    "MODALITY_TAG",
    "RIM_CONTRAST_HU",
    "RIM_CORTEX_HU",
    "ModalityDecision",
    "ModalityUndecidedError",
    "ValueFigures",
    "decide_modality",
    "detect_modality",
    "parse_modality_request",
    "value_figures",
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


def _subsample(values: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """A regular subsample (same stride on every axis) of at most MAX_SAMPLE_VOXELS, float32."""
    stride = 1
    while values.size / stride**values.ndim > MAX_SAMPLE_VOXELS:
        stride += 1
    view = values[(slice(None, None, stride),) * values.ndim]
    return np.asarray(view, dtype=np.float32)


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


def _rim_decision(f: ValueFigures) -> Modality | None:
    if f.rim_median is None or f.rim_p90 is None or f.core_median is None:
        return None
    lo, hi = RIM_CORE_HU
    if (
        f.rim_p90 >= RIM_CORTEX_HU
        and f.rim_median - f.core_median >= RIM_CONTRAST_HU
        and lo <= f.core_median <= hi
    ):
        return Modality.CT
    if f.rim_median < f.core_median and f.negative_fraction <= MAX_MR_NEGATIVE_FRACTION:
        return Modality.MR
    return None


def detect_modality(values: npt.NDArray[Any], *, where: str) -> ModalityDecision:
    """CT or MRI from the voxel values (see the module docstring), or ModalityUndecidedError.

    ``values``: the image as stored after its scaling (HU for a CT), any shape (3D for the
    masked-crop rule). ``where`` names the file in messages.
    """
    f = value_figures(values)
    if f.n_voxels < _MIN_VOXELS or f.high <= f.low:
        raise ModalityUndecidedError(
            f"{where}: cannot tell CT from MRI from the voxel values ({f.n_voxels} varying "
            f"voxels to judge; {f.describe()}); {_ASK}"
        )
    modality: Modality | None = None
    why = ""
    if f.air_fraction >= MIN_AIR_FRACTION:
        modality, why = Modality.CT, "air/lung at the Hounsfield scale's fixed values"
    elif f.fat_fraction >= MIN_FAT_FRACTION and f.soft_fraction >= MIN_SOFT_FRACTION:
        modality, why = Modality.CT, "fat and soft tissue at their Hounsfield values"
    elif f.fill_value is not None:
        modality = _rim_decision(f)
        why = (
            "masked crop whose rim is brighter than its core, like cortical bone on CT"
            if modality is Modality.CT
            else "masked crop whose rim is darker than its core, like cortical bone on MRI"
        )
    elif f.negative_fraction <= MAX_MR_NEGATIVE_FRACTION:
        modality, why = Modality.MR, "non-negative signal without air or fat values"
    if modality is None:
        raise ModalityUndecidedError(
            f"{where}: cannot tell CT from MRI from the voxel values ({f.describe()}); {_ASK}"
        )
    evidence = f"detected from the voxel values: {why} ({f.describe()})"
    log.info("%s: %s %s", where, modality.value, evidence)
    return ModalityDecision(modality, "detected", evidence)


def decide_modality(
    requested: Modality | str | None,
    *,
    where: str,
    header_value: str | None = None,
    from_dicom: bool = False,
    values: npt.NDArray[Any] | None = None,
) -> ModalityDecision:
    """The modality of one image, by the order of authority of the module docstring.

    ``requested``: the user's choice (``"auto"``/None, ``"ct"``, ``"mr"``...). ``from_dicom``:
    the image is DICOM and ``header_value`` its Modality value (None/"" when empty; only
    ``CT``/``MR`` reach here). ``values``: the image's values, needed only when detection runs.
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
    found_by_values = detect_modality(values, where=where)
    return ModalityDecision(found_by_values.modality, "detected", prefix + found_by_values.evidence)
