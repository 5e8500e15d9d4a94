"""The SINS assessment and the portal link moved from the web app to the registry app.

The move is state-only (``registry`` 0008, ``web`` 0006): the tables keep their names and rows.
These tests migrate a database holding one row of each back to before the move and forward
again, reading the rows through the historical models on each side. Run on PostgreSQL with
``DATABASE_URL=postgres://...`` as on SQLite.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from test_pages_support import add_analysed_study, make_patient, vertebra
from test_worklists_support import make_user, patient_with_procedure

from spinewatch.registry import models as rm
from spinewatch.registry.services import create_link, find_follow_up, record_sins_assessment

BEFORE = [("registry", "0007_identity_search_text"), ("web", "0005_outbox_messages")]


def _migrate(targets: list[tuple[str, str]] | None):
    """Migrate to ``targets`` (None: the latest migrations); the model states there."""
    executor = MigrationExecutor(connection)
    if targets is None:
        targets = executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_rows_survive_the_move_both_ways():
    user = make_user("clinician", "dr_move")
    patient = make_patient(3, family="Movebury")
    add_analysed_study(patient, 15, vertebra("T12", collapse_risk="high"))
    finding = rm.VertebraFinding.objects.get(study__patient=patient, level="T12")
    sins = record_sins_assessment(
        finding=finding, pain="mechanical", alignment="normal", assessed_by=user
    )
    _p, proc = patient_with_procedure(4, performed_on=timezone.localdate() - dt.timedelta(days=30))
    link = create_link(follow_up=find_follow_up(procedure=proc, timepoint="1m"), created_by=user)
    tables = {"web_sinsassessment", "web_portallink"}
    assert tables <= set(connection.introspection.table_names())

    old = _migrate(BEFORE)
    assert tables <= set(connection.introspection.table_names())
    with pytest.raises(LookupError):
        old.get_model("registry", "PortalLink")
    old_sins = old.get_model("web", "SinsAssessment").objects.get(pk=sins.pk)
    assert (old_sins.total, old_sins.finding_id) == (sins.total, finding.pk)
    old_link = old.get_model("web", "PortalLink").objects.get(pk=link.link.pk)
    assert old_link.token_hash == link.link.token_hash

    new = _migrate(None)
    with pytest.raises(LookupError):
        new.get_model("web", "SinsAssessment")
    moved = new.get_model("registry", "SinsAssessment").objects.get(pk=sins.pk)
    assert (moved.total, moved.category, moved.assessed_by_id) == (
        sins.total,
        sins.category,
        user.pk,
    )
    assert rm.PortalLink.objects.get(pk=link.link.pk).token_hash == link.link.token_hash
    assert rm.SinsAssessment.objects.filter(finding=finding).count() == 1
