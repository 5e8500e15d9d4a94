"""Forms of the pages area: patient search, identity, new patient, finding decision, SINS.

Forms only parse what a person typed; the rules live in the registry's services (whose
:class:`~spinewatch.registry.errors.RegistryError` messages are put next to the right field).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from spinewatch.accounts.roles import Role
from spinewatch.core.diagnoses import DiagnosisKind, PrimaryTumour
from spinewatch.core.sins import SinsBoneLesion, SinsCollapse, SinsPosterolateral
from spinewatch.registry.choices import ContactBy, Decision, Sex, enum_choices
from spinewatch.registry.models_sins import SINS_ALIGNMENT_CHOICES, SINS_PAIN_CHOICES

__all__ = [
    "DecisionForm",
    "IdentityForm",
    "NewPatientForm",
    "PatientSearchForm",
    "SinsForm",
    "case_manager_queryset",
]

_BLANK: list[tuple[Any, str]] = [("", "\u2014")]
_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def case_manager_queryset() -> Any:
    """Active users with the case manager role, by name."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=Role.CASE_MANAGER.value)
        .order_by("last_name", "first_name", "username")
    )


class CaseManagerField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.get_full_name() or obj.get_username())


RISK_FILTER_CHOICES = [
    ("", "Any"),
    ("high", "High (or signal to treat)"),
    ("not_assessable", "Not assessable"),
    ("moderate", "Moderate"),
    ("low", "Low"),
    ("none", "No analysed scan"),
]


class PatientSearchForm(forms.Form):
    diagnosis = forms.ChoiceField(
        label="Diagnosis",
        required=False,
        choices=[("", "Any"), *((v, str(lbl)) for v, lbl in enum_choices(DiagnosisKind))],
    )
    risk = forms.ChoiceField(label="Highest open risk", required=False, choices=RISK_FILTER_CHOICES)
    voided = forms.BooleanField(label="Include voided records", required=False)
    q = forms.CharField(
        label="Search patients",
        required=False,
        max_length=100,
        help_text="Name, hospital number or study id.",
        widget=forms.TextInput(
            attrs={"type": "search", "autocomplete": "off", "placeholder": "e.g. Smith, H123456"}
        ),
    )


class IdentityForm(forms.Form):
    """Who the patient is, and who looks after them."""

    family_name = forms.CharField(label="Family name", max_length=150)
    given_name = forms.CharField(label="Given name", max_length=150)
    hospital_number = forms.CharField(label="Hospital number", max_length=64)
    birth_date = forms.DateField(label="Date of birth", required=False, widget=_DATE)
    sex = forms.ChoiceField(label="Sex", choices=Sex.choices, initial=Sex.UNKNOWN)
    case_manager = CaseManagerField(
        label="Case manager", queryset=None, required=False, empty_label="\u2014 none \u2014"
    )
    phone = forms.CharField(label="Phone", max_length=40, required=False)
    email = forms.EmailField(label="E-mail", required=False)
    contact_by = forms.ChoiceField(
        label="Portal links and reminders",
        choices=ContactBy.choices,
        initial=ContactBy.NONE,
        required=False,
        help_text="Only with the patient's agreement.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["case_manager"].queryset = case_manager_queryset()  # type: ignore[attr-defined]

    def clean_birth_date(self) -> dt.date | None:
        value: dt.date | None = self.cleaned_data.get("birth_date")
        if value is not None and value > timezone.localdate():
            raise forms.ValidationError("The date of birth is in the future.")
        return value

    def identity_kwargs(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["contact_by"] = data.get("contact_by") or ContactBy.NONE.value
        return {
            name: data[name]
            for name in (
                "family_name",
                "given_name",
                "hospital_number",
                "birth_date",
                "sex",
                "phone",
                "email",
                "contact_by",
            )
        }


class NewPatientForm(IdentityForm):
    """A new patient: identity and the first diagnosis."""

    diagnosis_kind = forms.ChoiceField(
        label="Diagnosis",
        choices=_BLANK + [(v, str(lbl)) for v, lbl in enum_choices(DiagnosisKind)],
    )
    primary_tumour = forms.ChoiceField(
        label="Primary tumour",
        required=False,
        choices=_BLANK + [(v, str(lbl)) for v, lbl in enum_choices(PrimaryTumour)],
        help_text="For metastases only.",
    )
    diagnosed_on = forms.DateField(label="Diagnosed on", required=False, widget=_DATE)
    confirm_not_duplicate = forms.BooleanField(
        label="This is a different person: register anyway", required=False
    )


class DecisionForm(forms.Form):
    """The team's decision about one vertebra (with the version it was based on)."""

    decision = forms.ChoiceField(label="Decision", choices=Decision.choices)
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why; e.g. MDT of 3 March, for vertebroplasty.",
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


def _assessed_choices(enum_cls: Any) -> list[tuple[str, str]]:
    return [(m.value, f"{m.label} ({m.points})") for m in enum_cls if m.assessed]


#: The imaging components a clinician reads from the images when the analysis could not (an
#: MRI or a label map without a CT: bone lesion, posterolateral; no heights: collapse).
SINS_IMAGING_FIELDS: dict[str, tuple[str, Any]] = {
    "bone_lesion": ("Bone lesion (read from the images)", SinsBoneLesion),
    "collapse": ("Vertebral body collapse (read from the images)", SinsCollapse),
    "posterolateral": ("Posterolateral involvement (read from the images)", SinsPosterolateral),
}


class SinsForm(forms.Form):
    """The clinical part of the SINS, and the imaging components the analysis did not assess.

    ``unassessed``: names of those components (``SinsImagingPart.unassessed``); a required
    field is added for each, offering only real readings (never "not assessed").
    """

    pain = forms.ChoiceField(label="Pain", choices=SINS_PAIN_CHOICES, widget=forms.RadioSelect)
    alignment = forms.ChoiceField(
        label="Radiographic alignment", choices=SINS_ALIGNMENT_CHOICES, widget=forms.RadioSelect
    )

    def __init__(self, *args: Any, unassessed: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in unassessed:
            label, enum_cls = SINS_IMAGING_FIELDS[name]
            self.fields[name] = forms.ChoiceField(
                label=label, choices=_assessed_choices(enum_cls), widget=forms.RadioSelect
            )
