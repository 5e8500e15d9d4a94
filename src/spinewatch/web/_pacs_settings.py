"""Settings of the PACS link, read from the environment (imported by :mod:`.settings`).

- ``SPINEWATCH_DICOM_AE_TITLE`` (default ``SPINEWATCH``): the storage SCP's AE title, 1-16
  characters of A-Z, 0-9, space and ``_-.``;
- ``SPINEWATCH_DICOM_PORT`` (default 11112) and ``SPINEWATCH_DICOM_HOST`` (default 127.0.0.1):
  where ``spinewatch dicom-listen`` / ``spinewatch serve --dicom`` accept associations;
- ``SPINEWATCH_DICOMWEB_URL``: the PACS' DICOMweb root (QIDO-RS / WADO-RS / STOW-RS), e.g.
  ``http://pacs:8042/dicom-web``; empty = no DICOMweb link;
- ``SPINEWATCH_DICOMWEB_USER`` + ``SPINEWATCH_DICOMWEB_PASSWORD`` (HTTP basic) or
  ``SPINEWATCH_DICOMWEB_TOKEN`` (bearer) when the PACS asks for authentication;
- ``SPINEWATCH_PATIENT_ID_ISSUER``: the issuer of our hospital numbers; a study whose
  IssuerOfPatientID names another issuer is not matched by its PatientID;
- ``SPINEWATCH_PACS_WITHOUT_LABELS`` (default ``segment``): a matched CT study received without
  a vertebra SEG of its series is ``segment``-ed -- its analysis queued at once, the worker
  segmenting the CT with the segmenter ``SPINEWATCH_SEGMENTER`` names, as for a CT uploaded
  alone -- or, with ``wait``, kept matched until a segmentation node sends its SEG (or a user
  gives a label file);
- ``SPINEWATCH_DICOMWEB_RETRIES`` (default 4) and ``SPINEWATCH_DICOMWEB_BACKOFF_S`` (default
  1.0): attempts and first wait (doubling) when the PACS is unreachable or answers 5xx.
"""

from __future__ import annotations

import os
import re

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "SPINEWATCH_DICOMWEB",
    "SPINEWATCH_DICOM_AE_TITLE",
    "SPINEWATCH_DICOM_HOST",
    "SPINEWATCH_DICOM_PORT",
    "SPINEWATCH_PACS_WITHOUT_LABELS",
    "SPINEWATCH_PATIENT_ID_ISSUER",
]

_AE = re.compile(r"^[A-Z0-9 _.\-]{1,16}$")


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number {low}..{high}")
    return value


def _float(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number {low}..{high}")
    return value


SPINEWATCH_DICOM_AE_TITLE = os.environ.get("SPINEWATCH_DICOM_AE_TITLE", "SPINEWATCH")
if not _AE.match(SPINEWATCH_DICOM_AE_TITLE):
    raise ImproperlyConfigured(
        f"SPINEWATCH_DICOM_AE_TITLE={SPINEWATCH_DICOM_AE_TITLE!r}: expected 1-16 characters "
        "A-Z, 0-9, space, _ - ."
    )
SPINEWATCH_DICOM_PORT = _int("SPINEWATCH_DICOM_PORT", 11112, 1, 65535)
SPINEWATCH_DICOM_HOST = os.environ.get("SPINEWATCH_DICOM_HOST", "127.0.0.1")
SPINEWATCH_PATIENT_ID_ISSUER = os.environ.get("SPINEWATCH_PATIENT_ID_ISSUER", "").strip()
SPINEWATCH_PACS_WITHOUT_LABELS = (
    os.environ.get("SPINEWATCH_PACS_WITHOUT_LABELS", "").strip().lower() or "segment"
)
if SPINEWATCH_PACS_WITHOUT_LABELS not in {"segment", "wait"}:
    raise ImproperlyConfigured(
        f"SPINEWATCH_PACS_WITHOUT_LABELS={SPINEWATCH_PACS_WITHOUT_LABELS!r}: expected segment "
        "or wait"
    )

_url = os.environ.get("SPINEWATCH_DICOMWEB_URL", "").strip().rstrip("/")
if _url and not _url.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"SPINEWATCH_DICOMWEB_URL={_url!r}: expected http(s)://...")
SPINEWATCH_DICOMWEB = {
    "URL": _url,
    "USER": os.environ.get("SPINEWATCH_DICOMWEB_USER", ""),
    "PASSWORD": os.environ.get("SPINEWATCH_DICOMWEB_PASSWORD", ""),
    "TOKEN": os.environ.get("SPINEWATCH_DICOMWEB_TOKEN", ""),
    "RETRIES": _int("SPINEWATCH_DICOMWEB_RETRIES", 4, 1, 20),
    "BACKOFF_S": _float("SPINEWATCH_DICOMWEB_BACKOFF_S", 1.0, 0.0, 60.0),
    "TIMEOUT_S": _float("SPINEWATCH_DICOMWEB_TIMEOUT_S", 60.0, 1.0, 3600.0),
}
if bool(SPINEWATCH_DICOMWEB["USER"]) != bool(SPINEWATCH_DICOMWEB["PASSWORD"]):
    raise ImproperlyConfigured(
        "SPINEWATCH_DICOMWEB_USER and SPINEWATCH_DICOMWEB_PASSWORD: expected both or neither"
    )
