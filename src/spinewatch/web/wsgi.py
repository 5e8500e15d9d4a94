"""WSGI entry point (``spinewatch serve`` uses it; so can any WSGI server).

Outside debug, a served application needs a real secret key: ``SPINEWATCH_SECRET_KEY``, else the
key kept in ``SPINEWATCH_DATA_DIR/secret_key`` (created once, mode 0600). It is put into the
environment before Django reads its settings. The data directory is made private first (0700,
files 0600, umask 077: :func:`spinewatch.web.security.secure_data_dir`).
"""

from __future__ import annotations

import os

from spinewatch.web.security import ensure_secret_key, secure_data_dir, secure_sqlite_files

__all__ = ["application"]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spinewatch.web.settings")
secure_data_dir(os.environ.get("SPINEWATCH_DATA_DIR", "spinewatch-data"))
if os.environ.get("SPINEWATCH_DEBUG", "").lower() not in {"1", "true", "yes", "on"}:
    os.environ["SPINEWATCH_SECRET_KEY"] = ensure_secret_key(
        os.environ.get("SPINEWATCH_DATA_DIR", "spinewatch-data")
    )

from django.conf import settings  # noqa: E402 (after the data directory and key)
from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
secure_sqlite_files(settings.DATABASES)
