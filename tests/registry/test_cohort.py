"""import_cohort (all or nothing, round trip) and cohort_frame (columns, filters, numbering)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from spinewatch.core.errors import InputError
from spinewatch.core.procedures import TreatedLevel
from spinewatch.registry import models as m
from spinewatch.registry.services import (
    COHORT_COLUMNS,
    RegistryError,
    add_diagnosis,
    cohort_frame,
    create_patient,
    find_follow_up,
    import_cohort,
    record_follow_up,
    record_procedure,
)
from spinewatch.registry.services._base import today

pytestmark = pytest.mark.django_db

CODES = ("pre", "3d", "1m", "3m", "6m", "12m")


def _synthetic_rows(n_patients=13, seed=7):
    """A reference-study-shaped cohort: everyone has pre..3m, fewer reach 6 and 12 months."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_patients):
        reach = 6 if i < n_patients // 2 else (5 if i % 2 else 4)
        for code in CODES[:reach]:
            vas = round(float(np.clip(rng.normal(7.6 if code == "pre" else 2.0, 1.2), 0, 10)), 1)
            rows.append((f"P{i + 1:02d}", code, vas))
    return rows


def _write(path, rows, header="patient_id,timepoint,vas"):
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_import_round_trip(tmp_path):
    rows = _synthetic_rows()
    path = _write(tmp_path / "cohort.csv", rows)
    summary = import_cohort(path, procedure_date=dt.date(2023, 1, 15))
    assert (summary.patients, summary.procedures, summary.follow_ups) == (13, 13, len(rows))
    assert summary.scheduled == 13 * 6
    assert str(summary) == f"imported 13 patients, 13 procedures, {len(rows)} follow-ups"

    frame = cohort_frame()
    assert tuple(frame.columns) == COHORT_COLUMNS
    got = sorted(zip(frame.patient_id, frame.timepoint, frame.vas, strict=True))
    assert got == sorted(rows)
    assert set(frame.procedure_date) == {dt.date(2023, 1, 15)}
    assert set(frame.entered_via) == {"import"} and set(frame.levels) == {""}
    # completed on the visit's due date: days after the procedure = the protocol offsets
    offsets = {"pre": 0, "3d": 3, "1m": 30, "3m": 91, "6m": 182, "12m": 365}
    assert all(frame.days_after_procedure == frame.timepoint.map(offsets))
    # rows in patient and protocol order
    p01 = frame[frame.patient_id == "P01"]
    assert list(p01.timepoint) == list(CODES)
    assert not m.PatientIdentity.objects.exists()  # pseudonymous import
    assert set(m.Procedure.objects.values_list("recorded_via", "procedure_type")) == {
        ("import", "vertebroplasty")
    }


def test_import_equals_the_files_data_read_by_outcomes(tmp_path):
    from spinewatch.outcomes.cohort_file import read_cohort_csv

    path = _write(tmp_path / "c.csv", _synthetic_rows(seed=3))
    import_cohort(path, procedure_date=dt.date(2023, 6, 1))
    expected = read_cohort_csv(path)[["patient_id", "timepoint", "vas"]]
    expected = expected.assign(timepoint=expected.timepoint.astype(str))
    got = cohort_frame()[["patient_id", "timepoint", "vas"]]
    key = ["patient_id", "timepoint"]
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True),
        expected.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )


def test_bad_line_9_of_20_leaves_the_registry_empty(tmp_path):
    rows = [(f"P{i // 2 + 1:02d}", "pre" if i % 2 == 0 else "3d", 5) for i in range(19)]
    rows.insert(7, ("P99", "3d", 11))  # file line 9 (header is line 1)
    path = _write(tmp_path / "bad.csv", rows)
    with pytest.raises(InputError) as info:
        import_cohort(path)
    message = str(info.value)
    assert "bad.csv" in message and "line 9" in message and "11" in message
    assert not m.Patient.objects.exists()
    assert not m.Procedure.objects.exists() and not m.FollowUp.objects.exists()


def test_duplicate_patient_leaves_registry_unchanged(tmp_path):
    create_patient(study_id="P03")
    rows = [("P01", "pre", 7), ("P02", "pre", 6), ("P02", "1m", 2), ("P03", "pre", 8)]
    path = _write(tmp_path / "dup.csv", rows)
    with pytest.raises(RegistryError) as info:
        import_cohort(path)
    assert str(info.value) == (
        f"{path}, line 5, column \"patient_id\": patient 'P03' is already in the registry; "
        "nothing was imported"
    )
    assert list(m.Patient.objects.values_list("study_id", flat=True)) == ["P03"]
    assert not m.Procedure.objects.exists()


def test_second_import_of_same_file_refused(tmp_path):
    path = _write(tmp_path / "c.csv", _synthetic_rows(3))
    import_cohort(path, procedure_date=dt.date(2023, 1, 1))
    before = m.FollowUp.objects.filter(vas__isnull=False).count()
    with pytest.raises(RegistryError, match="line 2"):
        import_cohort(path)
    assert m.FollowUp.objects.filter(vas__isnull=False).count() == before


def test_procedure_date_column_then_argument_then_today(tmp_path):
    path = tmp_path / "dated.csv"
    path.write_text(
        "patient_id,timepoint,vas,procedure_date\nA,pre,8,2022-02-01\nA,1m,3,\nB,pre,7,\nB,3d,2,\n"
    )
    import_cohort(path, procedure_date=dt.date(2022, 5, 5))
    dates = dict(m.Procedure.objects.values_list("patient__study_id", "performed_on"))
    assert dates == {"A": dt.date(2022, 2, 1), "B": dt.date(2022, 5, 5)}
    a1m = m.FollowUp.objects.get(procedure__patient__study_id="A", timepoint="1m")
    assert a1m.completed_on == dt.date(2022, 3, 3)
    _write(tmp_path / "undated.csv", [("C", "pre", 6)])
    import_cohort(tmp_path / "undated.csv")
    assert m.Procedure.objects.get(patient__study_id="C").performed_on == today()


def test_future_procedure_date_in_file_refused(tmp_path):
    future = (today() + dt.timedelta(days=3)).isoformat()
    path = tmp_path / "f.csv"
    path.write_text(f"patient_id,timepoint,vas,procedure_date\nA,pre,8,{future}\n")
    with pytest.raises(RegistryError, match=r'line 2, column "procedure_date"'):
        import_cohort(path)
    assert not m.Patient.objects.exists()


def test_unusable_study_id_refused(tmp_path):
    path = _write(tmp_path / "s.csv", [("A 1", "pre", 5)])
    with pytest.raises(RegistryError, match=r"line 2, column \"patient_id\": 'A 1'"):
        import_cohort(path)


def _staff_procedure(patient, when, level="L1", approach="transpedicular", kind="vertebroplasty"):
    return record_procedure(
        patient=patient,
        performed_on=when,
        procedure_type=kind,
        guidance="ct",
        anaesthesia="local",
        day_case=True,
        operator="Dr X",
        levels=[TreatedLevel(level, approach, 11, 3.0)],
    )


def _complete(procedure, code, vas):
    fu = find_follow_up(procedure=procedure, timepoint=code)
    record_follow_up(follow_up=fu, expected_version=fu.version, completed_on=fu.due_date, vas=vas)


def test_cohort_frame_numbering_filters_and_context():
    a = create_patient(study_id="SW-000012")
    add_diagnosis(patient=a, kind="myeloma", diagnosed_on=dt.date(2020, 1, 1))
    add_diagnosis(
        patient=a, kind="metastasis", primary_tumour="lung", diagnosed_on=dt.date(2021, 1, 1)
    )
    first = _staff_procedure(a, dt.date(2023, 1, 1), "T12")
    second = _staff_procedure(a, dt.date(2023, 6, 1), "L2", "parapedicular")
    b = create_patient(study_id="SW-000013")
    add_diagnosis(patient=b, kind="osteoporotic_fracture")
    third = _staff_procedure(b, dt.date(2023, 3, 1), "C2", "anterolateral")
    for proc, vas in ((first, 8), (second, 7), (third, 6)):
        _complete(proc, "pre", vas)
        _complete(proc, "1m", vas - 4)
    find = find_follow_up(procedure=third, timepoint="3m")  # completed without VAS: not a row
    record_follow_up(follow_up=find, expected_version=1, completed_on=find.due_date, vas=None)

    frame = cohort_frame()
    assert len(frame) == 6
    assert list(dict.fromkeys(frame.patient_id)) == ["SW-000012", "SW-000012/2", "SW-000013"]
    row = frame[frame.patient_id == "SW-000012/2"].iloc[0]
    assert (row.diagnosis, row.primary_tumour, row.levels, row.approaches) == (
        "metastasis",
        "lung",
        "L2",
        "parapedicular",
    )
    assert row.procedure_number == 2 and row.study_id == "SW-000012"

    assert set(cohort_frame(diagnosis="myeloma").patient_id) == {"SW-000012", "SW-000012/2"}
    assert set(cohort_frame(level="c2").patient_id) == {"SW-000013"}
    assert set(cohort_frame(approach="parapedicular").patient_id) == {"SW-000012/2"}
    # numbering is the patient's, not the filtered selection's
    assert set(cohort_frame(date_from=dt.date(2023, 2, 1)).patient_id) == {
        "SW-000012/2",
        "SW-000013",
    }
    assert set(cohort_frame(date_to=dt.date(2023, 1, 1)).patient_id) == {"SW-000012"}
    assert cohort_frame(procedure_type="kyphoplasty").empty
    assert tuple(cohort_frame(procedure_type="kyphoplasty").columns) == COHORT_COLUMNS


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"diagnosis": "flu"}, "flu"),
        ({"level": "X1"}, "X1"),
        ({"approach": "up"}, "up"),
        ({"date_from": "2023"}, "date_from"),
    ],
)
def test_cohort_frame_bad_filters(kw, match):
    with pytest.raises(RegistryError, match=match):
        cohort_frame(**kw)
