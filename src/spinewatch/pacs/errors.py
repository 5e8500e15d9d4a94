"""Errors of the PACS link; all are :class:`~spinewatch.core.errors.InputError` (one line, exit 2
on the command line), each naming the study, the server or the value at fault."""

from __future__ import annotations

from spinewatch.core.errors import InputError

__all__ = [
    "AlreadyReceivedError",
    "PacsError",
    "PacsUnavailableError",
    "PatientMismatchError",
    "StudyNotFoundError",
    "StudyRefusedError",
]


class PacsError(InputError):
    """Something about a DICOM study or the PACS that SpineWatch cannot proceed with."""


class PacsUnavailableError(PacsError):
    """The PACS did not answer, or kept answering 5xx, after the retries."""


class StudyNotFoundError(PacsError):
    """The PACS does not know the study (or the scan has no DICOM source to push to)."""


class StudyRefusedError(PacsError):
    """A study SpineWatch cannot analyse (no axial CT image series); nothing was stored."""


class PatientMismatchError(PacsError):
    """The study's PatientID is not the hospital number of the patient it was pulled for."""


class AlreadyReceivedError(PacsError):
    """The study was received before and has been analysed (or refused/dismissed)."""
