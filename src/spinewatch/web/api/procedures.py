"""Procedures: record one session (levels, leakages, complications -> follow-up schedule),
list per patient, detail, correct.

Reading is identifiable (dates, operator, notes): researchers are refused (403). Recording and
correcting are clinical edits (``edit_clinical``: clinicians).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.http import HttpRequest
from ninja import Path, Router
from ninja.responses import Status

from spinewatch.accounts.permissions import Action
from spinewatch.core.errors import InputError
from spinewatch.core.leakage import CementLeakage
from spinewatch.core.procedures import TreatedLevel
from spinewatch.registry import models as m
from spinewatch.registry import services
from spinewatch.registry.errors import RegistryError
from spinewatch.web.api import schemas as s
from spinewatch.web.api._access import ID_DESCRIPTION, allow, load, plain, responses, viewed
from spinewatch.web.api._present import procedure_out

__all__ = ["core_complications", "core_leakages", "core_levels", "router"]

router = Router(tags=["procedures"])


def _procedures() -> Any:
    return m.Procedure.objects.select_related("patient").prefetch_related("levels", "complications")


def core_levels(items: Sequence[s.TreatedLevelIn] | None) -> list[TreatedLevel] | None:
    """The core's ``TreatedLevel`` of each item (it checks approach-at-level, gauge, volume)."""
    if items is None:
        return None
    out = []
    for i, item in enumerate(items):
        try:
            out.append(
                TreatedLevel(
                    level=item.level,
                    approach=item.approach,
                    needle_gauge=item.needle_gauge,
                    cement_volume_ml=item.cement_volume_ml,
                    ablation=item.ablation_modality,
                    ablation_power_w=item.ablation_power_w,
                    ablation_duration_s=item.ablation_duration_s,
                    access=plain(item.access),
                    biopsy=item.biopsy,
                    biopsy_result=plain(item.biopsy_result),
                )
            )
        except InputError as exc:
            raise RegistryError(f"levels[{i}]: {exc}") from exc
    return out


def core_leakages(items: Sequence[s.LeakageIn] | None) -> list[services.LeakageRecord] | None:
    """The core's ``CementLeakage`` of each item, with the treated level it came from."""
    if items is None:
        return None
    out = []
    for i, item in enumerate(items):
        try:
            leak = CementLeakage(
                type=item.leakage_type, site=item.site, symptomatic=item.symptomatic
            )
        except InputError as exc:
            raise RegistryError(f"leakages[{i}]: {exc}") from exc
        out.append(services.LeakageRecord(leak, item.level))
    return out


def core_complications(
    items: Sequence[s.ComplicationIn] | None,
) -> list[services.ComplicationRecord] | None:
    if items is None:
        return None
    return [
        services.ComplicationRecord(plain(c.sir_class), c.description, c.occurred_on) for c in items
    ]


@router.get(
    "/patients/{patient_id}/procedures",
    response=responses({200: list[s.ProcedureOut]}, 401, 403, 404, 422),
    summary="The patient's procedures, oldest first, with their follow-up schedules",
)
def list_procedures(
    request: HttpRequest,
    patient_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> list[s.ProcedureOut]:
    allow(request, Action.VIEW_IDENTIFIABLE)
    patient = load(m.Patient.objects.all(), patient_id, "patient")
    allow(request, Action.VIEW_IDENTIFIABLE, patient)
    rows = list(_procedures().filter(patient=patient).order_by("performed_on", "pk"))
    viewed(
        m.Procedure,
        None,
        study_id=patient.study_id,
        detail={"list": "procedures", "ids": [p.pk for p in rows]},
    )
    return [procedure_out(p) for p in rows]


@router.post(
    "/patients/{patient_id}/procedures",
    response=responses({201: s.ProcedureOut}, 400, 401, 403, 404, 422),
    summary="Record a procedure; creates its follow-up schedule",
)
def record_procedure(
    request: HttpRequest,
    payload: s.ProcedureIn,
    patient_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> Status[s.ProcedureOut]:
    allow(request, Action.EDIT_CLINICAL)
    patient = load(m.Patient.objects.all(), patient_id, "patient")
    allow(request, Action.EDIT_CLINICAL, patient)
    procedure = services.record_procedure(
        patient=patient,
        performed_on=payload.performed_on,
        procedure_type=plain(payload.procedure_type),
        guidance=plain(payload.guidance),
        anaesthesia=plain(payload.anaesthesia),
        day_case=payload.day_case,
        levels=core_levels(payload.levels) or [],
        leakages=core_leakages(payload.leakages) or [],
        complications=core_complications(payload.complications) or [],
        operator=payload.operator,
        operator_user=None if payload.operator.strip() else request.user,
        cementoplasty_site=plain(payload.cementoplasty_site),
        disc_level=payload.disc_level,
        notes=payload.notes,
        cement_type=plain(payload.cement_type),
        fluoroscopy_time_s=payload.fluoroscopy_time_s,
        dose_area_product_gycm2=payload.dose_area_product_gycm2,
    )
    return Status(201, procedure_out(load(_procedures(), procedure.pk, "procedure")))


@router.get(
    "/procedures/{procedure_id}",
    response=responses({200: s.ProcedureOut}, 401, 403, 404, 422),
    summary="A procedure with levels, leakages, complications and follow-ups",
)
def get_procedure(
    request: HttpRequest,
    procedure_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> s.ProcedureOut:
    allow(request, Action.VIEW_IDENTIFIABLE)
    procedure = load(_procedures(), procedure_id, "procedure")
    allow(request, Action.VIEW_IDENTIFIABLE, procedure)
    viewed(procedure, procedure.pk, study_id=procedure.patient.study_id)
    return procedure_out(procedure)


_LISTS = {"levels": core_levels, "leakages": core_leakages, "complications": core_complications}


@router.patch(
    "/procedures/{procedure_id}",
    response=responses({200: s.ProcedureOut}, 400, 401, 403, 404, 409, 422),
    summary="Correct a procedure (only the fields given change)",
)
def update_procedure(
    request: HttpRequest,
    payload: s.ProcedureUpdate,
    procedure_id: int = Path(..., ge=1, le=s.MAX_ID, description=ID_DESCRIPTION),
) -> s.ProcedureOut:
    allow(request, Action.EDIT_CLINICAL)
    procedure = load(_procedures(), procedure_id, "procedure")
    allow(request, Action.EDIT_CLINICAL, procedure)
    changes: dict[str, Any] = {}
    for name in sorted(payload.model_fields_set - {"expected_version"}):
        value = getattr(payload, name)
        changes[name] = _LISTS[name](value) if name in _LISTS else plain(value)
    services.update_procedure(
        procedure=procedure, expected_version=payload.expected_version, **changes
    )
    return procedure_out(load(_procedures(), procedure_id, "procedure"))
