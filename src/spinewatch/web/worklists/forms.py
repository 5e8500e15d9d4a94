"""The "record follow-up" form (staff): pain score, analgesic use, date of the visit."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from spinewatch.core.follow_up_outcome import VisitOutcome
from spinewatch.registry.choices import AnalgesicUse

__all__ = ["RecordFollowUpForm", "VisitOutcomeForm"]


class RecordFollowUpForm(forms.Form):
    vas = forms.DecimalField(
        label="Pain score (VAS 0-10)",
        required=False,
        min_value=Decimal(0),
        max_value=Decimal(10),
        max_digits=3,
        decimal_places=1,
        help_text="0 = no pain, 10 = worst imaginable; one decimal allowed. Leave empty if the "
        "visit took place without a pain score.",
        widget=forms.NumberInput(
            attrs={"step": "0.1", "min": "0", "max": "10", "inputmode": "decimal"}
        ),
        error_messages={
            "min_value": "VAS %(limit_value)s is the lowest: expected a number from 0 to 10.",
            "max_value": "VAS above %(limit_value)s: expected a number from 0 to 10.",
            "invalid": "Expected a number from 0 to 10, e.g. 4.5.",
        },
    )
    analgesic_use = forms.ChoiceField(
        label="Analgesic use",
        required=False,
        choices=[("", "Not asked"), *AnalgesicUse.choices],
    )
    completed_on = forms.DateField(
        label="Date of the visit",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Expected a date as YYYY-MM-DD."},
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class VisitOutcomeForm(forms.Form):
    """Why a visit has no pain score: died, lost to follow-up, withdrew, declined -- and when."""

    outcome = forms.ChoiceField(
        label="What happened",
        choices=[("", "\u2014"), *((o.value, o.label) for o in VisitOutcome)],
        error_messages={"required": "Choose what happened."},
    )
    outcome_on = forms.DateField(
        label="On (date)",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        help_text="The date of death, of the last contact, of the withdrawal or of the refusal.",
        error_messages={"invalid": "Enter the date as YYYY-MM-DD.", "required": "Enter the date."},
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
