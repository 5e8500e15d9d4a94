"""The audit table: one row per event, append-only, hash-chained.

Append :class:`AuditEvent` rows through :func:`spinewatch.audit.trail.record` only: it numbers the
event, links it to the previous one and computes its hash under a lock. The table is append-only
three times over: the database refuses ``UPDATE``, ``DELETE`` and ``TRUNCATE`` (triggers,
:mod:`spinewatch.audit.triggers`), the model refuses ``save()`` of an existing row and
``delete()``, and the queryset refuses ``update()``, ``delete()`` and bulk writes.

The actor is copied, not referenced: ``actor_id`` is a plain integer column and ``actor_username``
a string, so deleting a user neither cascades into nor rewrites the trail (a foreign key with
``SET_NULL`` would be an ``UPDATE``, which the trigger refuses).
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.db.models import Q

from spinewatch.audit.canonical import event_document, event_hash
from spinewatch.audit.errors import AppendOnlyError

__all__ = ["Action", "AuditEvent", "AuditEventQuerySet", "Via"]


class Via(models.TextChoices):
    """The channel an event came through."""

    WEB = "web", "Web page"
    API = "api", "JSON API"
    CLI = "cli", "Command line"
    PORTAL = "portal", "Patient portal"
    IMPORT = "import", "Import"
    SYSTEM = "system", "System"


class Action(models.TextChoices):
    """What happened. Not a database constraint: a new action needs no migration."""

    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    VIEW = "view", "View"
    EXPORT = "export", "Export"
    LOGIN = "login", "Log-in"
    LOGIN_FAILED = "login_failed", "Failed log-in"
    LOGOUT = "logout", "Log-out"
    LOCKED_OUT = "locked_out", "Locked out"
    PASSWORD_CHANGE = "password_change", "Password change"
    TWO_FACTOR_ENABLE = "two_factor_enable", "Two-factor enabled"
    TWO_FACTOR_DISABLE = "two_factor_disable", "Two-factor disabled"
    TOKEN_CREATE = "token_create", "API token created"
    TOKEN_REVOKE = "token_revoke", "API token revoked"
    PORTAL_LINK_CREATE = "portal_link_create", "Portal link created"
    PORTAL_LINK_USE = "portal_link_use", "Portal link used"
    ROLE_CHANGE = "role_change", "Role change"
    PERMISSION_DENIED = "permission_denied", "Permission denied"


def _refuse(what: str) -> NoReturn:
    raise AppendOnlyError(f"audit events are append-only: {what} refused")


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """Reads only: every bulk write is refused before it reaches the database."""

    def update(self, **kwargs: Any) -> int:
        _refuse("update()")

    def delete(self) -> tuple[int, dict[str, int]]:
        _refuse("delete()")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        _refuse("bulk_update()")

    def bulk_create(self, *args: Any, **kwargs: Any) -> list[AuditEvent]:
        _refuse("bulk_create() (append through spinewatch.audit.trail.record)")

    def update_or_create(self, *args: Any, **kwargs: Any) -> tuple[AuditEvent, bool]:
        _refuse("update_or_create()")


class AuditEvent(models.Model):
    """One audited event (see :mod:`spinewatch.audit.canonical` for what ``hash`` covers).

    ``seq`` numbers the events 1, 2, 3, ... without gaps (assigned under a lock, not by a database
    sequence, which would leave gaps on rollback); ``at`` is UTC with microseconds; ``changes`` is
    ``{"field": [old, new]}`` for an update and ``{"field": value}`` for a create or delete;
    ``detail`` holds anything else (a search filter, an export's row count, a failed log-in's
    username); ``prev_hash`` is the previous event's ``hash``.
    """

    seq = models.PositiveBigIntegerField(primary_key=True)
    at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=16, choices=Via.choices)
    action = models.CharField(max_length=32)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    patient_study_id = models.CharField(max_length=64, null=True, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.CharField(max_length=45, null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ("seq",)
        default_permissions = ("view",)  # nobody can be granted add/change/delete
        indexes = (
            models.Index(fields=["patient_study_id", "seq"], name="audit_patient_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["actor_username", "seq"], name="audit_actor_idx"),
        )
        constraints = (
            models.CheckConstraint(condition=Q(seq__gte=1), name="audit_seq_positive"),
            models.UniqueConstraint(fields=["prev_hash"], name="audit_prev_hash_unique"),
            models.CheckConstraint(condition=Q(via__in=Via.values), name="audit_via_valid"),
            models.CheckConstraint(condition=~Q(action=""), name="audit_action_not_empty"),
        )

    def __str__(self) -> str:
        who = self.actor_username or "-"
        return f"#{self.seq} {who} {self.action} {self.object_type} {self.object_id}".rstrip()

    def document(self) -> dict[str, Any]:
        """The document :attr:`hash` covers (every column but ``hash``)."""
        return event_document(
            seq=self.seq,
            at=self.at,
            actor_id=self.actor_id,
            actor_username=self.actor_username,
            actor_role=self.actor_role,
            via=self.via,
            action=self.action,
            object_type=self.object_type,
            object_id=self.object_id,
            patient_study_id=self.patient_study_id,
            changes=self.changes,
            detail=self.detail,
            ip=self.ip,
            prev_hash=self.prev_hash,
        )

    def compute_hash(self) -> str:
        """SHA-256 of this event's canonical document (what :attr:`hash` should be)."""
        return event_hash(self.document())

    def save(self, *args: Any, **kwargs: Any) -> None:
        """INSERT a new event; saving an event that is already stored raises AppendOnlyError."""
        if not self._state.adding:
            _refuse(f"save() of stored event {self.seq}")
        kwargs["force_insert"] = True
        kwargs.pop("force_update", None)
        kwargs.pop("update_fields", None)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(f"delete() of event {self.seq}")
