"""Errors of backup and restore: input errors (one line, exit status 2 on the command line)."""

from __future__ import annotations

from spinewatch.core.errors import InputError

__all__ = ["BackupError"]


class BackupError(InputError):
    """A backup or restore refused: an archive that is damaged, a target that is not empty..."""
