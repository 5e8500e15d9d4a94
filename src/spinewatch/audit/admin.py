"""Django admin for the audit trail: list, search and view only.

No add, change or delete -- not even for superusers -- and no bulk actions. Viewing needs the
``audit.view_auditevent`` permission (the only permission the model defines).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from spinewatch.audit.models import AuditEvent

__all__ = ["AuditEventAdmin"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "seq",
        "at",
        "actor_username",
        "actor_role",
        "via",
        "action",
        "object_type",
        "object_id",
        "patient_study_id",
    )
    list_filter = ("action", "via", "object_type")
    search_fields = ("=patient_study_id", "=actor_username", "=object_id")
    date_hierarchy = "at"
    ordering = ("-seq",)
    actions = None
    readonly_fields = tuple(f.name for f in AuditEvent._meta.fields)
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
