"""The clinician's SINS assessment of one vertebra (app ``registry``, imported by its ``models``).

The imaging analysis scores four of the six SINS components (location, bone lesion, collapse,
posterolateral involvement: ``VertebraFinding.sins_imaging_points`` and the report's
``sins_imaging``); the clinician adds pain and radiographic alignment. Each completion is a new
row (the history of assessments is kept); the latest one is shown. Rows are written only by
:func:`spinewatch.registry.services.record_sins_assessment` (audited). The table keeps the name
it had when the model lived in the ``web`` app (``web_sinsassessment``): moving it moved no data.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from spinewatch.core.sins import SinsAlignment, SinsCategory, SinsPain
from spinewatch.registry.choices import enum_choices, in_choices

__all__ = ["SINS_ALIGNMENT_CHOICES", "SINS_CATEGORY_CHOICES", "SINS_PAIN_CHOICES", "SinsAssessment"]

SINS_PAIN_CHOICES = [(p.value, f"{p.label} ({p.points})") for p in SinsPain]
SINS_ALIGNMENT_CHOICES = [(a.value, f"{a.label} ({a.points})") for a in SinsAlignment]
SINS_CATEGORY_CHOICES = enum_choices(SinsCategory)


class SinsAssessment(models.Model):
    """A complete SINS for one vertebra of one analysed study: imaging part + pain + alignment."""

    finding = models.ForeignKey(
        "registry.VertebraFinding", on_delete=models.CASCADE, related_name="sins_assessments"
    )
    pain = models.CharField(max_length=32, choices=SINS_PAIN_CHOICES)
    alignment = models.CharField(max_length=32, choices=SINS_ALIGNMENT_CHOICES)
    imaging_points = models.PositiveSmallIntegerField()
    total = models.PositiveSmallIntegerField()
    category = models.CharField(max_length=32, choices=SINS_CATEGORY_CHOICES)
    assessed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sins_assessments",
    )
    assessed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "web_sinsassessment"
        ordering = ("finding_id", "-assessed_at", "-pk")
        get_latest_by = ("assessed_at", "pk")
        constraints = (
            in_choices("pain", SINS_PAIN_CHOICES, name="sins_pain_valid"),
            in_choices("alignment", SINS_ALIGNMENT_CHOICES, name="sins_alignment_valid"),
            in_choices("category", SINS_CATEGORY_CHOICES, name="sins_category_valid"),
            models.CheckConstraint(condition=Q(total__lte=18), name="sins_total_0_18"),
            models.CheckConstraint(condition=Q(imaging_points__lte=11), name="sins_imaging_0_11"),
            models.CheckConstraint(
                condition=Q(total__gte=models.F("imaging_points")),
                name="sins_total_at_least_imaging",
            ),
        )

    def __str__(self) -> str:
        return f"SINS {self.total} ({self.category}) for finding {self.finding_id}"
