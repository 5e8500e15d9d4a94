"""Procedures: one treatment session, its levels, leakages, complications and follow-up schedule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from spinewatch.core.complications import ComplicationClass
from spinewatch.core.errors import InputError
from spinewatch.core.leakage import CementLeakage
from spinewatch.core.levels import VertebralLevel
from spinewatch.core.procedures import (
    Anaesthesia,
    CementoplastySite,
    CementType,
    DiscLevel,
    Guidance,
    ProcedureType,
    TreatedLevel,
    cement_volume_warning,
    validate_procedure,
)
from spinewatch.core.protocol import DEFAULT_PROTOCOL, FollowUpProtocol
from spinewatch.registry import models as m
from spinewatch.registry.choices import Decision, EnteredVia, ProcedureStatus, RecordedVia
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import (
    UNCHANGED,
    Unchanged,
    changed,
    check_date,
    created,
    created_many,
    deleted,
    get,
    parse_field,
)
from spinewatch.registry.services.patients import _check_user
from spinewatch.registry.services.surveillance import advance_plan

__all__ = [
    "ComplicationRecord",
    "LeakageRecord",
    "ProcedureWarnings",
    "plan_procedure",
    "procedure_protocol",
    "procedure_warnings",
    "record_procedure",
    "update_procedure",
]


class ProcedureWarnings(RegistryError):
    """Values that are possible but unusual (a second session at the same level on the same day,
    a cement volume unusual for the level): refused until the person confirms them.
    ``warnings`` lists them, one sentence each."""

    def __init__(self, warnings: Sequence[str]) -> None:
        self.warnings = tuple(warnings)
        super().__init__("please confirm: " + "; ".join(self.warnings))


@dataclass(frozen=True)
class LeakageRecord:
    """A cement leakage and, when known, the treated level it came from."""

    leakage: CementLeakage
    level: VertebralLevel | str | None = None


@dataclass(frozen=True)
class ComplicationRecord:
    """A complication: SIR class (``"A"``..``"F"`` or the enum), description, date when known."""

    sir_class: ComplicationClass | str
    description: str = ""
    occurred_on: dt.date | None = None


def procedure_protocol(procedure: m.Procedure) -> FollowUpProtocol:
    """The follow-up protocol stored with ``procedure`` (not today's programme protocol)."""
    return FollowUpProtocol.from_dict(procedure.protocol)


def _visit_code(visit: Any) -> str:
    timepoint = visit.timepoint
    return timepoint if isinstance(timepoint, str) else str(timepoint.code)


def _check_parts(
    procedure_type: ProcedureType,
    levels: Sequence[TreatedLevel],
    site: object,
    disc: object,
    *,
    levels_required: bool,
) -> tuple[list[TreatedLevel], CementoplastySite | None, DiscLevel | None]:
    """The core's rules for a procedure's parts (``core.procedures.validate_procedure``).

    ``levels_required=False`` (an imported cohort) lets a vertebral procedure have no level.
    """
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence):
        raise RegistryError(
            f"levels {levels!r}: expected a list of core TreatedLevel", field="levels"
        )
    for i, item in enumerate(levels):
        if not isinstance(item, TreatedLevel):
            raise RegistryError(
                f"levels[{i}] {item!r}: expected a core TreatedLevel", field=f"levels[{i}]"
            )
    parsed_site = (
        None if site is None else parse_field("cementoplasty_site", CementoplastySite.parse, site)
    )
    parsed_disc = None if disc is None else parse_field("disc_level", DiscLevel.parse, disc)
    if levels or levels_required or not procedure_type.treats_vertebrae:
        try:
            validate_procedure(
                procedure_type, treated_levels=levels, site=parsed_site, disc=parsed_disc
            )
        except InputError as exc:
            raise RegistryError(f"procedure: {exc}", field=_service_field(exc.field)) from exc
    return list(levels), parsed_site, parsed_disc


def _service_field(core_field: str | None) -> str | None:
    """The service's name of a ``validate_procedure`` argument path (``treated_levels[1].x``
    -> ``levels[1].x``, ``site`` -> ``cementoplasty_site``, ``disc`` -> ``disc_level``)."""
    if core_field is None:
        return None
    head, sep, tail = core_field.partition("[")
    if head == "treated_levels":
        return "levels" + sep + tail
    names = {"site": "cementoplasty_site", "disc": "disc_level"}
    return names.get(core_field, core_field)


def _check_leakages(
    leakages: Sequence[CementLeakage | LeakageRecord], levels: Sequence[TreatedLevel]
) -> list[LeakageRecord]:
    if isinstance(leakages, (str, bytes)) or not isinstance(leakages, Sequence):
        raise RegistryError(f"leakages {leakages!r}: expected a list", field="leakages")
    treated = {t.level for t in levels}
    out = []
    for i, item in enumerate(leakages):
        record = LeakageRecord(item) if isinstance(item, CementLeakage) else item
        if not isinstance(record, LeakageRecord) or not isinstance(record.leakage, CementLeakage):
            raise RegistryError(
                f"leakages[{i}] {item!r}: expected a core CementLeakage", field=f"leakages[{i}]"
            )
        if record.level is not None:
            level = parse_field(f"leakages[{i}].level", VertebralLevel.parse, record.level)
            if level not in treated:
                raise RegistryError(
                    f"leakages[{i}].level {level}: not a treated level of this procedure "
                    f"(treated: {', '.join(sorted(str(t) for t in treated)) or 'none'})",
                    field=f"leakages[{i}].level",
                )
            record = LeakageRecord(record.leakage, level)
        out.append(record)
    return out


def _check_complications(
    complications: Sequence[ComplicationRecord], performed_on: dt.date
) -> list[tuple[ComplicationClass, str, dt.date | None]]:
    if isinstance(complications, (str, bytes)) or not isinstance(complications, Sequence):
        raise RegistryError(
            f"complications {complications!r}: expected a list", field="complications"
        )
    out = []
    for i, item in enumerate(complications):
        if not isinstance(item, ComplicationRecord):
            raise RegistryError(
                f"complications[{i}] {item!r}: expected a ComplicationRecord",
                field=f"complications[{i}]",
            )
        sir = parse_field(f"complications[{i}].sir_class", ComplicationClass.parse, item.sir_class)
        when = check_date(
            f"complications[{i}].occurred_on", item.occurred_on, allow_none=True, not_future=True
        )
        if when is not None and when < performed_on:
            raise RegistryError(
                f"complications[{i}].occurred_on {when.isoformat()} is before the procedure "
                f"({performed_on.isoformat()})",
                field=f"complications[{i}].occurred_on",
            )
        if not isinstance(item.description, str):
            raise RegistryError(
                f"complications[{i}].description {item.description!r}: expected text",
                field=f"complications[{i}].description",
            )
        out.append((sir, item.description.strip(), when))
    return out


def treated_level_values(t: TreatedLevel) -> dict[str, Any]:
    """The column values of one checked treated level (but its procedure)."""
    return {
        "level": str(t.level),
        "approach": t.approach.value,
        "needle_gauge": t.needle_gauge,
        "cement_volume_ml": float(t.cement_volume_ml),
        "ablation_modality": t.ablation.value if t.ablation is not None else None,
        "ablation_power_w": t.ablation_power_w,
        "ablation_duration_s": t.ablation_duration_s,
        "access": t.access.value if t.access is not None else None,
        "biopsy": t.biopsy,
        "biopsy_result": t.biopsy_result.value if t.biopsy_result is not None else None,
    }


def treated_level_row(procedure: m.Procedure, t: TreatedLevel) -> m.TreatedLevel:
    """The (unsaved) row of one checked treated level of ``procedure``."""
    return m.TreatedLevel(procedure=procedure, **treated_level_values(t))


def _write_children(
    procedure: m.Procedure,
    levels: Sequence[TreatedLevel],
    leakages: Sequence[LeakageRecord],
) -> None:
    rows = created_many([treated_level_row(procedure, t) for t in levels])
    by_level: dict[VertebralLevel, m.TreatedLevel] = {
        t.level: row for t, row in zip(levels, rows, strict=True)
    }
    created_many(
        [
            m.CementLeakage(
                procedure=procedure,
                treated_level=by_level[record.level] if record.level is not None else None,  # type: ignore[index]
                leakage_type=record.leakage.type.value,
                site=record.leakage.site.value,
                symptomatic=bool(record.leakage.symptomatic),
            )
            for record in leakages
        ]
    )


def _write_complications(
    procedure: m.Procedure, complications: Sequence[tuple[ComplicationClass, str, dt.date | None]]
) -> None:
    created_many(
        [
            m.Complication(
                procedure=procedure, sir_class=sir.value, description=description, occurred_on=when
            )
            for sir, description, when in complications
        ]
    )


def _check_text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise RegistryError(f"{field} {value!r}: expected text", field=field)
    return value.strip()


def _check_day_case(value: object) -> bool:
    if not isinstance(value, bool):
        raise RegistryError(f"day_case {value!r}: expected True or False", field="day_case")
    return value


def _schedule(
    procedure: m.Procedure,
    protocol: FollowUpProtocol,
    imported_vas: Mapping[str, float] | None = None,
    *,
    baseline_only: bool = False,
    new: bool = False,
) -> int:
    """Create the visits of ``protocol`` not created yet (only the baseline for a planned
    procedure); those in ``imported_vas`` are created completed (nominally on their due date,
    ``entered_via="import"``). ``new``: the procedure was just created (no visits to read).
    Returns the number created."""
    imported_vas = imported_vas or {}
    existing = set() if new else set(procedure.follow_ups.values_list("timepoint", flat=True))
    rows = []
    for visit in protocol.schedule(procedure.performed_on):
        code = _visit_code(visit)
        if code in existing or (baseline_only and not visit.timepoint.baseline):
            continue
        vas = imported_vas.get(code)
        rows.append(
            m.FollowUp(
                procedure=procedure,
                timepoint=code,
                due_date=visit.due,
                window_start=visit.window_start,
                window_end=visit.window_end,
                completed_on=visit.due if vas is not None else None,
                vas=vas,
                entered_via=EnteredVia.IMPORT.value if vas is not None else None,
            )
        )
    return len(created_many(rows))


def create_procedure_row(
    *,
    patient: m.Patient,
    performed_on: dt.date,
    procedure_type: ProcedureType,
    protocol: FollowUpProtocol,
    recorded_via: str,
    imported_vas: Mapping[str, float] | None = None,
    **fields: Any,
) -> m.Procedure:
    """INSERT a procedure and its follow-up schedule (internal: callers validated the input).

    ``imported_vas`` (time point code -> VAS) completes those visits at creation (cohort import).
    """
    procedure = created(
        m.Procedure(
            patient=patient,
            performed_on=performed_on,
            procedure_type=procedure_type.value,
            protocol=protocol.to_dict(),
            recorded_via=recorded_via,
            **fields,
        )
    )
    _schedule(procedure, protocol, imported_vas, new=True)
    return procedure


def _check_optional_number(field: str, value: object, unit: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e6:
        raise RegistryError(
            f"{field} {value!r}: expected a number of {unit} >= 0, or nothing", field=field
        )
    return float(value)


def _session_fields(
    *,
    guidance: object,
    anaesthesia: object,
    day_case: object,
    cementoplasty_site: CementoplastySite | None,
    disc_level: DiscLevel | None,
    operator: str,
    operator_user: Any,
    notes: object,
    cement_type: object,
    fluoroscopy_time_s: object,
    dose_area_product_gycm2: object,
) -> dict[str, Any]:
    user = _check_user("operator_user", operator_user)
    name = _check_text("operator", operator)
    if not name and user is not None:
        name = user.get_full_name() or user.get_username()
    if not name:
        raise RegistryError(
            "operator '': the operator's name (or operator_user) is required", field="operator"
        )
    return {
        "guidance": parse_field("guidance", Guidance.parse, guidance).value,
        "anaesthesia": parse_field("anaesthesia", Anaesthesia.parse, anaesthesia).value,
        "day_case": _check_day_case(day_case),
        "cementoplasty_site": cementoplasty_site.value if cementoplasty_site else None,
        "disc_level": str(disc_level) if disc_level is not None else None,
        "operator": name,
        "operator_user": user,
        "notes": _check_text("notes", notes),
        "cement_type": None
        if cement_type in (None, "")
        else parse_field("cement_type", CementType.parse, cement_type).value,
        "fluoroscopy_time_s": _check_optional_number(
            "fluoroscopy_time_s", fluoroscopy_time_s, "seconds"
        ),
        "dose_area_product_gycm2": _check_optional_number(
            "dose_area_product_gycm2", dose_area_product_gycm2, "Gy·cm²"
        ),
    }


def procedure_warnings(
    *,
    patient: m.Patient | int,
    performed_on: dt.date,
    levels: Sequence[TreatedLevel],
    exclude: m.Procedure | int | None = None,
) -> list[str]:
    """What a person should confirm before this session is saved (empty when nothing is odd):
    another (not voided) session of the patient on the same day at the same level, and cement
    volumes unusual for the level (:func:`spinewatch.core.procedures.cement_volume_warning`)."""
    row = get(m.Patient, patient, "patient")
    out = []
    names = [str(t.level) for t in levels]
    same_day = m.TreatedLevel.objects.filter(
        procedure__patient=row,
        procedure__performed_on=performed_on,
        procedure__voided_at__isnull=True,
        procedure__status=ProcedureStatus.PERFORMED,
        level__in=names,
    )
    if exclude is not None:
        same_day = same_day.exclude(procedure_id=getattr(exclude, "pk", exclude))
    for level, pk in same_day.values_list("level", "procedure_id").order_by("level"):
        out.append(
            f"{level} was already treated on {performed_on.isoformat()} (procedure {pk}): "
            "is this the same session entered twice?"
        )
    for t in levels:
        warning = cement_volume_warning(t.level, t.cement_volume_ml)
        if warning:
            out.append(warning)
    return out


def _close_decisions(procedure: m.Procedure) -> None:
    """Each treated level closes the open decision about that vertebra as "treated": the finding
    of the level on the patient's latest analysed (not voided) scan on or before the session,
    linked to the treated level (``VertebraFinding.treated_by``)."""
    study = (
        m.ImagingStudy.objects.filter(
            patient_id=procedure.patient_id,
            analysed_at__isnull=False,
            voided_at__isnull=True,
            study_date__lte=procedure.performed_on,
        )
        .order_by("-study_date", "-pk")
        .first()
    )
    if study is None:
        return
    label = procedure.get_procedure_type_display()
    for level_row in procedure.levels.all():
        finding = study.findings.filter(level=level_row.level).first()
        if finding is None or finding.treated_by_id == level_row.pk:
            continue
        changed(
            finding,
            what=f"finding {finding.level} of imaging study {study.pk}",
            changes={
                "decision": Decision.TREATED.value,
                "decision_note": f"{label} on {procedure.performed_on.isoformat()}"
                + (f"; before: {finding.decision_note}" if finding.decision_note else ""),
                "treated_by": level_row,
            },
            expected_version=finding.version,
        )


def plan_procedure(
    *,
    patient: m.Patient | int,
    planned_on: dt.date,
    procedure_type: ProcedureType | str,
    planned_levels: Sequence[str] = (),
    notes: str = "",
    protocol: FollowUpProtocol = DEFAULT_PROTOCOL,
) -> m.Procedure:
    """Plan a session on ``planned_on`` (today or later, or a past date not yet recorded):
    the procedure exists as "planned" with its pre-operative visit only, so that the baseline
    pain can be collected (a portal link sent) before the procedure. Record it as performed
    with :func:`record_procedure` (``planned=``)."""
    kind = parse_field("procedure_type", ProcedureType.parse, procedure_type)
    when = check_date("planned_on", planned_on)
    assert when is not None
    if isinstance(planned_levels, (str, bytes)) or not isinstance(planned_levels, Sequence):
        raise RegistryError(f"planned_levels {planned_levels!r}: expected a list of levels")
    levels = [
        str(parse_field(f"planned_levels[{i}]", VertebralLevel.parse, v))
        for i, v in enumerate(planned_levels)
    ]
    if len(set(levels)) != len(levels):
        raise RegistryError(f"planned_levels {levels}: a level is given twice")
    if not isinstance(protocol, FollowUpProtocol):
        raise RegistryError(f"protocol {protocol!r}: expected a FollowUpProtocol")
    with transaction.atomic():
        row = get(m.Patient, patient, "patient")
        if row.voided_at is not None:
            raise RegistryError(f"patient {row.study_id} is voided: nothing can be planned")
        procedure = created(
            m.Procedure(
                patient=row,
                performed_on=when,
                procedure_type=kind.value,
                protocol=protocol.to_dict(),
                recorded_via=RecordedVia.STAFF.value,
                status=ProcedureStatus.PLANNED.value,
                planned_levels=levels,
                notes=_check_text("notes", notes),
            )
        )
        _schedule(procedure, protocol, baseline_only=True, new=True)
        return procedure


def record_procedure(
    *,
    patient: m.Patient | int,
    performed_on: dt.date,
    procedure_type: ProcedureType | str,
    guidance: Guidance | str,
    anaesthesia: Anaesthesia | str,
    day_case: bool,
    levels: Sequence[TreatedLevel] = (),
    leakages: Sequence[CementLeakage | LeakageRecord] = (),
    complications: Sequence[ComplicationRecord] = (),
    operator: str = "",
    operator_user: Any = None,
    cementoplasty_site: CementoplastySite | str | None = None,
    disc_level: DiscLevel | str | None = None,
    protocol: FollowUpProtocol = DEFAULT_PROTOCOL,
    notes: str = "",
    cement_type: CementType | str | None = None,
    fluoroscopy_time_s: float | None = None,
    dose_area_product_gycm2: float | None = None,
    planned: m.Procedure | int | None = None,
    allow_warnings: bool = True,
) -> m.Procedure:
    """Record one treatment session with its levels, leakages and complications.

    Creates the follow-up schedule of ``protocol`` (baseline ``pre`` included: due on the
    procedure date, window from 30 days before with the default protocol), and stores the protocol
    with the procedure. Rules (the core's ``validate_procedure``): a vertebral procedure
    (vertebroplasty, kyphoplasty, ablation vertebroplasty) needs at least one level, each level
    once (the approach fitting the level is checked by the core ``TreatedLevel``); an ablation
    vertebroplasty needs each level's ablation modality and no other type may carry one; a
    cementoplasty (extraspinal) needs its ``cementoplasty_site``; a laser disc decompression needs
    its ``disc_level`` (``"L4-L5"``) and nothing else. Leakages may name a treated level.
    ``operator`` is the name as recorded (taken from ``operator_user`` when empty); one of them
    is required. ``cement_type``, ``fluoroscopy_time_s`` (s) and ``dose_area_product_gycm2``
    (Gy·cm²) are optional.

    ``planned``: a planned procedure of this patient that this session performs (its
    pre-operative visit and value are kept, moved to the real date). Each treated level closes
    the open decision about the vertebra as "treated". ``allow_warnings=False`` raises
    :class:`ProcedureWarnings` when :func:`procedure_warnings` finds something to confirm.
    """
    kind = parse_field("procedure_type", ProcedureType.parse, procedure_type)
    when = check_date("performed_on", performed_on, not_future=True)
    assert when is not None
    checked_levels, site, disc = _check_parts(
        kind, levels, cementoplasty_site, disc_level, levels_required=True
    )
    checked_leakages = _check_leakages(leakages, checked_levels)
    checked_complications = _check_complications(complications, when)
    if not isinstance(protocol, FollowUpProtocol):
        raise RegistryError(f"protocol {protocol!r}: expected a FollowUpProtocol")
    fields = _session_fields(
        guidance=guidance,
        anaesthesia=anaesthesia,
        day_case=day_case,
        cementoplasty_site=site,
        disc_level=disc,
        operator=operator,
        operator_user=operator_user,
        notes=notes,
        cement_type=cement_type,
        fluoroscopy_time_s=fluoroscopy_time_s,
        dose_area_product_gycm2=dose_area_product_gycm2,
    )
    with transaction.atomic():
        row = get(m.Patient, patient, "patient")
        if row.voided_at is not None:
            raise RegistryError(f"patient {row.study_id} is voided: nothing can be recorded")
        if not allow_warnings:
            found = procedure_warnings(
                patient=row, performed_on=when, levels=checked_levels, exclude=planned
            )
            if found:
                raise ProcedureWarnings(found)
        if planned is not None:
            procedure = _perform_planned(row, planned, when, kind, fields)
        else:
            procedure = create_procedure_row(
                patient=row,
                performed_on=when,
                procedure_type=kind,
                protocol=protocol,
                recorded_via=RecordedVia.STAFF.value,
                **fields,
            )
        _write_children(procedure, checked_levels, checked_leakages)
        _write_complications(procedure, checked_complications)
        _close_decisions(procedure)
        advance_plan(row)
        return procedure


def _perform_planned(
    patient: m.Patient,
    planned: m.Procedure | int,
    when: dt.date,
    kind: ProcedureType,
    fields: Mapping[str, Any],
) -> m.Procedure:
    row = get(m.Procedure, planned, "planned procedure")
    what = f"procedure {row.pk} of patient {patient.study_id}"
    if row.patient_id != patient.pk:
        raise RegistryError(f"planned {what}: belongs to another patient")
    if row.status != ProcedureStatus.PLANNED.value or row.voided_at is not None:
        raise RegistryError(f"planned {what}: is not a planned procedure (any more)")
    row = changed(
        row,
        what=what,
        changes={
            **fields,
            "performed_on": when,
            "procedure_type": kind.value,
            "status": ProcedureStatus.PERFORMED.value,
        },
        expected_version=row.version,
    )
    protocol = procedure_protocol(row)
    _move_schedule(row, when, what, protocol)
    _schedule(row, protocol)
    return row


def _core_levels(procedure: m.Procedure) -> list[TreatedLevel]:
    from spinewatch.core.procedures import AblationModality, Approach

    return [
        TreatedLevel(
            level=VertebralLevel.parse(row.level),
            approach=Approach.parse(row.approach),
            needle_gauge=row.needle_gauge,
            cement_volume_ml=row.cement_volume_ml,
            ablation=AblationModality.parse(row.ablation_modality)
            if row.ablation_modality
            else None,
            ablation_power_w=row.ablation_power_w,
            ablation_duration_s=row.ablation_duration_s,
            access=row.access or None,
            biopsy=row.biopsy,
            biopsy_result=row.biopsy_result or None,
        )
        for row in procedure.levels.all()
    ]


def _core_leakages(procedure: m.Procedure) -> list[LeakageRecord]:
    from spinewatch.core.leakage import LeakageSite, LeakageType

    return [
        LeakageRecord(
            CementLeakage(
                type=LeakageType.parse(row.leakage_type),
                site=LeakageSite.parse(row.site),
                symptomatic=row.symptomatic,
            ),
            VertebralLevel.parse(row.treated_level.level) if row.treated_level else None,
        )
        for row in procedure.leakages.select_related("treated_level")
    ]


def update_procedure(
    *,
    procedure: m.Procedure | int,
    expected_version: int,
    performed_on: dt.date | Unchanged = UNCHANGED,
    procedure_type: ProcedureType | str | Unchanged = UNCHANGED,
    guidance: Guidance | str | Unchanged = UNCHANGED,
    anaesthesia: Anaesthesia | str | Unchanged = UNCHANGED,
    day_case: bool | Unchanged = UNCHANGED,
    operator: str | Unchanged = UNCHANGED,
    operator_user: Any = UNCHANGED,
    cementoplasty_site: CementoplastySite | str | Unchanged | None = UNCHANGED,
    disc_level: DiscLevel | str | Unchanged | None = UNCHANGED,
    notes: str | Unchanged = UNCHANGED,
    levels: Sequence[TreatedLevel] | Unchanged = UNCHANGED,
    leakages: Sequence[CementLeakage | LeakageRecord] | Unchanged = UNCHANGED,
    complications: Sequence[ComplicationRecord] | Unchanged = UNCHANGED,
    cement_type: CementType | str | Unchanged | None = UNCHANGED,
    fluoroscopy_time_s: float | Unchanged | None = UNCHANGED,
    dose_area_product_gycm2: float | Unchanged | None = UNCHANGED,
) -> m.Procedure:
    """Correct a recorded procedure; only the arguments given change.

    ``levels``, ``leakages`` and ``complications`` replace the whole list when given; when the
    levels are replaced but the leakages are not, the leakages keep their level (refused if that
    level is no longer treated). A new ``performed_on`` moves the follow-up schedule (due dates
    and windows, from the protocol stored with the procedure); completed visits keep their date
    and value. The same rules as :func:`record_procedure` apply to the result.
    """
    with transaction.atomic():
        row = get(m.Procedure, procedure, "procedure")
        what = f"procedure {row.pk} of patient {row.patient.study_id}"
        if row.voided_at is not None:
            raise RegistryError(f"{what} is voided: it cannot be changed")
        if row.status != ProcedureStatus.PERFORMED.value:
            raise RegistryError(f"{what} is planned: record it as performed instead")
        kind = parse_field(
            "procedure_type",
            ProcedureType.parse,
            row.procedure_type if isinstance(procedure_type, Unchanged) else procedure_type,
        )
        when = old_date = row.performed_on
        if not isinstance(performed_on, Unchanged):
            when = check_date("performed_on", performed_on, not_future=True)
        imported = row.recorded_via == RecordedVia.IMPORT.value
        new_levels = _core_levels(row) if isinstance(levels, Unchanged) else levels
        site_value = (
            row.cementoplasty_site
            if isinstance(cementoplasty_site, Unchanged)
            else cementoplasty_site
        )
        disc_value = row.disc_level if isinstance(disc_level, Unchanged) else disc_level
        checked_levels, site, disc = _check_parts(
            kind,
            new_levels,
            site_value,
            disc_value,
            levels_required=not (imported and isinstance(levels, Unchanged)),
        )
        new_leakages = _core_leakages(row) if isinstance(leakages, Unchanged) else leakages
        checked_leakages = _check_leakages(new_leakages, checked_levels)
        changes: dict[str, Any] = {
            "procedure_type": kind.value,
            "performed_on": when,
            "cementoplasty_site": site.value if site is not None else None,
            "disc_level": str(disc) if disc is not None else None,
        }
        changes.update(
            _given_session_changes(
                guidance=guidance,
                anaesthesia=anaesthesia,
                day_case=day_case,
                operator_user=operator_user,
                operator=operator,
                notes=notes,
                cement_type=cement_type,
                fluoroscopy_time_s=fluoroscopy_time_s,
                dose_area_product_gycm2=dose_area_product_gycm2,
            )
        )
        new_complications = None
        if not isinstance(complications, Unchanged):
            new_complications = _check_complications(complications, when)
        row = changed(row, what=what, changes=changes, expected_version=expected_version)

        if not isinstance(levels, Unchanged) or not isinstance(leakages, Unchanged):
            for leak in row.leakages.all():
                deleted(leak)
            for level_row in row.levels.all():
                deleted(level_row)
            _write_children(row, checked_levels, checked_leakages)
        if new_complications is not None:
            for comp in row.complications.all():
                deleted(comp)
            _write_complications(row, new_complications)
        if when != old_date:
            _move_schedule(row, when, what)
        _close_decisions(row)
        advance_plan(row.patient)
        return row


def _given_session_changes(**given: Any) -> dict[str, Any]:
    """The session fields given to :func:`update_procedure` (``UNCHANGED`` ones left out),
    each checked as :func:`record_procedure` checks it."""
    checks: dict[str, Any] = {
        "guidance": lambda v: parse_field("guidance", Guidance.parse, v).value,
        "anaesthesia": lambda v: parse_field("anaesthesia", Anaesthesia.parse, v).value,
        "day_case": _check_day_case,
        "operator_user": lambda v: _check_user("operator_user", v),
        "operator": _check_operator,
        "notes": lambda v: _check_text("notes", v),
        "cement_type": lambda v: (
            None if v in (None, "") else parse_field("cement_type", CementType.parse, v).value
        ),
        "fluoroscopy_time_s": lambda v: _check_optional_number("fluoroscopy_time_s", v, "seconds"),
        "dose_area_product_gycm2": lambda v: _check_optional_number(
            "dose_area_product_gycm2", v, "Gy·cm²"
        ),
    }
    return {
        name: checks[name](value)
        for name, value in given.items()  # in the order given: the first bad one is reported
        if not isinstance(value, Unchanged)
    }


def _check_operator(value: object) -> str:
    name = _check_text("operator", value)
    if not name:
        raise RegistryError("operator '': the operator's name is required", field="operator")
    return name


def _move_schedule(
    row: m.Procedure, when: dt.date, what: str, protocol: FollowUpProtocol | None = None
) -> None:
    """Move the due dates and windows of ``row``'s visits to the procedure date ``when``
    (``protocol``: default the one stored with the procedure); completed visits keep their date
    and value, visits already in place are not written."""
    plan = protocol if protocol is not None else procedure_protocol(row)
    visits = {_visit_code(v): v for v in plan.schedule(when)}
    for fu in row.follow_ups.all():
        visit = visits.get(fu.timepoint)
        if visit is None or (fu.due_date, fu.window_start, fu.window_end) == (
            visit.due,
            visit.window_start,
            visit.window_end,
        ):
            continue
        changed(
            fu,
            what=f"follow-up {fu.timepoint} of {what}",
            changes={
                "due_date": visit.due,
                "window_start": visit.window_start,
                "window_end": visit.window_end,
            },
            expected_version=fu.version,
        )
