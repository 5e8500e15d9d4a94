"""De-identification: no identifier or calendar date survives; ages and day counts are right."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from spinewatch.core.procedures import TreatedLevel
from spinewatch.outcomes import outcome_table
from spinewatch.registry import deid
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services import (
    ComplicationRecord,
    IdentityData,
    add_diagnosis,
    add_imaging_study,
    cohort_frame,
    create_patient,
    find_follow_up,
    record_follow_up,
    record_procedure,
    set_surveillance_plan,
)

pytestmark = pytest.mark.django_db

BIRTH = dt.date(1950, 6, 15)
FIRST = dt.date(2024, 3, 1)
SECOND = dt.date(2024, 9, 10)
IDENTITY = IdentityData(
    family_name="Quixotewright",
    given_name="Philomena",
    hospital_number="HN-7731942",
    birth_date=BIRTH,
    sex="female",
    phone="+44 7700 900123",
    email="philomena.q@example.org",
)


def _calendar_strings(day: dt.date) -> list[str]:
    return [day.isoformat(), day.strftime("%d/%m/%Y"), day.strftime("%Y%m%d")]


@pytest.fixture
def rich_patient():
    """A patient with identity, free text, two procedures, follow-ups, a study and a plan."""
    patient = create_patient(identity=IDENTITY)
    add_diagnosis(
        patient=patient,
        kind="myeloma",
        diagnosed_on=dt.date(2023, 11, 20),
        notes="Philomena told us at HN-7731942",
    )
    p1 = record_procedure(
        patient=patient,
        performed_on=FIRST,
        procedure_type="vertebroplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        levels=[TreatedLevel("L1", "transpedicular", 11, 4.5)],
        complications=[
            ComplicationRecord("A", "Quixotewright felt faint", dt.date(2024, 3, 2)),
        ],
        operator="Dr Zebedee Operatorname",
        notes="Quixotewright, Philomena -- call +44 7700 900123",
    )
    p2 = record_procedure(
        patient=patient,
        performed_on=SECOND,
        procedure_type="vertebroplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        levels=[TreatedLevel("T12", "transpedicular", 11, 3.0)],
        operator="Dr Zebedee Operatorname",
    )
    completions = [
        (p1, "pre", dt.date(2024, 2, 20), 8.0),
        (p1, "1m", dt.date(2024, 4, 2), 3.5),
        (p2, "pre", dt.date(2024, 9, 1), 7.0),
        (p2, "3d", dt.date(2024, 9, 13), 2.0),
    ]
    for proc, code, when, vas in completions:
        fu = find_follow_up(procedure=proc, timepoint=code)
        record_follow_up(
            follow_up=fu,
            expected_version=fu.version,
            completed_on=when,
            vas=vas,
            analgesic_use="weak_opioid",
        )
    add_imaging_study(
        patient=patient,
        study_date=dt.date(2024, 2, 1),
        study_instance_uid="1.2.826.0.1.3680043.8.498.111",
        series_instance_uid="1.2.826.0.1.3680043.8.498.112",
        description="CT spine Quixotewright",
        report={
            "scan": {"patient_name": "Quixotewright^Philomena"},
            "vertebrae": [{"level": "L1", "collapse_risk": "high", "reasons": ["lytic 40%"]}],
        },
    )
    set_surveillance_plan(patient=patient, interval_days=90, next_scan_due=dt.date(2024, 12, 1))
    return patient


def _forbidden_values(patient):
    values = [
        IDENTITY.family_name,
        IDENTITY.given_name,
        IDENTITY.hospital_number,
        IDENTITY.phone,
        IDENTITY.email,
        "Zebedee",
        "Operatorname",
        "1.2.826.0.1.3680043",
        *_calendar_strings(BIRTH),
    ]
    # every calendar date stored for the patient
    dates = {FIRST, SECOND, dt.date(2023, 11, 20), dt.date(2024, 2, 1), dt.date(2024, 12, 1)}
    for proc in patient.procedures.all():
        for fu in proc.follow_ups.all():
            dates |= {fu.due_date, fu.window_start, fu.window_end}
            if fu.completed_on:
                dates.add(fu.completed_on)
    for day in dates:
        values += _calendar_strings(day)
    return values


def test_index_date_is_first_procedure(rich_patient):
    assert deid.index_date(rich_patient) == FIRST
    assert deid.index_date(rich_patient.pk) == FIRST
    assert deid.index_date(create_patient()) is None


def test_index_date_refuses_bad_reference():
    with pytest.raises(RegistryError, match="'x'"):
        deid.index_date("x")
    with pytest.raises(RegistryError, match="999999"):
        deid.index_date(999999)


@pytest.mark.parametrize(
    ("birth", "when", "expected"),
    [
        (dt.date(1950, 6, 15), dt.date(2024, 6, 14), 73),
        (dt.date(1950, 6, 15), dt.date(2024, 6, 15), 74),
        (dt.date(1952, 2, 29), dt.date(2023, 2, 28), 70),
        (dt.date(1952, 2, 29), dt.date(2023, 3, 1), 71),
        (dt.date(1920, 1, 1), dt.date(2024, 1, 1), deid.AGE_TOP_CODE),
        (None, dt.date(2024, 1, 1), None),
        (dt.date(1950, 1, 1), None, None),
    ],
)
def test_age_at(birth, when, expected):
    assert deid.age_at(birth, when) == expected


def test_age_at_refuses_birth_after_index():
    with pytest.raises(RegistryError, match="2030-01-01"):
        deid.age_at(dt.date(2030, 1, 1), dt.date(2024, 1, 1))


def test_deidentified_patient_has_no_identifier_or_date(rich_patient):
    data = deid.deidentified_patient(rich_patient)
    text = json.dumps(data)  # also proves it is JSON-safe
    for value in _forbidden_values(rich_patient):
        assert value not in text, value
    assert data["study_id"] == rich_patient.study_id
    assert data["age_years"] == 73  # 15 June 1950 -> 1 March 2024
    assert data["sex"] == "female"


def test_deidentified_patient_day_counts(rich_patient):
    data = deid.deidentified_patient(rich_patient)
    assert [p["days_from_index"] for p in data["procedures"]] == [0, (SECOND - FIRST).days]
    assert data["diagnoses"][0]["diagnosed_days_from_index"] == (dt.date(2023, 11, 20) - FIRST).days
    assert data["imaging_studies"][0]["days_from_index"] == -29
    assert data["imaging_studies"][0]["findings"][0]["collapse_risk"] == "high"
    # the report of the rich patient predates the infiltration finding: null, never "no"
    assert data["imaging_studies"][0]["findings"][0]["diffuse_infiltration"] is None
    assert data["procedures"][0]["complications"] == [
        {"sir_class": "A", "occurred_days_from_index": 1}
    ]
    fus = {f["timepoint"]: f for f in data["procedures"][1]["follow_ups"]}
    assert fus["3d"]["completed_days_from_index"] == (dt.date(2024, 9, 13) - FIRST).days
    assert fus["3d"]["days_after_procedure"] == 3
    assert fus["3d"]["vas"] == 2.0
    assert fus["6m"]["completed_days_from_index"] is None
    assert (
        data["surveillance"]["next_scan_due_days_from_index"] == (dt.date(2024, 12, 1) - FIRST).days
    )


def test_patient_without_procedure_withholds_dates():
    patient = create_patient(identity=IdentityData("Nobody", "Anna", "HN-1", BIRTH))
    add_diagnosis(patient=patient, kind="osteoporotic_fracture", diagnosed_on=dt.date(2024, 1, 5))
    data = deid.deidentified_patient(patient)
    assert data["has_index_procedure"] is False
    assert data["age_years"] is None
    assert data["diagnoses"][0]["diagnosed_days_from_index"] is None


def test_deidentified_cohort_frame(rich_patient):
    full = cohort_frame()
    frame = deid.deidentified_cohort_frame()
    assert tuple(frame.columns) == deid.DEIDENTIFIED_COHORT_COLUMNS
    assert len(frame) == len(full) == 4
    text = frame.to_csv(index=False)
    for value in _forbidden_values(rich_patient):
        assert value not in text, value
    for column in frame.columns:  # no date-typed values at all
        assert not any(isinstance(v, dt.date) for v in frame[column]), column
    # days_from_index counts from the FIRST procedure for the second procedure's rows too
    expected = [(c - FIRST).days for c in full["completed_on"]]
    assert frame["days_from_index"].tolist() == expected
    assert frame["days_after_procedure"].tolist() == full["days_after_procedure"].tolist()
    assert frame["patient_id"].tolist() == full["patient_id"].tolist()
    assert set(frame["age_years"]) == {73}


def test_deidentified_cohort_frame_filters_and_same_outcome_table(rich_patient):
    other = create_patient()
    proc = record_procedure(
        patient=other,
        performed_on=dt.date(2024, 5, 1),
        procedure_type="kyphoplasty",
        guidance="fluoroscopy",
        anaesthesia="general",
        day_case=False,
        levels=[TreatedLevel("L1", "transpedicular", 11, 4.0)],
        operator="X",
    )
    for code, when, vas in (("pre", dt.date(2024, 4, 30), 9.0), ("1m", dt.date(2024, 6, 1), 4.0)):
        fu = find_follow_up(procedure=proc, timepoint=code)
        record_follow_up(follow_up=fu, expected_version=1, completed_on=when, vas=vas)
    kypho = deid.deidentified_cohort_frame(procedure_type="kyphoplasty")
    assert kypho["study_id"].unique().tolist() == [other.study_id]
    assert kypho["age_years"].isna().all()  # no identity, no age
    dated = deid.deidentified_cohort_frame(date_from=dt.date(2024, 6, 1))
    assert set(dated["patient_id"]) == {f"{rich_patient.study_id}/2"}
    a = outcome_table(cohort_frame(level="L1"), mixed_model=False).to_json_dict()
    b = outcome_table(deid.deidentified_cohort_frame(level="L1"), mixed_model=False).to_json_dict()
    assert a == b


def test_deidentified_cohort_frame_empty_and_bad_filter():
    frame = deid.deidentified_cohort_frame()
    assert len(frame) == 0
    assert tuple(frame.columns) == deid.DEIDENTIFIED_COHORT_COLUMNS
    assert isinstance(frame, pd.DataFrame)
    with pytest.raises(RegistryError, match="L99"):
        deid.deidentified_cohort_frame(level="L99")
