"""Links into the pages area that other areas build (one place, so a route change is one edit)."""

from __future__ import annotations

from django.urls import reverse

from spinewatch.registry.models import Patient

__all__ = ["patient_url"]


def patient_url(patient: Patient) -> str:
    """The patient page, ``/patients/<study_id>/``."""
    return reverse("pages:patient", args=[patient.study_id])
