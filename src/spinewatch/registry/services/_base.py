"""The one funnel every registry write goes through, and small shared helpers.

:func:`created`, :func:`changed`, :func:`changed_if` and :func:`deleted` are the only functions
in SpineWatch that write registry rows. They validate the row (``full_clean``: field choices,
lengths and the model's constraints, turned into :class:`RegistryError` naming field and value)
and implement optimistic locking: :func:`changed` issues ``UPDATE ... SET version = version + 1
WHERE pk = %s AND version = %s`` and refuses the edit (:class:`StaleEditError`) when no row
matched, which is race-free on PostgreSQL as on SQLite. Each records its audit event in the same
transaction; no other code does.

Their transactions are ``atomic(savepoint=False)``: a write and its audit event are one unit
inside the caller's transaction without a SAVEPOINT/RELEASE pair per row (two queries of each
write). A refused write therefore fails the caller's whole atomic block -- the service, whose
own ``transaction.atomic()`` rolls back to its savepoint -- and is never caught and continued
inside it.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F
from django.utils import timezone

from spinewatch.audit.canonical import canonical_object_texts, canonical_text, json_safe
from spinewatch.audit.rows import insert_rows
from spinewatch.audit.trail import diff, model_values, record, record_created_rows, record_many
from spinewatch.core.errors import InputError
from spinewatch.registry.errors import NotFoundError, RegistryError, StaleEditError

__all__ = [
    "UNCHANGED",
    "Unchanged",
    "changed",
    "changed_if",
    "check_date",
    "check_version",
    "created",
    "created_many",
    "deleted",
    "get",
    "inserted_rows",
    "parse_field",
    "today",
]

logger = logging.getLogger("spinewatch.registry")

M = TypeVar("M", bound=models.Model)
T = TypeVar("T")


class Unchanged(enum.Enum):
    """The default of update arguments: leave the field as it is (``None`` may be a real value)."""

    UNCHANGED = "unchanged"

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = Unchanged.UNCHANGED


def today() -> dt.date:
    """Today's date in the programme's time zone (``settings.TIME_ZONE``)."""
    return timezone.localdate()


def get(model: type[M], ref: M | int, what: str) -> M:
    """The ``model`` row ``ref`` (an instance, re-read, or a primary key); else NotFoundError."""
    if isinstance(ref, model):
        pk = ref.pk
    elif isinstance(ref, int) and not isinstance(ref, bool):
        pk = ref
    else:
        raise RegistryError(f"{what} {ref!r}: expected a {model.__name__} or its id")
    try:
        return model.objects.get(pk=pk)  # type: ignore[attr-defined,no-any-return]
    except model.DoesNotExist:  # type: ignore[attr-defined]
        raise NotFoundError(f"{what} {pk!r} does not exist") from None


def check_version(value: object) -> int:
    """``expected_version`` must be a positive int (the version the caller read)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RegistryError(
            f"expected_version {value!r}: expected a positive integer", field="expected_version"
        )
    return value


def check_date(
    field: str,
    value: object,
    *,
    allow_none: bool = False,
    not_future: bool = False,
    today_is: dt.date | None = None,
) -> dt.date | None:
    """A calendar date (not a datetime, not a string); optionally not after today
    (``today_is``: today's date read once by a caller that checks many dates)."""
    if value is None and allow_none:
        return None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise RegistryError(f"{field} {value!r}: expected a date (datetime.date)", field=field)
    if not_future:
        now = today_is or today()
        if value > now:
            raise RegistryError(
                f"{field} {value.isoformat()} is in the future (today is {now})", field=field
            )
    return value


def parse_field(field: str, parse: Callable[[Any], T], value: object) -> T:
    """Parse ``value`` with a core parser; its error becomes a RegistryError naming the field."""
    try:
        return parse(value)
    except InputError as exc:
        inner = f"{field}.{exc.field}" if exc.field else field
        raise RegistryError(f"{field}: {exc}", field=inner) from exc


def _validation_message(obj: models.Model, exc: ValidationError) -> str:
    parts = []
    for field, messages in exc.message_dict.items():
        text = "; ".join(str(m) for m in messages)
        if field == "__all__":
            parts.append(text)
        else:
            parts.append(f"{field} {getattr(obj, field, None)!r}: {text}")
    return f"{obj._meta.verbose_name}: " + "; ".join(parts)


def _full_clean(obj: models.Model, *, unique: bool = True) -> None:
    # Field checks (choices, lengths, formats) and unique fields in Python, for clear messages;
    # the Meta constraints are left to the database (one query each in Python would make an
    # import of a few thousand rows crawl) and reported by _integrity().
    # Relations are not re-read here: the services pass rows they fetched, and the database's
    # foreign keys refuse a dangling one anyway.
    relations = [f.name for f in obj._meta.fields if f.is_relation]
    try:
        obj.full_clean(exclude=relations, validate_unique=unique, validate_constraints=False)
    except ValidationError as exc:
        fields = [f for f in exc.message_dict if f != "__all__"]
        raise RegistryError(
            _validation_message(obj, exc), field=fields[0] if fields else None
        ) from exc


@contextmanager
def _integrity(obj: models.Model) -> Iterator[None]:
    """Turn a database constraint violation into RegistryError (the service's atomic rolls back)."""
    try:
        yield
    except IntegrityError as exc:
        raise RegistryError(
            f"{obj._meta.verbose_name}: refused by the database ({exc})".strip()
        ) from exc


def _study_id(obj: models.Model) -> str | None:
    """The study id of the patient a row belongs to (for the audit trail's per-patient view)."""
    for _ in range(4):
        study_id = getattr(obj, "study_id", None)
        if isinstance(study_id, str):
            return study_id
        for parent in ("patient", "procedure", "study", "follow_up", "finding"):
            if getattr(obj, f"{parent}_id", None) is not None:
                obj = getattr(obj, parent)
                break
        else:
            return None
    return None


def created(obj: M, *, check_unique: bool = True) -> M:
    """Validate and INSERT a new row, with its audit event in the same transaction.

    ``check_unique=False``: the caller checked the unique fields already (one query each saved);
    the database's unique constraints still refuse a clash (RegistryError)."""
    _full_clean(obj, unique=check_unique)
    with transaction.atomic(savepoint=False):  # see the module docstring
        with _integrity(obj):
            obj.save(force_insert=True)
        record(
            actor=None,
            action="create",
            object_type=obj,
            object_id=obj.pk,
            changes=model_values(obj),
            patient_study_id=_study_id(obj),
        )
    logger.debug("created %s %s", obj._meta.label, obj.pk)
    return obj


def created_many(objs: Sequence[M], *, check_unique: bool = True) -> list[M]:
    """:func:`created` for several new rows of one model: each validated, then ONE multi-row
    INSERT (per 500 rows) and one batch of audit events (``audit.trail.record_many``: the same
    events as one :func:`created` per row) in one transaction -- all or nothing.

    ``check_unique=False`` leaves unique fields to the database (a bulk import that checked
    them for the whole batch at once); a clash is then a RegistryError for the whole batch.
    """
    rows = list(objs)
    if not rows:
        return rows
    model = type(rows[0])
    for obj in rows:
        if type(obj) is not model:
            raise RegistryError(f"created_many: {obj!r} is not a {model.__name__}")
        _full_clean(obj, unique=check_unique)
    with transaction.atomic(savepoint=False):  # see the module docstring
        with _integrity(rows[0]):
            model._default_manager.bulk_create(rows, batch_size=500)
        record_many(
            {
                "actor": None,
                "action": "create",
                "object_type": obj,
                "object_id": obj.pk,
                "changes": model_values(obj),
                "patient_study_id": _study_id(obj),
                "_changes_json_safe": True,
            }
            for obj in rows
        )
    logger.debug("created %d %s", len(rows), model._meta.label)
    return rows


def inserted_rows(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    study_ids: Sequence[str | None],
) -> list[int]:
    """:func:`created_many` for a bulk import: new rows given as values (``{attname: value}``,
    foreign keys as ``<name>_id``), each row ``rows[i]`` of the patient ``study_ids[i]`` (for
    its audit event); returns their primary keys, in order.

    The same checks as :func:`created_many` with ``check_unique=False`` (every field's own
    checks -- choices, lengths, null and blank -- each distinct value once per field and call;
    Meta constraints, unique fields and relations left to the database, a refusal failing the
    whole batch), the same defaults, and the same ``create`` events
    (:func:`~spinewatch.audit.trail.record_created_rows`: one per row, ``changes`` equal to
    :func:`~spinewatch.audit.trail.model_values` of the row). But no model instance is made:
    the work is done column by column (each distinct value of a column checked, made JSON-safe
    and written as canonical JSON once), primary keys are taken from the table's sequence in
    one query, and the rows are written with ``COPY`` on PostgreSQL
    (:func:`~spinewatch.audit.rows.insert_rows`) -- what makes an import of 100,000 patients
    a matter of minutes.
    """
    if len(rows) != len(study_ids):
        raise RegistryError(f"inserted_rows: {len(rows)} rows but {len(study_ids)} study ids")
    if not rows:
        return []
    meta = model._meta
    pk = meta.pk
    auto_pk = isinstance(pk, models.AutoField | models.BigAutoField | models.SmallAutoField)
    fields = [f for f in meta.concrete_fields if not (f is pk and auto_pk)]
    known = {f.attname for f in fields}
    for row in rows:
        if not known.issuperset(row):
            unknown = sorted(set(row) - known)
            raise RegistryError(f"{meta.verbose_name}: no field {unknown[0]!r}")
    now = timezone.now()
    stored: dict[str, list[Any]] = {}
    texts: dict[str, list[str]] = {}
    for f in fields:
        auto_now = getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False)
        default = now if auto_now else f.get_default()
        name = f.attname
        stored[name], texts[name] = _Column(f).convert([row.get(name, default) for row in rows])
    if auto_pk:
        ids = _new_ids(model, len(rows))
        stored[pk.attname] = ids  # type: ignore[assignment]
        texts[pk.attname] = [str(i) for i in ids]
    else:
        ids = stored[pk.attname]
    names = [pk.attname] + [f.attname for f in fields if f is not pk]
    records = list(zip(*(stored[name] for name in names), strict=True))
    changes = canonical_object_texts(texts)
    events = list(zip(ids, changes, study_ids, strict=True))
    json_columns = [f.attname for f in fields if isinstance(f, models.JSONField)]
    with transaction.atomic(savepoint=False), _integrity(model):  # type: ignore[arg-type]
        insert_rows(connection, model, names, records, json_columns=json_columns)
        record_created_rows(model, events)
    logger.debug("created %d %s (bulk)", len(rows), meta.label)
    return list(ids)


class _Column:
    """The values of one field for :func:`inserted_rows`: each distinct value checked by the
    field once (``Field.clean``, what ``full_clean`` runs per row) and turned into its stored
    form and the canonical JSON text of its :func:`~spinewatch.audit.canonical.json_safe` form
    (the audit event's ``changes``)."""

    def __init__(self, field: models.Field[Any, Any]) -> None:
        self.field = field
        self.check = not field.is_relation
        self.json = isinstance(field, models.JSONField)

    def convert(self, values: list[Any]) -> tuple[list[Any], list[str]]:
        seen: dict[Any, tuple[Any, str]] = {}
        stored: list[Any] = []
        texts: list[str] = []
        for i, raw in enumerate(values):
            try:
                key: Any = (type(raw), raw)
                hit = seen.get(key)
            except TypeError:  # a dict or list (a JSON field): each object checked once
                key = id(raw)  # alive in ``values`` for the whole loop
                hit = seen.get(key)
            if hit is None:
                hit = seen[key] = self._convert(raw, i)
            stored.append(hit[0])
            texts.append(hit[1])
        return stored, texts

    def _convert(self, raw: Any, i: int) -> tuple[Any, str]:
        value = raw
        name = self.field.attname
        if self.check:
            try:
                value = self.field.clean(raw, None)
            except ValidationError as exc:
                what = self.field.model._meta.verbose_name
                text = "; ".join(exc.messages)
                raise RegistryError(f"{what} {i}: {name} {raw!r}: {text}", field=name) from exc
        # keys and foreign keys (most values of a bulk write) are plain ints
        text = str(value) if type(value) is int else canonical_text(json_safe(value, name))
        if self.json:
            value = json.dumps(value, cls=self.field.encoder)  # type: ignore[attr-defined]
        return value, text


def _new_ids(model: type[models.Model], n: int) -> list[int]:
    """``n`` new primary keys of ``model``'s table, in one query: from its sequence on
    PostgreSQL (never handed out twice); above the highest ever used on SQLite (whose writers
    are serialised: the caller's transaction holds the write lock)."""
    table = model._meta.db_table
    column = model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [connection.ops.quote_name(table), column, n],
            )
            return sorted(int(row[0]) for row in cursor.fetchall())
        quote = connection.ops.quote_name
        cursor.execute(f"SELECT MAX({quote(column)}) FROM {quote(table)}")
        highest = cursor.fetchone()[0] or 0
        if connection.vendor == "sqlite":
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            highest = max(highest, row[0] if row else 0)
    return list(range(highest + 1, highest + 1 + n))


def changed(
    obj: M,
    *,
    what: str,
    changes: Mapping[str, Any],
    expected_version: int | None,
) -> M:
    """Apply ``changes`` to ``obj``'s row if it is still at ``expected_version``; bump its version.

    Models without a ``version`` column (the identity, child rows of a procedure) are changed
    under their parent's lock and pass ``expected_version=None``. Returns the refreshed object.
    Raises StaleEditError when the row moved on, NotFoundError when it is gone.
    """
    model = type(obj)
    versioned = any(f.name == "version" for f in model._meta.fields)
    current = model.objects.filter(pk=obj.pk).order_by().first()  # type: ignore[attr-defined]
    if current is None:
        raise NotFoundError(f"{what} no longer exists")
    if versioned:
        expected = check_version(expected_version)
        if current.version != expected:
            raise StaleEditError(what, current_version=current.version, expected_version=expected)
    old = {name: getattr(current, name) for name in changes}
    for name, value in changes.items():
        setattr(current, name, value)
    _full_clean(current)
    with transaction.atomic(savepoint=False):  # see the module docstring
        _update_row(model, obj, current, what, changes, expected if versioned else None)
        if delta := diff(old, changes):
            record(
                actor=None,
                action="update",
                object_type=current,
                object_id=current.pk,
                changes=delta,
                patient_study_id=_study_id(obj),  # obj, not the re-read row: parents loaded
            )
    logger.debug("changed %s %s: %s", model._meta.label, obj.pk, sorted(changes))
    return current  # type: ignore[no-any-return]


def _update_row(
    model: Any,
    obj: models.Model,
    current: Any,
    what: str,
    changes: Mapping[str, Any],
    expected: int | None,
) -> None:
    rows = model.objects.filter(pk=obj.pk)
    if expected is not None:
        with _integrity(current):
            updated = rows.filter(version=expected).update(version=F("version") + 1, **changes)
        if updated == 0:  # lost a race between the read above and this UPDATE
            now = model.objects.filter(pk=obj.pk).values_list("version", flat=True).first()
            if now is None:
                raise NotFoundError(f"{what} no longer exists")
            raise StaleEditError(what, current_version=now, expected_version=expected)
        current.version = expected + 1
    elif changes:
        with _integrity(current):
            rows.update(**changes)


def changed_if(
    obj: M,
    *,
    changes: Mapping[str, Any],
    where: Mapping[str, Any],
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Apply ``changes`` to ``obj``'s row only if the row still matches ``where`` (lookups of
    ``QuerySet.filter``), in ONE conditional ``UPDATE``, with its audit event; False (nothing
    written) when the row no longer matches.

    For a claim that exactly one of several concurrent requests may win (using a single-use link,
    revoking it), where :func:`changed`'s read-then-write would let two win. ``obj`` is updated
    in place when the change is made.
    """
    model = type(obj)
    old = {name: getattr(obj, name) for name in changes}
    with transaction.atomic():
        with _integrity(obj):
            updated = model._default_manager.filter(pk=obj.pk, **where).update(**changes)
        if updated:
            for name, value in changes.items():
                setattr(obj, name, value)
            record(
                actor=None,
                action="update",
                object_type=obj,
                object_id=obj.pk,
                changes=diff(old, changes),
                detail=dict(detail) if detail is not None else None,
                patient_study_id=_study_id(obj),
            )
    logger.debug("changed_if %s %s: %s", model._meta.label, obj.pk, bool(updated))
    return bool(updated)


def deleted(obj: models.Model) -> None:
    """DELETE a row (and its cascade), with its audit event in the same transaction."""
    values, pk, study_id = model_values(obj), obj.pk, _study_id(obj)
    with transaction.atomic(savepoint=False):  # see the module docstring
        _, cascade = obj.delete()
        record(
            actor=None,
            action="delete",
            object_type=obj,
            object_id=pk,
            changes=values,
            detail={"cascade": cascade},
            patient_study_id=study_id,
        )
    logger.debug("deleted %s %s", obj._meta.label, pk)
