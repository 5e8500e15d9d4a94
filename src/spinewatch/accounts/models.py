"""Second factors and API tokens.

- :class:`TotpDevice`: one RFC 6238 authenticator per user (30 s steps, 6 digits, SHA-1: what
  every authenticator app supports). ``last_used_timecode`` is the 30-second step of the last
  accepted code, so a code can never be accepted twice (replay). ``failed_attempts`` counts the
  wrong codes since the last right one, per USER in the database (not per session: a new
  password sign-in does not reset it), and ``locked_until`` refuses every code, right or
  wrong, until then (:func:`spinewatch.accounts.totp.record_failure`).
- :class:`ApiToken`: a bearer token for the JSON API. Only the SHA-256 of the token is stored;
  the token itself is shown once when created (:func:`spinewatch.accounts.tokens.create_token`).
  ``second_factor_at``: when a code of the owner's authenticator confirmed the creation -- a
  token of a user who must use a second factor is refused without it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

__all__ = ["ApiToken", "TotpDevice"]


class TotpDevice(models.Model):
    """A user's TOTP authenticator; usable for sign-in only once ``confirmed``."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device"
    )
    secret = models.CharField(max_length=64, help_text="base32 shared secret (160+ bits)")
    confirmed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_timecode = models.BigIntegerField(
        default=-1, help_text="30-second step of the last accepted code (replay guard)"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveIntegerField(
        default=0, help_text="wrong codes since the last accepted one (per user, not session)"
    )
    locked_until = models.DateTimeField(
        null=True, blank=True, help_text="no code is accepted before this time (lock-out)"
    )

    class Meta:
        verbose_name = "TOTP device"
        constraints = (
            models.CheckConstraint(condition=~Q(secret=""), name="totp_secret_not_empty"),
            models.CheckConstraint(
                condition=Q(confirmed=False) | Q(confirmed_at__isnull=False),
                name="totp_confirmed_has_date",
            ),
        )

    def __str__(self) -> str:
        state = "confirmed" if self.confirmed else "pending"
        return f"TOTP device of {self.user} ({state})"


class ApiToken(models.Model):
    """A hashed API bearer token: ``token_hash`` = SHA-256 hex of the token string."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="first characters, to recognise a token")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    second_factor_at = models.DateTimeField(
        null=True, blank=True, help_text="when the owner's authenticator code confirmed it"
    )

    class Meta:
        verbose_name = "API token"
        ordering = ("-created_at",)
        constraints = (
            models.CheckConstraint(condition=~Q(name=""), name="apitoken_name_not_empty"),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=models.F("created_at")),
                name="apitoken_expires_after_creation",
            ),
        )

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name}, {self.user})"

    def is_usable(self, now: object = None) -> bool:
        """Not revoked and not expired at ``now`` (default: the current time)."""
        moment = now if now is not None else timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > moment  # type: ignore[operator]
