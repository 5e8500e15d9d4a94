"""Scan pages: upload, the list of recent studies, one study's analysis, its picture and report.

Every view asks :mod:`spinewatch.accounts.permissions` (identifiable data: ``view_identifiable``,
per study; uploads and re-runs: ``edit_clinical``; the JSON report: ``export_identifiable``),
so researchers get 403 everywhere here. Views of identifiable data record an audit "view" event
(the status fragment polled by htmx does not: it shows only the job's state and would flood the
trail), the JSON download an "export" event. Registry writes go through
:func:`spinewatch.registry.services.add_imaging_study`; jobs through :mod:`.jobs`.

Uploads: the view is ``csrf_exempt`` only so that :class:`~.uploads.LimitedUploadHandler` can be
installed before Django parses the body; the CSRF check then runs (``csrf_protect``) -- after the
permission check, so nobody without the right can make the server read a large body.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from spinewatch.accounts.permissions import Action, can, require, requires
from spinewatch.audit.trail import record
from spinewatch.core.errors import InputError
from spinewatch.registry import services
from spinewatch.registry.models import ImagingStudy, Patient
from spinewatch.web.pages.links import patient_url
from spinewatch.web.scans import display, jobs
from spinewatch.web.scans.forms import UploadForm
from spinewatch.web.scans.models import AnalysisJob, JobStatus
from spinewatch.web.scans.uploads import (
    LimitedUploadHandler,
    remove_upload,
    store_upload,
    upload_max_bytes,
)
from spinewatch.web.scans.worker import picture_path

__all__ = ["detail", "picture", "report_json", "rerun", "scan_list", "status", "upload"]

logger = logging.getLogger(__name__)

_STUDIES = ImagingStudy.objects.select_related("patient", "patient__identity")
LIST_LIMIT = 100


def _get_study(request: HttpRequest, pk: int, *args: Any, **kwargs: Any) -> ImagingStudy:
    return get_object_or_404(_STUDIES, pk=pk)  # type: ignore[no-any-return]


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def _audit_view(study: ImagingStudy, what: str) -> None:
    record(
        actor=None,
        action="view",
        object_type="registry.imagingstudy",
        object_id=study.pk,
        patient_study_id=study.patient.study_id,
        detail={"page": what},
    )


# -- list -----------------------------------------------------------------------------------


@require_GET
@requires(Action.VIEW_IDENTIFIABLE)
def scan_list(request: HttpRequest) -> HttpResponse:
    """``/scans/``: the most recent imaging studies with the state of their analysis."""
    studies = list(_STUDIES.order_by("-study_date", "-pk")[:LIST_LIMIT])
    latest: dict[int, AnalysisJob] = {}
    for job in AnalysisJob.objects.filter(study__in=studies).order_by("created_at", "id"):
        latest[job.study_id] = job
    rows = [
        {
            "study": s,
            "patient": s.patient,
            "identity": getattr(s.patient, "identity", None),
            "patient_url": patient_url(s.patient),
            "status": display.scan_status(s, latest.get(s.pk)),
            "job": latest.get(s.pk),
        }
        for s in studies
    ]
    if studies:
        record(
            actor=None,
            action="view",
            object_type="registry.imagingstudy",
            object_id=None,
            detail={"page": "scan list", "studies": [s.pk for s in studies]},
        )
    return _no_store(
        render(
            request,
            "web/scans/list.html",
            {
                "rows": rows,
                "limit": LIST_LIMIT,
                "can_upload": can(request.user, Action.EDIT_CLINICAL),
            },
        )
    )


# -- upload ---------------------------------------------------------------------------------


def _upload_context(form: UploadForm, patient: Patient | None, **extra: Any) -> dict[str, Any]:
    limit = upload_max_bytes()
    return {
        "form": form,
        "patient": patient,
        "identity": getattr(patient, "identity", None) if patient else None,
        "patient_url": patient_url(patient) if patient else None,
        "limit_mb": limit // (1024 * 1024),
        **extra,
    }


@csrf_protect
def _upload(request: HttpRequest) -> HttpResponse:
    patient: Patient | None = None
    if request.method == "GET":
        study_id = request.GET.get("patient", "").strip()
        if study_id:
            patient = get_object_or_404(
                Patient.objects.select_related("identity"), study_id=study_id
            )
            require(request.user, Action.EDIT_CLINICAL, patient)
        form = UploadForm(initial={"patient": study_id} if study_id else None)
        return _no_store(render(request, "web/scans/upload.html", _upload_context(form, patient)))

    form = UploadForm(request.POST, request.FILES)  # parses the body (LimitedUploadHandler)
    if getattr(request, "upload_too_large", False):
        form = UploadForm()
        limit_mb = upload_max_bytes() // (1024 * 1024)
        message = f"The upload is larger than the limit of {limit_mb} MB; nothing was stored."
        return _no_store(
            render(
                request,
                "web/scans/upload.html",
                _upload_context(form, None, upload_error=message),
                status=413,
            )
        )
    if not form.is_valid():
        raw = request.POST.get("patient", "").strip()
        patient = Patient.objects.filter(study_id=raw).first() if raw else None
        if patient is not None:
            require(request.user, Action.EDIT_CLINICAL, patient)
        return _no_store(
            render(request, "web/scans/upload.html", _upload_context(form, patient), status=400)
        )
    patient = form.cleaned_data["patient"]
    require(request.user, Action.EDIT_CLINICAL, patient)
    try:
        stored = store_upload(form.cleaned_data["ct"], form.cleaned_data["labels"])
    except InputError as exc:
        form.add_error(None, str(exc))
        return _no_store(
            render(request, "web/scans/upload.html", _upload_context(form, patient), status=400)
        )
    try:
        with transaction.atomic():
            modality = form.cleaned_data["modality"]
            study = services.add_imaging_study(
                patient=patient,
                study_date=form.cleaned_data["study_date"],
                description=form.cleaned_data["description"],
                # until the analysis reads the file's own modality
                modality="mr" if modality == "mr" else "ct",
            )
            jobs.enqueue_analysis(
                study_id=study.pk,
                upload=stored,
                convention=form.cleaned_data["convention"],
                series_uid=form.cleaned_data["series_uid"],
                requested_by=request.user,
                modality=modality,
                contrast_phase=form.cleaned_data["contrast_phase"],
            )
    except InputError as exc:
        remove_upload(stored.dir_name)
        form.add_error(None, str(exc))
        return _no_store(
            render(request, "web/scans/upload.html", _upload_context(form, patient), status=400)
        )
    except BaseException:
        remove_upload(stored.dir_name)
        raise
    logger.info("imaging study %s uploaded for %s; analysis queued", study.pk, patient.study_id)
    return redirect(reverse("scans:detail", args=[study.pk]), permanent=False)


@csrf_exempt
@require_http_methods(["GET", "POST"])
@requires(Action.EDIT_CLINICAL)
def upload(request: HttpRequest) -> HttpResponse:
    """``/scans/upload/?patient=<study_id>``: upload a CT and label map; queue the analysis."""
    if request.method == "POST":
        request.upload_handlers.insert(0, LimitedUploadHandler(request, upload_max_bytes()))
    return _upload(request)


# -- one study --------------------------------------------------------------------------------


def _detail_context(request: HttpRequest, study: ImagingStudy) -> dict[str, Any]:
    job = jobs.latest_job(study.pk)
    prior = display.prior_study(study)
    comparison, comparison_error = display.compare_with_prior(study, prior)
    changes = display.comparison_rows(comparison)
    has_picture = (
        AnalysisJob.objects.filter(study=study, status=JobStatus.DONE)
        .exclude(picture_file="")
        .exists()
    )
    report = study.spine_report()
    return {
        "study": study,
        "patient": study.patient,
        "identity": getattr(study.patient, "identity", None),
        "patient_url": patient_url(study.patient),
        "job": job,
        "status": display.scan_status(study, job),
        "rows": display.level_rows(report, display.decisions_of(study)),
        "scan": {} if report is None else report.scan.to_json_dict(),
        "acquisition": display.acquisition_line(report),
        "segmentation": None if report is None else report.extra.get("segmentation"),
        "prior": prior,
        "comparison": comparison,
        "comparison_error": comparison_error,
        "changes": changes,
        "n_signals": display.count_signals(changes),
        "has_picture": has_picture,
        "can_rerun": can(request.user, Action.EDIT_CLINICAL, study)
        and job is not None
        and not job.active,
        "can_export": can(request.user, Action.EXPORT_IDENTIFIABLE, study),
    }


def _detail(request: HttpRequest, study: ImagingStudy, *, error: str = "", status: int = 200):
    _audit_view(study, "scan detail")
    context = _detail_context(request, study)
    context["error"] = error
    return _no_store(render(request, "web/scans/detail.html", context, status=status))


@require_GET
@requires(Action.VIEW_IDENTIFIABLE, get_object=_get_study)
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """``/scans/<id>/``: status and progress, picture, per-level table, changes since prior."""
    return _detail(request, request.permission_object)  # type: ignore[attr-defined]


@require_GET
@requires(Action.VIEW_IDENTIFIABLE, get_object=_get_study)
def status(request: HttpRequest, pk: int) -> HttpResponse:
    """``/scans/<id>/status/``: the status fragment htmx polls while the job is queued/running.

    When the job has ended, an htmx request gets ``HX-Refresh: true``: the page reloads once and
    shows the results (or the failure message).
    """
    study: ImagingStudy = request.permission_object  # type: ignore[attr-defined]
    job = jobs.latest_job(study.pk)
    state = display.scan_status(study, job)
    response = render(
        request, "web/scans/_status.html", {"study": study, "job": job, "status": state}
    )
    if request.headers.get("HX-Request") == "true" and not state.active:
        response["HX-Refresh"] = "true"
    return _no_store(response)


@require_GET
@requires(Action.VIEW_IDENTIFIABLE, get_object=_get_study)
def picture(request: HttpRequest, pk: int) -> HttpResponse:
    """``/scans/<id>/picture.png``: the latest sagittal picture, never cached, never public."""
    study: ImagingStudy = request.permission_object  # type: ignore[attr-defined]
    done = (
        AnalysisJob.objects.filter(study=study, status=JobStatus.DONE)
        .exclude(picture_file="")
        .order_by("-finished_at", "-id")
    )
    path = next((p for p in (picture_path(j) for j in done[:5]) if p is not None), None)
    if path is None:
        raise Http404("this study has no sagittal picture")
    _audit_view(study, "sagittal picture")
    response = HttpResponse(path.read_bytes(), content_type="image/png")  # a few hundred kB
    response["Content-Disposition"] = f'inline; filename="scan-{study.pk}-sagittal.png"'
    return _no_store(response)


@require_GET
@requires(Action.VIEW_IDENTIFIABLE, Action.EXPORT_IDENTIFIABLE, get_object=_get_study)
def report_json(request: HttpRequest, pk: int) -> HttpResponse:
    """``/scans/<id>/report.json``: the stored SpineWatch report, as a download (audited)."""
    import json

    study: ImagingStudy = request.permission_object  # type: ignore[attr-defined]
    if study.report is None:
        raise Http404("this study has no analysis report yet")
    record(
        actor=None,
        action="export",
        object_type="registry.imagingstudy",
        object_id=study.pk,
        patient_study_id=study.patient.study_id,
        detail={"format": "json", "what": "analysis report"},
    )
    body = json.dumps(study.report, indent=2, sort_keys=False) + "\n"
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    name = f"{study.patient.study_id}-scan-{study.pk}-{study.study_date.isoformat()}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return _no_store(response)


@require_POST
@requires(Action.EDIT_CLINICAL, get_object=_get_study)
def rerun(request: HttpRequest, pk: int) -> HttpResponse:
    """``POST /scans/<id>/rerun/``: queue a new analysis of the study's uploaded files."""
    study: ImagingStudy = request.permission_object  # type: ignore[attr-defined]
    try:
        jobs.rerun_analysis(study_id=study.pk, requested_by=request.user)
    except InputError as exc:
        return _detail(request, study, error=str(exc), status=409)
    return redirect(reverse("scans:detail", args=[study.pk]))
