"""REDCap export and import: the files' formats, de-identification and the round trip."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import pytest

from spinewatch.outcomes.redcap import (
    ANALGESIC_CHOICES,
    DICTIONARY_COLUMNS,
    IDENTIFIER_FIELDS,
    SEX_CHOICES,
    RedcapError,
    read_records,
)
from spinewatch.registry.choices import AnalgesicUse, Sex

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 1)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def registry(monkeypatch):
    """The demo registry (8 fictional patients), one with a second procedure and one with a
    value taken outside its window."""
    from spinewatch.core.procedures import TreatedLevel
    from spinewatch.registry import models as m
    from spinewatch.registry import services
    from spinewatch.registry.demo import build_demo_registry

    summary = build_demo_registry(n_patients=8, today=TODAY)
    patient = m.Patient.objects.get(study_id=summary.study_ids[1])
    first = patient.procedures.get()
    second = services.record_procedure(
        patient=patient,
        performed_on=first.performed_on + dt.timedelta(days=100),
        procedure_type="kyphoplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        levels=[TreatedLevel("T11", "transpedicular", 11, 3.25)],
        operator="Dr Demo Operator",
    )
    for code, days, vas in (("pre", 0, 8.0), ("3d", 3, 3.5), ("1m", 52, 2.0)):  # 1m: late
        fu = services.find_follow_up(procedure=second, timepoint=code)
        services.record_follow_up(
            follow_up=fu,
            expected_version=fu.version,
            completed_on=second.performed_on + dt.timedelta(days=days),
            vas=vas,
            entered_via="staff",
        )
    return summary


def _table(mixed_model: bool = True, **kwargs):
    from spinewatch.outcomes.table import outcome_table
    from spinewatch.registry.deid import deidentified_cohort_frame

    return outcome_table(
        deidentified_cohort_frame(**kwargs), mixed_model=mixed_model
    ).to_json_dict()


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def test_vocabularies_are_the_registrys():
    assert tuple((c.value, c.label) for c in Sex) == SEX_CHOICES
    assert tuple((c.value, c.label) for c in AnalgesicUse) == ANALGESIC_CHOICES


def test_export_formats_and_deidentification(registry, tmp_path):
    from spinewatch.registry.redcap import export_redcap

    paths = export_redcap(tmp_path)
    with paths["dictionary"].open(newline="", encoding="utf-8") as fh:
        lines = list(csv.reader(fh))
    assert tuple(lines[0]) == DICTIONARY_COLUMNS and len(DICTIONARY_COLUMNS) == 18
    assert all(len(line) == 18 for line in lines)
    marked = {line[0] for line in lines[1:] if line[10] == "y"}
    assert marked == set(IDENTIFIER_FIELDS)
    assert lines[1][0] == "record_id"  # REDCap: the first field is the record id

    events = _rows(paths["events"])
    assert [
        (e["unique_event_name"], e["day_offset"], e["offset_min"], e["offset_max"]) for e in events
    ] == [
        ("preoperative_arm_1", "0", "30", "0"),
        ("3_days_arm_1", "3", "1", "4"),
        ("1_month_arm_1", "30", "7", "7"),
        ("3_months_arm_1", "91", "14", "14"),
        ("6_months_arm_1", "182", "30", "30"),
        ("12_months_arm_1", "365", "45", "45"),
    ]
    mapping = _rows(paths["mapping"])
    assert {(r["unique_event_name"], r["form"]) for r in mapping} >= {
        ("preoperative_arm_1", "patient"),
        ("preoperative_arm_1", "procedure"),
        ("12_months_arm_1", "pain"),
    }

    text = paths["records"].read_text(encoding="utf-8")
    records = _rows(paths["records"])
    assert not set(IDENTIFIER_FIELDS) & set(records[0])
    for needle in ("DEMO-0", "Dr Demo", str(TODAY.year) + "-"):
        assert needle not in text
    baseline = [r for r in records if r["redcap_event_name"] == "preoperative_arm_1"]
    assert len(baseline) == 9  # 8 patients, one with two procedures
    assert all(r["age_years"] and 0 <= int(r["age_years"]) <= 90 for r in baseline)
    assert {r["sex"] for r in baseline} <= {"female", "male"}
    assert "3.25" in {r["cement_volumes_ml"] for r in baseline}
    # numbers are written short: no 7.487500000000001
    assert all(len(r["vas"]) <= 4 for r in records if r["vas"])


def test_identifiable_export_marks_and_carries_identifiers(registry, tmp_path):
    from spinewatch.registry.redcap import export_redcap

    records = _rows(export_redcap(tmp_path, identifiable=True)["records"])
    baseline = [r for r in records if r["redcap_event_name"] == "preoperative_arm_1"]
    assert all(r["hospital_number"].startswith("DEMO-") for r in baseline)
    assert all(dt.date.fromisoformat(r["procedure_date"]) < TODAY for r in baseline)


def test_round_trip_gives_the_same_outcome_table_and_baseline(registry, tmp_path):
    from spinewatch.registry import models as m
    from spinewatch.registry.deid import deidentified_cohort_frame
    from spinewatch.registry.redcap import export_redcap, import_redcap

    before = _table()
    before_out = _table(False, include_out_of_window=True)
    frame = deidentified_cohort_frame()
    ages = frame.groupby("study_id")["age_years"].first().to_dict()
    sexes = frame.groupby("study_id")["sex"].first().to_dict()
    assert before["n_series"] == before["n_patients"] + 1

    paths = export_redcap(tmp_path)
    m.Patient.objects.all().delete()  # an empty SpineWatch
    assert m.FollowUp.objects.count() == 0

    summary = import_redcap(paths["records"], index_date=dt.date(2023, 1, 2))
    assert (summary.patients, summary.procedures) == (8, 9)
    assert _close(_table(), before)
    assert _close(_table(False, include_out_of_window=True), before_out)
    again = deidentified_cohort_frame()
    assert again.groupby("study_id")["age_years"].first().to_dict() == ages
    assert again.groupby("study_id")["sex"].first().to_dict() == sexes
    second = m.Procedure.objects.filter(patient__study_id=registry.study_ids[1]).order_by(
        "performed_on"
    )
    assert [(t.level, t.cement_volume_ml) for t in second.last().levels.all()] == [("T11", 3.25)]


def test_import_is_all_or_nothing_with_one_clear_error(registry, tmp_path):
    from spinewatch.registry import models as m
    from spinewatch.registry.redcap import export_redcap, import_redcap

    path = export_redcap(tmp_path)["records"]
    m.Patient.objects.all().delete()
    lines = path.read_text(encoding="utf-8").splitlines()
    header = next(csv.reader([lines[0]]))
    row = next(csv.reader([lines[-1]]))
    row[header.index("vas")] = "11"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:-1], ",".join(row)]) + "\n", encoding="utf-8")
    with pytest.raises(RedcapError, match=rf"bad\.csv, line {len(lines)}, column 'vas': '11'"):
        import_redcap(bad)
    assert m.Patient.objects.count() == 0

    # a record whose patient is already treated in the registry: nothing is written
    import_redcap(path)
    n = m.FollowUp.objects.count()
    with pytest.raises(Exception, match="already has procedures"):
        import_redcap(path)
    assert m.FollowUp.objects.count() == n


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("redcap_event_name", "week_2_arm_1", "one of preoperative_arm_1"),
        ("levels", "L9", "vertebral levels"),
        ("age_years", "97", "0-90"),
        ("procedure_type", "laminectomy", "one of vertebroplasty"),
    ],
)
def test_read_records_names_line_column_and_value(tmp_path, column, value, expected):
    header = [
        "record_id",
        "redcap_event_name",
        "study_id",
        "procedure_number",
        "age_years",
        "procedure_day",
        "procedure_type",
        "levels",
        "approaches",
        "needle_gauges",
        "cement_volumes_ml",
        "visit_day",
        "vas",
    ]
    row = dict(
        zip(
            header,
            [
                "SW-1_1",
                "preoperative_arm_1",
                "SW-1",
                "1",
                "70",
                "0",
                "vertebroplasty",
                "L1",
                "transpedicular",
                "11",
                "3.5",
                "0",
                "7",
            ],
            strict=True,
        )
    )
    row[column] = value
    path = tmp_path / "records.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header)
        writer.writeheader()
        writer.writerow(row)
    with pytest.raises(
        RedcapError,
        match=rf"records\.csv, line 2, column '{column}': '{value}'; expected {expected}",
    ):
        read_records(path)
