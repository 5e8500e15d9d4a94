"""The cohort as a table (for :mod:`spinewatch.outcomes`) and the import of a cohort file.

:func:`cohort_frame` is the read side: one row per completed follow-up with a VAS, in the same long
format as a cohort file (``patient_id, timepoint, vas`` + context columns), so the outcome table is
computed the same way from the registry as from a file. :func:`import_cohort` is the write side:
all of a cohort file, or nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from spinewatch.core.diagnoses import DiagnosisKind
from spinewatch.core.levels import VertebralLevel
from spinewatch.core.procedures import Approach, ProcedureType
from spinewatch.core.protocol import DEFAULT_PROTOCOL, FollowUpProtocol
from spinewatch.registry import models as m
from spinewatch.registry.choices import RecordedVia
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import check_date, parse_field, today
from spinewatch.registry.services.bulk import BulkPatient, BulkProcedure, import_patients
from spinewatch.registry.services.patients import STUDY_ID_PATTERN

__all__ = [
    "ATTRITION_COLUMNS",
    "COHORT_COLUMNS",
    "ImportSummary",
    "cohort_attrition",
    "cohort_frame",
    "import_cohort",
]

#: Columns of :func:`cohort_frame`, in order.
COHORT_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "timepoint",
    "vas",
    "procedure_date",
    "diagnosis",
    "primary_tumour",
    "procedure_type",
    "levels",
    "approaches",
    "completed_on",
    "days_after_procedure",
    "analgesic_use",
    "entered_via",
    "study_id",
    "procedure_number",
    "in_window",
)

#: Keys of each row of :func:`cohort_attrition`, in order.
ATTRITION_COLUMNS: tuple[str, ...] = (
    "timepoint",
    "label",
    "scheduled",
    "not_yet_due",
    "in_window",
    "out_of_window",
    "died",
    "lost_to_follow_up",
    "withdrew",
    "declined",
    "missed",
)


def _selected_procedures(
    diagnosis: DiagnosisKind | str | None,
    level: VertebralLevel | str | None,
    approach: Approach | str | None,
    procedure_type: ProcedureType | str | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
) -> dict[int, m.Procedure]:
    """Performed, not voided procedures of not voided patients matching the filters."""
    procedures = m.Procedure.objects.filter(
        voided_at__isnull=True, patient__voided_at__isnull=True, status="performed"
    )
    if diagnosis is not None:
        kind = parse_field("diagnosis", DiagnosisKind.parse, diagnosis)
        procedures = procedures.filter(patient__diagnoses__kind=kind.value)
    if level is not None:
        lvl = parse_field("level", VertebralLevel.parse, level)
        procedures = procedures.filter(levels__level=str(lvl))
    if approach is not None:
        appr = parse_field("approach", Approach.parse, approach)
        procedures = procedures.filter(levels__approach=appr.value)
    if procedure_type is not None:
        ptype = parse_field("procedure_type", ProcedureType.parse, procedure_type)
        procedures = procedures.filter(procedure_type=ptype.value)
    if date_from is not None:
        procedures = procedures.filter(performed_on__gte=check_date("date_from", date_from))
    if date_to is not None:
        procedures = procedures.filter(performed_on__lte=check_date("date_to", date_to))
    return {
        p.pk: p for p in procedures.distinct().select_related("patient").prefetch_related("levels")
    }


def cohort_attrition(
    *,
    today_: dt.date | None = None,
    diagnosis: DiagnosisKind | str | None = None,
    level: VertebralLevel | str | None = None,
    approach: Approach | str | None = None,
    procedure_type: ProcedureType | str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> list[dict[str, Any]]:
    """CONSORT-style counts per time point of the same procedures as :func:`cohort_frame`.

    For each time point (protocol order, the first procedure's protocol naming them):
    ``scheduled`` visits (not voided), of which ``not_yet_due`` (window still open or to come,
    no value), ``in_window`` and ``out_of_window`` (a VAS recorded inside / outside the visit
    window), ``died`` / ``lost_to_follow_up`` / ``withdrew`` / ``declined`` (the recorded
    outcome) and ``missed`` (window closed, no value, no reason recorded). The counts of a row
    add up to ``scheduled``.
    """
    day = today_ or today()
    selected = _selected_procedures(diagnosis, level, approach, procedure_type, date_from, date_to)
    rows: dict[str, dict[str, Any]] = {}
    for proc in selected.values():
        for tp in proc.protocol.get("timepoints", []):
            rows.setdefault(
                tp["code"],
                {k: 0 for k in ATTRITION_COLUMNS}
                | {
                    "timepoint": tp["code"],
                    "label": tp.get("label", tp["code"]),
                },
            )
    visits = m.FollowUp.objects.filter(procedure_id__in=list(selected), voided_at__isnull=True)
    for fu in visits.only(
        "timepoint", "completed_on", "vas", "window_start", "window_end", "outcome"
    ):
        row = rows.setdefault(
            fu.timepoint,
            {k: 0 for k in ATTRITION_COLUMNS} | {"timepoint": fu.timepoint, "label": fu.timepoint},
        )
        row["scheduled"] += 1
        if fu.completed_on is not None and fu.vas is not None:
            inside = fu.window_start <= fu.completed_on <= fu.window_end
            row["in_window" if inside else "out_of_window"] += 1
        elif fu.outcome:
            row[fu.outcome] += 1
        elif fu.window_end >= day:
            row["not_yet_due"] += 1
        else:
            row["missed"] += 1
    return list(rows.values())


def cohort_frame(
    *,
    diagnosis: DiagnosisKind | str | None = None,
    level: VertebralLevel | str | None = None,
    approach: Approach | str | None = None,
    procedure_type: ProcedureType | str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    include_out_of_window: bool = False,
) -> pd.DataFrame:
    """Completed follow-ups with a VAS, one row each, as a long DataFrame (:data:`COHORT_COLUMNS`).

    ``patient_id`` is the study id; a patient's second, third ... procedure (by date) is
    ``"SW-000012/2"``, ``"/3"`` so that each procedure is its own series in the outcome table.
    ``timepoint`` is the protocol code (str), ``vas`` 0-10 (float), ``procedure_date`` and
    ``completed_on`` :class:`datetime.date`; ``diagnosis`` the patient's latest diagnosis kind
    (``primary_tumour`` for a metastasis); ``levels`` and ``approaches`` the treated levels
    (cranio-caudal) and approaches joined by ``;`` (empty for an imported cohort).
    Filters (all optional, combined with AND): patients with a ``diagnosis`` of that kind,
    procedures treating ``level`` / using ``approach`` / of ``procedure_type``, procedures
    performed between ``date_from`` and ``date_to`` inclusive. Rows are ordered by patient,
    procedure and the protocol's time point order.

    Voided patients, procedures and visits and planned procedures are left out. By default only
    values recorded inside their visit window count (the paper's table: a "3 months" value taken
    at 5 months is not a 3-month value); ``include_out_of_window=True`` adds the others.
    ``in_window`` (bool) says which is which.
    """
    selected = _selected_procedures(diagnosis, level, approach, procedure_type, date_from, date_to)
    patient_ids = {p.patient_id for p in selected.values()}

    number: dict[int, int] = {}
    counter: dict[int, int] = defaultdict(int)
    for pk, patient_pk in (
        m.Procedure.objects.filter(
            patient_id__in=patient_ids, voided_at__isnull=True, status="performed"
        )
        .order_by("patient_id", "performed_on", "pk")
        .values_list("pk", "patient_id")
    ):
        counter[patient_pk] += 1
        number[pk] = counter[patient_pk]

    latest_diagnosis: dict[int, m.Diagnosis] = {}
    for d in m.Diagnosis.objects.filter(patient_id__in=patient_ids).order_by(
        "patient_id", "diagnosed_on", "pk"
    ):
        latest_diagnosis[d.patient_id] = d  # the last one wins (nulls sort first on both DBs)

    orders: dict[int, dict[str, int]] = {}
    records: list[dict[str, Any]] = []
    follow_ups = m.FollowUp.objects.filter(
        procedure_id__in=list(selected),
        completed_on__isnull=False,
        vas__isnull=False,
        voided_at__isnull=True,
    )
    for fu in follow_ups:
        inside = fu.window_start <= fu.completed_on <= fu.window_end
        if not inside and not include_out_of_window:
            continue
        proc = selected[fu.procedure_id]
        if proc.pk not in orders:
            codes = [tp["code"] for tp in proc.protocol.get("timepoints", [])]
            orders[proc.pk] = {code: i for i, code in enumerate(codes)}
        treated = sorted(proc.levels.all(), key=lambda t: VertebralLevel.parse(t.level).rank)
        diag = latest_diagnosis.get(proc.patient_id)
        n = number[proc.pk]
        study_id = proc.patient.study_id
        records.append(
            {
                "patient_id": study_id if n == 1 else f"{study_id}/{n}",
                "timepoint": fu.timepoint,
                "vas": float(fu.vas),
                "procedure_date": proc.performed_on,
                "diagnosis": diag.kind if diag else None,
                "primary_tumour": diag.primary_tumour if diag else None,
                "procedure_type": proc.procedure_type,
                "levels": ";".join(t.level for t in treated),
                "approaches": ";".join(dict.fromkeys(t.approach for t in treated)),
                "completed_on": fu.completed_on,
                "days_after_procedure": (fu.completed_on - proc.performed_on).days,
                "analgesic_use": fu.analgesic_use,
                "entered_via": fu.entered_via,
                "study_id": study_id,
                "procedure_number": n,
                "in_window": inside,
                "_sort": (study_id, n, orders[proc.pk].get(fu.timepoint, 1_000)),
            }
        )
    records.sort(key=lambda r: r.pop("_sort"))
    frame = pd.DataFrame.from_records(records, columns=list(COHORT_COLUMNS))
    frame["vas"] = frame["vas"].astype("float64")
    frame["days_after_procedure"] = frame["days_after_procedure"].astype("int64")
    frame["procedure_number"] = frame["procedure_number"].astype("int64")
    frame["in_window"] = frame["in_window"].astype("bool")
    return frame


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`import_cohort` wrote; ``str()`` is the one-line summary for the CLI."""

    path: Path
    patients: int
    procedures: int
    follow_ups: int  # completed follow-ups (one per VAS value in the file)
    scheduled: int  # follow-up visits created (completed or not)

    def __str__(self) -> str:
        return (
            f"imported {self.patients} patients, {self.procedures} procedures, "
            f"{self.follow_ups} follow-ups"
        )


def import_cohort(
    path: Path | str,
    *,
    protocol: FollowUpProtocol = DEFAULT_PROTOCOL,
    procedure_date: dt.date | None = None,
) -> ImportSummary:
    """Import a long-format cohort file (``patient_id,timepoint,vas`` [``procedure_date``]).

    The whole file is validated first (:func:`spinewatch.outcomes.cohort_file.read_cohort_csv`),
    then, in ONE transaction, each ``patient_id`` becomes a pseudonymous Patient (study id =
    patient_id, no identity), one vertebroplasty Procedure dated by the file's ``procedure_date``
    column, else the ``procedure_date`` argument, else today -- with no treated levels, since the
    file does not say which were treated (``recorded_via="import"``) -- and its follow-up schedule
    from ``protocol``, written by the bulk path (``services.bulk.import_patients``: a
    multi-row INSERT per table, the same audit events). Each VAS completes its visit, dated
    (nominally) on the visit's due date,
    ``entered_via="import"``. A patient_id already in the registry raises RegistryError naming
    the file, line and value, and nothing is written.
    """
    from spinewatch.outcomes.cohort_file import read_cohort_csv

    path = Path(path)
    if not isinstance(protocol, FollowUpProtocol):
        raise RegistryError(f"protocol {protocol!r}: expected a FollowUpProtocol")
    default_date = check_date("procedure_date", procedure_date, allow_none=True, not_future=True)
    frame = read_cohort_csv(path, protocol=protocol)

    patients: dict[str, dict[str, Any]] = {}
    has_dates = "procedure_date" in frame.columns
    for row in frame.itertuples(index=False):
        pid = str(row.patient_id)
        line = int(row.line)
        entry = patients.setdefault(pid, {"line": line, "date": None, "date_line": None, "vas": []})
        if has_dates and row.procedure_date is not None and not pd.isna(row.procedure_date):
            entry["date"], entry["date_line"] = row.procedure_date, line
        entry["vas"].append((str(row.timepoint), float(row.vas)))
    for pid, entry in patients.items():
        if not STUDY_ID_PATTERN.fullmatch(pid):
            raise RegistryError(
                f'{path}, line {entry["line"]}, column "patient_id": {pid!r} cannot be a study id; '
                "expected 1-64 letters, digits, '.', '_' or '-'"
            )
        when = entry["date"]
        if when is not None and (not isinstance(when, dt.date) or when > today()):
            raise RegistryError(
                f'{path}, line {entry["date_line"]}, column "procedure_date": {when!r} is in the '
                f"future or not a date; expected a past ISO date YYYY-MM-DD"
            )
        entry["date"] = when or default_date or today()

    unknown = {code for e in patients.values() for code, _ in e["vas"]} - set(protocol.codes)
    if unknown:  # read_cohort_csv validated them; never silently drop a value
        raise RegistryError(f"{path}: time points {sorted(unknown)} not in the protocol")
    existing = (
        m.Patient.objects.filter(study_id__in=list(patients))
        .values_list("study_id", flat=True)
        .first()
    )
    if existing is not None:
        raise RegistryError(
            f'{path}, line {patients[existing]["line"]}, column "patient_id": patient '
            f"{existing!r} is already in the registry; nothing was imported"
        )
    written = import_patients(
        [
            BulkPatient(
                study_id=pid,
                procedures=[
                    BulkProcedure(
                        performed_on=entry["date"],
                        procedure_type=ProcedureType.VERTEBROPLASTY,
                        vas=dict(entry["vas"]),
                        protocol=protocol,
                        recorded_via=RecordedVia.IMPORT.value,
                        fields={"notes": f"imported from {path.name}"},
                    )
                ],
            )
            for pid, entry in patients.items()
        ]
    )
    return ImportSummary(
        path=path,
        patients=written.patients,
        procedures=written.procedures,
        follow_ups=written.completed,
        scheduled=written.follow_ups,
    )
