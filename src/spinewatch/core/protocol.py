"""The follow-up protocol: time points after the procedure, each with a visit window.

A :class:`FollowUpProtocol` is configurable per programme (:meth:`FollowUpProtocol.from_dict`,
JSON-able :meth:`~FollowUpProtocol.to_dict`). Offsets and windows are whole days counted from the
procedure date; windows are inclusive at both ends. The default ("standard") protocol:

======  ===============  ======  =========================
code    label            offset  window (before / after)
======  ===============  ======  =========================
pre     Pre-operative    0       30 / 0 (baseline)
3d      3 days           3       1 / 4
1m      1 month          30      7 / 7
3m      3 months         91      14 / 14
6m      6 months         182     30 / 30
12m     12 months        365     45 / 45
======  ===============  ======  =========================

>>> from datetime import date
>>> DEFAULT_PROTOCOL.timepoint_for(date(2024, 1, 10), date(2024, 2, 12)).code
'1m'
"""

from __future__ import annotations

import itertools
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from spinewatch.core.errors import InputError

__all__ = [
    "DEFAULT_PROTOCOL",
    "FollowUpProtocol",
    "ProtocolError",
    "ScheduledVisit",
    "TimePoint",
]

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ProtocolError(InputError):
    """An invalid protocol definition, or a time point code the protocol does not have."""


def _int_field(value: object, field: str, code: object, *, minimum: int | None = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ProtocolError(f"time point {code!r}: {field} {value!r} is not an integer (days)")
    if minimum is not None and value < minimum:
        raise ProtocolError(
            f"time point {code!r}: {field} {value!r} is invalid; expected an integer >= {minimum}"
        )
    return int(value)


@dataclass(frozen=True)
class TimePoint:
    """One follow-up time point.

    ``offset_days`` counts from the procedure date (the baseline is 0); the visit window runs
    from ``offset_days - window_before_days`` to ``offset_days + window_after_days`` inclusive.
    ``baseline`` marks the pre-operative assessment.
    """

    code: str
    label: str
    offset_days: int
    window_before_days: int
    window_after_days: int
    baseline: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _CODE.fullmatch(self.code):
            raise ProtocolError(
                f"time point code {self.code!r} is invalid; expected a short code of letters, "
                "digits, '_', '.' or '-' (e.g. '3m')"
            )
        if not isinstance(self.label, str) or not self.label.strip():
            raise ProtocolError(
                f"time point {self.code!r}: label {self.label!r} is invalid; expected a "
                "non-empty text"
            )
        object.__setattr__(
            self,
            "offset_days",
            _int_field(self.offset_days, "offset_days", self.code, minimum=None),
        )
        for field in ("window_before_days", "window_after_days"):
            object.__setattr__(self, field, _int_field(getattr(self, field), field, self.code))
        if not isinstance(self.baseline, bool):
            raise ProtocolError(
                f"time point {self.code!r}: baseline {self.baseline!r} is not true/false"
            )
        if self.baseline and self.offset_days != 0:
            raise ProtocolError(
                f"time point {self.code!r}: offset_days {self.offset_days} is invalid for the "
                "baseline; expected 0"
            )
        if not self.baseline and self.offset_days <= 0:
            raise ProtocolError(
                f"time point {self.code!r}: offset_days {self.offset_days} is invalid for a "
                "post-operative time point; expected > 0"
            )

    @property
    def is_baseline(self) -> bool:
        """True for the pre-operative baseline."""
        return self.baseline

    @property
    def window_start_offset_days(self) -> int:
        """First day of the window, relative to the procedure date."""
        return self.offset_days - self.window_before_days

    @property
    def window_end_offset_days(self) -> int:
        """Last day of the window (inclusive), relative to the procedure date."""
        return self.offset_days + self.window_after_days

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the keys :meth:`FollowUpProtocol.from_dict` reads)."""
        return {
            "code": self.code,
            "label": self.label,
            "offset_days": self.offset_days,
            "window_before_days": self.window_before_days,
            "window_after_days": self.window_after_days,
            "baseline": self.baseline,
        }


@dataclass(frozen=True)
class ScheduledVisit:
    """A time point placed on the calendar for one procedure date."""

    timepoint: TimePoint
    due: date
    window_start: date
    window_end: date

    @property
    def code(self) -> str:
        """The time point's code."""
        return self.timepoint.code

    def contains(self, day: date) -> bool:
        """True when ``day`` lies in the window (inclusive)."""
        return self.window_start <= day <= self.window_end


_TIMEPOINT_KEYS = {
    "code",
    "label",
    "offset_days",
    "window_before_days",
    "window_after_days",
    "baseline",
}


@dataclass(frozen=True)
class FollowUpProtocol:
    """A named sequence of time points: exactly one baseline, first; codes unique; offsets
    strictly increasing; windows that do not overlap (not even on one day)."""

    name: str
    timepoints: tuple[TimePoint, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ProtocolError(
                f"protocol name {self.name!r} is invalid; expected a non-empty text"
            )
        if not isinstance(self.timepoints, tuple):
            if isinstance(self.timepoints, (str, bytes)) or not hasattr(
                self.timepoints, "__iter__"
            ):
                raise ProtocolError(
                    f"protocol {self.name!r}: timepoints {self.timepoints!r} is not a sequence"
                )
            object.__setattr__(self, "timepoints", tuple(self.timepoints))
        tps = self.timepoints
        for tp in tps:
            if not isinstance(tp, TimePoint):
                raise ProtocolError(f"protocol {self.name!r}: {tp!r} is not a TimePoint")
        if not tps:
            raise ProtocolError(f"protocol {self.name!r} has no time points; expected a baseline")
        baselines = [tp.code for tp in tps if tp.baseline]
        if len(baselines) != 1:
            raise ProtocolError(
                f"protocol {self.name!r} has {len(baselines)} baseline time points "
                f"{baselines}; expected exactly one"
            )
        if not tps[0].baseline:
            raise ProtocolError(
                f"protocol {self.name!r}: baseline {baselines[0]!r} is not the first time point; "
                "expected it first"
            )
        seen: set[str] = set()
        for tp in tps:
            if tp.code in seen:
                raise ProtocolError(
                    f"protocol {self.name!r}: time point code {tp.code!r} appears twice; "
                    "expected unique codes"
                )
            seen.add(tp.code)
        for prev, cur in itertools.pairwise(tps):
            if cur.offset_days <= prev.offset_days:
                raise ProtocolError(
                    f"protocol {self.name!r}: time point {cur.code!r} offset_days "
                    f"{cur.offset_days} is not after {prev.code!r} ({prev.offset_days}); "
                    "expected strictly increasing offsets"
                )
            if cur.window_start_offset_days <= prev.window_end_offset_days:
                raise ProtocolError(
                    f"protocol {self.name!r}: the window of {cur.code!r} (from day "
                    f"{cur.window_start_offset_days}) overlaps the window of {prev.code!r} "
                    f"(to day {prev.window_end_offset_days}); expected non-overlapping windows"
                )

    @property
    def codes(self) -> tuple[str, ...]:
        """Time point codes in protocol order."""
        return tuple(tp.code for tp in self.timepoints)

    @property
    def baseline(self) -> TimePoint:
        """The pre-operative baseline."""
        return self.timepoints[0]

    @property
    def postoperative(self) -> tuple[TimePoint, ...]:
        """The time points after the baseline, in order."""
        return self.timepoints[1:]

    def timepoint(self, code: str | TimePoint) -> TimePoint:
        """The time point with this code (exact, surrounding whitespace ignored).

        Raises :class:`ProtocolError` naming the code and the valid ones.
        """
        if isinstance(code, TimePoint):
            if code in self.timepoints:
                return code
            code = code.code
        if isinstance(code, str):
            wanted = code.strip()
            for tp in self.timepoints:
                if tp.code == wanted:
                    return tp
        raise ProtocolError(
            f"time point {code!r} is not in protocol {self.name!r}; expected one of "
            f"{', '.join(self.codes)}"
        )

    def order(self, code: str | TimePoint) -> int:
        """Position of the time point in the protocol (baseline 0)."""
        return self.timepoints.index(self.timepoint(code))

    def schedule(self, procedure_date: date) -> list[ScheduledVisit]:
        """Due date and window of every time point for a procedure on ``procedure_date``."""
        if not isinstance(procedure_date, date):
            raise ProtocolError(f"procedure date {procedure_date!r} is not a date")
        return [
            ScheduledVisit(
                timepoint=tp,
                due=procedure_date + timedelta(days=tp.offset_days),
                window_start=procedure_date + timedelta(days=tp.window_start_offset_days),
                window_end=procedure_date + timedelta(days=tp.window_end_offset_days),
            )
            for tp in self.timepoints
        ]

    def timepoint_for(self, procedure_date: date, visit_date: date) -> TimePoint | None:
        """The time point whose window contains ``visit_date``, or None (between windows)."""
        for name, value in (("procedure date", procedure_date), ("visit date", visit_date)):
            if not isinstance(value, date):
                raise ProtocolError(f"{name} {value!r} is not a date")
        days = (visit_date - procedure_date).days
        for tp in self.timepoints:
            if tp.window_start_offset_days <= days <= tp.window_end_offset_days:
                return tp
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``{"name": ..., "timepoints": [{"code": ..., ...}, ...]}``."""
        return {"name": self.name, "timepoints": [tp.to_dict() for tp in self.timepoints]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FollowUpProtocol:
        """Build (and validate) a protocol from :meth:`to_dict`'s form.

        Strict: unknown or missing keys and wrong types raise :class:`ProtocolError` naming
        them. ``baseline`` may be omitted (False).
        """
        if not isinstance(data, Mapping):
            raise ProtocolError(f"protocol definition {data!r} is not a mapping")
        unknown = set(data) - {"name", "timepoints"}
        if unknown:
            raise ProtocolError(
                f"protocol definition has unknown keys {sorted(map(str, unknown))}; expected "
                "'name' and 'timepoints'"
            )
        for key in ("name", "timepoints"):
            if key not in data:
                raise ProtocolError(f"protocol definition lacks {key!r}")
        raw_tps = data["timepoints"]
        if isinstance(raw_tps, (str, bytes, Mapping)) or not isinstance(raw_tps, (list, tuple)):
            raise ProtocolError(f"protocol timepoints {raw_tps!r} is not a list")
        timepoints = []
        for i, raw in enumerate(raw_tps):
            if not isinstance(raw, Mapping):
                raise ProtocolError(f"timepoints[{i}] {raw!r} is not a mapping")
            extra = set(raw) - _TIMEPOINT_KEYS
            if extra:
                raise ProtocolError(
                    f"timepoints[{i}] has unknown keys {sorted(map(str, extra))}; expected "
                    f"{sorted(_TIMEPOINT_KEYS)}"
                )
            missing = _TIMEPOINT_KEYS - {"baseline"} - set(raw)
            if missing:
                raise ProtocolError(f"timepoints[{i}] lacks {sorted(missing)}")
            timepoints.append(TimePoint(**dict(raw)))
        return cls(name=data["name"], timepoints=tuple(timepoints))

    @classmethod
    def default(cls) -> FollowUpProtocol:
        """The "standard" protocol: pre, 3 days, 1, 3, 6 and 12 months."""
        return cls(
            name="standard",
            timepoints=(
                TimePoint("pre", "Pre-operative", 0, 30, 0, baseline=True),
                TimePoint("3d", "3 days", 3, 1, 4),
                TimePoint("1m", "1 month", 30, 7, 7),
                TimePoint("3m", "3 months", 91, 14, 14),
                TimePoint("6m", "6 months", 182, 30, 30),
                TimePoint("12m", "12 months", 365, 45, 45),
            ),
        )


DEFAULT_PROTOCOL = FollowUpProtocol.default()
"""The standard protocol (see the module docstring)."""
