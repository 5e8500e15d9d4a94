"""The team's decision about a vertebra, and the clinician's completion of its SINS.

Decision: inline on the patient page with htmx (the row is replaced), or on its own page
without JavaScript; saved with :func:`spinewatch.registry.services.set_finding_decision` under
the finding's version (a stale decision -> the shared 409 page).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from spinewatch.accounts.permissions import Action, can, requires
from spinewatch.registry import models as rm
from spinewatch.registry import services
from spinewatch.registry.errors import RegistryError, StaleEditError
from spinewatch.registry.models import SinsAssessment
from spinewatch.registry.services import (
    imaging_part_of,
    imaging_points_of,
    record_sins_assessment,
)
from spinewatch.web.pages.forms import DecisionForm, SinsForm
from spinewatch.web.pages.stale import handle_stale_edits
from spinewatch.web.pages.timeline import FindingRow
from spinewatch.web.pages.views import audit_view
from spinewatch.web.plain_errors import attach_input_error

__all__ = ["finding_decision", "finding_sins"]


def _get_finding(request: HttpRequest, pk: int, *args: Any, **kwargs: Any) -> rm.VertebraFinding:
    return get_object_or_404(
        rm.VertebraFinding.objects.select_related("study", "study__patient__identity"), pk=pk
    )


def _row(finding: rm.VertebraFinding) -> FindingRow:
    latest = SinsAssessment.objects.filter(finding=finding).order_by("-assessed_at", "-pk").first()
    return FindingRow(
        finding=finding,
        lytic_pct=None
        if finding.lytic_fraction is None
        else round(finding.lytic_fraction * 100, 1),
        sins=latest,
        sins_possible=imaging_points_of(finding) is not None,
    )


def _decision_now(request: HttpRequest, pk: int) -> dict[str, Any]:
    finding = _get_finding(request, pk)
    return {"decision": finding.get_decision_display(), "note": finding.decision_note}


def _patient_url(finding: rm.VertebraFinding) -> str:
    return (
        reverse("pages:patient", args=[finding.study.patient.study_id]) + f"#finding-{finding.pk}"
    )


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.VIEW_IDENTIFIABLE, Action.EDIT_CLINICAL, get_object=_get_finding)
@handle_stale_edits(
    current=_decision_now,
    reload_url=lambda request, pk: reverse("pages:finding_decision", args=[pk]),
)
def finding_decision(request: HttpRequest, pk: int) -> HttpResponse:
    """Watch / treat / treated (with a note) for one vertebra."""
    finding: rm.VertebraFinding = request.permission_object  # type: ignore[attr-defined]
    htmx = bool(request.headers.get("HX-Request"))
    status = 200
    if request.method == "POST":
        form = DecisionForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                finding = services.set_finding_decision(
                    finding=finding,
                    expected_version=data["expected_version"],
                    decision=data["decision"],
                    note=data["note"],
                )
            except StaleEditError:
                raise
            except RegistryError as exc:
                attach_input_error(form, exc, {"note": "note"})
            else:
                finding = _get_finding(request, pk)
                if htmx:
                    return render(
                        request,
                        "web/pages/_decision_cell.html",
                        {"finding": finding, "can_edit_clinical": True, "saved": True},
                    )
                messages.success(
                    request,
                    f"{finding.level}: decision "
                    f"\u201c{finding.get_decision_display()}\u201d saved.",
                )
                return redirect(_patient_url(finding))
        status = 400
    else:
        form = DecisionForm(
            initial={
                "decision": finding.decision,
                "note": finding.decision_note,
                "expected_version": finding.version,
            }
        )
        if not htmx:
            audit_view(finding.study.patient, "finding decision", finding=finding.pk)
    template = "web/pages/_decision_form.html" if htmx else "web/pages/finding_decision.html"
    return render(
        request,
        template,
        {"form": form, "finding": finding, "patient": finding.study.patient, "row": _row(finding)},
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.VIEW_IDENTIFIABLE, Action.EDIT_CLINICAL, get_object=_get_finding)
def finding_sins(request: HttpRequest, pk: int) -> HttpResponse:
    """Complete the SINS of one vertebra: pain and alignment on top of the imaging part."""
    finding: rm.VertebraFinding = request.permission_object  # type: ignore[attr-defined]
    patient = finding.study.patient
    points = imaging_points_of(finding)
    part = imaging_part_of(finding)
    unassessed = part.unassessed if part is not None else ()
    status = 200
    if request.method == "POST":
        form = SinsForm(request.POST, unassessed=unassessed)
        if form.is_valid():
            try:
                assessment = record_sins_assessment(
                    finding=finding,
                    pain=form.cleaned_data["pain"],
                    alignment=form.cleaned_data["alignment"],
                    assessed_by=request.user,
                    readings={name: form.cleaned_data[name] for name in unassessed},
                )
            except RegistryError as exc:
                attach_input_error(form, exc)
            else:
                messages.success(
                    request,
                    f"SINS {finding.level}: {assessment.total} "
                    f"({assessment.get_category_display().lower()}).",
                )
                return redirect(_patient_url(finding))
        status = 400
    else:
        latest = (
            SinsAssessment.objects.filter(finding=finding).order_by("-assessed_at", "-pk").first()
        )
        initial = {"pain": latest.pain, "alignment": latest.alignment} if latest else {}
        form = SinsForm(initial=initial, unassessed=unassessed)
        audit_view(patient, "SINS form", finding=finding.pk)
    history = SinsAssessment.objects.filter(finding=finding).select_related("assessed_by")
    return render(
        request,
        "web/pages/finding_sins.html",
        {
            "form": form,
            "finding": finding,
            "patient": patient,
            "part": part,
            "points": points,
            "possible": part.possible_total_range
            if part is not None
            else (None if points is None else (points, points + 7)),
            "unassessed_fields": [form[name] for name in unassessed],
            "history": history.order_by("-assessed_at", "-pk")[:10],
            "can_edit_clinical": can(request.user, Action.EDIT_CLINICAL, finding),
        },
        status=status,
    )
