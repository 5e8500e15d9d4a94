"""set_surveillance_plan: default interval from the diagnosis, create vs change, locking."""

from __future__ import annotations

import datetime as dt

import pytest

from spinewatch.registry.services import (
    RegistryError,
    StaleEditError,
    add_diagnosis,
    add_imaging_study,
    create_patient,
    set_surveillance_plan,
)
from spinewatch.registry.services._base import today

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("kind", "primary", "days"),
    [
        ("myeloma", None, 90),
        ("metastasis", "kidney", 90),
        ("osteoporotic_fracture", None, 180),
        ("haemangioma", None, 180),
        (None, None, 180),
    ],
)
def test_default_interval_from_diagnosis(kind, primary, days):
    p = create_patient()
    if kind:
        add_diagnosis(patient=p, kind=kind, primary_tumour=primary)
    plan = set_surveillance_plan(patient=p)
    assert plan.interval_days == days
    assert plan.next_scan_due == today() + dt.timedelta(days=days)


def test_next_scan_after_latest_study_and_explicit_values(patient):
    add_imaging_study(patient=patient, study_date=dt.date(2024, 1, 10))
    add_imaging_study(patient=patient, study_date=dt.date(2024, 4, 1))
    plan = set_surveillance_plan(patient=patient, interval_days=60, reason="new lesion at L2")
    assert plan.next_scan_due == dt.date(2024, 5, 31)
    plan = set_surveillance_plan(
        patient=patient,
        expected_version=1,
        interval_days=30,
        next_scan_due=dt.date(2024, 5, 1),
        active=False,
    )
    assert (plan.interval_days, plan.next_scan_due, plan.active, plan.version) == (
        30,
        dt.date(2024, 5, 1),
        False,
        2,
    )


def test_create_twice_or_stale_refused(patient):
    set_surveillance_plan(patient=patient)
    with pytest.raises(RegistryError, match="already has a surveillance plan"):
        set_surveillance_plan(patient=patient)
    with pytest.raises(StaleEditError):
        set_surveillance_plan(patient=patient, expected_version=3)
    other = create_patient()
    with pytest.raises(RegistryError, match="no surveillance plan yet"):
        set_surveillance_plan(patient=other, expected_version=1)


@pytest.mark.parametrize("bad", [0, -5, 3651, 1.5, True, "90"])
def test_bad_interval_refused(patient, bad):
    with pytest.raises(RegistryError, match="interval_days"):
        set_surveillance_plan(patient=patient, interval_days=bad)
