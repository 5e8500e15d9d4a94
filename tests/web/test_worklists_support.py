"""Shared builders for the workflow tests (worklists, cohort, portal); holds no tests itself.

Everything is hand-built through the registry's services with fictional identities whose values
are distinctive enough to search the HTML and CSV output for.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.hashers import make_password

from spinewatch.core.procedures import TreatedLevel
from spinewatch.registry.services import (
    IdentityData,
    add_diagnosis,
    create_patient,
    find_follow_up,
    record_follow_up,
    record_procedure,
)

__all__ = ["IDENTITY_FIELDS", "complete", "identity", "make_user", "patient_with_procedure"]

IDENTITY_FIELDS = ("family_name", "given_name", "hospital_number", "phone", "email")


def make_user(role: str, username: str, **fields):
    """A user of ``role`` (fast password hash; tests sign in with ``signed_in``)."""
    from django.contrib.auth import get_user_model

    from spinewatch.accounts.roles import set_role

    user = get_user_model().objects.create(
        username=username, password=make_password(None), **fields
    )
    set_role(user, role)
    return user


def identity(n: int, birth: dt.date = dt.date(1948, 4, 2)) -> IdentityData:
    return IdentityData(
        family_name=f"Zorblatt{n}son",
        given_name=f"Wilhelmina{n}",
        hospital_number=f"HN-99{n:04d}",
        birth_date=birth,
        sex="female",
        phone=f"+44 7700 9{n:05d}",
        email=f"wilhelmina{n}@example.org",
    )


def patient_with_procedure(
    n: int,
    *,
    performed_on: dt.date,
    diagnosis: str = "myeloma",
    case_manager=None,
    level: str = "L1",
    approach: str = "transpedicular",
    procedure_type: str = "vertebroplasty",
):
    """A patient (identity ``n``) with a diagnosis and one procedure; returns (patient, proc)."""
    patient = create_patient(identity=identity(n), case_manager=case_manager)
    primary = "breast" if diagnosis == "metastasis" else None
    add_diagnosis(
        patient=patient,
        kind=diagnosis,
        primary_tumour=primary,
        diagnosed_on=performed_on - dt.timedelta(days=60),
    )
    proc = record_procedure(
        patient=patient,
        performed_on=performed_on,
        procedure_type=procedure_type,
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        levels=[TreatedLevel(level, approach, 11, 4.0)],
        operator="Dr Example",
    )
    return patient, proc


def complete(proc, code: str, when: dt.date, vas: float):
    fu = find_follow_up(procedure=proc, timepoint=code)
    return record_follow_up(follow_up=fu, expected_version=fu.version, completed_on=when, vas=vas)
