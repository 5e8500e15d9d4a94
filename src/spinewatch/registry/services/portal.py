"""Patient-portal links: make, open and use them (the one module that writes PortalLink rows).

A token is 32 random bytes from :mod:`secrets`, URL-safe base64 (43 characters). The database
keeps its SHA-256 hex digest only. Looking a token up hashes it and finds the row by digest, then
compares the digests with :func:`hmac.compare_digest`: how long a failed lookup takes does not
depend on how much of a guessed token is right.

Every write goes through the audited write funnel (:mod:`._base`): ``create`` when a link is
made, ``update`` when it is used or revoked -- both conditional ``UPDATE`` s
(:func:`~._base.changed_if`), so exactly one of two concurrent requests wins. The follow-up the
patient completes goes through :func:`~.follow_ups.record_follow_up`, audited with the request's
``via`` ("portal").
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from spinewatch.registry import models as rm
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.models import PortalLink
from spinewatch.registry.services._base import changed_if, created, get
from spinewatch.registry.services.follow_ups import FollowUpResult, record_follow_up

__all__ = [
    "DEFAULT_LINK_DAYS",
    "LinkState",
    "NewLink",
    "PortalLinkError",
    "create_link",
    "find_link",
    "hash_token",
    "link_days",
    "use_link",
]

log = logging.getLogger(__name__)

#: Default lifetime of a link in days (setting ``SPINEWATCH_PORTAL_LINK_DAYS``).
DEFAULT_LINK_DAYS = 7
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


class PortalLinkError(RegistryError):
    """A portal link that cannot be made (completed visit, bad lifetime)."""


class LinkState(enum.Enum):
    """What an opened link is good for."""

    VALID = "valid"
    UNKNOWN = "unknown"  # no such token (HTTP 404)
    USED = "used"  # already used (410)
    EXPIRED = "expired"  # past expires_at or revoked (410)
    CLOSED = "closed"  # the visit was completed some other way (410)


@dataclass(frozen=True)
class NewLink:
    """A freshly made link: ``token`` is the only copy of the secret -- show it once."""

    token: str
    link: PortalLink


def hash_token(token: str) -> str:
    """SHA-256 hex digest of the token (UTF-8)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_days(name: str, days: object) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 90:
        raise PortalLinkError(
            f"{name} {days!r}: expected a whole number of days from 1 to 90", field="days"
        )
    return days


def link_days() -> int:
    """The configured lifetime in days (1..90); a bad setting raises PortalLinkError."""
    days = getattr(settings, "SPINEWATCH_PORTAL_LINK_DAYS", DEFAULT_LINK_DAYS)
    return _check_days("SPINEWATCH_PORTAL_LINK_DAYS", days)


def create_link(
    *, follow_up: rm.FollowUp | int, created_by: Any, days: int | None = None
) -> NewLink:
    """Make a link for a visit that is not completed yet; older unused links of it are revoked.

    ``days`` defaults to :func:`link_days`. ``created_by``: the user (an anonymous or unsaved one
    is stored as None). Raises PortalLinkError for a completed visit or a lifetime outside 1..90
    days, and NotFoundError for an unknown visit.
    """
    lifetime = link_days() if days is None else _check_days("days", days)
    with transaction.atomic():
        row = get(rm.FollowUp, follow_up, "follow_up")
        study_id = row.procedure.patient.study_id
        if row.completed_on is not None:
            raise PortalLinkError(
                f"follow-up {row.timepoint} of {study_id} was completed on "
                f"{row.completed_on.isoformat()}; a portal link is only for a visit still to do",
                field="follow_up",
            )
        now = timezone.now()
        for old in PortalLink.objects.select_for_update().filter(
            follow_up=row, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        ):
            changed_if(
                old,
                changes={"revoked_at": now},
                where={"used_at__isnull": True, "revoked_at__isnull": True},
                detail={"reason": "a new link was made for the same visit"},
            )
        token = secrets.token_urlsafe(32)
        link = created(
            PortalLink(
                token_hash=hash_token(token),
                follow_up=row,
                created_by=created_by if getattr(created_by, "pk", None) else None,
                expires_at=now + dt.timedelta(days=lifetime),
            )
        )
    log.info("portal link %s made for follow-up %s", link.pk, row.pk)
    return NewLink(token, link)


def find_link(token: object) -> tuple[LinkState, PortalLink | None]:
    """The link of ``token`` and what it is good for (no write, constant-time comparison)."""
    text = token if isinstance(token, str) else ""
    digest = hash_token(text)
    link = (
        PortalLink.objects.select_related("follow_up").filter(token_hash=digest).first()
        if _TOKEN.fullmatch(text)
        else None
    )
    stored = link.token_hash if link is not None else "0" * 64
    if not hmac.compare_digest(stored, digest) or link is None:
        return LinkState.UNKNOWN, None
    if link.used_at is not None:
        return LinkState.USED, link
    if link.revoked_at is not None or link.expires_at <= timezone.now():
        return LinkState.EXPIRED, link
    if link.follow_up.completed_on is not None:
        return LinkState.CLOSED, link
    return LinkState.VALID, link


def use_link(
    *, token: str, vas: float, analgesic_use: str | None
) -> tuple[LinkState, FollowUpResult | None]:
    """Record the patient's answers and use up the link, in one transaction.

    Returns ``(LinkState.VALID, result)`` on success; otherwise the state that made the link
    unusable (and ``None``) -- also when another request used it a moment earlier (the link is
    claimed with a conditional UPDATE, so exactly one submission wins). A value the registry
    refuses raises its RegistryError, and nothing is written. Call it inside the caller's
    transaction to add work (an alert) that must stand or fall with the answer.
    """
    state, link = find_link(token)
    if state is not LinkState.VALID or link is None:
        return state, None
    with transaction.atomic():
        now = timezone.now()
        claimed = changed_if(
            link,
            changes={"used_at": now},
            where={"used_at__isnull": True, "revoked_at__isnull": True, "expires_at__gt": now},
        )
        if not claimed:
            return LinkState.USED, None
        follow_up = rm.FollowUp.objects.select_for_update().get(pk=link.follow_up_id)
        if follow_up.completed_on is not None:
            transaction.set_rollback(True)
            return LinkState.CLOSED, None
        result = record_follow_up(
            follow_up=follow_up,
            expected_version=follow_up.version,
            completed_on=timezone.localdate(),
            vas=vas,
            analgesic_use=analgesic_use,
            entered_by=None,
            entered_via="portal",
        )
    log.info("portal link %s used for follow-up %s", link.pk, follow_up.pk)
    return LinkState.VALID, result
