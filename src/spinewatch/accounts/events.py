"""Every change to an account is written to the audit trail -- here, in one place.

The account services call :func:`account_event` for what they change: a user created,
(de)activated or given a new password (``create``/``update``/``password_change``), a role
(``role_change``), an API token (``token_create``/``token_revoke``), the second factor
(``two_factor_enable``/``two_factor_disable``, a lock-out ``locked_out``, an unlock). The actor,
channel and address come from the acting context (the signed-in admin on the user page; the
operating-system user on the command line, :func:`spinewatch.audit.context.acting_as`).

As a backstop against changes made around the services (``spinewatch manage shell``,
``createsuperuser``, a future admin form), :func:`user_saved` / :func:`user_deleted` and
:func:`groups_changed` record any change of the security-relevant user fields
(:data:`WATCHED_FIELDS`: superuser and staff flags, active, username, e-mail) and of role groups
-- unless a service is recording that very change itself (:func:`recorded_by_service`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from spinewatch.audit.trail import record

__all__ = [
    "WATCHED_FIELDS",
    "account_event",
    "groups_changed",
    "recorded_by_service",
    "remember_user_fields",
    "user_deleted",
    "user_saved",
]

#: User fields whose every change is audited (the password is audited by its own service).
WATCHED_FIELDS = ("is_superuser", "is_staff", "is_active", "username", "email")

_SERVICE = contextvars.ContextVar("spinewatch_account_service", default=False)


@contextmanager
def recorded_by_service() -> Iterator[None]:
    """Inside: the service records its change itself; the backstop signals stay quiet."""
    token = _SERVICE.set(True)
    try:
        yield
    finally:
        _SERVICE.reset(token)


def account_event(
    action: str,
    user: Any,
    *,
    changes: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Record ``action`` on ``user``'s account (object ``auth.user`` #id), naming the user."""
    record(
        actor=None,
        action=action,
        object_type="auth.user",
        object_id=user.pk,
        changes=changes,
        detail={"user": user.get_username(), **(detail or {})},
    )


# --------------------------------------------------------------------------------- backstop


def remember_user_fields(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """``pre_save`` on the user model: note the watched fields as stored now."""
    update_fields = kwargs.get("update_fields")
    quiet = update_fields is not None and not set(update_fields) & set(WATCHED_FIELDS)
    if raw or instance.pk is None or quiet:
        instance._spinewatch_before = None
        return
    before = sender.objects.filter(pk=instance.pk).values(*WATCHED_FIELDS).first()
    instance._spinewatch_before = before


def user_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    """``post_save`` on the user model: record a creation or a change of a watched field."""
    if raw or _SERVICE.get():
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and not set(update_fields) & set(WATCHED_FIELDS):
        return  # e.g. last_login on each sign-in
    after = {name: getattr(instance, name) for name in WATCHED_FIELDS}
    if created:
        account_event("create", instance, changes=after)
        return
    before = getattr(instance, "_spinewatch_before", None) or {}
    changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    if changes:
        account_event("update", instance, changes=changes)


def user_deleted(sender: Any, instance: Any, **_: Any) -> None:
    """``post_delete`` on the user model."""
    if not _SERVICE.get():
        account_event("delete", instance, changes={k: getattr(instance, k) for k in WATCHED_FIELDS})


def groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **_: Any
) -> None:
    """``m2m_changed`` on ``User.groups``: a role group added or removed outside set_role."""
    from django.contrib.auth.models import Group

    from spinewatch.accounts.roles import ROLE_GROUP_NAMES

    if _SERVICE.get() or action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:  # group.user_set.add(users...): one event per user
        if instance.name not in ROLE_GROUP_NAMES:
            return
        from django.contrib.auth import get_user_model

        for user in get_user_model().objects.filter(pk__in=pk_set or ()):
            account_event("role_change", user, detail={action[5:]: [instance.name]})
        return
    names = sorted(
        Group.objects.filter(pk__in=pk_set or (), name__in=ROLE_GROUP_NAMES).values_list(
            "name", flat=True
        )
    )
    if names or action == "post_clear":
        account_event("role_change", instance, detail={action[5:]: names})
