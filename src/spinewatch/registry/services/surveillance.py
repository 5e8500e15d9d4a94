"""Surveillance plans: how often a patient is scanned and when the next scan is due.

The interval comes from the programme's rule (:mod:`spinewatch.core.surveillance`: diagnosis x
the risk of the patient's most worrying untreated vertebra on the latest analysed scan; the
table is configurable with the setting ``SPINEWATCH_SURVEILLANCE_INTERVALS``), unless a clinician
fixed it (``interval_source="clinician"``).

The plan MOVES with the scans: every scan registered, analysed, voided, and every decision or
procedure that changes the risk calls :func:`advance_plan`, which sets ``next_scan_due`` to the
latest (not voided) scan's date + the interval -- so a patient scanned today leaves the "scans
due" worklist at once, and a high-risk finding brings the next scan forward. A patient without a
plan is not put under surveillance by a scan: a clinician creates the plan.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction

from spinewatch.core.surveillance import DEFAULT_RULE, IntervalRule, RiskState
from spinewatch.registry import models as m
from spinewatch.registry.choices import Decision, IntervalSource
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import changed, check_date, created, get, today

__all__ = [
    "DEFAULT_INTERVAL_DAYS",
    "HIGH_RISK_INTERVAL_DAYS",
    "advance_plan",
    "default_interval_days",
    "interval_rule",
    "patient_risk_state",
    "set_surveillance_plan",
]

HIGH_RISK_INTERVAL_DAYS = DEFAULT_RULE.interval_days(["myeloma"], RiskState.NO_SCAN)
DEFAULT_INTERVAL_DAYS = DEFAULT_RULE.interval_days([], RiskState.NO_SCAN)

#: Order of concern of the states a finding can put a patient in (highest first).
_CONCERN = (
    RiskState.TREAT_SIGNAL,
    RiskState.HIGH,
    RiskState.NOT_ASSESSABLE,
    RiskState.MODERATE,
    RiskState.LOW,
)


def interval_rule() -> IntervalRule:
    """The programme's rule: ``settings.SPINEWATCH_SURVEILLANCE_INTERVALS`` (a table as in
    :meth:`IntervalRule.from_dict`) or the documented default."""
    table = getattr(settings, "SPINEWATCH_SURVEILLANCE_INTERVALS", None)
    return DEFAULT_RULE if not table else IntervalRule.from_dict(table)


def latest_analysed_study(patient: m.Patient) -> m.ImagingStudy | None:
    """The patient's latest analysed study that is not voided (by date, then id)."""
    return (
        m.ImagingStudy.objects.filter(
            patient=patient, analysed_at__isnull=False, voided_at__isnull=True
        )
        .order_by("-study_date", "-pk")
        .first()
    )


def patient_risk_state(patient: m.Patient) -> RiskState:
    """The most worrying untreated vertebra of the latest analysed scan (see the core rule)."""
    study = latest_analysed_study(patient)
    if study is None:
        return RiskState.NO_SCAN
    found: set[RiskState] = set()
    for risk, signal in study.findings.exclude(decision=Decision.TREATED).values_list(
        "collapse_risk", "treat_signal"
    ):
        if signal:
            found.add(RiskState.TREAT_SIGNAL)
        if risk in ("low", "moderate", "high", "not_assessable"):
            found.add(RiskState(risk))
    for state in _CONCERN:
        if state in found:
            return state
    return RiskState.LOW


def _diagnoses(patient: m.Patient) -> list[str]:
    return list(patient.diagnoses.values_list("kind", flat=True))


def default_interval_days(patient: m.Patient) -> int:
    """The rule's interval for the patient's diagnoses and current risk state."""
    return interval_rule().interval_days(_diagnoses(patient), patient_risk_state(patient))


def _latest_scan_date(patient: m.Patient) -> dt.date | None:
    return (
        patient.imaging_studies.filter(voided_at__isnull=True)
        .order_by("-study_date")
        .values_list("study_date", flat=True)
        .first()
    )


def advance_plan(patient: m.Patient | int) -> m.SurveillancePlan | None:
    """Move the patient's plan after a scan or a change of risk (see the module docstring).

    Returns the plan (changed only when a value differs), or None when the patient has none.
    """
    with transaction.atomic():
        row = get(m.Patient, patient, "patient")
        plan = m.SurveillancePlan.objects.filter(patient=row).first()
        if plan is None:
            return None
        state = patient_risk_state(row)
        interval = plan.interval_days
        if plan.interval_source == IntervalSource.RULE:
            interval = interval_rule().interval_days(_diagnoses(row), state)
        latest = _latest_scan_date(row)
        changes: dict[str, Any] = {"interval_days": interval, "risk_state": state.value}
        if latest is not None:
            changes["next_scan_due"] = latest + dt.timedelta(days=interval)
        if all(getattr(plan, k) == v for k, v in changes.items()):
            return plan
        return changed(
            plan,
            what=f"surveillance plan of patient {row.study_id}",
            changes=changes,
            expected_version=plan.version,
        )


def _check_interval(interval_days: object) -> None:
    if interval_days is not None and (
        isinstance(interval_days, bool)
        or not isinstance(interval_days, int)
        or not 1 <= interval_days <= 3650
    ):
        raise RegistryError(f"interval_days {interval_days!r}: expected a whole number 1..3650")


def set_surveillance_plan(
    *,
    patient: m.Patient | int,
    expected_version: int | None = None,
    interval_days: int | None = None,
    next_scan_due: dt.date | None = None,
    active: bool = True,
    reason: str = "",
) -> m.SurveillancePlan:
    """Create the patient's plan, or change it (then ``expected_version`` is the plan's version).

    ``interval_days`` 1..3650 fixes the interval (``interval_source="clinician"``: later scans
    move the date but keep it); ``None`` lets the programme's rule decide (``"rule"``).
    ``next_scan_due`` a date (default: latest scan + interval, or today + interval without a
    scan). Creating a plan that exists, or changing one without its version, raises
    RegistryError.
    """
    _check_interval(interval_days)
    check_date("next_scan_due", next_scan_due, allow_none=True)
    if not isinstance(active, bool):
        raise RegistryError(f"active {active!r}: expected True or False")
    if not isinstance(reason, str):
        raise RegistryError(f"reason {reason!r}: expected text")
    with transaction.atomic():
        row = get(m.Patient, patient, "patient")
        state = patient_risk_state(row)
        source = IntervalSource.RULE if interval_days is None else IntervalSource.CLINICIAN
        interval = (
            interval_days
            if interval_days is not None
            else interval_rule().interval_days(_diagnoses(row), state)
        )
        if next_scan_due is None:
            next_scan_due = (_latest_scan_date(row) or today()) + dt.timedelta(days=interval)
        values = {
            "interval_days": interval,
            "next_scan_due": next_scan_due,
            "active": active,
            "reason": reason.strip(),
            "interval_source": source.value,
            "risk_state": state.value,
        }
        plan = m.SurveillancePlan.objects.filter(patient=row).first()
        if plan is None:
            if expected_version is not None:
                raise RegistryError(
                    f"expected_version {expected_version!r}: patient {row.study_id} has no "
                    "surveillance plan yet (create it without expected_version)"
                )
            return created(m.SurveillancePlan(patient=row, **values))
        if expected_version is None:
            raise RegistryError(
                f"patient {row.study_id} already has a surveillance plan (version {plan.version}); "
                "pass expected_version to change it"
            )
        return changed(
            plan,
            what=f"surveillance plan of patient {row.study_id}",
            changes=values,
            expected_version=expected_version,
        )
