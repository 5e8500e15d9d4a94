"""``/api/fhir/Patient/{study_id}/$everything``: a patient's record as a FHIR R4 Bundle.

The Bundle is :func:`spinewatch.registry.fhir.fhir_bundle`'s. Who gets what is the permission
matrix's (:mod:`spinewatch.accounts.permissions`): a role that may view identifiable data gets
the identifiable Bundle, a role that may only view de-identified data (researchers) the
de-identified one (study id, day offsets; no name, number, date or DICOM UID). Every read is
recorded in the audit trail like the other API reads (action ``view``, with ``deidentified``).
Answered as ``application/fhir+json``.

``POST /api/fhir/Bundle``: pain Observations (LOINC 72514-3) of existing patients recorded on
their visits (:func:`spinewatch.registry.fhir.import_pain_bundle`), all or nothing; needs the
right to record follow-ups for every patient in it (403 otherwise); a bad Bundle is a 400 whose
``detail`` names the entry and field.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Body, Path, Router

from spinewatch.accounts.permissions import Action, can
from spinewatch.registry import models as m
from spinewatch.registry.errors import NotFoundError
from spinewatch.web.api._access import allow, responses, viewed
from spinewatch.web.api.research import STUDY_ID_PATTERN

__all__ = ["router"]

router = Router(tags=["FHIR"])
_BUNDLE_BODY = Body(..., description="a FHIR R4 Bundle of pain Observations")


@router.get(
    "/Patient/{study_id}/$everything",
    response=responses({200: dict}, 401, 403, 404, 422),
    summary="A patient's record as a FHIR R4 Bundle (de-identified for researchers)",
)
def everything(
    request: HttpRequest,
    study_id: str = Path(
        ..., min_length=1, max_length=64, pattern=STUDY_ID_PATTERN, description="the study id"
    ),
) -> HttpResponse:
    from spinewatch.registry.fhir import fhir_bundle

    allow(request, Action.VIEW_DEIDENTIFIED)
    patient = m.Patient.objects.filter(study_id=study_id, voided_at__isnull=True).first()
    if patient is None:
        raise NotFoundError(f"study id {study_id!r} does not exist")
    deidentified = not can(request.user, Action.VIEW_IDENTIFIABLE, patient)
    allow(request, Action.VIEW_DEIDENTIFIED if deidentified else Action.VIEW_IDENTIFIABLE, patient)
    bundle = fhir_bundle(patient, deidentified=deidentified)
    viewed(
        m.Patient,
        patient.pk,
        study_id=patient.study_id,
        detail={
            "fhir": "$everything",
            "deidentified": deidentified,
            "entries": len(bundle["entry"]),
        },
    )
    return HttpResponse(json.dumps(bundle), content_type="application/fhir+json")


@router.post(
    "/Bundle",
    response=responses({200: dict[str, Any]}, 400, 401, 403, 422),
    summary="Import the pain Observations of a FHIR Bundle (all or nothing)",
)
def import_bundle(request: HttpRequest, bundle: dict[str, Any] = _BUNDLE_BODY) -> dict[str, Any]:
    from spinewatch.registry.fhir import import_pain_bundle

    allow(request, Action.RECORD_FOLLOW_UP)
    summary = import_pain_bundle(
        bundle,
        source="Bundle",
        check=lambda patient: allow(request, Action.RECORD_FOLLOW_UP, patient),
    )
    return {
        "imported": summary.pain_scores,
        "patients": summary.patients,
        "warnings": list(summary.warnings),
    }
