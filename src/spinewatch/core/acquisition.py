"""How a scan was acquired: its modality and, for CT, its contrast phase.

Both change what the image can say:

* **Modality.** Only CT voxels are Hounsfield units. An MRI (any weighting) carries arbitrary
  signal units, so trabecular density, lytic lesions and cement cannot be measured from its values:
  an MRI gives geometry only (centroids, heights, Genant grade, change since the prior scan), and
  the density, lesion and cement fields of its report are null with the reason
  :data:`MRI_NOT_ASSESSED`.
* **Contrast phase.** Iodinated contrast raises the attenuation of vertebral marrow, so thresholds
  derived on native CT (Pickhardt 2013) are shifted up by the phase's typical enhancement before
  they are applied. The offsets are those of TotalSegmentator's vertebral-body report
  (wasserth/TotalSegmentator): +20 HU arterial, +14.75 HU portal-venous. SpineWatch adds two
  documented engineering choices: a delayed phase takes the portal-venous offset (marrow
  enhancement falls after the portal-venous peak; no separate published figure is used), and a
  contrast CT of unknown phase takes the larger arterial offset, so an unknown phase never hides a
  low density.

>>> ContrastPhase.parse("portal-venous").density_offset_hu
14.75
>>> Modality.parse("MR").has_hounsfield_units
False
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from spinewatch.core._enum import parse_enum
from spinewatch.core.errors import InputError

__all__ = [
    "MRI_NOT_ASSESSED",
    "Acquisition",
    "AcquisitionError",
    "ContrastPhase",
    "Modality",
]

#: The reason recorded for every density, lesion and cement field of an MRI report.
MRI_NOT_ASSESSED = "MRI: not assessed"


class AcquisitionError(InputError):
    """A modality or contrast phase that SpineWatch does not know."""


class Modality(enum.Enum):
    """The imaging modality of a study (DICOM Modality values)."""

    CT = "CT"
    MR = "MR"

    @property
    def label(self) -> str:
        """Human-readable name (``"MRI"``)."""
        return "CT" if self is Modality.CT else "MRI"

    @property
    def has_hounsfield_units(self) -> bool:
        """True when the voxel values are Hounsfield units (CT only)."""
        return self is Modality.CT

    @classmethod
    def parse(cls, value: Modality | str) -> Modality:
        """``"CT"``, ``"MR"`` (also ``"MRI"``), any case, or a member; else AcquisitionError."""
        if isinstance(value, str) and value.strip().upper() == "MRI":
            return cls.MR
        return parse_enum(cls, value, what="modality", error=AcquisitionError)


class ContrastPhase(enum.Enum):
    """The contrast phase of a CT; ``NATIVE`` is a CT without intravenous contrast."""

    NATIVE = "native"
    ARTERIAL = "arterial"
    PORTAL_VENOUS = "portal_venous"
    DELAYED = "delayed"
    UNKNOWN_PHASE = "contrast_unknown_phase"

    @property
    def label(self) -> str:
        """Human-readable name (``"portal-venous"``)."""
        return {
            "native": "native (no contrast)",
            "arterial": "arterial",
            "portal_venous": "portal-venous",
            "delayed": "delayed",
            "contrast_unknown_phase": "contrast, phase unknown",
        }[self.value]

    @property
    def is_contrast(self) -> bool:
        """True for every phase but :attr:`NATIVE`."""
        return self is not ContrastPhase.NATIVE

    @property
    def density_offset_hu(self) -> float:
        """HU added to native-CT density thresholds for this phase (see the module docstring)."""
        return {
            "native": 0.0,
            "arterial": 20.0,
            "portal_venous": 14.75,
            "delayed": 14.75,
            "contrast_unknown_phase": 20.0,
        }[self.value]

    @classmethod
    def parse(cls, value: ContrastPhase | str) -> ContrastPhase:
        """A member, its value or name (``"portal-venous"``, ``"NATIVE"``...); else
        AcquisitionError. ``"unknown"`` and ``"contrast"`` read as :attr:`UNKNOWN_PHASE`,
        ``"venous"`` as :attr:`PORTAL_VENOUS`, ``"none"``/``"non_contrast"`` as :attr:`NATIVE`."""
        if isinstance(value, str):
            token = "_".join(value.strip().lower().replace("-", " ").split())
            alias = {
                "unknown": cls.UNKNOWN_PHASE,
                "contrast": cls.UNKNOWN_PHASE,
                "venous": cls.PORTAL_VENOUS,
                "portal": cls.PORTAL_VENOUS,
                "none": cls.NATIVE,
                "non_contrast": cls.NATIVE,
                "noncontrast": cls.NATIVE,
                "plain": cls.NATIVE,
            }.get(token)
            if alias is not None:
                return alias
        return parse_enum(cls, value, what="contrast phase", error=AcquisitionError)


#: Where a modality or contrast phase came from: the DICOM header, the user (a CLI option or a form
#: field), detection from the voxel values, or nothing at all (the default was assumed).
SOURCES = ("dicom", "user", "detected", "assumed")


@dataclass(frozen=True)
class Acquisition:
    """The modality and contrast phase of one scan, each with where it came from and why.

    ``*_source`` is one of :data:`SOURCES`; ``*_evidence`` a short human-readable reason (the
    DICOM tag and value, the detection figures...), shown in the report. A phase other than
    native on an MRI is refused.
    """

    modality: Modality = Modality.CT
    modality_source: str = "assumed"
    modality_evidence: str = ""
    contrast_phase: ContrastPhase = ContrastPhase.NATIVE
    contrast_source: str = "assumed"
    contrast_evidence: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "modality", Modality.parse(self.modality))
        object.__setattr__(self, "contrast_phase", ContrastPhase.parse(self.contrast_phase))
        for name in ("modality_source", "contrast_source"):
            if getattr(self, name) not in SOURCES:
                raise AcquisitionError(
                    f"{name} {getattr(self, name)!r}: expected one of {', '.join(SOURCES)}"
                )
        if self.modality is Modality.MR and self.contrast_phase is not ContrastPhase.NATIVE:
            raise AcquisitionError(
                f"contrast phase {self.contrast_phase.value!r} is a CT phase; an MRI has none"
            )
