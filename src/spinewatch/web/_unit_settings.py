"""Settings of the unit's daily work, read from the environment (imported by :mod:`.settings`).

- ``SPINEWATCH_SURVEILLANCE_INTERVALS``: the surveillance interval table (JSON text, or the path
  of a JSON file), ``{"malignant": {"no_scan": 90, "low": 90, "moderate": 60, "high": 30,
  "not_assessable": 30, "treat_signal": 30}, "other": {...}}`` in days -- see
  :mod:`spinewatch.core.surveillance` for the default and why; validated at start.
- E-mail (portal links, reminders, staff alerts) through Django's e-mail backend:
  ``SPINEWATCH_SMTP_HOST`` (unset: messages are written as files under ``DATA_DIR/mail``, the
  demo's "mail box"), ``SPINEWATCH_SMTP_PORT`` (25), ``SPINEWATCH_SMTP_USER`` /
  ``SPINEWATCH_SMTP_PASSWORD``, ``SPINEWATCH_SMTP_SECURITY`` (``none``, ``starttls`` or ``tls``),
  ``SPINEWATCH_MAIL_FROM`` (``SpineWatch <spinewatch@localhost>``).
- SMS: ``SPINEWATCH_SMS_BACKEND`` (a dotted path to a
  :class:`spinewatch.web.notify.sms.SmsBackend`; default the file adapter, which appends each
  message to ``SPINEWATCH_SMS_FILE``, default ``DATA_DIR/sms-outbox.jsonl``).
- ``SPINEWATCH_BASE_URL``: the address patients reach the portal at (``https://spine.example``),
  used in links sent by the background sender; unset: the address of the page that queued the
  message.
- ``SPINEWATCH_ALERT_VAS`` (7): a portal answer at or above it alerts the staff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "DEFAULT_FROM_EMAIL",
    "EMAIL_BACKEND",
    "EMAIL_FILE_PATH",
    "EMAIL_HOST",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_HOST_USER",
    "EMAIL_PORT",
    "EMAIL_TIMEOUT",
    "EMAIL_USE_SSL",
    "EMAIL_USE_TLS",
    "SPINEWATCH_ALERT_VAS",
    "SPINEWATCH_BASE_URL",
    "SPINEWATCH_SMS_BACKEND",
    "SPINEWATCH_SMS_FILE",
    "SPINEWATCH_SURVEILLANCE_INTERVALS",
]

_DATA_DIR = Path(os.environ.get("SPINEWATCH_DATA_DIR", "spinewatch-data")).resolve()


def _intervals() -> dict[str, dict[str, int]] | None:
    raw = os.environ.get("SPINEWATCH_SURVEILLANCE_INTERVALS", "").strip()
    if not raw:
        return None
    text = raw if raw.startswith("{") else Path(raw).read_text(encoding="utf-8")
    try:
        from spinewatch.core.surveillance import IntervalRule

        return IntervalRule.from_dict(json.loads(text)).to_dict()
    except (ValueError, OSError) as exc:
        raise ImproperlyConfigured(f"SPINEWATCH_SURVEILLANCE_INTERVALS: {exc}") from exc


SPINEWATCH_SURVEILLANCE_INTERVALS = _intervals()

EMAIL_HOST = os.environ.get("SPINEWATCH_SMTP_HOST", "")
_port = os.environ.get("SPINEWATCH_SMTP_PORT", "25")
if not _port.isdigit() or not 1 <= int(_port) <= 65535:
    raise ImproperlyConfigured(f"SPINEWATCH_SMTP_PORT={_port!r}: expected a port 1..65535")
EMAIL_PORT = int(_port)
EMAIL_HOST_USER = os.environ.get("SPINEWATCH_SMTP_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("SPINEWATCH_SMTP_PASSWORD", "")
_security = os.environ.get("SPINEWATCH_SMTP_SECURITY", "none").lower()
if _security not in ("none", "starttls", "tls"):
    raise ImproperlyConfigured(
        f"SPINEWATCH_SMTP_SECURITY={_security!r}: expected none, starttls or tls"
    )
EMAIL_USE_TLS = _security == "starttls"
EMAIL_USE_SSL = _security == "tls"
EMAIL_TIMEOUT = 15
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend"
)
EMAIL_FILE_PATH = str(_DATA_DIR / "mail")
DEFAULT_FROM_EMAIL = os.environ.get("SPINEWATCH_MAIL_FROM", "SpineWatch <spinewatch@localhost>")

SPINEWATCH_SMS_BACKEND = os.environ.get(
    "SPINEWATCH_SMS_BACKEND", "spinewatch.web.notify.sms.FileSmsBackend"
)
SPINEWATCH_SMS_FILE = os.environ.get("SPINEWATCH_SMS_FILE", str(_DATA_DIR / "sms-outbox.jsonl"))
SPINEWATCH_BASE_URL = os.environ.get("SPINEWATCH_BASE_URL", "").rstrip("/")
_vas = os.environ.get("SPINEWATCH_ALERT_VAS", "7")
try:
    SPINEWATCH_ALERT_VAS = float(_vas)
except ValueError:
    SPINEWATCH_ALERT_VAS = -1.0
if not 0 <= SPINEWATCH_ALERT_VAS <= 10:
    raise ImproperlyConfigured(f"SPINEWATCH_ALERT_VAS={_vas!r}: expected a number 0..10")

# The computed cohort table (``spinewatch.web.cohort.cache``): a file cache in the data directory
# when one is configured (shared by the web workers and the analysis worker), memory otherwise
# (tests, one-off commands without a data directory).
if os.environ.get("SPINEWATCH_DATA_DIR"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(_DATA_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 2000},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
__all__ += ["CACHES"]
