"""The CT viewer and the level check of a scan (under ``/scans/<id>/``).

- ``viewer/``: NiiVue (the vendored ``web/viewer.bundle.js``, no CDN) on the CT with the vertebra
  and lesion overlays, axial/sagittal/coronal views, bone and soft-tissue windows, and the level
  table whose rows move the cursor to each vertebral body;
- ``viewer/<ct|labels|lesions>.nii.gz``: the volumes it loads (never cached);
- ``levels/``: the labelled sagittal view and the level check form (confirm, +-1, T13, L6).

Permissions through :mod:`spinewatch.accounts.permissions` only: viewing needs
``view_identifiable`` on the study, the level check ``edit_clinical`` (clinicians). Page views
are audited; the level check and the relabelled re-analysis go through the registry services.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from spinewatch.accounts.permissions import Action, can, require, requires
from spinewatch.audit.trail import record
from spinewatch.core.conventions import level_for_label
from spinewatch.core.errors import InputError
from spinewatch.registry import services
from spinewatch.registry.models import ImagingStudy, LevelCheck
from spinewatch.web.pages.links import patient_url
from spinewatch.web.viewer.forms import CHOICES, LevelCheckForm
from spinewatch.web.viewer.relabel import shift_levels
from spinewatch.web.viewer.volumes import latest_done_job, viewer_volume

__all__ = ["level_check", "viewer", "volume"]

_STUDIES = ImagingStudy.objects.select_related("patient", "patient__identity")
_LESION_RGB = (255, 0, 200)


def _get_study(request: HttpRequest, pk: int, *args: Any, **kwargs: Any) -> ImagingStudy:
    return get_object_or_404(_STUDIES, pk=pk)  # type: ignore[no-any-return]


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def _audit(study: ImagingStudy, page: str) -> None:
    record(
        actor=None,
        action="view",
        object_type="registry.imagingstudy",
        object_id=study.pk,
        patient_study_id=study.patient.study_id,
        detail={"page": page},
    )


def _levels(study: ImagingStudy) -> list[dict[str, Any]]:
    report = study.spine_report()
    rows = []
    for v in report.vertebrae if report is not None else ():
        if v.body_centroid_mm is None:
            continue
        x, y, z = v.body_centroid_mm
        rows.append(
            {
                "level": str(v.level),
                "x": x,
                "y": y,
                "z": z,
                "risk": None if v.collapse_risk is None else v.collapse_risk.value,
                "grade": None if v.genant.grade is None else int(v.genant.grade),
                "lytic_ml": v.lesions.volume_ml,
            }
        )
    return rows


#: Overlay colours of the vertebrae in the viewer, alternating down the spine so neighbours
#: differ (TotalSegmentator's own colours -- kept in the SEG objects -- are too dark over bone);
#: no red, which marks the lytic lesions.
VERTEBRA_PALETTE = ((255, 215, 0), (0, 190, 255), (140, 240, 80), (190, 120, 255), (0, 230, 190))


def _label_colours(study: ImagingStudy) -> list[dict[str, Any]]:
    """Label value -> level and overlay colour, for the vertebrae of the report."""
    report = study.spine_report()
    convention = "" if report is None else str(report.scan.labels_convention or "")
    out = []
    for v in report.vertebrae if report is not None and convention else ():
        if v.label is None:
            continue
        level = level_for_label(v.label, convention)
        if level is None:
            continue
        rgb = VERTEBRA_PALETTE[level.rank % len(VERTEBRA_PALETTE)]
        out.append({"value": v.label, "level": str(level), "rgb": list(rgb)})
    return out


def _check_state(study: ImagingStudy) -> LevelCheck | None:
    return LevelCheck.objects.filter(study=study).select_related("checked_by").first()


@require_GET
@requires(Action.VIEW_IDENTIFIABLE, get_object=_get_study)
def viewer(request: HttpRequest, pk: int) -> HttpResponse:
    """``/scans/<id>/viewer/``: the CT with its overlays in NiiVue."""
    study: ImagingStudy = request.permission_object  # type: ignore[attr-defined]
    if not study.report or latest_done_job(study) is None:
        raise Http404("this scan has no finished analysis with its images to view")
    _audit(study, "CT viewer")
    context = {
        "study": study,
        "patient": study.patient,
        "identity": getattr(study.patient, "identity", None),
        "patient_url": patient_url(study.patient),
        "levels": _levels(study),
        "viewer_config": {
            "ct": reverse("viewer:volume", args=[study.pk, "ct"]),
            "labels": reverse("viewer:volume", args=[study.pk, "labels"]),
            "lesions": reverse("viewer:volume", args=[study.pk, "lesions"]),
            "labelColours": _label_colours(study),
            "lesionRgb": list(_LESION_RGB),
        },
        "check": _check_state(study),
        "can_check": can(request.user, Action.EDIT_CLINICAL, study),
    }
    return _no_store(render(request, "web/viewer/viewer.html", context))


@require_GET
@requires(Action.VIEW_IDENTIFIABLE, get_object=_get_study)
def volume(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    """``/scans/<id>/viewer/<kind>.nii.gz``: a volume of the viewer (identifiable image data)."""
    study: ImagingStudy = request.permission_object  # type: ignore[attr-defined]
    path = viewer_volume(study, kind)
    if path is None or not path.is_file():
        raise Http404(f"no {kind} volume for this scan")
    response = FileResponse(path.open("rb"), content_type="application/octet-stream")
    response["Content-Disposition"] = f'inline; filename="{kind}.nii.gz"'
    return _no_store(response)


def _level_check_context(
    request: HttpRequest, study: ImagingStudy, form: LevelCheckForm, **extra: Any
) -> dict[str, Any]:
    from spinewatch.web.scans.display import level_rows

    return {
        "study": study,
        "patient": study.patient,
        "identity": getattr(study.patient, "identity", None),
        "patient_url": patient_url(study.patient),
        "rows": level_rows(study.spine_report()),
        "check": _check_state(study),
        "form": form,
        "has_picture": latest_done_job(study) is not None,
        **extra,
    }


@require_http_methods(["GET", "POST"])
@requires(Action.VIEW_IDENTIFIABLE, get_object=_get_study)
def level_check(request: HttpRequest, pk: int) -> HttpResponse:
    """``/scans/<id>/levels/``: confirm the labelled levels or shift them (clinicians)."""
    study: ImagingStudy = request.permission_object  # type: ignore[attr-defined]
    if not study.report:
        raise Http404("this scan has not been analysed yet")
    check = _check_state(study)
    if request.method == "GET":
        _audit(study, "level check")
        form = LevelCheckForm(initial={"version": check.version if check else None})
        context = _level_check_context(
            request, study, form, can_check=can(request.user, Action.EDIT_CLINICAL, study)
        )
        return _no_store(render(request, "web/viewer/level_check.html", context))
    require(request.user, Action.EDIT_CLINICAL, study)
    form = LevelCheckForm(request.POST)
    error = ""
    if form.is_valid():
        shift, variant, _ = CHOICES[form.cleaned_data["decision"]]
        version = form.cleaned_data.get("version")
        note = form.cleaned_data.get("note") or ""
        try:
            if shift == 0 and not variant:
                services.confirm_levels(
                    study=study, checked_by=request.user, expected_version=version, note=note
                )
            else:
                shift_levels(
                    study=study, shift=shift, variant=variant, checked_by=request.user, note=note
                )
            return redirect(reverse("scans:detail", args=[study.pk]))
        except InputError as exc:
            error = str(exc)
    context = _level_check_context(request, study, form, can_check=True, error=error)
    return _no_store(render(request, "web/viewer/level_check.html", context, status=400))
