"""``/pacs/``: the studies received from the PACS or a modality, and their reconciliation.

A study whose PatientID (+ issuer) matched no patient waits here: a clinician assigns it to a
patient (its analysis is then queued when a label map is at hand: a vertebra SEG in the study)
or dismisses it with a reason. Nobody creates a patient from here. The list is identifiable
(DICOM names and ids) and its views are audited; writes go through the registry services.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from spinewatch.accounts.permissions import Action, can, require, requires
from spinewatch.audit.trail import record
from spinewatch.core.errors import InputError
from spinewatch.registry import services
from spinewatch.registry.models import Patient, ReceivedStudy

__all__ = ["assign", "dismiss", "received_list"]

LIST_LIMIT = 200


@require_GET
@requires(Action.VIEW_IDENTIFIABLE)
def received_list(request: HttpRequest) -> HttpResponse:
    """The reconciliation list first, then the latest received studies."""
    unmatched = list(ReceivedStudy.objects.filter(status="unmatched").order_by("received_at"))
    recent = list(
        ReceivedStudy.objects.exclude(status="unmatched")
        .select_related("patient", "imaging_study")
        .order_by("-received_at")[:LIST_LIMIT]
    )
    record(
        actor=None,
        action="view",
        object_type="registry.receivedstudy",
        object_id=None,
        detail={"page": "received studies", "studies": [r.pk for r in unmatched + recent]},
    )
    context = {
        "unmatched": unmatched,
        "recent": recent,
        "can_reconcile": can(request.user, Action.EDIT_CLINICAL),
    }
    response = render(request, "web/pacs/received.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@requires(Action.EDIT_CLINICAL)
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Assign an unmatched study to the patient with the study id typed in."""
    from spinewatch.pacs.receive import analyse_received_study

    row = get_object_or_404(ReceivedStudy, pk=pk)
    study_id = request.POST.get("patient", "").strip()
    patient = Patient.objects.filter(study_id=study_id).first()
    if patient is None:
        messages.error(request, f"No patient has the study id {study_id!r}; nothing was changed.")
        return redirect(reverse("pacs:received"))
    require(request.user, Action.EDIT_CLINICAL, patient)
    try:
        row = services.assign_received_study(
            received=row, patient=patient, expected_version=int(request.POST.get("version", 0))
        )
        result = analyse_received_study(row, requested_by=request.user)
        messages.success(request, f"Assigned to {patient.study_id}: {result.study.message}")
    except (InputError, ValueError) as exc:
        messages.error(request, str(exc))
    return redirect(reverse("pacs:received"))


@require_POST
@requires(Action.EDIT_CLINICAL)
def dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    """Take an unmatched study off the list, with the reason given."""
    row = get_object_or_404(ReceivedStudy, pk=pk)
    try:
        services.dismiss_received_study(
            received=row,
            expected_version=int(request.POST.get("version", 0)),
            reason=request.POST.get("reason", ""),
        )
        messages.success(request, f"Study {row.study_instance_uid} dismissed.")
    except (InputError, ValueError) as exc:
        messages.error(request, str(exc))
    return redirect(reverse("pacs:received"))
