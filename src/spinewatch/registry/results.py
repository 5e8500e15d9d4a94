"""The results section of the registry: the frames behind Table 1, the procedure outcomes and the
Kaplan-Meier estimates, and :func:`results_report` that writes them all (CSV, text, PNG, SVG).

Every frame covers the procedures :func:`spinewatch.registry.services.cohort_frame` selects
(performed, not voided, of not voided patients, the same optional filters); a patient's *index*
procedure is the first selected one. Nothing identifiable leaves here: study ids, ages (top-coded
at 90), sex, clinical content, days.

Survival endpoints (time 0 = the index procedure; one row per patient):

- **death** (overall survival): a visit outcome "died" (its date); otherwise censored at the last
  contact -- the latest procedure, completed visit, scan or recorded visit outcome (lost to
  follow-up, withdrew: the follow-up ends there);
- **new fracture**: the first later procedure treating a vertebra not treated before, or the
  first later analysed scan grading a vertebra not treated by then as Genant >= 1 where the
  patient's previous analysed scan graded it 0;
- **re-treatment**: the first later procedure treating a vertebra already treated;
- fracture and re-treatment are censored at the end of follow-up (death or last contact).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd

from spinewatch.outcomes.baseline import BASELINE_COLUMNS
from spinewatch.registry import models as m
from spinewatch.registry.deid import _identity, age_at
from spinewatch.registry.services.cohort import _selected_procedures

__all__ = [
    "SURVIVAL_COLUMNS",
    "baseline_frame",
    "procedure_frames",
    "results_report",
    "survival_frame",
]

SURVIVAL_COLUMNS = (
    "patient_id",
    "death_days",
    "death",
    "new_fracture_days",
    "new_fracture",
    "retreatment_days",
    "retreatment",
)


def _selection(filters: dict[str, Any]) -> dict[int, list[m.Procedure]]:
    keys = ("diagnosis", "level", "approach", "procedure_type", "date_from", "date_to")
    selected = _selected_procedures(*(filters.get(k) for k in keys))
    unknown = set(filters) - set(keys)
    if unknown:
        raise TypeError(f"unknown filter(s) {sorted(unknown)}")
    by_patient: dict[int, list[m.Procedure]] = defaultdict(list)
    for proc in sorted(selected.values(), key=lambda p: (p.performed_on, p.pk)):
        by_patient[proc.patient_id].append(proc)
    return by_patient


def baseline_frame(**filters: Any) -> pd.DataFrame:
    """One row per patient (:data:`~spinewatch.outcomes.baseline.BASELINE_COLUMNS`)."""
    by_patient = _selection(filters)
    patients = m.Patient.objects.filter(pk__in=list(by_patient)).select_related("identity")
    latest: dict[int, m.Diagnosis] = {}
    for d in m.Diagnosis.objects.filter(patient_id__in=list(by_patient)).order_by(
        "patient_id", "diagnosed_on", "pk"
    ):
        latest[d.patient_id] = d
    index_ids = [procs[0].pk for procs in by_patient.values()]
    baseline_visits = {
        fu.procedure_id: fu
        for fu in m.FollowUp.objects.filter(
            procedure_id__in=index_ids, voided_at__isnull=True, completed_on__isnull=False
        ).select_related("procedure")
        if procedure_baseline(fu)
    }
    rows = []
    for patient in patients.order_by("study_id"):
        index = by_patient[patient.pk][0]
        identity = _identity(patient)
        diagnosis = latest.get(patient.pk)
        visit = baseline_visits.get(index.pk)
        rows.append(
            {
                "patient_id": patient.study_id,
                "age_years": age_at(identity.birth_date if identity else None, index.performed_on),
                "sex": identity.sex if identity and identity.sex != "unknown" else None,
                "diagnosis": diagnosis.kind if diagnosis else None,
                "primary_tumour": diagnosis.primary_tumour if diagnosis else None,
                "n_levels": len(index.levels.all()) or None,
                "baseline_vas": visit.vas if visit is not None else None,
                "analgesic_use": visit.analgesic_use if visit is not None else None,
            }
        )
    return pd.DataFrame.from_records(rows, columns=list(BASELINE_COLUMNS))


def procedure_baseline(fu: m.FollowUp) -> bool:
    """Whether ``fu`` is its procedure's baseline visit (by the procedure's stored protocol)."""
    for tp in fu.procedure.protocol.get("timepoints", []):
        if tp.get("code") == fu.timepoint:
            return bool(tp.get("baseline"))
    return False


def procedure_frames(**filters: Any) -> dict[str, Any]:
    """``{"levels", "procedures", "visits", "unlinked_leakages"}`` for the procedure outcomes:
    one row per treated level, per procedure, per completed visit (time point, analgesics)."""
    procs = [p for procs in _selection(filters).values() for p in procs]
    ids = [p.pk for p in procs]
    leak_types: dict[int, list[str]] = defaultdict(list)
    symptomatic: dict[int, bool] = defaultdict(bool)
    proc_types: dict[int, list[str]] = defaultdict(list)
    proc_symptomatic: dict[int, bool] = defaultdict(bool)
    only_level = {p.pk: treated[0].pk for p in procs if len(treated := list(p.levels.all())) == 1}
    unlinked = 0
    for lk in m.CementLeakage.objects.filter(procedure_id__in=ids):
        proc_types[lk.procedure_id].append(lk.leakage_type)
        proc_symptomatic[lk.procedure_id] |= bool(lk.symptomatic)
        level_pk = lk.treated_level_id or only_level.get(lk.procedure_id)
        if level_pk is None:  # a multi-level procedure: which level leaked is unknown
            unlinked += 1
            continue
        leak_types[level_pk].append(lk.leakage_type)
        symptomatic[level_pk] |= bool(lk.symptomatic)
    levels = []
    for t in m.TreatedLevel.objects.filter(procedure_id__in=ids).order_by("procedure_id", "pk"):
        levels.append(
            {
                "procedure_id": t.procedure_id,
                "level": t.level,
                "approach": t.approach,
                "cement_volume_ml": t.cement_volume_ml,
                "leakage_types": ";".join(sorted(set(leak_types[t.pk]))),
                "symptomatic": symptomatic[t.pk],
            }
        )
    classes: dict[int, list[str]] = defaultdict(list)
    for c in m.Complication.objects.filter(procedure_id__in=ids):
        classes[c.procedure_id].append(c.sir_class)
    procedures = []
    for p in procs:
        treated = list(p.levels.all())
        procedures.append(
            {
                "procedure_id": p.pk,
                "levels": ";".join(t.level for t in treated),
                "approaches": ";".join(sorted({t.approach for t in treated})),
                "complication_classes": ";".join(sorted(classes[p.pk])),
                "leakage_types": ";".join(sorted(set(proc_types[p.pk]))),
                "symptomatic": proc_symptomatic[p.pk],
            }
        )
    visits = list(
        m.FollowUp.objects.filter(
            procedure_id__in=ids, voided_at__isnull=True, completed_on__isnull=False
        ).values("timepoint", "analgesic_use")
    )
    return {
        "levels": pd.DataFrame.from_records(
            levels,
            columns=[
                "procedure_id",
                "level",
                "approach",
                "cement_volume_ml",
                "leakage_types",
                "symptomatic",
            ],
        ),
        "procedures": pd.DataFrame.from_records(
            procedures,
            columns=[
                "procedure_id",
                "levels",
                "approaches",
                "complication_classes",
                "leakage_types",
                "symptomatic",
            ],
        ),
        "visits": pd.DataFrame.from_records(visits, columns=["timepoint", "analgesic_use"]),
        "unlinked_leakages": unlinked,
    }


def _days(event: dt.date | None, index: dt.date, end: dt.date) -> tuple[int, bool]:
    """(days from ``index`` to the event, True) or (days to the end of follow-up, False)."""
    if event is not None and event <= end:
        return max((event - index).days, 0), True
    return max((end - index).days, 0), False


def survival_frame(**filters: Any) -> pd.DataFrame:
    """One row per patient: days to each endpoint or to censoring, and whether it happened."""
    by_patient = _selection(filters)
    ids = list(by_patient)
    # Four queries for the whole cohort (not four per patient).
    procs_of: dict[int, list[m.Procedure]] = defaultdict(list)
    for proc in (
        m.Procedure.objects.filter(patient_id__in=ids, voided_at__isnull=True, status="performed")
        .order_by("performed_on", "pk")
        .prefetch_related("levels")
    ):
        procs_of[proc.patient_id].append(proc)
    visits_of: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for patient_id, completed_on, outcome, outcome_on in m.FollowUp.objects.filter(
        procedure__patient_id__in=ids, procedure__voided_at__isnull=True, voided_at__isnull=True
    ).values_list("procedure__patient_id", "completed_on", "outcome", "outcome_on"):
        visits_of[patient_id].append((completed_on, outcome, outcome_on))
    studies_of: dict[int, list[m.ImagingStudy]] = defaultdict(list)
    for study in (
        m.ImagingStudy.objects.filter(patient_id__in=ids, voided_at__isnull=True)
        .order_by("study_date", "pk")
        .prefetch_related("findings")
    ):
        studies_of[study.patient_id].append(study)
    rows = []
    for patient_pk, study_id in (
        m.Patient.objects.filter(pk__in=ids).order_by("study_id").values_list("pk", "study_id")
    ):
        index = by_patient[patient_pk][0].performed_on
        all_procs = procs_of[patient_pk]
        contacts: list[dt.date] = [p.performed_on for p in all_procs]
        death: dt.date | None = None
        for completed_on, outcome, outcome_on in visits_of[patient_pk]:
            if completed_on is not None:
                contacts.append(completed_on)
            if outcome_on is not None:
                contacts.append(outcome_on)
                if outcome == "died":
                    death = outcome_on if death is None else min(death, outcome_on)
        studies = studies_of[patient_pk]
        contacts += [s.study_date for s in studies]
        end = death if death is not None else max(contacts)
        treated: set[str] = set()
        new_fracture: dt.date | None = None
        retreatment: dt.date | None = None
        for proc in all_procs:
            levels = {t.level for t in proc.levels.all()}
            if proc.performed_on > index:
                if levels - treated and new_fracture is None:
                    new_fracture = proc.performed_on
                if levels & treated and retreatment is None:
                    retreatment = proc.performed_on
            treated |= levels
        grades_before: dict[str, int] = {}
        for study in (s for s in studies if s.analysed_at is not None):
            grades = {
                f.level: f.genant_grade for f in study.findings.all() if f.genant_grade is not None
            }
            if study.study_date > index:
                done = {
                    t.level
                    for p in all_procs
                    if p.performed_on <= study.study_date
                    for t in p.levels.all()
                }
                for level, grade in grades.items():
                    if grade >= 1 and grades_before.get(level) == 0 and level not in done:
                        if new_fracture is None or study.study_date < new_fracture:
                            new_fracture = study.study_date
                        break
            grades_before.update(grades)

        death_days, died = _days(death, index, end)
        fracture_days, fractured = _days(new_fracture, index, end)
        retreat_days, retreated = _days(retreatment, index, end)
        rows.append(
            {
                "patient_id": study_id,
                "death_days": death_days,
                "death": died,
                "new_fracture_days": fracture_days,
                "new_fracture": fractured,
                "retreatment_days": retreat_days,
                "retreatment": retreated,
            }
        )
    return pd.DataFrame.from_records(rows, columns=list(SURVIVAL_COLUMNS))


def results_report(
    directory: Path | str | None = None,
    *,
    figures: Collection[str] | None = None,
    **filters: Any,
) -> dict[str, Any]:
    """Compute Table 1, the procedure outcomes and the Kaplan-Meier estimates of the selected
    cohort; with ``directory``, write each table as ``.csv`` and ``.txt`` and each plot as
    ``.png`` and ``.svg`` there. ``figures``: the names of the plots to draw (default all;
    drawing takes about a second each on a busy machine, so the web page draws one at a time).
    Returns ``{"tables": {name: ResultsTable}, "figures": {name: Figure}, "files": [Path]}``.
    """
    from spinewatch.outcomes.baseline import baseline_table
    from spinewatch.outcomes.procedure_outcomes import (
        analgesic_table,
        cement_volume_table,
        complication_table,
        leakage_table,
    )
    from spinewatch.outcomes.results_plot import (
        analgesic_figure,
        cement_volume_figure,
        km_figure,
        rates_figure,
        save_figure,
    )
    from spinewatch.outcomes.survival import ENDPOINTS, kaplan_meier, survival_table

    base = baseline_frame(**filters)
    frames = procedure_frames(**filters)
    surv = survival_frame(**filters)
    tables: dict[str, Any] = {}
    drawn: dict[str, Any] = {}

    def wanted(name: str) -> bool:
        return figures is None or name in figures

    if len(base):
        tables["table1_baseline"] = baseline_table(base)
    levels = frames["levels"]
    if len(levels):
        tables["leakage"] = leakage_table(
            levels, unlinked_leakages=frames["unlinked_leakages"], procedures=frames["procedures"]
        )
        tables["cement_volume"] = cement_volume_table(levels)
        if wanted("leakage"):
            drawn["leakage"] = rates_figure(tables["leakage"], outcome="leakage (any type)")
        if wanted("cement_volume"):
            drawn["cement_volume"] = cement_volume_figure(
                list(levels["level"]), list(levels["cement_volume_ml"])
            )
    if len(frames["procedures"]):
        tables["complications"] = complication_table(frames["procedures"])
        if wanted("complications"):
            drawn["complications"] = rates_figure(
                tables["complications"], outcome="complication (SIR A-F)"
            )
    analgesics = analgesic_table(frames["visits"])
    if analgesics.rows:
        tables["analgesics"] = analgesics
        if wanted("analgesics"):
            drawn["analgesics"] = analgesic_figure(analgesics)
    if len(surv):
        fits = [
            kaplan_meier(
                surv[f"{key}_days"].tolist(), surv[key].tolist(), endpoint=key, label=label
            )
            for key, label in ENDPOINTS.items()
        ]
        tables["survival"] = survival_table(fits)
        if wanted("survival"):
            drawn["survival"] = km_figure(fits)
    files: list[Path] = []
    if directory is not None:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            for suffix, text in ((".csv", table.to_csv()), (".txt", table.to_text())):
                path = out / f"{name}{suffix}"
                path.write_text(text, encoding="utf-8")
                files.append(path)
        for name, fig in drawn.items():
            for suffix in (".png", ".svg"):
                files.append(save_figure(fig, out / f"{name}{suffix}"))
    return {"tables": tables, "figures": drawn, "files": files}
