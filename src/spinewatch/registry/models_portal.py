"""The patient-portal link: one single-use, expiring link to one follow-up visit.

Belongs to the ``registry`` app (imported by ``spinewatch/registry/models.py``; the table keeps the
name it had in the ``web`` app, ``web_portallink``). Only the SHA-256 hex digest
of the token is stored (the token has 256 bits of entropy: nothing to brute-force, so a fast hash
suffices, as for API tokens); the token itself is shown once, to the case manager who made it.
Rows are written by :mod:`spinewatch.registry.services.portal` only, through the audited write
funnel.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

__all__ = ["PortalLink"]


class PortalLink(models.Model):
    """A link for the patient to report the pain score of ``follow_up``."""

    token_hash = models.CharField(max_length=64, unique=True)
    follow_up = models.ForeignKey(
        "registry.FollowUp", on_delete=models.CASCADE, related_name="portal_links"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="portal_links_created",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "web_portallink"
        ordering = ("-created_at", "pk")

    def __str__(self) -> str:
        return f"portal link {self.pk} for follow-up {self.follow_up_id}"
