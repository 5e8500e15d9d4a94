"""One worklist as a table that can be sorted, filtered and exported (CSV).

Each list (:data:`LISTS`) is a queryset of :mod:`.queries` that is filtered, sorted and paged in
the database -- a page costs the same with 80,000 open visits as with 80 -- and whose page is
turned into :class:`Row` objects: the cells shown (text, by column key), the patient's page, the
actions. ``sort`` is a column key (``-key`` descending); ``q`` keeps the rows whose patient name
or study id contains every word; ``status`` / ``diagnosis`` keep the rows of that status /
diagnosis; ``page`` (from 1) and ``page_size`` (at most :data:`MAX_PAGE_SIZE`) choose the page.
Visits overdue for years stay reachable: by paging, by ``status=overdue`` or by sorting. The CSV
export goes through :func:`worklist_csv`, the one function that writes a worklist as CSV (so the
spreadsheet-formula neutralisation of every CSV export can be applied there).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.http import HttpResponse
from django.urls import reverse

from spinewatch.core.csv_cells import csv_text
from spinewatch.registry.models import Diagnosis, ImagingStudy
from spinewatch.registry.search import patient_search
from spinewatch.web.followup_status import status_label, visit_label
from spinewatch.web.pages.links import patient_url
from spinewatch.web.worklists import queries

__all__ = [
    "LISTS",
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "Column",
    "Row",
    "WorkList",
    "build",
    "filtered",
    "worklist_csv",
]


PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sortable: bool = True


@dataclass
class Row:
    cells: dict[str, str]
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
    total: int = 0
    page: int = 1
    pages: int = 1


def _name(patient: Any) -> str:
    identity = getattr(patient, "identity", None)
    if identity is None:
        return str(patient.study_id)
    return f"{identity.family_name}, {identity.given_name}"


def _date(day: dt.date | None) -> str:
    return "" if day is None else f"{day.day} {day:%b %Y}"


@dataclass(frozen=True)
class _Spec:
    """How one list is queried, filtered, sorted and shown."""

    title: str
    columns: list[Column]
    statuses: list[tuple[str, str]]
    patient: str  # the path from the list's model to its Patient ("procedure__patient__")
    queryset: Callable[[dt.date, Any], QuerySet[Any]]
    order: dict[str, tuple[Any, ...]]
    status_filter: Callable[[QuerySet[Any], str, dt.date], QuerySet[Any]]
    rows: Callable[[list[Any], dt.date], list[Row]]


_FOLLOW_UP_STATUSES = ("overdue", "due_today", "in_window", "upcoming")


def _follow_up_rows(page: list[Any], today: dt.date) -> list[Row]:
    rows = []
    for r in queries.follow_up_rows(page, today):
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
                patient_url=patient_url(r.patient),
                status=r.status,
                high=r.status == "overdue",
                actions=[
                    ("Record", reverse("worklists:record_follow_up", args=[fu.pk])),
                    ("Portal link", reverse("portal:new_link") + f"?follow_up={fu.pk}"),
                ],
            )
        )
    return rows


def _follow_up_status(rows: QuerySet[Any], status: str, today: dt.date) -> QuerySet[Any]:
    if status not in _FOLLOW_UP_STATUSES:
        return rows.none()
    return rows.filter(status_rank=_FOLLOW_UP_STATUSES.index(status))


def _scan_rows(page: list[Any], today: dt.date) -> list[Row]:
    rows = []
    for r in queries.scan_rows(page, today):
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
                patient_url=patient_url(r.patient),
                status="overdue" if r.overdue else "due",
                diagnosis=diagnoses.lower(),
                high=r.overdue,
            )
        )
    return rows


def _scan_status(rows: QuerySet[Any], status: str, today: dt.date) -> QuerySet[Any]:
    if status == "overdue":
        return rows.filter(next_scan_due__lt=today)
    if status == "due":
        return rows.filter(next_scan_due__gte=today)
    return rows.none()


def _finding_rows(page: list[Any], today: dt.date) -> list[Row]:
    rows = []
    for f in page:
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
                patient_url=patient_url(patient) + f"#finding-{f.pk}",
                status=f.collapse_risk or "",
                high=True,
                actions=[("Decide", patient_url(patient) + f"#finding-{f.pk}")],
            )
        )
    return rows


def _finding_status(rows: QuerySet[Any], status: str, today: dt.date) -> QuerySet[Any]:
    return rows.filter(collapse_risk=status)


def _patient_order(prefix: str) -> dict[str, tuple[Any, ...]]:
    return {
        "patient": (f"{prefix}identity__family_name", f"{prefix}identity__given_name"),
        "study_id": (f"{prefix}study_id",),
    }


_FINDING_COLUMNS = [
    Column("patient", "Patient"),
    Column("study_id", "Study id"),
    Column("level", "Level"),
    Column("scan", "Scan"),
    Column("risk", "Risk"),
    Column("reasons", "Reasons", sortable=False),
]
_FINDING_ORDER = {
    **_patient_order("study__patient__"),
    "level": ("level_rank",),
    "scan": ("study__study_date",),
    "risk": ("-treat_signal", "collapse_risk"),
}

LISTS: dict[str, _Spec] = {
    "follow-ups": _Spec(
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
        [
            ("overdue", "Overdue"),
            ("due_today", "Due today"),
            ("in_window", "In window"),
            ("upcoming", "Window opens soon"),
        ],
        "procedure__patient__",
        lambda today, manager: queries.open_follow_ups(manager=manager, today=today),
        {
            **_patient_order("procedure__patient__"),
            "visit": ("visit_offset",),
            "due": ("due_date",),
            "window": ("window_start",),
            "status": ("status_rank",),
            "case_manager": ("procedure__patient__case_manager__username",),
        },
        _follow_up_status,
        _follow_up_rows,
    ),
    "scans": _Spec(
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
        [("overdue", "Overdue"), ("due", "Due")],
        "patient__",
        lambda today, manager: queries.scans_due(today=today),
        {
            **_patient_order("patient__"),
            "diagnosis": ("first_diagnosis",),
            "next_scan": ("next_scan_due",),
            "interval": ("interval_days",),
            "last_scan": ("last_scan_on",),
            "status": ("next_scan_due",),
        },
        _scan_status,
        _scan_rows,
    ),
    "high-risk": _Spec(
        "High collapse risk, no decision",
        _FINDING_COLUMNS,
        [],
        "study__patient__",
        lambda today, manager: queries.undecided_findings(queries.HIGH_RISK),
        _FINDING_ORDER,
        _finding_status,
        _finding_rows,
    ),
    "not-assessable": _Spec(
        "Collapse risk not assessable",
        _FINDING_COLUMNS,
        [],
        "study__patient__",
        lambda today, manager: queries.undecided_findings(queries.NOT_ASSESSABLE),
        _FINDING_ORDER,
        _finding_status,
        _finding_rows,
    ),
}


def _sort_annotations(name: str, rows: QuerySet[Any], key: str) -> QuerySet[Any]:
    """The computed values some columns sort on (only when sorted on them)."""
    if name == "follow-ups" and key == "visit":
        return rows.annotate(
            visit_offset=ExpressionWrapper(
                F("due_date") - F("procedure__performed_on"), output_field=DurationField()
            )
        )
    if name == "scans" and key == "diagnosis":
        first = Diagnosis.objects.filter(patient_id=OuterRef("patient_id")).order_by(
            "diagnosed_on", "pk"
        )
        return rows.annotate(first_diagnosis=Subquery(first.values("kind")[:1]))
    if name == "scans" and key == "last_scan":
        last = ImagingStudy.objects.filter(
            patient_id=OuterRef("patient_id"), voided_at__isnull=True
        ).order_by("-study_date")
        return rows.annotate(last_scan_on=Subquery(last.values("study_date")[:1]))
    return rows


def filtered(
    name: str,
    *,
    today: dt.date,
    manager: Any = "all",
    sort: str = "",
    q: str = "",
    status: str = "",
    diagnosis: str = "",
) -> QuerySet[Any]:
    """The list ``name`` filtered and sorted, as a queryset (nothing read yet)."""
    spec = LISTS[name]
    rows = spec.queryset(today, manager)
    p = spec.patient
    if q.strip():
        rows = rows.filter(patient_search(q, patient_path=p))
    if status:
        rows = spec.status_filter(rows, status, today)
    if diagnosis:
        token = diagnosis.strip().lower().replace(" ", "_")
        rows = rows.filter(
            Exists(
                Diagnosis.objects.filter(patient_id=OuterRef(f"{p}id")).filter(
                    Q(kind__icontains=token) | Q(primary_tumour__icontains=token)
                )
            )
        )
    key = sort.lstrip("-")
    if key in spec.order:
        rows = _sort_annotations(name, rows, key)
        fields = spec.order[key]
        if sort.startswith("-"):
            fields = tuple(f[1:] if f.startswith("-") else f"-{f}" for f in fields)
        rows = rows.order_by(*fields, "pk")
    return rows


def build(
    name: str,
    *,
    today: dt.date,
    manager: Any = "all",
    sort: str = "",
    q: str = "",
    status: str = "",
    diagnosis: str = "",
    page: int = 1,
    page_size: int | None = PAGE_SIZE,
) -> WorkList:
    """One page of the list ``name`` filtered and sorted (see the module docstring);
    ``page_size=None``: every row (the CSV export)."""
    spec = LISTS[name]
    rows = filtered(
        name, today=today, manager=manager, sort=sort, q=q, status=status, diagnosis=diagnosis
    )
    if page_size is None:
        found = list(rows)
        total, page, pages = len(found), 1, 1
    else:
        size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        total = rows.count()
        pages = max(1, -(-total // size))
        page = max(1, min(int(page), pages))
        found = list(rows[(page - 1) * size : page * size])
    return WorkList(
        name,
        spec.title,
        list(spec.columns),
        spec.rows(found, today),
        list(spec.statuses),
        total=total,
        page=page,
        pages=pages,
    )


def worklist_csv(table: WorkList, filename: str) -> HttpResponse:
    """The worklist as a CSV download (one header row, then one row per line shown)."""
    text = csv_text(
        [c.label for c in table.columns],
        ([value for _, value in row.cell_list(table.columns)] for row in table.rows),
    )
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
