"""The outbox: one row per message to send (app ``web``, imported by ``web/models.py``).

A message is written in the SAME transaction as the event that causes it (a portal answer, an
analysis stored), so it is never lost and never sent for an event that rolled back; the sender
(:mod:`spinewatch.web.notify.outbox`) sends it later, retrying with doubling waits.
``dedupe_key`` (unique) makes "once per visit" alerts idempotent.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

__all__ = ["Channel", "MessageKind", "MessageStatus", "OutboundMessage"]


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"


class MessageKind(models.TextChoices):
    PORTAL_LINK = "portal_link", "Portal link"
    REMINDER = "reminder", "Visit reminder"
    ALERT_HIGH_RISK = "alert_high_risk", "New high-risk finding"
    ALERT_OVERDUE = "alert_overdue", "Overdue visit"
    ALERT_PAIN = "alert_pain", "Portal answer: pain"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class OutboundMessage(models.Model):
    """An e-mail or SMS to send. ``body`` of a portal-link message holds ``{link}``: the link is
    made when the message is sent (its token is never stored), and the body kept afterwards
    says ``[portal link]``."""

    channel = models.CharField(max_length=8, choices=Channel.choices)
    kind = models.CharField(max_length=32, choices=MessageKind.choices)
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    follow_up = models.ForeignKey(
        "registry.FollowUp",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    patient_study_id = models.CharField(max_length=64, blank=True)
    base_url = models.CharField(max_length=200, blank=True)
    dedupe_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=6)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "web"
        ordering = ("created_at", "pk")
        indexes = (models.Index(fields=["status", "next_attempt_at"], name="web_outbox_due"),)
        constraints = (
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="web_outbox_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=MessageStatus.values), name="web_outbox_status_valid"
            ),
        )

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.channel} to {self.to} ({self.status})"
