"""Helpers for tests of views that need a signed-in user (admins need the second factor).

``signed_in(client, user)`` logs ``user`` in on a Django test ``Client`` and marks the session as
having passed the TOTP step, so page tests need not drive the authenticator.
"""

from __future__ import annotations

from typing import Any

from spinewatch.accounts.totp import SESSION_VERIFIED_KEY

__all__ = ["signed_in"]


def signed_in(client: Any, user: Any, *, second_factor: bool = True) -> Any:
    """``client.force_login(user)``; with ``second_factor`` the session counts as TOTP-verified."""
    client.force_login(user)
    if second_factor:
        session = client.session
        session[SESSION_VERIFIED_KEY] = 1
        session.save()
    return client
