"""The unit's day in the browser's pages (Django test client): role landing, worklists that sort,
filter and export, the surveillance plan page, void / merge / near-duplicate, the procedure
form's new fields and warnings, visit outcomes, plain-language errors, the cohort's in-window
values and attrition, patient-list filters and the PDFs (laid out on A4)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from test_pages_support import add_analysed_study, make_patient, make_user, vertebra

from spinewatch.accounts.testing import signed_in
from spinewatch.audit.models import AuditEvent
from spinewatch.core.procedures import TreatedLevel
from spinewatch.registry import models as rm
from spinewatch.registry import services

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


@pytest.fixture
def doc():
    return make_user("clinician", "doc-ud", first_name="Dana", last_name="Doc")


@pytest.fixture
def cm():
    return make_user("case_manager", "cm-ud")


def _as(user) -> Client:
    return signed_in(Client(), user)


def _procedure(patient, days_ago=100, level="L1", cement=4.0):
    return services.record_procedure(
        patient=patient,
        performed_on=TODAY - dt.timedelta(days=days_ago),
        procedure_type="vertebroplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        operator="Dr Testoperator",
        levels=[TreatedLevel(level, "transpedicular", 11, cement)],
    )


@pytest.mark.parametrize(
    ("role", "where"),
    [
        ("clinician", "/worklists/"),
        ("case_manager", "/worklists/"),
        ("researcher", "/cohort/"),
        ("admin", "/admin/"),
    ],
)
def test_each_role_lands_where_its_work_is(role, where):
    user = make_user(role, f"user-{role}")
    response = _as(user).get("/start/")
    assert response.status_code == 302 and response["Location"] == where


def test_clinician_worklist_shows_decisions_first(doc, cm):
    html = _as(doc).get("/worklists/").content.decode()
    assert "clinician-first" in html
    assert "clinician-first" not in _as(cm).get("/worklists/").content.decode()


def test_worklist_sorts_filters_and_exports(doc, cm):
    for n, days in ((1, 40), (2, 35), (3, 60)):
        _procedure(make_patient(n, family=f"Sortby{n}", case_manager=cm), days_ago=days)
    client = _as(doc)
    page = client.get("/worklists/follow-ups/?who=all&sort=patient")
    html = page.content.decode()
    assert page.status_code == 200 and "stack-mobile" in html and 'data-label="Due"' in html
    assert html.index("Sortby1") < html.index("Sortby2") < html.index("Sortby3")
    html = client.get("/worklists/follow-ups/?who=all&sort=-patient").content.decode()
    assert html.index("Sortby3") < html.index("Sortby1")
    html = client.get("/worklists/follow-ups/?who=all&q=sortby2").content.decode()
    assert "Sortby2" in html and "Sortby1" not in html
    html = client.get("/worklists/follow-ups/?who=all&status=overdue").content.decode()
    assert 'data-label="Status">Overdue' in html and 'data-label="Status">In window' not in html
    html = client.get("/worklists/follow-ups/?who=all&status=in_window").content.decode()
    assert 'data-label="Status">In window' in html and 'data-label="Status">Overdue' not in html
    export = client.get("/worklists/follow-ups.csv?who=all&sort=patient")
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    lines = export.content.decode().splitlines()
    assert lines[0].startswith("Patient,Study id,Visit") and "Sortby1" in lines[1]
    assert AuditEvent.objects.filter(action="export", detail__export="worklist follow-ups").exists()
    assert _as(cm).get("/worklists/follow-ups.csv?who=all").status_code == 403
    assert client.get("/worklists/nonsense/").status_code == 404


def test_scan_today_leaves_the_scans_due_list_and_plan_page_edits(doc):
    patient = make_patient(4)
    services.set_surveillance_plan(patient=patient, next_scan_due=TODAY - dt.timedelta(days=3))
    client = _as(doc)
    assert patient.study_id in client.get("/worklists/scans/").content.decode()
    add_analysed_study(patient, 0, vertebra("L1", collapse_risk="moderate"))
    assert patient.study_id not in client.get("/worklists/scans/").content.decode()
    page = client.get(f"/patients/{patient.study_id}/").content.decode()
    assert "Next scan due" in page and "programme rule" in page
    plan = rm.SurveillancePlan.objects.get(patient=patient)
    assert plan.next_scan_due == TODAY + dt.timedelta(days=60)  # myeloma, moderate
    response = client.post(
        f"/patients/{patient.study_id}/plan/",
        {
            "use_rule": "fixed",
            "interval_days": "45",
            "active": "on",
            "reason": "MDT",
            "expected_version": plan.version,
        },
    )
    assert response.status_code == 302
    plan.refresh_from_db()
    assert (plan.interval_days, plan.interval_source) == (45, "clinician")
    bad = client.post(
        f"/patients/{patient.study_id}/plan/",
        {"use_rule": "fixed", "interval_days": "", "expected_version": plan.version},
    )
    assert bad.status_code == 400 and "Enter the number of days" in bad.content.decode()


def test_void_a_procedure_from_the_page(doc):
    patient = make_patient(5)
    proc = _procedure(patient)
    client = _as(doc)
    assert (
        client.post(f"/void/procedure/{proc.pk}/", {"expected_version": proc.version}).status_code
        == 400
    )
    response = client.post(
        f"/void/procedure/{proc.pk}/", {"reason": "wrong patient", "expected_version": proc.version}
    )
    assert response.status_code == 302
    page = client.get(f"/patients/{patient.study_id}/").content.decode()
    assert "is-voided" in page and "wrong patient" in page
    assert len(services.cohort_frame()) == 0
    other = _procedure(patient, days_ago=50, level="L3")
    stale = client.post(
        f"/void/procedure/{other.pk}/", {"reason": "x", "expected_version": other.version + 1}
    )
    assert stale.status_code == 409


def test_new_patient_near_duplicate_needs_confirmation_then_merge(doc):
    first = make_patient(6, family="Twiceover")
    data = {
        "family_name": "twice-over",
        "given_name": "OTTOLINE6",
        "hospital_number": "HX-77777",
        "birth_date": "1950-06-15",
        "sex": "female",
        "diagnosis_kind": "myeloma",
    }
    client = _as(doc)
    refused = client.post("/patients/new/", data)
    html = refused.content.decode()
    assert refused.status_code == 400 and first.study_id in html and "register anyway" in html
    assert rm.Patient.objects.count() == 1
    made = client.post("/patients/new/", {**data, "confirm_not_duplicate": "on"})
    assert made.status_code == 302
    second = rm.Patient.objects.exclude(pk=first.pk).get()
    page = client.get(f"/patients/{first.study_id}/").content.decode()
    assert "Possible duplicate" in page and second.study_id in page
    merged = client.post(
        f"/patients/{first.study_id}/merge/",
        {"duplicate": second.study_id, "reason": "same person", "keep_version": first.version},
    )
    assert merged.status_code == 302
    second.refresh_from_db()
    assert second.merged_into_id == first.pk and second.voided_at is not None
    listed = client.get("/").content.decode()
    assert f'href="/patients/{second.study_id}/"' not in listed  # voided: not listed
    assert f'href="/patients/{second.study_id}/"' in client.get("/?voided=on").content.decode()


def test_procedure_form_new_fields_and_warnings(doc):
    patient = make_patient(7)
    _procedure(patient, days_ago=0, level="L2")
    form = {
        "performed_on": TODAY.isoformat(),
        "procedure_type": "vertebroplasty",
        "operator": "Dr A",
        "guidance": "fluoroscopy",
        "anaesthesia": "local",
        "day_case": "yes",
        "cement_type": "pmma_high_viscosity",
        "fluoroscopy_time_s": "84",
        "dose_area_product_gycm2": "9.5",
        "levels-TOTAL_FORMS": "1",
        "levels-INITIAL_FORMS": "0",
        "levels-0-level": "L2",
        "levels-0-approach": "transpedicular",
        "levels-0-needle_gauge": "11",
        "levels-0-cement_volume_ml": "45",
        "levels-0-access": "bipedicular",
        "levels-0-biopsy": "on",
        "levels-0-biopsy_result": "pending",
        "leakages-TOTAL_FORMS": "0",
        "leakages-INITIAL_FORMS": "0",
        "complications-TOTAL_FORMS": "0",
        "complications-INITIAL_FORMS": "0",
    }
    client = _as(doc)
    url = f"/patients/{patient.study_id}/procedures/new/"
    # 45 ml is refused by the core (> 15 ml), in plain words
    html = client.post(url, form).content.decode()
    assert (
        "cement volume" in html
        and "cement_volume_ml"
        not in html.split("<form")[1]
        .split('name="levels-0-cement_volume_ml"')[0]
        .split("</label>")[-1]
    )
    form["levels-0-cement_volume_ml"] = "9.5"
    warned = client.post(url, form)
    text = warned.content.decode()
    assert warned.status_code == 400 and "L2 was already treated" in text
    assert "9.5 ml of cement at L2" not in text  # 9.5 ml is fine for a lumbar body
    assert rm.Procedure.objects.filter(patient=patient).count() == 1
    saved = client.post(url, {**form, "confirm_warnings": "on"})
    assert saved.status_code == 302
    proc = rm.Procedure.objects.filter(patient=patient).latest("pk")
    assert (proc.cement_type, proc.fluoroscopy_time_s, proc.dose_area_product_gycm2) == (
        "pmma_high_viscosity",
        84.0,
        9.5,
    )
    level = proc.levels.get()
    assert (level.access, level.biopsy, level.biopsy_result) == ("bipedicular", True, "pending")


def test_visit_outcome_and_plain_errors(cm):
    patient = make_patient(8, case_manager=cm)
    proc = _procedure(patient, days_ago=100)
    fu = proc.follow_ups.get(timepoint="3m")
    client = _as(cm)
    future = (TODAY + dt.timedelta(days=3)).isoformat()
    bad = client.post(
        f"/worklists/follow-ups/{fu.pk}/record/",
        {"vas": "3", "completed_on": future, "expected_version": fu.version},
    )
    text = bad.content.decode()
    assert bad.status_code == 400 and "completed_on" not in text.split("<main")[1].split("</form>")[
        0
    ].replace('name="completed_on"', "").replace('id="id_completed_on', "").replace(
        'for="id_completed_on"', ""
    ).replace("id_completed_on", "")
    assert "in the future" in text
    done = client.post(
        f"/worklists/follow-ups/{fu.pk}/outcome/",
        {
            "outcome": "lost_to_follow_up",
            "outcome_on": TODAY.isoformat(),
            "expected_version": fu.version,
        },
    )
    assert done.status_code == 302
    assert set(
        proc.follow_ups.filter(timepoint__in=["3m", "6m", "12m"]).values_list("outcome", flat=True)
    ) == {"lost_to_follow_up"}


def test_cohort_counts_in_window_values_and_shows_attrition(doc):
    patient = make_patient(9)
    proc = _procedure(patient, days_ago=120)
    pre = proc.follow_ups.get(timepoint="pre")
    one = proc.follow_ups.get(timepoint="1m")
    services.record_follow_up(
        follow_up=pre, expected_version=1, completed_on=TODAY - dt.timedelta(days=121), vas=8
    )
    services.record_follow_up(
        follow_up=one, expected_version=1, completed_on=TODAY - dt.timedelta(days=60), vas=3
    )  # late
    client = _as(doc)
    html = client.get("/cohort/").content.decode()
    assert 'id="attrition"' in html and 'data-timepoint="1m"' in html
    assert "1 pain score" in html
    html = client.get("/cohort/?include_out_of_window=on").content.decode()
    assert "2 pain scores" in html
    # the table is cached by the registry's state: a new value is never hidden by the cache
    three = proc.follow_ups.get(timepoint="3m")
    services.record_follow_up(follow_up=three, expected_version=1, completed_on=TODAY, vas=2)
    assert "3 pain scores" in client.get("/cohort/?include_out_of_window=on").content.decode()
    services.void_record(record=three, expected_version=2, reason="wrong patient")
    assert "2 pain scores" in client.get("/cohort/?include_out_of_window=on").content.decode()


def test_patient_list_filters_by_diagnosis_and_risk(doc):
    a = make_patient(10, family="Myelomaone")
    b = make_patient(11, family="Metaone", diagnosis="metastasis")
    add_analysed_study(b, 2, vertebra("T12", collapse_risk="high"))
    client = _as(doc)
    html = client.get("/?diagnosis=metastasis").content.decode().lower()
    assert "metaone" in html and "myelomaone" not in html
    html = client.get("/?risk=high").content.decode().lower()
    assert "metaone" in html and "myelomaone" not in html
    html = client.get("/?risk=none").content.decode().lower()
    assert "myelomaone" in html and "metaone" not in html
    services.add_diagnosis(patient=a, kind="osteoporotic_fracture")
    page = client.get(f"/patients/{a.study_id}/").content.decode()
    assert "Osteoporotic fracture" in page and "Myeloma" in page


def _cells_fit_the_page(pdf_html: str) -> tuple[float, float]:
    """(rightmost edge of any table cell, page content right edge) of the first page, in CSS px,
    from WeasyPrint's own layout."""
    from weasyprint import HTML

    document = HTML(string=pdf_html).render()
    page = document.pages[0]
    right = page.width - page._page_box.margin_right
    edges = []

    def walk(box):
        if getattr(box, "element_tag", "") in ("td", "th"):
            edges.append(box.position_x + box.margin_width())
        for child in getattr(box, "children", []) or []:
            walk(child)

    walk(page._page_box)
    assert edges, "no table cell laid out"
    return max(edges), right


def test_scan_and_patient_pdfs_keep_every_column_on_a4(doc, cm):
    from django.template.loader import render_to_string

    patient = make_patient(12)
    levels = [
        vertebra(level, collapse_risk="high", reasons=["lytic 55% of the body " * 3])
        for level in ("T10", "T11", "T12", "L1", "L2", "L3")
    ]
    study = add_analysed_study(patient, 3, *levels)
    client = _as(doc)
    pdf = client.get(f"/scans/{study.pk}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf["Content-Type"] == "application/pdf"
    summary = client.get(f"/patients/{patient.study_id}/summary.pdf")
    assert summary.status_code == 200 and summary.content.startswith(b"%PDF")
    assert AuditEvent.objects.filter(action="export", detail__export="patient summary PDF").exists()
    assert _as(cm).get(f"/scans/{study.pk}/report.pdf").status_code == 403
    from spinewatch.web.reports.pdf import _analysis

    html = render_to_string(
        "web/reports/scan.html",
        {
            "patient": patient,
            "identity": patient.identity,
            "printed_by": "x",
            "today": TODAY,
            "analysis": _analysis(study),
            **_analysis(study),
        },
    )
    assert "Decision" in html and "Collapse risk" in html and "SINS" in html
    rightmost, page_right = _cells_fit_the_page(html)
    assert rightmost <= page_right + 0.5, (rightmost, page_right)


def test_pdf_embeds_the_sagittal_picture(tmp_path):
    from PIL import Image

    from spinewatch.web.reports.pdf import _data_uri, render_pdf

    patient = make_patient(13)
    study = add_analysed_study(patient, 1, vertebra("L1"))
    png = tmp_path / "sagittal.png"
    Image.new("RGB", (120, 300), (200, 200, 200)).save(png)
    with_picture = render_pdf(
        "web/reports/scan.html",
        {
            "patient": patient,
            "identity": patient.identity,
            "printed_by": "x",
            "today": TODAY,
            "study": study,
            "findings": list(study.findings.all()),
            "picture": _data_uri(png),
            "analysis": {"findings": list(study.findings.all())},
        },
    )
    without = render_pdf(
        "web/reports/scan.html",
        {
            "patient": patient,
            "identity": patient.identity,
            "printed_by": "x",
            "today": TODAY,
            "study": study,
            "picture": None,
            "analysis": {"findings": list(study.findings.all())},
        },
    )
    assert with_picture.startswith(b"%PDF") and b"/Subtype /Image" in with_picture
    assert b"/Subtype /Image" not in without
