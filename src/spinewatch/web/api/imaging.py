"""Imaging studies and their analyses: list per patient, detail (report JSON, findings), decisions.

Identifiable (study dates, DICOM UIDs, the report): researchers are refused (403) and see the
findings de-identified through ``/api/deidentified/patients/{id}``.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Path, Router

from spinewatch.accounts.permissions import Action
from spinewatch.registry import models as m
from spinewatch.registry import services
from spinewatch.web.api import schemas as s
from spinewatch.web.api._access import ID_DESCRIPTION, allow, load, plain, responses, viewed
from spinewatch.web.api._present import finding_out, study_out, study_summary_out

__all__ = ["router"]

router = Router(tags=["imaging"])


@router.get(
    "/patients/{patient_id}/studies",
    response=responses({200: list[s.ImagingStudySummaryOut]}, 401, 403, 404, 422),
    summary="The patient's imaging studies, oldest first",
)
def list_studies(
    request: HttpRequest,
    patient_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> list[s.ImagingStudySummaryOut]:
    allow(request, Action.VIEW_IDENTIFIABLE)
    patient = load(m.Patient.objects.all(), patient_id, "patient")
    allow(request, Action.VIEW_IDENTIFIABLE, patient)
    studies = list(
        patient.imaging_studies.order_by("study_date", "pk").prefetch_related("findings")
    )
    viewed(
        m.ImagingStudy,
        None,
        study_id=patient.study_id,
        detail={"list": "imaging studies", "ids": [st.pk for st in studies]},
    )
    return [study_summary_out(st) for st in studies]


@router.get(
    "/studies/{imaging_study_id}",
    response=responses({200: s.ImagingStudyOut}, 401, 403, 404, 422),
    summary="An imaging study with its analysis report and findings",
)
def get_study(
    request: HttpRequest,
    imaging_study_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> s.ImagingStudyOut:
    allow(request, Action.VIEW_IDENTIFIABLE)
    study = load(
        m.ImagingStudy.objects.select_related("patient").prefetch_related("findings"),
        imaging_study_id,
        "imaging study",
    )
    allow(request, Action.VIEW_IDENTIFIABLE, study)
    viewed(study, study.pk, study_id=study.patient.study_id)
    return study_out(study)


@router.patch(
    "/findings/{finding_id}",
    response=responses({200: s.FindingOut}, 400, 401, 403, 404, 409, 422),
    summary="Record the team's decision about one vertebra (none/watch/treat/treated)",
)
def decide(
    request: HttpRequest,
    payload: s.FindingDecisionUpdate,
    finding_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> s.FindingOut:
    allow(request, Action.EDIT_CLINICAL)
    finding = load(
        m.VertebraFinding.objects.select_related("study__patient"), finding_id, "finding"
    )
    allow(request, Action.EDIT_CLINICAL, finding)
    saved = services.set_finding_decision(
        finding=finding,
        expected_version=payload.expected_version,
        decision=plain(payload.decision),
        note=payload.note,
    )
    return finding_out(saved)
