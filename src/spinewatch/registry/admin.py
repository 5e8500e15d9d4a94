"""Django admin for the registry: browsing, searching and filtering as a clinic does.

The admin is read-only on purpose: every write goes through :mod:`spinewatch.registry.services`
(validation, optimistic locking, and later the audit trail), which the admin's generic forms would
bypass. Edits happen in the web application's forms, the API, or the command line.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from spinewatch.audit.trail import record
from spinewatch.registry import models as m

__all__ = ["ReadOnlyAdmin"]


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """List, search and view; no add, change or delete (writes go through the services).

    Every list or record shown is a view of (possibly identifiable) registry data, so each one
    records an audit "view" event, like the application's own pages.
    """

    def _audit_view(self, request: HttpRequest, response: Any, object_id: Any, what: str) -> Any:
        if getattr(response, "status_code", None) == 200:
            record(
                actor=None,
                action="view",
                object_type=self.model._meta.label_lower,
                object_id=object_id or "",
                detail={"page": f"admin {what}", "query": request.GET.urlencode()},
            )
        return response

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        response = super().changelist_view(request, extra_context)
        return self._audit_view(request, response, None, "list")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        response = super().change_view(request, object_id, form_url, extra_context)
        return self._audit_view(request, response, object_id, "record")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class IdentityInline(admin.StackedInline):  # type: ignore[type-arg]
    model = m.PatientIdentity
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DiagnosisInline(ReadOnlyInline):
    model = m.Diagnosis
    fields = ("kind", "primary_tumour", "diagnosed_on", "notes")


class ProcedureInline(ReadOnlyInline):
    model = m.Procedure
    fields = ("performed_on", "procedure_type", "operator", "guidance", "day_case")


@admin.register(m.Patient)
class PatientAdmin(ReadOnlyAdmin):
    list_display = (
        "study_id",
        "family_name",
        "given_name",
        "hospital_number",
        "case_manager",
        "n_procedures",
        "created_at",
    )
    list_filter = ("diagnoses__kind", "case_manager", "surveillance_plan__active")
    search_fields = (
        "study_id",
        "identity__family_name",
        "identity__given_name",
        "identity__hospital_number",
    )
    list_select_related = ("identity", "case_manager")
    inlines = (IdentityInline, DiagnosisInline, ProcedureInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[m.Patient]:
        return super().get_queryset(request).annotate(_n_procedures=Count("procedures"))

    @admin.display(description="procedures", ordering="_n_procedures")
    def n_procedures(self, obj: m.Patient) -> int:
        return int(getattr(obj, "_n_procedures", 0))

    @staticmethod
    def _identity(obj: m.Patient, field: str) -> str:
        identity = getattr(obj, "identity", None) if hasattr(obj, "identity") else None
        return str(getattr(identity, field, "")) if identity is not None else "-"

    @admin.display(description="family name", ordering="identity__family_name")
    def family_name(self, obj: m.Patient) -> str:
        return self._identity(obj, "family_name")

    @admin.display(description="given name")
    def given_name(self, obj: m.Patient) -> str:
        return self._identity(obj, "given_name")

    @admin.display(description="hospital number", ordering="identity__hospital_number")
    def hospital_number(self, obj: m.Patient) -> str:
        return self._identity(obj, "hospital_number")


@admin.register(m.Diagnosis)
class DiagnosisAdmin(ReadOnlyAdmin):
    list_display = ("patient", "kind", "primary_tumour", "diagnosed_on")
    list_filter = ("kind", "primary_tumour")
    search_fields = ("patient__study_id",)
    date_hierarchy = "diagnosed_on"


class FindingInline(ReadOnlyInline):
    model = m.VertebraFinding
    fields = (
        "level",
        "genant_grade",
        "deformity",
        "height_loss_pct",
        "lytic_fraction",
        "collapse_risk",
        "decision",
    )


@admin.register(m.ImagingStudy)
class ImagingStudyAdmin(ReadOnlyAdmin):
    list_display = ("patient", "study_date", "modality", "description", "analysed_at")
    list_filter = ("modality", "study_date")
    search_fields = ("patient__study_id", "study_instance_uid", "series_instance_uid")
    date_hierarchy = "study_date"
    inlines = (FindingInline,)


@admin.register(m.VertebraFinding)
class VertebraFindingAdmin(ReadOnlyAdmin):
    list_display = (
        "study",
        "level",
        "genant_grade",
        "deformity",
        "height_loss_pct",
        "lytic_fraction",
        "posterior_wall_involved",
        "collapse_risk",
        "treat_signal",
        "confidence",
        "decision",
    )
    list_filter = (
        "collapse_risk",
        "treat_signal",
        "confidence",
        "decision",
        "genant_grade",
        "deformity",
        "level",
    )
    search_fields = ("study__patient__study_id", "level")
    list_select_related = ("study__patient",)


class TreatedLevelInline(ReadOnlyInline):
    model = m.TreatedLevel
    fields = (
        "level",
        "approach",
        "needle_gauge",
        "cement_volume_ml",
        "ablation_modality",
        "ablation_power_w",
        "ablation_duration_s",
    )


class LeakageInline(ReadOnlyInline):
    model = m.CementLeakage
    fields = ("treated_level", "leakage_type", "site", "symptomatic")


class ComplicationInline(ReadOnlyInline):
    model = m.Complication
    fields = ("sir_class", "description", "occurred_on")


class FollowUpInline(ReadOnlyInline):
    model = m.FollowUp
    fields = ("timepoint", "due_date", "window_start", "window_end", "completed_on", "vas")


@admin.register(m.Procedure)
class ProcedureAdmin(ReadOnlyAdmin):
    list_display = (
        "patient",
        "performed_on",
        "procedure_type",
        "operator",
        "guidance",
        "anaesthesia",
        "day_case",
        "recorded_via",
    )
    list_filter = ("procedure_type", "guidance", "anaesthesia", "day_case", "recorded_via")
    search_fields = ("patient__study_id", "operator", "levels__level")
    date_hierarchy = "performed_on"
    list_select_related = ("patient",)
    inlines = (TreatedLevelInline, LeakageInline, ComplicationInline, FollowUpInline)


@admin.register(m.FollowUp)
class FollowUpAdmin(ReadOnlyAdmin):
    list_display = (
        "procedure",
        "timepoint",
        "due_date",
        "window_start",
        "window_end",
        "completed_on",
        "vas",
        "analgesic_use",
        "entered_via",
    )
    list_filter = (
        "timepoint",
        "entered_via",
        "analgesic_use",
        ("completed_on", admin.EmptyFieldListFilter),
    )
    search_fields = ("procedure__patient__study_id",)
    date_hierarchy = "due_date"
    list_select_related = ("procedure__patient",)


@admin.register(m.CementLeakage)
class CementLeakageAdmin(ReadOnlyAdmin):
    list_display = ("procedure", "treated_level", "leakage_type", "site", "symptomatic")
    list_filter = ("leakage_type", "site", "symptomatic")
    search_fields = ("procedure__patient__study_id",)


@admin.register(m.Complication)
class ComplicationAdmin(ReadOnlyAdmin):
    list_display = ("procedure", "sir_class", "occurred_on", "description")
    list_filter = ("sir_class",)
    search_fields = ("procedure__patient__study_id", "description")


@admin.register(m.SurveillancePlan)
class SurveillancePlanAdmin(ReadOnlyAdmin):
    list_display = ("patient", "interval_days", "next_scan_due", "active", "reason")
    list_filter = ("active", "interval_days")
    search_fields = ("patient__study_id",)
    date_hierarchy = "next_scan_due"
    ordering = ("next_scan_due",)


@admin.register(m.ReceivedStudy)
class ReceivedStudyAdmin(ReadOnlyAdmin):
    list_display = (
        "study_instance_uid",
        "dicom_patient_id",
        "study_date",
        "received_via",
        "status",
        "patient",
        "received_at",
    )
    list_filter = ("status", "received_via")
    search_fields = ("study_instance_uid", "dicom_patient_id", "accession_number")


@admin.register(m.LevelCheck)
class LevelCheckAdmin(ReadOnlyAdmin):
    list_display = ("study", "outcome", "shift", "variant", "pending", "checked_by", "checked_at")
    list_filter = ("outcome", "pending")
