"""The registry to REDCap and back: :func:`export_redcap` and :func:`import_redcap`.

The file formats are :mod:`spinewatch.outcomes.redcap`'s. Export reads every performed, not
voided procedure of a not voided patient (one REDCap record per treatment series) with its
completed follow-ups (VAS recorded; in or out of their window: the day offset says which);
de-identified by default (:mod:`spinewatch.registry.deid`'s rules: study ids, age at the index
procedure top-coded at 90, days instead of dates).

Import writes a records file into the registry, all or nothing (one transaction): each series
becomes a procedure (``recorded_via="import"``) of its patient (created, pseudonymous, when the
study id is new), dated ``index_date + procedure_day``; each pain value completes its visit on
``procedure date + visit_day``, so a value taken outside its window stays outside it. A
de-identified file has no birth date: the age and sex it carries are kept on an identity whose
birth date is nominal (``index date - age`` years, so the age at the index procedure is the
exported one) and whose names say it was imported. The outcome table of the imported registry is
the exported registry's (``tests/registry/test_redcap.py``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from spinewatch.core.identifiers import hospital_number_key
from spinewatch.core.levels import VertebralLevel
from spinewatch.core.procedures import ProcedureType
from spinewatch.core.protocol import DEFAULT_PROTOCOL, FollowUpProtocol
from spinewatch.outcomes.redcap import PainRecord, SeriesRecord, read_records, write_project
from spinewatch.registry import models as m
from spinewatch.registry.choices import EnteredVia, RecordedVia
from spinewatch.registry.deid import _identity, age_at, index_dates
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import changed, check_date, created, today
from spinewatch.registry.services.procedures import create_procedure_row

__all__ = ["RedcapImportSummary", "export_redcap", "import_redcap", "redcap_series"]

IMPORTED_NAME = "(imported from REDCap)"


def redcap_series(*, identifiable: bool = False) -> list[SeriesRecord]:
    """The registry's treatment series as REDCap records (see the module docstring)."""
    procedures = list(
        m.Procedure.objects.filter(
            voided_at__isnull=True, patient__voided_at__isnull=True, status="performed"
        )
        .select_related("patient", "patient__identity")
        .prefetch_related("levels", "follow_ups")
        .order_by("patient__study_id", "performed_on", "pk")
    )
    patient_ids = {p.patient_id for p in procedures}
    firsts = index_dates(patient_ids)
    latest: dict[int, m.Diagnosis] = {}
    for d in m.Diagnosis.objects.filter(patient_id__in=patient_ids).order_by(
        "patient_id", "diagnosed_on", "pk"
    ):
        latest[d.patient_id] = d
    number: dict[int, int] = defaultdict(int)
    out: list[SeriesRecord] = []
    for proc in procedures:
        number[proc.patient_id] += 1
        n = number[proc.patient_id]
        index = firsts[proc.patient_id]
        identity = _identity(proc.patient)
        diagnosis = latest.get(proc.patient_id)
        treated = sorted(proc.levels.all(), key=lambda t: VertebralLevel.parse(t.level).rank)
        pains = tuple(
            PainRecord(
                timepoint=fu.timepoint,
                visit_day=(fu.completed_on - proc.performed_on).days,
                vas=float(fu.vas),
                analgesic_use=fu.analgesic_use,
                visit_date=fu.completed_on.isoformat() if identifiable else None,
            )
            for fu in sorted(proc.follow_ups.all(), key=lambda f: (f.due_date, f.pk))
            if fu.voided_at is None and fu.vas is not None and fu.completed_on is not None
        )
        ident: dict[str, str] = {}
        if identifiable:
            ident["procedure_date"] = proc.performed_on.isoformat()
            if identity is not None:
                ident.update(
                    family_name=identity.family_name,
                    given_name=identity.given_name,
                    hospital_number=identity.hospital_number,
                )
                if identity.birth_date is not None:
                    ident["birth_date"] = identity.birth_date.isoformat()
        out.append(
            SeriesRecord(
                record_id=f"{proc.patient.study_id}_{n}",
                study_id=proc.patient.study_id,
                procedure_number=n,
                procedure_day=(proc.performed_on - index).days,
                procedure_type=proc.procedure_type,
                age_years=age_at(identity.birth_date if identity else None, index),
                sex=identity.sex if identity else None,
                diagnosis=diagnosis.kind if diagnosis else None,
                primary_tumour=diagnosis.primary_tumour if diagnosis else None,
                levels=tuple(t.level for t in treated),
                approaches=tuple(t.approach for t in treated),
                needle_gauges=tuple(t.needle_gauge for t in treated),
                cement_volumes_ml=tuple(t.cement_volume_ml for t in treated),
                pains=pains,
                identity=ident,
            )
        )
    return out


def export_redcap(
    directory: Path | str,
    *,
    identifiable: bool = False,
    protocol: FollowUpProtocol = DEFAULT_PROTOCOL,
) -> dict[str, Path]:
    """Write the REDCap project files of the registry into ``directory``; returns their paths."""
    series = redcap_series(identifiable=identifiable)
    return write_project(directory, series, protocol=protocol, identifiable=identifiable)


@dataclass(frozen=True)
class RedcapImportSummary:
    """What :func:`import_redcap` wrote; ``str()`` is the CLI's line."""

    path: Path
    patients: int
    procedures: int
    follow_ups: int

    def __str__(self) -> str:
        return (
            f"imported {self.patients} patients, {self.procedures} procedures, "
            f"{self.follow_ups} pain values from {self.path}"
        )


def _nominal_birth_date(index: dt.date, age: int) -> dt.date:
    try:
        return index.replace(year=index.year - age)
    except ValueError:  # 29 February
        return index.replace(year=index.year - age, day=28)


def import_redcap(
    path: Path | str,
    *,
    index_date: dt.date | None = None,
    protocol: FollowUpProtocol = DEFAULT_PROTOCOL,
) -> RedcapImportSummary:
    """Import a REDCap records file (see the module docstring); all or nothing.

    ``index_date`` anchors the day offsets (default: today minus the largest offset, so that
    every date is in the past). A series whose study id and procedure number already exist
    in the registry raises RegistryError naming the record, and nothing is written.
    """
    path = Path(path)
    series = read_records(path, protocol=protocol)
    longest = max(s.procedure_day + max((p.visit_day for p in s.pains), default=0) for s in series)
    anchor = check_date("index_date", index_date, allow_none=True, not_future=True)
    if anchor is None:
        anchor = today() - dt.timedelta(days=longest)
    if anchor + dt.timedelta(days=longest) > today():
        raise RegistryError(
            f"index_date {anchor.isoformat()}: the file's day offsets (up to {longest} days) "
            "would put visits in the future; expected an earlier index date"
        )
    by_patient: dict[str, list[SeriesRecord]] = defaultdict(list)
    for s in series:
        by_patient[s.study_id].append(s)
    n_follow_ups = 0
    with transaction.atomic():
        existing = {p.study_id: p for p in m.Patient.objects.filter(study_id__in=list(by_patient))}
        for study_id, items in by_patient.items():
            patient = existing.get(study_id)
            if patient is not None and patient.procedures.exists():
                raise RegistryError(
                    f"{path}: record {items[0].record_id!r}: patient {study_id!r} already has "
                    "procedures in the registry; nothing was imported"
                )
            if patient is None:
                patient = created(m.Patient(study_id=study_id))
            first = min(items, key=lambda s: (s.procedure_day, s.procedure_number))
            index = anchor + dt.timedelta(days=first.procedure_day)
            if first.age_years is not None or first.sex is not None:
                values: dict[str, Any] = {
                    "family_name": IMPORTED_NAME,
                    "given_name": study_id,
                    "hospital_number": f"REDCAP-{study_id}",
                    "hospital_number_key": hospital_number_key(f"REDCAP-{study_id}"),
                    "birth_date": None
                    if first.age_years is None
                    else _nominal_birth_date(index, first.age_years),
                    "sex": first.sex or "unknown",
                }
                created(m.PatientIdentity(patient=patient, **values))
            if first.diagnosis is not None:
                created(
                    m.Diagnosis(
                        patient=patient,
                        kind=first.diagnosis,
                        primary_tumour=first.primary_tumour,
                    )
                )
            for s in sorted(items, key=lambda s: s.procedure_number):
                n_follow_ups += _import_series(s, patient, anchor, protocol, path)
    return RedcapImportSummary(
        path=path, patients=len(by_patient), procedures=len(series), follow_ups=n_follow_ups
    )


def _import_series(
    s: SeriesRecord,
    patient: m.Patient,
    anchor: dt.date,
    protocol: FollowUpProtocol,
    path: Path,
) -> int:
    performed_on = anchor + dt.timedelta(days=s.procedure_day)
    procedure = create_procedure_row(
        patient=patient,
        performed_on=performed_on,
        procedure_type=ProcedureType.parse(s.procedure_type),
        protocol=protocol,
        recorded_via=RecordedVia.IMPORT.value,
        notes=f"imported from REDCap ({path.name}, record {s.record_id})",
    )
    for i, level in enumerate(s.levels):
        created(
            m.TreatedLevel(
                procedure=procedure,
                level=str(VertebralLevel.parse(level)),
                approach=s.approaches[i],
                needle_gauge=s.needle_gauges[i],
                cement_volume_ml=s.cement_volumes_ml[i],
            )
        )
    visits = {fu.timepoint: fu for fu in procedure.follow_ups.all()}
    for pain in s.pains:
        visit = visits.get(pain.timepoint)
        if visit is None:  # pragma: no cover - read_records maps events to protocol codes
            raise RegistryError(f"{path}: record {s.record_id!r}: no visit {pain.timepoint!r}")
        completed_on = performed_on + dt.timedelta(days=pain.visit_day)
        if completed_on > today():
            raise RegistryError(
                f"{path}: record {s.record_id!r}, visit {pain.timepoint!r}: visit_day "
                f"{pain.visit_day} falls after today; expected a past visit"
            )
        changed(
            visit,
            what=f"visit {pain.timepoint} of record {s.record_id}",
            changes={
                "completed_on": completed_on,
                "vas": pain.vas,
                "analgesic_use": pain.analgesic_use,
                "entered_via": EnteredVia.IMPORT.value,
            },
            expected_version=visit.version,
        )
    return len(s.pains)
