"""The procedure form: the session's facts, several treated levels, leakages and complications.

Three formsets (prefixes ``levels``, ``leakages``, ``complications``) beside the main form. Every
row is optional (a row left empty is skipped); a filled row is validated through the clinical
core at once (``core.procedures.TreatedLevel``, ``core.leakage.CementLeakage``), so that e.g.
"transpedicular at C2" is reported next to that row's approach. Errors that only the service
layer sees (a level treated twice, a leak at a level not treated) are put back next to the right
field by :func:`attach_service_error`.

Progressive enhancement: :func:`build_formsets` renders a fixed number of rows (``rows``); the
"add another level" submit button re-renders with one row more; ``static/web/app.js`` clones
the formset's ``empty_form`` instead when JavaScript runs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.forms import BaseFormSet, formset_factory
from django.utils import timezone

from spinewatch.core.complications import ComplicationClass
from spinewatch.core.errors import InputError
from spinewatch.core.leakage import CementLeakage, LeakageSite, LeakageType
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
    TreatedLevel,
)
from spinewatch.registry import models as rm
from spinewatch.registry.choices import LEVEL_CHOICES, enum_choices
from spinewatch.registry.services import ComplicationRecord, LeakageRecord
from spinewatch.web.plain_errors import attach_input_error, plain_message

__all__ = [
    "ComplicationForm",
    "LeakageForm",
    "LevelForm",
    "ProcedureForm",
    "ProcedureFormSet",
    "attach_service_error",
    "bound_procedure_forms",
    "procedure_initial",
    "unbound_procedure_forms",
]

_BLANK: list[tuple[Any, str]] = [("", "\u2014")]
_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
_YES_NO = [("yes", "Yes"), ("no", "No")]

#: Default number of empty rows per formset on a new procedure.
DEFAULT_ROWS = {"levels": 3, "leakages": 1, "complications": 1}


def _choices(enum_cls: Any) -> list[tuple[Any, str]]:
    return _BLANK + [(v, str(label)) for v, label in enum_choices(enum_cls)]


class ProcedureForm(forms.Form):
    """The session: date, type, operator, guidance, anaesthesia, day case, site or disc."""

    performed_on = forms.DateField(label="Date", widget=_DATE)
    procedure_type = forms.ChoiceField(label="Procedure", choices=_choices(ProcedureType))
    operator = forms.CharField(label="Operator", max_length=150)
    guidance = forms.ChoiceField(label="Guidance", choices=_choices(Guidance))
    anaesthesia = forms.ChoiceField(label="Anaesthesia", choices=_choices(Anaesthesia))
    day_case = forms.ChoiceField(label="Day case", choices=_YES_NO, widget=forms.RadioSelect)
    cementoplasty_site = forms.ChoiceField(
        label="Site (cementoplasty)",
        choices=_choices(CementoplastySite),
        required=False,
        help_text="Only for an extraspinal cementoplasty.",
    )
    disc_level = forms.CharField(
        label="Disc level (PLDD)",
        max_length=8,
        required=False,
        help_text="Only for a laser disc decompression, e.g. L4-L5.",
    )
    cement_type = forms.ChoiceField(label="Cement", choices=_choices(CementType), required=False)
    fluoroscopy_time_s = forms.FloatField(
        label="Fluoroscopy time (s)",
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "any"}),
        error_messages={"min_value": "The fluoroscopy time cannot be negative."},
    )
    dose_area_product_gycm2 = forms.FloatField(
        label="Dose-area product (Gy·cm²)",
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "any"}),
        error_messages={"min_value": "The dose-area product cannot be negative."},
    )
    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    confirm_warnings = forms.BooleanField(
        label="I have checked the values above: save anyway",
        required=False,
        widget=forms.CheckboxInput,
    )

    def clean_performed_on(self) -> dt.date:
        value: dt.date = self.cleaned_data["performed_on"]
        if value > timezone.localdate():
            raise forms.ValidationError(
                f"{value:%d %b %Y} is in the future: record a procedure once it is done."
            )
        return value

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "performed_on": data["performed_on"],
            "procedure_type": data["procedure_type"],
            "operator": data["operator"],
            "guidance": data["guidance"],
            "anaesthesia": data["anaesthesia"],
            "day_case": data["day_case"] == "yes",
            "cementoplasty_site": data["cementoplasty_site"] or None,
            "disc_level": data["disc_level"].strip() or None,
            "notes": data["notes"],
            "cement_type": data["cement_type"] or None,
            "fluoroscopy_time_s": data["fluoroscopy_time_s"],
            "dose_area_product_gycm2": data["dose_area_product_gycm2"],
        }


#: TreatedLevel's argument names that differ from the level row's form fields.
_LEVEL_ALIASES = {"ablation": "ablation_modality"}
#: CementLeakage's argument names that differ from the leakage row's form fields.
_LEAKAGE_ALIASES = {"type": "leakage_type"}


class LevelForm(forms.Form):
    """One treated vertebra: level, approach, needle, cement and optional ablation."""

    level = forms.ChoiceField(label="Level", choices=_BLANK + LEVEL_CHOICES)
    approach = forms.ChoiceField(label="Approach", choices=_choices(Approach))
    needle_gauge = forms.IntegerField(
        label="Needle (G)", min_value=8, max_value=22, widget=forms.NumberInput(attrs={"step": 1})
    )
    cement_volume_ml = forms.FloatField(
        label="Cement (ml)", min_value=0, widget=forms.NumberInput(attrs={"step": "0.1"})
    )
    ablation_modality = forms.ChoiceField(
        label="Ablation", choices=_choices(AblationModality), required=False
    )
    ablation_power_w = forms.FloatField(
        label="Power (W)", required=False, widget=forms.NumberInput(attrs={"step": "any"})
    )
    ablation_duration_s = forms.FloatField(
        label="Duration (s)", required=False, widget=forms.NumberInput(attrs={"step": "any"})
    )
    access = forms.ChoiceField(
        label="Uni/bipedicular", choices=_choices(PedicleAccess), required=False
    )
    biopsy = forms.BooleanField(label="Biopsy taken", required=False)
    biopsy_result = forms.ChoiceField(
        label="Biopsy result", choices=_choices(BiopsyResult), required=False
    )

    treated: TreatedLevel | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        needed = ("level", "approach", "needle_gauge", "cement_volume_ml")
        if any(name in self.errors for name in needed) or any(
            data.get(name) in (None, "") for name in needed
        ):
            return data
        try:
            self.treated = TreatedLevel(
                level=data["level"],
                approach=data["approach"],
                needle_gauge=data["needle_gauge"],
                cement_volume_ml=data["cement_volume_ml"],
                ablation=data.get("ablation_modality") or None,
                ablation_power_w=data.get("ablation_power_w"),
                ablation_duration_s=data.get("ablation_duration_s"),
                access=data.get("access") or None,
                biopsy=bool(data.get("biopsy")),
                biopsy_result=data.get("biopsy_result") or None,
            )
        except InputError as exc:
            attach_input_error(self, exc, _LEVEL_ALIASES)
        return data


class LeakageForm(forms.Form):
    """One cement leak: Yeom type, site, symptomatic, and the level it came from if known."""

    leakage_type = forms.ChoiceField(label="Type", choices=_choices(LeakageType))
    site = forms.ChoiceField(label="Site", choices=_choices(LeakageSite))
    symptomatic = forms.BooleanField(label="Symptomatic", required=False)
    level = forms.ChoiceField(label="At level", choices=_BLANK + LEVEL_CHOICES, required=False)

    record: LeakageRecord | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "leakage_type" in self.errors or "site" in self.errors:
            return data
        try:
            leak = CementLeakage(
                type=data["leakage_type"], site=data["site"], symptomatic=bool(data["symptomatic"])
            )
        except InputError as exc:
            attach_input_error(self, exc, _LEAKAGE_ALIASES)
            return data
        self.record = LeakageRecord(leak, data.get("level") or None)
        return data


class ComplicationForm(forms.Form):
    """A complication: SIR class A-F, description, date."""

    sir_class = forms.ChoiceField(label="SIR class", choices=_choices(ComplicationClass))
    description = forms.CharField(label="Description", max_length=500, required=False)
    occurred_on = forms.DateField(label="Date", required=False, widget=_DATE)

    def record(self) -> ComplicationRecord:
        data = self.cleaned_data
        return ComplicationRecord(
            sir_class=data["sir_class"],
            description=data.get("description") or "",
            occurred_on=data.get("occurred_on"),
        )


class ProcedureFormSet(BaseFormSet):  # type: ignore[type-arg]
    """A formset whose every row is optional: no row counts as "initial" (all may stay empty);
    rows shown pre-filled (editing, "add another level") get their values as per-row initial."""

    def initial_form_count(self) -> int:
        return 0


LevelFormSet = formset_factory(LevelForm, formset=ProcedureFormSet, extra=0, max_num=30)
LeakageFormSet = formset_factory(LeakageForm, formset=ProcedureFormSet, extra=0, max_num=30)
ComplicationFormSet = formset_factory(
    ComplicationForm, formset=ProcedureFormSet, extra=0, max_num=30
)
_FORMSETS = {
    "levels": LevelFormSet,
    "leakages": LeakageFormSet,
    "complications": ComplicationFormSet,
}


@dataclass
class ProcedureForms:
    """The main form and its three formsets, rendered and validated together."""

    form: ProcedureForm
    levels: Any
    leakages: Any
    complications: Any
    errors_summary: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def is_valid(self) -> bool:
        # Evaluate all (no short circuit) so every error is shown at once.
        results = [
            self.form.is_valid(),
            self.levels.is_valid(),
            self.leakages.is_valid(),
            self.complications.is_valid(),
        ]
        return all(results)

    def filled(self, name: str) -> list[tuple[int, forms.Form]]:
        """``(row index, form)`` of the rows filled in (empty rows skipped)."""
        formset = getattr(self, name)
        return [(i, f) for i, f in enumerate(formset.forms) if f.has_changed()]

    def service_kwargs(self) -> dict[str, Any]:
        kwargs = self.form.service_kwargs()
        kwargs.pop("confirm_warnings", None)
        kwargs["levels"] = [f.treated for _, f in self.filled("levels")]
        kwargs["leakages"] = [f.record for _, f in self.filled("leakages")]
        kwargs["complications"] = [f.record() for _, f in self.filled("complications")]
        return kwargs

    def error_count(self) -> int:
        count = len(self.form.errors)
        for name in _FORMSETS:
            formset = getattr(self, name)
            count += len(formset.non_form_errors()) + sum(len(e) for e in formset.errors)
        return count


def _rows_from_data(data: Mapping[str, Any], prefix: str, fields: Sequence[str]) -> list[dict]:
    try:
        total = int(data.get(f"{prefix}-TOTAL_FORMS", 0))
    except (TypeError, ValueError):
        total = 0
    total = max(0, min(total, 30))
    rows = []
    for i in range(total):
        row = {}
        for name in fields:
            key = f"{prefix}-{i}-{name}"
            if key in data:
                row[name] = data.get(key)
        rows.append(row)
    return rows


def unbound_procedure_forms(
    *,
    initial: Mapping[str, Any] | None = None,
    rows: Mapping[str, list[dict[str, Any]]] | None = None,
) -> ProcedureForms:
    """Forms to display: ``initial`` for the main form, ``rows`` per formset (pre-filled rows;
    empty rows are added up to :data:`DEFAULT_ROWS`, and always at least one)."""
    rows = rows or {}
    sets = {}
    for prefix, cls in _FORMSETS.items():
        given = list(rows.get(prefix, []))
        padding = max(DEFAULT_ROWS[prefix] - len(given), 1 if prefix == "levels" else 0)
        if prefix == "levels" and given:
            padding = max(padding, 1)
        initial_rows = given + [{} for _ in range(padding)]
        formset = cls(prefix=prefix, initial=initial_rows)
        formset.extra = len(initial_rows)
        sets[prefix] = formset
    return ProcedureForms(form=ProcedureForm(initial=initial), **sets)


def forms_with_extra_row(data: Mapping[str, Any], add: str) -> ProcedureForms:
    """Re-display a posted form with one more empty row in formset ``add`` (nothing validated)."""
    rows = {
        prefix: _rows_from_data(data, prefix, list(cls.form.base_fields))
        for prefix, cls in _FORMSETS.items()
    }
    rows[add] = [*rows.get(add, []), {}]
    main = {name: data.get(name) for name in ProcedureForm.base_fields if name in data}
    sets = {}
    for prefix, cls in _FORMSETS.items():
        formset = cls(prefix=prefix, initial=rows[prefix])
        formset.extra = len(rows[prefix])
        sets[prefix] = formset
    return ProcedureForms(form=ProcedureForm(initial=main), **sets)


def bound_procedure_forms(data: Mapping[str, Any]) -> ProcedureForms:
    """The posted forms, ready to validate."""
    return ProcedureForms(
        form=ProcedureForm(data),
        levels=LevelFormSet(data, prefix="levels"),
        leakages=LeakageFormSet(data, prefix="leakages"),
        complications=ComplicationFormSet(data, prefix="complications"),
    )


def _num(value: float | None) -> Any:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def procedure_initial(
    procedure: rm.Procedure,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The stored procedure as ``(initial, rows)`` for :func:`unbound_procedure_forms`."""
    initial = {
        "performed_on": procedure.performed_on,
        "procedure_type": procedure.procedure_type,
        "operator": procedure.operator,
        "guidance": procedure.guidance or "",
        "anaesthesia": procedure.anaesthesia or "",
        "day_case": "" if procedure.day_case is None else ("yes" if procedure.day_case else "no"),
        "cementoplasty_site": procedure.cementoplasty_site or "",
        "disc_level": procedure.disc_level or "",
        "notes": procedure.notes,
        "cement_type": procedure.cement_type or "",
        "fluoroscopy_time_s": _num(procedure.fluoroscopy_time_s),
        "dose_area_product_gycm2": _num(procedure.dose_area_product_gycm2),
    }
    rows = {
        "levels": [
            {
                "level": t.level,
                "approach": t.approach,
                "needle_gauge": t.needle_gauge,
                "cement_volume_ml": _num(t.cement_volume_ml),
                "ablation_modality": t.ablation_modality or "",
                "ablation_power_w": _num(t.ablation_power_w),
                "ablation_duration_s": _num(t.ablation_duration_s),
                "access": t.access or "",
                "biopsy": t.biopsy,
                "biopsy_result": t.biopsy_result or "",
            }
            for t in procedure.levels.all()
        ],
        "leakages": [
            {
                "leakage_type": leak.leakage_type,
                "site": leak.site,
                "symptomatic": leak.symptomatic,
                "level": leak.treated_level.level if leak.treated_level else "",
            }
            for leak in procedure.leakages.select_related("treated_level")
        ],
        "complications": [
            {"sir_class": c.sir_class, "description": c.description, "occurred_on": c.occurred_on}
            for c in procedure.complications.all()
        ],
    }
    return initial, rows


_ROW = re.compile(r"(?P<set>levels|leakages|complications)\[(?P<i>\d+)\]")


def attach_service_error(forms_: ProcedureForms, exc: InputError) -> None:
    """Put a service error, in plain words, where its field path points: ``levels[1].approach``
    on the second filled level row, ``levels`` above the level rows, ``disc_level`` on the main
    form's field, no path above the form. The path is read, never the message."""
    path = exc.field or ""
    row = _ROW.match(path)
    if row is not None:
        filled = forms_.filled(row["set"])
        i = int(row["i"])
        if i < len(filled):
            aliases = {"levels": _LEVEL_ALIASES, "leakages": _LEAKAGE_ALIASES}
            attach_input_error(filled[i][1], exc, aliases.get(row["set"]))
            return
    head = re.split(r"[.\[]", path, maxsplit=1)[0]
    if head in _FORMSETS:
        getattr(forms_, head)._non_form_errors.append(plain_message(str(exc)))
        return
    attach_input_error(forms_.form, exc)
