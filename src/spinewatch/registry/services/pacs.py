"""Received DICOM studies and their reconciliation (see :mod:`spinewatch.registry.models_pacs`).

A received study is recorded once per StudyInstanceUID. When its PatientID (and issuer) match
no patient it waits in the reconciliation list (``unmatched``); :func:`assign_received_study`
is the only way it reaches a patient then -- a person's decision, audited. No function here
creates a patient.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from spinewatch.registry import models as m
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.models_pacs import ReceivedStatus, ReceivedVia
from spinewatch.registry.services._base import changed, created, get

__all__ = [
    "assign_received_study",
    "dismiss_received_study",
    "record_received_study",
    "update_received_study",
]

_UPDATABLE = {
    "status",
    "message",
    "patient",
    "imaging_study",
    "series",
    "chosen_series_uid",
    "labels_source",
    "pushed_at",
    "pushed",
    "storage_dir",
}


def record_received_study(
    *,
    study_instance_uid: str,
    dicom_patient_id: str,
    received_via: str,
    status: str,
    issuer_of_patient_id: str = "",
    dicom_patient_name: str = "",
    study_date: dt.date | None = None,
    study_description: str = "",
    accession_number: str = "",
    calling_ae_title: str = "",
    storage_dir: str = "",
    series: list[dict[str, Any]] | None = None,
    chosen_series_uid: str = "",
    labels_source: str = "",
    message: str = "",
    patient: m.Patient | None = None,
    imaging_study: m.ImagingStudy | None = None,
) -> m.ReceivedStudy:
    """Record a newly received study (RegistryError when that StudyInstanceUID is known)."""
    if received_via not in ReceivedVia.values:
        raise RegistryError(f"received_via {received_via!r}: expected one of {ReceivedVia.values}")
    if status not in ReceivedStatus.values:
        raise RegistryError(f"status {status!r}: expected one of {ReceivedStatus.values}")
    with transaction.atomic():
        if m.ReceivedStudy.objects.filter(study_instance_uid=study_instance_uid).exists():
            raise RegistryError(
                f"study {study_instance_uid}: already received; expected a study not seen before"
            )
        return created(
            m.ReceivedStudy(
                study_instance_uid=study_instance_uid,
                dicom_patient_id=dicom_patient_id[:64],
                issuer_of_patient_id=issuer_of_patient_id[:64],
                dicom_patient_name=dicom_patient_name[:200],
                study_date=study_date,
                study_description=study_description[:200],
                accession_number=accession_number[:64],
                received_via=received_via,
                calling_ae_title=calling_ae_title[:16],
                storage_dir=storage_dir,
                series=list(series or []),
                chosen_series_uid=chosen_series_uid,
                labels_source=labels_source[:200],
                status=status,
                message=message,
                patient=patient,
                imaging_study=imaging_study,
            )
        )


def update_received_study(
    *, received: m.ReceivedStudy | int, expected_version: int, changes: Mapping[str, Any]
) -> m.ReceivedStudy:
    """Change the bookkeeping fields of a received study (status, series, push record...)."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise RegistryError(f"received study: cannot change {sorted(unknown)}")
    if "status" in changes and changes["status"] not in ReceivedStatus.values:
        raise RegistryError(
            f"status {changes['status']!r}: expected one of {ReceivedStatus.values}"
        )
    with transaction.atomic():
        row = get(m.ReceivedStudy, received, "received study")
        return changed(
            row,
            what=f"received study {row.study_instance_uid}",
            changes=dict(changes),
            expected_version=expected_version,
        )


def assign_received_study(
    *, received: m.ReceivedStudy | int, patient: m.Patient | int, expected_version: int
) -> m.ReceivedStudy:
    """Reconcile an unmatched study: a person says whose it is (the status becomes matched)."""
    with transaction.atomic():
        row = get(m.ReceivedStudy, received, "received study")
        if row.status != ReceivedStatus.UNMATCHED:
            raise RegistryError(
                f"received study {row.study_instance_uid} is {row.get_status_display().lower()}; "
                "only a study awaiting reconciliation can be assigned"
            )
        owner = get(m.Patient, patient, "patient")
        return changed(
            row,
            what=f"received study {row.study_instance_uid}",
            changes={
                "patient": owner,
                "status": ReceivedStatus.MATCHED.value,
                "message": f"assigned to {owner.study_id} by reconciliation",
            },
            expected_version=expected_version,
        )


def dismiss_received_study(
    *, received: m.ReceivedStudy | int, expected_version: int, reason: str
) -> m.ReceivedStudy:
    """Take a study off the reconciliation list without assigning it (a reason is required)."""
    if not isinstance(reason, str) or not reason.strip():
        raise RegistryError("reason: expected why the study is dismissed")
    with transaction.atomic():
        row = get(m.ReceivedStudy, received, "received study")
        if row.status != ReceivedStatus.UNMATCHED:
            raise RegistryError(
                f"received study {row.study_instance_uid} is {row.get_status_display().lower()}; "
                "only a study awaiting reconciliation can be dismissed"
            )
        return changed(
            row,
            what=f"received study {row.study_instance_uid}",
            changes={"status": ReceivedStatus.DISMISSED.value, "message": reason.strip()},
            expected_version=expected_version,
        )
