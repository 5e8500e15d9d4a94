"""Diagnoses treated by a vertebroplasty programme.

Myeloma and metastases (with their primary tumour) destroy vertebrae from within and put them at
risk of collapse; osteoporotic fractures, haemangiomas and disc herniations (treated by laser
disc decompression) are the programme's other indications.

>>> Diagnosis.parse("metastasis", "breast").label
'Metastasis (breast)'
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from spinewatch.core._enum import parse_enum
from spinewatch.core.errors import InputError

__all__ = ["Diagnosis", "DiagnosisError", "DiagnosisKind", "PrimaryTumour"]


class DiagnosisError(InputError):
    """An unknown diagnosis or primary tumour, or a primary where none belongs."""


class DiagnosisKind(enum.Enum):
    """The kind of disease behind the treated lesion."""

    MYELOMA = "myeloma"
    METASTASIS = "metastasis"
    OSTEOPOROTIC_FRACTURE = "osteoporotic_fracture"
    HAEMANGIOMA = "haemangioma"
    DISC_HERNIATION = "disc_herniation"

    @property
    def label(self) -> str:
        """Human-readable name (``"Osteoporotic fracture"``)."""
        return self.value.replace("_", " ").capitalize()

    @property
    def is_malignant(self) -> bool:
        """True for myeloma and metastasis."""
        return self in (DiagnosisKind.MYELOMA, DiagnosisKind.METASTASIS)

    @classmethod
    def parse(cls, value: DiagnosisKind | str) -> DiagnosisKind:
        """A member, its value or name (any case); else :class:`DiagnosisError`."""
        return parse_enum(cls, value, what="diagnosis", error=DiagnosisError)


class PrimaryTumour(enum.Enum):
    """Primary tumour of a bone metastasis."""

    LUNG = "lung"
    BREAST = "breast"
    THYROID = "thyroid"
    KIDNEY = "kidney"
    PROSTATE = "prostate"
    OTHER = "other"

    @property
    def label(self) -> str:
        """Human-readable name (``"Breast"``)."""
        return self.value.capitalize()

    @classmethod
    def parse(cls, value: PrimaryTumour | str) -> PrimaryTumour:
        """A member, its value or name (any case); else :class:`DiagnosisError`."""
        return parse_enum(cls, value, what="primary tumour", error=DiagnosisError)


@dataclass(frozen=True)
class Diagnosis:
    """A diagnosis; ``primary`` is required for a metastasis and forbidden otherwise.

    Strings are converted on construction (``Diagnosis("metastasis", "lung")``).
    """

    kind: DiagnosisKind
    primary: PrimaryTumour | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", DiagnosisKind.parse(self.kind))
        if self.primary is not None:
            object.__setattr__(self, "primary", PrimaryTumour.parse(self.primary))
        if self.kind is DiagnosisKind.METASTASIS and self.primary is None:
            raise DiagnosisError(
                "diagnosis 'metastasis' needs a primary tumour; expected one of "
                + ", ".join(repr(p.value) for p in PrimaryTumour),
                field="primary_tumour",
            )
        if self.kind is not DiagnosisKind.METASTASIS and self.primary is not None:
            raise DiagnosisError(
                f"primary tumour {self.primary.value!r} given for diagnosis "
                f"{self.kind.value!r}; a primary is only expected for 'metastasis'",
                field="primary_tumour",
            )

    @property
    def label(self) -> str:
        """``"Metastasis (breast)"``, ``"Myeloma"``."""
        if self.primary is None:
            return self.kind.label
        return f"{self.kind.label} ({self.primary.value})"

    @property
    def high_risk_for_collapse(self) -> bool:
        """True for myeloma and metastasis (tumour destroying the body from within)."""
        return self.kind.is_malignant

    @classmethod
    def parse(
        cls, kind: DiagnosisKind | str, primary: PrimaryTumour | str | None = None
    ) -> Diagnosis:
        """From strings; an empty or blank ``primary`` (an empty CSV cell) means None."""
        if isinstance(primary, str) and not primary.strip():
            primary = None
        return cls(
            kind=DiagnosisKind.parse(kind),
            primary=None if primary is None else PrimaryTumour.parse(primary),
        )
