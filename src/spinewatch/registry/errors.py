"""Errors of the registry's service layer.

All are :class:`~spinewatch.core.errors.InputError` (so a ``ValueError``): the command line turns
them into one message and exit status 2, the web layer into a form error. Each message names the
field and the offending value.
"""

from __future__ import annotations

__all__ = [
    "NotFoundError",
    "RegistryError",
    "StaleEditError",
]

from spinewatch.core.errors import InputError


class RegistryError(InputError):
    """A write the registry refuses: a bad value, a duplicate, a rule of the programme."""


class NotFoundError(RegistryError):
    """A referenced record (patient, procedure, follow-up ...) does not exist."""


class StaleEditError(RegistryError):
    """The record changed since the caller read it (optimistic locking).

    ``current_version`` is the version now stored, ``expected_version`` the one the edit was
    based on; the caller should re-read and redo the edit.
    """

    def __init__(self, what: str, *, current_version: int, expected_version: int) -> None:
        self.what = what
        self.current_version = current_version
        self.expected_version = expected_version
        super().__init__(
            f"changed by someone else: {what} is at version {current_version}, "
            f"your edit was based on version {expected_version}"
        )
