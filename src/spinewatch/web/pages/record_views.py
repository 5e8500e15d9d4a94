"""Record-keeping pages: the surveillance plan, diagnoses, void, merge, planned procedures, and
the landing page of each role.

Thin edges: parse, check the permission, call one service, show the result; every error in
plain words (:func:`spinewatch.web.plain_errors.plain_message`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from spinewatch.accounts.permissions import Action, can, require, requires
from spinewatch.accounts.roles import Role, role_or_none
from spinewatch.registry import models as rm
from spinewatch.registry import services
from spinewatch.registry.errors import RegistryError, StaleEditError
from spinewatch.web.pages.record_forms import (
    DiagnosisForm,
    MergeForm,
    PlanForm,
    PlanProcedureForm,
    VoidForm,
)
from spinewatch.web.pages.stale import handle_stale_edits
from spinewatch.web.pages.views import audit_view, get_patient
from spinewatch.web.plain_errors import attach_input_error, plain_message

__all__ = [
    "diagnosis_new",
    "patient_merge",
    "plan_edit",
    "procedure_plan",
    "start",
    "void_record_view",
]

#: Where each role's work is (the page a user lands on after signing in).
LANDING = {
    Role.CLINICIAN: "/worklists/",
    Role.CASE_MANAGER: "/worklists/",
    Role.RESEARCHER: "/cohort/",
    Role.ADMIN: "/admin/",
}


@require_http_methods(["GET", "HEAD"])
def start(request: HttpRequest) -> HttpResponse:
    """After sign-in: clinicians and case managers to the worklists (each role's lists first),
    researchers to the cohort, admins to the administration; no role: the account page."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    role = role_or_none(request.user)
    return redirect(LANDING.get(role, reverse("accounts:account")) if role else "accounts:account")


def _back(patient: rm.Patient, anchor: str = "") -> str:
    return reverse("pages:patient", args=[patient.study_id]) + anchor


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.VIEW_IDENTIFIABLE, Action.EDIT_CLINICAL, get_object=get_patient)
@handle_stale_edits
def plan_edit(request: HttpRequest, study_id: str) -> HttpResponse:
    """Create or change the surveillance plan."""
    patient: rm.Patient = request.permission_object  # type: ignore[attr-defined]
    plan = rm.SurveillancePlan.objects.filter(patient=patient).first()
    status = 200
    if request.method == "POST":
        form = PlanForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.set_surveillance_plan(
                    patient=patient,
                    expected_version=data["expected_version"] if plan else None,
                    interval_days=data["interval_days"] if data["use_rule"] == "fixed" else None,
                    next_scan_due=data["next_scan_due"],
                    active=data["active"],
                    reason=data["reason"],
                )
            except StaleEditError:
                raise
            except RegistryError as exc:
                attach_input_error(form, exc)
            else:
                messages.success(request, "Surveillance plan saved.")
                return redirect(_back(patient, "#surveillance"))
        status = 400
    else:
        initial: dict[str, Any] = {"use_rule": "rule", "active": True}
        if plan is not None:
            initial = {
                "use_rule": "fixed" if plan.interval_source == "clinician" else "rule",
                "interval_days": plan.interval_days,
                "next_scan_due": plan.next_scan_due,
                "active": plan.active,
                "reason": plan.reason,
                "expected_version": plan.version,
            }
        form = PlanForm(initial=initial)
        audit_view(patient, "surveillance plan form")
    rule_days = services.default_interval_days(patient)
    return render(
        request,
        "web/pages/plan_form.html",
        {
            "form": form,
            "patient": patient,
            "plan": plan,
            "rule_days": rule_days,
            "risk": services.patient_risk_state(patient),
        },
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.VIEW_IDENTIFIABLE, Action.EDIT_CLINICAL, get_object=get_patient)
def diagnosis_new(request: HttpRequest, study_id: str) -> HttpResponse:
    """Add a diagnosis (a patient may have several)."""
    patient: rm.Patient = request.permission_object  # type: ignore[attr-defined]
    status = 200
    form = DiagnosisForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.add_diagnosis(
                    patient=patient,
                    kind=data["kind"],
                    primary_tumour=data["primary_tumour"] or None,
                    diagnosed_on=data["diagnosed_on"],
                    notes=data["notes"],
                )
            except RegistryError as exc:
                attach_input_error(form, exc)
            else:
                services.advance_plan(patient)
                messages.success(request, "Diagnosis added.")
                return redirect(_back(patient))
        status = 400
    return render(
        request,
        "web/pages/simple_form.html",
        {"form": form, "patient": patient, "title": "Add a diagnosis", "submit": "Add diagnosis"},
        status=status,
    )


_VOIDABLE = {
    "patient": (rm.Patient, Action.EDIT_CLINICAL),
    "scan": (rm.ImagingStudy, Action.EDIT_CLINICAL),
    "procedure": (rm.Procedure, Action.EDIT_CLINICAL),
    "follow-up": (rm.FollowUp, Action.RECORD_FOLLOW_UP),
}


def _patient_of(row: Any) -> rm.Patient:
    if isinstance(row, rm.Patient):
        return row
    if isinstance(row, rm.FollowUp):
        return row.procedure.patient
    return row.patient  # type: ignore[no-any-return]


@require_http_methods(["GET", "HEAD", "POST"])
@handle_stale_edits
def void_record_view(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Void a patient, scan, procedure or follow-up entered in error, with a reason."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if kind not in _VOIDABLE:
        raise Http404(f"kind {kind!r}: expected one of {', '.join(_VOIDABLE)}")
    model, action = _VOIDABLE[kind]
    row = get_object_or_404(model, pk=pk)
    patient = _patient_of(row)
    require(request.user, Action.VIEW_IDENTIFIABLE, patient)
    require(request.user, action, patient)
    form = VoidForm(request.POST or None, initial={"expected_version": row.version})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.void_record(
                    record=row,
                    expected_version=form.cleaned_data["expected_version"],
                    reason=form.cleaned_data["reason"],
                    voided_by=request.user,
                )
            except StaleEditError:
                raise
            except RegistryError as exc:
                form.add_error(None, plain_message(str(exc)))
            else:
                messages.success(request, f"The {kind.replace('-', ' ')} was voided.")
                return redirect(_back(patient) if kind != "patient" else reverse("pages:home"))
        status = 400
    else:
        audit_view(patient, f"void {kind}", record=pk)
    return render(
        request,
        "web/pages/simple_form.html",
        {
            "form": form,
            "patient": patient,
            "title": f"Void this {kind.replace('-', ' ')}",
            "what": str(row),
            "submit": "Void",
            "danger": True,
            "explain": "A voided record stays in the registry and the audit trail, struck "
            "through with your reason, but leaves the worklists and the results.",
        },
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.VIEW_IDENTIFIABLE, Action.EDIT_CLINICAL, get_object=get_patient)
@handle_stale_edits
def patient_merge(request: HttpRequest, study_id: str) -> HttpResponse:
    """Merge another record of the same person into this one."""
    patient: rm.Patient = request.permission_object  # type: ignore[attr-defined]
    require(request.user, Action.EDIT_PATIENT, patient)
    identity = getattr(patient, "identity", None)
    near = (
        services.near_duplicates(
            family_name=identity.family_name,
            given_name=identity.given_name,
            birth_date=identity.birth_date,
            exclude=patient,
        )
        if identity is not None
        else []
    )
    initial = {"keep_version": patient.version}
    if near:
        initial["duplicate"] = near[0].study_id
    form = MergeForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            other = rm.Patient.objects.filter(study_id=data["duplicate"].strip()).first()
            if other is None:
                form.add_error("duplicate", f"No patient has the study id {data['duplicate']}.")
            else:
                try:
                    require(request.user, Action.EDIT_PATIENT, other)
                    summary = services.merge_patients(
                        keep=patient,
                        duplicate=other,
                        keep_version=data["keep_version"],
                        duplicate_version=other.version,
                        reason=data["reason"],
                        merged_by=request.user,
                    )
                except StaleEditError:
                    raise
                except RegistryError as exc:
                    form.add_error(None, plain_message(str(exc)))
                else:
                    moved = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary.items() if n)
                    messages.success(
                        request, f"{other.study_id} merged into {patient.study_id} ({moved})."
                    )
                    return redirect(_back(patient))
        status = 400
    else:
        audit_view(patient, "merge form")
    return render(
        request,
        "web/pages/simple_form.html",
        {
            "form": form,
            "patient": patient,
            "title": "Merge a duplicate record into this one",
            "submit": "Merge",
            "danger": True,
            "near": near,
            "explain": "Use this when one person was registered twice. The other record is "
            "voided and points here; nothing is deleted.",
        },
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.VIEW_IDENTIFIABLE, Action.EDIT_CLINICAL, get_object=get_patient)
def procedure_plan(request: HttpRequest, study_id: str) -> HttpResponse:
    """Plan a procedure: its pre-operative visit exists at once (a portal link can be sent)."""
    patient: rm.Patient = request.permission_object  # type: ignore[attr-defined]
    form = PlanProcedureForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.plan_procedure(
                    patient=patient,
                    planned_on=data["planned_on"],
                    procedure_type=data["procedure_type"],
                    planned_levels=data["planned_levels"],
                    notes=data["notes"],
                )
            except RegistryError as exc:
                attach_input_error(form, exc)
            else:
                messages.success(
                    request,
                    "Procedure planned; its pre-operative visit is on the follow-up schedule.",
                )
                return redirect(_back(patient, "#schedule"))
        status = 400
    return render(
        request,
        "web/pages/simple_form.html",
        {"form": form, "patient": patient, "title": "Plan a procedure", "submit": "Plan"},
        status=status,
    )


def can_void(user: Any, kind: str, obj: Any) -> bool:
    """Whether ``user`` may void ``obj`` (the patient page shows the link only then)."""
    return can(user, _VOIDABLE[kind][1], obj)
