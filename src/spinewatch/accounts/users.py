"""Creating users: one function that validates the password and gives the one role.

Used by ``spinewatch user add`` and by anything else that creates accounts (demo data, tests).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from spinewatch.accounts.errors import AccountError
from spinewatch.accounts.roles import Role, set_role

__all__ = ["create_user", "password_problems"]

log = logging.getLogger(__name__)


def password_problems(password: str, *, username: str = "", email: str = "") -> list[str]:
    """The messages of Django's ``AUTH_PASSWORD_VALIDATORS`` for ``password`` (empty: fine)."""
    User = get_user_model()
    probe = User(**{User.USERNAME_FIELD: username}, email=email)
    try:
        validate_password(password, user=probe)
    except ValidationError as exc:
        return [str(message) for message in exc.messages]
    return []


@transaction.atomic
def create_user(*, username: str, password: str, role: Role | str, email: str = "") -> Any:
    """Create an active user with ``role``; :class:`AccountError` on a taken name or weak password.

    The password is hashed with the first of ``PASSWORD_HASHERS`` (Argon2).
    """
    parsed = Role.parse(role)
    User = get_user_model()
    username = username.strip()
    if not username or len(username) > 150:
        raise AccountError(f"username {username!r}: expected 1 to 150 characters")
    try:
        User.username_validator(username)
    except ValidationError as exc:
        raise AccountError(f"username {username!r}: {' '.join(exc.messages)}") from None
    if User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": username}).exists():
        raise AccountError(f"username {username!r} already exists")
    problems = password_problems(password, username=username, email=email)
    if problems:
        raise AccountError("password refused: " + " ".join(problems))
    user = User.objects.create_user(username=username, email=email, password=password)
    set_role(user, parsed)
    log.info("user %s created with role %s", username, parsed.value)
    return user
