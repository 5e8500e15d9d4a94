"""One worklist as a table that can be sorted, filtered and exported (CSV).

Each list (:data:`LISTS`) turns the rows of :mod:`.queries` into :class:`Row` objects: the cells
shown (text, by column key), the values sorted on, the patient's page, the actions. ``sort`` is a
column key (``-key`` descending); ``q`` keeps the rows whose patient name or study id contains
every word; ``status`` / ``diagnosis`` keep the rows of that status / diagnosis. The CSV export
goes through :func:`worklist_csv`, the one function that writes a worklist as CSV (so the
spreadsheet-formula neutralisation of every CSV export can be applied there).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpResponse
from django.urls import reverse

from spinewatch.core.csv_cells import csv_text
from spinewatch.web.followup_status import status_label, visit_label
from spinewatch.web.pages.links import patient_url
from spinewatch.web.worklists import queries

__all__ = ["LISTS", "Column", "Row", "WorkList", "build", "worklist_csv"]


@dataclass(frozen=True)
class Column:
    key: str
    label: str


@dataclass
class Row:
    cells: dict[str, str]
    sort: dict[str, Any]
    patient_url: str
    status: str = ""
    diagnosis: str = ""
    high: bool = False
    actions: list[tuple[str, str]] = field(default_factory=list)

    def cell_list(self, columns: Sequence[Column]) -> list[tuple[Column, str]]:
        return [(c, self.cells.get(c.key, "")) for c in columns]


@dataclass
class WorkList:
    name: str
    title: str
    columns: list[Column]
    rows: list[Row]
    statuses: list[tuple[str, str]] = field(default_factory=list)


def _name(patient: Any) -> str:
    identity = getattr(patient, "identity", None)
    if identity is None:
        return str(patient.study_id)
    return f"{identity.family_name}, {identity.given_name}"


def _date(day: dt.date | None) -> str:
    return "" if day is None else f"{day.day} {day:%b %Y}"


def _follow_ups(today: dt.date, manager: Any) -> WorkList:
    rows = []
    for r in queries.follow_ups_due(manager=manager, today=today):
        fu = r.follow_up
        badge = status_label(fu, today)
        cm = r.patient.case_manager
        rows.append(
            Row(
                cells={
                    "patient": _name(r.patient),
                    "study_id": r.patient.study_id,
                    "visit": visit_label(fu),
                    "due": _date(fu.due_date),
                    "window": f"{_date(fu.window_start)} – {_date(fu.window_end)}",
                    "status": badge.text,
                    "case_manager": (cm.get_full_name() or cm.get_username()) if cm else "",
                },
                sort={
                    "patient": _name(r.patient).casefold(),
                    "study_id": r.patient.study_id,
                    "visit": fu.due_date - fu.procedure.performed_on,
                    "due": fu.due_date,
                    "window": fu.window_start,
                    "status": ("overdue", "due_today", "in_window", "upcoming").index(r.status),
                    "case_manager": "" if cm is None else cm.get_username(),
                },
                patient_url=patient_url(r.patient),
                status=r.status,
                high=r.status == "overdue",
                actions=[
                    ("Record", reverse("worklists:record_follow_up", args=[fu.pk])),
                    ("Portal link", reverse("portal:new_link") + f"?follow_up={fu.pk}"),
                ],
            )
        )
    return WorkList(
        "follow-ups",
        "Follow-ups due and overdue",
        [
            Column("patient", "Patient"),
            Column("study_id", "Study id"),
            Column("visit", "Visit"),
            Column("due", "Due"),
            Column("window", "Window"),
            Column("status", "Status"),
            Column("case_manager", "Case manager"),
        ],
        rows,
        [
            ("overdue", "Overdue"),
            ("due_today", "Due today"),
            ("in_window", "In window"),
            ("upcoming", "Window opens soon"),
        ],
    )


def _scans(today: dt.date, manager: Any) -> WorkList:
    rows = []
    for r in queries.surveillance_due(today=today):
        diagnoses = ", ".join(r.diagnoses)
        rows.append(
            Row(
                cells={
                    "patient": _name(r.patient),
                    "study_id": r.patient.study_id,
                    "diagnosis": diagnoses,
                    "next_scan": _date(r.plan.next_scan_due),
                    "interval": f"{r.plan.interval_days} d",
                    "last_scan": _date(r.last_scan),
                    "status": "Overdue" if r.overdue else "Due",
                },
                sort={
                    "patient": _name(r.patient).casefold(),
                    "study_id": r.patient.study_id,
                    "diagnosis": diagnoses,
                    "next_scan": r.plan.next_scan_due,
                    "interval": r.plan.interval_days,
                    "last_scan": r.last_scan or dt.date.min,
                    "status": not r.overdue,
                },
                patient_url=patient_url(r.patient),
                status="overdue" if r.overdue else "due",
                diagnosis=diagnoses.lower(),
                high=r.overdue,
            )
        )
    return WorkList(
        "scans",
        "Surveillance scans due",
        [
            Column("patient", "Patient"),
            Column("study_id", "Study id"),
            Column("diagnosis", "Diagnosis"),
            Column("next_scan", "Next scan"),
            Column("interval", "Interval"),
            Column("last_scan", "Last scan"),
            Column("status", "Status"),
        ],
        rows,
        [("overdue", "Overdue"), ("due", "Due")],
    )


def _findings(name: str, title: str, found: list[Any]) -> WorkList:
    from spinewatch.core.levels import VertebralLevel

    rows = []
    for f in found:
        patient = f.study.patient
        risk = (f.collapse_risk or "").replace("_", " ")
        rows.append(
            Row(
                cells={
                    "patient": _name(patient),
                    "study_id": patient.study_id,
                    "level": f.level,
                    "scan": _date(f.study.study_date),
                    "risk": risk + (" · treat signal" if f.treat_signal else ""),
                    "reasons": "; ".join(f.reasons or []),
                },
                sort={
                    "patient": _name(patient).casefold(),
                    "study_id": patient.study_id,
                    "level": VertebralLevel.parse(f.level).rank,
                    "scan": f.study.study_date,
                    "risk": (not f.treat_signal, f.collapse_risk or ""),
                    "reasons": len(f.reasons or []),
                },
                patient_url=patient_url(patient) + f"#finding-{f.pk}",
                status=f.collapse_risk or "",
                high=True,
                actions=[("Decide", patient_url(patient) + f"#finding-{f.pk}")],
            )
        )
    return WorkList(
        name,
        title,
        [
            Column("patient", "Patient"),
            Column("study_id", "Study id"),
            Column("level", "Level"),
            Column("scan", "Scan"),
            Column("risk", "Risk"),
            Column("reasons", "Reasons"),
        ],
        rows,
    )


LISTS: dict[str, Callable[[dt.date, Any], WorkList]] = {
    "follow-ups": _follow_ups,
    "scans": _scans,
    "high-risk": lambda today, manager: _findings(
        "high-risk", "High collapse risk, no decision", queries.high_risk_undecided()
    ),
    "not-assessable": lambda today, manager: _findings(
        "not-assessable", "Collapse risk not assessable", queries.not_assessable_undecided()
    ),
}


def build(
    name: str,
    *,
    today: dt.date,
    manager: Any = "all",
    sort: str = "",
    q: str = "",
    status: str = "",
    diagnosis: str = "",
) -> WorkList:
    """The list ``name`` filtered and sorted (see the module docstring)."""
    table = LISTS[name](today, manager)
    rows = table.rows
    for word in q.casefold().split():
        rows = [
            r
            for r in rows
            if word in r.cells.get("patient", "").casefold()
            or word in r.cells.get("study_id", "").casefold()
        ]
    if status:
        rows = [r for r in rows if r.status == status]
    if diagnosis:
        rows = [r for r in rows if diagnosis.lower() in r.diagnosis]
    key = sort.lstrip("-")
    if key in {c.key for c in table.columns}:
        rows = sorted(rows, key=lambda r: r.sort.get(key), reverse=sort.startswith("-"))
    table.rows = rows
    return table


def worklist_csv(table: WorkList, filename: str) -> HttpResponse:
    """The worklist as a CSV download (one header row, then one row per line shown)."""
    text = csv_text(
        [c.label for c in table.columns],
        ([value for _, value in row.cell_list(table.columns)] for row in table.rows),
    )
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
