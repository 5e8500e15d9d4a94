"""What a segmenter returns: the label map plus how sure it is of each level name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spinewatch.core.errors import InputError
from spinewatch.imaging.volume import LabelVolume

__all__ = [
    "NoSpineError",
    "NotCtError",
    "ScoutError",
    "SegmentationResult",
    "VertebraEvidence",
    "write_label_map",
]


class NotCtError(InputError):
    """The image is not a CT in Hounsfield units (an MRI, a photograph, a mask...)."""


class ScoutError(InputError):
    """A scout/localiser (one or a few slices), not a volume that can be segmented."""


class NoSpineError(InputError):
    """A CT in which no vertebral column was found."""


@dataclass(frozen=True)
class VertebraEvidence:
    """One segmented vertebra: its level name, label id (TotalSegmentator v2 "total"),
    ``level_confirmed`` (named from a landmark in view), volume in ml, whether ribs were seen
    leaving it (None when not assessed) and whether it touches the edge of the field of view."""

    level: str
    label: int
    level_confirmed: bool
    volume_ml: float
    rib_bearing: bool | None
    truncated: bool

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "label": self.label,
            "level_confirmed": self.level_confirmed,
            "volume_ml": round(self.volume_ml, 2),
            "rib_bearing": self.rib_bearing,
            "truncated": self.truncated,
        }


@dataclass(frozen=True, eq=False)
class SegmentationResult:
    """A vertebra label map on the CT's own grid, in TotalSegmentator v2 "total" ids, with the
    segmenter that made it and the evidence for its level names.

    ``level_method``: ``sacrum``, ``ribs``, ``sacrum+ribs``, ``relative`` (no landmark: names
    are a guess, every ``level_confirmed`` is false) or ``model`` (TotalSegmentator's own);
    ``level_evidence``: one sentence per fact used.
    """

    labels: LabelVolume
    segmenter: str
    version: str
    level_method: str
    levels_confirmed: bool
    level_evidence: tuple[str, ...]
    vertebrae: tuple[VertebraEvidence, ...]
    #: the image noise the segmenter measured (SD, HU, on its working grid) and the Gaussian
    #: it smoothed with before its HU decisions (sigma, mm; None: not smoothed)
    noise_hu: float | None = None
    smoothing_sigma_mm: float | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The record a report keeps (``segmentation`` key)."""
        return {
            "segmenter": self.segmenter,
            "version": self.version,
            "labels_convention": "totalsegmentator",
            "level_method": self.level_method,
            "levels_confirmed": self.levels_confirmed,
            "level_evidence": list(self.level_evidence),
            "vertebrae": [v.to_json_dict() for v in self.vertebrae],
            "noise_hu": None if self.noise_hu is None else round(self.noise_hu, 1),
            "smoothing_sigma_mm": (
                None if self.smoothing_sigma_mm is None else round(self.smoothing_sigma_mm, 2)
            ),
        }


def write_label_map(labels: LabelVolume, path: Path | str) -> Path:
    """Write ``labels`` as NIfTI (uint8, the grid's affine as sform and qform) to ``path``."""
    import nibabel as nib

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    img: Any = nib.Nifti1Image(np.asarray(labels.labels, dtype=np.uint8), labels.grid.affine)  # type: ignore[no-untyped-call]
    img.header.set_xyzt_units("mm")
    img.set_sform(labels.grid.affine, code=1)
    img.set_qform(labels.grid.affine, code=1)
    nib.save(img, str(out))
    return out
