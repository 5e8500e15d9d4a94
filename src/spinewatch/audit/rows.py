"""Many new rows into one table at once, without model instances: the write under the bulk
paths (:func:`spinewatch.audit.trail.record_created_rows` and the registry's bulk import,
:func:`spinewatch.registry.services._base.inserted_rows`).

On PostgreSQL one ``COPY ... FROM STDIN`` (psycopg adapts the values in C; a multi-row INSERT
of the same rows spent most of its time splitting and quoting the query text in Python);
elsewhere ``executemany`` of one INSERT with the values prepared by the model's own fields.
Either way inside the caller's transaction, and a refused row raises Django's
:class:`~django.db.IntegrityError` (the caller's transaction is then rolled back whole).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import models

__all__ = ["insert_rows"]


def insert_rows(
    connection: Any,
    model: type[models.Model],
    columns: Sequence[str],
    records: Sequence[Sequence[Any]],
    *,
    json_columns: Sequence[str] = (),
) -> None:
    """INSERT ``records`` -- tuples of Python values (``None``, str, int, float, bool, date,
    aware datetime) in the order of ``columns`` (field names of ``model``), the
    ``json_columns`` given as JSON text -- into ``model``'s table on ``connection``."""
    fields = [model._meta.get_field(name) for name in columns]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(f.column) for f in fields)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = f"COPY {table} ({names}) FROM STDIN"
            with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
                for record in records:
                    copy.write_row(record)
            return
        prepare = [
            _as_is if name in json_columns else _prepared_by(field, connection)
            for name, field in zip(columns, fields, strict=True)
        ]
        marks = ", ".join(["%s"] * len(fields))
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks})",
            [[p(v) for p, v in zip(prepare, record, strict=True)] for record in records],
        )


def _as_is(value: Any) -> Any:
    return value


def _prepared_by(field: Any, connection: Any) -> Callable[[Any], Any]:
    return lambda value: field.get_db_prep_save(value, connection)
