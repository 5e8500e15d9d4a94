"""Surveillance plans: how often a patient is scanned and when the next scan is due.

Default interval (when none is given), from the patient's diagnoses:

- myeloma or metastasis (bone being destroyed, collapse can come within months): 90 days;
- anything else (osteoporotic fracture, haemangioma, disc herniation) or no diagnosis: 180 days.

The next scan is due one interval after the patient's latest imaging study (or after today when
there is none) unless ``next_scan_due`` is given.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from spinewatch.core.diagnoses import DiagnosisKind
from spinewatch.registry import models as m
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import changed, check_date, created, get, today

__all__ = [
    "DEFAULT_INTERVAL_DAYS",
    "HIGH_RISK_INTERVAL_DAYS",
    "default_interval_days",
    "set_surveillance_plan",
]

HIGH_RISK_INTERVAL_DAYS = 90
DEFAULT_INTERVAL_DAYS = 180
_HIGH_RISK = (DiagnosisKind.MYELOMA.value, DiagnosisKind.METASTASIS.value)


def default_interval_days(patient: m.Patient) -> int:
    """90 days for myeloma or metastasis, 180 otherwise (see the module docstring)."""
    if patient.diagnoses.filter(kind__in=_HIGH_RISK).exists():
        return HIGH_RISK_INTERVAL_DAYS
    return DEFAULT_INTERVAL_DAYS


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

    ``interval_days`` 1..3650 (default from the diagnosis), ``next_scan_due`` a date (default:
    latest study + interval). Creating a plan that exists, or changing one without its version,
    raises RegistryError.
    """
    if interval_days is not None and (
        isinstance(interval_days, bool)
        or not isinstance(interval_days, int)
        or not 1 <= interval_days <= 3650
    ):
        raise RegistryError(f"interval_days {interval_days!r}: expected a whole number 1..3650")
    check_date("next_scan_due", next_scan_due, allow_none=True)
    if not isinstance(active, bool):
        raise RegistryError(f"active {active!r}: expected True or False")
    if not isinstance(reason, str):
        raise RegistryError(f"reason {reason!r}: expected text")
    with transaction.atomic():
        row = get(m.Patient, patient, "patient")
        interval = interval_days if interval_days is not None else default_interval_days(row)
        if next_scan_due is None:
            latest = (
                row.imaging_studies.order_by("-study_date")
                .values_list("study_date", flat=True)
                .first()
            )
            next_scan_due = (latest or today()) + dt.timedelta(days=interval)
        values = {
            "interval_days": interval,
            "next_scan_due": next_scan_due,
            "active": active,
            "reason": reason.strip(),
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
