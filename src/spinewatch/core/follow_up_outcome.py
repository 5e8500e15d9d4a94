"""Why a follow-up visit has no value: the outcomes a registry must count, not lose.

A visit can end without a pain score for reasons that matter to the results (CONSORT-style
attrition per time point):

- ``died`` and ``lost_to_follow_up`` and ``withdrew`` end the patient's follow-up: this visit and
  every later open one take the outcome, from its date;
- ``declined``: the patient declined this one visit; later visits stay open.

>>> VisitOutcome.parse("lost to follow-up").ends_follow_up
True
"""

from __future__ import annotations

import enum

from spinewatch.core._enum import parse_enum
from spinewatch.core.errors import InputError

__all__ = ["VisitOutcome", "VisitOutcomeError"]


class VisitOutcomeError(InputError):
    """An unknown visit outcome."""


class VisitOutcome(enum.Enum):
    """The reason a visit has no value."""

    DIED = "died"
    LOST_TO_FOLLOW_UP = "lost_to_follow_up"
    WITHDREW = "withdrew"
    DECLINED = "declined"

    @property
    def label(self) -> str:
        return {
            "died": "Died",
            "lost_to_follow_up": "Lost to follow-up",
            "withdrew": "Withdrew from follow-up",
            "declined": "Declined this visit",
        }[self.value]

    @property
    def ends_follow_up(self) -> bool:
        """True when no later visit can take place (died, lost, withdrew)."""
        return self is not VisitOutcome.DECLINED

    @classmethod
    def parse(cls, value: VisitOutcome | str) -> VisitOutcome:
        """A member, its value or name (``"lost to follow-up"`` too); else VisitOutcomeError."""
        if isinstance(value, str):
            value = value.replace("follow-up", "follow_up")
        return parse_enum(cls, value, what="visit outcome", error=VisitOutcomeError)
