"""record() and verify() on the database (SQLite, and PostgreSQL with DATABASE_URL set)."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import itertools

import pytest
from _audit_support import FIELDS, independent_canonical, independent_verify, raw_rows
from django.db import IntegrityError, connection, transaction

from spinewatch.audit.canonical import GENESIS_HASH
from spinewatch.audit.context import acting_as
from spinewatch.audit.errors import AppendOnlyError, AuditError
from spinewatch.audit.models import AuditEvent
from spinewatch.audit.trail import diff, model_values, record, verify

pytestmark = pytest.mark.django_db


def _simple(**overrides):
    kwargs = {"actor": None, "action": "view", "object_type": "registry.patient", "object_id": 1}
    kwargs.update(overrides)
    return record(**kwargs)


def test_chain_builds_and_verifies(trail):
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in events}) == 5
    result = verify()
    assert result.ok and result.n_events == 5
    assert result.first_bad_seq is None and result.problem is None
    assert (result.head_seq, result.head_hash) == (5, events[-1].hash)
    assert verify(anchor=(3, events[2].hash)).ok


def test_empty_trail_verifies():
    result = verify()
    assert result.ok and result.n_events == 0 and result.head_seq is None


def test_stored_hashes_match_an_independent_reimplementation(trail):
    """Raw rows (no ORM) -> documented canonical form written by hand -> hashlib."""
    rows = raw_rows(connection)
    assert len(rows) == 5
    for row in rows:
        document = {name: row[name] for name in FIELDS}
        assert hashlib.sha256(independent_canonical(document)).hexdigest() == row["hash"]
    assert independent_verify(connection) == []


def test_recorded_fields(trail, clinician):
    first, _, view, export, failed = (AuditEvent.objects.get(seq=e.seq) for e in trail)
    assert (first.actor_id, first.actor_username, first.actor_role) == (
        clinician.pk,
        "dr_house",
        "clinician",
    )
    assert (first.via, first.action, first.object_type, first.object_id) == (
        "web",
        "create",
        "registry.patient",
        "1",
    )
    assert first.patient_study_id == "SW-000001" and first.ip == "10.0.0.7"
    assert first.changes == {"study_id": "SW-000001", "version": 1}
    assert (view.actor_id, view.actor_username) == (None, "researcher_rita")
    assert export.object_id == "" and export.detail["filters"] == {"diagnosis": "myeloma"}
    assert (failed.actor_username, failed.ip) == ("", "2001:db8::1")
    assert failed.at.tzinfo is not None and failed.at.utcoffset() == dt.timedelta(0)
    assert AuditEvent.objects.filter(patient_study_id="SW-000001").count() == 2


def test_awkward_values_round_trip_and_verify():
    changes = {
        "notes": ["", 'Müller "Bob" O\'Brien\nline\ttab \x01 \U0001d11e 日本語'],
        "cement_volume_ml": [decimal.Decimal("4.50"), decimal.Decimal("5")],
        "height_mm": [21.0, 19.25],
        "big": [1e20, 2**62],
        "tiny": [1.5e-7, 0.1],
        "performed_on": [dt.date(2024, 3, 1), None],
        "nested": [{"b": [1, {"a": None}]}, {}],
    }
    event = _simple(action="update", changes=changes)
    stored = AuditEvent.objects.get(seq=event.seq)
    assert stored.changes == event.changes
    assert stored.changes["cement_volume_ml"] == ["4.50", "5"]
    assert stored.changes["performed_on"] == ["2024-03-01", None]
    assert stored.at == event.at  # microseconds kept
    assert stored.compute_hash() == stored.hash == event.hash
    assert verify().ok
    assert independent_verify(connection) == []


def test_rolled_back_write_leaves_no_audit_row():
    _simple()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        _simple(action="update", changes={"vas": [8, 3]})
        assert AuditEvent.objects.count() == 2
        raise Boom
    assert AuditEvent.objects.count() == 1
    again = _simple()
    assert again.seq == 2
    assert verify().ok


def test_failed_append_rolls_back_the_callers_write(monkeypatch):
    """No savepoint: a write never lands without its audit row, even if the caller catches."""
    from django.contrib.auth.models import Group

    def failing_save(self, *args, **kwargs):
        raise IntegrityError("simulated failure of the audit insert")

    with transaction.atomic():
        Group.objects.create(name="written")
        monkeypatch.setattr(AuditEvent, "save", failing_save)
        with pytest.raises(IntegrityError):
            _simple(action="create", object_type="auth.group", object_id=1)
    assert not Group.objects.filter(name="written").exists()


def test_bad_arguments_are_refused_before_anything_is_written():
    cases = [
        ({"action": "frobnicate"}, "action 'frobnicate'"),
        ({"via": "fax"}, "via 'fax'"),
        ({"ip": "10.0.0.300"}, "ip '10.0.0.300'"),
        ({"object_type": "Patient"}, "object_type 'Patient'"),
        ({"object_id": 1.5}, "object_id 1.5"),
        ({"object_id": "x" * 65}, "at most 64"),
        ({"patient_study_id": ""}, "patient_study_id ''"),
        ({"changes": ["vas"]}, "changes \\['vas'\\]: expected a mapping"),
        ({"detail": {"blob": b"x"}}, "detail.blob b'x'"),
        ({"actor": 42}, "actor 42"),
    ]
    for overrides, message in cases:
        with pytest.raises(AuditError, match=message):
            _simple(**overrides)
    assert not AuditEvent.objects.exists()


def test_actor_and_channel_come_from_the_context(clinician):
    with acting_as("dr_house", via="import", ip="192.168.1.9"):
        inside = _simple()
        explicit = _simple(actor="someone_else", via="api", ip="::1")
    outside = _simple()
    assert (inside.actor_id, inside.actor_role, inside.via, inside.ip) == (
        clinician.pk,
        "clinician",
        "import",
        "192.168.1.9",
    )
    assert (explicit.actor_username, explicit.actor_id, explicit.via, explicit.ip) == (
        "someone_else",
        None,
        "api",
        "::1",
    )
    assert (outside.actor_username, outside.actor_id, outside.via, outside.ip) == (
        "",
        None,
        "system",
        None,
    )


def test_trail_survives_deletion_of_the_user(trail, clinician):
    pk = clinician.pk
    clinician.delete()
    assert AuditEvent.objects.filter(actor_id=pk, actor_username="dr_house").count() == 3
    assert verify().ok


def test_python_guards_refuse_changes(trail):
    event = AuditEvent.objects.get(seq=2)
    event.action = "delete"
    with pytest.raises(AppendOnlyError, match="save\\(\\) of stored event 2"):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(seq=2).update(action="delete")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_create([AuditEvent(seq=99)])
    assert verify().ok and AuditEvent.objects.get(seq=2).action == "update"


def test_model_values_and_diff(clinician):
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="clinicians")
    assert model_values(group) == {"id": group.pk, "name": "clinicians"}
    values = model_values(clinician, exclude=["password", "last_login", "date_joined"])
    assert values["username"] == "dr_house" and "password" not in values
    old = {"vas": 8, "analgesic": "opioid", "volume": decimal.Decimal("4.5")}
    new = {"vas": 3, "analgesic": "opioid", "volume": decimal.Decimal("4.5"), "note": "x"}
    assert diff(old, new) == {"vas": [8, 3], "note": [None, "x"]}
    assert diff(old, {"vas": 8.0}) == {}  # the same JSON value


def test_verify_reads_in_constant_memory(monkeypatch):
    """verify() streams with .iterator() instead of loading the table."""
    for _ in range(3):
        _simple()
    calls = []
    original = type(AuditEvent.objects.all()).iterator

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("chunk_size"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(AuditEvent.objects.all()), "iterator", spy)
    assert verify().ok
    assert calls and calls[0] is not None and calls[0] <= 5000
