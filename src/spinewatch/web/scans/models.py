"""The persisted analysis job: one row per request to analyse an uploaded CT study.

The row IS the queue (see :mod:`spinewatch.web.scans.jobs` for why SpineWatch keeps its own
small queue instead of django-tasks). It belongs to the ``web`` app (imported by
``spinewatch/web/models.py``). A job is not registry data: its rows are written by the queue
functions directly, while the study and its report go through :mod:`spinewatch.registry.services`.

States::

    queued --claim--> running --(done | failed)
      ^                  |
      +---- recovered ---+   (its worker vanished: stale heartbeat; or a graceful worker stop)
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

__all__ = ["AnalysisJob", "JobStatus"]


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class AnalysisJob(models.Model):
    """Analyse the uploaded files of one imaging study (CT + vertebra label map).

    ``upload_dir`` is the name of the study's directory under ``DATA_DIR/uploads/``;
    ``ct_file``/``labels_file`` are file names inside it (``ct_file`` empty: labels only);
    ``ct_name``/``labels_name`` are the names the files were uploaded with (for messages and the
    report). ``modality`` (auto/ct/mr) and ``contrast_phase`` (auto/native/arterial/
    portal-venous/delayed/unknown) are what the uploader chose, passed to the analysis.
    ``claim_token`` changes on every claim: a worker may only write progress or a result
    while the row still carries its token, so a worker that was presumed dead (and whose job was
    handed to another) can never overwrite the newer attempt.
    """

    study = models.ForeignKey(
        "registry.ImagingStudy", on_delete=models.CASCADE, related_name="analysis_jobs"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    upload_dir = models.CharField(max_length=64)
    ct_file = models.CharField(max_length=64, blank=True)
    labels_file = models.CharField(max_length=64)
    ct_name = models.CharField(max_length=255, blank=True)
    labels_name = models.CharField(max_length=255)
    convention = models.CharField(max_length=32, default="auto")
    series_uid = models.CharField(max_length=64, blank=True)
    modality = models.CharField(max_length=8, default="auto")
    contrast_phase = models.CharField(max_length=16, default="auto")

    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    progress_pct = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    worker = models.CharField(max_length=200, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    picture_file = models.CharField(max_length=64, blank=True)

    class Meta:
        app_label = "web"
        ordering = ("-created_at", "-id")
        indexes = (models.Index(fields=["status", "created_at"], name="web_job_status_created"),)
        constraints = (
            models.CheckConstraint(
                condition=models.Q(progress_pct__lte=100), name="web_job_progress_le_100"
            ),
        )

    def __str__(self) -> str:
        return f"analysis job {self.pk} of imaging study {self.study_id} ({self.status})"

    @property
    def active(self) -> bool:
        """Queued or running: the page keeps polling."""
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)
