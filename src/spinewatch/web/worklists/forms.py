"""The "record follow-up" form (staff): pain score, analgesic use, date of the visit."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from spinewatch.registry.choices import AnalgesicUse

__all__ = ["RecordFollowUpForm"]


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
