"""Follow-up visits: list per patient or per procedure, record a visit (VAS, analgesic use).

Reading is identifiable (calendar dates): researchers are refused (403). Recording needs
``record_follow_up`` on the patient (clinicians; a case manager for own or unassigned patients).
Also here: a visit's outcome (died, lost, withdrew, declined) and voiding any record entered in
error (``POST /{patients|imaging-studies|procedures|follow-ups}/{id}/void``).
"""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Path, Router
from ninja.responses import Status

from spinewatch.accounts.permissions import Action
from spinewatch.registry import models as m
from spinewatch.registry import services
from spinewatch.registry.choices import EnteredVia
from spinewatch.web.api import schemas as s
from spinewatch.web.api._access import ID_DESCRIPTION, allow, load, plain, responses, viewed
from spinewatch.web.api._present import follow_up_out

__all__ = ["router"]

router = Router(tags=["follow-ups"])


def _follow_ups() -> Any:
    return m.FollowUp.objects.select_related("procedure__patient")


@router.get(
    "/patients/{patient_id}/follow-ups",
    response=responses({200: list[s.FollowUpOut]}, 401, 403, 404, 422),
    summary="All scheduled visits of the patient's procedures, by due date",
)
def patient_follow_ups(
    request: HttpRequest,
    patient_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> list[s.FollowUpOut]:
    allow(request, Action.VIEW_IDENTIFIABLE)
    patient = load(m.Patient.objects.all(), patient_id, "patient")
    allow(request, Action.VIEW_IDENTIFIABLE, patient)
    rows = list(_follow_ups().filter(procedure__patient=patient).order_by("due_date", "pk"))
    viewed(
        m.FollowUp,
        None,
        study_id=patient.study_id,
        detail={"list": "follow-ups", "ids": [fu.pk for fu in rows]},
    )
    return [follow_up_out(fu) for fu in rows]


@router.get(
    "/procedures/{procedure_id}/follow-ups",
    response=responses({200: list[s.FollowUpOut]}, 401, 403, 404, 422),
    summary="The scheduled visits of one procedure, by due date",
)
def procedure_follow_ups(
    request: HttpRequest,
    procedure_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> list[s.FollowUpOut]:
    allow(request, Action.VIEW_IDENTIFIABLE)
    procedure = load(m.Procedure.objects.select_related("patient"), procedure_id, "procedure")
    allow(request, Action.VIEW_IDENTIFIABLE, procedure)
    rows = list(_follow_ups().filter(procedure=procedure).order_by("due_date", "pk"))
    viewed(
        m.FollowUp,
        None,
        study_id=procedure.patient.study_id,
        detail={"list": "follow-ups", "procedure": procedure.pk, "ids": [fu.pk for fu in rows]},
    )
    return [follow_up_out(fu) for fu in rows]


@router.put(
    "/follow-ups/{follow_up_id}",
    response=responses({200: s.FollowUpRecordOut}, 400, 401, 403, 404, 409, 422),
    summary="Record (or correct) a visit: date, VAS 0-10, analgesic use",
)
def record_follow_up(
    request: HttpRequest,
    payload: s.FollowUpRecordIn,
    follow_up_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> s.FollowUpRecordOut:
    allow(request, Action.RECORD_FOLLOW_UP)
    follow_up = load(_follow_ups(), follow_up_id, "follow-up")
    allow(request, Action.RECORD_FOLLOW_UP, follow_up)
    result = services.record_follow_up(
        follow_up=follow_up,
        expected_version=payload.expected_version,
        completed_on=payload.completed_on,
        vas=payload.vas,
        analgesic_use=plain(payload.analgesic_use),
        entered_by=request.user,
        entered_via=EnteredVia.STAFF.value,
    )
    saved = load(_follow_ups(), result.follow_up.pk, "follow-up")
    return s.FollowUpRecordOut(follow_up=follow_up_out(saved), warnings=list(result.warnings))


@router.post(
    "/follow-ups/{follow_up_id}/outcome",
    response=responses({200: list[s.FollowUpOut]}, 400, 401, 403, 404, 409, 422),
    summary="Record why a visit has no value (died, lost to follow-up, withdrew, declined)",
)
def record_visit_outcome(
    request: HttpRequest,
    payload: s.VisitOutcomeIn,
    follow_up_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> list[s.FollowUpOut]:
    allow(request, Action.RECORD_FOLLOW_UP)
    follow_up = load(_follow_ups(), follow_up_id, "follow-up")
    allow(request, Action.RECORD_FOLLOW_UP, follow_up)
    changed = services.record_visit_outcome(
        follow_up=follow_up,
        expected_version=payload.expected_version,
        outcome=plain(payload.outcome),
        outcome_on=payload.outcome_on,
        entered_by=request.user,
    )
    return [follow_up_out(load(_follow_ups(), fu.pk, "follow-up")) for fu in changed]


_VOIDABLE = {
    "patients": (m.Patient, Action.EDIT_CLINICAL),
    "imaging-studies": (m.ImagingStudy, Action.EDIT_CLINICAL),
    "procedures": (m.Procedure, Action.EDIT_CLINICAL),
    "follow-ups": (m.FollowUp, Action.RECORD_FOLLOW_UP),
}


@router.post(
    "/{kind}/{record_id}/void",
    response=responses({204: None}, 400, 401, 403, 404, 409, 422),
    summary="Void a patient, imaging study, procedure or follow-up entered in error",
)
def void(
    request: HttpRequest,
    payload: s.VoidIn,
    kind: Literal["patients", "imaging-studies", "procedures", "follow-ups"],
    record_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> Status[None]:
    model, action = _VOIDABLE[kind]
    allow(request, action)
    row = load(model.objects.all(), record_id, kind.rstrip("s").replace("-", " "))
    allow(request, action, row)
    services.void_record(
        record=row,
        expected_version=payload.expected_version,
        reason=payload.reason,
        voided_by=request.user,
    )
    return Status(204, None)
