"""The registry's results frames: survival endpoints and censoring, leakages, the report files."""

from __future__ import annotations

import datetime as dt

import pytest

from spinewatch.core.leakage import CementLeakage
from spinewatch.core.procedures import TreatedLevel

pytestmark = pytest.mark.django_db

DAY0 = dt.date(2024, 1, 10)


def _procedure(patient, day, levels, **extra):
    from spinewatch.registry import services

    return services.record_procedure(
        patient=patient,
        performed_on=DAY0 + dt.timedelta(days=day),
        procedure_type="vertebroplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        levels=[TreatedLevel(level, "transpedicular", 11, 3.5) for level in levels],
        operator="Dr Who",
        **extra,
    )


def _patient(birth=dt.date(1950, 1, 1), sex="female"):
    from spinewatch.registry import services

    return services.create_patient(
        identity=services.IdentityData(
            family_name="Testperson",
            given_name="Ada",
            hospital_number=f"HN-{birth.isoformat()}-{sex}",
            birth_date=birth,
            sex=sex,
        )
    )


def _complete(procedure, code, day, vas):
    from spinewatch.registry import services

    fu = services.find_follow_up(procedure=procedure, timepoint=code)
    services.record_follow_up(
        follow_up=fu,
        expected_version=fu.version,
        completed_on=procedure.performed_on + dt.timedelta(days=day),
        vas=vas,
        analgesic_use="weak_opioid",
    )


def test_survival_endpoints_and_censoring():
    from spinewatch.registry import services
    from spinewatch.registry.results import survival_frame

    # A: L1 at day 0, L1 again (re-treatment) at day 100 and T12 (new fracture) at day 200;
    #    died on day 300.
    a = _patient()
    first = _procedure(a, 0, ["L1"])
    _complete(first, "pre", 0, 8)
    _procedure(a, 100, ["L1"])
    _procedure(a, 200, ["T12"])
    twelve = services.find_follow_up(procedure=first, timepoint="12m")
    services.record_visit_outcome(
        follow_up=twelve,
        expected_version=twelve.version,
        outcome="died",
        outcome_on=DAY0 + dt.timedelta(days=300),
    )
    # B: one procedure, last seen at the 3-month visit (day 95): censored there for every endpoint
    b = _patient(dt.date(1960, 5, 5), "male")
    only = _procedure(b, 10, ["T8"])
    _complete(only, "pre", 0, 7)
    _complete(only, "3m", 85, 2)

    frame = survival_frame().set_index("patient_id")
    ra, rb = frame.loc[a.study_id], frame.loc[b.study_id]
    assert (ra.retreatment_days, ra.retreatment) == (100, True)
    assert (ra.new_fracture_days, ra.new_fracture) == (200, True)
    assert (ra.death_days, ra.death) == (300, True)
    for key in ("death", "new_fracture", "retreatment"):
        assert (rb[f"{key}_days"], rb[key]) == (85, False)


def test_results_report_writes_tables_and_plots(tmp_path):
    from spinewatch.registry.results import baseline_frame, procedure_frames, results_report

    p = _patient(dt.date(1930, 1, 1))  # 94 at the procedure: top-coded to 90
    one = _procedure(
        p, 0, ["L2"], leakages=[CementLeakage(type="S", site="venous", symptomatic=True)]
    )
    _complete(one, "pre", 0, 9)
    q = _patient(dt.date(1955, 3, 3), "male")
    two = _procedure(
        q,
        5,
        ["T11", "T12"],
        leakages=[CementLeakage(type="B", site="paravertebral", symptomatic=False)],
    )
    _complete(two, "pre", 0, 6.5)

    base = baseline_frame().set_index("patient_id")
    assert base.loc[p.study_id, "age_years"] == 90
    assert base.loc[q.study_id, "n_levels"] == 2 and base.loc[q.study_id, "baseline_vas"] == 6.5
    frames = procedure_frames()
    assert frames["unlinked_leakages"] == 1  # the two-level procedure's leakage has no level
    levels = frames["levels"].set_index("level")
    assert levels.loc["L2", "leakage_types"] == "S" and bool(levels.loc["L2", "symptomatic"])

    report = results_report(tmp_path)
    names = sorted(f.name for f in report["files"])
    for stem in (
        "table1_baseline",
        "leakage",
        "complications",
        "cement_volume",
        "analgesics",
        "survival",
    ):
        assert f"{stem}.csv" in names and f"{stem}.txt" in names
    for stem in ("leakage", "survival", "cement_volume"):
        assert f"{stem}.png" in names and f"{stem}.svg" in names
    leakage = (tmp_path / "leakage.csv").read_text()
    assert "procedure,all procedures,leakage (any type),2,2,100" in leakage
