"""Views of the patient list, the patient page and the patient's identity.

Thin edges: parse, ask :mod:`spinewatch.accounts.permissions`, call one service, render. Every
page that shows identifiable data records an audit "view" event before it returns.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from spinewatch.accounts.permissions import Action, can, require, requires
from spinewatch.audit.trail import record
from spinewatch.registry import models as rm
from spinewatch.registry import services
from spinewatch.registry.errors import RegistryError
from spinewatch.web.pages.charts import pain_chart_svg
from spinewatch.web.pages.forms import IdentityForm, NewPatientForm, PatientSearchForm
from spinewatch.web.pages.listing import age_years, patient_rows, search_patients
from spinewatch.web.pages.stale import handle_stale_edits
from spinewatch.web.pages.timeline import (
    follow_up_schedule,
    latest_analysis,
    pain_series,
    patient_timeline,
)
from spinewatch.web.plain_errors import attach_input_error

__all__ = [
    "audit_view",
    "get_patient",
    "home",
    "patient_edit",
    "patient_new",
    "patient_page",
]

PAGE_SIZE = 25


def get_patient(request: HttpRequest, study_id: str, *args: Any, **kwargs: Any) -> rm.Patient:
    """The patient with ``study_id`` (404 otherwise), with identity and case manager."""
    return get_object_or_404(
        rm.Patient.objects.select_related("identity", "case_manager"), study_id=study_id
    )


def audit_view(patient: rm.Patient, page: str, **detail: Any) -> None:
    """Record that the current user viewed ``patient``'s identifiable data on ``page``."""
    record(
        actor=None,
        action="view",
        object_type="registry.patient",
        object_id=patient.pk,
        patient_study_id=patient.study_id,
        detail={"page": page, **detail},
    )


def _identity(patient: rm.Patient) -> rm.PatientIdentity | None:
    try:
        return patient.identity
    except rm.PatientIdentity.DoesNotExist:
        return None


@require_http_methods(["GET", "HEAD"])
def home(request: HttpRequest) -> HttpResponse:
    """The patient list (search, pagination); researchers go to the cohort page."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not can(request.user, Action.VIEW_IDENTIFIABLE):
        if can(request.user, Action.VIEW_DEIDENTIFIED):
            return redirect("/cohort/")
        require(request.user, Action.VIEW_IDENTIFIABLE)
    form = PatientSearchForm(request.GET or None)
    valid = form.is_valid()
    query = form.cleaned_data["q"].strip() if valid else ""
    filters = {
        "diagnosis": form.cleaned_data.get("diagnosis", "") if valid else "",
        "risk": form.cleaned_data.get("risk", "") if valid else "",
        "include_voided": bool(form.cleaned_data.get("voided")) if valid else False,
    }
    paginator = Paginator(search_patients(query, **filters), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    today = timezone.localdate()
    rows = patient_rows(list(page.object_list), today)
    record(
        actor=None,
        action="view",
        object_type="registry.patient",
        object_id=None,
        detail={
            "page": "patient list",
            "query": query,
            "filters": {k: v for k, v in filters.items() if v},
            "page_number": page.number,
            "study_ids": [r.patient.study_id for r in rows],
        },
    )
    context = {
        "form": form,
        "query": query,
        "page": page,
        "rows": rows,
        "today": today,
        "can_add": can(request.user, Action.EDIT_PATIENT),
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "patient-results":
        return render(request, "web/pages/_patient_results.html", context)
    return render(request, "web/pages/patient_list.html", context)


@require_http_methods(["GET", "HEAD"])
@requires(Action.VIEW_IDENTIFIABLE, get_object=get_patient)
def patient_page(request: HttpRequest, study_id: str) -> HttpResponse:
    """Identity, latest analysis, pain chart, schedule and the one timeline."""
    patient: rm.Patient = request.permission_object  # type: ignore[attr-defined]
    today = timezone.localdate()
    identity = _identity(patient)
    points = pain_series(patient)
    procedure_dates = list(patient.procedures.values_list("performed_on", flat=True))
    analysis = latest_analysis(patient)
    audit_view(patient, "patient page")
    return render(
        request,
        "web/pages/patient_page.html",
        {
            "patient": patient,
            "identity": identity,
            "age": age_years(identity.birth_date if identity else None, today),
            "timeline": patient_timeline(patient, today),
            "schedule": follow_up_schedule(patient, today),
            "analysis": analysis,
            "pain_points": points,
            "pain_chart": pain_chart_svg(points, procedures=procedure_dates),
            "today": today,
            "can_edit_patient": can(request.user, Action.EDIT_PATIENT, patient),
            "can_edit_clinical": can(request.user, Action.EDIT_CLINICAL, patient),
            "can_record_follow_up": can(request.user, Action.RECORD_FOLLOW_UP, patient),
            "can_merge": can(request.user, Action.EDIT_CLINICAL, patient)
            and can(request.user, Action.EDIT_PATIENT, patient),
            "diagnoses": list(patient.diagnoses.all()),
            "plan": _plan(patient),
            "near_duplicates": []
            if identity is None or patient.voided_at is not None
            else services.near_duplicates(
                family_name=identity.family_name,
                given_name=identity.given_name,
                birth_date=identity.birth_date,
                exclude=patient,
            ),
        },
    )


def _plan(patient: rm.Patient) -> rm.SurveillancePlan | None:
    from spinewatch.core.surveillance import RiskState, SurveillanceError

    plan = rm.SurveillancePlan.objects.filter(patient=patient).first()
    if plan is not None:
        try:
            plan.risk_label = RiskState.parse(plan.risk_state or None).label  # type: ignore[attr-defined]
        except SurveillanceError:
            plan.risk_label = plan.risk_state  # type: ignore[attr-defined]
    return plan


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.EDIT_PATIENT)
def patient_new(request: HttpRequest) -> HttpResponse:
    """Register a patient: identity, case manager and the first diagnosis."""
    from spinewatch.accounts.roles import Role, role_or_none

    status = 200
    if request.method == "POST":
        form = NewPatientForm(request.POST)
        near: list[rm.Patient] = []
        if form.is_valid():
            data = form.cleaned_data
            near = services.near_duplicates(
                family_name=data["family_name"],
                given_name=data["given_name"],
                birth_date=data["birth_date"],
            )
        if form.is_valid() and near and not form.cleaned_data["confirm_not_duplicate"]:
            form.add_error(
                None,
                "A patient with the same name and date of birth is already registered: "
                + ", ".join(f"{p.study_id} ({p.identity.hospital_number})" for p in near)
                + ". Open that record instead, or tick the box below if this is another person.",
            )
        if form.is_valid():
            _check_assignment(request, form, None)
        if form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    patient = services.create_patient(
                        identity=services.IdentityData(**form.identity_kwargs()),
                        case_manager=data["case_manager"],
                    )
                    services.add_diagnosis(
                        patient=patient,
                        kind=data["diagnosis_kind"],
                        primary_tumour=data["primary_tumour"] or None,
                        diagnosed_on=data["diagnosed_on"],
                    )
            except RegistryError as exc:
                attach_input_error(form, exc, {"diagnosis": "diagnosis_kind"})
            else:
                messages.success(request, f"Patient {patient.study_id} registered.")
                return redirect("pages:patient", study_id=patient.study_id)
        status = 400
    else:
        initial = {}
        if role_or_none(request.user) is Role.CASE_MANAGER:
            initial["case_manager"] = request.user.pk
        form = NewPatientForm(initial=initial)
    return render(
        request, "web/pages/patient_form.html", {"form": form, "new": True}, status=status
    )


def _check_assignment(request: HttpRequest, form: Any, patient: rm.Patient | None) -> None:
    """The one case-manager rule (:func:`~spinewatch.accounts.permissions.
    may_assign_case_manager`, as the API applies it), as a form error."""
    from spinewatch.accounts.permissions import may_assign_case_manager

    manager = form.cleaned_data.get("case_manager")
    if not may_assign_case_manager(request.user, manager, patient):
        form.add_error(
            "case_manager",
            "You can only register or keep patients under your own name (or no case manager); "
            "a clinician assigns patients to another case manager.",
        )


def _identity_now(request: HttpRequest, study_id: str) -> dict[str, Any]:
    """The identity as saved now, shown on the stale-edit page (a view: audited)."""
    patient = get_patient(request, study_id)
    audit_view(patient, "identity after a stale edit")
    identity = _identity(patient)
    values: dict[str, Any] = {}
    if identity is not None:
        for name in ("family_name", "given_name", "hospital_number", "birth_date", "sex"):
            values[name] = getattr(identity, name)
        values["phone"], values["email"] = identity.phone, identity.email
    manager = patient.case_manager
    values["case_manager"] = (
        (manager.get_full_name() or manager.get_username()) if manager else None
    )
    return values


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.EDIT_PATIENT, get_object=get_patient)
@handle_stale_edits(current=_identity_now)
def patient_edit(request: HttpRequest, study_id: str) -> HttpResponse:
    """Edit identity and case manager, under the patient's version."""
    patient: rm.Patient = request.permission_object  # type: ignore[attr-defined]
    identity = _identity(patient)
    status = 200
    if request.method == "POST":
        form = IdentityForm(request.POST)
        version = _version(request)
        if version is None:
            form.add_error(None, "The form lost its version number; reload the page.")
        if form.is_valid() and form.cleaned_data["case_manager"] != patient.case_manager:
            _check_assignment(request, form, patient)
        if form.is_valid() and version is not None:
            try:
                with transaction.atomic():
                    row = services.update_patient_identity(
                        patient=patient, expected_version=version, **form.identity_kwargs()
                    )
                    manager = form.cleaned_data["case_manager"]
                    if manager != patient.case_manager:
                        services.update_patient(
                            patient=row, expected_version=row.version, case_manager=manager
                        )
            except RegistryError as exc:
                if isinstance(exc, services.StaleEditError):
                    raise
                attach_input_error(form, exc)
            else:
                messages.success(request, "Patient details saved.")
                return redirect("pages:patient", study_id=patient.study_id)
        status = 400
    else:
        initial: dict[str, Any] = {"case_manager": patient.case_manager_id}
        if identity is not None:
            initial.update(
                {
                    f: getattr(identity, f)
                    for f in (
                        "family_name",
                        "given_name",
                        "hospital_number",
                        "birth_date",
                        "sex",
                        "phone",
                        "email",
                    )
                }
            )
        form = IdentityForm(initial=initial)
        audit_view(patient, "identity form")
    return render(
        request,
        "web/pages/patient_form.html",
        {
            "form": form,
            "new": False,
            "patient": patient,
            "version": _version(request) if request.method == "POST" else patient.version,
            "cancel_url": reverse("pages:patient", args=[patient.study_id]),
        },
        status=status,
    )


def _version(request: HttpRequest) -> int | None:
    raw = request.POST.get("expected_version", "")
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 1 else None
