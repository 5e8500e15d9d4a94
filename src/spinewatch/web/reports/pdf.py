"""PDF reports rendered by WeasyPrint from HTML templates with their own A4 print CSS.

- :func:`scan_report_pdf`: one scan's analysis -- the sagittal picture, every analysed vertebra
  (heights, Genant grade and type, HU, lytic %, posterior wall, collapse risk and why, confidence,
  SINS imaging part, decision) and the changes since the prior scan;
- :func:`patient_summary_pdf`: the patient's diagnoses, surveillance plan, procedures with their
  levels, the pain scores, and the latest analysis.

Images are embedded as ``data:`` URIs, so WeasyPrint fetches nothing (no network, no file
access beyond what the view read). WeasyPrint needs Debian's Pango (``.ci/run`` installs it).
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

from django.template.loader import render_to_string

from spinewatch.registry import models as rm

__all__ = ["patient_summary_pdf", "render_pdf", "scan_report_pdf"]


def render_pdf(template: str, context: dict[str, Any]) -> bytes:
    """``template`` rendered with ``context`` as a PDF (bytes). Only ``data:`` URIs are fetched
    (no network, no file): a report embeds everything it shows."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    html = render_to_string(template, context)
    fetcher = URLFetcher(allowed_protocols=("data",), fail_on_errors=True)
    pdf: bytes = HTML(string=html, url_fetcher=fetcher).write_pdf()
    return pdf


def _data_uri(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _sagittal(study: rm.ImagingStudy) -> Path | None:
    from spinewatch.web.scans.models import AnalysisJob, JobStatus
    from spinewatch.web.scans.worker import picture_path

    done = (
        AnalysisJob.objects.filter(study=study, status=JobStatus.DONE)
        .exclude(picture_file="")
        .order_by("-finished_at", "-id")
    )
    return next((p for p in (picture_path(j) for j in done[:5]) if p is not None), None)


def _analysis(study: rm.ImagingStudy) -> dict[str, Any]:
    rows = list(study.findings.all())
    changes = None
    prior = (
        rm.ImagingStudy.objects.filter(
            patient_id=study.patient_id,
            analysed_at__isnull=False,
            voided_at__isnull=True,
            study_date__lt=study.study_date,
        )
        .order_by("-study_date", "-pk")
        .first()
    )
    if prior is not None and prior.report and study.report:
        from spinewatch.core.errors import InputError
        from spinewatch.imaging.compare import compare_reports

        try:
            prior_report, report = prior.spine_report(), study.spine_report()
            if prior_report is not None and report is not None:
                changes = compare_reports(prior_report, report)["levels"]
        except InputError:
            changes = None
    return {
        "study": study,
        "findings": rows,
        "prior": prior,
        "changes": changes,
        "picture": _data_uri(_sagittal(study)),
    }


def scan_report_pdf(study: rm.ImagingStudy, *, printed_by: str, today: dt.date) -> bytes:
    """The analysis of ``study`` as a PDF."""
    patient = study.patient
    analysis = _analysis(study)
    context = {
        "patient": patient,
        "identity": getattr(patient, "identity", None),
        "printed_by": printed_by,
        "today": today,
        "analysis": analysis,
        **analysis,
    }
    return render_pdf("web/reports/scan.html", context)


def patient_summary_pdf(patient: rm.Patient, *, printed_by: str, today: dt.date) -> bytes:
    """The patient's summary as a PDF."""
    from spinewatch.web.pages.timeline import pain_series

    procedures = (
        patient.procedures.filter(voided_at__isnull=True)
        .prefetch_related("levels", "leakages", "complications")
        .order_by("performed_on", "pk")
    )
    latest = (
        patient.imaging_studies.filter(analysed_at__isnull=False, voided_at__isnull=True)
        .order_by("-study_date", "-pk")
        .first()
    )
    context: dict[str, Any] = {
        "patient": patient,
        "identity": getattr(patient, "identity", None),
        "diagnoses": list(patient.diagnoses.all()),
        "plan": rm.SurveillancePlan.objects.filter(patient=patient).first(),
        "procedures": list(procedures),
        "pain": pain_series(patient),
        "printed_by": printed_by,
        "today": today,
        "analysis": _analysis(latest) if latest is not None else None,
    }
    return render_pdf("web/reports/patient.html", context)
