"""The scan upload form: files, labels convention, modality, contrast phase, date, description.

Field checks only (types, dates, lengths, file contents); the patient's permission is checked by
the view, the registry write is :func:`spinewatch.registry.services.add_imaging_study`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone

from spinewatch.core.conventions import LabelConvention
from spinewatch.registry.models import Patient
from spinewatch.web.scans.uploads import UploadError, check_ct_file, check_labels_file

__all__ = ["CONTRAST_PHASE_CHOICES", "CONVENTION_CHOICES", "MODALITY_CHOICES", "UploadForm"]

CONVENTION_CHOICES = [
    ("auto", "Detect automatically"),
    *((c.value, c.label) for c in LabelConvention),
]
#: Stored on the job as given; ``spinewatch.imaging.io.load_image`` reads the same words.
MODALITY_CHOICES = [
    ("auto", "Detect automatically"),
    ("ct", "CT"),
    ("mr", "MRI (geometry only)"),
]
CONTRAST_PHASE_CHOICES = [
    ("auto", "From the DICOM header or the image"),
    ("native", "Native (no contrast)"),
    ("arterial", "Arterial"),
    ("portal-venous", "Portal-venous"),
    ("delayed", "Delayed"),
    ("unknown", "Contrast, phase unknown"),
]


class _DateInput(forms.DateInput):
    input_type = "date"


class UploadForm(forms.Form):
    """Upload a CT (and, optionally, its vertebra label map) for one patient."""

    patient = forms.CharField(
        label="Patient study id",
        max_length=64,
        help_text="The patient's study id, e.g. SW-0001.",
    )
    ct = forms.FileField(
        label="CT",
        help_text=(
            "A DICOM series as a .zip, or a NIfTI file (.nii or .nii.gz). An MRI is accepted "
            "too; it gives the geometry only."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,.nii,.gz,application/zip"}),
    )
    labels = forms.FileField(
        label="Vertebra label map",
        required=False,
        help_text="Optional: a NIfTI file (.nii or .nii.gz) on the CT's grid, one label per "
        "vertebra. Without it the vertebrae are segmented and named from the CT.",
        widget=forms.ClearableFileInput(attrs={"accept": ".nii,.gz"}),
    )
    convention = forms.ChoiceField(
        label="Labels convention",
        choices=CONVENTION_CHOICES,
        initial="auto",
        help_text="How the label values name vertebrae (TotalSegmentator or VerSe).",
    )
    modality = forms.ChoiceField(
        label="Modality",
        choices=MODALITY_CHOICES,
        initial="auto",
        required=False,
        help_text=(
            "Automatic: DICOM from its Modality tag; NIfTI from the values (a CT has air and fat "
            "at fixed HU, an MRI does not) -- the analysis stops and asks when it cannot tell. "
            "An MRI gives heights and Genant only: no density, lesions or cement."
        ),
    )
    contrast_phase = forms.ChoiceField(
        label="Contrast phase",
        choices=CONTRAST_PHASE_CHOICES,
        initial="auto",
        required=False,
        help_text=(
            "Intravenous contrast raises the bone's HU, so the density thresholds are shifted. "
            "Automatic: the DICOM header, else an enhanced aorta in the image, else native is "
            "assumed. CT only."
        ),
    )
    study_date = forms.DateField(label="Study date", widget=_DateInput())
    description = forms.CharField(
        label="Description",
        max_length=200,
        required=False,
        help_text="Optional, e.g. 'CT thoraco-lumbar spine, surveillance'.",
    )
    series_uid = forms.CharField(
        label="DICOM series instance UID",
        max_length=64,
        required=False,
        help_text="Only when the zip holds several series: the one to analyse.",
    )

    def clean_modality(self) -> str:
        return str(self.cleaned_data.get("modality") or "auto")

    def clean_contrast_phase(self) -> str:
        return str(self.cleaned_data.get("contrast_phase") or "auto")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("modality") == "mr" and data.get("contrast_phase") not in (
            None,
            "auto",
            "native",
        ):
            self.add_error(
                "contrast_phase",
                "A contrast phase applies to CT only; an MRI is analysed for its geometry.",
            )
        return data

    def clean_patient(self) -> Patient:
        study_id = self.cleaned_data["patient"].strip()
        patient = Patient.objects.filter(study_id=study_id).first()
        if patient is None:
            raise forms.ValidationError(f"No patient has the study id {study_id!r}.")
        return patient

    def clean_study_date(self) -> dt.date:
        value: dt.date = self.cleaned_data["study_date"]
        today = timezone.localdate()
        if value > today:
            raise forms.ValidationError(
                f"{value.isoformat()} is in the future (today is {today.isoformat()})."
            )
        return value

    def _check_file(self, field: str, check: Any) -> Any:
        upload = self.cleaned_data[field]
        try:
            check(upload, upload.name)
        except UploadError as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload

    def clean_ct(self) -> Any:
        return self._check_file("ct", check_ct_file)

    def clean_labels(self) -> Any:
        if not self.cleaned_data.get("labels"):
            return None  # a CT alone: the worker segments it
        return self._check_file("labels", check_labels_file)
