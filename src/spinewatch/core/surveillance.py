"""How soon the next surveillance scan is due: the programme's interval rule.

The interval depends on the disease (myeloma and metastases destroy bone from within and a
vertebra can go from weakened to collapsed within months; an osteoporotic fracture,
a haemangioma or a disc herniation changes slowly) and on what the latest analysed scan showed
for the patient's most worrying vertebra not yet treated:

==========================  =======  ==========  ========  ====  ============  =============
diagnosis                   low      moderate    high      not   treat signal  no analysed
                                                           assessable          scan yet
==========================  =======  ==========  ========  ====  ============  =============
myeloma                     90       60          30        30    30            90
metastasis                  90       60          30        30    30            90
other / none                180      90          60        60    60            180
==========================  =======  ==========  ========  ====  ============  =============

(days). These defaults are an engineering choice of the SpineWatch team, not published figures:
no guideline gives a CT interval per collapse risk. They follow two principles that clinicians
of the programme asked for: a vertebra at high risk (or with the comparison's signal to treat
before collapse) must be looked at again within a month if it is not treated; a vertebra whose
risk could not be assessed (cut by the scan edge, an MRI, no CT) is *never* treated as low risk,
so it gets the high-risk interval -- the next scan is how it gets assessed. Each programme sets
its own table (:meth:`IntervalRule.from_dict`; the web settings read it from the environment).

>>> DEFAULT_RULE.interval_days(["myeloma"], "high")
30
>>> DEFAULT_RULE.interval_days([], None)
180
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spinewatch.core._enum import parse_enum
from spinewatch.core.diagnoses import DiagnosisKind
from spinewatch.core.errors import InputError

__all__ = [
    "DEFAULT_RULE",
    "IntervalRule",
    "RiskState",
    "SurveillanceError",
]


class SurveillanceError(InputError):
    """A bad interval table or risk state."""


class RiskState(enum.Enum):
    """The patient's most worrying untreated vertebra on the latest analysed scan."""

    NO_SCAN = "no_scan"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    NOT_ASSESSABLE = "not_assessable"
    TREAT_SIGNAL = "treat_signal"

    @property
    def label(self) -> str:
        return {
            "no_scan": "no analysed scan",
            "low": "low risk",
            "moderate": "moderate risk",
            "high": "high risk",
            "not_assessable": "risk not assessable",
            "treat_signal": "signal to treat before collapse",
        }[self.value]

    @classmethod
    def parse(cls, value: RiskState | str | None) -> RiskState:
        """A member or its value; ``None`` is :attr:`NO_SCAN`."""
        if value is None:
            return cls.NO_SCAN
        return parse_enum(cls, value, what="risk state", error=SurveillanceError)


#: The diagnosis groups of the table: a patient is in the most worrying group of their diagnoses.
MALIGNANT = "malignant"
OTHER = "other"
_GROUP_ORDER = (MALIGNANT, OTHER)


def _group(kinds: Iterable[DiagnosisKind | str]) -> str:
    parsed = [DiagnosisKind.parse(k) for k in kinds]
    return MALIGNANT if any(k.is_malignant for k in parsed) else OTHER


def _days(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
        raise SurveillanceError(f"{where} {value!r}: expected a whole number of days 1..3650")
    return value


_DEFAULT_TABLE: dict[str, dict[str, int]] = {
    MALIGNANT: {
        "no_scan": 90,
        "low": 90,
        "moderate": 60,
        "high": 30,
        "not_assessable": 30,
        "treat_signal": 30,
    },
    OTHER: {
        "no_scan": 180,
        "low": 180,
        "moderate": 90,
        "high": 60,
        "not_assessable": 60,
        "treat_signal": 60,
    },
}


@dataclass(frozen=True)
class IntervalRule:
    """Days to the next scan by diagnosis group (``malignant``: myeloma or metastasis;
    ``other``) and :class:`RiskState`. Every cell 1..3650 days; the table must be complete."""

    table: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: _DEFAULT_TABLE)

    def __post_init__(self) -> None:
        checked: dict[str, dict[str, int]] = {}
        if not isinstance(self.table, Mapping):
            raise SurveillanceError(f"interval table {self.table!r}: expected a mapping")
        unknown = set(self.table) - set(_GROUP_ORDER)
        if unknown:
            raise SurveillanceError(
                f"interval table groups {sorted(map(str, unknown))}: expected "
                f"{', '.join(_GROUP_ORDER)}"
            )
        for group in _GROUP_ORDER:
            row = self.table.get(group)
            if not isinstance(row, Mapping):
                raise SurveillanceError(f"interval table lacks the {group!r} row")
            states = {s.value for s in RiskState}
            extra = set(row) - states
            missing = states - set(row)
            if extra or missing:
                raise SurveillanceError(
                    f"interval table row {group!r}: unknown {sorted(map(str, extra))}, missing "
                    f"{sorted(missing)}; expected the states {', '.join(sorted(states))}"
                )
            checked[group] = {k: _days(v, f"interval {group}.{k}") for k, v in row.items()}
        object.__setattr__(self, "table", checked)

    def interval_days(
        self, diagnoses: Iterable[DiagnosisKind | str], risk: RiskState | str | None
    ) -> int:
        """Days to the next scan for a patient with ``diagnoses`` whose latest risk is ``risk``."""
        return self.table[_group(diagnoses)][RiskState.parse(risk).value]

    def to_dict(self) -> dict[str, Any]:
        return {g: dict(row) for g, row in self.table.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntervalRule:
        """A rule from ``{"malignant": {"low": 90, ...}, "other": {...}}`` (validated)."""
        return cls(table=data)


DEFAULT_RULE = IntervalRule()
"""The default table of the module docstring."""
