"""Errors of the accounts layer: all are :class:`~spinewatch.core.errors.InputError`.

The command line turns them into one message and exit status 2; views into a form error.
"""

from __future__ import annotations

from spinewatch.core.errors import InputError

__all__ = ["AccountError", "RoleError", "TokenError", "TotpError"]


class AccountError(InputError):
    """A user-management request SpineWatch refuses (existing username, weak password ...)."""


class RoleError(AccountError):
    """An unknown role name, or a user without exactly one role."""


class TokenError(AccountError):
    """An API-token request refused (unknown user or token, bad lifetime)."""


class TotpError(AccountError):
    """A two-factor request refused (no device, already enrolled ...)."""
