"""WSGI entry point (``spinewatch serve`` uses it; so can any WSGI server).

Outside debug, a served application needs a real secret key: ``SPINEWATCH_SECRET_KEY``, else the
key kept in ``SPINEWATCH_DATA_DIR/secret_key`` (created once, mode 0600). It is put into the
environment before Django reads its settings.
"""

from __future__ import annotations

import os

from spinewatch.web.security import ensure_secret_key

__all__ = ["application"]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spinewatch.web.settings")
if os.environ.get("SPINEWATCH_DEBUG", "").lower() not in {"1", "true", "yes", "on"}:
    os.environ["SPINEWATCH_SECRET_KEY"] = ensure_secret_key(
        os.environ.get("SPINEWATCH_DATA_DIR", "spinewatch-data")
    )

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
