"""``/api/deidentified``: patients as a researcher may see them (no identifier, no calendar date).

Built by :func:`spinewatch.registry.deid.deidentified_patient` (study id, age at the index
procedure, days from it, clinical content; no free text). Any role holding
``view_deidentified`` may read them; nothing identifiable is read, so no view is audited.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Path, Query, Router

from spinewatch.accounts.permissions import Action
from spinewatch.registry import models as m
from spinewatch.registry.errors import NotFoundError
from spinewatch.web.api import schemas as s
from spinewatch.web.api._access import allow, responses

__all__ = ["STUDY_ID_PATTERN", "router"]

STUDY_ID_PATTERN = r"^[A-Za-z0-9._-]+$"

router = Router(tags=["de-identified"])


@router.get(
    "/patients",
    response=responses({200: s.DeidentifiedPatientPageOut}, 401, 403, 422),
    summary="De-identified patients, by study id",
)
def list_patients(
    request: HttpRequest,
    limit: int = Query(25, ge=1, le=100),
    offset: int = Query(0, ge=0, le=s.MAX_OFFSET),
) -> s.DeidentifiedPatientPageOut:
    from spinewatch.registry.deid import deidentified_patients

    allow(request, Action.VIEW_DEIDENTIFIED)
    rows = m.Patient.objects.order_by("study_id", "pk")
    page = list(rows[offset : offset + limit])
    return s.DeidentifiedPatientPageOut(
        count=rows.count(),
        limit=limit,
        offset=offset,
        items=deidentified_patients(page),  # a fixed number of queries per page
    )


@router.get(
    "/patients/{study_id}",
    response=responses({200: dict[str, Any]}, 400, 401, 403, 404, 422),
    summary="One de-identified patient, by study id (diagnoses, procedures, follow-ups, findings)",
)
def get_patient(
    request: HttpRequest,
    study_id: str = Path(
        ..., min_length=1, max_length=64, pattern=STUDY_ID_PATTERN, description="the study id"
    ),
) -> dict[str, Any]:
    from spinewatch.registry.deid import deidentified_patient

    allow(request, Action.VIEW_DEIDENTIFIED)
    patient = m.Patient.objects.filter(study_id=study_id).first()
    if patient is None:
        raise NotFoundError(f"study id {study_id!r} does not exist")
    allow(request, Action.VIEW_DEIDENTIFIED, patient)
    return deidentified_patient(patient)
