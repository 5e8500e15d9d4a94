"""The demo registry: a synthetic programme with obviously fictional patients.

Everything is written through the service layer, exactly as real data would be. The cohort is
drawn from a seeded random generator shaped like the reference study (Sun et al. 2013: VAS about
7.6 before, 2 after three days, falling below 1 at a year; follow-up length varies so fewer
patients reach 6 and 12 months). Names are fictional by construction (``Demo`` family names) and
hospital numbers start with ``DEMO-``, so nothing here can be mistaken for a real person.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from spinewatch.core.leakage import CementLeakage
from spinewatch.core.procedures import TreatedLevel
from spinewatch.core.protocol import DEFAULT_PROTOCOL
from spinewatch.registry import services

__all__ = ["DemoSummary", "build_demo_registry", "demo_vas"]

_GIVEN = (
    "Ada",
    "Basil",
    "Clementine",
    "Dorian",
    "Edith",
    "Felix",
    "Greta",
    "Hugo",
    "Iris",
    "Jasper",
    "Kit",
    "Lavinia",
    "Magnus",
    "Nell",
    "Otto",
    "Pearl",
    "Quentin",
    "Rosa",
    "Silas",
    "Tilda",
    "Ursula",
    "Victor",
    "Wren",
    "Xavier",
)
_FAMILY = (
    "Demoford",
    "Testwell",
    "Samplesby",
    "Mockridge",
    "Placeholder",
    "Fictionby",
    "Dummington",
    "Examplar",
    "Pretendale",
    "Synthwick",
    "Notreal",
    "Madeupson",
)
# (kind, primary tumour, treated levels, approach, procedure type, ablation modality)
_CASES: tuple[tuple[str, str | None, tuple[str, ...], str, str, str | None], ...] = (
    ("metastasis", "lung", ("C2",), "anterolateral", "vertebroplasty", None),
    # the first myeloma patient: treated at L4, which the demo's phantom CTs show cemented
    ("myeloma", None, ("L4",), "transpedicular", "vertebroplasty", None),
    (
        "metastasis",
        "breast",
        ("L2",),
        "transpedicular",
        "ablation_vertebroplasty",
        "radiofrequency",
    ),
    ("myeloma", None, ("T8", "T9"), "parapedicular", "vertebroplasty", None),
    ("metastasis", "kidney", ("L3",), "transpedicular", "ablation_vertebroplasty", "microwave"),
    ("metastasis", "thyroid", ("C2",), "anterolateral", "vertebroplasty", None),
    ("myeloma", None, ("T11", "T12", "L1"), "transpedicular", "vertebroplasty", None),
    ("metastasis", "prostate", ("T12",), "transpedicular", "kyphoplasty", None),
    ("metastasis", "lung", ("T6", "T7"), "parapedicular", "vertebroplasty", None),
    ("myeloma", None, ("L5",), "transpedicular", "ablation_vertebroplasty", "cryo"),
    ("metastasis", "breast", ("T10", "T11"), "transpedicular", "vertebroplasty", None),
    ("metastasis", "other", ("L4",), "transpedicular", "vertebroplasty", None),
)


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`build_demo_registry` created."""

    patients: int
    procedures: int
    follow_ups_completed: int
    study_ids: tuple[str, ...] = field(default=())


def demo_vas(rng: random.Random, months_followed: int) -> dict[str, float]:
    """One fictional patient's VAS per time point code, shaped like the reference study.

    ``months_followed`` (3, 6 or 12) cuts the trajectory: later visits are missing, as in a
    real cohort whose follow-up length varies.
    """
    pre = min(10.0, max(5.0, rng.gauss(7.6, 0.9)))
    means = {"3d": 2.1, "1m": 1.8, "3m": 1.7, "6m": 0.9, "12m": 0.6}
    sds = {"3d": 1.9, "1m": 1.7, "3m": 1.8, "6m": 0.8, "12m": 0.5}
    reach = {"3d": 0, "1m": 1, "3m": 3, "6m": 6, "12m": 12}
    values = {"pre": round(pre, 1)}
    for code, mean in means.items():
        if reach[code] > months_followed:
            continue
        values[code] = round(min(10.0, max(0.0, rng.gauss(mean, sds[code]))), 1)
    return values


def _procedure_levels(case: tuple[Any, ...], rng: random.Random) -> list[TreatedLevel]:
    _, _, levels, approach, _, ablation = case
    treated = []
    for level in levels:
        cervical = level.startswith("C")
        treated.append(
            TreatedLevel(
                level=level,
                approach=approach,
                needle_gauge=13 if cervical else 11,
                cement_volume_ml=round(rng.uniform(1.5, 2.5) if cervical else rng.uniform(3, 6), 1),
                ablation=ablation,
                ablation_power_w=(
                    None if ablation is None else (None if ablation == "cryo" else 60.0)
                ),
                ablation_duration_s=None if ablation is None else 360.0,
            )
        )
    return treated


def build_demo_registry(
    *,
    n_patients: int = 24,
    seed: int = 2013,
    today: dt.date | None = None,
    case_managers: Sequence[Any] = (),
) -> DemoSummary:
    """Fill an empty registry with ``n_patients`` fictional patients, procedures and follow-ups.

    Procedure dates are spread over the last 18 months before ``today``; follow-ups that are not
    yet due stay open (the worklists then have something to show).
    Patients are shared out among ``case_managers`` (users), every fourth one left unassigned.
    """
    today = today or dt.date.today()
    rng = random.Random(seed)
    study_ids = []
    completed = 0
    procedures = 0
    for i in range(n_patients):
        case = _CASES[i % len(_CASES)]
        kind, primary, _, _, procedure_type, _ = case
        given = _GIVEN[i % len(_GIVEN)]
        family = _FAMILY[i % len(_FAMILY)]
        birth = dt.date(1940 + rng.randrange(0, 35), rng.randrange(1, 13), rng.randrange(1, 28))
        manager = case_managers[i % len(case_managers)] if case_managers and i % 4 else None
        patient = services.create_patient(
            case_manager=manager,
            identity=services.IdentityData(
                family_name=family,
                given_name=given,
                hospital_number=f"DEMO-{i + 1:05d}",
                birth_date=birth,
                sex=rng.choice(("female", "male")),
            ),
        )
        study_ids.append(patient.study_id)
        services.add_diagnosis(
            patient=patient,
            kind=kind,
            primary_tumour=primary,
            diagnosed_on=today - dt.timedelta(days=420 + rng.randrange(0, 400)),
        )
        # Two in three treated 6-18 months ago (their later visits done), the rest recently
        # (visits still open, so the worklists have something to show).
        days_ago = rng.randrange(200, 560) if i % 3 else rng.randrange(5, 120)
        performed_on = today - dt.timedelta(days=days_ago)
        leakages = []
        if rng.random() < 0.38:  # 5 of 13 in the reference study, none symptomatic
            leakages.append(
                CementLeakage(type=rng.choice("BSC"), site="paravertebral", symptomatic=False)
            )
        procedure = services.record_procedure(
            patient=patient,
            performed_on=performed_on,
            procedure_type=procedure_type,
            guidance="fluoroscopy" if i % 3 else "ct_fluoroscopy",
            anaesthesia="local",
            day_case=True,
            levels=_procedure_levels(case, rng),
            leakages=leakages,
            operator="Dr Demo Operator",
        )
        procedures += 1
        months = rng.choice((3, 6, 6, 12, 12, 12))
        vas = demo_vas(rng, months)
        for visit in DEFAULT_PROTOCOL.schedule(performed_on):
            code = visit.timepoint.code
            if code not in vas or visit.due > today:
                continue
            follow_up = services.find_follow_up(procedure=procedure, timepoint=code)
            services.record_follow_up(
                follow_up=follow_up,
                expected_version=follow_up.version,
                completed_on=visit.due,
                vas=vas[code],
                analgesic_use=rng.choice(("none", "non_opioid", "weak_opioid")),
                entered_via="staff" if i % 2 else "portal",
            )
            completed += 1
        # A few surveillance scans fall due around now, so the worklist has something to show.
        due_in_days = {0: -5, 1: 6, 2: 12}.get(i % 7)
        services.set_surveillance_plan(
            patient=patient,
            next_scan_due=None if due_in_days is None else today + dt.timedelta(days=due_in_days),
        )
    return DemoSummary(
        patients=n_patients,
        procedures=procedures,
        follow_ups_completed=completed,
        study_ids=tuple(study_ids),
    )
