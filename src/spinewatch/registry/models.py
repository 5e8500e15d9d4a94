"""The registry's tables.

Write through :mod:`spinewatch.registry.services` only: the services validate through the clinical
core, keep the optimistic-locking ``version`` columns and are the one place an audit trail hooks in.
The constraints below repeat the most important rules in the database itself, so that a raw
``save()`` (a shell, a careless migration) cannot store a VAS of 11 or a second 3-month visit.

Units: lengths ``_mm``, volumes ``_ml``, attenuation ``_hu``, percentages ``_pct`` (0-100),
fractions 0..1, durations ``_s``, power ``_w``; dates are calendar dates (no time zone).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from spinewatch.core.complications import ComplicationClass
from spinewatch.core.diagnoses import DiagnosisKind, PrimaryTumour
from spinewatch.core.follow_up_outcome import VisitOutcome
from spinewatch.core.genant import DeformityType, GenantGrade
from spinewatch.core.identifiers import hospital_number_key, search_key
from spinewatch.core.leakage import LeakageSite, LeakageType
from spinewatch.core.procedures import (
    AblationModality,
    Anaesthesia,
    Approach,
    BiopsyResult,
    CementoplastySite,
    CementType,
    Guidance,
    PedicleAccess,
    ProcedureType,
)
from spinewatch.imaging.report import SpineReport
from spinewatch.registry.choices import (
    LEVEL_CHOICES,
    AnalgesicUse,
    CollapseRisk,
    Confidence,
    ContactBy,
    Decision,
    EnteredVia,
    IntervalSource,
    Modality,
    ProcedureStatus,
    RecordedVia,
    Sex,
    enum_choices,
    in_choices,
)

__all__ = [
    "CementLeakage",
    "Complication",
    "Diagnosis",
    "FollowUp",
    "IdCounter",
    "ImagingStudy",
    "LevelCheck",
    "Patient",
    "PatientIdentity",
    "PortalLink",
    "Procedure",
    "ReceivedStudy",
    "SinsAssessment",
    "SurveillancePlan",
    "TreatedLevel",
    "VertebraFinding",
]

_ENUM = 32  # max_length of an enum value column

DIAGNOSIS_CHOICES = enum_choices(DiagnosisKind)
PRIMARY_CHOICES = enum_choices(PrimaryTumour)
PROCEDURE_CHOICES = enum_choices(ProcedureType)
ABLATION_CHOICES = enum_choices(AblationModality)
SITE_CHOICES = enum_choices(CementoplastySite)
APPROACH_CHOICES = enum_choices(Approach)
GUIDANCE_CHOICES = enum_choices(Guidance)
ANAESTHESIA_CHOICES = enum_choices(Anaesthesia)
LEAKAGE_TYPE_CHOICES = enum_choices(LeakageType)
LEAKAGE_SITE_CHOICES = enum_choices(LeakageSite)
COMPLICATION_CHOICES = enum_choices(ComplicationClass)
GENANT_CHOICES = enum_choices(GenantGrade)
DEFORMITY_CHOICES = enum_choices(DeformityType)
CEMENT_TYPE_CHOICES = enum_choices(CementType)
ACCESS_CHOICES = enum_choices(PedicleAccess)
BIOPSY_CHOICES = enum_choices(BiopsyResult)
OUTCOME_CHOICES = enum_choices(VisitOutcome)


def _version_positive(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(version__gte=1), name=name)


def _void_reason_iff_voided(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(voided_at__isnull=True, void_reason="")
        | (Q(voided_at__isnull=False) & ~Q(void_reason="")),
        name=name,
    )


class Voidable(models.Model):
    """A record entered in error is *voided*, never deleted: it stays (shown struck through,
    with the reason, in the audit trail) but leaves the worklists and the results.
    ``voided_at`` and ``void_reason`` are set together (a constraint of each table)."""

    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        abstract = True

    @property
    def voided(self) -> bool:
        return self.voided_at is not None


class Patient(Voidable):
    """A patient under a pseudonymous study id; identifying data are in :class:`PatientIdentity`.

    ``merged_into``: this record was a duplicate of another record of the same person; its
    diagnoses, scans, procedures and plan were moved there and this record is voided.
    """

    study_id = models.CharField(max_length=64, unique=True)
    case_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_patients",
    )
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_records"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("study_id",)
        constraints = (
            models.CheckConstraint(condition=~Q(study_id=""), name="patient_study_id_not_empty"),
            _version_positive("patient_version_positive"),
            _void_reason_iff_voided("patient_void_reason_iff_voided"),
            models.CheckConstraint(
                condition=Q(merged_into__isnull=True) | Q(voided_at__isnull=False),
                name="patient_merged_is_voided",
            ),
        )

    def __str__(self) -> str:
        return self.study_id


class IdCounter(models.Model):
    """The last number handed out by a series of generated identifiers (``name="study_id"``:
    the ``SW-000123`` study ids), so that the next one is one atomic ``UPDATE ... RETURNING``
    instead of a read of every id in use. Bookkeeping, not a clinical record: it is not audited
    (the patient's create event names the study id it got)."""

    name = models.CharField(max_length=32, primary_key=True)
    value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.value}"


class PatientIdentity(models.Model):
    """Who the patient is. Kept in its own table so research queries never need to read it."""

    patient = models.OneToOneField(
        Patient, on_delete=models.CASCADE, primary_key=True, related_name="identity"
    )
    family_name = models.CharField(max_length=150)
    given_name = models.CharField(max_length=150)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=_ENUM, choices=Sex.choices, default=Sex.UNKNOWN)
    hospital_number = models.CharField(max_length=64)
    #: :func:`spinewatch.core.identifiers.hospital_number_key` of ``hospital_number``: unique,
    #: so "demo 00002" and "DEMO-00002" cannot be two patients.
    hospital_number_key = models.CharField(max_length=64, unique=True)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    #: How the patient agreed to receive portal links and reminders.
    contact_by = models.CharField(
        max_length=_ENUM, choices=ContactBy.choices, default=ContactBy.NONE
    )
    #: :func:`identity_search_text` of the names and number: what name and number searches
    #: read (on PostgreSQL through a pg_trgm GIN index, migration 0007), kept by ``save()`` and
    #: by the services' identity updates.
    search_text = models.CharField(max_length=600, blank=True, editable=False)

    class Meta:
        verbose_name_plural = "patient identities"
        constraints = (
            models.CheckConstraint(
                condition=~Q(hospital_number=""), name="identity_hospital_number_not_empty"
            ),
            models.CheckConstraint(
                condition=~Q(hospital_number_key=""), name="identity_hospital_key_not_empty"
            ),
            in_choices("sex", Sex.choices, name="identity_sex_valid"),
            in_choices("contact_by", ContactBy.choices, name="identity_contact_by_valid"),
        )

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.hospital_number})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """The key and the search text always follow the number and names (a raw save cannot
        store a stale or empty key)."""
        self.hospital_number_key = hospital_number_key(self.hospital_number or "")
        self.search_text = identity_search_text(
            self.family_name, self.given_name, self.hospital_number
        )
        super().save(*args, **kwargs)


def identity_search_text(family_name: str, given_name: str, hospital_number: str) -> str:
    """The normalised text a patient is found by: family and given names, hospital number as
    written and as its key (``"demo 00002"`` is found by ``DEMO-00002`` and ``demo00002``)."""
    number = hospital_number or ""
    return search_key(
        f"{family_name or ''} {given_name or ''} {number} {hospital_number_key(number)}"
    )[:600]


class Diagnosis(models.Model):
    """A diagnosis (core ``Diagnosis``): the primary tumour is given exactly for metastases."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="diagnoses")
    kind = models.CharField(max_length=_ENUM, choices=DIAGNOSIS_CHOICES)
    primary_tumour = models.CharField(
        max_length=_ENUM, choices=PRIMARY_CHOICES, null=True, blank=True
    )
    diagnosed_on = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "diagnoses"
        ordering = ("patient_id", "diagnosed_on", "pk")
        constraints = (
            in_choices("kind", DIAGNOSIS_CHOICES, name="diagnosis_kind_valid"),
            in_choices(
                "primary_tumour", PRIMARY_CHOICES, null=True, name="diagnosis_primary_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind=DiagnosisKind.METASTASIS.value, primary_tumour__isnull=False)
                    | (~Q(kind=DiagnosisKind.METASTASIS.value) & Q(primary_tumour__isnull=True))
                ),
                name="diagnosis_primary_iff_metastasis",
            ),
        )

    def __str__(self) -> str:
        if self.primary_tumour:
            return f"{self.get_kind_display()} ({self.get_primary_tumour_display()})"
        return str(self.get_kind_display())


class ImagingStudy(Voidable):
    """A CT or MR study; ``report`` is the analysis JSON (``SpineReport.to_json_dict()``)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="imaging_studies")
    study_date = models.DateField()
    modality = models.CharField(max_length=_ENUM, choices=Modality.choices, default=Modality.CT)
    study_instance_uid = models.CharField(max_length=64, blank=True)
    series_instance_uid = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=200, blank=True)
    report = models.JSONField(null=True, blank=True)
    analysed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name_plural = "imaging studies"
        ordering = ("patient_id", "study_date", "pk")
        constraints = (
            in_choices("modality", Modality.choices, name="imaging_modality_valid"),
            models.UniqueConstraint(
                fields=["study_instance_uid", "series_instance_uid"],
                condition=~Q(study_instance_uid="") & Q(voided_at__isnull=True),
                name="imaging_series_unique_unless_voided",
            ),
            _version_positive("imaging_version_positive"),
            _void_reason_iff_voided("imaging_void_reason_iff_voided"),
        )

    def __str__(self) -> str:
        return f"{self.get_modality_display()} {self.study_date:%Y-%m-%d}"

    def spine_report(self) -> SpineReport | None:
        """The stored report read through its contract (None: not analysed). Every reader of
        a stored report -- pages, API, exports, comparison -- goes through this, never through
        the JSON's keys. Raises :class:`~spinewatch.imaging.report.ReportFormatError` naming the
        study for a stored document the contract refuses (only a raw database edit makes one:
        the services store nothing else)."""
        if self.report is None:
            return None
        return SpineReport.from_json_dict(self.report, source=f"imaging study {self.pk} report")


class VertebraFinding(models.Model):
    """One vertebra of one analysed study, copied from the report so it can be queried.

    ``treat_signal``: the comparison with the patient's prior analysed study says "treat before
    collapse" (True), found no such change (False) or was not made (None: no prior, or the level
    was not on it); ``treat_signal_reasons`` says why. ``confidence`` (high / medium / low) and
    its reasons: how far the measurements of this vertebra can be trusted.
    ``diffuse_infiltration``: the report's finding of the same name (the body far below the
    patient's own other vertebrae; None: not assessable or an older report).
    """

    study = models.ForeignKey(ImagingStudy, on_delete=models.CASCADE, related_name="findings")
    level = models.CharField(max_length=4, choices=LEVEL_CHOICES)
    body_centroid_mm = models.JSONField(null=True, blank=True)  # [x, y, z] world RAS+ mm
    height_anterior_mm = models.FloatField(null=True, blank=True)
    height_middle_mm = models.FloatField(null=True, blank=True)
    height_posterior_mm = models.FloatField(null=True, blank=True)
    reference_height_mm = models.FloatField(null=True, blank=True)
    genant_grade = models.PositiveSmallIntegerField(choices=GENANT_CHOICES, null=True, blank=True)
    deformity = models.CharField(max_length=_ENUM, choices=DEFORMITY_CHOICES, null=True, blank=True)
    height_loss_pct = models.FloatField(null=True, blank=True)
    truncated = models.BooleanField(default=False)
    trabecular_hu_median = models.FloatField(null=True, blank=True)
    lytic_volume_ml = models.FloatField(null=True, blank=True)
    lytic_fraction = models.FloatField(null=True, blank=True)
    posterior_wall_involved = models.BooleanField(null=True, blank=True)
    pedicle_left_involved = models.BooleanField(null=True, blank=True)
    pedicle_right_involved = models.BooleanField(null=True, blank=True)
    #: Diffuse infiltration (the myeloma pattern): the body lies far below the patient's own
    #: other vertebrae (None: not assessable); ``..._hu_below_own``: by how much (HU).
    diffuse_infiltration = models.BooleanField(null=True, blank=True)
    diffuse_infiltration_hu_below_own = models.FloatField(null=True, blank=True)
    collapse_risk = models.CharField(
        max_length=_ENUM, choices=CollapseRisk.choices, null=True, blank=True
    )
    reasons = models.JSONField(default=list, blank=True)
    sins_imaging_points = models.PositiveSmallIntegerField(null=True, blank=True)
    treat_signal = models.BooleanField(null=True, blank=True)
    treat_signal_reasons = models.JSONField(default=list, blank=True)
    confidence = models.CharField(
        max_length=_ENUM, choices=Confidence.choices, null=True, blank=True
    )
    confidence_reasons = models.JSONField(default=list, blank=True)
    decision = models.CharField(max_length=_ENUM, choices=Decision.choices, default=Decision.NONE)
    decision_note = models.TextField(blank=True)
    #: The treated level that closed this finding's decision as "treated".
    treated_by = models.ForeignKey(
        "TreatedLevel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="findings",
    )
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("study_id", "pk")
        constraints = (
            models.UniqueConstraint(fields=["study", "level"], name="finding_level_unique"),
            in_choices("level", LEVEL_CHOICES, name="finding_level_valid"),
            in_choices("genant_grade", GENANT_CHOICES, null=True, name="finding_genant_valid"),
            in_choices("deformity", DEFORMITY_CHOICES, null=True, name="finding_deformity_valid"),
            in_choices("collapse_risk", CollapseRisk.choices, null=True, name="finding_risk_valid"),
            in_choices(
                "confidence", Confidence.choices, null=True, name="finding_confidence_valid"
            ),
            in_choices("decision", Decision.choices, name="finding_decision_valid"),
            models.CheckConstraint(
                condition=Q(lytic_fraction__isnull=True)
                | Q(lytic_fraction__gte=0, lytic_fraction__lte=1),
                name="finding_lytic_fraction_0_1",
            ),
            models.CheckConstraint(
                condition=Q(lytic_volume_ml__isnull=True) | Q(lytic_volume_ml__gte=0),
                name="finding_lytic_volume_nonnegative",
            ),
            models.CheckConstraint(
                condition=Q(sins_imaging_points__isnull=True) | Q(sins_imaging_points__lte=18),
                name="finding_sins_points_0_18",
            ),
            _version_positive("finding_version_positive"),
        )

    def __str__(self) -> str:
        return f"{self.level} ({self.study})"


class Procedure(Voidable):
    """One treatment session (possibly several levels).

    ``status`` "planned": a session with a date, planned levels (``planned_levels``, names)
    and only its pre-operative visit, so a portal link can be sent before it; recording it as
    performed fills in the rest and schedules the post-operative visits.

    ``protocol`` is the follow-up protocol used (``FollowUpProtocol.to_dict()``), stored with the
    procedure so that a later change of the programme's protocol does not rewrite history.
    Procedures imported from a cohort file (``recorded_via="import"``) may have no treated levels:
    the file does not say which levels were treated.
    """

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="procedures")
    performed_on = models.DateField()
    procedure_type = models.CharField(max_length=_ENUM, choices=PROCEDURE_CHOICES)
    operator = models.CharField(max_length=150, blank=True)
    operator_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="procedures_performed",
    )
    guidance = models.CharField(max_length=_ENUM, choices=GUIDANCE_CHOICES, null=True, blank=True)
    anaesthesia = models.CharField(
        max_length=_ENUM, choices=ANAESTHESIA_CHOICES, null=True, blank=True
    )
    day_case = models.BooleanField(null=True, blank=True)
    cementoplasty_site = models.CharField(
        max_length=_ENUM, choices=SITE_CHOICES, null=True, blank=True
    )
    disc_level = models.CharField(max_length=8, null=True, blank=True)  # "L4-L5", PLDD only
    status = models.CharField(
        max_length=_ENUM, choices=ProcedureStatus.choices, default=ProcedureStatus.PERFORMED
    )
    planned_levels = models.JSONField(default=list, blank=True)
    cement_type = models.CharField(
        max_length=_ENUM, choices=CEMENT_TYPE_CHOICES, null=True, blank=True
    )
    fluoroscopy_time_s = models.FloatField(null=True, blank=True)
    dose_area_product_gycm2 = models.FloatField(null=True, blank=True)
    protocol = models.JSONField()
    recorded_via = models.CharField(
        max_length=_ENUM, choices=RecordedVia.choices, default=RecordedVia.STAFF
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("patient_id", "performed_on", "pk")
        constraints = (
            in_choices("procedure_type", PROCEDURE_CHOICES, name="procedure_type_valid"),
            in_choices("guidance", GUIDANCE_CHOICES, null=True, name="procedure_guidance_valid"),
            in_choices(
                "anaesthesia", ANAESTHESIA_CHOICES, null=True, name="procedure_anaesthesia_valid"
            ),
            in_choices("cementoplasty_site", SITE_CHOICES, null=True, name="procedure_site_valid"),
            in_choices("recorded_via", RecordedVia.choices, name="procedure_recorded_via_valid"),
            in_choices("status", ProcedureStatus.choices, name="procedure_status_valid"),
            in_choices(
                "cement_type", CEMENT_TYPE_CHOICES, null=True, name="procedure_cement_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(fluoroscopy_time_s__isnull=True) | Q(fluoroscopy_time_s__gte=0),
                name="procedure_fluoroscopy_time_nonnegative",
            ),
            models.CheckConstraint(
                condition=Q(dose_area_product_gycm2__isnull=True)
                | Q(dose_area_product_gycm2__gte=0),
                name="procedure_dap_nonnegative",
            ),
            _void_reason_iff_voided("procedure_void_reason_iff_voided"),
            models.CheckConstraint(
                condition=Q(cementoplasty_site__isnull=True)
                | Q(procedure_type=ProcedureType.CEMENTOPLASTY.value),
                name="procedure_site_only_for_cementoplasty",
            ),
            models.CheckConstraint(
                condition=Q(disc_level__isnull=True)
                | Q(procedure_type=ProcedureType.LASER_DISC_DECOMPRESSION.value),
                name="procedure_disc_only_for_pldd",
            ),
            _version_positive("procedure_version_positive"),
        )

    def __str__(self) -> str:
        return f"{self.get_procedure_type_display()} {self.performed_on:%Y-%m-%d} ({self.patient})"


class TreatedLevel(models.Model):
    """One level treated in a procedure (core ``TreatedLevel``)."""

    procedure = models.ForeignKey(Procedure, on_delete=models.CASCADE, related_name="levels")
    level = models.CharField(max_length=4, choices=LEVEL_CHOICES)
    approach = models.CharField(max_length=_ENUM, choices=APPROACH_CHOICES)
    needle_gauge = models.PositiveSmallIntegerField()
    cement_volume_ml = models.FloatField()
    ablation_modality = models.CharField(
        max_length=_ENUM, choices=ABLATION_CHOICES, null=True, blank=True
    )
    ablation_power_w = models.FloatField(null=True, blank=True)
    ablation_duration_s = models.FloatField(null=True, blank=True)
    access = models.CharField(max_length=_ENUM, choices=ACCESS_CHOICES, null=True, blank=True)
    biopsy = models.BooleanField(default=False)
    biopsy_result = models.CharField(
        max_length=_ENUM, choices=BIOPSY_CHOICES, null=True, blank=True
    )

    class Meta:
        ordering = ("procedure_id", "pk")
        constraints = (
            models.UniqueConstraint(fields=["procedure", "level"], name="treated_level_unique"),
            in_choices("level", LEVEL_CHOICES, name="treated_level_valid"),
            in_choices("approach", APPROACH_CHOICES, name="treated_approach_valid"),
            in_choices(
                "ablation_modality", ABLATION_CHOICES, null=True, name="treated_ablation_valid"
            ),
            models.CheckConstraint(
                condition=Q(needle_gauge__gte=8, needle_gauge__lte=22),
                name="treated_needle_gauge_8_22",
            ),
            models.CheckConstraint(
                condition=Q(cement_volume_ml__gt=0), name="treated_cement_volume_positive"
            ),
            models.CheckConstraint(
                condition=Q(ablation_modality__isnull=False)
                | Q(ablation_power_w__isnull=True, ablation_duration_s__isnull=True),
                name="treated_ablation_settings_need_modality",
            ),
            models.CheckConstraint(
                condition=Q(ablation_power_w__isnull=True) | Q(ablation_power_w__gt=0),
                name="treated_ablation_power_positive",
            ),
            models.CheckConstraint(
                condition=Q(ablation_duration_s__isnull=True) | Q(ablation_duration_s__gt=0),
                name="treated_ablation_duration_positive",
            ),
            in_choices("access", ACCESS_CHOICES, null=True, name="treated_access_valid"),
            in_choices("biopsy_result", BIOPSY_CHOICES, null=True, name="treated_biopsy_valid"),
            models.CheckConstraint(
                condition=Q(biopsy=True) | Q(biopsy_result__isnull=True),
                name="treated_biopsy_result_needs_biopsy",
            ),
        )

    def __str__(self) -> str:
        return f"{self.level} {self.get_approach_display()} {self.cement_volume_ml:g} ml"


class CementLeakage(models.Model):
    """A cement leakage (Yeom type, site, symptomatic or not), at a treated level when known."""

    procedure = models.ForeignKey(Procedure, on_delete=models.CASCADE, related_name="leakages")
    treated_level = models.ForeignKey(
        TreatedLevel, null=True, blank=True, on_delete=models.SET_NULL, related_name="leakages"
    )
    leakage_type = models.CharField(max_length=_ENUM, choices=LEAKAGE_TYPE_CHOICES)
    site = models.CharField(max_length=_ENUM, choices=LEAKAGE_SITE_CHOICES)
    symptomatic = models.BooleanField(default=False)

    class Meta:
        ordering = ("procedure_id", "pk")
        constraints = (
            in_choices("leakage_type", LEAKAGE_TYPE_CHOICES, name="leakage_type_valid"),
            in_choices("site", LEAKAGE_SITE_CHOICES, name="leakage_site_valid"),
        )

    def __str__(self) -> str:
        return f"type {self.leakage_type} {self.get_site_display()}"


class Complication(models.Model):
    """A complication graded by the SIR classes A-F (C-F major)."""

    procedure = models.ForeignKey(Procedure, on_delete=models.CASCADE, related_name="complications")
    sir_class = models.CharField(max_length=_ENUM, choices=COMPLICATION_CHOICES)
    description = models.TextField(blank=True)
    occurred_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ("procedure_id", "pk")
        constraints = (
            in_choices("sir_class", COMPLICATION_CHOICES, name="complication_class_valid"),
        )

    def __str__(self) -> str:
        return f"SIR {self.sir_class}: {self.description[:40]}"


class FollowUp(Voidable):
    """One scheduled visit of a procedure's protocol; completed when the VAS is recorded.

    ``outcome`` (with ``outcome_on``): why the visit has no value -- died, lost to follow-up,
    withdrew (these end the follow-up) or declined (this visit only).
    """

    procedure = models.ForeignKey(Procedure, on_delete=models.CASCADE, related_name="follow_ups")
    timepoint = models.CharField(max_length=16)
    due_date = models.DateField()
    window_start = models.DateField()
    window_end = models.DateField()
    completed_on = models.DateField(null=True, blank=True)
    vas = models.FloatField(null=True, blank=True)
    analgesic_use = models.CharField(
        max_length=_ENUM, choices=AnalgesicUse.choices, null=True, blank=True
    )
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="follow_ups_entered",
    )
    entered_via = models.CharField(
        max_length=_ENUM, choices=EnteredVia.choices, null=True, blank=True
    )
    outcome = models.CharField(max_length=_ENUM, choices=OUTCOME_CHOICES, null=True, blank=True)
    outcome_on = models.DateField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("procedure_id", "due_date", "pk")
        constraints = (
            models.UniqueConstraint(
                fields=["procedure", "timepoint"], name="follow_up_timepoint_unique"
            ),
            models.CheckConstraint(
                condition=Q(vas__isnull=True) | Q(vas__gte=0, vas__lte=10),
                name="follow_up_vas_0_10",
            ),
            models.CheckConstraint(
                condition=Q(vas__isnull=True) | Q(completed_on__isnull=False),
                name="follow_up_vas_needs_completion",
            ),
            models.CheckConstraint(
                condition=Q(window_start__lte=F("due_date"), window_end__gte=F("due_date")),
                name="follow_up_due_in_window",
            ),
            in_choices(
                "analgesic_use", AnalgesicUse.choices, null=True, name="follow_up_analgesic_valid"
            ),
            in_choices(
                "entered_via", EnteredVia.choices, null=True, name="follow_up_entered_via_valid"
            ),
            _version_positive("follow_up_version_positive"),
            in_choices("outcome", OUTCOME_CHOICES, null=True, name="follow_up_outcome_valid"),
            models.CheckConstraint(
                condition=Q(outcome__isnull=True, outcome_on__isnull=True)
                | Q(outcome__isnull=False, outcome_on__isnull=False, completed_on__isnull=True),
                name="follow_up_outcome_dated_and_not_completed",
            ),
            _void_reason_iff_voided("follow_up_void_reason_iff_voided"),
        )

    def __str__(self) -> str:
        return f"{self.timepoint} of {self.procedure}"

    @property
    def completed(self) -> bool:
        return self.completed_on is not None

    @property
    def in_window(self) -> bool | None:
        """Whether the visit was completed inside its window (None when not completed)."""
        if self.completed_on is None:
            return None
        return self.window_start <= self.completed_on <= self.window_end


class SurveillancePlan(models.Model):
    """How often a patient is scanned and when the next scan is due."""

    patient = models.OneToOneField(
        Patient, on_delete=models.CASCADE, related_name="surveillance_plan"
    )
    interval_days = models.PositiveIntegerField()
    next_scan_due = models.DateField()
    active = models.BooleanField(default=True)
    reason = models.TextField(blank=True)
    #: "rule": the interval follows the programme's rule (diagnosis x risk) after each analysed
    #: scan; "clinician": a clinician fixed it, and scans move the date but keep the interval.
    interval_source = models.CharField(
        max_length=_ENUM, choices=IntervalSource.choices, default=IntervalSource.RULE
    )
    #: The risk state (``core.surveillance.RiskState`` value) the interval was last derived from.
    risk_state = models.CharField(max_length=_ENUM, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("next_scan_due", "pk")
        constraints = (
            models.CheckConstraint(
                condition=Q(interval_days__gte=1, interval_days__lte=3650),
                name="surveillance_interval_1_3650",
            ),
            _version_positive("surveillance_version_positive"),
            in_choices("interval_source", IntervalSource.choices, name="surveillance_source_valid"),
        )

    def __str__(self) -> str:
        return f"{self.patient}: every {self.interval_days} days, next {self.next_scan_due}"


from spinewatch.registry.models_pacs import LevelCheck, ReceivedStudy  # noqa: E402
from spinewatch.registry.models_portal import PortalLink  # noqa: E402
from spinewatch.registry.models_sins import SinsAssessment  # noqa: E402
