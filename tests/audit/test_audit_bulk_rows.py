"""The bulk append of create events (issue 13): canonical texts built column-wise, hashes
chained from one text per event, events written as plain rows -- the same chain as record()."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from _audit_support import independent_verify
from django.db import connection

from spinewatch.audit.canonical import (
    canonical_json,
    canonical_object_texts,
    canonical_text,
    chain_hashes,
    event_document,
    event_hash,
    format_at,
    json_safe,
)
from spinewatch.audit.context import acting_as
from spinewatch.audit.errors import AuditError
from spinewatch.audit.models import AuditEvent
from spinewatch.audit.trail import record, record_created_rows, record_many, verify

_OBJECTS = [
    {"id": 7, "name": 'Zoë "Q" \\ Åsa\n', "vas": 4.0, "when": dt.date(2024, 2, 29)},
    {"id": 8, "name": "", "vas": 0.1, "when": None},
    {"id": 9, "name": "\u00e9\t\u0001", "vas": 1e-7, "when": dt.date(1999, 12, 31)},
]


def test_canonical_object_texts_equal_the_canonical_text_of_each_object():
    safe = [json_safe(obj) for obj in _OBJECTS]
    columns = {key: [canonical_text(obj[key]) for obj in safe] for key in safe[0]}
    texts = canonical_object_texts(columns)
    assert texts == [canonical_json(obj).decode("utf-8") for obj in safe]
    assert canonical_object_texts({}) == []
    with pytest.raises(AuditError, match="different lengths"):
        canonical_object_texts({"a": ["1"], "b": []})


def test_chain_hashes_equal_event_hash_of_each_document():
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC)
    common = {
        "action": "create",
        "actor_id": 3,
        "actor_role": "clinician",
        "actor_username": "dr-\u00e9",
        "detail": {},
        "ip": "10.0.0.1",
        "object_type": "registry.followup",
        "via": "import",
    }
    varying = [
        (canonical_text(json_safe(obj)), str(obj["id"]), study)
        for obj, study in zip(_OBJECTS, ["SW-000001", None, "SW-000003"], strict=True)
    ]
    hashes = chain_hashes({**common, "at": format_at(at)}, varying, seq=41, prev_hash="a" * 64)
    prev = "a" * 64
    for k, (obj, (_text, object_id, study)) in enumerate(zip(_OBJECTS, varying, strict=True)):
        document = event_document(
            seq=41 + k,
            at=at,
            changes=json_safe(obj),
            object_id=object_id,
            patient_study_id=study,
            prev_hash=prev,
            **{key: value for key, value in common.items()},
        )
        assert hashes[k] == event_hash(document)
        prev = hashes[k]


@pytest.mark.django_db
def test_record_created_rows_writes_the_events_record_many_would():
    record(actor="someone", action="view", object_type="registry.patient", object_id=1)
    rows = []
    for obj in _OBJECTS:
        safe = json_safe(obj)
        rows.append((obj["id"], canonical_text(safe), "SW-000009"))
    with acting_as("importer", via="import"):
        assert record_created_rows("registry.followup", rows) == 3
        record_many(
            {
                "actor": None,
                "action": "create",
                "object_type": "registry.followup",
                "object_id": obj["id"],
                "changes": json_safe(obj),
                "patient_study_id": "SW-000009",
            }
            for obj in _OBJECTS
        )
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6, 7]
    bulk, funnel = events[1:4], events[4:7]
    skip = {"seq", "at", "prev_hash", "hash"}
    for a, b in zip(bulk, funnel, strict=True):
        assert {k: v for k, v in a.document().items() if k not in skip} == {
            k: v for k, v in b.document().items() if k not in skip
        }
        assert a.actor_username == "importer" and a.via == "import"
    assert bulk[0].prev_hash == events[0].hash and funnel[0].prev_hash == bulk[-1].hash
    assert verify().ok
    assert independent_verify(connection) == []
    stored = AuditEvent.objects.get(seq=2)
    assert stored.changes == json_safe(_OBJECTS[0])
    assert stored.hash == hashlib.sha256(canonical_json(stored.document())).hexdigest()


@pytest.mark.django_db
def test_record_created_rows_refuses_a_bad_row_before_writing():
    with pytest.raises(AuditError, match="canonical text of a dict"):
        record_created_rows("registry.followup", [(1, "{}", None), (2, "[1]", None)])
    with pytest.raises(AuditError, match="patient_study_id"):
        record_created_rows("registry.followup", [(1, "{}", "")])
    assert record_created_rows("registry.followup", []) == 0
    assert AuditEvent.objects.count() == 0


def _view(object_id: int) -> None:
    record(actor="someone", action="view", object_type="registry.patient", object_id=object_id)


@pytest.mark.django_db(transaction=True)
def test_the_head_is_read_once_per_transaction_and_again_after_a_rollback():
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    _view(1)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        _view(2)
        _view(3)
        _view(4)
    head = 'FROM "audit_auditevent" ORDER BY'
    reads = [q for q in queries.captured_queries if head in q["sql"]]
    assert len(reads) == 1  # then the head is the event just written, under the held lock
    with transaction.atomic():
        _view(5)
        try:
            with transaction.atomic():  # a savepoint whose events roll back
                _view(6)
                _view(7)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        _view(8)  # links to event 5, not to the rolled-back 7
    with pytest.raises(RuntimeError), transaction.atomic():
        _view(9)
        raise RuntimeError("the whole transaction")
    _view(10)
    ids = list(AuditEvent.objects.order_by("seq").values_list("object_id", flat=True))
    assert ids == ["1", "2", "3", "4", "5", "8", "10"]
    assert verify().ok
    assert independent_verify(connection) == []
