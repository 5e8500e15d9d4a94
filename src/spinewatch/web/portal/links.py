"""Create, open and use patient-portal links (the one module that writes PortalLink rows).

A token is 32 random bytes from :mod:`secrets`, URL-safe base64 (43 characters). The database
keeps its SHA-256 hex digest only. Looking a token up hashes it and finds the row by digest, then
compares the digests with :func:`hmac.compare_digest`: how long a failed lookup takes does not
depend on how much of a guessed token is right.

Every write records its audit event in the same transaction (``create`` when a link is made,
``update`` when it is used or revoked); the follow-up the patient completes goes through
:func:`spinewatch.registry.services.record_follow_up`, whose write funnel audits it with the
request's ``via`` ("portal").
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

from spinewatch.audit.trail import model_values, record
from spinewatch.core.errors import InputError
from spinewatch.registry import models as rm
from spinewatch.registry.services import FollowUpResult, record_follow_up
from spinewatch.web.portal.models import PortalLink

__all__ = [
    "DEFAULT_LINK_DAYS",
    "LinkState",
    "NewLink",
    "PortalLinkError",
    "create_link",
    "find_link",
    "hash_token",
    "link_days",
    "submit",
]

log = logging.getLogger(__name__)

#: Default lifetime of a link in days (setting ``SPINEWATCH_PORTAL_LINK_DAYS``).
DEFAULT_LINK_DAYS = 7
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


class PortalLinkError(InputError):
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


def link_days() -> int:
    """The configured lifetime in days (1..90); a bad setting raises PortalLinkError."""
    days = getattr(settings, "SPINEWATCH_PORTAL_LINK_DAYS", DEFAULT_LINK_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 90:
        raise PortalLinkError(
            f"SPINEWATCH_PORTAL_LINK_DAYS {days!r}: expected a whole number of days from 1 to 90"
        )
    return days


def create_link(
    *, follow_up: rm.FollowUp | int, created_by: Any, days: int | None = None
) -> NewLink:
    """Make a link for a visit that is not completed yet; older unused links of it are revoked.

    ``days`` defaults to :func:`link_days`. Raises PortalLinkError for a completed visit or a
    lifetime outside 1..90 days, and NotFoundError (from the registry) for an unknown visit.
    """
    from spinewatch.registry.services._base import get

    lifetime = link_days() if days is None else days
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 1 <= lifetime <= 90:
        raise PortalLinkError(f"days {lifetime!r}: expected a whole number of days from 1 to 90")
    with transaction.atomic():
        row = get(rm.FollowUp, follow_up, "follow_up")
        study_id = row.procedure.patient.study_id
        if row.completed_on is not None:
            raise PortalLinkError(
                f"follow-up {row.timepoint} of {study_id} was completed on "
                f"{row.completed_on.isoformat()}; a portal link is only for a visit still to do"
            )
        now = timezone.now()
        for old in PortalLink.objects.select_for_update().filter(
            follow_up=row, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        ):
            PortalLink.objects.filter(pk=old.pk).update(revoked_at=now)
            record(
                actor=None,
                action="update",
                object_type=old,
                object_id=old.pk,
                changes={"revoked_at": [None, now]},
                detail={"reason": "a new link was made for the same visit"},
                patient_study_id=study_id,
            )
        token = secrets.token_urlsafe(32)
        link = PortalLink.objects.create(
            token_hash=hash_token(token),
            follow_up=row,
            created_by=created_by if getattr(created_by, "pk", None) else None,
            expires_at=now + dt.timedelta(days=lifetime),
        )
        record(
            actor=None,
            action="create",
            object_type=link,
            object_id=link.pk,
            changes=model_values(link),
            patient_study_id=study_id,
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


def submit(
    *, token: str, vas: float, analgesic_use: str | None, base_url: str = ""
) -> tuple[LinkState, FollowUpResult | None]:
    """Record the patient's answers and use up the link, in one transaction.

    Returns ``(LinkState.VALID, result)`` on success; otherwise the state that made the link
    unusable (and ``None``) -- also when another request used it a moment earlier (the link is
    claimed with a conditional UPDATE, so exactly one submission wins). A value the registry
    refuses raises its RegistryError, and nothing is written.
    """
    state, link = find_link(token)
    if state is not LinkState.VALID or link is None:
        return state, None
    with transaction.atomic():
        now = timezone.now()
        claimed = PortalLink.objects.filter(
            pk=link.pk, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if claimed != 1:
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
        record(
            actor=None,
            action="update",
            object_type=link,
            object_id=link.pk,
            changes={"used_at": [None, now]},
            patient_study_id=follow_up.procedure.patient.study_id,
        )
        from spinewatch.web.notify.alerts import alert_portal_answer

        alert_portal_answer(result.follow_up, base_url=base_url)
    log.info("portal link %s used for follow-up %s", link.pk, follow_up.pk)
    return LinkState.VALID, result
