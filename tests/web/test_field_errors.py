"""Service errors reach form fields by their field path, never by parsing their English text."""

from __future__ import annotations

import datetime as dt

import pytest
from django import forms

from spinewatch.core.errors import InputError
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import check_date, parse_field
from spinewatch.web.plain_errors import attach_input_error, field_name


class _Form(forms.Form):
    vas = forms.DecimalField(required=False)
    completed_on = forms.DateField(required=False)
    diagnosis_kind = forms.CharField(required=False)


def _bound() -> _Form:
    form = _Form(data={})
    assert form.is_valid()
    return form


def test_the_field_path_picks_the_form_field_whatever_the_message_says() -> None:
    form = _bound()
    # the message starts with another field's name: only the path counts
    attach_input_error(form, InputError("completed_on is fine; vas 12", field="follow_ups[2].vas"))
    assert list(form.errors) == ["vas"]
    assert "12" in form.errors["vas"][0]


def test_no_field_path_or_an_unknown_field_goes_above_the_form() -> None:
    form = _bound()
    attach_input_error(form, InputError("vas 12: expected 0-10"))
    attach_input_error(form, InputError("x", field="operator"))
    assert list(form.errors) == ["__all__"] and len(form.errors["__all__"]) == 2


def test_aliases_map_a_service_field_to_the_form_field() -> None:
    form = _bound()
    attach_input_error(
        form, InputError("diagnosis 'x'", field="diagnosis"), {"diagnosis": "diagnosis_kind"}
    )
    assert list(form.errors) == ["diagnosis_kind"]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("vas", "vas"),
        ("follow_ups[2].vas", "vas"),
        ("levels[0]", "levels"),
        (None, None),
        ("", None),
    ],
)
def test_field_name(path: str | None, name: str | None) -> None:
    assert field_name(path) == name


def test_service_helpers_set_the_field_path() -> None:
    with pytest.raises(RegistryError) as info:
        check_date("completed_on", dt.date.today() + dt.timedelta(days=3), not_future=True)
    assert info.value.field == "completed_on"
    with pytest.raises(RegistryError) as info:
        parse_field("vas", _refuse, 12)
    assert info.value.field == "vas"
    with pytest.raises(RegistryError) as info:
        parse_field("diagnosis", _refuse_inner, None)
    assert info.value.field == "diagnosis.primary_tumour"


def _refuse(value: object) -> int:
    raise InputError(f"{value!r}: expected 0-10")


def _refuse_inner(value: object) -> int:
    raise InputError("needs a primary tumour", field="primary_tumour")


# -- procedures: ProcedureError carries the argument path; the procedure form reads only it --

from spinewatch.core.procedures import ProcedureError, TreatedLevel, validate_procedure  # noqa: E402
from spinewatch.registry.services.procedures import _check_parts  # noqa: E402
from spinewatch.web.pages.procedure_forms import (  # noqa: E402
    attach_service_error,
    bound_procedure_forms,
)


def _tl(level: str = "L1", **kw: object) -> TreatedLevel:
    args: dict[str, object] = {
        "level": level,
        "approach": "transpedicular",
        "needle_gauge": 11,
        "cement_volume_ml": 2.5,
    }
    args.update(kw)
    return TreatedLevel(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"level": "X9"}, "level"),
        ({"approach": "sideways"}, "approach"),
        ({"level": "C2", "approach": "transpedicular"}, "approach"),
        ({"needle_gauge": 30}, "needle_gauge"),
        ({"cement_volume_ml": 40}, "cement_volume_ml"),
        ({"ablation": "lasers"}, "ablation"),
        ({"ablation_power_w": 20}, "ablation_power_w"),
        ({"level": "C5", "approach": "anterolateral", "access": "bipedicular"}, "access"),
        ({"biopsy_result": "benign"}, "biopsy_result"),
    ],
)
def test_treated_level_errors_name_their_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ProcedureError) as caught:
        _tl(**kwargs)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("ptype", "kwargs", "field"),
    [
        ("vertebroplasty", {"treated_levels": []}, "treated_levels"),
        ("vertebroplasty", {"treated_levels": [_tl(), _tl()]}, "treated_levels[1].level"),
        ("ablation_vertebroplasty", {"treated_levels": [_tl()]}, "treated_levels[0].ablation"),
        ("vertebroplasty", {"treated_levels": [_tl()], "site": "pelvis"}, "site"),
        ("cementoplasty", {}, "site"),
        ("laser_disc_decompression", {"disc": "L4-L6"}, "disc"),
        ("nonsense", {}, "procedure_type"),
    ],
)
def test_validate_procedure_errors_name_their_argument(
    ptype: str, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ProcedureError) as caught:
        validate_procedure(ptype, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("levels", "site", "disc", "field"),
    [
        ([_tl(), _tl("L2")], None, "L4-L5", "disc_level"),
        ([_tl(), _tl()], None, None, "levels[1].level"),
        ([], "sternum", None, "cementoplasty_site"),
    ],
)
def test_the_procedure_service_names_its_own_arguments(
    levels: list[TreatedLevel], site: object, disc: object, field: str
) -> None:
    from spinewatch.core.procedures import ProcedureType

    with pytest.raises(RegistryError) as caught:
        _check_parts(ProcedureType.VERTEBROPLASTY, levels, site, disc, levels_required=True)
    assert caught.value.field == field


def _posted_procedure(levels: int) -> object:
    data: dict[str, str] = {
        "performed_on": dt.date(2026, 1, 5).isoformat(),
        "procedure_type": "vertebroplasty",
        "operator": "Dr Ivo Needleman",
        "guidance": "fluoroscopy",
        "anaesthesia": "local",
        "day_case": "yes",
    }
    for prefix, total in (("levels", levels), ("leakages", 0), ("complications", 0)):
        data[f"{prefix}-TOTAL_FORMS"] = str(total)
        data[f"{prefix}-INITIAL_FORMS"] = "0"
    for i in range(levels):
        data.update(
            {
                f"levels-{i}-level": f"L{i + 1}",
                f"levels-{i}-approach": "transpedicular",
                f"levels-{i}-needle_gauge": "11",
                f"levels-{i}-cement_volume_ml": "2.5",
            }
        )
    forms_ = bound_procedure_forms(data)
    forms_.is_valid()
    return forms_


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("levels[1].ablation", ("levels", 1, "ablation_modality")),
        ("levels[0].level", ("levels", 0, "level")),
        ("levels", ("levels", None, None)),
        ("disc_level", ("form", None, "disc_level")),
        (None, ("form", None, "__all__")),
    ],
)
def test_procedure_service_errors_land_where_their_path_points(
    path: str | None, where: tuple[str, int | None, str | None]
) -> None:
    forms_ = _posted_procedure(2)
    # the message names other fields on purpose: only the path may count
    attach_service_error(forms_, RegistryError("disc level L4-L5; cementoplasty site", field=path))  # type: ignore[arg-type]
    part, row, name = where
    if part == "form":
        assert list(forms_.form.errors) == [name]  # type: ignore[attr-defined]
        assert not any(f.errors for f in forms_.levels.forms)  # type: ignore[attr-defined]
    elif row is None:
        assert forms_.levels.non_form_errors()  # type: ignore[attr-defined]
        assert not forms_.form.errors  # type: ignore[attr-defined]
    else:
        errors = [f.errors for f in forms_.levels.forms]  # type: ignore[attr-defined]
        assert list(errors[row]) == [name]
        assert not any(e for i, e in enumerate(errors) if i != row)
