"""The four roles of a spine unit, stored as Django groups; every user has exactly one.

=============  ==============================================================================
role           who
=============  ==============================================================================
admin          runs the service: manages users, reads the audit trail (two-factor REQUIRED)
clinician      interventional radiologist / spine surgeon: the whole clinical record
case_manager   the personal case manager (nurse) who follows patients up and sends portal links
researcher     writes up results: de-identified data only
=============  ==============================================================================

The groups are created by the data migration ``0002_role_groups``; the group name is the role's
value. A user's role is *the* role group they belong to (:func:`role_of`); a superuser without a
role group counts as admin. Adding a second role group to a user is refused by a signal handler
(:func:`refuse_second_role`), so "exactly one role" holds however the groups are edited (admin
site, shell, ``user.groups.add``). :func:`set_role` is the way to change a role.

What each role may do is decided in :mod:`spinewatch.accounts.permissions`, not here.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db import transaction

from spinewatch.accounts.errors import RoleError
from spinewatch.core._enum import parse_enum

__all__ = [
    "ROLE_GROUP_NAMES",
    "Role",
    "grant_admin_site_permissions",
    "refuse_second_role",
    "role_of",
    "role_or_none",
    "set_role",
]

log = logging.getLogger(__name__)


class Role(enum.StrEnum):
    """A user's role; the value is the name of its Django group."""

    ADMIN = "admin"
    CLINICIAN = "clinician"
    CASE_MANAGER = "case_manager"
    RESEARCHER = "researcher"

    @classmethod
    def parse(cls, value: object) -> Role:
        """A member, its value or its name (``"case-manager"`` too); else :class:`RoleError`."""
        return parse_enum(cls, value, what="role", error=RoleError)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


ROLE_GROUP_NAMES: frozenset[str] = frozenset(role.value for role in Role)

# Django-admin model permissions of the admin group: VIEWING only. Users, roles, tokens and
# second factors are managed on the user pages (spinewatch.accounts.user_views), which audit
# every change; the Django admin has no user form at all (no superuser flag to tick), and no
# registry model is editable there, so clinical data are never edited around the service layer.
_ADMIN_SITE_PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("axes", "view_accessattempt"),
    ("axes", "view_accesslog"),
    ("accounts", "view_apitoken"),
    ("accounts", "view_totpdevice"),
    ("audit", "view_auditevent"),
)


def _role_groups(user: Any) -> list[str]:
    return sorted(user.groups.filter(name__in=ROLE_GROUP_NAMES).values_list("name", flat=True))


def role_or_none(user: AbstractBaseUser | AnonymousUser | None) -> Role | None:
    """The role of an active, authenticated user; ``None`` for anyone who has no usable role.

    ``None`` for ``None``, anonymous or inactive users, users without a role group, and users
    with several (which :func:`refuse_second_role` prevents; logged as an error if met).
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if not getattr(user, "is_active", False):
        return None
    cached = getattr(user, "_spinewatch_role", None)
    if isinstance(cached, tuple):
        return cached[0]
    names = _role_groups(user)
    role: Role | None
    if len(names) == 1:
        role = Role(names[0])
    elif not names and getattr(user, "is_superuser", False):
        role = Role.ADMIN
    else:
        if names:
            log.error("user %r has several roles %s: treated as having none", user, names)
        role = None
    user._spinewatch_role = (role,)  # type: ignore[union-attr]  # per-request cache
    return role


def role_of(user: AbstractBaseUser | AnonymousUser | None) -> Role:
    """The one role of ``user``; :class:`RoleError` when it has none (see :func:`role_or_none`)."""
    role = role_or_none(user)
    if role is None:
        name = getattr(user, "get_username", lambda: "anonymous")() if user is not None else None
        raise RoleError(
            f"user {name!r} has no role: expected an active user in exactly one of the groups "
            f"{', '.join(repr(r.value) for r in Role)}"
        )
    return role


@transaction.atomic
def set_role(user: Any, role: Role | str) -> Role:
    """Make ``role`` the user's only role (replacing any other); returns the parsed role.

    Admins get ``is_staff`` (the Django admin site, where they browse the registry read-only);
    other roles lose it unless the user is a superuser. The change is audited (``role_change``
    with the old and new role) when the role or the staff flag changed.
    """
    from spinewatch.accounts.events import account_event, recorded_by_service

    parsed = Role.parse(role)
    before = _role_groups(user) if user.pk else []
    staff_before = bool(user.is_staff)
    group = Group.objects.get_or_create(name=parsed.value)[0]
    with recorded_by_service():
        user.groups.remove(*Group.objects.filter(name__in=ROLE_GROUP_NAMES - {parsed.value}))
        user.groups.add(group)
        staff = parsed is Role.ADMIN or bool(user.is_superuser)
        if user.is_staff != staff:
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
    if hasattr(user, "_spinewatch_role"):
        del user._spinewatch_role
    old = before[0] if len(before) == 1 else (before or None)
    if before != [parsed.value] or staff_before != staff:
        changes: dict[str, Any] = {"role": [old, parsed.value]}
        if staff_before != staff:
            changes["is_staff"] = [staff_before, staff]
        account_event("role_change", user, changes=changes)
    return parsed


def refuse_second_role(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: Any, **_: Any
) -> None:
    """``m2m_changed`` handler on ``User.groups``: refuse to give a user a second role group."""
    if action != "pre_add" or not pk_set:
        return
    from django.contrib.auth import get_user_model

    User = get_user_model()
    if not reverse:  # user.groups.add(...)
        adding = list(Group.objects.filter(pk__in=pk_set, name__in=ROLE_GROUP_NAMES))
        if not adding:
            return
        existing = set(_role_groups(instance))
        names = existing | {g.name for g in adding}
        if len(names) > 1:
            raise RoleError(
                f"user {instance.get_username()!r} would have roles {sorted(names)}: "
                "a user has exactly one role (use set_role to change it)"
            )
        if hasattr(instance, "_spinewatch_role"):
            del instance._spinewatch_role
        return
    # group.user_set.add(...)
    if instance.name not in ROLE_GROUP_NAMES:
        return
    clash = (
        User.objects.filter(pk__in=pk_set, groups__name__in=ROLE_GROUP_NAMES)
        .exclude(groups__name=instance.name)
        .values_list(User.USERNAME_FIELD, flat=True)
    )
    if clash:
        raise RoleError(
            f"users {sorted(clash)} already have another role: a user has exactly one role "
            f"(cannot also add {instance.name!r})"
        )


def grant_admin_site_permissions(sender: Any, **kwargs: Any) -> None:
    """``post_migrate``: give the admin group exactly its viewing permissions (idempotent)."""
    from django.contrib.auth.models import Permission

    using = kwargs.get("using", "default")
    group = Group.objects.using(using).filter(name=Role.ADMIN.value).first()
    if group is None:
        return
    wanted = []
    for app_label, codename in _ADMIN_SITE_PERMISSIONS:
        perm = (
            Permission.objects.using(using)
            .filter(content_type__app_label=app_label, codename=codename)
            .first()
        )
        if perm is not None:
            wanted.append(perm)
    group.permissions.set(wanted)  # exactly these: older grants (change_user...) are withdrawn
