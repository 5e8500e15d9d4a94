"""``/scans/<id>/report.pdf`` and ``/patients/<study_id>/summary.pdf`` (identifiable exports:
the roles that may export identifiable data; each download is an audited ``export`` event)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_GET

from spinewatch.accounts.permissions import Action, requires
from spinewatch.audit.trail import record
from spinewatch.registry import models as rm
from spinewatch.web.pages.views import get_patient
from spinewatch.web.reports.pdf import patient_summary_pdf, scan_report_pdf

__all__ = ["patient_pdf", "scan_pdf"]


def _study(request: HttpRequest, pk: int) -> rm.ImagingStudy:
    return get_object_or_404(rm.ImagingStudy.objects.select_related("patient__identity"), pk=pk)


def _pdf(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _who(request: HttpRequest) -> str:
    user = request.user
    return str(user.get_full_name() or user.get_username())  # type: ignore[union-attr]


@require_GET
@requires(Action.VIEW_IDENTIFIABLE, Action.EXPORT_IDENTIFIABLE, get_object=_study)
def scan_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    study: rm.ImagingStudy = request.permission_object  # type: ignore[attr-defined]
    if study.report is None:
        raise Http404("this scan has no analysis yet")
    data = scan_report_pdf(study, printed_by=_who(request), today=timezone.localdate())
    record(
        actor=None,
        action="export",
        object_type=study,
        object_id=study.pk,
        patient_study_id=study.patient.study_id,
        detail={"export": "scan report PDF", "bytes": len(data)},
    )
    return _pdf(data, f"spinewatch-scan-{study.pk}.pdf")


@require_GET
@requires(Action.VIEW_IDENTIFIABLE, Action.EXPORT_IDENTIFIABLE, get_object=get_patient)
def patient_pdf(request: HttpRequest, study_id: str) -> HttpResponse:
    patient: rm.Patient = request.permission_object  # type: ignore[attr-defined]
    data = patient_summary_pdf(patient, printed_by=_who(request), today=timezone.localdate())
    record(
        actor=None,
        action="export",
        object_type=patient,
        object_id=patient.pk,
        patient_study_id=patient.study_id,
        detail={"export": "patient summary PDF", "bytes": len(data)},
    )
    return _pdf(data, f"spinewatch-{patient.study_id}-summary.pdf")
