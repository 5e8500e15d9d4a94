"""Append to the audit trail and verify it.

:func:`record` appends one event inside the caller's transaction: if the caller's write rolls
back, so does its event, and if recording fails, the caller's transaction is marked for rollback
(no savepoint), so a write never lands without its event. Appends are serialised so the chain
cannot fork: on PostgreSQL with ``pg_advisory_xact_lock(AUDIT_LOCK_KEY)`` (held to the end of the
transaction) before the head of the chain is read; SQLite serialises writers already (its
transactions start ``IMMEDIATE``, see the settings). Whatever the vendor, the primary key on
``seq`` and the unique ``prev_hash`` refuse a forked chain.

:func:`verify` re-reads every event in ``seq`` order (streamed; constant memory) and checks that
``seq`` runs 1, 2, 3 ... without gaps, that each ``prev_hash`` is the previous event's ``hash``
(:data:`~spinewatch.audit.canonical.GENESIS_HASH` for the first) and that each ``hash`` is the
SHA-256 of the event's canonical document (:mod:`spinewatch.audit.canonical`). It thereby finds
edited, deleted, inserted and reordered events -- except an attacker who can write the table and
re-hash every event from the point of tampering to the end, or who removes events from the end.
Against those, anchors are kept outside the database (:mod:`spinewatch.audit.anchor`: the head
is written to the anchor file by each day's first event, once committed, and by ``spinewatch
audit verify``) and checked: ``verify(anchors=[...])`` (or one ``anchor=(seq, hash)``).

Back up the trail with the database's own tools (``pg_dump``, SQLite's ``.backup``) or
``spinewatch manage dumpdata audit --format xml``; Django's JSON serialisation keeps timestamps to
the millisecond only, and :func:`verify` would report every restored event as edited.

In a request, record a view or export *before* returning the response: a streamed response is
iterated after :class:`~spinewatch.audit.middleware.AuditContextMiddleware` has reset the acting
context.

Helpers for the service layer: :func:`model_values` (the field values of a row, for a create or
delete event) and :func:`diff` (``{"field": [old, new]}`` for an update).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from django.utils import timezone

from spinewatch.audit.canonical import (
    GENESIS_HASH,
    canonical_text,
    chain_hashes,
    format_at,
    json_safe,
)
from spinewatch.audit.context import (
    ANONYMOUS,
    Actor,
    current_context,
    parse_ip,
    parse_via,
    resolve_actor,
)
from spinewatch.audit.errors import AuditError
from spinewatch.audit.models import Action, AuditEvent
from spinewatch.audit.rows import insert_rows

__all__ = [
    "AUDIT_LOCK_KEY",
    "VerifyResult",
    "diff",
    "model_values",
    "object_type_of",
    "record",
    "record_created_rows",
    "record_many",
    "verify",
]

logger = logging.getLogger("spinewatch.audit")

#: The PostgreSQL advisory-lock key that serialises appends (b"SWaudit1" as a big-endian int64).
AUDIT_LOCK_KEY = int.from_bytes(b"SWaudit1", "big")

_OBJECT_TYPE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_ACTIONS = frozenset(Action.values)


def _parse_action(value: object) -> str:
    text = getattr(value, "value", value)
    if not isinstance(text, str) or text not in _ACTIONS:
        raise AuditError(f"action {value!r}: expected one of {', '.join(sorted(_ACTIONS))}")
    return text


def _parse_object_type(value: object) -> str:
    if isinstance(value, type) and issubclass(value, models.Model):
        return object_type_of(value)
    if isinstance(value, models.Model):
        return object_type_of(value)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not _OBJECT_TYPE.match(value) or len(value) > 100:
        raise AuditError(
            f"object_type {value!r}: expected 'app_label.model' in lower case "
            "(e.g. 'registry.patient'), a model or an instance"
        )
    return value


def _parse_object_id(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise AuditError(f"object_id {value!r}: expected a primary key (int or str) or None")
    text = str(value)
    if len(text) > 64:
        raise AuditError(f"object_id {value!r}: expected at most 64 characters")
    return text


def _parse_study_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 64:
        raise AuditError(f"patient_study_id {value!r}: expected a study id of 1 to 64 characters")
    return value


def _json_object(name: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AuditError(f"{name} {value!r}: expected a mapping (a dict) or None")
    return cast(dict[str, Any], json_safe(value, name))


def object_type_of(obj: models.Model | type[models.Model]) -> str:
    """``"app_label.model"`` of a model or instance (``Patient`` -> ``"registry.patient"``)."""
    return str(obj._meta.label_lower)


def model_values(obj: models.Model, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The concrete field values of a row, JSON-safe, keyed by column attribute.

    Foreign keys appear as ``<name>_id`` with the referenced primary key (no query). For the
    ``changes`` of a create or delete event.
    """
    skip = set(exclude)
    return {
        f.attname: json_safe(getattr(obj, f.attname), f.attname)
        for f in obj._meta.concrete_fields
        if f.attname not in skip and f.name not in skip
    }


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{"field": [old, new]}`` for each field of ``new`` whose JSON-safe value differs.

    A field missing from ``old`` counts as ``None`` before.
    """
    out: dict[str, list[Any]] = {}
    for name, value in new.items():
        before = json_safe(old.get(name), name)
        after = json_safe(value, name)
        if before != after or type(before) is not type(after):
            out[str(name)] = [before, after]
    return out


def _prepare(
    *,
    actor: object,
    action: str,
    object_type: object,
    object_id: object,
    changes: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
    patient_study_id: str | None = None,
    via: str | None = None,
    ip: str | None = None,
    _context_actor: list[Actor] | None = None,
    _changes_json_safe: bool = False,
) -> AuditEvent:
    """An unsaved event with every argument checked (no ``seq``, ``at`` or hashes yet).
    ``_changes_json_safe``: ``changes`` comes from :func:`model_values` (already JSON-safe)."""
    action_value = _parse_action(action)
    type_value = _parse_object_type(object_type)
    id_value = _parse_object_id(object_id)
    study_value = _parse_study_id(patient_study_id)
    if _changes_json_safe and isinstance(changes, dict):
        changes_value = changes
    else:
        changes_value = _json_object("changes", changes)
    detail_value = _json_object("detail", detail)
    context = current_context()
    who: Actor
    if actor is None:
        if _context_actor:  # resolved once per batch
            who = _context_actor[0]
        else:
            who = context.actor() if context is not None else ANONYMOUS
            if _context_actor is not None:
                _context_actor.append(who)
    else:
        who = resolve_actor(actor)
    via_value = parse_via(via if via is not None else (context.via if context else "system"))
    ip_value = parse_ip(ip if ip is not None else (context.ip if context else None))
    return AuditEvent(
        actor_id=who.id,
        actor_username=who.username,
        actor_role=who.role,
        via=via_value,
        action=action_value,
        object_type=type_value,
        object_id=id_value,
        patient_study_id=study_value,
        changes=changes_value,
        detail=detail_value,
        ip=ip_value,
    )


def record(
    *,
    actor: object,
    action: str,
    object_type: object,
    object_id: object,
    changes: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
    patient_study_id: str | None = None,
    via: str | None = None,
    ip: str | None = None,
    using: str | None = None,
) -> AuditEvent:
    """Append one event to the audit trail, inside the caller's transaction; return it.

    ``actor`` is a Django user, a username, an :class:`~spinewatch.audit.context.Actor`, or
    ``None`` for the acting user of the current context (the request's user, the command's
    :func:`~spinewatch.audit.context.acting_as`; anonymous when there is none). ``via`` and
    ``ip`` default to the context's too (``"system"`` and none outside a context). ``action`` is
    an :class:`~spinewatch.audit.models.Action` (or its value); ``object_type`` is
    ``"app_label.model"`` (or a model, or an instance); ``object_id`` the primary key (or
    ``None``); ``changes`` is ``{"field": [old, new]}`` for an update and ``{"field": value}`` for
    a create or delete (see :func:`diff`, :func:`model_values`); ``detail`` anything else worth
    keeping. Values are made JSON-safe (:func:`~spinewatch.audit.canonical.json_safe`: dates in
    ISO 8601, Decimals as strings, enums as their values).

    Raises :class:`~spinewatch.audit.errors.AuditError` for a bad argument (before touching the
    database); a database error marks the caller's transaction for rollback.
    """
    event = _prepare(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        changes=changes,
        detail=detail,
        patient_study_id=patient_study_id,
        via=via,
        ip=ip,
    )
    return _append([event], using)[0]


def record_many(
    entries: Iterable[Mapping[str, Any]], *, using: str | None = None
) -> list[AuditEvent]:
    """Append several events (each a mapping of :func:`record`'s keyword arguments but
    ``using``) in one go, in the given order; return them.

    The same chain as that many :func:`record` calls -- consecutive ``seq``, each ``prev_hash``
    the previous ``hash`` -- but one lock, one read of the head and one multi-row INSERT
    (per 500 events) instead of three queries per event: for a service that writes many rows at
    once (a patient's follow-up schedule, a bulk import). The events share one timestamp.
    Every entry is checked before the database is touched; nothing is written when one is bad.
    """
    context_actor: list[Actor] = []
    events = [_prepare(**dict(entry), _context_actor=context_actor) for entry in entries]
    return _append(events, using) if events else []


def _lock_head(alias: str) -> tuple[int, str, Any]:
    """Take the append lock (PostgreSQL; SQLite serialises writers) and read the chain's head:
    ``(seq, hash, at)`` of the last event, ``(0, GENESIS_HASH, None)`` for an empty trail.

    Once per transaction: the lock is held to its end, so after an append the head is the
    event just written -- remembered on the connection (:func:`_remember_head`) for as long as
    that append stands. Whether it stands is what Django's on-commit bookkeeping knows already:
    a marker registered with ``on_commit`` at the append is dropped when the transaction, or a
    savepoint the append was made in, rolls back (and the lock taken in a rolled-back savepoint
    goes with it), and when the transaction commits. Marker gone: lock and read again.
    """
    connection = connections[alias]
    remembered = getattr(connection, "_spinewatch_audit_head", None)
    if remembered is not None:
        marker, head = remembered
        if any(entry[1] is marker for entry in connection.run_on_commit):
            return head  # type: ignore[no-any-return]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_LOCK_KEY])
    head = AuditEvent.objects.using(alias).order_by("-seq").values_list("seq", "hash", "at").first()
    return (head[0], head[1], head[2]) if head is not None else (0, GENESIS_HASH, None)


def _remember_head(alias: str, head: tuple[int, str, Any]) -> None:
    """Note ``head`` (just appended, under the lock) for the next append of this transaction."""

    def marker() -> None:  # runs at commit: nothing to do, the note is stale from then on
        pass

    transaction.on_commit(marker, using=alias)
    connections[alias]._spinewatch_audit_head = (marker, head)


def _anchor_first_of_day(
    head_at: Any, now: Any, first_seq: int, first_hash: str, alias: str
) -> None:
    """The day's first event (or the trail's): write it to the anchor file once committed."""
    if head_at is None or head_at.date() != now.date():
        genesis = first_hash if first_seq == 1 else None
        transaction.on_commit(
            lambda: _anchor_after_commit(first_seq, first_hash, genesis, alias), using=alias
        )


def _append(events: list[AuditEvent], using: str | None) -> list[AuditEvent]:
    """Number, link, hash and INSERT prepared events under the append lock."""
    alias = using or router.db_for_write(AuditEvent)
    connection = connections[alias]
    with transaction.atomic(using=alias, savepoint=False):
        seq, prev_hash, head_at = _lock_head(alias)
        now = timezone.now()
        for event in events:
            seq += 1
            event.seq, event.at, event.prev_hash = seq, now, prev_hash
            event.hash = prev_hash = event.compute_hash()
        if len(events) == 1:
            events[0].save(using=alias)
        else:  # the queryset refuses bulk writes from anyone else; this is the append path
            _insert_many(connection, events)
        _anchor_first_of_day(head_at, now, events[0].seq, events[0].hash, alias)
        _remember_head(alias, (seq, prev_hash, now))
    for event in events:
        logger.debug(
            "audit #%d %s %s %s", event.seq, event.action, event.object_type, event.object_id
        )
    return events


def record_created_rows(
    object_type: object,
    rows: Sequence[tuple[object, str, str | None]],
    *,
    using: str | None = None,
) -> int:
    """Append one ``create`` event per new row of one table, for a bulk write; return how many.

    ``rows``: ``(object_id, changes_text, patient_study_id)`` per row, ``changes_text`` the
    :func:`~spinewatch.audit.canonical.canonical_text` of the row's JSON-safe values (what
    :func:`model_values` gives; :func:`~spinewatch.audit.canonical.canonical_object_texts`
    builds them column by column). The events are those of :func:`record_many` with
    ``actor=None, action="create"`` -- same members, same chain, checked by :func:`verify` like
    any other -- but built as plain rows: the one text per event is both stored and hashed
    (:func:`~spinewatch.audit.canonical.chain_hashes`), and on PostgreSQL written with ``COPY``
    (no model instance, no per-value adaptation in Python).
    """
    if not rows:
        return 0
    template = _prepare(actor=None, action="create", object_type=object_type, object_id=None)
    varying = []
    for object_id, changes_text, study_id in rows:
        if not (isinstance(changes_text, str) and changes_text.startswith("{")):
            raise AuditError(f"changes {changes_text!r}: expected the canonical text of a dict")
        varying.append((changes_text, _parse_object_id(object_id), _parse_study_id(study_id)))
    alias = using or router.db_for_write(AuditEvent)
    connection = connections[alias]
    with transaction.atomic(using=alias, savepoint=False):
        head_seq, prev_hash, head_at = _lock_head(alias)
        now = timezone.now()
        common = {
            "action": template.action,
            "actor_id": template.actor_id,
            "actor_role": template.actor_role,
            "actor_username": template.actor_username,
            "at": format_at(now),
            "detail": template.detail,
            "ip": template.ip,
            "object_type": template.object_type,
            "via": template.via,
        }
        hashes = chain_hashes(common, varying, seq=head_seq + 1, prev_hash=prev_hash)
        detail = canonical_text(template.detail)
        constant = (
            template.actor_id,
            template.actor_username,
            template.actor_role,
            template.via,
            template.action,
            template.object_type,
        )
        records = []
        for k, ((changes_text, object_id, study_id), digest) in enumerate(
            zip(varying, hashes, strict=True)
        ):
            seq = head_seq + 1 + k
            records.append(
                (
                    seq,
                    now,
                    *constant,
                    object_id,
                    study_id,
                    changes_text,
                    detail,
                    template.ip,
                    prev_hash,
                    digest,
                )
            )
            prev_hash = digest
        insert_rows(connection, AuditEvent, _COLUMNS, records, json_columns=("changes", "detail"))
        _anchor_first_of_day(head_at, now, head_seq + 1, hashes[0], alias)
        _remember_head(alias, (head_seq + len(rows), hashes[-1], now))
    logger.debug(
        "audit #%d-#%d create %s", head_seq + 1, head_seq + len(rows), template.object_type
    )
    return len(rows)


_COLUMNS = (
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
    "hash",
)


def _insert_many(connection: Any, events: list[AuditEvent]) -> None:
    """One multi-row INSERT per 500 events, the values prepared by the model's own fields
    (``get_db_prep_save``: the same stored form as ``save()``) but without the ORM's per-object
    compilation, which cost as much as the rest of a bulk import."""
    fields = [AuditEvent._meta.get_field(name) for name in _COLUMNS]
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(events), 500):
            chunk = events[start : start + 500]
            params: list[Any] = []
            for event in chunk:
                params.extend(
                    f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields
                )
            cursor.execute(
                f"INSERT INTO {table} ({names}) VALUES {', '.join([row] * len(chunk))}",
                params,
            )
    for event in events:
        event._state.adding = False
        event._state.db = connection.alias


def _anchor_after_commit(seq: int, digest: str, first: str | None, alias: str) -> None:
    """Write the committed event to the anchor file (never raises: the event is stored)."""
    from spinewatch.audit.anchor import write_anchor

    try:
        if first is None:
            first = AuditEvent.objects.using(alias).filter(seq=1).values_list("hash", flat=True)[0]
        write_anchor(seq, digest, first)
    except Exception:  # an anchor is extra evidence; its failure must not break a write
        logger.exception("audit anchor for event %d could not be written", seq)


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`.

    ``n_events`` counts the events found intact (all of them when ``ok``; those before the first
    bad one otherwise); ``first_bad_seq`` is the ``seq`` of the first bad or missing event and
    ``problem`` says what is wrong with it. ``head_seq``/``head_hash`` identify the last intact
    event: note them outside the database as an anchor for a later :func:`verify`.
    ``anchored_seq``: the highest event confirmed by an anchor (None: no anchor checked).
    """

    ok: bool
    n_events: int
    first_bad_seq: int | None
    problem: str | None
    head_seq: int | None = None
    head_hash: str | None = None
    anchored_seq: int | None = None


def _short(digest: str) -> str:
    return f"{digest[:12]}..." if len(digest) > 12 else repr(digest)


def verify(
    *,
    anchor: tuple[int, str] | None = None,
    anchors: Iterable[tuple[int, str]] = (),
    using: str = DEFAULT_DB_ALIAS,
) -> VerifyResult:
    """Recompute every hash and link of the audit trail; stop at the first bad event.

    ``anchor``/``anchors``: ``(seq, hash)`` pairs noted earlier outside the database (the anchor
    file, a previous run): each event ``seq`` must still exist with that hash, which catches
    events removed from the end and a chain re-hashed from some point on. The result's
    ``anchored_seq`` is the highest anchor confirmed.
    """
    wanted: dict[int, str] = {}
    for pair in ([anchor] if anchor is not None else []) + list(anchors):
        seq, digest = pair
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1 or not digest:
            raise AuditError(f"anchor {pair!r}: expected (seq >= 1, hash)")
        if wanted.get(seq, digest) != digest:
            raise AuditError(f"anchors disagree about event {seq}: {wanted[seq]} and {digest}")
        wanted[seq] = digest
    expected_seq = 1
    prev_hash = GENESIS_HASH
    n = 0
    head: tuple[int, str] | None = None

    anchored: int | None = None

    def bad(seq: int, problem: str) -> VerifyResult:
        logger.warning("audit trail verification failed at event %d: %s", seq, problem)
        return VerifyResult(
            False, n, seq, problem, head[0] if head else None, head[1] if head else None, anchored
        )

    events = AuditEvent.objects.using(using).order_by("seq").iterator(chunk_size=2000)
    for event in events:
        if event.seq != expected_seq:
            missing = (
                f"event {expected_seq} is missing"
                if event.seq == expected_seq + 1
                else f"events {expected_seq} to {event.seq - 1} are missing"
            )
            return bad(
                expected_seq,
                f"{missing}: the trail jumps from event {expected_seq - 1} to event {event.seq} "
                "(events deleted or renumbered)",
            )
        if event.prev_hash != prev_hash:
            before = f"event {event.seq - 1}" if event.seq > 1 else "the start of the trail"
            return bad(
                event.seq,
                f"event {event.seq}: prev_hash {_short(event.prev_hash)} is not the hash of "
                f"{before} ({_short(prev_hash)}): events inserted, deleted or reordered before it",
            )
        recomputed = event.compute_hash()
        if recomputed != event.hash:
            return bad(
                event.seq,
                f"event {event.seq}: stored hash {_short(event.hash)} does not match its contents "
                f"(recomputed {_short(recomputed)}): the event was edited",
            )
        noted = wanted.get(event.seq)
        if noted is not None and event.hash != noted:
            return bad(
                event.seq,
                f"event {event.seq}: hash {_short(event.hash)} is not the anchor "
                f"{_short(noted)}: the trail was rewritten up to this event",
            )
        if noted is not None:
            anchored = event.seq
        n += 1
        head = (event.seq, event.hash)
        prev_hash = event.hash
        expected_seq += 1
    beyond = [seq for seq in wanted if seq >= expected_seq]
    if beyond:
        return bad(
            expected_seq,
            f"anchor event {max(beyond)} is missing: the trail ends at event {expected_seq - 1} "
            "(events removed from the end)",
        )
    return VerifyResult(
        True, n, None, None, head[0] if head else None, head[1] if head else None, anchored
    )
