"""The SMS adapter interface and the adapters shipped (no network).

A deployment plugs its SMS gateway in by naming a class with the same ``send`` method in
``SPINEWATCH_SMS_BACKEND``. Shipped: :class:`FileSmsBackend` (appends each message as one JSON
line to ``SPINEWATCH_SMS_FILE``: the demo's and the tests' phone) and :class:`ConsoleSmsBackend`
(logs it). Phone numbers are normalised by :func:`normalise_phone` before they reach an adapter.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from spinewatch.core.errors import InputError

__all__ = [
    "ConsoleSmsBackend",
    "FileSmsBackend",
    "SmsBackend",
    "SmsError",
    "get_sms_backend",
    "normalise_phone",
]

log = logging.getLogger(__name__)
_PHONE = re.compile(r"\+?[0-9]{6,15}")


class SmsError(InputError):
    """A phone number an SMS cannot go to, or an adapter that failed (retried by the outbox)."""


def normalise_phone(number: str) -> str:
    """``"+44 7700 900 123"`` -> ``"+447700900123"``: digits with an optional leading ``+``."""
    compact = re.sub(r"[\s\-().]", "", number or "")
    if not _PHONE.fullmatch(compact):
        raise SmsError(f"phone {number!r}: expected 6-15 digits, optionally after '+'")
    return compact


class SmsBackend(Protocol):
    """Send one text message; return the gateway's message id; raise on failure."""

    def send(self, to: str, text: str) -> str: ...


class FileSmsBackend:
    """Appends ``{"id", "to", "text", "sent_at"}`` as one JSON line to the configured file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path or settings.SPINEWATCH_SMS_FILE)

    def send(self, to: str, text: str) -> str:
        message_id = uuid.uuid4().hex
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"id": message_id, "to": to, "text": text, "sent_at": timezone.now().isoformat()}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
        return message_id


class ConsoleSmsBackend:
    """Logs the message (INFO) instead of sending it."""

    def send(self, to: str, text: str) -> str:
        message_id = uuid.uuid4().hex
        log.info("SMS %s to %s: %s", message_id, to, text)
        return message_id


def get_sms_backend() -> SmsBackend:
    """An instance of ``settings.SPINEWATCH_SMS_BACKEND``."""
    backend: SmsBackend = import_string(settings.SPINEWATCH_SMS_BACKEND)()
    return backend
