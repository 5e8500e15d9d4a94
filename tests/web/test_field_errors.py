"""Service errors reach form fields by their field path, never by parsing their English text."""

from __future__ import annotations

import datetime as dt

import pytest
from django import forms

from spinewatch.core.errors import InputError
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import check_date, parse_field
from spinewatch.web.pages.views import attach_input_error, field_name


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
