"""Registry tables of the PACS link and of the level check (imported by :mod:`.models`).

- :class:`ReceivedStudy`: a DICOM study that reached SpineWatch (C-STORE to its storage SCP or a
  DICOMweb pull), its series, the series chosen for analysis, and whom it was matched to. A study
  whose PatientID (+ issuer) matches no patient waits in the reconciliation list
  (``status="unmatched"``) until a person assigns it: SpineWatch never creates a patient from a
  DICOM header.
- :class:`LevelCheck`: the radiologist's confirmation of a scan's vertebral levels, or the shift
  they applied (+-1, a T13 or an L6 transitional vertebra) with the level renaming it caused.

Written through :mod:`spinewatch.registry.services` only (audited, optimistic locking).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

__all__ = [
    "LevelCheck",
    "LevelCheckOutcome",
    "ReceivedStatus",
    "ReceivedStudy",
    "ReceivedVia",
]

_ENUM = 32


class ReceivedVia(models.TextChoices):
    C_STORE = "c_store", "DICOM C-STORE"
    DICOMWEB = "dicomweb", "DICOMweb pull"


class ReceivedStatus(models.TextChoices):
    """Where a received study stands."""

    UNMATCHED = "unmatched", "Awaiting reconciliation"
    MATCHED = "matched", "Matched, not analysed"
    QUEUED = "queued", "Matched, analysis queued"
    REFUSED = "refused", "Refused"
    DISMISSED = "dismissed", "Dismissed"


class ReceivedStudy(models.Model):
    """A DICOM study received from the PACS or a modality (identifiable: DICOM patient data)."""

    study_instance_uid = models.CharField(max_length=64, unique=True)
    dicom_patient_id = models.CharField(max_length=64)
    issuer_of_patient_id = models.CharField(max_length=64, blank=True)
    dicom_patient_name = models.CharField(max_length=200, blank=True)
    study_date = models.DateField(null=True, blank=True)
    study_description = models.CharField(max_length=200, blank=True)
    accession_number = models.CharField(max_length=64, blank=True)
    received_via = models.CharField(max_length=_ENUM, choices=ReceivedVia.choices)
    calling_ae_title = models.CharField(max_length=16, blank=True)
    storage_dir = models.CharField(max_length=64, blank=True)
    series = models.JSONField(default=list, blank=True)
    chosen_series_uid = models.CharField(max_length=64, blank=True)
    labels_source = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=_ENUM, choices=ReceivedStatus.choices)
    message = models.TextField(blank=True)
    patient = models.ForeignKey(
        "registry.Patient",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="received_studies",
    )
    imaging_study = models.OneToOneField(
        "registry.ImagingStudy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="received_from_pacs",
    )
    received_at = models.DateTimeField(auto_now_add=True)
    pushed_at = models.DateTimeField(null=True, blank=True)
    pushed = models.JSONField(default=list, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name_plural = "received studies"
        ordering = ("-received_at", "-pk")
        constraints = (
            models.CheckConstraint(
                condition=Q(status__in=ReceivedStatus.values), name="received_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(received_via__in=ReceivedVia.values), name="received_via_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["matched", "queued"]) | Q(patient__isnull=False),
                name="received_matched_has_patient",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="received_version_positive"),
        )

    def __str__(self) -> str:
        return f"received study {self.study_instance_uid} ({self.status})"


class LevelCheckOutcome(models.TextChoices):
    CONFIRMED = "confirmed", "Levels confirmed"
    SHIFTED = "shifted", "Levels shifted"


class LevelCheck(models.Model):
    """The level check of one analysed study.

    ``shift`` (-1, 0, +1) and ``variant`` ("", "T13", "L6") describe the correction;
    ``renamed`` maps each old level to its new name (``{"L1": "T13", ...}``); ``pending`` is
    true while the re-analysis that the shift caused has not been stored yet.
    """

    study = models.OneToOneField(
        "registry.ImagingStudy", on_delete=models.CASCADE, related_name="level_check"
    )
    outcome = models.CharField(max_length=_ENUM, choices=LevelCheckOutcome.choices)
    shift = models.SmallIntegerField(default=0)
    variant = models.CharField(max_length=8, blank=True)
    renamed = models.JSONField(default=dict, blank=True)
    pending = models.BooleanField(default=False)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="level_checks",
    )
    checked_at = models.DateTimeField()
    note = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("-checked_at", "-pk")
        constraints = (
            models.CheckConstraint(
                condition=Q(outcome__in=LevelCheckOutcome.values), name="level_check_outcome_valid"
            ),
            models.CheckConstraint(
                condition=Q(shift__gte=-1, shift__lte=1), name="level_check_shift_pm1"
            ),
            models.CheckConstraint(
                condition=Q(variant__in=["", "T13", "L6"]), name="level_check_variant_valid"
            ),
            models.CheckConstraint(
                condition=Q(version__gte=1), name="level_check_version_positive"
            ),
        )

    def __str__(self) -> str:
        return f"level check of imaging study {self.study_id}: {self.outcome}"
