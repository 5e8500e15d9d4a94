"""Test helpers for the audit trail: an independent re-implementation of the canonical form.

Written from the rules in the docstring of ``spinewatch.audit.canonical`` only -- by hand, not
with ``json.dumps`` -- so that the documentation, not the library, is what the tests hold the
stored hashes to. Also: raw reads of the audit table and trigger removal for tamper tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_username",
    "actor_role",
    "via",
    "action",
    "object_type",
    "object_id",
    "patient_study_id",
    "changes",
    "detail",
    "ip",
    "prev_hash",
)

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_SHORT_ESCAPES["\r"] = "\\r"


def _string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _write(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == int(value):
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ",".join(_write(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(_string(k) + ":" + _write(v) for k, v in items) + "}"
    raise TypeError(f"not JSON: {value!r}")


def independent_canonical(document: dict[str, Any]) -> bytes:
    """The canonical bytes of a document, by hand from the documented rules."""
    return _write(document).encode("utf-8")


def _at_text(value: Any) -> str:
    if isinstance(value, str):  # SQLite returns the stored text "YYYY-MM-DD HH:MM:SS[.ffffff]"
        value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_column(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def raw_rows(connection) -> list[dict[str, Any]]:
    """Every audit row as read with a plain cursor (no ORM), ordered by seq, with its hash."""
    columns = [*FIELDS, "hash"]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM audit_auditevent ORDER BY seq")
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["at"] = _at_text(row["at"])
        row["changes"] = _json_column(row["changes"])
        row["detail"] = _json_column(row["detail"])
    return rows


def independent_verify(connection) -> list[int]:
    """Re-verify the whole table by hand: the seqs whose hash or link is wrong (empty if none)."""
    bad = []
    prev = "0" * 64
    for expected_seq, row in enumerate(raw_rows(connection), start=1):
        document = {name: row[name] for name in FIELDS}
        digest = hashlib.sha256(independent_canonical(document)).hexdigest()
        if row["seq"] != expected_seq or row["prev_hash"] != prev or digest != row["hash"]:
            bad.append(row["seq"])
        prev = row["hash"]
    return bad


def drop_triggers(connection) -> None:
    """Remove the append-only triggers by raw SQL, as an attacker with DDL rights would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER audit_auditevent_no_update_delete ON audit_auditevent")
            cursor.execute("DROP TRIGGER audit_auditevent_no_truncate ON audit_auditevent")
        else:
            cursor.execute("DROP TRIGGER audit_auditevent_no_update")
            cursor.execute("DROP TRIGGER audit_auditevent_no_delete")


def execute(connection, sql: str, params: list[Any] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
