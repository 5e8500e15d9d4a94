"""The database refuses UPDATE/DELETE/TRUNCATE; tampering with triggers dropped is detected."""

from __future__ import annotations

import pytest
from _audit_support import execute, independent_verify
from django.core.management import call_command
from django.db import IntegrityError, connection, models, transaction

from spinewatch.audit import triggers
from spinewatch.audit.canonical import event_document, event_hash
from spinewatch.audit.models import AuditEvent
from spinewatch.audit.trail import record, verify

pytestmark = pytest.mark.django_db


def _refused(fn, *args, **kwargs):
    """Run fn in a savepoint; it must be refused by the database's append-only trigger."""
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        fn(*args, **kwargs)


def test_triggers_are_installed():
    assert triggers.installed(connection) == triggers.TRIGGER_NAMES[connection.vendor]


def test_orm_writes_that_bypass_the_python_guards_are_refused_by_the_database(trail):
    plain = AuditEvent._base_manager  # a plain Manager: no Python guard
    _refused(plain.filter(seq=2).update, action="delete")
    _refused(plain.filter(seq=2).delete)
    _refused(plain.all().delete)
    event = AuditEvent.objects.get(seq=3)
    event.actor_username = "someone_else"
    _refused(models.Model.save, event, force_update=True)
    _refused(models.Model.delete, event)
    assert AuditEvent.objects.count() == 5
    assert AuditEvent.objects.get(seq=3).actor_username == "researcher_rita"
    assert verify().ok


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'delete' WHERE seq = 2",
        "UPDATE audit_auditevent SET seq = seq + 100",
        "DELETE FROM audit_auditevent WHERE seq = 5",
        "DELETE FROM audit_auditevent",
    ],
)
def test_raw_sql_updates_and_deletes_are_refused(trail, sql):
    _refused(execute, connection, sql)
    assert AuditEvent.objects.count() == 5
    assert verify().ok and independent_verify(connection) == []


def test_truncate_is_refused_on_postgresql(trail):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (DELETE FROM is tested above)")
    _refused(execute, connection, "TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 5


def _dump_and_restore(tmp_path, fmt: str) -> None:
    dump = tmp_path / f"audit.{fmt}"
    call_command("dumpdata", "audit", format=fmt, output=str(dump), verbosity=0)
    triggers.remove(connection)
    execute(connection, "DELETE FROM audit_auditevent")
    triggers.install(connection)
    assert not AuditEvent.objects.exists()
    call_command("loaddata", str(dump), verbosity=0)  # tries an UPDATE before each INSERT
    assert AuditEvent.objects.count() == 5
    assert triggers.installed(connection) == triggers.TRIGGER_NAMES[connection.vendor]


def test_an_xml_dump_of_the_trail_restores_exactly(trail, tmp_path):
    _dump_and_restore(tmp_path, "xml")
    assert verify().ok and independent_verify(connection) == []


def test_a_json_dump_loses_microseconds_and_verify_says_so(trail, tmp_path):
    """Django's JSON serialiser keeps milliseconds only: not a faithful backup of the trail."""
    lossy = [e.seq for e in AuditEvent.objects.all() if e.at.microsecond % 1000]
    _dump_and_restore(tmp_path, "json")
    result = verify()
    if not lossy:  # all five timestamps on whole milliseconds (about 1 run in 10^15)
        assert result.ok
        return
    assert (result.ok, result.first_bad_seq) == (False, lossy[0])
    assert "edited" in result.problem


def test_inserting_remains_possible(trail):
    assert record(actor=None, action="view", object_type="", object_id=None).seq == 6
    assert verify().n_events == 6


# --- tampering, with the triggers dropped inside the test's transaction -----------------------


def test_edited_value_is_detected(tamperable):
    assert execute(connection, "UPDATE audit_auditevent SET actor_username = 'x' WHERE seq = 3")
    result = verify()
    assert not result.ok
    assert result.first_bad_seq == 3 and result.n_events == 2
    assert "edited" in result.problem and "event 3" in result.problem
    assert independent_verify(connection) == [3]


def test_edited_json_value_is_detected(tamperable):
    if connection.vendor == "postgresql":
        sql = "UPDATE audit_auditevent SET changes = %s::jsonb WHERE seq = 2"
    else:
        sql = "UPDATE audit_auditevent SET changes = %s WHERE seq = 2"
    execute(connection, sql, ['{"vas": [8, 2], "analgesic_use": ["opioid", "none"]}'])
    result = verify()
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "edited" in result.problem


def test_edit_with_recomputed_hash_breaks_the_next_link(tamperable):
    event = AuditEvent.objects.get(seq=3)
    event.object_id = "99"
    forged = event.compute_hash()
    execute(
        connection,
        "UPDATE audit_auditevent SET object_id = '99', hash = %s WHERE seq = 3",
        [forged],
    )
    result = verify()
    assert (result.ok, result.first_bad_seq, result.n_events) == (False, 4, 3)
    assert "prev_hash" in result.problem and "event 3" in result.problem


def test_deleted_row_is_detected(tamperable):
    execute(connection, "DELETE FROM audit_auditevent WHERE seq = 3")
    result = verify()
    assert (result.ok, result.first_bad_seq, result.n_events) == (False, 3, 2)
    assert "event 3 is missing" in result.problem


def test_deleted_first_rows_are_detected(tamperable):
    execute(connection, "DELETE FROM audit_auditevent WHERE seq <= 2")
    result = verify()
    assert (result.ok, result.first_bad_seq, result.n_events) == (False, 1, 0)
    assert "events 1 to 2 are missing" in result.problem


def test_deleted_last_row_needs_an_anchor(tamperable):
    head = verify()
    execute(connection, "DELETE FROM audit_auditevent WHERE seq = 5")
    assert verify().ok  # a shorter chain is still a chain ...
    result = verify(anchor=(head.head_seq, head.head_hash))  # ... but the anchor is gone
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert "anchor event 5 is missing" in result.problem


def test_rehashed_chain_is_caught_by_the_anchor(tamperable):
    anchor = (4, AuditEvent.objects.get(seq=4).hash)
    # An attacker edits event 2 and re-hashes every event after it.
    prev = AuditEvent.objects.get(seq=1).hash
    for seq in range(2, 6):
        event = AuditEvent.objects.get(seq=seq)
        if seq == 2:
            event.changes = {"vas": [8, 1]}
        event.prev_hash = prev
        digest = event_hash(event.document())
        execute(
            connection,
            "UPDATE audit_auditevent SET changes = "
            + ("%s::jsonb" if connection.vendor == "postgresql" else "%s")
            + ", prev_hash = %s, hash = %s WHERE seq = %s",
            [
                '{"vas": [8, 1]}' if seq == 2 else _json_text(event.changes),
                prev,
                digest,
                seq,
            ],
        )
        prev = digest
    assert verify().ok
    result = verify(anchor=anchor)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "anchor" in result.problem


def _json_text(value):
    import json

    return json.dumps(value)


def test_swapped_rows_are_detected(tamperable):
    execute(connection, "UPDATE audit_auditevent SET seq = 1002 WHERE seq = 2")
    execute(connection, "UPDATE audit_auditevent SET seq = 2 WHERE seq = 3")
    execute(connection, "UPDATE audit_auditevent SET seq = 3 WHERE seq = 1002")
    result = verify()
    assert (result.ok, result.first_bad_seq, result.n_events) == (False, 2, 1)
    assert "reordered" in result.problem


def _insert(event: AuditEvent) -> None:
    columns = [f.column for f in AuditEvent._meta.fields]
    values = [
        f.get_db_prep_save(getattr(event, f.attname), connection) for f in AuditEvent._meta.fields
    ]
    execute(
        connection,
        f"INSERT INTO audit_auditevent ({', '.join(columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})",
        values,
    )


def _forged(seq: int, prev_hash: str) -> AuditEvent:
    template = AuditEvent.objects.get(seq=1)
    event = AuditEvent(**{f.attname: getattr(template, f.attname) for f in AuditEvent._meta.fields})
    event.seq = seq
    event.prev_hash = prev_hash
    event.object_id = "666"
    event.hash = event_hash(event.document())
    return event


def test_a_forked_chain_is_refused_by_the_database(tamperable):
    """Two events linking to the same predecessor: the unique prev_hash refuses the second."""
    with pytest.raises(IntegrityError), transaction.atomic():
        _insert(_forged(6, AuditEvent.objects.get(seq=4).hash))
    assert verify().ok


def test_row_inserted_in_the_middle_is_detected(tamperable):
    # Make room at seq 3 (from the top down), insert a well-formed forged event there and
    # re-link the displaced event to it (else the unique prev_hash refuses the fork).
    for seq in (5, 4, 3):
        execute(connection, "UPDATE audit_auditevent SET seq = %s WHERE seq = %s", [seq + 1, seq])
    forged = _forged(3, AuditEvent.objects.get(seq=2).hash)
    execute(connection, "UPDATE audit_auditevent SET prev_hash = %s WHERE seq = 4", [forged.hash])
    _insert(forged)
    result = verify()
    assert (result.ok, result.first_bad_seq, result.n_events) == (False, 4, 3)
    assert "edited" in result.problem
    assert independent_verify(connection)[0] == 4


def test_row_appended_with_a_wrong_link_is_detected(tamperable):
    _insert(_forged(6, "f" * 64))
    result = verify()
    assert (result.ok, result.first_bad_seq, result.n_events) == (False, 6, 5)
    assert "prev_hash" in result.problem


def test_documents_are_what_the_model_hashes(trail):
    event = AuditEvent.objects.get(seq=2)
    assert event_hash(event.document()) == event.hash
    assert event.document() == event_document(
        **{f: getattr(event, f) for f in event.document()}  # same values, same document
    )


def test_triggers_are_back_after_the_tamper_tests():
    """The tamper tests drop the triggers inside their transaction; the rollback restores them."""
    assert triggers.installed(connection) == triggers.TRIGGER_NAMES[connection.vendor]
