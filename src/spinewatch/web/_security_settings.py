"""Security settings of the web application, star-imported at the end of ``settings.py``.

Read from the environment once, failing fast on bad values (``ImproperlyConfigured``):

==================================  =======  ===============================================
variable                            default  meaning
==================================  =======  ===============================================
``SPINEWATCH_DEBUG``                0        development mode (cookies not Secure)
``SPINEWATCH_SECURE_COOKIES``       not DEBUG  Secure flag on session and CSRF cookies; set 0
                                             only for plain-HTTP demos on a non-localhost name
``SPINEWATCH_SESSION_IDLE_MINUTES`` 30       idle timeout (the cookie is renewed on each request)
``SPINEWATCH_LOGIN_FAILURE_LIMIT``  5        failed sign-ins before a lock-out
``SPINEWATCH_LOCKOUT_MINUTES``      15       lock-out of one username from one IP address
``SPINEWATCH_TRUSTED_PROXY_COUNT``  0        reverse proxies in front (client IP from
                                             X-Forwarded-For then; 0: REMOTE_ADDR only)
``SPINEWATCH_HTTPS``                0        1 behind a TLS-terminating proxy: trust its
                                             X-Forwarded-Proto, redirect HTTP, send HSTS
``SPINEWATCH_TOTP_MAX_FAILURES``    5        wrong 2FA codes in a row (per user, in the
                                             database) before the second factor locks
``SPINEWATCH_TOTP_LOCKOUT_MINUTES`` 15       how long it stays locked (an admin can unlock)
==================================  =======  ===============================================

Choices, with reasons:

- Passwords: Argon2id first (``argon2-cffi``); older hashers stay only to verify and upgrade
  existing hashes. Length >= 12 and the common-password list come from ``settings.py``.
- Sessions: ``SameSite=Lax`` rather than Strict: Strict would drop the session on every link
  followed from outside (an e-mail pointing at a worklist) and force a new sign-in with no gain,
  since every state change is a POST protected by Django's CSRF token (and Lax never sends the
  cookie on cross-site POSTs). Patient-portal links carry their own single-use token, not a
  session. HttpOnly on both cookies; the CSRF token reaches htmx through the template
  (``hx-headers``), never through JavaScript reading the cookie. Idle timeout: the session lives
  ``SESSION_COOKIE_AGE`` seconds after the LAST request (``SESSION_SAVE_EVERY_REQUEST``) and ends
  when the browser closes.
- Headers: CSP by django-csp 4 (``default-src 'self'``, no inline script or style, no plugins,
  ``frame-ancestors 'none'``, forms post only to us); ``X-Frame-Options: DENY``,
  ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``,
  ``Cross-Origin-Opener-Policy: same-origin`` by Django; ``Permissions-Policy`` and
  ``Cache-Control: no-store`` by :mod:`spinewatch.web.security`.
- Lock-out: django-axes, per (username, IP address) pair, so an attacker cannot lock a clinician
  out from everywhere; the counter resets on a successful sign-in.
- Static files: WhiteNoise serves ``STATIC_ROOT`` (collected by ``spinewatch serve``) gzip-
  compressed; no manifest hashing, so templates render without a prior ``collectstatic``.
"""

from __future__ import annotations

import datetime as _dt
import os as _os

from csp.constants import NONE as _NONE
from csp.constants import SELF as _SELF
from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "AUTHENTICATION_BACKENDS",
    "AXES_COOLOFF_TIME",
    "AXES_FAILURE_LIMIT",
    "AXES_IPWARE_META_PRECEDENCE_ORDER",
    "AXES_IPWARE_PROXY_COUNT",
    "AXES_LOCKOUT_PARAMETERS",
    "AXES_LOCKOUT_TEMPLATE",
    "AXES_RESET_ON_SUCCESS",
    "CONTENT_SECURITY_POLICY",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "LOGIN_REDIRECT_URL",
    "LOGIN_URL",
    "LOGOUT_REDIRECT_URL",
    "PASSWORD_HASHERS",
    "PERMISSIONS_POLICY",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "SECURE_HSTS_SECONDS",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_REFERRER_POLICY",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_AGE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_SECURE",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "SESSION_SAVE_EVERY_REQUEST",
    "STORAGES",
    "TOTP_LOCKOUT_MINUTES",
    "TOTP_MAX_FAILURES",
    "TOTP_REQUIRED_ROLES",
    "X_FRAME_OPTIONS",
]


def _flag(name: str, default: bool) -> bool:
    raw = _os.environ.get(name, "")
    if raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected 1/0, true/false, yes/no or on/off")


def _int(name: str, default: int, *, low: int, high: int) -> int:
    raw = _os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number from {low} to {high}")
    return value


_DEBUG = _flag("SPINEWATCH_DEBUG", False)
_HTTPS = _flag("SPINEWATCH_HTTPS", False)
_SECURE_COOKIES = _flag("SPINEWATCH_SECURE_COOKIES", not _DEBUG)

# --- passwords and sign-in -------------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTHENTICATION_BACKENDS = [
    "spinewatch.accounts.backends.ThrottledBackend",  # django-axes lock-out, must be first
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "pages:start"
LOGOUT_REDIRECT_URL = "accounts:login"

AXES_FAILURE_LIMIT = _int("SPINEWATCH_LOGIN_FAILURE_LIMIT", 5, low=1, high=100)
AXES_COOLOFF_TIME = _dt.timedelta(
    minutes=_int("SPINEWATCH_LOCKOUT_MINUTES", 15, low=1, high=7 * 24 * 60)
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
_PROXIES = _int("SPINEWATCH_TRUSTED_PROXY_COUNT", 0, low=0, high=5)
AXES_IPWARE_PROXY_COUNT = _PROXIES or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if _PROXIES else ("REMOTE_ADDR",)
)

TOTP_REQUIRED_ROLES = ("admin",)
TOTP_MAX_FAILURES = _int("SPINEWATCH_TOTP_MAX_FAILURES", 5, low=1, high=20)
TOTP_LOCKOUT_MINUTES = _int("SPINEWATCH_TOTP_LOCKOUT_MINUTES", 15, low=1, high=7 * 24 * 60)

# --- sessions and cookies --------------------------------------------------------------------
SESSION_COOKIE_SECURE = _SECURE_COOKIES
CSRF_COOKIE_SECURE = _SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * _int("SPINEWATCH_SESSION_IDLE_MINUTES", 30, low=1, high=24 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- transport -------------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _HTTPS else None
SECURE_SSL_REDIRECT = _HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if _HTTPS else 0

# --- response headers ------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_SELF],
        "script-src": [_SELF],
        "style-src": [_SELF],
        "img-src": [_SELF, "data:"],
        "font-src": [_SELF],
        "connect-src": [_SELF],
        "object-src": [_NONE],
        "base-uri": [_NONE],
        "form-action": [_SELF],
        "frame-ancestors": [_NONE],
    },
}
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

# --- static files ----------------------------------------------------------------------------
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
