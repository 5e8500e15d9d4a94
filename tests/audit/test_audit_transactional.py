"""Tests that commit for real: concurrent appends, and the audit-aware ``flush``."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections

from spinewatch.audit import triggers
from spinewatch.audit.models import AuditEvent
from spinewatch.audit.trail import record, verify

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.postgres
def test_concurrent_appends_do_not_fork_the_chain():
    """Several connections appending at once (PostgreSQL: the advisory lock serialises them)."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need a server database (SQLite has one writer anyway)")
    n_threads, n_each = 4, 15
    barrier = threading.Barrier(n_threads)
    errors = []

    def append(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(n_each):
                record(
                    actor=f"worker{worker}",
                    action="view",
                    object_type="registry.patient",
                    object_id=i,
                    via="system",
                )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == list(
        range(1, n_threads * n_each + 1)
    )
    result = verify()
    assert result.ok and result.n_events == n_threads * n_each
    per_worker = {
        name: AuditEvent.objects.filter(actor_username=name).count()
        for name in (f"worker{w}" for w in range(n_threads))
    }
    assert set(per_worker.values()) == {n_each}


def test_flush_outside_tests_keeps_the_audit_trail(monkeypatch):
    from django.contrib.auth.models import Group

    from spinewatch.audit.management.commands import flush

    Group.objects.create(name="flush-me")
    record(actor=None, action="create", object_type="auth.group", object_id=1)
    monkeypatch.setattr(flush, "in_test_environment", lambda: False)
    call_command("flush", interactive=False, verbosity=0)
    assert not Group.objects.exists()
    assert AuditEvent.objects.count() == 1 and verify().ok
    assert triggers.installed(connection) == triggers.TRIGGER_NAMES[connection.vendor]


def test_flush_in_tests_empties_the_trail_and_keeps_the_triggers():
    record(actor=None, action="view", object_type="", object_id=None)
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEvent.objects.exists()
    assert triggers.installed(connection) == triggers.TRIGGER_NAMES[connection.vendor]
    assert record(actor=None, action="view", object_type="", object_id=None).seq == 1
