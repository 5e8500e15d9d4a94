"""Patient list, patient page, identity forms, finding decisions and SINS (the pages area)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from test_pages_support import (
    TODAY,
    add_analysed_study,
    add_procedure,
    client_for,
    make_patient,
    make_user,
    vertebra,
)

from spinewatch.audit.models import AuditEvent
from spinewatch.core.levels import SinsLocation
from spinewatch.core.sins import (
    SinsAlignment,
    SinsBoneLesion,
    SinsCollapse,
    SinsPain,
    SinsPosterolateral,
)
from spinewatch.registry import models as rm
from spinewatch.registry import services
from spinewatch.registry.models import SinsAssessment

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(db):
    return {
        "clinician": make_user("clinician", "dr_pagetest", first_name="Hedda", last_name="Gauge"),
        "case_manager": make_user(
            "case_manager", "cm_pagetest", first_name="Cora", last_name="Minder"
        ),
        "researcher": make_user("researcher", "res_pagetest"),
        "admin": make_user("admin", "adm_pagetest"),
    }


@pytest.fixture
def patient(users):
    p = make_patient(1, family="Brightwaterhouse", case_manager=users["case_manager"])
    add_procedure(p, days_ago=120)
    return p


def as_(client: Client, users, role: str) -> Client:
    return client_for(client, users[role])


# --------------------------------------------------------------------------- permissions
@pytest.mark.parametrize("role", ["clinician", "case_manager", "admin"])
def test_list_and_patient_page_allowed_for_identifiable_roles(client, users, patient, role):
    as_(client, users, role)
    listing = client.get("/")
    assert listing.status_code == 200
    assert "BRIGHTWATERHOUSE" in listing.content.decode()
    page = client.get(f"/patients/{patient.study_id}/")
    assert page.status_code == 200
    assert "Brightwaterhouse".upper() in page.content.decode()


def test_researcher_is_sent_to_cohort_and_refused_identifiable_pages(client, users, patient):
    as_(client, users, "researcher")
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/cohort/"
    for url in (
        f"/patients/{patient.study_id}/",
        f"/patients/{patient.study_id}/edit/",
        f"/patients/{patient.study_id}/procedures/new/",
        "/patients/new/",
    ):
        assert client.get(url).status_code == 403, url
    assert not AuditEvent.objects.filter(action="view", actor_username="res_pagetest").exists()


def test_anonymous_is_sent_to_login(client, patient):
    for url in ("/", f"/patients/{patient.study_id}/", f"/patients/{patient.study_id}/edit/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


def test_unknown_patient_is_404(client, users):
    as_(client, users, "clinician")
    assert client.get("/patients/SW-999999/").status_code == 404


def test_researcher_nav_shows_cohort_only(client, users):
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    request = RequestFactory().get("/cohort/")
    request.user = users["researcher"]
    nav = render_to_string("web/_nav.html", {"user": users["researcher"], "request": request})
    assert "/cohort/" in nav and "/worklists/" not in nav and 'href="/"' not in nav
    request.user = users["clinician"]
    nav = render_to_string("web/_nav.html", {"user": users["clinician"], "request": request})
    assert all(u in nav for u in ('href="/"', "/worklists/", "/scans/", "/cohort/"))


# --------------------------------------------------------------------------- list and search
def test_search_by_name_hospital_number_and_study_id(client, users):
    a = make_patient(11, family="Ravensworth")
    b = make_patient(12, family="Thistledown")
    as_(client, users, "clinician")

    def names(q):
        html = client.get("/", {"q": q}).content.decode()
        return {n for n in ("RAVENSWORTH", "THISTLEDOWN") if n in html}

    assert names("ravens") == {"RAVENSWORTH"}
    assert names("HX-00012") == {"THISTLEDOWN"}
    assert names(a.study_id) == {"RAVENSWORTH"}
    assert names("") == {"RAVENSWORTH", "THISTLEDOWN"}
    assert names("thistle Ottoline12") == {"THISTLEDOWN"}
    assert names("thistle Ottoline11") == set()
    assert b.study_id in client.get("/", {"q": "Thistle"}).content.decode()


def test_list_columns_and_pagination(client, users):
    for n in range(30):
        make_patient(100 + n, family=f"Pagetest{n:02d}")
    as_(client, users, "clinician")
    first = client.get("/").content.decode()
    second = client.get("/", {"page": 2}).content.decode()
    assert first.count("PAGETEST") == 25 and second.count("PAGETEST") == 5
    expected_age = TODAY.year - 1950 - ((TODAY.month, TODAY.day) < (6, 15))
    assert f">{expected_age}<" in first
    assert "Myeloma" in first


def test_list_shows_highest_open_risk_and_htmx_partial(client, users):
    p = make_patient(21, family="Riskington")
    add_analysed_study(
        p, 10, vertebra("L1", collapse_risk="moderate"), vertebra("L2", collapse_risk="high")
    )
    as_(client, users, "clinician")
    html = client.get("/", {"q": "Riskington"}).content.decode()
    assert "High risk" in html and "L2" in html
    partial = client.get(
        "/", {"q": "Riskington"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="patient-results"
    )
    body = partial.content.decode()
    assert partial.status_code == 200 and body.lstrip().startswith("<section")
    assert "<html" not in body
    # Treated vertebrae are not open any more.
    finding = rm.VertebraFinding.objects.get(study__patient=p, level="L2")
    services.set_finding_decision(
        finding=finding, expected_version=finding.version, decision="treated"
    )
    html = client.get("/", {"q": "Riskington"}).content.decode()
    assert "High risk" not in html and "Moderate risk" in html


def test_not_assessable_ranks_above_low_never_as_safe(client, users):
    from spinewatch.web.pages.listing import RISK_RANK

    assert RISK_RANK["low"] < RISK_RANK["not_assessable"] < RISK_RANK["moderate"]
    assert RISK_RANK["moderate"] < RISK_RANK["high"]
    p = make_patient(22, family="Unmeasuredson")
    why = "not assessable: heights not measured (vertebra cut by the scan edge)"
    add_analysed_study(
        p,
        10,
        vertebra("T11", collapse_risk="not_assessable", reasons=[why]),
        vertebra("T12", collapse_risk="low"),
        vertebra(
            "L1",
            confidence="medium",
            confidence_reasons=["voxel 3.0 mm along the superior axis (> 1.5 mm)"],
            treat_signal=True,
            treat_signal_reasons=["new fracture: Genant grade 0 → 1"],
            collapse_risk="high",
        ),
    )
    as_(client, users, "clinician")
    html = client.get("/", {"q": "Unmeasuredson"}).content.decode()
    assert "High risk" in html
    # without the high level, the patient's highest open risk is "not assessable", not "low"
    l1 = rm.VertebraFinding.objects.get(study__patient=p, level="L1")
    services.set_finding_decision(finding=l1, expected_version=l1.version, decision="treated")
    html = client.get("/", {"q": "Unmeasuredson"}).content.decode()
    assert "Not assessable" in html and "Low risk" not in html
    # the patient page: the badge says why; confidence and the signal beside each finding
    page = client.get(f"/patients/{p.study_id}/").content.decode()
    t11 = page.split('data-label="Level" class="primary-cell">T11</th>', 1)[1].split("</tr>")[0]
    assert '<span class="badge badge-na" title="heights not measured' in t11
    assert "Low risk" not in t11
    l1_row = page.split('data-label="Level" class="primary-cell">L1</th>', 1)[1].split("</tr>")[0]
    assert "Signal to treat" in l1_row and "Medium confidence" in l1_row
    assert "voxel 3.0 mm along the superior axis" in l1_row


def test_list_view_is_audited_with_query(client, users, patient):
    as_(client, users, "clinician")
    before = AuditEvent.objects.count()
    client.get("/", {"q": "bright"})
    events = list(AuditEvent.objects.order_by("seq")[before:])
    assert len(events) == 1
    event = events[0]
    assert event.action == "view" and event.actor_username == "dr_pagetest"
    assert event.detail["query"] == "bright"
    assert event.detail["study_ids"] == [patient.study_id]


# --------------------------------------------------------------------------- patient page
def test_patient_page_audited_and_timeline_newest_first(client, users, patient):
    add_analysed_study(patient, 5, vertebra("L1"))
    as_(client, users, "case_manager")
    before = AuditEvent.objects.count()
    html = client.get(f"/patients/{patient.study_id}/").content.decode()
    events = list(AuditEvent.objects.order_by("seq")[before:])
    assert [(e.action, e.patient_study_id) for e in events] == [("view", patient.study_id)]
    timeline = html[html.index('class="timeline"') :]
    order = [m.group(1) for m in re.finditer(r'class="timeline-item kind-([a-z-]+)"', timeline)]
    # study 5 days ago, overdue visits (3 m: 29 days ago), procedure 120 days ago,
    # diagnosis 400 days ago
    assert order[0] == "imaging"
    assert order.index("procedure") < order.index("diagnosis") == len(order) - 1
    dates = re.findall(r'<time class="timeline-date" datetime="([0-9-]+)"', timeline)
    assert dates == sorted(dates, reverse=True)
    assert 'href="/scans/' in html and "/picture.png" in html


def test_patient_page_shows_levels_and_changes_since_prior(client, users, patient):
    add_analysed_study(patient, 200, vertebra("L1", lytic_volume_ml=0.0), vertebra("L2"))
    add_analysed_study(
        patient,
        20,
        vertebra(
            "L1",
            lytic_volume_ml=1.5,
            lytic_fraction=0.12,
            collapse_risk="high",
            posterior_wall_involved=True,
        ),
        vertebra("L2"),
    )
    as_(client, users, "clinician")
    html = client.get(f"/patients/{patient.study_id}/").content.decode()
    assert "Latest scan analysis" in html
    row = html[html.index('id="finding-') :]
    assert "High risk" in html and "12.0" in row and "Involved" in row
    assert "Changes since the prior scan" in html
    assert "new lytic lesion" in html  # compare_reports' reason for L1
    assert "Treat before collapse" in html


def test_pain_chart_has_one_point_per_scored_visit(client, users, patient):
    procedure = patient.procedures.get()
    visits = list(procedure.follow_ups.order_by("due_date")[:3])
    for fu, vas in zip(visits, (8, 3, 2), strict=True):
        services.record_follow_up(
            follow_up=fu,
            expected_version=fu.version,
            completed_on=fu.due_date,
            vas=vas,
            entered_by=users["case_manager"],
        )
    as_(client, users, "clinician")
    html = client.get(f"/patients/{patient.study_id}/").content.decode()
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count("<circle") == 3
    assert "style=" not in svg
    assert "VAS 8" in svg and "VAS 2" in svg
    # y = top + (10 - vas) / 10 * plot height: VAS 8 is drawn above VAS 2
    ys = [float(v) for v in re.findall(r'<circle cx="[0-9.]+" cy="([0-9.]+)"', svg)]
    assert ys[0] < ys[2]
    assert "Cora Minder" in html  # who entered it


# --------------------------------------------------------------------------- new and edit
def test_new_patient_creates_identity_and_diagnosis(client, users):
    as_(client, users, "clinician")
    response = client.post(
        "/patients/new/",
        {
            "family_name": "Newcomb-Ashby",
            "given_name": "Perpetua",
            "hospital_number": "HN-NEW-1",
            "birth_date": "1961-02-03",
            "sex": "female",
            "case_manager": users["case_manager"].pk,
            "diagnosis_kind": "metastasis",
            "primary_tumour": "lung",
            "diagnosed_on": "2024-01-05",
        },
    )
    assert response.status_code == 302
    patient = rm.Patient.objects.get(identity__hospital_number="HN-NEW-1")
    assert response["Location"] == f"/patients/{patient.study_id}/"
    assert patient.case_manager == users["case_manager"]
    assert [(d.kind, d.primary_tumour) for d in patient.diagnoses.all()] == [("metastasis", "lung")]


def test_new_patient_bad_input_is_400_and_writes_nothing(client, users):
    as_(client, users, "clinician")
    make_patient(31)
    count = rm.Patient.objects.count()
    data = {
        "family_name": "Dup",
        "given_name": "Licate",
        "hospital_number": "HX-00031",  # taken
        "sex": "male",
        "diagnosis_kind": "myeloma",
    }
    response = client.post("/patients/new/", data)
    assert response.status_code == 400
    html = response.content.decode()
    field = html[html.index('for="id_hospital_number"') :]
    assert "already the number of patient" in field[: field.index("<input")]
    # metastasis without its primary: refused by the core, next to the primary tumour field
    data.update(hospital_number="HX-NEW-77", diagnosis_kind="metastasis")
    response = client.post("/patients/new/", data)
    assert response.status_code == 400
    html = response.content.decode()
    field = html[html.index('for="id_primary_tumour"') :]
    assert 'class="errors"' in field[: field.index("<select")]
    assert rm.Patient.objects.count() == count


def test_case_manager_edits_own_patient_only(client, users, patient):
    other = make_patient(41)
    as_(client, users, "case_manager")
    assert client.get(f"/patients/{patient.study_id}/edit/").status_code == 200
    other_cm = make_user("case_manager", "cm_other")
    services.update_patient(patient=other, expected_version=other.version, case_manager=other_cm)
    assert client.get(f"/patients/{other.study_id}/edit/").status_code == 403
    assert client.get(f"/patients/{patient.study_id}/procedures/new/").status_code == 403


def _identity_post(patient, **changes):
    ident = patient.identity
    data = {
        "family_name": ident.family_name,
        "given_name": ident.given_name,
        "hospital_number": ident.hospital_number,
        "birth_date": ident.birth_date.isoformat() if ident.birth_date else "",
        "sex": ident.sex,
        "case_manager": patient.case_manager_id or "",
        "phone": "",
        "email": "",
        "expected_version": patient.version,
    }
    data.update(changes)
    return data


def test_edit_identity_saves_with_version(client, users, patient):
    as_(client, users, "clinician")
    response = client.post(
        f"/patients/{patient.study_id}/edit/", _identity_post(patient, given_name="Renamed")
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.identity.given_name == "Renamed"


def test_stale_identity_edit_is_409_with_both_values(client, users, patient):
    as_(client, users, "clinician")
    stale = _identity_post(patient, family_name="Mytry")
    services.update_patient_identity(
        patient=patient, expected_version=patient.version, family_name="Otherssaved"
    )
    response = client.post(f"/patients/{patient.study_id}/edit/", stale)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Changed by someone else" in html
    assert "Otherssaved" in html and "Mytry" in html
    assert "Reload and re-apply" in html
    patient.refresh_from_db()
    assert patient.identity.family_name == "Otherssaved"


def test_csrf_is_enforced_on_edits(users, patient):
    csrf_client = Client(enforce_csrf_checks=True)
    client_for(csrf_client, users["clinician"])
    response = csrf_client.post(
        f"/patients/{patient.study_id}/edit/", _identity_post(patient, given_name="Nope")
    )
    assert response.status_code == 403
    patient.refresh_from_db()
    assert patient.identity.given_name != "Nope"


# --------------------------------------------------------------------------- decisions
@pytest.fixture
def high_risk(patient):
    add_analysed_study(patient, 15, vertebra("T12", collapse_risk="high"), vertebra("L1"))
    return rm.VertebraFinding.objects.get(study__patient=patient, level="T12")


def test_decision_set_with_htmx_returns_the_cell(client, users, high_risk):
    as_(client, users, "clinician")
    response = client.post(
        f"/findings/{high_risk.pk}/decision/",
        {"decision": "treat", "note": "MDT: cement", "expected_version": high_risk.version},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Treat" in body and "MDT: cement" in body and "<html" not in body
    assert "<tr" not in body and "<td" not in body  # the cell's content, not a row
    assert 'hx-get="/findings/' in body  # and the "Change" control again
    high_risk.refresh_from_db()
    assert (high_risk.decision, high_risk.decision_note) == ("treat", "MDT: cement")


def test_decision_without_js_redirects_and_bad_value_is_400(client, users, high_risk):
    as_(client, users, "clinician")
    bad = client.post(
        f"/findings/{high_risk.pk}/decision/",
        {"decision": "amputate", "expected_version": high_risk.version},
    )
    assert bad.status_code == 400 and "amputate" in bad.content.decode()
    ok = client.post(
        f"/findings/{high_risk.pk}/decision/",
        {"decision": "watch", "expected_version": high_risk.version},
    )
    assert ok.status_code == 302 and ok["Location"].endswith(f"#finding-{high_risk.pk}")
    high_risk.refresh_from_db()
    assert high_risk.decision == "watch"


def test_stale_decision_is_409_page_even_with_htmx(client, users, high_risk):
    as_(client, users, "clinician")
    version = high_risk.version
    services.set_finding_decision(finding=high_risk, expected_version=version, decision="watch")
    response = client.post(
        f"/findings/{high_risk.pk}/decision/",
        {"decision": "treated", "expected_version": version},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 409
    assert response["HX-Retarget"] == "#main"
    html = response.content.decode()
    assert "Changed by someone else" in html and "Watch" in html and "treated" in html
    high_risk.refresh_from_db()
    assert high_risk.decision == "watch"


def test_case_manager_and_researcher_cannot_decide(client, users, high_risk):
    for role in ("case_manager", "researcher"):
        as_(client, users, role)
        response = client.post(
            f"/findings/{high_risk.pk}/decision/",
            {"decision": "treat", "expected_version": high_risk.version},
        )
        assert response.status_code == 403
    high_risk.refresh_from_db()
    assert high_risk.decision == "none"


# --------------------------------------------------------------------------- SINS
def _points(location, lesion, collapse, posterolateral, pain, alignment):
    # Fisher 2010 tables, written out independently of core.sins
    table = {
        "junctional": 3,
        "mobile": 2,
        "semi_rigid": 1,
        "rigid": 0,
        "lytic": 2,
        "mixed": 1,
        "blastic": 0,
        "over_50_pct": 3,
        "under_50_pct": 2,
        "no_collapse_over_50_pct_involved": 1,
        "none_c": 0,
        "bilateral": 3,
        "unilateral": 1,
        "none_p": 0,
        "mechanical": 3,
        "occasional_non_mechanical": 1,
        "none_pain": 0,
        "subluxation_translation": 4,
        "de_novo_deformity": 2,
        "normal": 0,
    }
    return sum(table[k] for k in (location, lesion, collapse, posterolateral, pain, alignment))


@pytest.mark.parametrize(
    ("pain", "alignment", "category"),
    [
        ("mechanical", "de_novo_deformity", "potentially_unstable"),
        ("mechanical", "subluxation_translation", "unstable"),
        ("none", "normal", "potentially_unstable"),
    ],
)
def test_sins_total_and_category(client, users, high_risk, pain, alignment, category):
    as_(client, users, "clinician")
    response = client.post(
        f"/findings/{high_risk.pk}/sins/", {"pain": pain, "alignment": alignment}
    )
    assert response.status_code == 302
    a = SinsAssessment.objects.get(finding=high_risk)
    expected = _points(
        "mobile",
        "lytic",
        "under_50_pct",
        "unilateral",
        "none_pain" if pain == "none" else pain,
        alignment,
    )
    assert a.total == expected
    assert a.imaging_points == 7
    low, high = {"stable": (0, 6), "potentially_unstable": (7, 12), "unstable": (13, 18)}[category]
    assert low <= expected <= high and a.category == category
    assert a.assessed_by == users["clinician"]
    assert AuditEvent.objects.filter(
        action="create",
        object_type="registry.sinsassessment",
        patient_study_id=high_risk.study.patient.study_id,
    ).exists()
    html = client.get(f"/patients/{high_risk.study.patient.study_id}/").content.decode()
    row = html[html.index(f'id="finding-{high_risk.pk}"') :]
    assert f"<strong>{expected}</strong>" in row[: row.index("</tr>")]


def test_sins_enums_agree_with_the_independent_table():
    # guard: the test table above is the same clinical table as the core's
    assert (
        SinsPain("mechanical").points == 3 and SinsAlignment("subluxation_translation").points == 4
    )
    assert SinsLocation("mobile").points == 2 and SinsBoneLesion("lytic").points == 2
    assert SinsCollapse("under_50_pct").points == 2 and SinsPosterolateral("unilateral").points == 1


def test_sins_bad_input_and_missing_imaging_part(client, users, patient):
    add_analysed_study(patient, 5, vertebra("L3", sins_imaging=None))
    finding = rm.VertebraFinding.objects.get(study__patient=patient, level="L3")
    as_(client, users, "clinician")
    response = client.post(
        f"/findings/{finding.pk}/sins/", {"pain": "mechanical", "alignment": "normal"}
    )
    assert response.status_code == 400
    assert "no SINS imaging part" in response.content.decode()
    add_analysed_study(patient, 2, vertebra("L4"))
    scored = rm.VertebraFinding.objects.get(study__patient=patient, level="L4")
    bad = client.post(f"/findings/{scored.pk}/sins/", {"pain": "agony", "alignment": "normal"})
    assert bad.status_code == 400
    html = bad.content.decode()
    pain = html[html.index("<legend>Pain") :]
    assert "agony is not one of the available choices" in pain[: pain.index("</fieldset>")]
    assert not SinsAssessment.objects.exists()
    as_(client, users, "researcher")
    assert client.get(f"/findings/{finding.pk}/sins/").status_code == 403


def test_sins_components_the_imaging_did_not_assess_are_read_by_the_clinician(
    client, users, patient
):
    # an MRI (or labels without a CT): lesion quality and posterolateral involvement unknown
    part = {
        "location": "mobile",
        "bone_lesion": "not_assessed",
        "collapse": "none",
        "posterolateral": "not_assessed",
        "points": 2,
        "possible_total_range": [2, 14],
        "not_assessed": ["bone_lesion", "posterolateral"],
    }
    add_analysed_study(patient, 4, vertebra("L3", sins_imaging=part, sins_imaging_points=None))
    finding = rm.VertebraFinding.objects.get(study__patient=patient, level="L3")
    as_(client, users, "clinician")
    url = f"/findings/{finding.pk}/sins/"
    page = client.get(url).content.decode()
    assert "Not assessed (no CT)" in page
    assert "the total will be 2–14 of 18" in page
    assert "Bone lesion (read from the images)" in page
    assert "Posterolateral involvement (read from the images)" in page
    assert "Vertebral body collapse (read from the images)" not in page  # assessed: none
    assert 'value="not_assessed"' not in page  # only real readings are offered
    # without the readings: refused, nothing stored
    missing = client.post(url, {"pain": "mechanical", "alignment": "normal"})
    assert missing.status_code == 400 and not SinsAssessment.objects.exists()
    done = client.post(
        url,
        {
            "pain": "mechanical",
            "alignment": "normal",
            "bone_lesion": "lytic",
            "posterolateral": "unilateral",
        },
    )
    assert done.status_code == 302
    a = SinsAssessment.objects.get(finding=finding)
    assert a.imaging_points == _points(
        "mobile", "lytic", "none_c", "unilateral", "none_pain", "normal"
    )
    assert a.total == _points("mobile", "lytic", "none_c", "unilateral", "mechanical", "normal")
    # the service refuses a completion without the reading, naming it
    from spinewatch.registry.errors import RegistryError
    from spinewatch.registry.services import score_for

    with pytest.raises(RegistryError, match="bone lesion, posterolateral not assessed"):
        score_for(finding, pain="none", alignment="normal")


def test_diffuse_infiltration_reaches_stored_findings_pages_and_report(client, users):
    """The report's diffuse-infiltration finding (the myeloma pattern) is stored with each
    finding and shown beside the level's HU on the patient page and the scan's page."""
    p = make_patient(23, family="Marrowfield")
    why = "diffuse infiltration: trabecular bone 72 HU below the patient's own other vertebrae"
    study = add_analysed_study(
        p,
        12,
        vertebra("L2", diffuse_infiltration=False, diffuse_infiltration_hu_below_own=-12.0),
        vertebra(
            "L3",
            trabecular_hu_median=38.0,
            diffuse_infiltration=True,
            diffuse_infiltration_hu_below_own=72.0,
            collapse_risk="moderate",
            reasons=[why],
        ),
        vertebra("L4"),  # an older report without the fields
    )
    stored = {f.level: f for f in study.findings.all()}
    assert (stored["L3"].diffuse_infiltration, stored["L3"].diffuse_infiltration_hu_below_own) == (
        True,
        72.0,
    )
    assert stored["L2"].diffuse_infiltration is False
    assert stored["L4"].diffuse_infiltration is None
    as_(client, users, "clinician")
    page = client.get(f"/patients/{p.study_id}/").content.decode()

    def row(level: str) -> str:
        cell = f'data-label="Level" class="primary-cell">{level}</th>'
        return page.split(cell, 1)[1].split("</tr>")[0]

    assert "Diffuse infiltration" in row("L3") and "72 HU below own spine" in row("L3")
    assert "infiltration" not in row("L2").replace(why, "") and "Diffuse" not in row("L4")
    scan = client.get(f"/scans/{study.pk}/").content.decode()
    l3 = scan.split('<th scope="row">L3', 1)[1].split("</tr>")[0]
    assert "diffuse infiltration, 72 HU below own spine" in l3
    l2 = scan.split('<th scope="row">L2', 1)[1].split("</tr>")[0]
    assert "diffuse infiltration" not in l2
