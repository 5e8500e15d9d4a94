"""Worklists: contents and boundaries of each list, the "mine" filter, the record-follow-up form."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from test_worklists_support import complete, make_user, patient_with_procedure

from spinewatch.accounts.testing import signed_in
from spinewatch.audit.models import AuditEvent
from spinewatch.registry import models as rm
from spinewatch.registry.services import (
    add_imaging_study,
    find_follow_up,
    record_follow_up,
    set_finding_decision,
    set_surveillance_plan,
)
from spinewatch.web.worklists.queries import (
    follow_ups_due,
    high_risk_undecided,
    not_assessable_undecided,
    surveillance_due,
)

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


@pytest.fixture
def users():
    return {
        "cm1": make_user("case_manager", "cm1", first_name="Casey", last_name="One"),
        "cm2": make_user("case_manager", "cm2", first_name="Morgan", last_name="Two"),
        "clin": make_user("clinician", "clin"),
        "res": make_user("researcher", "res"),
        "admin": make_user("admin", "boss"),
    }


# ---------------------------------------------------------------- follow-ups: boundaries


def _statuses(rows, fu):
    return [r.status for r in rows if r.follow_up.pk == fu.pk]


def test_follow_up_boundaries():
    _, proc = patient_with_procedure(1, performed_on=TODAY - dt.timedelta(days=200))
    fu = find_follow_up(procedure=proc, timepoint="1m")
    assert (fu.window_start, fu.due_date, fu.window_end) == (
        proc.performed_on + dt.timedelta(days=23),
        proc.performed_on + dt.timedelta(days=30),
        proc.performed_on + dt.timedelta(days=37),
    )
    one = dt.timedelta(days=1)
    assert _statuses(follow_ups_due(today=fu.window_end + one), fu) == ["overdue"]
    assert _statuses(follow_ups_due(today=fu.window_end), fu) == ["in_window"]
    assert _statuses(follow_ups_due(today=fu.due_date), fu) == ["due_today"]
    assert _statuses(follow_ups_due(today=fu.window_start), fu) == ["in_window"]
    # the window opens within the horizon (7 days): listed as upcoming; one day more: absent
    assert _statuses(follow_ups_due(today=fu.window_start - 7 * one), fu) == ["upcoming"]
    assert _statuses(follow_ups_due(today=fu.window_start - 8 * one), fu) == []
    overdue = [r for r in follow_ups_due(today=fu.window_end + 5 * one) if r.follow_up.pk == fu.pk]
    assert overdue[0].days_overdue == 5
    # completed visits leave the list
    complete(proc, "1m", fu.due_date, 3.0)
    assert _statuses(follow_ups_due(today=fu.window_end + one), fu) == []


def test_follow_ups_ordered_overdue_first():
    patient_with_procedure(1, performed_on=TODAY - dt.timedelta(days=40))
    rows = follow_ups_due(today=TODAY)
    statuses = [r.status for r in rows]
    assert statuses == sorted(statuses, key=["overdue", "due_today", "in_window", "upcoming"].index)
    codes = {r.follow_up.timepoint for r in rows}
    assert {"3d", "1m"} <= codes  # 3d overdue (not completed), 1m window end +37
    # the pre-operative baseline's window closed on the day of the procedure: missed, not chased
    assert "pre" not in codes
    assert "3m" not in codes  # window opens at +77 days, beyond the 7-day horizon


def test_mine_filter(users):
    _, mine = patient_with_procedure(
        1, performed_on=TODAY - dt.timedelta(days=30), case_manager=users["cm1"]
    )
    _, theirs = patient_with_procedure(
        2, performed_on=TODAY - dt.timedelta(days=30), case_manager=users["cm2"]
    )
    _, nobody = patient_with_procedure(3, performed_on=TODAY - dt.timedelta(days=30))

    def procs(manager):
        return {r.follow_up.procedure_id for r in follow_ups_due(manager=manager, today=TODAY)}

    assert procs(users["cm1"]) == {mine.pk}
    assert procs(users["cm2"]) == {theirs.pk}
    assert procs("none") == {nobody.pk}
    assert procs("all") == {mine.pk, theirs.pk, nobody.pk}


# ---------------------------------------------------------------- surveillance


def test_surveillance_due_order_and_horizon():
    myeloma, _ = patient_with_procedure(1, performed_on=TODAY - dt.timedelta(days=100))
    fracture, _ = patient_with_procedure(
        2, performed_on=TODAY - dt.timedelta(days=100), diagnosis="osteoporotic_fracture"
    )
    meta, _ = patient_with_procedure(
        3, performed_on=TODAY - dt.timedelta(days=100), diagnosis="metastasis"
    )
    late, _ = patient_with_procedure(4, performed_on=TODAY - dt.timedelta(days=100))
    stopped, _ = patient_with_procedure(5, performed_on=TODAY - dt.timedelta(days=100))
    set_surveillance_plan(
        patient=fracture, interval_days=180, next_scan_due=TODAY - dt.timedelta(days=30)
    )
    set_surveillance_plan(
        patient=myeloma, interval_days=90, next_scan_due=TODAY + dt.timedelta(days=14)
    )
    set_surveillance_plan(
        patient=meta, interval_days=90, next_scan_due=TODAY - dt.timedelta(days=1)
    )
    set_surveillance_plan(
        patient=late, interval_days=90, next_scan_due=TODAY + dt.timedelta(days=15)
    )
    set_surveillance_plan(patient=stopped, interval_days=90, next_scan_due=TODAY, active=False)
    rows = surveillance_due(today=TODAY)
    assert [r.patient.pk for r in rows] == [meta.pk, myeloma.pk, fracture.pk]
    assert [r.high_risk for r in rows] == [True, True, False]
    assert [r.overdue for r in rows] == [True, False, True]


# ---------------------------------------------------------------- high collapse risk


def _report(*entries):
    return {"scan": {}, "vertebrae": [dict(e) for e in entries]}


def test_high_risk_on_latest_analysed_study_only():
    p1, _ = patient_with_procedure(1, performed_on=TODAY - dt.timedelta(days=100))
    p2, _ = patient_with_procedure(2, performed_on=TODAY - dt.timedelta(days=100))
    high_l1 = {"level": "L1", "collapse_risk": "high", "reasons": ["lytic 45%"]}
    add_imaging_study(  # older study: its high-risk L2 must not appear
        patient=p1,
        study_date=TODAY - dt.timedelta(days=300),
        report=_report({"level": "L2", "collapse_risk": "high", "reasons": ["old"]}),
    )
    latest = add_imaging_study(
        patient=p1,
        study_date=TODAY - dt.timedelta(days=10),
        report=_report(
            high_l1,
            {"level": "T12", "collapse_risk": "high"},
            {"level": "L3", "collapse_risk": "moderate"},
        ),
    )
    add_imaging_study(patient=p1, study_date=TODAY - dt.timedelta(days=1))  # not analysed
    s2 = add_imaging_study(
        patient=p2, study_date=TODAY - dt.timedelta(days=5), report=_report(high_l1)
    )
    decided = s2.findings.get(level="L1")
    set_finding_decision(finding=decided, expected_version=decided.version, decision="watch")
    rows = high_risk_undecided()
    assert [(f.study_id, f.level) for f in rows] == [(latest.pk, "T12"), (latest.pk, "L1")]


def test_signal_to_treat_and_not_assessable_need_a_decision(users):
    p1, _ = patient_with_procedure(1, performed_on=TODAY - dt.timedelta(days=100))
    why_signal = "new lytic lesion: 1.20 ml (prior 0.00 ml)"
    study = add_imaging_study(
        patient=p1,
        study_date=TODAY - dt.timedelta(days=3),
        report=_report(
            # a signal on a level the analysis rated moderate (e.g. a stored older report)
            {
                "level": "L2",
                "collapse_risk": "moderate",
                "treat_signal": True,
                "treat_signal_reasons": [why_signal],
                "reasons": ["lytic 12% of body"],
            },
            {
                "level": "T11",
                "collapse_risk": "not_assessable",
                "reasons": ["not assessable: heights not measured (vertebra cut by the scan edge)"],
            },
            {"level": "T12", "collapse_risk": "low", "treat_signal": False},
            {
                # not assessable AND signal: listed once, with the high-risk ones
                "level": "L3",
                "collapse_risk": "not_assessable",
                "treat_signal": True,
                "reasons": ["not assessable: trabecular density and lytic lesions: MRI"],
            },
        ),
    )
    assert [f.level for f in high_risk_undecided()] == ["L2", "L3"]
    assert [f.level for f in not_assessable_undecided()] == ["T11"]
    html = signed_in(Client(), users["clin"]).get("/worklists/").content.decode()
    high = html.split('id="high-risk"', 1)[1].split('id="not-assessable"', 1)[0]
    assert high.count("Signal to treat") == 2 and why_signal in high
    na = html.split('id="na-title"', 1)[1]
    assert "<strong>T11</strong>" in na and '<span class="badge badge-na"' in na
    assert "heights not measured (vertebra cut by the scan edge)" in na
    assert "Low risk" not in na
    # a decision takes it off both lists
    for level in ("L2", "T11"):
        f = study.findings.get(level=level)
        set_finding_decision(finding=f, expected_version=f.version, decision="watch")
    assert [f.level for f in high_risk_undecided()] == ["L3"]
    assert not_assessable_undecided() == []


# ---------------------------------------------------------------- the page


def test_page_permissions(users):
    client = Client()
    assert client.get("/worklists/").status_code == 302  # to log-in
    for name, status in (("res", 403), ("clin", 200), ("cm1", 200), ("admin", 200)):
        c = signed_in(Client(), users[name])
        assert c.get("/worklists/").status_code == status, name


def test_page_default_mine_for_case_manager_and_audit(users):
    patient_with_procedure(1, performed_on=TODAY - dt.timedelta(days=30), case_manager=users["cm1"])
    patient_with_procedure(2, performed_on=TODAY - dt.timedelta(days=30), case_manager=users["cm2"])
    cm1 = signed_in(Client(), users["cm1"])
    html = cm1.get("/worklists/").content.decode()
    assert "Zorblatt1son" in html and "Zorblatt2son" not in html
    html = cm1.get("/worklists/?who=all").content.decode()
    assert "Zorblatt1son" in html and "Zorblatt2son" in html
    html = cm1.get(f"/worklists/?who={users['cm2'].pk}").content.decode()
    assert "Zorblatt1son" not in html and "Zorblatt2son" in html
    assert cm1.get("/worklists/?who=nonsense").status_code == 404
    # a clinician sees all by default; links to record only on permitted rows
    clin_html = signed_in(Client(), users["clin"]).get("/worklists/").content.decode()
    assert "Zorblatt1son" in clin_html and "Zorblatt2son" in clin_html
    event = AuditEvent.objects.filter(action="view", actor_username="clin").last()
    assert event is not None and event.detail["page"] == "worklists"
    assert len(event.detail["study_ids"]) == 2
    # a case manager may not record for another CM's patient: no Record link for it
    rows_for_cm1 = cm1.get("/worklists/?who=all").content.decode()
    fu2 = rm.FollowUp.objects.filter(procedure__patient__case_manager=users["cm2"]).first()
    assert f"/worklists/follow-ups/{fu2.pk}/record/" not in rows_for_cm1


# ---------------------------------------------------------------- record follow-up form


@pytest.fixture
def visit(users):
    _, proc = patient_with_procedure(
        1, performed_on=TODAY - dt.timedelta(days=30), case_manager=users["cm1"]
    )
    return find_follow_up(procedure=proc, timepoint="1m")


def _url(fu):
    return f"/worklists/follow-ups/{fu.pk}/record/"


def test_record_follow_up_valid(users, visit):
    c = signed_in(Client(), users["cm1"])
    page = c.get(_url(visit))
    assert page.status_code == 200 and "Zorblatt1son" in page.content.decode()
    response = c.post(
        _url(visit),
        {
            "vas": "4.5",
            "analgesic_use": "weak_opioid",
            "completed_on": TODAY.isoformat(),
            "expected_version": visit.version,
        },
    )
    assert response.status_code == 302 and response["Location"] == "/worklists/"
    visit.refresh_from_db()
    assert (visit.vas, visit.analgesic_use, visit.completed_on, visit.entered_via) == (
        4.5,
        "weak_opioid",
        TODAY,
        "staff",
    )
    assert visit.entered_by == users["cm1"]
    assert AuditEvent.objects.filter(
        action="update",
        object_type="registry.followup",
        object_id=str(visit.pk),
        actor_username="cm1",
    ).exists()


@pytest.mark.parametrize(
    ("vas", "when", "message"),
    [
        ("11", TODAY.isoformat(), "expected a number from 0 to 10"),
        ("-1", TODAY.isoformat(), "expected a number from 0 to 10"),
        ("abc", TODAY.isoformat(), "Expected a number from 0 to 10"),
        ("5", "2024-13-01", "Expected a date as YYYY-MM-DD"),
        ("5", (TODAY + dt.timedelta(days=3)).isoformat(), "is in the future"),
    ],
)
def test_record_follow_up_invalid(users, visit, vas, when, message):
    c = signed_in(Client(), users["clin"])
    response = c.post(
        _url(visit), {"vas": vas, "completed_on": when, "expected_version": visit.version}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    visit.refresh_from_db()
    assert visit.completed_on is None and visit.vas is None


def test_record_follow_up_stale_is_409(users, visit):
    c = signed_in(Client(), users["clin"])
    old_version = visit.version
    record_follow_up(follow_up=visit, expected_version=old_version, completed_on=TODAY, vas=2.0)
    response = c.post(
        _url(visit),
        {"vas": "7", "completed_on": TODAY.isoformat(), "expected_version": old_version},
    )
    assert response.status_code == 409
    assert "changed by someone else" in response.content.decode().lower()
    visit.refresh_from_db()
    assert visit.vas == 2.0  # not overwritten


def test_record_follow_up_permissions_and_csrf(users, visit):
    assert signed_in(Client(), users["res"]).get(_url(visit)).status_code == 403
    assert signed_in(Client(), users["cm2"]).get(_url(visit)).status_code == 403  # not theirs
    assert (
        signed_in(Client(), users["admin"]).get(_url(visit)).status_code == 403
    )  # no clinical writes
    assert (
        signed_in(Client(), users["clin"]).get("/worklists/follow-ups/999999/record/").status_code
        == 404
    )
    strict = signed_in(Client(enforce_csrf_checks=True), users["cm1"])
    data = {"vas": "3", "completed_on": TODAY.isoformat(), "expected_version": visit.version}
    assert strict.post(_url(visit), data).status_code == 403
    page = strict.get(_url(visit))
    data["csrfmiddlewaretoken"] = page.context["csrf_token"]
    assert strict.post(_url(visit), data).status_code == 302


def test_every_patient_link_on_the_worklist_opens_the_patient_page(users):
    import re

    p1, _ = patient_with_procedure(1, performed_on=TODAY - dt.timedelta(days=30))
    add_imaging_study(
        patient=p1,
        study_date=TODAY - dt.timedelta(days=2),
        report=_report({"level": "L1", "collapse_risk": "high", "reasons": ["lytic 45%"]}),
    )
    client = signed_in(Client(), users["clin"])
    html = client.get("/worklists/").content.decode()
    links = set(re.findall(r'href="(/patients/[^"]+)"', html))
    assert links == {f"/patients/{p1.study_id}/"}  # the follow-up row and the "Decide" row
    for link in links:
        assert client.get(link).status_code == 200, link
