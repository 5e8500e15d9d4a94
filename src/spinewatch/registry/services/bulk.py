"""The bulk write path: thousands of patients in one transaction, with the same audit events.

:func:`import_patients` writes what :func:`~spinewatch.registry.services.create_patient`,
:func:`~spinewatch.registry.services.add_diagnosis` and a procedure with its follow-up schedule
would write one patient at a time -- the same rows, validated by the same core rules, and one
``create`` audit event per row with the same ``changes`` -- but table by table: one multi-row
INSERT per table and per 500 rows (:func:`~spinewatch.registry.services._base.created_many`) and
the audit events appended in batches under one lock (:func:`spinewatch.audit.trail.record_many`).
The chain it writes is an ordinary chain: ``spinewatch audit verify`` checks it like any other.

All or nothing: every record is checked before the first write, and the whole import is one
transaction. Hospital numbers are checked against each other and against the registry with one
query per 1,000; generated study ids come from the counter in one step (:func:`take_study_ids`).

Used by the cohort-file import (``spinewatch import cohort``) and by the registry benchmark's
generator (``make bench-registry``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from spinewatch.core.diagnoses import Diagnosis as CoreDiagnosis
from spinewatch.core.procedures import ProcedureType, TreatedLevel
from spinewatch.core.protocol import DEFAULT_PROTOCOL, FollowUpProtocol
from spinewatch.registry import models as m
from spinewatch.registry.choices import EnteredVia, RecordedVia
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import check_date, inserted_rows, parse_field, today
from spinewatch.registry.services.patients import (
    IdentityData,
    _check_user,
    _identity_values,
    note_study_ids,
    take_study_ids,
    validate_study_id,
)
from spinewatch.registry.services.procedures import (
    _check_parts,
    _visit_code,
    treated_level_values,
)

__all__ = ["BulkPatient", "BulkProcedure", "BulkSummary", "import_patients"]

_CHUNK = 1000
_RECORDED_VIA = frozenset(RecordedVia.values)


@dataclass(frozen=True)
class BulkProcedure:
    """Input schema of one performed procedure of a bulk import.

    ``vas``: time point code -> VAS 0-10, each completing its visit (nominally on its due date,
    ``entered_via="import"``). ``levels`` may be empty only when ``recorded_via="import"`` (a
    cohort file does not say which levels were treated). ``fields``: further Procedure columns
    (``guidance``, ``anaesthesia``, ``day_case``, ``operator``, ``notes``, ...), validated by
    the model's field checks.
    """

    performed_on: dt.date
    procedure_type: ProcedureType | str = ProcedureType.VERTEBROPLASTY
    levels: Sequence[TreatedLevel] = ()
    vas: Mapping[str, float] = field(default_factory=dict)
    protocol: FollowUpProtocol = DEFAULT_PROTOCOL
    recorded_via: str = RecordedVia.IMPORT.value
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BulkPatient:
    """Input schema of one patient of a bulk import: a study id (generated when None), an
    identity (None: pseudonymous), at most one diagnosis (``(kind, primary_tumour)``, dated
    ``diagnosed_on``), its procedures and its case manager (a saved user, or None)."""

    study_id: str | None = None
    identity: IdentityData | None = None
    diagnosis: tuple[str, str | None] | None = None
    diagnosed_on: dt.date | None = None
    procedures: Sequence[BulkProcedure] = ()
    case_manager: Any = None


@dataclass(frozen=True)
class BulkSummary:
    """What :func:`import_patients` wrote (row counts per table)."""

    patients: int
    identities: int
    diagnoses: int
    procedures: int
    treated_levels: int
    follow_ups: int  # visits created
    completed: int  # of which completed with a VAS


def _where(i: int, label: str | None) -> str:
    return f"patients[{i}]" + (f" ({label})" if label else "")


def _check_procedure(
    where: str, proc: BulkProcedure, today_is: dt.date
) -> tuple[ProcedureType, list[TreatedLevel]]:
    if not isinstance(proc, BulkProcedure):
        raise RegistryError(f"{where}: {proc!r} is not a BulkProcedure")
    kind = parse_field(f"{where}.procedure_type", ProcedureType.parse, proc.procedure_type)
    check_date(f"{where}.performed_on", proc.performed_on, not_future=True, today_is=today_is)
    if proc.recorded_via not in _RECORDED_VIA:
        raise RegistryError(
            f"{where}.recorded_via {proc.recorded_via!r}: expected one of "
            f"{', '.join(RecordedVia.values)}"
        )
    try:
        levels, _site, _disc = _check_parts(
            kind,
            proc.levels,
            proc.fields.get("cementoplasty_site"),
            proc.fields.get("disc_level"),
            levels_required=proc.recorded_via != RecordedVia.IMPORT.value,
        )
    except RegistryError as exc:
        raise RegistryError(f"{where}: {exc}") from exc
    unknown = set(proc.vas) - set(proc.protocol.codes)
    if unknown:
        raise RegistryError(
            f"{where}.vas: time points {sorted(unknown)} are not in protocol "
            f"{proc.protocol.name!r} ({', '.join(proc.protocol.codes)})"
        )
    for code, value in proc.vas.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10:
            raise RegistryError(f"{where}.vas[{code!r}] {value!r}: expected a VAS from 0 to 10")
    return kind, levels


def _check_numbers_free(records: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Hospital numbers: unique within the import and not yet in the registry."""
    first: dict[str, int] = {}
    for i, values in records:
        key = values["hospital_number_key"]
        if key in first:
            raise RegistryError(
                f"{_where(i, None)}: hospital_number {values['hospital_number']!r} is also the "
                f"number of patients[{first[key]}]: one number, one patient"
            )
        first[key] = i
    keys = list(first)
    for start in range(0, len(keys), _CHUNK):
        taken = (
            m.PatientIdentity.objects.filter(hospital_number_key__in=keys[start : start + _CHUNK])
            .values_list("hospital_number_key", "patient__study_id")
            .first()
        )
        if taken is not None:
            raise RegistryError(
                f"{_where(first[taken[0]], None)}: hospital_number key {taken[0]!r} is already "
                f"the number of patient {taken[1]}: one number, one patient; nothing was imported"
            )


def _check_study_ids_free(given: Mapping[str, int]) -> None:
    ids = list(given)
    for start in range(0, len(ids), _CHUNK):
        taken = (
            m.Patient.objects.filter(study_id__in=ids[start : start + _CHUNK])
            .values_list("study_id", flat=True)
            .first()
        )
        if taken is not None:
            raise RegistryError(
                f"{_where(given[taken], taken)}: patient {taken!r} is already in the registry; "
                "nothing was imported"
            )


def import_patients(patients: Sequence[BulkPatient]) -> BulkSummary:
    """Write ``patients`` (see the module docstring); return the counts. RegistryError naming
    the record (``patients[12] (SW-000013)``), field and value when one is refused -- and then
    nothing is written."""
    if isinstance(patients, (str, bytes)) or not isinstance(patients, Sequence):
        raise RegistryError(f"patients {patients!r}: expected a list of BulkPatient")
    today_is = today()
    identities: list[tuple[int, dict[str, Any]]] = []
    given: dict[str, int] = {}
    checked: list[list[tuple[BulkProcedure, ProcedureType, list[TreatedLevel]]]] = []
    diagnoses: list[CoreDiagnosis | None] = []
    for i, record in enumerate(patients):
        if not isinstance(record, BulkPatient):
            raise RegistryError(f"{_where(i, None)}: {record!r} is not a BulkPatient")
        where = _where(i, record.study_id)
        if record.case_manager is not None:
            _check_user(f"{where}.case_manager", record.case_manager)
        if record.study_id is not None:
            study_id = validate_study_id(record.study_id)
            if study_id in given:
                raise RegistryError(
                    f"{where}: study_id {study_id!r} is also patients[{given[study_id]}]"
                )
            given[study_id] = i
        if record.identity is not None:
            try:
                identities.append((i, _identity_values(record.identity, today_is=today_is)))
            except RegistryError as exc:
                raise RegistryError(f"{where}: {exc}") from exc
        diagnosis = None
        if record.diagnosis is not None:
            kind, primary = record.diagnosis
            diagnosis = parse_field(
                f"{where}.diagnosis", lambda pair: CoreDiagnosis.parse(*pair), (kind, primary)
            )
            check_date(
                f"{where}.diagnosed_on",
                record.diagnosed_on,
                allow_none=True,
                not_future=True,
                today_is=today_is,
            )
        diagnoses.append(diagnosis)
        checked.append(
            [
                (proc, *_check_procedure(f"{where}.procedures[{j}]", proc, today_is))
                for j, proc in enumerate(record.procedures)
            ]
        )

    with transaction.atomic():
        _check_study_ids_free(given)
        _check_numbers_free(identities)
        note_study_ids(given)
        generated = iter(take_study_ids(sum(r.study_id is None for r in patients)))
        study_ids = [r.study_id or next(generated) for r in patients]
        patient_ids = inserted_rows(
            m.Patient,
            [
                {"study_id": study_id, "case_manager_id": getattr(r.case_manager, "pk", None)}
                for study_id, r in zip(study_ids, patients, strict=True)
            ],
            study_ids,
        )
        inserted_rows(
            m.PatientIdentity,
            [{"patient_id": patient_ids[i], **values} for i, values in identities],
            [study_ids[i] for i, _values in identities],
        )
        diagnosed = [(i, d) for i, d in enumerate(diagnoses) if d is not None]
        inserted_rows(
            m.Diagnosis,
            [
                {
                    "patient_id": patient_ids[i],
                    "kind": d.kind.value,
                    "primary_tumour": d.primary.value if d.primary else None,
                    "diagnosed_on": patients[i].diagnosed_on,
                }
                for i, d in diagnosed
            ],
            [study_ids[i] for i, _d in diagnosed],
        )
        protocols: dict[int, dict[str, Any]] = {}
        owners = [i for i, procs in enumerate(checked) for _ in procs]
        flat = [item for procs in checked for item in procs]
        procedure_ids = inserted_rows(
            m.Procedure,
            [
                {
                    "patient_id": patient_ids[i],
                    "performed_on": proc.performed_on,
                    "procedure_type": kind.value,
                    "protocol": protocols.setdefault(id(proc.protocol), proc.protocol.to_dict()),
                    "recorded_via": proc.recorded_via,
                    **proc.fields,
                }
                for i, (proc, kind, _levels) in zip(owners, flat, strict=True)
            ],
            [study_ids[i] for i in owners],
        )
        levels = [
            (i, {"procedure_id": pk, **treated_level_values(t)})
            for i, pk, (_proc, _kind, treated) in zip(owners, procedure_ids, flat, strict=True)
            for t in treated
        ]
        inserted_rows(
            m.TreatedLevel, [row for _i, row in levels], [study_ids[i] for i, _row in levels]
        )
        visits: list[dict[str, Any]] = []
        visit_owners: list[str] = []
        for i, pk, (proc, _kind, _levels) in zip(owners, procedure_ids, flat, strict=True):
            for visit in proc.protocol.schedule(proc.performed_on):
                code = _visit_code(visit)
                vas = proc.vas.get(code)
                visits.append(
                    {
                        "procedure_id": pk,
                        "timepoint": code,
                        "due_date": visit.due,
                        "window_start": visit.window_start,
                        "window_end": visit.window_end,
                        "completed_on": visit.due if vas is not None else None,
                        "vas": None if vas is None else float(vas),
                        "entered_via": EnteredVia.IMPORT.value if vas is not None else None,
                    }
                )
                visit_owners.append(study_ids[i])
        inserted_rows(m.FollowUp, visits, visit_owners)
    return BulkSummary(
        patients=len(patient_ids),
        identities=len(identities),
        diagnoses=len(diagnosed),
        procedures=len(procedure_ids),
        treated_levels=len(levels),
        follow_ups=len(visits),
        completed=sum(v["vas"] is not None for v in visits),
    )
