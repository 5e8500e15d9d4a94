"""Queue and send outbox messages: persisted, retried, never lost.

- :func:`queue` writes a row (inside the caller's transaction; a ``dedupe_key`` already used
  makes it a no-op, so "once per visit" holds however often the caller runs).
- :func:`send_due` (the worker calls it on every poll; ``spinewatch notify`` runs it once)
  recovers messages whose sender died while sending (``sending`` for more than
  :data:`STALE_SENDING_S`), claims due messages one by one with a conditional UPDATE (no two
  senders send the same message), sends each through Django's e-mail backend or the SMS
  adapter, and marks it sent -- or, on failure, schedules the next attempt after 1, 2, 4, 8 ...
  minutes, and marks it failed after ``max_attempts``. Delivery is at-least-once: a sender that
  dies after the SMTP server accepted a message but before marking it sent sends it again.
- A portal-link message makes its link when it is sent (:func:`spinewatch.registry.services.portal.
  create_link`; the token is never stored in the outbox); a visit completed or voided in the
  meantime cancels the message.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from spinewatch.web.notify.models import Channel, MessageStatus, OutboundMessage
from spinewatch.web.notify.sms import get_sms_backend, normalise_phone

__all__ = ["STALE_SENDING_S", "SendSummary", "queue", "send_due"]

log = logging.getLogger(__name__)

STALE_SENDING_S = 600
"""A message left ``sending`` this long lost its sender; it is queued again."""


def queue(
    *,
    channel: str,
    kind: str,
    to: str,
    body: str,
    subject: str = "",
    follow_up: Any = None,
    patient_study_id: str = "",
    base_url: str = "",
    dedupe_key: str | None = None,
) -> OutboundMessage | None:
    """Queue one message; None when ``dedupe_key`` was already used (nothing written)."""
    if channel == Channel.SMS:
        to = normalise_phone(to)
    message = OutboundMessage(
        channel=channel,
        kind=kind,
        to=to,
        subject=subject[:200],
        body=body,
        follow_up=follow_up,
        patient_study_id=patient_study_id,
        base_url=(base_url or settings.SPINEWATCH_BASE_URL).rstrip("/"),
        dedupe_key=dedupe_key,
        next_attempt_at=timezone.now(),
    )
    if dedupe_key is not None:
        if OutboundMessage.objects.filter(dedupe_key=dedupe_key).exists():
            return None
        try:
            with transaction.atomic():
                message.save()
        except IntegrityError:  # a concurrent writer queued it first
            return None
        return message
    message.save()
    return message


@dataclass(frozen=True)
class SendSummary:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    recovered: int = 0


class _Cancel(Exception):
    pass


def _portal_body(message: OutboundMessage) -> tuple[str, str]:
    """(body to send, body to keep) of a portal-link message: a fresh link in the first."""
    from spinewatch.registry.services import create_link

    fu = message.follow_up
    if fu is None or fu.completed_on is not None or fu.voided_at is not None:
        raise _Cancel("the visit was completed, voided or removed before the link was sent")
    if not message.base_url:
        raise _Cancel("no address to build the link with (set SPINEWATCH_BASE_URL)")
    made = create_link(follow_up=fu, created_by=None)
    url = message.base_url + reverse("portal:answer", args=[made.token])
    return message.body.replace("{link}", url), message.body.replace("{link}", "[portal link]")


def _deliver(message: OutboundMessage) -> str:
    """Send; returns the body to keep. Raises on failure (retried) or _Cancel."""
    body, kept = message.body, message.body
    if "{link}" in message.body:
        body, kept = _portal_body(message)
    if message.channel == Channel.EMAIL:
        EmailMessage(subject=message.subject, body=body, to=[message.to], from_email=None).send(
            fail_silently=False
        )
    else:
        get_sms_backend().send(message.to, body)
    return kept


def _claim(pk: int, now: dt.datetime) -> bool:
    return bool(
        OutboundMessage.objects.filter(
            pk=pk, status=MessageStatus.QUEUED, next_attempt_at__lte=now
        ).update(status=MessageStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )


def _recover(now: dt.datetime) -> int:
    cutoff = now - dt.timedelta(seconds=STALE_SENDING_S)
    return OutboundMessage.objects.filter(
        Q(claimed_at__lt=cutoff) | Q(claimed_at__isnull=True), status=MessageStatus.SENDING
    ).update(status=MessageStatus.QUEUED, claimed_at=None)


def send_due(*, now: dt.datetime | None = None, limit: int = 50) -> SendSummary:
    """Send what is due (see the module docstring); returns what happened."""
    now = now or timezone.now()
    counts = {"sent": 0, "retried": 0, "failed": 0, "cancelled": 0, "recovered": _recover(now)}
    due = list(
        OutboundMessage.objects.filter(status=MessageStatus.QUEUED, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        if not _claim(pk, now):
            continue
        message = OutboundMessage.objects.select_related("follow_up").get(pk=pk)
        try:
            with transaction.atomic():
                kept = _deliver(message)
                OutboundMessage.objects.filter(pk=pk).update(
                    status=MessageStatus.SENT, sent_at=timezone.now(), body=kept, last_error=""
                )
            counts["sent"] += 1
        except _Cancel as exc:
            OutboundMessage.objects.filter(pk=pk).update(
                status=MessageStatus.CANCELLED, last_error=str(exc)
            )
            counts["cancelled"] += 1
        except Exception as exc:  # SMTP refused, gateway down: retry later
            error = f"{type(exc).__name__}: {exc}"[:2000]
            if message.attempts >= message.max_attempts:
                OutboundMessage.objects.filter(pk=pk).update(
                    status=MessageStatus.FAILED, last_error=error
                )
                counts["failed"] += 1
                log.error("message %s failed for good: %s", pk, error)
            else:
                wait = dt.timedelta(minutes=2 ** (message.attempts - 1))
                OutboundMessage.objects.filter(pk=pk).update(
                    status=MessageStatus.QUEUED, next_attempt_at=now + wait, last_error=error
                )
                counts["retried"] += 1
                log.warning("message %s: attempt %d failed (%s)", pk, message.attempts, error)
    return SendSummary(**counts)
