"""Django admin: no user form at all; API tokens and TOTP devices can be inspected, not changed.

Users, roles, passwords, second factors and tokens are managed on the admin's user pages
(``/accounts/users/``, :mod:`spinewatch.accounts.user_views`) and by ``spinewatch user`` /
``spinewatch token``, which apply the rules (one role, no self-demotion, second factor for a
token) and audit every change. Django's own user and group forms -- with their "superuser
status", "staff status", group and permission boxes -- are therefore taken off the admin site:
an admin cannot tick "superuser" on anyone, themselves included.

Secrets are not shown (token hashes are useless to a reader; TOTP secrets are excluded).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import HttpRequest

from spinewatch.accounts.models import ApiToken, TotpDevice

for _model in (get_user_model(), Group):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(_ReadOnly):
    list_display = (
        "prefix",
        "name",
        "user",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "second_factor_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    exclude = ("token_hash",)


@admin.register(TotpDevice)
class TotpDeviceAdmin(_ReadOnly):
    list_display = (
        "user",
        "confirmed",
        "created_at",
        "confirmed_at",
        "last_used_at",
        "locked_until",
    )
    list_filter = ("confirmed",)
    search_fields = ("user__username",)
    exclude = ("secret",)
