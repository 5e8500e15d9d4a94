"""The status of a follow-up visit: ONE rule for every page (patient page, worklists, portal).

For a visit not completed, on ``today`` (the programme's local date):

- ``missed``: a pre-operative **baseline** visit whose window has closed. It can no longer be
  recorded meaningfully (the operation is done), so it is not chased: shown as "Not recorded"
  and kept out of the overdue worklist.
- ``overdue``: any other visit whose window has closed (``window_end < today``).
- ``due_today``: ``due_date == today``.
- ``in_window``: ``window_start <= today <= window_end`` (before or after the due date).
- ``upcoming``: the window has not opened yet.

A completed visit is ``done``. Dates are whole days; windows are inclusive at both ends.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.utils import timezone

__all__ = [
    "SOON_DAYS",
    "StatusLabel",
    "VisitStatus",
    "is_baseline",
    "status_label",
    "visit_label",
    "visit_status",
]

#: An upcoming visit whose window opens within this many days is "Window opens soon".
SOON_DAYS = 14


class VisitStatus(StrEnum):
    DONE = "done"
    MISSED = "missed"
    OVERDUE = "overdue"
    DUE_TODAY = "due_today"
    IN_WINDOW = "in_window"
    UPCOMING = "upcoming"


@dataclass(frozen=True)
class StatusLabel:
    """What a badge shows: ``text`` (the meaning, in words) and ``tone`` (its colour class)."""

    text: str
    tone: str


def is_baseline(follow_up: Any) -> bool:
    """Whether ``follow_up`` is its procedure's pre-operative baseline, by the protocol stored
    with the procedure (the ``baseline`` flag of its time point)."""
    protocol = getattr(getattr(follow_up, "procedure", None), "protocol", None)
    if not isinstance(protocol, dict):
        return False
    code = getattr(follow_up, "timepoint", None)
    for tp in protocol.get("timepoints") or ():
        if isinstance(tp, dict) and tp.get("code") == code:
            return bool(tp.get("baseline"))
    return False


def visit_label(follow_up: Any) -> str:
    """The protocol's label of the visit's time point (``3 months``), else its code (``3m``)."""
    code = getattr(follow_up, "timepoint", "")
    protocol = getattr(getattr(follow_up, "procedure", None), "protocol", None)
    if isinstance(protocol, dict):
        for tp in protocol.get("timepoints") or ():
            if isinstance(tp, dict) and tp.get("code") == code and tp.get("label"):
                return str(tp["label"])
    return str(code)


def visit_status(follow_up: Any, today: dt.date | None = None) -> VisitStatus:
    """The status of ``follow_up`` (a :class:`~spinewatch.registry.models.FollowUp`) on
    ``today`` (default: today's local date); see the module docstring for the rule."""
    if getattr(follow_up, "completed_on", None) is not None:
        return VisitStatus.DONE
    day = today if today is not None else timezone.localdate()
    if follow_up.window_end < day:
        return VisitStatus.MISSED if is_baseline(follow_up) else VisitStatus.OVERDUE
    if follow_up.due_date == day:
        return VisitStatus.DUE_TODAY
    if follow_up.window_start <= day:
        return VisitStatus.IN_WINDOW
    return VisitStatus.UPCOMING


def status_label(follow_up: Any, today: dt.date | None = None) -> StatusLabel:
    """The badge of ``follow_up`` on ``today``: its status in words and a tone."""
    day = today if today is not None else timezone.localdate()
    status = visit_status(follow_up, day)
    if status is VisitStatus.OVERDUE:
        days = (day - follow_up.window_end).days
        return StatusLabel(f"Overdue {days} d", "high")
    if status is VisitStatus.UPCOMING:
        soon = (follow_up.window_start - day).days <= SOON_DAYS
        return StatusLabel("Window opens soon" if soon else "Planned", "neutral")
    text, tone = _LABELS[status]
    return StatusLabel(text, tone)


_LABELS = {
    VisitStatus.DONE: ("Done", "ok"),
    VisitStatus.MISSED: ("Not recorded", "neutral"),
    VisitStatus.DUE_TODAY: ("Due today", "moderate"),
    VisitStatus.IN_WINDOW: ("In window", "info"),
}
