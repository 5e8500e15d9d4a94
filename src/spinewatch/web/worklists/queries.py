"""What the worklists contain: follow-ups due, scans due, high-risk vertebrae undecided.

Read-only queries, filtered, ordered and paged in the database (each list is a queryset a page
is sliced from; the ``*_rows`` helpers turn a page into small row objects for the templates).
``today`` is a parameter (default: today in the programme's time zone) so that the boundaries can
be tested exactly.

Voided patients, procedures, visits and scans are left out everywhere, and so are visits with a
recorded outcome (died, lost to follow-up, withdrew, declined).

- Follow-ups: visits not completed whose window has opened by ``today + horizon_days``, with the
  status of :func:`spinewatch.web.followup_status.visit_status` (``overdue`` / ``due_today`` /
  ``in_window`` / ``upcoming``). Overdue first. A pre-operative baseline whose window has closed is
  ``missed`` (no longer actionable) and left out.
- Surveillance: active plans with ``next_scan_due <= today + 14 days``; patients with a myeloma or
  metastasis diagnosis first, then by due date; ``overdue`` when ``next_scan_due < today``.
- High risk: findings rated ``collapse_risk == "high"`` -- or carrying the comparison's signal to
  treat before collapse (``treat_signal``), whatever their risk -- with decision ``none`` on each
  patient's LATEST analysed study (by study date, then id).
- Not assessable: findings whose risk could not be assessed (heights, density or lesions not
  measured), decision ``none``, same studies: they need a look (another scan, a clinician's
  reading), never a silent "low". Listed after the high-risk ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import (
    Case,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from spinewatch.core.diagnoses import DiagnosisKind
from spinewatch.registry import models as rm
from spinewatch.registry.choices import LEVEL_CHOICES
from spinewatch.web.followup_status import visit_status

__all__ = [
    "HIGH_RISK",
    "HIGH_RISK_DIAGNOSES",
    "NOT_ASSESSABLE",
    "SCAN_HORIZON_DAYS",
    "FollowUpRow",
    "ScanRow",
    "follow_up_rows",
    "follow_ups_due",
    "high_risk_undecided",
    "not_assessable_undecided",
    "open_follow_ups",
    "scan_rows",
    "scans_due",
    "surveillance_due",
    "undecided_findings",
]

SCAN_HORIZON_DAYS = 14
HIGH_RISK_DIAGNOSES = (DiagnosisKind.MYELOMA.value, DiagnosisKind.METASTASIS.value)


@dataclass(frozen=True)
class FollowUpRow:
    follow_up: rm.FollowUp
    patient: rm.Patient
    status: str  # overdue / due_today / in_window / upcoming
    days_overdue: int


@dataclass(frozen=True)
class ScanRow:
    plan: rm.SurveillancePlan
    patient: rm.Patient
    high_risk: bool
    diagnoses: list[str]
    overdue: bool
    last_scan: dt.date | None


def _today(today: dt.date | None) -> dt.date:
    return today if today is not None else timezone.localdate()


def open_follow_ups(
    *, manager: Any = "all", today: dt.date | None = None, horizon_days: int = 7
) -> QuerySet[rm.FollowUp]:
    """The visits to chase as a queryset in worklist order, filtered and ordered in the
    database (page it with a slice): annotated ``status_rank`` (0 overdue, 1 due today, 2 in
    window, 3 upcoming). A missed baseline is left out: the baseline is the time point with
    offset 0 (core ``FollowUpProtocol``: exactly one, first), so its due date is the procedure's
    date."""
    day = _today(today)
    rows = (
        rm.FollowUp.objects.filter(
            completed_on__isnull=True,
            outcome__isnull=True,
            voided_at__isnull=True,
            procedure__voided_at__isnull=True,
            procedure__patient__voided_at__isnull=True,
            window_start__lte=day + dt.timedelta(days=horizon_days),
        )
        .exclude(window_end__lt=day, due_date=F("procedure__performed_on"))
        .annotate(
            status_rank=Case(
                When(window_end__lt=day, then=Value(0)),
                When(due_date=day, then=Value(1)),
                When(window_start__lte=day, then=Value(2)),
                default=Value(3),
                output_field=IntegerField(),
            )
        )
        .select_related("procedure__patient__identity", "procedure__patient__case_manager")
    )
    if manager == "none":
        rows = rows.filter(procedure__patient__case_manager__isnull=True)
    elif manager != "all":
        rows = rows.filter(procedure__patient__case_manager=manager)
    return rows.order_by("status_rank", "due_date", "procedure__patient__study_id", "pk")


def follow_up_rows(
    follow_ups: Iterable[rm.FollowUp], today: dt.date | None = None
) -> list[FollowUpRow]:
    """Row objects of (a page of) :func:`open_follow_ups`."""
    day = _today(today)
    return [
        FollowUpRow(
            follow_up=fu,
            patient=fu.procedure.patient,
            status=visit_status(fu, day).value,
            days_overdue=max(0, (day - fu.window_end).days),
        )
        for fu in follow_ups
    ]


def follow_ups_due(
    *,
    manager: Any = "all",
    today: dt.date | None = None,
    horizon_days: int = 7,
    limit: int | None = None,
) -> list[FollowUpRow]:
    """Visits to chase (the first ``limit``, or all). ``manager``: ``"all"``, ``"none"``
    (patients without a case manager) or a user (patients whose case manager is that user)."""
    rows = open_follow_ups(manager=manager, today=today, horizon_days=horizon_days)
    return follow_up_rows(rows if limit is None else rows[:limit], today)


def scans_due(*, today: dt.date | None = None) -> QuerySet[rm.SurveillancePlan]:
    """Active plans due within :data:`SCAN_HORIZON_DAYS` as a queryset in worklist order
    (high-risk diagnoses first, then by due date), annotated ``high_risk``."""
    day = _today(today)
    return (
        rm.SurveillancePlan.objects.filter(
            active=True,
            patient__voided_at__isnull=True,
            next_scan_due__lte=day + dt.timedelta(days=SCAN_HORIZON_DAYS),
        )
        .annotate(
            high_risk=Exists(
                rm.Diagnosis.objects.filter(
                    patient_id=OuterRef("patient_id"), kind__in=HIGH_RISK_DIAGNOSES
                )
            )
        )
        .select_related("patient__identity", "patient__case_manager")
        .order_by("-high_risk", "next_scan_due", "patient__study_id", "pk")
    )


def scan_rows(plans: Iterable[rm.SurveillancePlan], today: dt.date | None = None) -> list[ScanRow]:
    """Row objects of (a page of) :func:`scans_due`: two more queries for the page's patients."""
    day = _today(today)
    plans = list(plans)
    ids = [p.patient_id for p in plans]
    kinds: dict[int, list[str]] = {}
    for d in rm.Diagnosis.objects.filter(patient_id__in=ids).order_by("diagnosed_on", "pk"):
        kinds.setdefault(d.patient_id, []).append(str(d))
    last = dict(
        rm.ImagingStudy.objects.filter(patient_id__in=ids, voided_at__isnull=True)
        .values("patient_id")
        .annotate(last=Max("study_date"))
        .values_list("patient_id", "last")
    )
    return [
        ScanRow(
            plan=p,
            patient=p.patient,
            high_risk=bool(getattr(p, "high_risk", False)),
            diagnoses=kinds.get(p.patient_id, []),
            overdue=p.next_scan_due < day,
            last_scan=last.get(p.patient_id),
        )
        for p in plans
    ]


def surveillance_due(*, today: dt.date | None = None, limit: int | None = None) -> list[ScanRow]:
    """Active plans due within :data:`SCAN_HORIZON_DAYS`; high-risk diagnoses first (the first
    ``limit``, or all)."""
    plans = scans_due(today=today)
    return scan_rows(plans if limit is None else plans[:limit], today)


def _level_rank() -> Case:
    from spinewatch.core.levels import VertebralLevel

    whens = []
    for value, _label in LEVEL_CHOICES:
        whens.append(When(level=value, then=Value(VertebralLevel.parse(value).rank)))
    return Case(*whens, default=Value(1_000), output_field=IntegerField())


def undecided_findings(condition: Q) -> QuerySet[rm.VertebraFinding]:
    """Findings matching ``condition`` without a decision on each patient's latest analysed
    (not voided) study, in the database: by patient, then cranio-caudal (``level_rank``)."""
    later = rm.ImagingStudy.objects.filter(
        patient_id=OuterRef("study__patient_id"),
        analysed_at__isnull=False,
        voided_at__isnull=True,
    ).filter(
        Q(study_date__gt=OuterRef("study__study_date"))
        | Q(study_date=OuterRef("study__study_date"), pk__gt=OuterRef("study_id"))
    )
    return (
        rm.VertebraFinding.objects.filter(
            condition,
            decision="none",
            study__analysed_at__isnull=False,
            study__voided_at__isnull=True,
            study__patient__voided_at__isnull=True,
        )
        .filter(~Exists(later))
        .annotate(level_rank=_level_rank())
        .select_related("study__patient__identity")
        .order_by("study__patient__study_id", "level_rank", "pk")
    )


HIGH_RISK = Q(collapse_risk="high") | Q(treat_signal=True)
NOT_ASSESSABLE = Q(collapse_risk="not_assessable") & ~Q(treat_signal=True)


def high_risk_undecided(*, limit: int | None = None) -> list[rm.VertebraFinding]:
    """Findings at high collapse risk or with the signal to treat before collapse, without a
    decision, on each patient's latest analysed study (by patient, then cranio-caudal)."""
    rows = undecided_findings(HIGH_RISK)
    return list(rows if limit is None else rows[:limit])


def not_assessable_undecided(*, limit: int | None = None) -> list[rm.VertebraFinding]:
    """Findings whose collapse risk is not assessable, without a decision, on each patient's
    latest analysed study (those with the signal to treat are in :func:`high_risk_undecided`)."""
    rows = undecided_findings(NOT_ASSESSABLE)
    return list(rows if limit is None else rows[:limit])
