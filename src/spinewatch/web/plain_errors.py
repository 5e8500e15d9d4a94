"""Plain-language form errors: the service layer's messages without internal names.

The registry's errors name fields as the code does (``completed_on 2026-05-01 is in the future``,
``levels[1].cement_volume_ml``, ``procedure: ...``): right for the command line, the API and the
logs, wrong on a form. :func:`plain_message` rewrites such a message for a person: field names
become the words on the form, row indices become "level row 2", database wording becomes a
sentence, and the message starts with a capital and ends with a full stop.

>>> plain_message("completed_on 2030-01-01 is in the future (today is 2026-01-01)")
'The date of the visit 2030-01-01 is in the future (today is 2026-01-01).'
"""

from __future__ import annotations

import re
from typing import Any

from spinewatch.core.errors import InputError

__all__ = ["FIELD_WORDS", "attach_input_error", "field_name", "plain_message"]

#: Internal names -> the words a person sees on the forms.
FIELD_WORDS: dict[str, str] = {
    "completed_on": "the date of the visit",
    "vas": "the pain score",
    "analgesic_use": "the pain medicine",
    "performed_on": "the procedure date",
    "planned_on": "the planned date",
    "procedure_type": "the procedure",
    "cementoplasty_site": "the cementoplasty site",
    "disc_level": "the disc level",
    "cement_volume_ml": "the cement volume",
    "cement_type": "the cement type",
    "needle_gauge": "the needle gauge",
    "ablation_power_w": "the ablation power",
    "ablation_duration_s": "the ablation duration",
    "ablation_modality": "the ablation",
    "fluoroscopy_time_s": "the fluoroscopy time",
    "dose_area_product_gycm2": "the dose-area product",
    "biopsy_result": "the biopsy result",
    "occurred_on": "the date of the complication",
    "sir_class": "the SIR class",
    "leakage_type": "the leakage type",
    "hospital_number": "the hospital number",
    "family_name": "the family name",
    "given_name": "the given name",
    "birth_date": "the date of birth",
    "case_manager": "the case manager",
    "contact_by": "the way to contact the patient",
    "diagnosed_on": "the date of diagnosis",
    "primary_tumour": "the primary tumour",
    "outcome_on": "the date",
    "interval_days": "the interval",
    "next_scan_due": "the next scan date",
    "expected_version": "the version of the form",
    "study_id": "the study id",
    "operator_user": "the operator",
    "planned_levels": "the planned levels",
    "decision_note": "the note",
}

_INDEXED = re.compile(r"\b(levels|leakages|complications)\[(\d+)\]\.?")
_ROW_WORD = {"levels": "level row", "leakages": "leakage row", "complications": "complication row"}
_DATABASE = re.compile(r"refused by the database \(.*\)", re.DOTALL)


def plain_message(message: str) -> str:
    """``message`` in the words of the forms (see the module docstring)."""
    text = message.strip()
    for prefix in ("procedure: ", "diagnosis: "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = _INDEXED.sub(lambda m: f"{_ROW_WORD[m[1]]} {int(m[2]) + 1}: ", text)
    text = _DATABASE.sub("could not be saved because it conflicts with another record", text)
    for name in sorted(FIELD_WORDS, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.]){re.escape(name)}(?![\w])", FIELD_WORDS[name], text)
    text = text.replace(":  ", ": ").replace(": the ", ": the ")
    text = re.sub(r"\s+", " ", text).strip()
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    if text and not text.endswith((".", "?", "!")):
        text += "."
    return text


def attach_input_error(form: Any, exc: InputError, aliases: dict[str, str] | None = None) -> None:
    """Put a service error, in plain words (:func:`~spinewatch.web.plain_errors.
    plain_message`), next to the form field its ``field`` path names -- the path's last name,
    or the form field ``aliases`` maps it to (``{"primary": "primary_tumour"}``) -- else above
    the form. The one place a service error meets a form: no message text is parsed."""
    text = plain_message(str(exc))
    name = field_name(exc.field)
    if name is not None:
        name = (aliases or {}).get(name, name)
    form.add_error(name if name in form.fields else None, text)


def field_name(path: str | None) -> str | None:
    """The form field of an error's field path: ``"follow_ups[2].vas"`` -> ``"vas"``,
    ``"vas"`` -> ``"vas"``, None -> None (the last name: a form edits one record).

    >>> field_name("follow_ups[2].vas"), field_name("completed_on"), field_name(None)
    ('vas', 'completed_on', None)
    """
    if not path:
        return None
    return re.sub(r"\[\d+\]", "", path).rsplit(".", 1)[-1] or None
