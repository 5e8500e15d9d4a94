"""The patient list: search and the per-row summary (age, diagnosis, last procedure, next visit,
highest open collapse risk).

The search matches every word typed against family name, given name, hospital number and study
id (case-insensitive substring), so "smith 12" finds Smith with a hospital number containing 12.
The summary columns are computed for one page of patients at a time (a handful of queries per
page, not per row).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import QuerySet

from spinewatch.imaging.risk import CollapseRisk
from spinewatch.registry import models as rm
from spinewatch.registry.choices import Decision
from spinewatch.registry.search import patient_search
from spinewatch.web.followup_status import VisitStatus, visit_status

__all__ = ["RISK_RANK", "PatientRow", "age_years", "patient_rows", "search_patients"]

#: Order of concern of ``collapse_risk`` (``imaging.risk.CollapseRisk.rank`` + 1): not assessable
#: above low -- an unmeasured vertebra is never the "safest" of a patient -- below moderate.
RISK_RANK = {r.value: r.rank + 1 for r in CollapseRisk}


def search_patients(
    query: str, *, diagnosis: str = "", risk: str = "", include_voided: bool = False
) -> QuerySet[rm.Patient]:
    """Patients matching every word of ``query`` (all patients for an empty query), by name;
    optionally with a ``diagnosis`` (kind) and a highest open ``risk`` (high -- which includes
    the signal to treat --, not_assessable, moderate, low, or none: no analysed scan). Voided
    records are left out unless ``include_voided``."""
    patients = rm.Patient.objects.select_related("identity", "case_manager")
    if not include_voided:
        patients = patients.filter(voided_at__isnull=True)
    if diagnosis:
        patients = patients.filter(diagnoses__kind=diagnosis).distinct()
    if risk:
        patients = patients.filter(pk__in=_patients_at_risk(risk))
    patients = patients.filter(patient_search(query))
    return patients.order_by("identity__family_name", "identity__given_name", "study_id")


def _patients_at_risk(risk: str) -> list[int]:
    """Ids of the patients whose highest open risk (see :func:`_highest_risks`) is ``risk``."""
    ids = list(rm.Patient.objects.filter(voided_at__isnull=True).values_list("pk", flat=True))
    found = _highest_risks(ids)
    if risk == "none":
        return [pk for pk in ids if pk not in found]
    return [pk for pk, (level_risk, _lvl) in found.items() if level_risk == risk]


def age_years(birth_date: dt.date | None, on: dt.date) -> int | None:
    """Completed years of age on ``on`` (None without a birth date)."""
    if birth_date is None:
        return None
    years = on.year - birth_date.year
    if (on.month, on.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


@dataclass(frozen=True)
class PatientRow:
    """One row of the patient list."""

    patient: rm.Patient
    identity: rm.PatientIdentity | None
    age: int | None
    diagnosis: str
    last_procedure: rm.Procedure | None
    next_follow_up: rm.FollowUp | None
    highest_risk: str | None
    risk_level: str | None  # the level with the highest open risk


def _identity(patient: rm.Patient) -> rm.PatientIdentity | None:
    try:
        return patient.identity
    except rm.PatientIdentity.DoesNotExist:
        return None


def _highest_risks(ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """patient id -> (risk, level): highest risk not yet treated on the latest analysed study."""
    latest: dict[int, int] = {}
    studies = (
        rm.ImagingStudy.objects.filter(
            patient_id__in=ids, analysed_at__isnull=False, voided_at__isnull=True
        )
        .order_by("patient_id", "study_date", "pk")
        .values_list("patient_id", "pk")
    )
    for patient_id, study_pk in studies:
        latest[patient_id] = study_pk  # ordered: the last one wins
    out: dict[int, tuple[str, str]] = {}
    findings = rm.VertebraFinding.objects.filter(
        study_id__in=latest.values(), collapse_risk__isnull=False
    ).exclude(decision=Decision.TREATED)
    by_study = {v: k for k, v in latest.items()}
    for f in findings.values("study_id", "collapse_risk", "level", "treat_signal"):
        patient_id = by_study[f["study_id"]]
        risk = "high" if f["treat_signal"] else f["collapse_risk"]
        best = out.get(patient_id)
        if best is None or RISK_RANK.get(risk, 0) > RISK_RANK.get(best[0], 0):
            out[patient_id] = (risk, f["level"])
    return out


def patient_rows(patients: Sequence[rm.Patient], today: dt.date) -> list[PatientRow]:
    """The summary rows of ``patients`` (one page), in the given order."""
    ids = [p.pk for p in patients]
    diagnoses: dict[int, list[rm.Diagnosis]] = defaultdict(list)
    for d in rm.Diagnosis.objects.filter(patient_id__in=ids).order_by("diagnosed_on", "pk"):
        diagnoses[d.patient_id].append(d)
    last_procedure: dict[int, rm.Procedure] = {}
    for proc in rm.Procedure.objects.filter(patient_id__in=ids).order_by("performed_on", "pk"):
        last_procedure[proc.patient_id] = proc
    next_visit: dict[int, rm.FollowUp] = {}
    visits = (
        rm.FollowUp.objects.filter(procedure__patient_id__in=ids, completed_on__isnull=True)
        .select_related("procedure")
        .order_by("-due_date", "-pk")
    )
    for fu in visits:
        if visit_status(fu, today) is VisitStatus.MISSED:
            continue  # a baseline never recorded is not a visit to come
        next_visit[fu.procedure.patient_id] = fu  # descending: the earliest open visit wins
    risks = _highest_risks(ids)
    rows = []
    for p in patients:
        identity = _identity(p)
        found = diagnoses.get(p.pk, [])
        risk = risks.get(p.pk)
        rows.append(
            PatientRow(
                patient=p,
                identity=identity,
                age=age_years(identity.birth_date if identity else None, today),
                diagnosis="; ".join(str(d) for d in found[-2:]),
                last_procedure=last_procedure.get(p.pk),
                next_follow_up=next_visit.get(p.pk),
                highest_risk=risk[0] if risk else None,
                risk_level=risk[1] if risk else None,
            )
        )
    return rows
