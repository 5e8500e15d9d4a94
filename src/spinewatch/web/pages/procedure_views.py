"""Recording and correcting a procedure (several levels, leakages, complications in one form).

Saving calls :func:`spinewatch.registry.services.record_procedure` (or ``update_procedure``):
all or nothing. Any error -> the same form again, status 400, with each message next to its
field, and nothing written. A new procedure's follow-up schedule is created by the service; the
patient page then shows it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from spinewatch.accounts.permissions import Action, requires
from spinewatch.registry import models as rm
from spinewatch.registry import services
from spinewatch.registry.errors import RegistryError, StaleEditError
from spinewatch.web.pages.procedure_forms import (
    ProcedureForms,
    attach_service_error,
    bound_procedure_forms,
    forms_with_extra_row,
    procedure_initial,
    unbound_procedure_forms,
)
from spinewatch.web.pages.stale import handle_stale_edits
from spinewatch.web.pages.views import _version, audit_view, get_patient

__all__ = ["procedure_edit", "procedure_new"]

_ADD_BUTTONS = {
    "add_level": "levels",
    "add_leakage": "leakages",
    "add_complication": "complications",
}


def _get_procedure(request: HttpRequest, pk: int, *args: Any, **kwargs: Any) -> rm.Procedure:
    return get_object_or_404(
        rm.Procedure.objects.select_related("patient", "patient__identity"), pk=pk
    )


def _render(
    request: HttpRequest,
    forms_: ProcedureForms,
    *,
    patient: rm.Patient,
    procedure: rm.Procedure | None,
    status: int,
    version: int | None = None,
) -> HttpResponse:
    return render(
        request,
        "web/pages/procedure_form.html",
        {
            "forms": forms_,
            "patient": patient,
            "procedure": procedure,
            "version": version,
            "cancel_url": reverse("pages:patient", args=[patient.study_id]),
        },
        status=status,
    )


def _planned_of(request: HttpRequest, patient: rm.Patient) -> rm.Procedure | None:
    """The planned procedure this form performs (``?planned=<id>``), if any (404 otherwise)."""
    raw = request.GET.get("planned", "")
    if not raw:
        return None
    return get_object_or_404(
        rm.Procedure, pk=int(raw) if raw.isdigit() else 0, patient=patient, status="planned"
    )


def _added_row(request: HttpRequest) -> str | None:
    for button, prefix in _ADD_BUTTONS.items():
        if button in request.POST:
            return prefix
    return None


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.VIEW_IDENTIFIABLE, Action.EDIT_CLINICAL, get_object=get_patient)
def procedure_new(request: HttpRequest, study_id: str) -> HttpResponse:
    """Record a new procedure for the patient."""
    patient: rm.Patient = request.permission_object  # type: ignore[attr-defined]
    if request.method != "POST":
        user = request.user
        operator = user.get_full_name() or user.get_username()  # type: ignore[union-attr]
        audit_view(patient, "new procedure form")
        planned = _planned_of(request, patient)
        initial: dict[str, Any] = {"operator": operator, "performed_on": timezone.localdate()}
        rows: dict[str, list[dict[str, Any]]] = {}
        if planned is not None:
            initial.update(procedure_type=planned.procedure_type, notes=planned.notes)
            rows["levels"] = [{"level": level} for level in planned.planned_levels]
        forms_ = unbound_procedure_forms(initial=initial, rows=rows)
        return _render(request, forms_, patient=patient, procedure=None, status=200)
    added = _added_row(request)
    if added is not None:
        forms_ = forms_with_extra_row(request.POST, added)
        return _render(request, forms_, patient=patient, procedure=None, status=200)
    forms_ = bound_procedure_forms(request.POST)
    planned = _planned_of(request, patient)
    if forms_.is_valid():
        try:
            procedure = services.record_procedure(
                patient=patient,
                operator_user=None,
                planned=planned,
                allow_warnings=bool(forms_.form.cleaned_data.get("confirm_warnings")),
                **forms_.service_kwargs(),
            )
        except services.ProcedureWarnings as exc:
            forms_.warnings = list(exc.warnings)
        except RegistryError as exc:
            attach_service_error(forms_, exc)
        else:
            n = procedure.follow_ups.count()
            messages.success(
                request,
                f"{procedure.get_procedure_type_display()} of {procedure.performed_on:%d %b %Y} "
                f"recorded; {n} follow-up visits scheduled.",
            )
            return redirect(reverse("pages:patient", args=[patient.study_id]) + "#schedule")
    return _render(request, forms_, patient=patient, procedure=None, status=400)


def _procedure_now(request: HttpRequest, pk: int) -> dict[str, Any]:
    procedure = _get_procedure(request, pk)
    levels = "; ".join(
        f"{t.level} {t.approach} {t.needle_gauge} G {t.cement_volume_ml:g} ml"
        for t in procedure.levels.all()
    )
    return {
        "performed_on": procedure.performed_on.isoformat(),
        "procedure_type": procedure.procedure_type,
        "operator": procedure.operator,
        "guidance": procedure.guidance,
        "anaesthesia": procedure.anaesthesia,
        "day_case": procedure.day_case,
        "cementoplasty_site": procedure.cementoplasty_site,
        "disc_level": procedure.disc_level,
        "notes": procedure.notes,
        "levels": levels,
    }


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.VIEW_IDENTIFIABLE, Action.EDIT_CLINICAL, get_object=_get_procedure)
@handle_stale_edits(current=_procedure_now)
def procedure_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Correct a recorded procedure under its version."""
    procedure: rm.Procedure = request.permission_object  # type: ignore[attr-defined]
    patient = procedure.patient
    if request.method != "POST":
        initial, rows = procedure_initial(procedure)
        audit_view(patient, "procedure form", procedure=procedure.pk)
        return _render(
            request,
            unbound_procedure_forms(initial=initial, rows=rows),
            patient=patient,
            procedure=procedure,
            status=200,
            version=procedure.version,
        )
    version = _version(request)
    added = _added_row(request)
    if added is not None:
        forms_ = forms_with_extra_row(request.POST, added)
        return _render(
            request, forms_, patient=patient, procedure=procedure, status=200, version=version
        )
    forms_ = bound_procedure_forms(request.POST)
    if version is None:
        forms_.form.add_error(None, "The form lost its version number; reload the page.")
    if forms_.is_valid() and version is not None:
        try:
            kwargs = forms_.service_kwargs()
            if not forms_.form.cleaned_data.get("confirm_warnings"):
                found = services.procedure_warnings(
                    patient=patient,
                    performed_on=kwargs["performed_on"],
                    levels=kwargs["levels"],
                    exclude=procedure,
                )
                if found:
                    raise services.ProcedureWarnings(found)
            services.update_procedure(procedure=procedure, expected_version=version, **kwargs)
        except StaleEditError:
            raise
        except services.ProcedureWarnings as exc:
            forms_.warnings = list(exc.warnings)
        except RegistryError as exc:
            attach_service_error(forms_, exc)
        else:
            messages.success(request, "Procedure saved.")
            return redirect(
                reverse("pages:patient", args=[patient.study_id]) + f"#procedure-{procedure.pk}"
            )
    return _render(
        request, forms_, patient=patient, procedure=procedure, status=400, version=version
    )
