"""TOTP two-factor authentication (RFC 6238, via pyotp): enrolment, verification, the session flag.

Flow: :func:`start_enrolment` makes a pending device with a fresh 160-bit secret; the user scans
the QR code of :func:`provisioning_uri` (:func:`qr_svg`) and types a code; :func:`confirm`
activates the device. At each sign-in, :func:`verify` checks a code and the view calls
:func:`mark_verified` on the session. Codes are accepted one 30-second step either side of now
(clock drift) and never twice: the accepted step is stored in ``last_used_timecode`` by a
conditional UPDATE, so two requests racing with the same code cannot both win.

Who must use it: every admin, and anyone who has enrolled a device (others are optional) -- see
:func:`requires_second_factor`; :class:`spinewatch.accounts.middleware.TwoFactorMiddleware`
enforces it.

Guessing: wrong codes are counted per USER in the database (``TotpDevice.failed_attempts``), not
in the session -- a new sign-in with the password resets nothing. After ``TOTP_MAX_FAILURES``
(default 5) wrong codes in a row the user's second factor is locked for
``TOTP_LOCKOUT_MINUTES`` (default 15): every code, right or wrong, is refused until then, the
session is logged out, and the lock-out is audited. A right code resets the count. An admin
lifts a lock early (:func:`unlock`: the user page, ``spinewatch user unlock``). At 5 guesses per
15 minutes, guessing a 6-digit code (3 valid codes at a time, the clock-drift window) takes
about 10^6 / 3 / 5 x 15 min -- 1.9 years on average.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import pyotp
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from pyotp.exceptions import OTPVerificationError

from spinewatch.accounts.errors import TotpError
from spinewatch.accounts.events import account_event
from spinewatch.accounts.models import TotpDevice
from spinewatch.accounts.roles import Role, role_or_none

__all__ = [
    "ISSUER",
    "SESSION_FAILURES_KEY",
    "SESSION_VERIFIED_KEY",
    "confirm",
    "confirmed_device",
    "forget_verification_on_login",
    "locked_until",
    "mark_verified",
    "provisioning_uri",
    "qr_svg",
    "record_failure",
    "register_failure",
    "requires_second_factor",
    "reset_device",
    "session_is_verified",
    "start_enrolment",
    "unlock",
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


def _now() -> dt.datetime:
    return timezone.now()


def locked_until(user: Any) -> dt.datetime | None:
    """The end of the user's second-factor lock-out, or None when codes are accepted."""
    if not getattr(user, "pk", None):
        return None
    until = TotpDevice.objects.filter(user=user).values_list("locked_until", flat=True).first()
    return until if until is not None and until > _now() else None


def register_failure(user: Any) -> tuple[int, dt.datetime | None]:
    """Count a wrong code for ``user`` (in the database); lock at ``TOTP_MAX_FAILURES``.

    Returns the failures counted so far and the end of the lock-out when this one locked it.
    """
    limit = int(getattr(settings, "TOTP_MAX_FAILURES", 5))
    minutes = int(getattr(settings, "TOTP_LOCKOUT_MINUTES", 15))
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(user=user).first()
        if device is None:
            return 0, None
        failures = device.failed_attempts + 1
        if failures < limit:
            TotpDevice.objects.filter(pk=device.pk).update(failed_attempts=failures)
            return failures, None
        until = _now() + dt.timedelta(minutes=minutes)
        TotpDevice.objects.filter(pk=device.pk).update(failed_attempts=0, locked_until=until)
        account_event(
            "locked_out",
            user,
            detail={"second_factor": True, "failures": failures, "locked_until": until},
        )
    log.warning("TOTP: %d wrong codes for %s, second factor locked until %s", failures, user, until)
    return failures, until


def unlock(user: Any) -> bool:
    """Lift a second-factor lock-out and reset the count (audited); whether one was active."""
    with transaction.atomic():
        was = locked_until(user) is not None
        changed = TotpDevice.objects.filter(user=user).update(failed_attempts=0, locked_until=None)
        if changed and was:
            account_event("update", user, detail={"second_factor_unlocked": True})
    return was


def _accept(device: TotpDevice, code: str, for_time: float | None) -> bool:
    code = "".join(str(code).split())
    if not (len(code) == 6 and code.isdigit()):
        return False
    if device.locked_until is not None and device.locked_until > _now():
        return False  # locked: not even a right code counts
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
        last_used_timecode=step, last_used_at=timezone.now(), failed_attempts=0
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
    with transaction.atomic():
        TotpDevice.objects.filter(pk=device.pk).update(
            confirmed=True, confirmed_at=F("last_used_at")
        )
        account_event("two_factor_enable", device.user)
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
    """Delete the user's device (lost phone; audited); returns whether there was one."""
    with transaction.atomic():
        confirmed = TotpDevice.objects.filter(user=user, confirmed=True).exists()
        deleted, _ = TotpDevice.objects.filter(user=user).delete()
        if deleted:
            account_event("two_factor_disable", user, detail={"was_confirmed": confirmed})
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
    """Count a wrong code for the signed-in user (:func:`register_failure`, in the database);
    when that locks the second factor -- or it already is locked -- the session is logged out.

    Returns the number of failures so far (0 once locked: the session is flushed then).
    """
    from django.contrib.auth import logout

    user = request.user
    if locked_until(user) is not None:  # already locked: a guess changes nothing
        logout(request)
        return 0
    failures, until = register_failure(user)
    if until is not None:
        logout(request)
        return 0
    request.session[SESSION_FAILURES_KEY] = failures
    return failures


def forget_verification_on_login(
    sender: Any, request: HttpRequest | None, user: Any, **_: Any
) -> None:
    """``user_logged_in`` handler: a new password sign-in always needs a new second factor."""
    if request is not None and hasattr(request, "session"):
        request.session.pop(SESSION_VERIFIED_KEY, None)
        request.session.pop(SESSION_FAILURES_KEY, None)
