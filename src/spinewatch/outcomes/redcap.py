"""REDCap: the project files a research team imports into REDCap, and reading the records back.

Three files describe a longitudinal REDCap project of the follow-up protocol
(:data:`~spinewatch.core.protocol.DEFAULT_PROTOCOL`: pre-op, 3 days, 1, 3, 6, 12 months):

- the **data dictionary** (``data_dictionary.csv``): REDCap's standard 18-column metadata CSV
  (:data:`DICTIONARY_COLUMNS`), three instruments -- ``patient`` (who: study id, age at the
  index procedure, sex, diagnosis), ``procedure`` (what was done, when: days from the index
  procedure, levels, approaches, needle gauges, cement volumes) and ``pain`` (per visit: days
  after the procedure, VAS 0-10, analgesics). Identifiers -- name, hospital number, birth date and
  every calendar date -- are fields marked ``y`` in "Identifier?", so REDCap's de-identified
  exports drop them too;
- the **events** (``events.csv``: ``event_name, arm_num, day_offset, offset_min, offset_max,
  unique_event_name``) -- one per time point with its day offset and window (offset_min /
  offset_max: days before / after, REDCap's convention) -- and the **instrument-event mapping**
  (``instrument_event_mapping.csv``: ``arm_num, unique_event_name, form``): ``patient`` and
  ``procedure`` at the baseline event, ``pain`` at every event;
- the **records** (``records.csv``) in REDCap's flat import format: one row per record and event
  (``record_id, redcap_event_name, <fields>, <form>_complete``). A record is one treatment
  series (a patient's first procedure, second procedure ...): ``study_id`` and
  ``procedure_number`` say whose and which.

De-identified by default: the identifier fields are left out of the records, every date is a
day offset (``procedure_day``: days from the patient's first procedure; ``visit_day``: days after
this procedure), and the age at the index procedure is top-coded at 90 ("90 or older", HIPAA
Safe Harbor). Age and sex stay, because Table 1 reports them.

:func:`read_records` reads a records file back (strictly: one clear error naming file, line,
column and value), for :func:`spinewatch.registry.redcap.import_redcap`.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinewatch.core.csv_cells import SafeCsvWriter
from spinewatch.core.diagnoses import DiagnosisKind, PrimaryTumour
from spinewatch.core.errors import InputError
from spinewatch.core.levels import VertebralLevel
from spinewatch.core.procedures import Approach, ProcedureType
from spinewatch.core.protocol import DEFAULT_PROTOCOL, FollowUpProtocol, TimePoint

__all__ = [
    "AGE_TOP_CODE",
    "ANALGESIC_CHOICES",
    "DICTIONARY_COLUMNS",
    "IDENTIFIER_FIELDS",
    "SEX_CHOICES",
    "PainRecord",
    "RedcapError",
    "SeriesRecord",
    "data_dictionary_rows",
    "event_rows",
    "instrument_event_rows",
    "read_records",
    "record_columns",
    "unique_event_name",
    "write_project",
]

AGE_TOP_CODE = 90
#: Largest records file read (checked before reading): far above a registry's export.
MAX_RECORDS_BYTES = 256 * 1024 * 1024

#: REDCap's data dictionary header, exactly (18 columns).
DICTIONARY_COLUMNS: tuple[str, ...] = (
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
)

#: The registry's sex and analgesic vocabularies (``registry.choices``; a test keeps them equal).
SEX_CHOICES: tuple[tuple[str, str], ...] = (
    ("female", "Female"),
    ("male", "Male"),
    ("other", "Other"),
    ("unknown", "Unknown"),
)
ANALGESIC_CHOICES: tuple[tuple[str, str], ...] = (
    ("none", "None"),
    ("non_opioid", "Non-opioid"),
    ("weak_opioid", "Weak opioid"),
    ("strong_opioid", "Strong opioid"),
)

FORMS: tuple[str, ...] = ("patient", "procedure", "pain")
IDENTIFIER_FIELDS: tuple[str, ...] = (
    "family_name",
    "given_name",
    "hospital_number",
    "birth_date",
    "procedure_date",
    "visit_date",
)


class RedcapError(InputError):
    """A REDCap file SpineWatch cannot read; the message names file, line, column and value."""


@dataclass(frozen=True)
class _Field:
    name: str
    form: str
    kind: str  # text, dropdown, notes
    label: str
    choices: tuple[tuple[str, str], ...] = ()
    note: str = ""
    validation: str = ""
    minimum: str = ""
    maximum: str = ""
    identifier: bool = False
    branching: str = ""
    required: bool = False
    section: str = ""


def _choices(enum_type: Any) -> tuple[tuple[str, str], ...]:
    return tuple((m.value, m.label) for m in enum_type)


def _fields() -> tuple[_Field, ...]:
    """The instrument's fields in form order: patient, procedure, pain at the visit."""
    return (*_patient_fields(), *_procedure_fields(), *_pain_fields())


def _patient_fields() -> tuple[_Field, ...]:
    return (
        _Field(
            "record_id",
            "patient",
            "text",
            "Record (treatment series)",
            required=True,
            section="Patient (one record per treatment series)",
            note="study id and procedure number",
        ),
        _Field("study_id", "patient", "text", "Study id (pseudonymous)", required=True),
        _Field(
            "procedure_number",
            "patient",
            "text",
            "Procedure number of this patient",
            validation="integer",
            minimum="1",
            required=True,
        ),
        _Field("family_name", "patient", "text", "Family name", identifier=True),
        _Field("given_name", "patient", "text", "Given name", identifier=True),
        _Field("hospital_number", "patient", "text", "Hospital number", identifier=True),
        _Field(
            "birth_date", "patient", "text", "Birth date", validation="date_ymd", identifier=True
        ),
        _Field(
            "age_years",
            "patient",
            "text",
            "Age at the index procedure",
            validation="integer",
            minimum="0",
            maximum=str(AGE_TOP_CODE),
            note="years; 90 = 90 or older",
        ),
        _Field("sex", "patient", "dropdown", "Sex", choices=SEX_CHOICES),
        _Field("diagnosis", "patient", "dropdown", "Diagnosis", choices=_choices(DiagnosisKind)),
        _Field(
            "primary_tumour",
            "patient",
            "dropdown",
            "Primary tumour",
            choices=_choices(PrimaryTumour),
            branching="[diagnosis] = 'metastasis'",
        ),
    )


def _procedure_fields() -> tuple[_Field, ...]:
    return (
        _Field(
            "procedure_date",
            "procedure",
            "text",
            "Procedure date",
            validation="date_ymd",
            identifier=True,
            section="Procedure",
        ),
        _Field(
            "procedure_day",
            "procedure",
            "text",
            "Days from the index procedure",
            validation="integer",
            minimum="0",
            required=True,
            note="0 = the patient's first procedure",
        ),
        _Field(
            "procedure_type",
            "procedure",
            "dropdown",
            "Procedure",
            choices=_choices(ProcedureType),
            required=True,
        ),
        _Field(
            "levels",
            "procedure",
            "text",
            "Treated levels",
            note="cranio-caudal, separated by ';' (e.g. T12;L1)",
        ),
        _Field(
            "approaches",
            "procedure",
            "text",
            "Approach per level",
            note="one per level, separated by ';'",
        ),
        _Field(
            "needle_gauges",
            "procedure",
            "text",
            "Needle gauge per level",
            note="one per level, separated by ';'",
        ),
        _Field(
            "cement_volumes_ml",
            "procedure",
            "text",
            "Cement volume per level",
            note="ml, one per level, separated by ';'",
        ),
    )


def _pain_fields() -> tuple[_Field, ...]:
    return (
        _Field(
            "visit_date",
            "pain",
            "text",
            "Visit date",
            validation="date_ymd",
            identifier=True,
            section="Pain at this visit",
        ),
        _Field(
            "visit_day",
            "pain",
            "text",
            "Days after the procedure",
            validation="integer",
            note="the visit's window is the event's offset_min / offset_max",
        ),
        _Field(
            "vas",
            "pain",
            "text",
            "VAS pain",
            validation="number",
            minimum="0",
            maximum="10",
            note="0 = no pain, 10 = worst imaginable",
        ),
        _Field("analgesic_use", "pain", "dropdown", "Analgesics", choices=ANALGESIC_CHOICES),
    )


FIELDS: tuple[_Field, ...] = _fields()
_BY_NAME = {f.name: f for f in FIELDS}


def data_dictionary_rows() -> list[list[str]]:
    """The data dictionary's rows (without the header), REDCap's 18 columns each."""
    rows = []
    for f in FIELDS:
        choices = " | ".join(f"{code}, {label}" for code, label in f.choices)
        rows.append(
            [
                f.name,
                f.form,
                f.section,
                f.kind,
                f.label,
                choices,
                f.note,
                f.validation,
                f.minimum,
                f.maximum,
                "y" if f.identifier else "",
                f.branching,
                "y" if f.required else "",
                "",
                "",
                "",
                "",
                "",
            ]
        )
    return rows


def unique_event_name(timepoint: TimePoint, arm: int = 1) -> str:
    """REDCap's unique event name of a time point's event: its label in lower case, spaces as
    ``_``, other punctuation dropped, ``_arm_<n>`` appended (``"3 months"`` -> ``3_months_arm_1``).
    """
    slug = re.sub(r"[^a-z0-9_]", "", timepoint.label.lower().replace(" ", "_"))
    return f"{slug[:18]}_arm_{arm}"


def event_rows(protocol: FollowUpProtocol = DEFAULT_PROTOCOL) -> list[dict[str, object]]:
    """One event per time point: name, arm 1, day offset and window (days before / after)."""
    return [
        {
            "event_name": tp.label,
            "arm_num": 1,
            "day_offset": tp.offset_days,
            "offset_min": tp.window_before_days,
            "offset_max": tp.window_after_days,
            "unique_event_name": unique_event_name(tp),
        }
        for tp in protocol.timepoints
    ]


def instrument_event_rows(protocol: FollowUpProtocol = DEFAULT_PROTOCOL) -> list[list[object]]:
    """``[arm_num, unique_event_name, form]``: patient and procedure at baseline, pain at all."""
    rows: list[list[object]] = []
    for tp in protocol.timepoints:
        event = unique_event_name(tp)
        if tp.is_baseline:
            rows += [[1, event, "patient"], [1, event, "procedure"]]
        rows.append([1, event, "pain"])
    return rows


def record_columns(*, identifiable: bool = False) -> list[str]:
    """The records file's header: ``record_id, redcap_event_name``, the fields (identifiers only
    when ``identifiable``), then ``<form>_complete`` of each instrument."""
    names = [f.name for f in FIELDS if f.name != "record_id" and (identifiable or not f.identifier)]
    return ["record_id", "redcap_event_name", *names, *(f"{form}_complete" for form in FORMS)]


@dataclass(frozen=True)
class PainRecord:
    """One visit of a series: its time point code, days after the procedure, VAS, analgesics."""

    timepoint: str
    visit_day: int
    vas: float
    analgesic_use: str | None = None
    visit_date: str | None = None  # ISO date; identifiable exports only


@dataclass(frozen=True)
class SeriesRecord:
    """One treatment series as REDCap holds it (de-identified fields; identifiers optional)."""

    record_id: str
    study_id: str
    procedure_number: int
    procedure_day: int
    procedure_type: str
    age_years: int | None = None
    sex: str | None = None
    diagnosis: str | None = None
    primary_tumour: str | None = None
    levels: tuple[str, ...] = ()
    approaches: tuple[str, ...] = ()
    needle_gauges: tuple[int, ...] = ()
    cement_volumes_ml: tuple[float, ...] = ()
    pains: tuple[PainRecord, ...] = ()
    identity: Mapping[str, str] = field(default_factory=dict)


def _number(value: float) -> str:
    """A number as REDCap expects it: integers without ``.0``, others to 2 decimals at most."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(float(value), 2):g}"


def _record_rows(
    series: SeriesRecord, protocol: FollowUpProtocol, identifiable: bool
) -> list[dict[str, object]]:
    baseline = unique_event_name(protocol.baseline)
    head: dict[str, object] = {
        "record_id": series.record_id,
        "redcap_event_name": baseline,
        "study_id": series.study_id,
        "procedure_number": series.procedure_number,
        "age_years": series.age_years,
        "sex": series.sex,
        "diagnosis": series.diagnosis,
        "primary_tumour": series.primary_tumour,
        "procedure_day": series.procedure_day,
        "procedure_type": series.procedure_type,
        "levels": ";".join(series.levels),
        "approaches": ";".join(series.approaches),
        "needle_gauges": ";".join(str(g) for g in series.needle_gauges),
        "cement_volumes_ml": ";".join(_number(v) for v in series.cement_volumes_ml),
        "patient_complete": 2,
        "procedure_complete": 2,
    }
    if identifiable:
        head.update({k: v for k, v in series.identity.items() if k in _BY_NAME})
    rows_by_event: dict[str, dict[str, object]] = {baseline: head}
    for pain in series.pains:
        event = unique_event_name(protocol.timepoint(pain.timepoint))
        row = rows_by_event.setdefault(
            event, {"record_id": series.record_id, "redcap_event_name": event}
        )
        row.update(
            {
                "visit_day": pain.visit_day,
                "vas": _number(pain.vas),
                "analgesic_use": pain.analgesic_use,
                "pain_complete": 2,
            }
        )
        if identifiable:
            row["visit_date"] = pain.visit_date
    order = {unique_event_name(tp): i for i, tp in enumerate(protocol.timepoints)}
    return [rows_by_event[k] for k in sorted(rows_by_event, key=order.__getitem__)]


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Any]) -> None:
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    writer.writerow(header)
    for row in rows:
        if isinstance(row, Mapping):
            writer.writerow([row.get(name) for name in header])
        else:
            writer.writerow(row)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def write_project(
    directory: Path | str,
    series: Iterable[SeriesRecord],
    *,
    protocol: FollowUpProtocol = DEFAULT_PROTOCOL,
    identifiable: bool = False,
) -> dict[str, Path]:
    """Write the data dictionary, events, instrument-event mapping and records into
    ``directory`` (created when missing); returns ``{"dictionary", "events", "mapping",
    "records"}`` -> path. Every cell goes through :mod:`spinewatch.core.csv_cells`."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "dictionary": out / "data_dictionary.csv",
        "events": out / "events.csv",
        "mapping": out / "instrument_event_mapping.csv",
        "records": out / "records.csv",
    }
    _write_csv(paths["dictionary"], DICTIONARY_COLUMNS, data_dictionary_rows())
    events = event_rows(protocol)
    _write_csv(paths["events"], list(events[0]), events)
    _write_csv(
        paths["mapping"], ["arm_num", "unique_event_name", "form"], instrument_event_rows(protocol)
    )
    header = record_columns(identifiable=identifiable)
    rows = [row for s in series for row in _record_rows(s, protocol, identifiable)]
    _write_csv(paths["records"], header, rows)
    return paths


# -- reading records back ---------------------------------------------------------------------


def _bad(path: Path, line: int, column: str, value: object, expected: str) -> RedcapError:
    return RedcapError(f"{path}, line {line}, column {column!r}: {value!r}; expected {expected}")


def _int(path: Path, line: int, column: str, text: str, *, minimum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _bad(path, line, column, text, "a whole number") from None
    if minimum is not None and value < minimum:
        raise _bad(path, line, column, text, f"a whole number >= {minimum}")
    return value


def _choice(path: Path, line: int, column: str, text: str, allowed: Iterable[str]) -> str | None:
    if text == "":
        return None
    codes = list(allowed)
    if text not in codes:
        raise _bad(path, line, column, text, "one of " + ", ".join(codes))
    return text


def _split(text: str) -> list[str]:
    return [] if text.strip() == "" else [part.strip() for part in text.split(";")]


def read_records(
    path: Path | str, *, protocol: FollowUpProtocol = DEFAULT_PROTOCOL
) -> list[SeriesRecord]:
    """Read a records file written by :func:`write_project` (de-identified or not).

    Every value is checked (events, study ids, codes, VAS 0-10, day offsets, levels and their
    per-level lists of equal length); the first problem raises :class:`RedcapError` naming the
    file, line, column and value. Series come back in file order.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_RECORDS_BYTES:
        raise RedcapError(
            f"{path}: {size} bytes; expected a records file of at most {MAX_RECORDS_BYTES} bytes"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RedcapError(f"{path}: not UTF-8 text ({exc.reason}); expected a REDCap CSV") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    required = ("record_id", "redcap_event_name", "study_id", "procedure_number", "vas")
    missing = [c for c in required if c not in header]
    if missing:
        raise RedcapError(
            f"{path}, line 1: missing column(s) {', '.join(missing)}; expected REDCap's flat "
            "records format (record_id, redcap_event_name, fields...)"
        )
    events = {unique_event_name(tp): tp for tp in protocol.timepoints}
    baseline = unique_event_name(protocol.baseline)
    heads: dict[str, dict[str, Any]] = {}
    pains: dict[str, list[PainRecord]] = {}
    seen: set[tuple[str, str]] = set()
    for line, row in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in row.items() if k is not None}
        record = row.get("record_id", "")
        if not record:
            raise _bad(path, line, "record_id", record, "a record id")
        event = row.get("redcap_event_name", "")
        if event not in events:
            raise _bad(path, line, "redcap_event_name", event, "one of " + ", ".join(events))
        if (record, event) in seen:
            raise _bad(path, line, "redcap_event_name", event, "one row per record and event")
        seen.add((record, event))
        if event == baseline:
            heads[record] = _read_head(path, line, row)
        if row.get("vas", "") != "":
            pains.setdefault(record, []).append(_read_pain(path, line, row, events[event]))
    out = []
    for record, head in heads.items():
        out.append(SeriesRecord(record_id=record, pains=tuple(pains.pop(record, [])), **head))
    if pains:
        orphan = next(iter(pains))
        raise RedcapError(
            f"{path}: record {orphan!r} has pain values but no row at the baseline event "
            f"{baseline!r}; expected its patient and procedure fields there"
        )
    if not out:
        raise RedcapError(f"{path}: no record at the baseline event {baseline!r}")
    return out


def _read_head(path: Path, line: int, row: Mapping[str, str]) -> dict[str, Any]:
    study_id = row.get("study_id", "")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", study_id):
        raise _bad(path, line, "study_id", study_id, "1-64 letters, digits, '.', '_' or '-'")
    number = _int(path, line, "procedure_number", row.get("procedure_number", ""), minimum=1)
    age_text = row.get("age_years", "")
    age = None
    if age_text != "":
        age = _int(path, line, "age_years", age_text, minimum=0)
        if age > AGE_TOP_CODE:
            raise _bad(path, line, "age_years", age_text, f"0-{AGE_TOP_CODE} (90 = 90 or older)")
    diagnosis = _choice(
        path, line, "diagnosis", row.get("diagnosis", ""), (k.value for k in DiagnosisKind)
    )
    primary = _choice(
        path,
        line,
        "primary_tumour",
        row.get("primary_tumour", ""),
        (p.value for p in PrimaryTumour),
    )
    ptype = _choice(
        path,
        line,
        "procedure_type",
        row.get("procedure_type", ""),
        (t.value for t in ProcedureType),
    )
    if ptype is None:
        raise _bad(path, line, "procedure_type", "", "a procedure type")
    levels = _split(row.get("levels", ""))
    for level in levels:
        try:
            VertebralLevel.parse(level)
        except InputError:
            raise _bad(path, line, "levels", level, "vertebral levels such as T12;L1") from None
    approaches = _split(row.get("approaches", ""))
    for approach in approaches:
        _choice(path, line, "approaches", approach, (a.value for a in Approach))
    gauges = [
        _int(path, line, "needle_gauges", g, minimum=1)
        for g in _split(row.get("needle_gauges", ""))
    ]
    volumes: list[float] = []
    for text in _split(row.get("cement_volumes_ml", "")):
        try:
            volume = float(text)
        except ValueError:
            volume = math.nan
        if not math.isfinite(volume) or volume <= 0:
            raise _bad(path, line, "cement_volumes_ml", text, "volumes in ml > 0")
        volumes.append(volume)
    for column, values in (
        ("approaches", approaches),
        ("needle_gauges", gauges),
        ("cement_volumes_ml", volumes),
    ):
        if levels and len(values) != len(levels):
            raise _bad(
                path, line, column, row.get(column, ""), f"one value per level ({len(levels)})"
            )
    identity = {k: row[k] for k in IDENTIFIER_FIELDS if row.get(k)}
    return {
        "study_id": study_id,
        "procedure_number": number,
        "procedure_day": _int(path, line, "procedure_day", row.get("procedure_day", ""), minimum=0),
        "procedure_type": ptype,
        "age_years": age,
        "sex": _choice(path, line, "sex", row.get("sex", ""), (c for c, _ in SEX_CHOICES)),
        "diagnosis": diagnosis,
        "primary_tumour": primary,
        "levels": tuple(levels),
        "approaches": tuple(approaches),
        "needle_gauges": tuple(gauges),
        "cement_volumes_ml": tuple(volumes),
        "identity": identity,
    }


def _read_pain(path: Path, line: int, row: Mapping[str, str], tp: TimePoint) -> PainRecord:
    text = row.get("vas", "")
    try:
        vas = float(text)
    except ValueError:
        vas = math.nan
    if not math.isfinite(vas) or not 0 <= vas <= 10:
        raise _bad(path, line, "vas", text, "a VAS from 0 to 10")
    day_text = row.get("visit_day", "")
    if day_text == "":
        raise _bad(path, line, "visit_day", day_text, "the days after the procedure of the visit")
    return PainRecord(
        timepoint=tp.code,
        visit_day=_int(path, line, "visit_day", day_text),
        vas=vas,
        analgesic_use=_choice(
            path,
            line,
            "analgesic_use",
            row.get("analgesic_use", ""),
            (c for c, _ in ANALGESIC_CHOICES),
        ),
    )
