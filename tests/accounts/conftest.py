"""Fixtures for the accounts tests: users of each role, an independent RFC 6238 code generator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

import pytest
from django.conf import settings

if "spinewatch.accounts" not in settings.INSTALLED_APPS:  # pragma: no cover - set-up guard
    raise RuntimeError(
        "spinewatch.accounts is not installed: add the security settings to "
        "spinewatch/web/settings.py (see the security engineer's report)"
    )

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Argon2 is deliberately slow; tests that are not about hashing use MD5 (tests only)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(db):
    """``make_user("clinician", username=None, **fields)`` -> a user with that role."""
    from spinewatch.accounts.users import create_user

    counter = {"n": 0}

    def make(role: str, username: str | None = None, **fields):
        counter["n"] += 1
        user = create_user(
            username=username or f"{role}{counter['n']}", password=PASSWORD, role=role
        )
        for key, value in fields.items():
            setattr(user, key, value)
        if fields:
            user.save()
        return user

    return make


def rfc6238(secret_b32: str, unix_time: float, *, digits: int = 6, step: int = 30) -> str:
    """TOTP written from RFC 6238 / RFC 4226 with hmac+struct only (independent of pyotp)."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8), casefold=True)
    counter = int(unix_time // step)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


@pytest.fixture
def totp_code():
    return rfc6238
