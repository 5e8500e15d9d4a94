"""Collapse risk and the confidence class of one vertebra's findings: the report's verdicts.

Both are written by the imaging analysis (:mod:`spinewatch.imaging.risk`,
:mod:`spinewatch.imaging.confidence`) and read by the registry, the pages and the comparison;
they live here, beside the other clinical concepts, so reading a report pulls in no numpy or
scipy.

>>> CollapseRisk("not_assessable").rank, CollapseRisk.HIGH.label
(1, 'High')
>>> ConfidenceClass.parse("Medium") is ConfidenceClass.MEDIUM
True
"""

from __future__ import annotations

import enum

from spinewatch.core._enum import parse_enum
from spinewatch.core.errors import InputError

__all__ = ["CollapseRisk", "CollapseRiskError", "ConfidenceClass"]


class CollapseRiskError(InputError):
    """A collapse risk or confidence class SpineWatch does not know (names the value)."""


class CollapseRisk(enum.Enum):
    """Risk that the vertebral body collapses (or has collapsed), or not assessable."""

    LOW = "low"
    NOT_ASSESSABLE = "not_assessable"
    MODERATE = "moderate"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """Order of concern for sorting and colouring: 0 low, 1 not assessable, 2 moderate,
        3 high. Not assessable ranks above low (an unmeasured vertebra is never shown as safe)
        and below moderate (a measured finding comes before an unknown)."""
        return {"low": 0, "not_assessable": 1, "moderate": 2, "high": 3}[self.value]

    @property
    def label(self) -> str:
        """Human-readable name (``"Not assessable"``)."""
        return self.value.replace("_", " ").capitalize()

    @classmethod
    def from_rank(cls, rank: int) -> CollapseRisk:
        """The risk of a :attr:`rank`, clipped to 0..3."""
        return (cls.LOW, cls.NOT_ASSESSABLE, cls.MODERATE, cls.HIGH)[max(0, min(3, rank))]

    @classmethod
    def parse(cls, value: CollapseRisk | str) -> CollapseRisk:
        """A member or its value (``"not_assessable"``); else :class:`CollapseRiskError`."""
        return parse_enum(cls, value, what="collapse risk", error=CollapseRiskError)


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

    @classmethod
    def parse(cls, value: ConfidenceClass | str) -> ConfidenceClass:
        """A member or its value (``"medium"``); else :class:`CollapseRiskError`."""
        return parse_enum(cls, value, what="confidence class", error=CollapseRiskError)
