"""The canonical serialisation and the JSON-safe form of recorded values (no database)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import uuid

import numpy as np
import pytest
from _audit_support import independent_canonical

from spinewatch.audit.canonical import (
    CANONICAL_FIELDS,
    GENESIS_HASH,
    canonical_json,
    event_document,
    event_hash,
    format_at,
    json_safe,
)
from spinewatch.audit.errors import AuditError
from spinewatch.core.genant import GenantGrade
from spinewatch.core.procedures import Approach

AWKWARD_STRINGS = [
    "",
    "Müller-Lüdenscheidt",
    'O\'Brien "Bob"',
    "back\\slash",
    "line\nbreak\ttab\rcr\bbs\fff",
    "\x00\x01\x1f\x7f",
    "emoji \U0001d11e and \u2028 separator",
    "日本語",
]

AWKWARD_NUMBERS = [0, -1, 2**63 + 5, 4.5, 0.1, 1e20, 1.5e-7, -0.0, 3.0, 1e-300, 123456.789]


def test_fields_are_every_column_but_hash():
    doc = event_document(
        seq=1,
        at=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        actor_id=None,
        actor_username="",
        actor_role="",
        via="system",
        action="view",
        object_type="",
        object_id="",
        patient_study_id=None,
        changes={},
        detail={},
        ip=None,
        prev_hash=GENESIS_HASH,
    )
    assert tuple(sorted(doc)) == CANONICAL_FIELDS
    assert "hash" not in doc
    assert len(GENESIS_HASH) == 64 and set(GENESIS_HASH) == {"0"}


@pytest.mark.parametrize("text", AWKWARD_STRINGS)
def test_strings_match_the_documented_rules(text):
    doc = {"s": text, text: [text]}
    assert canonical_json(doc) == independent_canonical(doc)


@pytest.mark.parametrize("number", AWKWARD_NUMBERS)
def test_numbers_match_the_documented_rules(number):
    doc = {"n": number, "list": [number, {"deep": number}]}
    assert canonical_json(doc) == independent_canonical(doc)
    # An integral float and the integer it equals hash alike: the database may give either back.
    if float(number).is_integer() and abs(number) < 2**53:
        assert canonical_json({"n": float(number)}) == canonical_json({"n": int(number)})


def test_numbers_read_back_as_the_same_value():
    for number in AWKWARD_NUMBERS:
        text = canonical_json({"n": number})
        back = json.loads(text)["n"]
        assert back == number


def test_keys_are_sorted_and_there_is_no_whitespace():
    text = canonical_json({"b": 1, "a": {"z": [1, 2], "y": None}, "A": True}).decode()
    assert text == '{"A":true,"a":{"y":null,"z":[1,2]},"b":1}'


def test_hash_is_sha256_of_the_canonical_bytes():
    doc = {"seq": 1, "prev_hash": GENESIS_HASH, "changes": {"name": "Ærø"}}
    assert event_hash(doc) == hashlib.sha256(independent_canonical(doc)).hexdigest()
    changed = dict(doc, changes={"name": "Aero"})
    assert event_hash(changed) != event_hash(doc)


def test_format_at_is_utc_with_microseconds():
    cet = dt.timezone(dt.timedelta(hours=1))
    assert format_at(dt.datetime(2024, 3, 1, 13, 0, 0, tzinfo=cet)) == "2024-03-01T12:00:00.000000Z"
    assert format_at(dt.datetime(2024, 3, 1, 12, 0, 0, 5, tzinfo=dt.UTC)).endswith(".000005Z")
    with pytest.raises(AuditError, match="time-zone-aware"):
        format_at(dt.datetime(2024, 3, 1, 12, 0))


class Colour(enum.IntEnum):
    RED = 1


def test_json_safe_converts_the_registry_types():
    value = {
        "cement_volume_ml": decimal.Decimal("4.50"),
        "performed_on": dt.date(2024, 3, 1),
        "analysed_at": dt.datetime(2024, 3, 1, 8, 30, tzinfo=dt.UTC),
        "duration": dt.timedelta(minutes=90),
        "approach": Approach.TRANSPEDICULAR,
        "grade": GenantGrade(2),
        "colour": Colour.RED,
        "uid": uuid.UUID(int=5),
        "levels": ("L1", "L2"),
        "tags": {"b", "a", "c"},
        "vas": 3.0,
        "height_mm": np.float64(21.25),
        "count": np.int64(4),
        "array": np.array([1.5, 2.0]),
        7: "int key",
        "bad": float("nan"),
        "worse": float("-inf"),
    }
    safe = json_safe(value)
    assert safe == {
        "cement_volume_ml": "4.50",
        "performed_on": "2024-03-01",
        "analysed_at": "2024-03-01T08:30:00+00:00",
        "duration": "P0DT01H30M00S",
        "approach": Approach.TRANSPEDICULAR.value,
        "grade": GenantGrade(2).value,
        "colour": 1,
        "uid": str(uuid.UUID(int=5)),
        "levels": ["L1", "L2"],
        "tags": ["a", "b", "c"],
        "vas": 3,
        "height_mm": 21.25,
        "count": 4,
        "array": [1.5, 2],
        "7": "int key",
        "bad": "nan",
        "worse": "-inf",
    }
    assert type(safe["vas"]) is int and type(safe["count"]) is int
    assert type(safe["approach"]) is str
    # What is stored is what is hashed: plain JSON that round-trips exactly.
    assert json.loads(canonical_json(safe)) == safe


def test_json_safe_refuses_what_it_cannot_store_and_names_it():
    with pytest.raises(AuditError, match=r"changes\.photo b'\\x89PNG'.*bytes"):
        json_safe({"photo": b"\x89PNG"}, "changes")
    with pytest.raises(AuditError, match="object"):
        json_safe([object()])
    with pytest.raises(AuditError, match="duplicates"):
        json_safe({1: "a", "1": "b"})
    with pytest.raises(AuditError, match="valid Unicode"):
        json_safe({"name": "bad \ud800 surrogate"})
    with pytest.raises(AuditError, match="expected a string key"):
        json_safe({(1, 2): "tuple key"})
