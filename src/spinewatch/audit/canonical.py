"""The canonical serialisation of an audit event, and the JSON-safe form of recorded values.

Each audit event carries ``hash = SHA-256(canonical(event))``, where ``canonical(event)`` is the
UTF-8 encoding of one JSON object, written as follows (format version 1). An external tool can
re-verify a trail from a database dump by following these rules alone:

1. **Members**: exactly these 14 keys, each present (``null`` when empty): ``action``,
   ``actor_id``, ``actor_role``, ``actor_username``, ``at``, ``changes``, ``detail``, ``ip``,
   ``object_id``, ``object_type``, ``patient_study_id``, ``prev_hash``, ``seq``, ``via`` -- every
   column of the table except ``hash`` itself.
2. **Values**: ``seq`` and ``actor_id`` are JSON integers (``actor_id`` may be ``null``); ``at``
   is the UTC timestamp as a string ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fraction digits);
   ``prev_hash`` is the previous event's ``hash`` (64 lower-case hex digits; 64 zeros for the
   first event, :data:`GENESIS_HASH`); ``patient_study_id`` and ``ip`` are strings or ``null``;
   the other scalar members are strings (possibly empty); ``changes`` and ``detail`` are the
   stored JSON objects.
3. **Writing**: object keys sorted by Unicode code point at every depth; no whitespace at all
   (separators ``,`` and ``:``); strings written as UTF-8, not ``\\u``-escaped, except ``"`` and
   ``\\`` (escaped with a backslash), and the control characters U+0000..U+001F, written as
   ``\\b \\t \\n \\f \\r`` or else ``\\u00xx`` (lower-case hex); ``true``/``false``/``null``.
4. **Numbers**: an integer -- or a floating-point number with an integral value -- is written as
   plain decimal digits with an optional leading ``-`` (``4.0`` -> ``4``, ``1e20`` ->
   ``100000000000000000000``, ``-0.0`` -> ``0``); any other number as the shortest decimal
   string that reads back as the same IEEE-754 double (Python's ``repr``: ``4.5``, ``0.1``,
   ``1.5e-07``). Non-finite numbers never occur (:func:`json_safe` stores them as strings).

This is Python's ``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`` after rule 4's integral-float normalisation. The normalisation makes the hash
independent of the database: PostgreSQL's ``jsonb`` gives back ``1e20`` as an integer and may
re-order keys; SQLite keeps the text. :func:`json_safe` applies the same rule before a value is
stored, so what is stored is what was hashed.

Example -- the hash of an event, by hand::

    >>> doc = {"seq": 1, "prev_hash": GENESIS_HASH, "changes": {"vas": [7, 3.0]}}
    >>> canonical_json(doc)[:40]
    b'{"changes":{"vas":[7,3]},"prev_hash":"00'
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import math
import numbers
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

from django.utils.duration import duration_iso_string
from django.utils.functional import Promise

from spinewatch.audit.errors import AuditError

__all__ = [
    "CANONICAL_FIELDS",
    "GENESIS_HASH",
    "canonical_json",
    "canonical_object_texts",
    "canonical_text",
    "chain_hashes",
    "event_document",
    "event_hash",
    "format_at",
    "json_safe",
]

#: ``prev_hash`` of the first event: 64 zeros.
GENESIS_HASH = "0" * 64

#: The members of the hashed document, in canonical (sorted) order.
CANONICAL_FIELDS: tuple[str, ...] = (
    "action",
    "actor_id",
    "actor_role",
    "actor_username",
    "at",
    "changes",
    "detail",
    "ip",
    "object_id",
    "object_type",
    "patient_study_id",
    "prev_hash",
    "seq",
    "via",
)


def format_at(at: dt.datetime) -> str:
    """``at`` (a time-zone-aware datetime) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise AuditError(f"at {at!r}: expected a time-zone-aware datetime")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _number(value: float) -> int | float:
    # Rule 4: integral floats are integers, so the text is the same on every database.
    if value.is_integer():
        return int(value)
    return value


def _normalise(value: Any) -> Any:
    """Apply rule 4 to a JSON value read back from the database (dicts, lists, scalars)."""
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """The canonical UTF-8 JSON text of ``document`` (rules 3 and 4 of the module docstring)."""
    text = json.dumps(
        _normalise(dict(document)),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return text.encode("utf-8")


def event_document(
    *,
    seq: int,
    at: dt.datetime,
    actor_id: int | None,
    actor_username: str,
    actor_role: str,
    via: str,
    action: str,
    object_type: str,
    object_id: str,
    patient_study_id: str | None,
    changes: Mapping[str, Any] | None,
    detail: Mapping[str, Any] | None,
    ip: str | None,
    prev_hash: str,
) -> dict[str, Any]:
    """The document whose canonical JSON is hashed (rules 1 and 2 of the module docstring)."""
    return {
        "action": action,
        "actor_id": actor_id,
        "actor_role": actor_role,
        "actor_username": actor_username,
        "at": format_at(at),
        "changes": changes,
        "detail": detail,
        "ip": ip,
        "object_id": object_id,
        "object_type": object_type,
        "patient_study_id": patient_study_id,
        "prev_hash": prev_hash,
        "seq": seq,
        "via": via,
    }


def event_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 (64 lower-case hex digits) of the canonical JSON of an event document."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


def canonical_text(value: Any) -> str:
    """The canonical JSON text (rule 3) of a value that is already :func:`json_safe` (rule 4
    holds for it: json_safe writes integral floats as integers), without re-walking it."""
    return _ENCODE(value)


_ENCODE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def canonical_object_texts(columns: Mapping[str, Sequence[str]]) -> list[str]:
    """Column-wise :func:`canonical_text` of many objects with the same keys: ``columns`` maps
    each key to the canonical texts of its value in each object (all the same length); returns
    the canonical text of each object (keys sorted by code point, rule 3), without a dict or a
    serialisation per object."""
    keys = sorted(columns)
    lengths = {len(columns[key]) for key in keys}
    if len(lengths) > 1:
        raise AuditError(f"canonical_object_texts: columns of different lengths {sorted(lengths)}")
    prefixed = []
    for key in keys:
        name = f"{_ENCODE(key)}:"
        prefixed.append([name + text for text in columns[key]])
    if not prefixed:
        return []
    return ["{" + ",".join(members) + "}" for members in zip(*prefixed, strict=True)]


def chain_hashes(
    common: Mapping[str, Any],
    varying: Iterable[tuple[str, str, str | None]],
    *,
    seq: int,
    prev_hash: str,
) -> list[str]:
    """The linked hashes of consecutive events that share every member but ``changes``,
    ``object_id`` and ``patient_study_id`` -- what :func:`event_hash` of each
    :func:`event_document` gives, from one precomputed text per event instead of a document.

    ``common``: the shared members (``action``, ``actor_id``, ``actor_role``, ``actor_username``,
    ``at`` as written by :func:`format_at`, ``detail``, ``ip``, ``object_type``, ``via``) as
    JSON-safe values; ``varying``: per event ``(changes_text, object_id, patient_study_id)`` with
    ``changes_text`` the :func:`canonical_text` of the event's ``changes``. The first event is
    number ``seq`` and links to ``prev_hash``. Keys sorted as rule 3 requires: ``changes``
    follows ``at``, and ``object_id``/``patient_study_id`` surround ``object_type``.
    """
    text = _ENCODE
    head = (
        f'{{"action":{text(common["action"])},"actor_id":{text(common["actor_id"])},'
        f'"actor_role":{text(common["actor_role"])},'
        f'"actor_username":{text(common["actor_username"])},"at":{text(common["at"])},"changes":'
    )
    detail = f',"detail":{text(common["detail"])},"ip":{text(common["ip"])},"object_id":'
    object_type = f',"object_type":{text(common["object_type"])},"patient_study_id":'
    via = f',"via":{text(common["via"])}}}'
    sha256 = hashlib.sha256
    hashes: list[str] = []
    for changes_text, object_id, study_id in varying:
        document = (
            f"{head}{changes_text}{detail}{text(object_id)}{object_type}{text(study_id)}"
            f',"prev_hash":"{prev_hash}","seq":{seq}{via}'
        )
        try:
            prev_hash = sha256(document.encode("utf-8")).hexdigest()
        except UnicodeEncodeError:
            raise AuditError(f"event {seq}: {document[:200]!r} is not valid Unicode") from None
        hashes.append(prev_hash)
        seq += 1
    return hashes


def _key(key: object, where: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, enum.Enum):
        return str(key.value)
    if isinstance(key, int | Promise):
        return str(key)
    raise AuditError(f"{where}: key {key!r} ({type(key).__name__}): expected a string key")


def json_safe(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON data that reads back identically from SQLite and PostgreSQL.

    - ``None``, ``bool``, ``str`` unchanged; integers as ``int``; floats with an integral value
      as ``int`` and non-finite floats as the strings ``"nan"``, ``"inf"``, ``"-inf"``;
    - ``Decimal`` as its string (``Decimal("4.50")`` -> ``"4.50"``: no binary rounding);
    - dates, times and datetimes in ISO 8601 (``isoformat()``), durations as ISO 8601 durations;
    - enums (core enums, Django ``TextChoices``) as their value; UUIDs and paths as strings;
      lazy translation strings as strings; a Django model instance as its primary key;
    - mappings as objects with string keys; lists, tuples as arrays; sets as sorted arrays;
      numpy scalars and arrays through ``tolist()``.

    Anything else raises :class:`AuditError` naming ``where`` (the field) and the type.
    """
    if isinstance(value, enum.Enum):  # before str and int: TextChoices, IntEnum members
        return json_safe(value.value, where)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise AuditError(f"{where} {value!r}: expected text that is valid Unicode") from None
        return str(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            return repr(number)
        return _number(number)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return duration_iso_string(value)
    if isinstance(value, uuid.UUID | PurePath | Promise):
        return str(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = _key(key, where)
            if name in out:
                raise AuditError(f"{where}: key {key!r} duplicates {name!r} once written as text")
            out[name] = json_safe(item, f"{where}.{name}")
        return out
    if isinstance(value, list | tuple):
        return [json_safe(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [json_safe(item, f"{where}[]") for item in value]
        return sorted(items, key=lambda item: canonical_json({"v": item}))
    if hasattr(value, "_meta") and hasattr(value, "pk"):  # a Django model instance
        return json_safe(value.pk, where)
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__.startswith("numpy"):
        return json_safe(tolist(), where)
    raise AuditError(
        f"{where} {value!r} ({type(value).__name__}): expected JSON data, a number, Decimal, "
        "date/time, enum, UUID, model instance, mapping or sequence"
    )
