"""Errors of the audit trail.

:class:`AuditError` is an :class:`~spinewatch.core.errors.InputError` (so a ``ValueError``): a bad
action, channel, IP address or a value that cannot be written to the trail. Its message names the
offending value and what was expected.
"""

from __future__ import annotations

from spinewatch.core.errors import InputError

__all__ = ["AppendOnlyError", "AuditError"]


class AuditError(InputError):
    """An audit event SpineWatch refuses to record (the message names the value)."""


class AppendOnlyError(AuditError):
    """An attempt to change or delete an audit event; the trail is append-only."""
