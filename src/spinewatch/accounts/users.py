"""Creating and changing users: passwords validated, one role each, every change audited.

Used by ``spinewatch user ...``, the admin's user pages and anything else that creates accounts
(demo data, tests).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from spinewatch.accounts.errors import AccountError
from spinewatch.accounts.events import account_event, recorded_by_service
from spinewatch.accounts.roles import Role, set_role

__all__ = ["create_user", "password_problems", "set_active", "set_password"]

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
    with recorded_by_service():
        user = User.objects.create_user(username=username, email=email, password=password)
        account_event(
            "create",
            user,
            changes={"username": user.get_username(), "email": email, "is_active": True},
        )
    set_role(user, parsed)
    log.info("user %s created with role %s", username, parsed.value)
    return user


@transaction.atomic
def set_active(user: Any, active: bool, *, acting: Any = None) -> bool:
    """Let a user sign in again, or stop them (audited); whether anything changed.

    ``acting`` (the admin doing it) may not deactivate themselves. An inactive user's API
    tokens and sessions stop working at once (both check ``is_active``).
    """
    if not active and acting is not None and getattr(acting, "pk", None) == user.pk:
        raise AccountError("you cannot deactivate your own account; ask another admin")
    if bool(user.is_active) == bool(active):
        return False
    with recorded_by_service():
        user.is_active = bool(active)
        user.save(update_fields=["is_active"])
        account_event("update", user, changes={"is_active": [not active, bool(active)]})
    log.info("user %s %s", user.get_username(), "activated" if active else "deactivated")
    return True


@transaction.atomic
def set_password(user: Any, password: str) -> None:
    """Give a user a new password (validated; audited without the password, of course)."""
    problems = password_problems(password, username=user.get_username(), email=user.email)
    if problems:
        raise AccountError("password refused: " + " ".join(problems))
    user.set_password(password)
    user.save(update_fields=["password"])
    account_event("password_change", user)
