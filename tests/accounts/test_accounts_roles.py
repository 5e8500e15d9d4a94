"""Roles: groups from the data migration, exactly one role per user, role_of/set_role."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.db import transaction

from spinewatch.accounts.errors import RoleError
from spinewatch.accounts.roles import Role, role_of, role_or_none, set_role

pytestmark = pytest.mark.django_db


def test_data_migration_created_the_four_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "admin",
        "clinician",
        "case_manager",
        "researcher",
    }


def test_admin_group_may_only_view_in_the_django_admin():
    """Issue 12 changed this: users, roles and tokens are managed on the user pages (audited),
    so the admin group keeps no change/delete permission on users (no superuser box to tick)."""
    perms = set(
        Group.objects.get(name="admin").permissions.values_list(
            "content_type__app_label", "codename"
        )
    )
    assert ("audit", "view_auditevent") in perms and ("accounts", "view_apitoken") in perms
    assert all(codename.startswith("view_") for _, codename in perms)
    assert not any(app in ("registry", "auth") for app, _ in perms)
    assert not Group.objects.get(name="researcher").permissions.exists()


@pytest.mark.parametrize("role", list(Role))
def test_role_of_each_role(make_user, role):
    user = make_user(role.value)
    assert role_of(user) is role
    assert user.is_staff is (role is Role.ADMIN)


def test_role_parse_accepts_spellings_and_refuses_unknown():
    assert Role.parse("Case-Manager") is Role.CASE_MANAGER
    with pytest.raises(RoleError, match="'nurse'"):
        Role.parse("nurse")


def test_set_role_replaces_the_role(make_user):
    user = make_user("clinician")
    assert set_role(user, "researcher") is Role.RESEARCHER
    assert role_of(user) is Role.RESEARCHER
    assert list(user.groups.values_list("name", flat=True)) == ["researcher"]


def test_second_role_refused_both_directions(make_user):
    user = make_user("clinician")
    researcher, admin = Group.objects.get(name="researcher"), Group.objects.get(name="admin")
    with pytest.raises(RoleError, match="exactly one role"), transaction.atomic():
        user.groups.add(researcher)
    with pytest.raises(RoleError, match="another role"), transaction.atomic():
        admin.user_set.add(user)
    assert role_of(user) is Role.CLINICIAN


def test_non_role_groups_are_allowed(make_user):
    user = make_user("clinician")
    user.groups.add(Group.objects.create(name="mdt-tuesday"))
    assert role_of(user) is Role.CLINICIAN


def test_no_role_inactive_anonymous(django_user_model):
    plain = django_user_model.objects.create_user("plain", password="x" * 20)
    assert role_or_none(plain) is None
    with pytest.raises(RoleError, match="'plain' has no role"):
        role_of(plain)
    assert role_or_none(AnonymousUser()) is None
    assert role_or_none(None) is None
    boss = django_user_model.objects.create_superuser("boss", password="x" * 20)
    assert role_of(boss) is Role.ADMIN
    boss.is_active = False
    assert role_or_none(boss) is None
