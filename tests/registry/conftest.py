"""Fixtures for the registry tests: a few users, a patient, core treated levels."""

from __future__ import annotations

import datetime as dt

import pytest

from spinewatch.core.procedures import TreatedLevel


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        username="nurse", first_name="Ada", last_name="Nightingale"
    )


@pytest.fixture
def patient(db):
    from spinewatch.registry.services import create_patient

    return create_patient()


@pytest.fixture
def l1_l2():
    return [
        TreatedLevel("L1", "transpedicular", 11, 4.5),
        TreatedLevel("L2", "parapedicular", 13, 3.0),
    ]


@pytest.fixture
def procedure(patient, l1_l2):
    from spinewatch.registry.services import record_procedure

    return record_procedure(
        patient=patient,
        performed_on=dt.date(2024, 3, 1),
        procedure_type="vertebroplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        levels=l1_l2,
        operator="Dr Who",
    )
