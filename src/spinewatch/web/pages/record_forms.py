"""Forms of the record-keeping pages: plan, diagnosis, void, merge, planned procedure."""

from __future__ import annotations

from typing import Any

from django import forms

from spinewatch.core.diagnoses import DiagnosisKind, PrimaryTumour
from spinewatch.core.procedures import ProcedureType
from spinewatch.registry.choices import LEVEL_CHOICES, enum_choices

__all__ = ["DiagnosisForm", "MergeForm", "PlanForm", "PlanProcedureForm", "VoidForm"]

_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
_BLANK: list[tuple[Any, str]] = [("", "\u2014")]


class PlanForm(forms.Form):
    """A clinician's edit of the surveillance plan."""

    use_rule = forms.ChoiceField(
        label="Interval",
        choices=[("rule", "Follow the programme's rule"), ("fixed", "Fix the interval below")],
        widget=forms.RadioSelect,
        initial="rule",
    )
    interval_days = forms.IntegerField(
        label="Fixed interval (days)",
        required=False,
        min_value=1,
        max_value=3650,
        error_messages={
            "min_value": "The interval must be at least 1 day.",
            "max_value": "The interval can be at most 3650 days (10 years).",
        },
    )
    next_scan_due = forms.DateField(
        label="Next scan due",
        required=False,
        widget=_DATE,
        help_text="Leave empty to count the interval from the latest scan.",
        error_messages={"invalid": "Enter the date as YYYY-MM-DD."},
    )
    active = forms.BooleanField(label="Under surveillance", required=False, initial=True)
    reason = forms.CharField(
        label="Reason", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("use_rule") == "fixed" and not data.get("interval_days"):
            self.add_error("interval_days", "Enter the number of days, or follow the rule.")
        return data


class DiagnosisForm(forms.Form):
    kind = forms.ChoiceField(
        label="Diagnosis",
        choices=_BLANK + [(v, str(lbl)) for v, lbl in enum_choices(DiagnosisKind)],
        error_messages={"required": "Choose the diagnosis."},
    )
    primary_tumour = forms.ChoiceField(
        label="Primary tumour",
        required=False,
        choices=_BLANK + [(v, str(lbl)) for v, lbl in enum_choices(PrimaryTumour)],
        help_text="For metastases only.",
    )
    diagnosed_on = forms.DateField(
        label="Diagnosed on",
        required=False,
        widget=_DATE,
        error_messages={"invalid": "Enter the date as YYYY-MM-DD."},
    )
    notes = forms.CharField(
        label="Notes", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class VoidForm(forms.Form):
    reason = forms.CharField(
        label="Why is this record void?",
        max_length=500,
        help_text="For example: entered for the wrong patient; entered twice; wrong scan.",
        error_messages={"required": "Say why the record is voided."},
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class MergeForm(forms.Form):
    duplicate = forms.CharField(
        label="Study id of the duplicate record",
        max_length=64,
        help_text="Its scans, procedures, follow-ups and diagnoses move to this record.",
        error_messages={"required": "Enter the study id of the other record."},
    )
    reason = forms.CharField(
        label="Why are they one person?",
        max_length=500,
        error_messages={"required": "Say why the two records are one person."},
    )
    keep_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class PlanProcedureForm(forms.Form):
    planned_on = forms.DateField(
        label="Planned date",
        widget=_DATE,
        error_messages={
            "required": "Enter the planned date.",
            "invalid": "Enter the date as YYYY-MM-DD.",
        },
    )
    procedure_type = forms.ChoiceField(
        label="Procedure",
        choices=_BLANK + [(v, str(lbl)) for v, lbl in enum_choices(ProcedureType)],
        error_messages={"required": "Choose the procedure."},
    )
    planned_levels = forms.MultipleChoiceField(
        label="Planned levels",
        required=False,
        choices=LEVEL_CHOICES,
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    notes = forms.CharField(
        label="Notes", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
