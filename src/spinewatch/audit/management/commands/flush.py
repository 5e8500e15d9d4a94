"""``flush`` that respects the append-only audit trail.

Django's ``flush`` empties every table with ``TRUNCATE`` (PostgreSQL) or ``DELETE`` (SQLite),
which the audit table's triggers refuse. This command replaces it (an installed app's command
overrides Django's own):

- in a test run (Django's test environment is set up: ``django.core.mail.outbox`` exists), the
  triggers are dropped, every table is emptied -- the audit trail too -- and the triggers are
  re-created, all in one transaction: ``TransactionTestCase`` and pytest-django's
  ``transactional_db`` / ``live_server`` tests reset the database this way after each test;
- otherwise every table *but the audit trail* is emptied: the trail of what happened to the
  removed data stays.
"""

from __future__ import annotations

import contextlib
from importlib import import_module
from typing import Any

from django.apps import apps
from django.core import mail
from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.core.management.commands import flush
from django.db import connections, transaction

from spinewatch.audit import triggers

__all__ = ["Command", "in_test_environment"]


def in_test_environment() -> bool:
    """Whether Django's test environment is set up (``setup_test_environment`` was called)."""
    return hasattr(mail, "outbox")


class Command(flush.Command):
    help = (
        "Removes ALL DATA from the database except the append-only audit trail "
        "(emptied too only in a test run)."
    )

    def handle(self, **options: Any) -> None:
        database = options["database"]
        connection = connections[database]
        if triggers.TABLE not in connection.introspection.table_names():
            super().handle(**options)  # the audit app is not migrated here
            return
        if in_test_environment():
            with transaction.atomic(using=database):
                triggers.remove(connection)
                super().handle(**options)
                triggers.install(connection)
            return
        for app_config in apps.get_app_configs():  # as Django's flush: register signal handlers
            with contextlib.suppress(ImportError):
                import_module(".management", app_config.name)
        keep = {triggers.TABLE}
        tables = [
            t
            for t in connection.introspection.django_table_names(only_existing=True)
            if t not in keep
        ]
        sql_list = connection.ops.sql_flush(
            no_style(),
            tables,
            reset_sequences=options.get("reset_sequences", True),
            allow_cascade=options.get("allow_cascade", False),
        )
        if options["interactive"]:
            confirm = input(
                "You have requested a flush of the database.\n"
                "This will IRREVERSIBLY DESTROY all data currently in the "
                f"{connection.settings_dict['NAME']!r} database except the audit trail,\n"
                "and return each table to an empty state.\n"
                "Are you sure you want to do this?\n\n"
                "    Type 'yes' to continue, or 'no' to cancel: "
            )
        else:
            confirm = "yes"
        if confirm != "yes":
            self.stdout.write("Flush cancelled.")
            return
        try:
            connection.ops.execute_sql_flush(sql_list)
        except Exception as exc:
            raise CommandError(
                f"Database {connection.settings_dict['NAME']} couldn't be flushed: {exc}"
            ) from exc
        if sql_list and not options.get("inhibit_post_migrate", False):
            from django.core.management.sql import emit_post_migrate_signal

            emit_post_migrate_signal(options["verbosity"], options["interactive"], database)
