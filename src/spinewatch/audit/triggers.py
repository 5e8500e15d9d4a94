"""Database triggers that make the audit table append-only, per database vendor.

The database itself refuses to change or remove an audit event, whatever the client (the ORM, a
raw cursor, ``psql``, ``sqlite3``):

- **PostgreSQL**: the plpgsql function ``spinewatch_audit_refuse()`` raises
  ``integrity_constraint_violation`` (SQLSTATE 23000); a ``BEFORE UPDATE OR DELETE ... FOR EACH
  ROW`` trigger and a ``BEFORE TRUNCATE`` statement trigger call it. Row-level, as on SQLite: a
  statement that matches no row changes nothing and passes (Django's ``loaddata`` tries an
  ``UPDATE`` before each ``INSERT``, so restoring a ``dumpdata`` of the trail works on both).
- **SQLite**: ``BEFORE UPDATE`` and ``BEFORE DELETE`` triggers ``RAISE(ABORT, ...)`` (SQLite has no
  ``TRUNCATE``; ``DELETE FROM`` without ``WHERE`` fires the delete trigger).

Both end in Django's :class:`~django.db.IntegrityError` whose message contains
``"append-only"``.

The SQL below is version 1, installed by migration ``0002_append_only_triggers``; a change to it
needs a new migration (and new constants), never an edit. On SQLite, Django *rebuilds* a table to
alter it (create, copy, drop, rename), which drops its triggers: a future migration that alters
``audit_auditevent`` must call :func:`install` again -- ``tests/audit`` fails if it does not.

Triggers stop application code, not the database owner: a deployment that must resist a
compromised application connects it as a PostgreSQL role that does not own the table and holds
only ``SELECT, INSERT`` on it (see the report of issue 4 / the deployment notes).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TABLE",
    "TRIGGER_NAMES",
    "install",
    "install_sql",
    "installed",
    "remove",
    "remove_sql",
]

TABLE = "audit_auditevent"

_MESSAGE = "audit_auditevent is append-only"

_POSTGRES_INSTALL_V1 = (
    f"""
    CREATE OR REPLACE FUNCTION spinewatch_audit_refuse() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{_MESSAGE}: % refused', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END;
    $$
    """,
    f"""
    CREATE TRIGGER audit_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION spinewatch_audit_refuse()
    """,
    f"""
    CREATE TRIGGER audit_auditevent_no_truncate
    BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION spinewatch_audit_refuse()
    """,
)

_POSTGRES_REMOVE_V1 = (
    f"DROP TRIGGER IF EXISTS audit_auditevent_no_truncate ON {TABLE}",
    f"DROP TRIGGER IF EXISTS audit_auditevent_no_update_delete ON {TABLE}",
    "DROP FUNCTION IF EXISTS spinewatch_audit_refuse()",
)

_SQLITE_INSTALL_V1 = (
    f"""
    CREATE TRIGGER IF NOT EXISTS audit_auditevent_no_update
    BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{_MESSAGE}: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS audit_auditevent_no_delete
    BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{_MESSAGE}: DELETE refused'); END
    """,
)

_SQLITE_REMOVE_V1 = (
    "DROP TRIGGER IF EXISTS audit_auditevent_no_delete",
    "DROP TRIGGER IF EXISTS audit_auditevent_no_update",
)

#: Trigger names per vendor.
TRIGGER_NAMES: dict[str, tuple[str, ...]] = {
    "postgresql": ("audit_auditevent_no_truncate", "audit_auditevent_no_update_delete"),
    "sqlite": ("audit_auditevent_no_delete", "audit_auditevent_no_update"),
}

_INSTALL = {"postgresql": _POSTGRES_INSTALL_V1, "sqlite": _SQLITE_INSTALL_V1}
_REMOVE = {"postgresql": _POSTGRES_REMOVE_V1, "sqlite": _SQLITE_REMOVE_V1}


def _statements(table: dict[str, tuple[str, ...]], vendor: str) -> tuple[str, ...]:
    try:
        return table[vendor]
    except KeyError:
        raise NotImplementedError(
            f"database vendor {vendor!r}: the append-only audit triggers exist for "
            "'postgresql' and 'sqlite' only"
        ) from None


def install_sql(vendor: str) -> tuple[str, ...]:
    """The statements that create the triggers on ``vendor`` (``connection.vendor``)."""
    return _statements(_INSTALL, vendor)


def remove_sql(vendor: str) -> tuple[str, ...]:
    """The statements that drop the triggers on ``vendor``."""
    return _statements(_REMOVE, vendor)


def install(connection: Any) -> None:
    """Create the triggers on ``connection`` (a Django connection)."""
    with connection.cursor() as cursor:
        for sql in install_sql(connection.vendor):
            cursor.execute(sql)  # no parameters: the plpgsql body contains '%'


def remove(connection: Any) -> None:
    """Drop the triggers (reverse migration; test-database flush; tamper simulations in tests)."""
    with connection.cursor() as cursor:
        for sql in remove_sql(connection.vendor):
            cursor.execute(sql)


def installed(connection: Any) -> tuple[str, ...]:
    """The names of the append-only triggers present on the audit table, sorted."""
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal "
                "AND tgenabled <> 'D'",
                [TABLE],
            )
        elif vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [TABLE]
            )
        else:
            _statements(_INSTALL, vendor)
        names = {row[0] for row in cursor.fetchall()}
    return tuple(sorted(names & set(TRIGGER_NAMES[vendor])))
