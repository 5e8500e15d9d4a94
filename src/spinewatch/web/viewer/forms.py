"""The level check form: confirm the labelled levels or correct them (see core.level_check)."""

from __future__ import annotations

from django import forms

__all__ = ["CHOICES", "LevelCheckForm"]

#: value -> (shift, variant, label shown)
CHOICES: dict[str, tuple[int, str, str]] = {
    "confirm": (0, "", "The levels are right as labelled"),
    "up": (-1, "", "Every vertebra is one level higher (cranial) than labelled"),
    "down": (1, "", "Every vertebra is one level lower (caudal) than labelled"),
    "t13": (0, "T13", "Thirteen thoracic vertebrae: the one labelled L1 is T13"),
    "l6": (0, "L6", "Six lumbar vertebrae: the one labelled S1 is L6 (lumbarised S1)"),
}


class LevelCheckForm(forms.Form):
    decision = forms.ChoiceField(
        label="Levels",
        choices=[(key, text) for key, (_, _, text) in CHOICES.items()],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label="Note", required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)
