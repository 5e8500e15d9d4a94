"""TOTP two-factor authentication (RFC 6238, via pyotp): enrolment, verification, the session flag.

Flow: :func:`start_enrolment` makes a pending device with a fresh 160-bit secret; the user scans
the QR code of :func:`provisioning_uri` (:func:`qr_svg`) and types a code; :func:`confirm`
activates the device. At each sign-in, :func:`verify` checks a code and the view calls
:func:`mark_verified` on the session. Codes are accepted one 30-second step either side of now
(clock drift) and never twice: the accepted step is stored in ``last_used_timecode`` by a
conditional UPDATE, so two requests racing with the same code cannot both win.

Who must use it: every admin, and anyone who has enrolled a device (others are optional) -- see
:func:`requires_second_factor`; :class:`spinewatch.accounts.middleware.TwoFactorMiddleware`
enforces it. Failed codes are counted in the session; after ``TOTP_MAX_FAILURES`` (default 5)
the session is logged out, so guessing goes back through the password and its lock-out.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pyotp
from django.conf import settings
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from pyotp.exceptions import OTPVerificationError

from spinewatch.accounts.errors import TotpError
from spinewatch.accounts.models import TotpDevice
from spinewatch.accounts.roles import Role, role_or_none

__all__ = [
    "ISSUER",
    "SESSION_FAILURES_KEY",
    "SESSION_VERIFIED_KEY",
    "confirm",
    "confirmed_device",
    "forget_verification_on_login",
    "mark_verified",
    "provisioning_uri",
    "qr_svg",
    "record_failure",
    "requires_second_factor",
    "reset_device",
    "session_is_verified",
    "start_enrolment",
    "verify",
]

log = logging.getLogger(__name__)

ISSUER = "SpineWatch"
SESSION_VERIFIED_KEY = "spinewatch_totp_verified"
SESSION_FAILURES_KEY = "spinewatch_totp_failures"
_VALID_WINDOW = 1  # steps either side of now


def _totp(device: TotpDevice) -> pyotp.TOTP:
    return pyotp.TOTP(device.secret)


def confirmed_device(user: Any) -> TotpDevice | None:
    """The user's confirmed device, or ``None``."""
    if not getattr(user, "is_authenticated", False):
        return None
    return TotpDevice.objects.filter(user=user, confirmed=True).first()


def start_enrolment(user: Any) -> TotpDevice:
    """A pending device with a new secret (an earlier pending one is replaced).

    A confirmed device is never replaced here (that would switch the second factor off until the
    new one is confirmed): :class:`TotpError`; ``spinewatch user reset-2fa`` is the way out.
    """
    existing = TotpDevice.objects.filter(user=user).first()
    if existing is not None and existing.confirmed:
        raise TotpError(
            f"user {user.get_username()!r} already has a confirmed authenticator: "
            "reset it first (spinewatch user reset-2fa)"
        )
    secret = pyotp.random_base32(32)  # 32 base32 characters = 160 bits (RFC 4226 recommendation)
    if existing is None:
        return TotpDevice.objects.create(user=user, secret=secret)
    existing.secret = secret
    existing.confirmed = False
    existing.confirmed_at = None
    existing.last_used_timecode = -1
    existing.save()
    return existing


def provisioning_uri(device: TotpDevice) -> str:
    """``otpauth://totp/SpineWatch:<username>?secret=...&issuer=SpineWatch`` for the app."""
    return _totp(device).provisioning_uri(name=device.user.get_username(), issuer_name=ISSUER)


def qr_svg(data: str) -> str:
    """An inline SVG QR code (``<svg ...>`` element, no XML declaration) for ``data``."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    text: str = image.to_string(encoding="unicode")
    return text[text.index("<svg") :]


def _accept(device: TotpDevice, code: str, for_time: float | None) -> bool:
    code = "".join(str(code).split())
    if not (len(code) == 6 and code.isdigit()):
        return False
    try:
        step = _totp(device).verify_and_get_timecode(
            code,
            for_time=for_time if for_time is not None else time.time(),
            valid_window=_VALID_WINDOW,
        )
    except OTPVerificationError:
        return False
    # Race-free replay guard: only one request can move the counter past ``step - 1``.
    updated = TotpDevice.objects.filter(pk=device.pk, last_used_timecode__lt=step).update(
        last_used_timecode=step, last_used_at=timezone.now()
    )
    if not updated:
        log.warning("TOTP code replay refused for %s", device.user)
        return False
    device.refresh_from_db(fields=["last_used_timecode", "last_used_at"])
    return True


def confirm(device: TotpDevice, code: str, *, for_time: float | None = None) -> bool:
    """Activate a pending device if ``code`` is right; returns whether it was."""
    if not _accept(device, code, for_time):
        return False
    TotpDevice.objects.filter(pk=device.pk).update(confirmed=True, confirmed_at=F("last_used_at"))
    device.refresh_from_db()
    log.info("TOTP device confirmed for %s", device.user)
    return True


def verify(user: Any, code: str, *, for_time: float | None = None) -> bool:
    """Is ``code`` a fresh, correct code of the user's confirmed device?  (False if none.)"""
    device = confirmed_device(user)
    if device is None:
        return False
    return _accept(device, code, for_time)


def reset_device(user: Any) -> bool:
    """Delete the user's device (lost phone); returns whether there was one."""
    deleted, _ = TotpDevice.objects.filter(user=user).delete()
    return bool(deleted)


def requires_second_factor(user: Any) -> bool:
    """Admins always (roles in ``TOTP_REQUIRED_ROLES``); others once they have enrolled."""
    if not getattr(user, "is_authenticated", False):
        return False
    required = getattr(settings, "TOTP_REQUIRED_ROLES", (Role.ADMIN.value,))
    role = role_or_none(user)
    if role is not None and role.value in required:
        return True
    return confirmed_device(user) is not None


def mark_verified(request: HttpRequest) -> None:
    """Record in the session that its user passed the second factor now."""
    request.session[SESSION_VERIFIED_KEY] = int(time.time())
    request.session.pop(SESSION_FAILURES_KEY, None)
    request.session.cycle_key()


def session_is_verified(request: HttpRequest) -> bool:
    return isinstance(request.session.get(SESSION_VERIFIED_KEY), int)


def record_failure(request: HttpRequest) -> int:
    """Count a wrong code in the session; log the user out at ``TOTP_MAX_FAILURES``.

    Returns the number of failures so far (the session is flushed when the limit is reached).
    """
    from django.contrib.auth import logout

    failures = int(request.session.get(SESSION_FAILURES_KEY, 0)) + 1
    limit = int(getattr(settings, "TOTP_MAX_FAILURES", 5))
    if failures >= limit:
        log.warning("TOTP: %d wrong codes for %s, session logged out", failures, request.user)
        logout(request)
    else:
        request.session[SESSION_FAILURES_KEY] = failures
    return failures


def forget_verification_on_login(
    sender: Any, request: HttpRequest | None, user: Any, **_: Any
) -> None:
    """``user_logged_in`` handler: a new password sign-in always needs a new second factor."""
    if request is not None and hasattr(request, "session"):
        request.session.pop(SESSION_VERIFIED_KEY, None)
        request.session.pop(SESSION_FAILURES_KEY, None)
