"""Which patient a DICOM study belongs to: PatientID = hospital number (and the issuer).

A study matches the patient whose ``PatientIdentity.hospital_number`` is its PatientID
(0010,0020), compared by the hospital-number key (:func:`spinewatch.core.identifiers.
hospital_number_key`: case, spaces and dashes ignored, as the registry does); a voided patient
is never matched. When the study names an IssuerOfPatientID
(0010,0021) and SpineWatch knows its own (``SPINEWATCH_PATIENT_ID_ISSUER``), the two must be the
same -- another hospital's number 12345 is not our 12345. No match is not an error: the study
goes to the reconciliation list. Nothing here creates a patient.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from spinewatch.registry.models import Patient

__all__ = ["Match", "match_patient"]


@dataclass(frozen=True)
class Match:
    """The patient (None: no match) and why, in words for the reconciliation list."""

    patient: Patient | None
    reason: str


def match_patient(patient_id: str, issuer: str = "") -> Match:
    """The patient whose hospital number is ``patient_id`` (see the module doc)."""
    pid = (patient_id or "").strip()
    if not pid:
        return Match(None, "the study has no PatientID")
    ours = str(getattr(settings, "SPINEWATCH_PATIENT_ID_ISSUER", "") or "").strip()
    theirs = (issuer or "").strip()
    if ours and theirs and theirs != ours:
        return Match(
            None,
            f"PatientID {pid!r} is issued by {theirs!r}, not by this hospital ({ours!r})",
        )
    from spinewatch.core.identifiers import hospital_number_key

    patient = (
        Patient.objects.select_related("identity")
        .filter(identity__hospital_number_key=hospital_number_key(pid), voided_at__isnull=True)
        .first()
    )
    if patient is None:
        return Match(None, f"no patient has the hospital number {pid!r}")
    return Match(patient, f"PatientID {pid!r} is the hospital number of {patient.study_id}")
