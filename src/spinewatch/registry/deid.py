"""De-identification: what a researcher (and every export meant for research) may see.

The registry keeps who a patient is in :class:`~spinewatch.registry.models.PatientIdentity`;
research needs none of it. The de-identified view of a patient replaces

- name, hospital number, contact details -> the pseudonymous study id (nothing else);
- birth date -> age in whole years at the *index procedure* (the patient's first procedure by
  date), top-coded at :data:`AGE_TOP_CODE` (an age of 90 means "90 or older", as HIPAA's Safe
  Harbor rule asks, because very old ages are rare enough to identify);
- every calendar date -> days from the index procedure (``<name>_days_from_index``, negative
  before it; ``None`` when the patient has no procedure yet, because there is then nothing to
  count from -- the date is withheld rather than shown);

and drops every free-text field (notes, complication descriptions, decision notes, operator
names, study descriptions), DICOM UIDs and the stored analysis report JSON, which may carry any of
these. What remains is the clinical content: diagnoses, treated levels, approaches, cement,
leakages, complication classes, follow-up scores, imaging findings.

Functions: :func:`index_date`, :func:`age_at`, :func:`deidentified_patient` (one patient as a
JSON-safe dict) and :func:`deidentified_cohort_frame` (``cohort_frame`` without identifiers or
calendar dates). They only read; nothing here writes to the registry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from django.db.models import Min, Prefetch

from spinewatch.registry import models as m
from spinewatch.registry.errors import RegistryError

__all__ = [
    "AGE_TOP_CODE",
    "DEIDENTIFIED_COHORT_COLUMNS",
    "age_at",
    "days_from",
    "deidentified_cohort_frame",
    "deidentified_patient",
    "deidentified_patients",
    "index_date",
    "index_dates",
]

#: Ages at or above this are reported as this value ("90 or older").
AGE_TOP_CODE = 90

#: Columns of :func:`deidentified_cohort_frame`, in order.
DEIDENTIFIED_COHORT_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "study_id",
    "procedure_number",
    "timepoint",
    "vas",
    "days_from_index",
    "days_after_procedure",
    "diagnosis",
    "primary_tumour",
    "procedure_type",
    "levels",
    "approaches",
    "analgesic_use",
    "entered_via",
    "age_years",
    "sex",
    "in_window",
)


def _patient(patient: m.Patient | int) -> m.Patient:
    if isinstance(patient, m.Patient):
        return patient
    if isinstance(patient, int) and not isinstance(patient, bool):
        found = m.Patient.objects.filter(pk=patient).first()
        if found is None:
            raise RegistryError(f"patient {patient!r} does not exist")
        return found
    raise RegistryError(f"patient {patient!r}: expected a Patient or its id")


def index_date(patient: m.Patient | int) -> dt.date | None:
    """The date of the patient's index (first) procedure, or ``None`` without any procedure."""
    row = _patient(patient)
    return (
        row.procedures.filter(voided_at__isnull=True, status="performed")
        .order_by("performed_on", "pk")
        .values_list("performed_on", flat=True)
        .first()
    )


def index_dates(patient_ids: Iterable[int]) -> dict[int, dt.date]:
    """``{patient pk: index date}`` for many patients in one query (patients without procedure
    are absent)."""
    rows = (
        m.Procedure.objects.filter(
            patient_id__in=list(patient_ids), voided_at__isnull=True, status="performed"
        )
        .values("patient_id")
        .annotate(first=Min("performed_on"))
        .order_by()
    )
    return {r["patient_id"]: r["first"] for r in rows}


def age_at(birth_date: dt.date | None, when: dt.date | None) -> int | None:
    """Age in whole years on ``when`` (birthday counted on the day itself), top-coded at 90.

    ``None`` when either date is unknown. A birth date after ``when`` raises RegistryError.
    A 29 February birthday counts from 1 March in non-leap years.
    """
    if birth_date is None or when is None:
        return None
    if birth_date > when:
        raise RegistryError(
            f"birth date {birth_date.isoformat()} is after {when.isoformat()}: "
            "expected a birth date before the index procedure"
        )
    years = (
        when.year - birth_date.year - ((when.month, when.day) < (birth_date.month, birth_date.day))
    )
    return min(years, AGE_TOP_CODE)


def days_from(index: dt.date | None, when: dt.date | None) -> int | None:
    """Days from ``index`` to ``when`` (negative before it); ``None`` when either is unknown."""
    if index is None or when is None:
        return None
    return (when - index).days


def _identity(patient: m.Patient) -> m.PatientIdentity | None:
    try:
        return patient.identity
    except m.PatientIdentity.DoesNotExist:
        return None


def _with_records(patients: Any) -> list[m.Patient]:
    """The patients with everything :func:`deidentified_patient` reads prefetched: a fixed
    number of queries for any number of patients (not one per patient and table)."""
    return list(
        patients.select_related("identity", "surveillance_plan").prefetch_related(
            Prefetch(
                "procedures",
                queryset=m.Procedure.objects.order_by("performed_on", "pk").prefetch_related(
                    "levels",
                    Prefetch(
                        "leakages",
                        queryset=m.CementLeakage.objects.select_related("treated_level"),
                    ),
                    "complications",
                    "follow_ups",
                ),
            ),
            Prefetch(
                "imaging_studies",
                queryset=m.ImagingStudy.objects.order_by("study_date", "pk").prefetch_related(
                    "findings"
                ),
            ),
            Prefetch("diagnoses", queryset=m.Diagnosis.objects.order_by("diagnosed_on", "pk")),
        )
    )


def deidentified_patients(patients: Iterable[m.Patient | int]) -> list[dict[str, Any]]:
    """:func:`deidentified_patient` of each patient, in the order given, in a fixed number of
    queries (for a page of an API list)."""
    refs = list(patients)
    ids = [p.pk if isinstance(p, m.Patient) else _patient(p).pk for p in refs]
    rows = {row.pk: row for row in _with_records(m.Patient.objects.filter(pk__in=ids))}
    return [_deidentified(rows[pk]) for pk in ids]


def deidentified_patient(patient: m.Patient | int) -> dict[str, Any]:
    """One patient without identifiers or calendar dates, as a JSON-safe dict.

    Keys: ``study_id``, ``age_years`` (at the index procedure; top-coded at 90; ``None`` when the
    birth date or the index procedure is unknown), ``sex``, ``has_index_procedure``,
    ``diagnoses`` [{kind, primary_tumour, diagnosed_days_from_index}], ``procedures``
    [{number, days_from_index, procedure_type, guidance, anaesthesia, day_case,
    cementoplasty_site, disc_level, recorded_via, levels [{level, approach, needle_gauge,
    cement_volume_ml, ablation_modality, ablation_power_w, ablation_duration_s}], leakages
    [{level, leakage_type, site, symptomatic}], complications [{sir_class,
    occurred_days_from_index}], follow_ups [{timepoint, due_days_from_index,
    window_start_days_from_index, window_end_days_from_index, completed_days_from_index,
    days_after_procedure, vas, analgesic_use, entered_via}]}], ``imaging_studies``
    [{days_from_index, modality, analysed, findings [{level, genant_grade, deformity,
    height_loss_pct, trabecular_hu_median, lytic_volume_ml, lytic_fraction,
    posterior_wall_involved, collapse_risk, reasons, sins_imaging_points, treat_signal,
    treat_signal_reasons, confidence, confidence_reasons, diffuse_infiltration,
    diffuse_infiltration_hu_below_own, decision}]}],
    ``surveillance`` ({interval_days, next_scan_due_days_from_index, active} or ``None``).
    Lists are in date order. Days are whole days from the index procedure.
    """
    row = _patient(patient)
    return _deidentified(_with_records(m.Patient.objects.filter(pk=row.pk))[0])


def _deidentified(row: m.Patient) -> dict[str, Any]:
    """:func:`deidentified_patient` of a row read by :func:`_with_records` (no query)."""
    performed = [
        p.performed_on
        for p in row.procedures.all()
        if p.voided_at is None and p.status == "performed"
    ]
    index = min(performed) if performed else None
    identity = _identity(row)

    def rel(when: dt.date | None) -> int | None:
        return days_from(index, when)

    procedures = []
    for number, proc in enumerate(row.procedures.all(), start=1):
        procedures.append(
            {
                "number": number,
                "days_from_index": rel(proc.performed_on),
                "procedure_type": proc.procedure_type,
                "guidance": proc.guidance,
                "anaesthesia": proc.anaesthesia,
                "day_case": proc.day_case,
                "cementoplasty_site": proc.cementoplasty_site,
                "disc_level": proc.disc_level,
                "recorded_via": proc.recorded_via,
                "levels": [
                    {
                        "level": t.level,
                        "approach": t.approach,
                        "needle_gauge": t.needle_gauge,
                        "cement_volume_ml": t.cement_volume_ml,
                        "ablation_modality": t.ablation_modality,
                        "ablation_power_w": t.ablation_power_w,
                        "ablation_duration_s": t.ablation_duration_s,
                    }
                    for t in proc.levels.all()
                ],
                "leakages": [
                    {
                        "level": lk.treated_level.level if lk.treated_level else None,
                        "leakage_type": lk.leakage_type,
                        "site": lk.site,
                        "symptomatic": lk.symptomatic,
                    }
                    for lk in proc.leakages.all()
                ],
                "complications": [
                    {"sir_class": c.sir_class, "occurred_days_from_index": rel(c.occurred_on)}
                    for c in proc.complications.all()
                ],
                "follow_ups": [
                    {
                        "timepoint": fu.timepoint,
                        "due_days_from_index": rel(fu.due_date),
                        "window_start_days_from_index": rel(fu.window_start),
                        "window_end_days_from_index": rel(fu.window_end),
                        "completed_days_from_index": rel(fu.completed_on),
                        "days_after_procedure": days_from(proc.performed_on, fu.completed_on),
                        "vas": fu.vas,
                        "analgesic_use": fu.analgesic_use,
                        "entered_via": fu.entered_via,
                    }
                    for fu in sorted(proc.follow_ups.all(), key=lambda f: (f.due_date, f.pk))
                ],
            }
        )

    studies = []
    for study in row.imaging_studies.all():
        studies.append(
            {
                "days_from_index": rel(study.study_date),
                "modality": study.modality,
                "analysed": study.analysed_at is not None,
                "findings": [
                    {
                        "level": f.level,
                        "genant_grade": f.genant_grade,
                        "deformity": f.deformity,
                        "height_loss_pct": f.height_loss_pct,
                        "trabecular_hu_median": f.trabecular_hu_median,
                        "lytic_volume_ml": f.lytic_volume_ml,
                        "lytic_fraction": f.lytic_fraction,
                        "posterior_wall_involved": f.posterior_wall_involved,
                        "collapse_risk": f.collapse_risk,
                        "reasons": list(f.reasons or []),
                        "sins_imaging_points": f.sins_imaging_points,
                        "treat_signal": f.treat_signal,
                        "treat_signal_reasons": list(f.treat_signal_reasons or []),
                        "confidence": f.confidence,
                        "confidence_reasons": list(f.confidence_reasons or []),
                        "diffuse_infiltration": f.diffuse_infiltration,
                        "diffuse_infiltration_hu_below_own": f.diffuse_infiltration_hu_below_own,
                        "decision": f.decision,
                    }
                    for f in study.findings.all()
                ],
            }
        )

    try:
        plan: m.SurveillancePlan | None = row.surveillance_plan
    except m.SurveillancePlan.DoesNotExist:
        plan = None
    return {
        "study_id": row.study_id,
        "age_years": age_at(identity.birth_date if identity else None, index),
        "sex": identity.sex if identity else None,
        "has_index_procedure": index is not None,
        "diagnoses": [
            {
                "kind": d.kind,
                "primary_tumour": d.primary_tumour,
                "diagnosed_days_from_index": rel(d.diagnosed_on),
            }
            for d in row.diagnoses.all()
        ],
        "procedures": procedures,
        "imaging_studies": studies,
        "surveillance": None
        if plan is None
        else {
            "interval_days": plan.interval_days,
            "next_scan_due_days_from_index": rel(plan.next_scan_due),
            "active": plan.active,
        },
    }


_IN_LIMIT = 5000  # more study ids than this: read every patient rather than a huge IN list


def _patient_facts(study_ids: list[str]) -> pd.DataFrame:
    """Birth date, sex and index date of the patients ``study_ids``, indexed by study id
    (a few column reads, no model instances)."""
    patients = m.Patient.objects.all()
    procedures = m.Procedure.objects.filter(voided_at__isnull=True, status="performed")
    if len(study_ids) <= _IN_LIMIT:
        patients = patients.filter(study_id__in=study_ids)
        procedures = procedures.filter(patient__study_id__in=study_ids)
    facts = pd.DataFrame.from_records(
        list(patients.values_list("pk", "study_id", "identity__birth_date", "identity__sex")),
        columns=["pk", "study_id", "birth_date", "sex"],
    )
    firsts = pd.DataFrame.from_records(
        list(
            procedures.values("patient_id")
            .annotate(first=Min("performed_on"))
            .order_by()
            .values_list("patient_id", "first")
        ),
        columns=["pk", "index_date"],
    )
    return facts.merge(firsts, on="pk", how="left").set_index("study_id")


def _ages(birth: pd.Series, index: pd.Series) -> pd.Series:
    """:func:`age_at` of each (birth date, index date) pair, vectorised (``Int64``)."""
    born = pd.to_datetime(birth.to_numpy())
    on = pd.to_datetime(index.to_numpy())
    known = ~(pd.isna(born) | pd.isna(on))
    late = known & (born > on)
    if late.any():
        first = int(np.flatnonzero(late)[0])
        raise RegistryError(
            f"birth date {born[first].date().isoformat()} is after "
            f"{on[first].date().isoformat()}: expected a birth date before the index procedure"
        )
    years = on.year - born.year - ((on.month * 100 + on.day) < (born.month * 100 + born.day))
    values = np.minimum(np.where(known, years, 0), AGE_TOP_CODE).astype("int64")
    return pd.Series(pd.array(values, dtype="Int64")).where(known, pd.NA).astype("Int64")


def deidentified_cohort_frame(**filters: Any) -> pd.DataFrame:
    """:func:`~spinewatch.registry.services.cohort_frame` without identifiers or calendar dates.

    ``filters`` are those of ``cohort_frame`` (diagnosis, level, approach, procedure_type,
    date_from, date_to -- the date range still filters on the procedure date, but no date is
    returned). ``procedure_date`` is dropped and ``completed_on`` becomes ``days_from_index``
    (days from the patient's FIRST procedure, int); ``days_after_procedure`` (days from this row's
    procedure) stays, and ``age_years`` (at the index procedure, top-coded at 90, ``Int64`` with
    ``<NA>`` when unknown) and ``sex`` are added. ``patient_id`` is the study id (``/2``, ``/3``
    for a patient's later procedures), so :func:`spinewatch.outcomes.outcome_table` gives the same
    table on this frame as on ``cohort_frame``. Columns: :data:`DEIDENTIFIED_COHORT_COLUMNS`.
    """
    from spinewatch.registry.services import cohort_frame

    frame = cohort_frame(**filters)
    by_row = _patient_facts(frame["study_id"].unique().tolist()).reindex(
        frame["study_id"].to_numpy()
    )
    index = pd.to_datetime(by_row["index_date"].to_numpy())
    completed = pd.to_datetime(frame["completed_on"])
    out = frame.drop(columns=["procedure_date", "completed_on"])
    out["days_from_index"] = (completed.to_numpy() - index).days.astype("int64")
    out["age_years"] = _ages(by_row["birth_date"], by_row["index_date"])
    out["sex"] = pd.Series(by_row["sex"].to_numpy(), index=frame.index, dtype="object").where(
        by_row["sex"].notna().to_numpy(), None
    )
    return out[list(DEIDENTIFIED_COHORT_COLUMNS)].reset_index(drop=True)
