"""Fixtures for the audit-trail tests: users with roles, a few recorded events, tampering."""

from __future__ import annotations

import pytest
from _audit_support import drop_triggers


@pytest.fixture
def clinician(django_user_model):
    from django.contrib.auth.models import Group

    from spinewatch.accounts.events import recorded_by_service

    # Set-up outside the trail under test: these tests count and number its events from 1.
    with recorded_by_service():
        user = django_user_model.objects.create_user(username="dr_house")
        user.groups.add(Group.objects.get_or_create(name="clinician")[0])
    return user


@pytest.fixture
def trail(db, clinician):
    """Five events: create, update, view, export and a failed log-in; returns them in order."""
    from spinewatch.audit.trail import record

    return [
        record(
            actor=clinician,
            action="create",
            object_type="registry.patient",
            object_id=1,
            changes={"study_id": "SW-000001", "version": 1},
            patient_study_id="SW-000001",
            via="web",
            ip="10.0.0.7",
        ),
        record(
            actor=clinician,
            action="update",
            object_type="registry.followup",
            object_id=7,
            changes={"vas": [8, 3], "analgesic_use": ["opioid", "none"]},
            patient_study_id="SW-000001",
            via="web",
        ),
        record(
            actor="researcher_rita",
            action="view",
            object_type="registry.patient",
            object_id=2,
            patient_study_id="SW-000002",
            via="api",
        ),
        record(
            actor=clinician,
            action="export",
            object_type="registry.cohort",
            object_id=None,
            detail={"rows": 120, "filters": {"diagnosis": "myeloma"}},
            via="web",
        ),
        record(
            actor=None,
            action="login_failed",
            object_type="auth.user",
            object_id=None,
            detail={"username": "mallory"},
            via="web",
            ip="2001:db8::1",
        ),
    ]


@pytest.fixture
def tamperable(trail):
    """The trail with its append-only triggers dropped (inside the test's transaction, which
    rolls back -- the triggers come back after the test)."""
    from django.db import connection

    drop_triggers(connection)
    return trail
