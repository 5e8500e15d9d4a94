"""Django set-up for command-line use: the embedded SQLite registry needs no set-up step.

:func:`setup_django` points Django at ``spinewatch.web.settings`` (unless
``DJANGO_SETTINGS_MODULE`` says otherwise), creates the data directory (``SPINEWATCH_DATA_DIR``,
default ``./spinewatch-data``) that holds the SQLite file -- private: 0700, files 0600, see
:func:`spinewatch.web.security.secure_data_dir` -- and applies pending migrations quietly,
so ``spinewatch import cohort x.csv`` works on a fresh machine. With ``DATABASE_URL`` set, the
PostgreSQL database must exist; its tables are migrated the same way.
"""

from __future__ import annotations

import os

__all__ = ["setup_django"]

_done = False


def setup_django(*, migrate: bool = True) -> None:
    """Configure Django once per process; apply migrations when ``migrate`` (idempotent)."""
    global _done
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spinewatch.web.settings")
    import django
    from django.conf import settings

    from spinewatch.web.security import secure_data_dir, secure_sqlite_files

    data_dir = getattr(settings, "DATA_DIR", None)
    if data_dir is not None:
        secure_data_dir(data_dir)  # 0700, files 0600, umask 077
    django.setup()
    if migrate and not _done:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        _done = True
    secure_sqlite_files(settings.DATABASES)
