"""``/api/patients``: the patient list (search, pages), detail, creation, identity, diagnoses.

All identifiable: researchers are refused (403) and use ``/api/deidentified/patients``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from ninja import Path, Query, Router
from ninja.responses import Status

from spinewatch.accounts.permissions import Action, require_case_manager_assignment
from spinewatch.accounts.roles import Role, role_or_none
from spinewatch.registry import models as m
from spinewatch.registry import services
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.search import patient_search
from spinewatch.web.api import schemas as s
from spinewatch.web.api._access import ID_DESCRIPTION, allow, load, plain, responses, viewed
from spinewatch.web.api._present import patient_out, patient_summary_out

__all__ = ["router"]

router = Router(tags=["patients"])


def _patients() -> Any:
    return m.Patient.objects.select_related("identity", "case_manager")


def _case_manager(username: str | None) -> Any:
    """The active user ``username`` holding the case-manager role, or None; else 400."""
    if username is None:
        return None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or role_or_none(user) is not Role.CASE_MANAGER:
        raise RegistryError(
            f"case_manager {username!r}: expected the username of an active case manager"
        )
    return user


@router.get(
    "",
    response=responses({200: s.PatientPageOut}, 401, 403, 422),
    summary="List patients (search by study id, name or hospital number)",
)
def list_patients(
    request: HttpRequest,
    search: str | None = Query(None, max_length=100, pattern=s.NO_NUL),
    limit: int = Query(25, ge=1, le=100),
    offset: int = Query(0, ge=0, le=s.MAX_OFFSET),
) -> s.PatientPageOut:
    allow(request, Action.VIEW_IDENTIFIABLE)
    rows = _patients().order_by("study_id", "pk")
    term = (search or "").strip()
    if term:  # every word, in the indexed search text or the study id
        rows = rows.filter(patient_search(term))
    count = rows.count()
    page = list(rows[offset : offset + limit])
    viewed(
        m.Patient,
        None,
        study_id=None,
        detail={"list": "patients", "search": term, "study_ids": [p.study_id for p in page]},
    )
    return s.PatientPageOut(
        count=count, limit=limit, offset=offset, items=[patient_summary_out(p) for p in page]
    )


@router.post(
    "",
    response=responses({201: s.PatientOut}, 400, 401, 403, 422),
    summary="Create a patient (with identity, optionally)",
)
def create_patient(request: HttpRequest, payload: s.PatientIn) -> Status[s.PatientOut]:
    allow(request, Action.EDIT_PATIENT)
    manager = _case_manager(payload.case_manager)
    require_case_manager_assignment(request.user, manager)  # the one rule (web forms too)
    identity = None
    if payload.identity is not None:
        values = {k: plain(v) for k, v in payload.identity.model_dump().items()}
        identity = services.IdentityData(**values)
    patient = services.create_patient(
        study_id=payload.study_id, case_manager=manager, identity=identity
    )
    return Status(201, patient_out(load(_patients(), patient.pk, "patient")))


@router.get(
    "/{patient_id}",
    response=responses({200: s.PatientOut}, 401, 403, 404, 422),
    summary="A patient with identity and diagnoses",
)
def get_patient(
    request: HttpRequest, patient_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION)
) -> s.PatientOut:
    allow(request, Action.VIEW_IDENTIFIABLE)
    patient = load(_patients(), patient_id, "patient")
    allow(request, Action.VIEW_IDENTIFIABLE, patient)
    viewed(patient, patient.pk, study_id=patient.study_id)
    return patient_out(patient)


@router.patch(
    "/{patient_id}",
    response=responses({200: s.PatientOut}, 400, 401, 403, 404, 409, 422),
    summary="Assign the patient's case manager",
)
def update_patient(
    request: HttpRequest,
    payload: s.PatientUpdate,
    patient_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> s.PatientOut:
    allow(request, Action.EDIT_PATIENT)
    patient = load(_patients(), patient_id, "patient")
    allow(request, Action.EDIT_PATIENT, patient)
    manager = _case_manager(payload.case_manager)
    require_case_manager_assignment(request.user, manager, patient)
    services.update_patient(
        patient=patient, expected_version=payload.expected_version, case_manager=manager
    )
    return patient_out(load(_patients(), patient_id, "patient"))


@router.patch(
    "/{patient_id}/identity",
    response=responses({200: s.PatientOut}, 400, 401, 403, 404, 409, 422),
    summary="Change (or add) the patient's identifying data",
)
def update_identity(
    request: HttpRequest,
    payload: s.IdentityUpdate,
    patient_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> s.PatientOut:
    allow(request, Action.EDIT_PATIENT)
    patient = load(_patients(), patient_id, "patient")
    allow(request, Action.EDIT_PATIENT, patient)
    changes = {
        k: plain(v)
        for k, v in payload.model_dump(exclude_unset=True).items()
        if k != "expected_version"
    }
    services.update_patient_identity(
        patient=patient, expected_version=payload.expected_version, **changes
    )
    return patient_out(load(_patients(), patient_id, "patient"))


@router.post(
    "/{patient_id}/diagnoses",
    response=responses({201: s.DiagnosisOut}, 400, 401, 403, 404, 422),
    summary="Record a diagnosis",
)
def add_diagnosis(
    request: HttpRequest,
    payload: s.DiagnosisIn,
    patient_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> Status[s.DiagnosisOut]:
    allow(request, Action.EDIT_CLINICAL)
    patient = load(m.Patient.objects.all(), patient_id, "patient")
    allow(request, Action.EDIT_CLINICAL, patient)
    row = services.add_diagnosis(
        patient=patient,
        kind=plain(payload.kind),
        primary_tumour=plain(payload.primary_tumour),
        diagnosed_on=payload.diagnosed_on,
        notes=payload.notes,
    )
    return Status(
        201,
        s.DiagnosisOut(
            id=row.pk,
            kind=row.kind,
            primary_tumour=row.primary_tumour,
            diagnosed_on=row.diagnosed_on,
            notes=row.notes,
        ),
    )
