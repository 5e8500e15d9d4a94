"""The unit's day in the registry: plans that move, decisions closed by a procedure, clean
records (hospital numbers, near-duplicates, merge, void), planned procedures, procedure
warnings, visit outcomes, in-window cohort values and attrition."""

from __future__ import annotations

import datetime as dt

import pytest

from spinewatch.audit.models import AuditEvent
from spinewatch.core.procedures import TreatedLevel
from spinewatch.registry import models as m
from spinewatch.registry import services as s
from spinewatch.registry.services._base import today

pytestmark = pytest.mark.django_db

TODAY = today()


def _person(n: int, kind: str = "myeloma", number: str | None = None, **identity) -> m.Patient:
    patient = s.create_patient(
        identity=s.IdentityData(
            family_name=identity.pop("family_name", f"Brackenbury{n}"),
            given_name=identity.pop("given_name", "Wilhelmina"),
            hospital_number=number or f"HN-{n:05d}",
            birth_date=identity.pop("birth_date", dt.date(1951, 2, 3)),
            **identity,
        )
    )
    s.add_diagnosis(patient=patient, kind=kind)
    return patient


def _report(**l1) -> dict:
    base = {"level": "L1", "collapse_risk": "low", "reasons": []}
    return {
        "scan": {},
        "vertebrae": [base | l1, {"level": "L2", "collapse_risk": "low", "reasons": []}],
    }


def _procedure(patient, days_ago=0, level="L1", cement=4.0, **kw) -> m.Procedure:
    return s.record_procedure(
        patient=patient,
        performed_on=TODAY - dt.timedelta(days=days_ago),
        procedure_type="vertebroplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        operator="Dr Quill",
        levels=[TreatedLevel(level, "transpedicular", 11, cement)],
        **kw,
    )


def test_an_analysed_scan_moves_the_plan_by_diagnosis_and_risk():
    p = _person(1)
    s.add_imaging_study(patient=p, study_date=TODAY - dt.timedelta(days=200), report=_report())
    plan = s.set_surveillance_plan(patient=p, next_scan_due=TODAY - dt.timedelta(days=10))
    assert plan.interval_days == 90  # myeloma, low risk
    # scanned today, a high-risk L1: next scan in 30 days, no longer due
    s.add_imaging_study(patient=p, study_date=TODAY, report=_report(collapse_risk="high"))
    plan.refresh_from_db()
    assert (plan.interval_days, plan.next_scan_due, plan.risk_state) == (
        30,
        TODAY + dt.timedelta(days=30),
        "high",
    )
    # not assessable is never "low"
    study = s.add_imaging_study(
        patient=p, study_date=TODAY, report=_report(collapse_risk="not_assessable")
    )
    plan.refresh_from_db()
    assert plan.risk_state == "not_assessable" and plan.interval_days == 30
    # treating the vertebra relaxes the plan back to the low-risk interval
    _procedure(p)
    plan.refresh_from_db()
    finding = study.findings.get(level="L1")
    assert finding.decision == "treated" and finding.treated_by.level == "L1"
    assert plan.interval_days == 90 and plan.next_scan_due == TODAY + dt.timedelta(days=90)


def test_a_clinicians_interval_is_kept_when_scans_move_the_date():
    p = _person(2)
    plan = s.set_surveillance_plan(patient=p, interval_days=45, reason="slow disease")
    assert plan.interval_source == "clinician"
    s.add_imaging_study(patient=p, study_date=TODAY, report=_report(collapse_risk="high"))
    plan.refresh_from_db()
    assert (plan.interval_days, plan.next_scan_due) == (45, TODAY + dt.timedelta(days=45))
    plan = s.set_surveillance_plan(patient=p, expected_version=plan.version)  # back to the rule
    assert (plan.interval_source, plan.interval_days) == ("rule", 30)


def test_treated_decision_follows_a_reanalysis_and_a_voided_procedure_reopens_it():
    p = _person(3)
    study = s.add_imaging_study(
        patient=p, study_date=TODAY - dt.timedelta(days=3), report=_report(collapse_risk="high")
    )
    procedure = _procedure(p)
    level_row = procedure.levels.get()
    study.refresh_from_db()
    s.store_analysis(study=study, expected_version=study.version, report=_report())
    finding = m.ImagingStudy.objects.get(pk=study.pk).findings.get(level="L1")
    assert (finding.decision, finding.treated_by_id) == ("treated", level_row.pk)
    s.void_record(record=procedure, expected_version=procedure.version, reason="wrong patient")
    finding = m.ImagingStudy.objects.get(pk=study.pk).findings.get(level="L1")
    assert finding.decision == "none" and "voided" in finding.decision_note
    assert finding.treated_by_id is None


@pytest.mark.parametrize("spelling", ["hn 00004", "hn-00004", "HN00004", " Hn.00004 "])
def test_one_hospital_number_however_spelt(spelling):
    first = _person(4, number="HN-00004")
    with pytest.raises(s.RegistryError, match=f"already the number of patient {first.study_id}"):
        _person(5, number=spelling)
    assert s.find_by_hospital_number(spelling) == first
    assert m.PatientIdentity.objects.count() == 1


def test_near_duplicates_same_name_and_birth_date():
    a = _person(6, family_name="Ó'Brien-Smith", given_name="Anne")
    near = s.near_duplicates(
        family_name="o brien smith", given_name="ANNE", birth_date=dt.date(1951, 2, 3)
    )
    assert near == [a]
    assert not s.near_duplicates(
        family_name="o brien smith", given_name="ANNE", birth_date=dt.date(1951, 2, 4)
    )


def test_merge_moves_everything_and_voids_the_duplicate():
    keep = _person(7)
    dup = _person(8)
    s.add_imaging_study(patient=dup, study_date=TODAY, report=_report())
    proc = _procedure(dup, days_ago=40)
    s.set_surveillance_plan(patient=dup)
    summary = s.merge_patients(
        keep=keep,
        duplicate=dup,
        keep_version=keep.version,
        duplicate_version=m.Patient.objects.get(pk=dup.pk).version,
        reason="registered twice",
    )
    assert summary["procedures"] == 1 and summary["imaging_studies"] == 1
    assert summary["diagnoses"] == 1 and summary["surveillance_plan"] == 1
    dup.refresh_from_db()
    assert dup.merged_into == keep and dup.voided_at is not None
    assert m.Procedure.objects.get(pk=proc.pk).patient == keep
    assert keep.diagnoses.count() == 2
    moved = AuditEvent.objects.filter(object_type="registry.procedure", action="update")
    assert moved.filter(object_id=str(proc.pk)).exists()
    with pytest.raises(s.RegistryError, match="voided"):
        s.merge_patients(
            keep=keep, duplicate=dup, keep_version=1, duplicate_version=1, reason="again"
        )


def test_a_voided_scan_frees_its_series_and_moves_the_plan_back():
    p = _person(9)
    s.add_imaging_study(patient=p, study_date=TODAY - dt.timedelta(days=100), report=_report())
    s.set_surveillance_plan(patient=p)
    wrong = s.add_imaging_study(
        patient=p,
        study_date=TODAY,
        study_instance_uid="1.2.3",
        series_instance_uid="1.2.3.4",
        report=_report(collapse_risk="high"),
    )
    with pytest.raises(s.RegistryError):
        s.add_imaging_study(
            patient=p, study_date=TODAY, study_instance_uid="1.2.3", series_instance_uid="1.2.3.4"
        )
    s.void_record(record=wrong, expected_version=wrong.version, reason="another patient's CT")
    plan = m.SurveillancePlan.objects.get(patient=p)
    assert plan.next_scan_due == TODAY - dt.timedelta(days=100) + dt.timedelta(days=90)
    again = s.add_imaging_study(
        patient=p, study_date=TODAY, study_instance_uid="1.2.3", series_instance_uid="1.2.3.4"
    )
    assert again.pk != wrong.pk
    with pytest.raises(s.RegistryError, match="already voided"):
        s.void_record(record=wrong, expected_version=2, reason="twice")
    with pytest.raises(s.RegistryError, match="say why"):
        s.void_record(record=again, expected_version=again.version, reason="  ")


def test_planned_procedure_has_its_baseline_then_is_performed():
    p = _person(10)
    planned = s.plan_procedure(
        patient=p,
        planned_on=TODAY + dt.timedelta(days=10),
        procedure_type="vertebroplasty",
        planned_levels=["T12", "L1"],
    )
    visits = list(planned.follow_ups.values_list("timepoint", "window_start"))
    assert visits == [("pre", TODAY + dt.timedelta(days=-20))]
    pre = planned.follow_ups.get()
    s.record_follow_up(
        follow_up=pre, expected_version=pre.version, completed_on=TODAY, vas=8, entered_via="portal"
    )
    done = _procedure(p, days_ago=0, planned=planned, cement_type="pmma", fluoroscopy_time_s=95.0)
    assert done.pk == planned.pk and done.status == "performed" and done.cement_type == "pmma"
    codes = list(done.follow_ups.order_by("due_date").values_list("timepoint", flat=True))
    assert codes == ["pre", "3d", "1m", "3m", "6m", "12m"]
    pre.refresh_from_db()
    assert (pre.vas, pre.due_date) == (8.0, TODAY)


def test_procedure_warnings_need_confirmation():
    p = _person(11)
    _procedure(p)
    with pytest.raises(s.ProcedureWarnings) as caught:
        _procedure(p, cement=14.0, allow_warnings=False)
    text = " ".join(caught.value.warnings)
    assert "L1 was already treated" in text and "14 ml of cement at L1" in text
    assert m.Procedure.objects.filter(patient=p).count() == 1
    _procedure(p, cement=14.0, allow_warnings=True)  # confirmed
    assert m.Procedure.objects.filter(patient=p).count() == 2


def test_access_biopsy_and_dose_are_stored():
    p = _person(12)
    proc = s.record_procedure(
        patient=p,
        performed_on=TODAY,
        procedure_type="vertebroplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        operator="Dr Quill",
        levels=[
            TreatedLevel(
                "L3",
                "transpedicular",
                11,
                5.0,
                access="bipedicular",
                biopsy=True,
                biopsy_result="pending",
            )
        ],
        dose_area_product_gycm2=12.5,
    )
    row = proc.levels.get()
    assert (row.access, row.biopsy, row.biopsy_result) == ("bipedicular", True, "pending")
    assert proc.dose_area_product_gycm2 == 12.5
    with pytest.raises(s.RegistryError, match="fluoroscopy_time_s"):
        s.update_procedure(procedure=proc, expected_version=proc.version, fluoroscopy_time_s=-1)


def test_visit_outcomes_end_the_follow_up_and_count_in_the_attrition():
    p = _person(13)
    proc = _procedure(p, days_ago=200)
    by_code = {fu.timepoint: fu for fu in proc.follow_ups.all()}
    s.record_follow_up(
        follow_up=by_code["pre"],
        expected_version=1,
        completed_on=TODAY - dt.timedelta(days=201),
        vas=8,
    )
    # 1 month value recorded late (out of its window)
    s.record_follow_up(
        follow_up=by_code["1m"],
        expected_version=1,
        completed_on=TODAY - dt.timedelta(days=140),
        vas=3,
    )
    s.record_visit_outcome(
        follow_up=by_code["3d"],
        expected_version=1,
        outcome="declined",
        outcome_on=TODAY - dt.timedelta(days=197),
    )
    changed = s.record_visit_outcome(
        follow_up=by_code["3m"],
        expected_version=1,
        outcome="died",
        outcome_on=TODAY - dt.timedelta(days=100),
    )
    assert [fu.timepoint for fu in changed] == ["3m", "6m", "12m"]
    rows = {r["timepoint"]: r for r in s.cohort_attrition()}
    assert rows["pre"]["in_window"] == 1 and rows["1m"]["out_of_window"] == 1
    assert rows["3d"]["declined"] == 1 and rows["6m"]["died"] == 1 and rows["12m"]["died"] == 1
    for r in rows.values():
        counted = sum(r[k] for k in s.ATTRITION_COLUMNS[3:])
        assert counted == r["scheduled"] == 1
    frame = s.cohort_frame()
    assert list(frame["timepoint"]) == ["pre"]  # the late 1-month value is left out by default
    frame = s.cohort_frame(include_out_of_window=True)
    assert list(frame["timepoint"]) == ["pre", "1m"] and list(frame["in_window"]) == [True, False]
    s.void_record(
        record=proc,
        expected_version=m.Procedure.objects.get(pk=proc.pk).version,
        reason="entered in error",
    )
    assert len(s.cohort_frame(include_out_of_window=True)) == 0
    assert s.cohort_attrition() == []
