"""The cohort filter form (GET): the filters of ``cohort_frame`` plus the paired test."""

from __future__ import annotations

from typing import Any

from django import forms

from spinewatch.core.diagnoses import DiagnosisKind
from spinewatch.core.levels import ALL_LEVELS
from spinewatch.core.procedures import Approach, ProcedureType
from spinewatch.registry.choices import enum_choices

__all__ = ["CohortFilterForm"]

_ANY = [("", "Any")]


def _choices(enum_cls: Any) -> list[tuple[str, str]]:
    return _ANY + [(str(v), str(label)) for v, label in enum_choices(enum_cls)]


class CohortFilterForm(forms.Form):
    diagnosis = forms.ChoiceField(
        label="Diagnosis", required=False, choices=_choices(DiagnosisKind)
    )
    level = forms.ChoiceField(
        label="Treated level",
        required=False,
        choices=_ANY + [(str(level), str(level)) for level in ALL_LEVELS],
    )
    approach = forms.ChoiceField(label="Approach", required=False, choices=_choices(Approach))
    procedure_type = forms.ChoiceField(
        label="Procedure", required=False, choices=_choices(ProcedureType)
    )
    date_from = forms.DateField(
        label="Procedures from",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Expected a date as YYYY-MM-DD."},
    )
    date_to = forms.DateField(
        label="Procedures to",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Expected a date as YYYY-MM-DD."},
    )
    include_out_of_window = forms.BooleanField(
        label="Include values recorded outside their visit window",
        required=False,
        help_text="By default only in-window values count, as in a paper's table.",
    )
    test = forms.ChoiceField(
        label="Paired test",
        required=False,
        choices=[("paired-t", "Paired t-test"), ("wilcoxon", "Wilcoxon signed-rank")],
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error(
                "date_to",
                f"{end.isoformat()} is before {start.isoformat()}: "
                "expected an end date on or after the start date.",
            )
        return data

    def filters(self) -> dict[str, Any]:
        """The cohort_frame keyword arguments (empty values left out); call after is_valid()."""
        names = (
            "diagnosis",
            "level",
            "approach",
            "procedure_type",
            "date_from",
            "date_to",
            "include_out_of_window",
        )
        return {n: self.cleaned_data[n] for n in names if self.cleaned_data.get(n)}

    def selection(self) -> dict[str, Any]:
        """The filters that select procedures (for the attrition counts)."""
        out = self.filters()
        out.pop("include_out_of_window", None)
        return out

    def test_name(self) -> str:
        return self.cleaned_data.get("test") or "paired-t"
