"""Forms of the patient portal: the patient's two answers, in plain words."""

from __future__ import annotations

from decimal import Decimal

from django import forms

__all__ = ["ANALGESIC_CHOICES", "PortalAnswerForm"]

#: Analgesic use as a patient would say it (stored as the registry's AnalgesicUse values).
ANALGESIC_CHOICES = [
    ("none", "No pain medicine"),
    ("non_opioid", "Simple pain killers only (for example paracetamol or ibuprofen)"),
    ("weak_opioid", "Mild opioid (for example codeine or tramadol)"),
    ("strong_opioid", "Strong opioid (for example morphine or oxycodone)"),
]

PAIN_CHOICES = [(str(i), str(i)) for i in range(11)]


class PortalAnswerForm(forms.Form):
    """Today's pain (0-10, large buttons; a decimal is accepted) and pain medicine."""

    vas = forms.DecimalField(
        label="How much pain do you have today?",
        min_value=Decimal(0),
        max_value=Decimal(10),
        max_digits=3,
        decimal_places=1,
        error_messages={
            "required": "Please choose a number from 0 (no pain) to 10 (worst pain imaginable).",
            "invalid": "Please choose a number from 0 to 10.",
            "min_value": "Please choose a number from 0 to 10.",
            "max_value": "Please choose a number from 0 to 10.",
            "max_digits": "Please choose a number from 0 to 10.",
            "max_decimal_places": "Please use at most one decimal, for example 4.5.",
        },
    )
    analgesic_use = forms.ChoiceField(
        label="Which pain medicine are you taking now?",
        choices=ANALGESIC_CHOICES,
        widget=forms.RadioSelect,
        error_messages={"required": "Please choose the pain medicine you take now."},
    )
