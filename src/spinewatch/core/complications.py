"""Complications graded by the Society of Interventional Radiology (SIR) classes A-F.

A and B are minor (no or nominal therapy, no consequence); C to F are major (therapy with a
hospital stay, major therapy or prolonged stay, permanent sequelae, death). Source: SIR
standards of practice (Sacks et al., JVIR 2003; used for vertebroplasty in the SIR quality
improvement guidelines, Baerlocher et al., JVIR 2014).

>>> ComplicationClass.parse("d").is_major
True
"""

from __future__ import annotations

import enum

from spinewatch.core._enum import parse_enum
from spinewatch.core.errors import InputError

__all__ = ["ComplicationClass", "ComplicationError"]


class ComplicationError(InputError):
    """An unknown complication class."""


_DESCRIPTIONS = {
    "A": "No therapy, no consequence",
    "B": "Nominal therapy, no consequence; includes overnight admission for observation only",
    "C": "Requires therapy, minor hospitalisation (< 48 h)",
    "D": "Requires major therapy, unplanned increase in level of care, prolonged "
    "hospitalisation (> 48 h)",
    "E": "Permanent adverse sequelae",
    "F": "Death",
}


class ComplicationClass(enum.Enum):
    """SIR complication class A-F."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    F = "F"

    @property
    def is_major(self) -> bool:
        """True for the major classes C-F."""
        return self.value in "CDEF"

    @property
    def description(self) -> str:
        """The SIR definition of the class."""
        return _DESCRIPTIONS[self.value]

    @property
    def label(self) -> str:
        """``"SIR D (major): Requires major therapy, ..."``."""
        severity = "major" if self.is_major else "minor"
        return f"SIR {self.value} ({severity}): {self.description}"

    @classmethod
    def parse(cls, value: ComplicationClass | str) -> ComplicationClass:
        """``"A"``..``"F"`` (any case), optionally prefixed ``"SIR "``; else
        :class:`ComplicationError`."""
        candidate: object = value
        if isinstance(value, str):
            text = value.strip()
            if text.upper().startswith("SIR") and text[3:].strip(" -_"):
                candidate = text[3:].strip(" -_")
        try:
            return parse_enum(
                cls, candidate, what="SIR complication class", error=ComplicationError
            )
        except ComplicationError:
            pass
        return parse_enum(cls, value, what="SIR complication class", error=ComplicationError)
