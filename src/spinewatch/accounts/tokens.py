"""API bearer tokens: created once, stored hashed, checked on every API request.

A token is ``"swt_"`` + 43 URL-safe characters (32 random bytes from :mod:`secrets`); the
``swt_`` prefix lets secret scanners recognise a leaked token. The database keeps only the
SHA-256 hex digest of the whole string (a token has 256 bits of entropy, so a fast hash is
enough: there is nothing to brute-force) and its first 8 characters for recognition.

The JSON API sends ``Authorization: Bearer swt_...``; :func:`authenticate_bearer` returns the
user, or ``None`` for a missing, malformed, unknown, expired or revoked token or an inactive user.

A bearer token skips the sign-in, so for a user who must use a second factor (every admin, and
anyone who enrolled an authenticator: :func:`spinewatch.accounts.totp.requires_second_factor`)
the second factor is required when the token is CREATED: a fresh code of that user's
authenticator (``totp_code``), checked like a sign-in code (replay guard, failures counted
towards the lock-out). The token records when (``second_factor_at``); a token of such a user
without it -- made before this rule -- is refused. Creating and revoking are audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from spinewatch.accounts.errors import TokenError
from spinewatch.accounts.events import account_event
from spinewatch.accounts.models import ApiToken

__all__ = [
    "MAX_TOKEN_DAYS",
    "TOKEN_PREFIX",
    "NewToken",
    "authenticate_bearer",
    "create_token",
    "has_bearer",
    "hash_token",
    "revoke_token",
]

log = logging.getLogger(__name__)

TOKEN_PREFIX = "swt_"
MAX_TOKEN_DAYS = 3650
_LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    """A freshly created token: ``token`` is the only copy of the secret -- show it once."""

    token: str
    record: ApiToken


def hash_token(token: str) -> str:
    """SHA-256 hex digest of the token string (UTF-8)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _second_factor(user: Any, totp_code: str | None) -> dt.datetime | None:
    """When a second factor confirmed this creation (now), or None when the user needs none;
    :class:`TokenError` when one is needed and the code is missing, wrong or locked out."""
    from spinewatch.accounts import totp

    if not totp.requires_second_factor(user):
        return None
    name = user.get_username()
    if totp.confirmed_device(user) is None:
        raise TokenError(
            f"user {name!r} must use a second factor but has no authenticator set up: sign in "
            "once on the web to set it up, then create the token with a code from it"
        )
    if not totp_code:
        raise TokenError(
            f"user {name!r} must use a second factor: give a current 6-digit code from "
            f"{name}'s authenticator to create a token"
        )
    if totp.locked_until(user) is not None:
        raise TokenError(f"user {name!r}: two-factor codes are locked out after wrong codes")
    if not totp.verify(user, totp_code):
        totp.register_failure(user)
        raise TokenError(
            f"user {name!r}: the authenticator code {totp_code!r} is not valid (or was already "
            "used); expected the current 6-digit code"
        )
    return timezone.now()


def create_token(
    user_or_username: Any,
    *,
    name: str = "api",
    days: int | None = 90,
    now: dt.datetime | None = None,
    totp_code: str | None = None,
) -> NewToken:
    """Create a token for an active user, valid ``days`` days (``None``: no expiry).

    ``totp_code``: a current code of the user's authenticator, REQUIRED for a user who must use
    a second factor (see the module docstring). The creation is audited (``token_create``).

    Raises :class:`TokenError` for an unknown or inactive user, an empty name, a lifetime
    outside 1..3650 days, or a missing or wrong second-factor code.
    """
    User = get_user_model()
    if isinstance(user_or_username, User):
        user = user_or_username
    else:
        user = User.objects.filter(**{User.USERNAME_FIELD: user_or_username}).first()
        if user is None:
            raise TokenError(f"user {user_or_username!r} does not exist")
    if not user.is_active:
        raise TokenError(f"user {user.get_username()!r} is inactive: no token issued")
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenError(f"token name {name!r}: expected 1 to 100 characters")
    if days is not None and not 1 <= days <= MAX_TOKEN_DAYS:
        raise TokenError(f"token lifetime {days!r} days: expected 1 to {MAX_TOKEN_DAYS}")
    confirmed = _second_factor(user, totp_code)
    created = now or timezone.now()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        record = ApiToken.objects.create(
            user=user,
            name=name,
            token_hash=hash_token(token),
            prefix=token[:8],
            created_at=created,
            expires_at=created + dt.timedelta(days=days) if days is not None else None,
            second_factor_at=confirmed,
        )
        account_event(
            "token_create",
            user,
            detail={
                "token_id": record.pk,
                "prefix": record.prefix,
                "name": name,
                "expires_at": record.expires_at,
                "second_factor": confirmed is not None,
            },
        )
    log.info("API token %s created for %s", record.prefix, user.get_username())
    return NewToken(token=token, record=record)


def revoke_token(token_id: int, *, now: dt.datetime | None = None) -> ApiToken:
    """Revoke a token by id (idempotent; audited); :class:`TokenError` if there is no such
    token."""
    record = ApiToken.objects.select_related("user").filter(pk=token_id).first()
    if record is None:
        raise TokenError(f"API token {token_id!r} does not exist")
    if record.revoked_at is None:
        with transaction.atomic():
            record.revoked_at = now or timezone.now()
            record.save(update_fields=["revoked_at"])
            account_event(
                "token_revoke",
                record.user,
                detail={"token_id": record.pk, "prefix": record.prefix, "name": record.name},
            )
        log.info("API token %s of %s revoked", record.prefix, record.user)
    return record


def _bearer(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def has_bearer(request: HttpRequest) -> bool:
    """Does the request carry an ``Authorization: Bearer ...`` header (valid or not)?"""
    return _bearer(request) is not None


def authenticate_bearer(request: HttpRequest, *, now: dt.datetime | None = None) -> Any | None:
    """The active user of a usable bearer token in ``request``, else ``None``.

    Updates ``last_used_at`` (at most once a minute per token, to spare the database).
    """
    token = _bearer(request)
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    moment = now or timezone.now()
    record = ApiToken.objects.select_related("user").filter(token_hash=hash_token(token)).first()
    if record is None or not record.is_usable(moment) or not record.user.is_active:
        return None
    if record.second_factor_at is None:
        from spinewatch.accounts.totp import requires_second_factor

        if requires_second_factor(record.user):
            log.warning(
                "API token %s of %s refused: made without the second factor its user needs",
                record.prefix,
                record.user,
            )
            return None
    if record.last_used_at is None or moment - record.last_used_at >= _LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=record.pk).update(last_used_at=moment)
    return record.user
