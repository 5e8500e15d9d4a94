"""Admin site: API tokens and TOTP devices can be inspected and deleted, never edited.

Secrets are not shown (token hashes are useless to a reader; TOTP secrets are excluded).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from spinewatch.accounts.models import ApiToken, TotpDevice


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
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
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    exclude = ("token_hash",)


@admin.register(TotpDevice)
class TotpDeviceAdmin(_ReadOnly):
    list_display = ("user", "confirmed", "created_at", "confirmed_at", "last_used_at")
    list_filter = ("confirmed",)
    search_fields = ("user__username",)
    exclude = ("secret",)
