"""Cement leakage after vertebroplasty: Yeom type, site, and whether it caused symptoms.

Yeom et al. (JBJS Br 2003) classify leakage by route: B through the basivertebral vein, S through
a segmental vein, C through a cortical defect; later series add D, into the disc.

>>> CementLeakage(LeakageType.parse("s"), LeakageSite.parse("venous"), symptomatic=False).label
'Type S (segmental vein), venous, asymptomatic'
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from spinewatch.core._enum import parse_enum
from spinewatch.core.errors import InputError

__all__ = ["CementLeakage", "LeakageError", "LeakageSite", "LeakageType"]


class LeakageError(InputError):
    """An unknown leakage type or site, or an invalid leakage record."""


class LeakageType(enum.Enum):
    """Route of the leak (Yeom 2003, plus D intradiscal)."""

    B = "B"
    S = "S"
    C = "C"
    D = "D"

    @property
    def label(self) -> str:
        """``"Type B (basivertebral vein)"``."""
        return f"Type {self.value} ({self.description})"

    @property
    def description(self) -> str:
        """The route in words."""
        return {
            "B": "basivertebral vein",
            "S": "segmental vein",
            "C": "cortical defect",
            "D": "intradiscal",
        }[self.value]

    @classmethod
    def parse(cls, value: LeakageType | str) -> LeakageType:
        """``"B"``/``"b"`` ... or a member; else :class:`LeakageError`."""
        return parse_enum(cls, value, what="cement leakage type", error=LeakageError)


class LeakageSite(enum.Enum):
    """Where the leaked cement lies."""

    EPIDURAL = "epidural"
    FORAMINAL = "foraminal"
    PARAVERTEBRAL = "paravertebral"
    INTRADISCAL = "intradiscal"
    VENOUS = "venous"
    PULMONARY = "pulmonary"
    OTHER = "other"

    @property
    def label(self) -> str:
        """Human-readable name (``"Epidural"``)."""
        return self.value.capitalize()

    @property
    def threatens_neural_structures(self) -> bool:
        """True for epidural and foraminal leaks (towards the cord or nerve roots)."""
        return self in (LeakageSite.EPIDURAL, LeakageSite.FORAMINAL)

    @classmethod
    def parse(cls, value: LeakageSite | str) -> LeakageSite:
        """A member, its value or name (any case); else :class:`LeakageError`."""
        return parse_enum(cls, value, what="cement leakage site", error=LeakageError)


@dataclass(frozen=True)
class CementLeakage:
    """One cement leak. Strings are converted on construction; ``symptomatic`` must be a bool."""

    type: LeakageType
    site: LeakageSite
    symptomatic: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", LeakageType.parse(self.type))
        object.__setattr__(self, "site", LeakageSite.parse(self.site))
        if not isinstance(self.symptomatic, bool):
            raise LeakageError(f"symptomatic {self.symptomatic!r} is invalid; expected True/False")

    @property
    def label(self) -> str:
        """``"Type S (segmental vein), venous, asymptomatic"``."""
        state = "symptomatic" if self.symptomatic else "asymptomatic"
        return f"{self.type.label}, {self.site.value}, {state}"
