"""Django settings, read once from the environment and failing fast on bad values.

- ``SPINEWATCH_DATA_DIR``: where the embedded SQLite registry lives (default ``./spinewatch-data``).
- ``DATABASE_URL``: a PostgreSQL URL (``postgres://user@host:5432/name``) selects PostgreSQL.
- ``SPINEWATCH_SECRET_KEY``: required outside debug; a fixed development key is used in debug.
- ``SPINEWATCH_DEBUG``: ``1`` for development.
- ``SPINEWATCH_SEGMENTER``: which segmenter the worker runs on a CT uploaded without a label map:
  ``builtin`` (default; classical, CPU, seconds) or ``totalsegmentator`` (its model and weights
  installed offline; minutes on a CPU).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected 1/0, true/false, yes/no or on/off")


DEBUG = _flag("SPINEWATCH_DEBUG", False)
DATA_DIR = Path(os.environ.get("SPINEWATCH_DATA_DIR", "spinewatch-data")).resolve()

SPINEWATCH_SEGMENTER = os.environ.get("SPINEWATCH_SEGMENTER", "").strip().lower() or "builtin"
if SPINEWATCH_SEGMENTER not in {"builtin", "totalsegmentator"}:
    raise ImproperlyConfigured(
        f"SPINEWATCH_SEGMENTER={SPINEWATCH_SEGMENTER!r}: expected builtin or totalsegmentator"
    )

SECRET_KEY = os.environ.get("SPINEWATCH_SECRET_KEY", "")
if not SECRET_KEY:
    # Command-line use and tests need no secret; `spinewatch serve` sets a real one (a key file
    # created once in the data directory) before Django starts.
    SECRET_KEY = "spinewatch-insecure-development-key-not-for-deployment"

ALLOWED_HOSTS = [
    h for h in os.environ.get("SPINEWATCH_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "spinewatch.accounts",
    "spinewatch.registry",
    "spinewatch.audit",
    "spinewatch.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "spinewatch.web.security.StaticFilesMiddleware",  # WhiteNoise
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "spinewatch.audit.middleware.AuditContextMiddleware",
    "spinewatch.accounts.middleware.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "spinewatch.web.security.SecurityHeadersMiddleware",
    "axes.middleware.AxesMiddleware",  # must be last
]

ROOT_URLCONF = "spinewatch.web.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_database_url = os.environ.get("DATABASE_URL", "")
if _database_url:
    if not _database_url.startswith(("postgres://", "postgresql://", "sqlite:")):
        raise ImproperlyConfigured(
            f"DATABASE_URL={_database_url!r}: expected postgres://... or sqlite:///path"
        )
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "registry.sqlite3"),
            "OPTIONS": {"transaction_mode": "IMMEDIATE"},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

from spinewatch.web._pacs_settings import *  # noqa: E402,F403
from spinewatch.web._security_settings import *  # noqa: E402,F403
from spinewatch.web._unit_settings import *  # noqa: E402,F403
