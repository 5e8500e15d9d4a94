"""What the worklists contain: follow-ups due, scans due, high-risk vertebrae undecided.

Read-only queries returning small row objects for the templates. ``today`` is a parameter
(default: today in the programme's time zone) so that the boundaries can be tested exactly.

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
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils import timezone

from spinewatch.core.diagnoses import DiagnosisKind
from spinewatch.registry import models as rm
from spinewatch.web.followup_status import VisitStatus, visit_status

__all__ = [
    "HIGH_RISK_DIAGNOSES",
    "SCAN_HORIZON_DAYS",
    "FollowUpRow",
    "ScanRow",
    "follow_ups_due",
    "high_risk_undecided",
    "not_assessable_undecided",
    "surveillance_due",
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


def follow_ups_due(
    *, manager: Any = "all", today: dt.date | None = None, horizon_days: int = 7
) -> list[FollowUpRow]:
    """Visits to chase. ``manager``: ``"all"``, ``"none"`` (patients without a case manager) or
    a user (patients whose case manager is that user)."""
    day = _today(today)
    rows = rm.FollowUp.objects.filter(
        completed_on__isnull=True,
        outcome__isnull=True,
        voided_at__isnull=True,
        procedure__voided_at__isnull=True,
        procedure__patient__voided_at__isnull=True,
        window_start__lte=day + dt.timedelta(days=horizon_days),
    ).select_related("procedure__patient__identity", "procedure__patient__case_manager")
    if manager == "none":
        rows = rows.filter(procedure__patient__case_manager__isnull=True)
    elif manager != "all":
        rows = rows.filter(procedure__patient__case_manager=manager)
    out = []
    for fu in rows:
        status = visit_status(fu, day)
        if status is VisitStatus.MISSED:
            continue
        out.append(
            FollowUpRow(
                follow_up=fu,
                patient=fu.procedure.patient,
                status=status.value,
                days_overdue=max(0, (day - fu.window_end).days),
            )
        )
    order = {"overdue": 0, "due_today": 1, "in_window": 2, "upcoming": 3}
    out.sort(key=lambda r: (order[r.status], r.follow_up.due_date, r.patient.study_id))
    return out


def surveillance_due(*, today: dt.date | None = None) -> list[ScanRow]:
    """Active plans due within :data:`SCAN_HORIZON_DAYS`; high-risk diagnoses first."""
    day = _today(today)
    plans = list(
        rm.SurveillancePlan.objects.filter(
            active=True,
            patient__voided_at__isnull=True,
            next_scan_due__lte=day + dt.timedelta(days=SCAN_HORIZON_DAYS),
        ).select_related("patient__identity", "patient__case_manager")
    )
    ids = [p.patient_id for p in plans]
    kinds: dict[int, list[str]] = {}
    for d in rm.Diagnosis.objects.filter(patient_id__in=ids).order_by("diagnosed_on", "pk"):
        kinds.setdefault(d.patient_id, []).append(str(d))
    high = set(
        rm.Diagnosis.objects.filter(patient_id__in=ids, kind__in=HIGH_RISK_DIAGNOSES).values_list(
            "patient_id", flat=True
        )
    )
    last: dict[int, dt.date] = {}
    for pid, when in rm.ImagingStudy.objects.filter(
        patient_id__in=ids, voided_at__isnull=True
    ).values_list("patient_id", "study_date"):
        if pid not in last or when > last[pid]:
            last[pid] = when
    out = [
        ScanRow(
            plan=p,
            patient=p.patient,
            high_risk=p.patient_id in high,
            diagnoses=kinds.get(p.patient_id, []),
            overdue=p.next_scan_due < day,
            last_scan=last.get(p.patient_id),
        )
        for p in plans
    ]
    out.sort(key=lambda r: (not r.high_risk, r.plan.next_scan_due, r.patient.study_id))
    return out


def _latest_studies() -> list[int]:
    latest: dict[int, int] = {}
    for pk, pid in (
        rm.ImagingStudy.objects.filter(
            analysed_at__isnull=False, voided_at__isnull=True, patient__voided_at__isnull=True
        )
        .order_by("patient_id", "study_date", "pk")
        .values_list("pk", "patient_id")
    ):
        latest[pid] = pk  # the last one per patient wins
    return list(latest.values())


def _undecided(condition: Q) -> list[rm.VertebraFinding]:
    from spinewatch.core.levels import VertebralLevel

    findings = rm.VertebraFinding.objects.filter(
        condition, study_id__in=_latest_studies(), decision="none"
    ).select_related("study__patient__identity")
    rows = list(findings)
    rows.sort(key=lambda f: (f.study.patient.study_id, VertebralLevel.parse(f.level).rank))
    return rows


def high_risk_undecided() -> list[rm.VertebraFinding]:
    """Findings at high collapse risk or with the signal to treat before collapse, without a
    decision, on each patient's latest analysed study (by patient, then cranio-caudal)."""
    return _undecided(Q(collapse_risk="high") | Q(treat_signal=True))


def not_assessable_undecided() -> list[rm.VertebraFinding]:
    """Findings whose collapse risk is not assessable, without a decision, on each patient's
    latest analysed study (those with the signal to treat are in :func:`high_risk_undecided`)."""
    return _undecided(Q(collapse_risk="not_assessable") & ~Q(treat_signal=True))
