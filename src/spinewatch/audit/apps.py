"""The audit trail's Django application."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["AuditConfig"]


class AuditConfig(AppConfig):
    name = "spinewatch.audit"
    label = "audit"
    verbose_name = "SpineWatch audit trail"
    default_auto_field = "django.db.models.BigAutoField"
