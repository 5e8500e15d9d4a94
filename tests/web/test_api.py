"""The JSON API: every route's happy path, 401/403/404/400/409/422, audit events, sessions+CSRF.

Expected values come from the registry (re-read rows, the service layer) or from independent
computations (the outcome table from ``outcome_table(deidentified_cohort_frame())``), never from
the API itself.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from _api_support import PROCEDURE_DAY, REPORT, TODAY, JsonClient, make_api_user, seed_patient
from django.test import Client

from spinewatch.accounts.testing import signed_in
from spinewatch.accounts.tokens import create_token, revoke_token
from spinewatch.audit.models import AuditEvent
from spinewatch.registry import models as m
from spinewatch.registry import services
from spinewatch.web.api.schemas import TimePointOut

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clinician():
    return make_api_user("clinician", "cara")


@pytest.fixture
def researcher():
    return make_api_user("researcher", "rhea")


@pytest.fixture
def manager():
    return make_api_user("case_manager", "mona")


@pytest.fixture
def other_manager():
    return make_api_user("case_manager", "otto")


@pytest.fixture
def admin():
    return make_api_user("admin", "ada")


@pytest.fixture
def seeded(manager):
    return seed_patient(case_manager=manager.user)


def _views(**filters):
    return AuditEvent.objects.filter(action="view", **filters)


# --- the document and authentication ---------------------------------------------------------


def test_openapi_document_lists_every_resource_without_authentication():
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    paths = set(doc["paths"])
    for expected in (
        "/api/patients",
        "/api/patients/{patient_id}",
        "/api/patients/{patient_id}/identity",
        "/api/patients/{patient_id}/diagnoses",
        "/api/patients/{patient_id}/studies",
        "/api/studies/{imaging_study_id}",
        "/api/findings/{finding_id}",
        "/api/patients/{patient_id}/procedures",
        "/api/procedures/{procedure_id}",
        "/api/patients/{patient_id}/follow-ups",
        "/api/procedures/{procedure_id}/follow-ups",
        "/api/follow-ups/{follow_up_id}",
        "/api/outcomes",
        "/api/deidentified/patients",
        "/api/deidentified/patients/{study_id}",
    ):
        assert expected in paths
    schemes = doc["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"} in schemes.values()
    # input, update and output schemas are separate
    assert {"PatientIn", "IdentityUpdate", "PatientOut", "ProcedureIn", "ProcedureUpdate"} <= set(
        doc["components"]["schemas"]
    )
    assert Client().get("/api/docs").status_code == 404  # no CDN-backed docs UI (CSP)


def test_openapi_document_is_valid_openapi():
    import copy

    import jsonschema_rs
    import schemathesis

    doc = Client().get("/api/openapi.json").json()
    schemathesis.openapi.from_dict(doc).validate()  # the OpenAPI 3.1 meta-schema
    broken = copy.deepcopy(doc)
    broken["paths"]["/api/patients"]["get"]["responses"] = "none"
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(broken).validate()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/patients"),
        ("get", "/api/patients/1"),
        ("post", "/api/patients"),
        ("get", "/api/outcomes"),
        ("get", "/api/deidentified/patients"),
        ("put", "/api/follow-ups/1"),
    ],
)
def test_no_credentials_is_401_json_with_bearer_challenge(method, path):
    client = JsonClient()
    response = getattr(client, method)(path, **({} if method == "get" else {"body": {}}))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "authentication required" in response.json()["detail"]


def test_bad_expired_or_revoked_token_is_401_even_with_a_session(clinician):
    assert JsonClient("swt_not-a-token").get("/api/patients").status_code == 401
    new = create_token(clinician.user, name="old")
    revoke_token(new.record.pk)
    browser = signed_in(Client(), clinician.user)
    assert browser.get("/api/patients").status_code == 200  # the session alone works
    refused = JsonClient(new.token, client=browser).get("/api/patients")
    assert refused.status_code == 401  # a bad token decides, whatever the cookie


def test_token_response_is_no_store_and_audited_as_api(clinician, seeded):
    patient = seeded["patient"]
    response = clinician.client.get(f"/api/patients/{patient.pk}")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    event = _views(object_type="registry.patient", object_id=str(patient.pk)).get()
    assert event.actor_username == "cara" and event.via == "api"
    assert event.patient_study_id == patient.study_id


def test_session_needs_csrf_for_unsafe_methods(clinician):
    browser = signed_in(Client(enforce_csrf_checks=True), clinician.user)
    api = JsonClient(client=browser)
    body = {"identity": {"family_name": "Doe", "given_name": "J", "hospital_number": "HN-9"}}
    refused = api.post("/api/patients", body)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not m.Patient.objects.exists()
    assert api.get("/api/patients").status_code == 200  # safe methods need no token
    secret = "k" * 32  # Django accepts an unmasked secret equal to the cookie's
    browser.cookies["csrftoken"] = secret
    accepted = api.post("/api/patients", body, HTTP_X_CSRFTOKEN=secret)
    assert accepted.status_code == 201, accepted.content
    assert m.Patient.objects.count() == 1


# --- patients --------------------------------------------------------------------------------


def test_patient_list_search_and_pages(clinician):
    for i in range(7):
        seed_patient(
            family_name=f"Name{i}",
            hospital_number=f"HN-{i}",
            with_procedure=False,
            with_study=False,
        )
    first = clinician.client.get("/api/patients?limit=3&offset=0").json()
    second = clinician.client.get("/api/patients?limit=3&offset=3").json()
    assert first["count"] == 7 and len(first["items"]) == 3 and len(second["items"]) == 3
    expected = list(m.Patient.objects.order_by("study_id").values_list("study_id", flat=True))
    assert [p["study_id"] for p in first["items"] + second["items"]] == expected[:6]
    found = clinician.client.get("/api/patients?search=name4").json()
    assert found["count"] == 1 and found["items"][0]["family_name"] == "Name4"
    by_number = clinician.client.get("/api/patients?search=HN-6").json()
    assert [p["hospital_number"] for p in by_number["items"]] == ["HN-6"]
    listed = _views(object_type="registry.patient", object_id="").last()
    assert listed.detail["search"] == "HN-6" and len(listed.detail["study_ids"]) == 1
    assert clinician.client.get("/api/patients?limit=0").status_code == 422
    assert clinician.client.get("/api/patients?limit=101").status_code == 422


def test_create_patient_with_identity(clinician, manager):
    body = {
        "case_manager": "mona",
        "identity": {
            "family_name": "Doe",
            "given_name": "Jane",
            "hospital_number": "HN-1",
            "birth_date": "1960-02-29",
            "sex": "female",
            "email": "jane@example.org",
        },
    }
    response = clinician.client.post("/api/patients", body)
    assert response.status_code == 201, response.content
    data = response.json()
    row = m.Patient.objects.select_related("identity").get(pk=data["id"])
    assert data["study_id"] == row.study_id and row.study_id.startswith("SW-")
    assert row.identity.birth_date == dt.date(1960, 2, 29) and row.case_manager == manager.user
    assert data["identity"]["hospital_number"] == "HN-1" and data["case_manager"] == "mona"
    created = AuditEvent.objects.filter(action="create", object_type="registry.patient").get()
    assert created.actor_username == "cara" and created.via == "api"


def test_create_patient_refusals(clinician, manager, other_manager, researcher):
    identity = {"family_name": "Doe", "given_name": "J", "hospital_number": "HN-1"}
    assert clinician.client.post("/api/patients", {"identity": identity}).status_code == 201
    duplicate = clinician.client.post("/api/patients", {"identity": identity})
    assert duplicate.status_code == 400 and "HN-1" in duplicate.json()["detail"]
    future = {**identity, "hospital_number": "HN-2", "birth_date": "2999-01-01"}
    refused = clinician.client.post("/api/patients", {"identity": future})
    assert refused.status_code == 400 and "2999-01-01" in refused.json()["detail"]
    not_a_manager = clinician.client.post("/api/patients", {"case_manager": "rhea"})
    assert not_a_manager.status_code == 400 and "'rhea'" in not_a_manager.json()["detail"]
    missing = clinician.client.post("/api/patients", {"identity": {"family_name": "X"}})
    assert missing.status_code == 422 and isinstance(missing.json()["detail"], list)
    nul = clinician.client.post(
        "/api/patients", {"identity": {**identity, "hospital_number": "HN\x003"}}
    )
    assert nul.status_code == 422
    # per-object rule: a case manager creates own or unassigned patients only
    assert manager.client.post("/api/patients", {"case_manager": "mona"}).status_code == 201
    assert manager.client.post("/api/patients", {}).status_code == 201
    assert manager.client.post("/api/patients", {"case_manager": "otto"}).status_code == 403
    assert researcher.client.post("/api/patients", {}).status_code == 403
    assert m.Patient.objects.count() == 3


def test_patient_detail_404_and_researcher_403(clinician, researcher, seeded):
    patient = seeded["patient"]
    data = clinician.client.get(f"/api/patients/{patient.pk}").json()
    assert data["identity"]["family_name"] == "Quixotewright"
    assert [d["kind"] for d in data["diagnoses"]] == ["myeloma"]
    missing = clinician.client.get(f"/api/patients/{patient.pk + 1000}")
    assert missing.status_code == 404 and str(patient.pk + 1000) in missing.json()["detail"]
    assert clinician.client.get("/api/patients/0").status_code == 422
    for path in (f"/api/patients/{patient.pk}", "/api/patients", f"/api/patients/{patient.pk + 9}"):
        refused = researcher.client.get(path)
        assert refused.status_code == 403 and "Quixotewright" not in refused.content.decode()
    assert not _views(actor_username="rhea").exists()


def test_identity_update_versions_and_stale_edit(clinician, other_manager, manager, seeded):
    patient = seeded["patient"]
    path = f"/api/patients/{patient.pk}/identity"
    changed = clinician.client.patch(path, {"expected_version": 1, "phone": "+44 1"})
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert m.PatientIdentity.objects.get(pk=patient.pk).phone == "+44 1"
    stale = clinician.client.patch(path, {"expected_version": 1, "phone": "+44 2"})
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2 and stale.json()["expected_version"] == 1
    assert "changed by someone else" in stale.json()["detail"]
    assert m.PatientIdentity.objects.get(pk=patient.pk).phone == "+44 1"
    cleared = clinician.client.patch(path, {"expected_version": 2, "birth_date": None})
    assert cleared.status_code == 200 and cleared.json()["identity"]["birth_date"] is None
    empty = clinician.client.patch(path, {"expected_version": 3, "family_name": " "})
    assert empty.status_code == 400 and "family_name" in empty.json()["detail"]
    null_name = clinician.client.patch(path, {"expected_version": 3, "family_name": None})
    assert null_name.status_code == 400
    # own patient of mona: otto may not edit, mona may
    assert other_manager.client.patch(path, {"expected_version": 3}).status_code == 403
    assert (
        manager.client.patch(path, {"expected_version": 3, "email": "a@b.org"}).status_code == 200
    )


def test_case_manager_assignment(clinician, manager, other_manager, seeded):
    patient = seeded["patient"]
    path = f"/api/patients/{patient.pk}"
    # mona may not hand her patient to otto; a clinician may
    assert (
        manager.client.patch(path, {"expected_version": 1, "case_manager": "otto"}).status_code
        == 403
    )
    moved = clinician.client.patch(path, {"expected_version": 1, "case_manager": "otto"})
    assert moved.status_code == 200 and moved.json()["case_manager"] == "otto"
    assert m.Patient.objects.get(pk=patient.pk).case_manager == other_manager.user


def test_add_diagnosis(clinician, manager, researcher, seeded):
    patient = seeded["patient"]
    path = f"/api/patients/{patient.pk}/diagnoses"
    ok = clinician.client.post(path, {"kind": "metastasis", "primary_tumour": "breast"})
    assert ok.status_code == 201 and ok.json()["primary_tumour"] == "breast"
    assert m.Diagnosis.objects.filter(patient=patient, kind="metastasis").count() == 1
    bad = clinician.client.post(path, {"kind": "metastasis"})
    assert bad.status_code == 400 and "primary" in bad.json()["detail"].lower()
    assert clinician.client.post(path, {"kind": "flu"}).status_code == 422
    assert manager.client.post(path, {"kind": "myeloma"}).status_code == 403  # clinical edit
    assert researcher.client.post(path, {"kind": "myeloma"}).status_code == 403
    assert (
        clinician.client.post("/api/patients/99999/diagnoses", {"kind": "myeloma"}).status_code
        == 404
    )


# --- imaging ---------------------------------------------------------------------------------


def test_studies_list_detail_and_audit(clinician, researcher, seeded):
    patient, study = seeded["patient"], seeded["study"]
    listed = clinician.client.get(f"/api/patients/{patient.pk}/studies")
    assert listed.status_code == 200
    assert [(s["id"], s["high_risk_levels"]) for s in listed.json()] == [(study.pk, ["L1"])]
    detail = clinician.client.get(f"/api/studies/{study.pk}").json()
    assert detail["report"] == json.loads(json.dumps(REPORT))
    levels = {f["level"]: f for f in detail["findings"]}
    assert levels["L1"]["collapse_risk"] == "high" and levels["L1"]["sins_imaging_points"] == 5
    assert levels["L1"]["lytic_fraction"] == pytest.approx(0.4)
    assert _views(object_type="registry.imagingstudy", object_id=str(study.pk)).exists()
    assert (
        _views(object_type="registry.imagingstudy", patient_study_id=patient.study_id).count() == 2
    )
    assert clinician.client.get(f"/api/studies/{study.pk + 50}").status_code == 404
    assert researcher.client.get(f"/api/studies/{study.pk}").status_code == 403
    assert researcher.client.get(f"/api/patients/{patient.pk}/studies").status_code == 403
    # a report written before the signal and confidence keys: null and empty lists
    assert (levels["L1"]["treat_signal"], levels["L1"]["confidence"]) == (None, None)
    assert levels["L1"]["treat_signal_reasons"] == levels["L1"]["confidence_reasons"] == []


def test_study_carries_not_assessable_signal_and_confidence(clinician, seeded):
    patient = seeded["patient"]
    report = {
        "scan": {"labels": "synthetic"},
        "vertebrae": [
            {
                "level": "T11",
                "collapse_risk": "not_assessable",
                "reasons": ["not assessable: heights not measured (vertebra cut by the scan edge)"],
                "confidence": "low",
                "confidence_reasons": ["vertebra cut by the scan edge (partial body, no heights)"],
            },
            {
                "level": "T12",
                "collapse_risk": "moderate",
                "treat_signal": True,
                "treat_signal_reasons": ["trabecular attenuation fell 180 → 150 HU"],
                "confidence": "high",
                "confidence_reasons": ["no quality concern"],
            },
        ],
    }
    study = services.add_imaging_study(patient=patient, study_date=TODAY, report=report)
    listed = {
        s["id"]: s for s in clinician.client.get(f"/api/patients/{patient.pk}/studies").json()
    }
    assert listed[study.pk]["not_assessable_levels"] == ["T11"]
    assert listed[study.pk]["treat_signal_levels"] == ["T12"]
    assert listed[study.pk]["high_risk_levels"] == []
    detail = clinician.client.get(f"/api/studies/{study.pk}").json()
    levels = {f["level"]: f for f in detail["findings"]}
    assert levels["T11"]["collapse_risk"] == "not_assessable"
    assert (levels["T11"]["confidence"], levels["T11"]["treat_signal"]) == ("low", None)
    assert levels["T12"]["treat_signal"] is True
    assert levels["T12"]["treat_signal_reasons"] == ["trabecular attenuation fell 180 → 150 HU"]
    assert levels["T12"]["confidence_reasons"] == ["no quality concern"]


def test_study_findings_carry_diffuse_infiltration(clinician, seeded):
    patient = seeded["patient"]
    report = {
        "scan": {"labels": "synthetic"},
        "vertebrae": [
            {
                "level": "L2",
                "diffuse_infiltration": True,
                "diffuse_infiltration_hu_below_own": 61.5,
            },
            {
                "level": "L3",
                "diffuse_infiltration": False,
                "diffuse_infiltration_hu_below_own": 4.0,
            },
            {"level": "L4", "collapse_risk": "low"},
        ],
    }
    study = services.add_imaging_study(patient=patient, study_date=TODAY, report=report)
    detail = clinician.client.get(f"/api/studies/{study.pk}").json()
    levels = {f["level"]: f for f in detail["findings"]}
    assert levels["L2"]["diffuse_infiltration"] is True
    assert levels["L2"]["diffuse_infiltration_hu_below_own"] == pytest.approx(61.5)
    assert levels["L3"]["diffuse_infiltration"] is False
    # not assessed (or a report from before the finding): null, never "no"
    assert levels["L4"]["diffuse_infiltration"] is None
    assert levels["L4"]["diffuse_infiltration_hu_below_own"] is None


def test_finding_decision(clinician, manager, seeded):
    finding = m.VertebraFinding.objects.get(study=seeded["study"], level="L1")
    path = f"/api/findings/{finding.pk}"
    body = {"expected_version": 1, "decision": "treat", "note": "MDT 3 May"}
    assert manager.client.patch(path, body).status_code == 403
    ok = clinician.client.patch(path, body)
    assert ok.status_code == 200 and ok.json()["decision"] == "treat" and ok.json()["version"] == 2
    assert m.VertebraFinding.objects.get(pk=finding.pk).decision_note == "MDT 3 May"
    stale = clinician.client.patch(path, {**body, "decision": "watch"})
    assert stale.status_code == 409 and stale.json()["current_version"] == 2
    assert clinician.client.patch(path, {**body, "decision": "maybe"}).status_code == 422
    assert clinician.client.patch("/api/findings/987654", body).status_code == 404


# --- procedures ------------------------------------------------------------------------------

TWO_LEVELS = {
    "performed_on": (TODAY - dt.timedelta(days=2)).isoformat(),
    "procedure_type": "vertebroplasty",
    "guidance": "fluoroscopy",
    "anaesthesia": "local",
    "day_case": True,
    "levels": [
        {"level": "T12", "approach": "transpedicular", "needle_gauge": 11, "cement_volume_ml": 4},
        {"level": "L3", "approach": "parapedicular", "needle_gauge": 13, "cement_volume_ml": 3.5},
    ],
    "leakages": [{"leakage_type": "S", "site": "venous", "symptomatic": False, "level": "L3"}],
    "complications": [{"sir_class": "A", "description": "vasovagal"}],
    "notes": "two levels",
}


def test_record_two_level_procedure_creates_its_schedule(clinician, seeded):
    patient = seeded["patient"]
    response = clinician.client.post(f"/api/patients/{patient.pk}/procedures", TWO_LEVELS)
    assert response.status_code == 201, response.content
    data = response.json()
    row = m.Procedure.objects.get(pk=data["id"])
    assert sorted(row.levels.values_list("level", flat=True)) == ["L3", "T12"]
    assert row.leakages.get().treated_level.level == "L3"
    assert row.operator == "cara"  # the authenticated user when no operator is given
    schedule = list(row.follow_ups.order_by("due_date").values_list("timepoint", flat=True))
    assert [f["timepoint"] for f in data["follow_ups"]] == schedule and len(schedule) >= 2
    assert data["leakages"] == [
        {"leakage_type": "S", "site": "venous", "symptomatic": False, "level": "L3"}
    ]
    assert AuditEvent.objects.filter(action="create", object_type="registry.procedure").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"performed_on": "2999-01-01"}, "2999-01-01"),
        ({"levels": []}, "at least one treated level"),
        (
            {"levels": [{**TWO_LEVELS["levels"][0], "approach": "transoral"}]},
            "levels[0]",
        ),
        ({"leakages": [{"leakage_type": "B", "site": "epidural", "level": "C2"}]}, "C2"),
        ({"cementoplasty_site": "pelvis"}, "pelvis"),
        ({"procedure_type": "laser_disc_decompression", "levels": []}, "disc"),
    ],
)
def test_record_procedure_400_names_the_value(clinician, seeded, change, message):
    patient = seeded["patient"]
    before = m.Procedure.objects.count()
    response = clinician.client.post(
        f"/api/patients/{patient.pk}/procedures", {**TWO_LEVELS, **change}
    )
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert m.Procedure.objects.count() == before


def test_record_procedure_schema_and_role_refusals(clinician, manager, researcher, seeded):
    path = f"/api/patients/{seeded['patient'].pk}/procedures"
    bad_gauge = {**TWO_LEVELS, "levels": [{**TWO_LEVELS["levels"][0], "needle_gauge": 30}]}
    assert clinician.client.post(path, bad_gauge).status_code == 422
    assert clinician.client.post(path, {**TWO_LEVELS, "guidance": "x-ray"}).status_code == 422
    assert manager.client.post(path, TWO_LEVELS).status_code == 403
    assert researcher.client.post(path, TWO_LEVELS).status_code == 403
    assert clinician.client.post("/api/patients/424242/procedures", TWO_LEVELS).status_code == 404


def test_procedure_list_detail_update_and_stale(clinician, researcher, seeded):
    patient, procedure = seeded["patient"], seeded["procedure"]
    listed = clinician.client.get(f"/api/patients/{patient.pk}/procedures").json()
    assert [p["id"] for p in listed] == [procedure.pk]
    detail = clinician.client.get(f"/api/procedures/{procedure.pk}").json()
    assert [lv["level"] for lv in detail["levels"]] == ["L1", "L2"]
    assert _views(object_type="registry.procedure", object_id=str(procedure.pk)).exists()
    path = f"/api/procedures/{procedure.pk}"
    new_day = PROCEDURE_DAY + dt.timedelta(days=1)
    ok = clinician.client.patch(
        path, {"expected_version": 1, "notes": "corrected", "performed_on": new_day.isoformat()}
    )
    assert ok.status_code == 200, ok.content
    row = m.Procedure.objects.get(pk=procedure.pk)
    assert row.notes == "corrected" and row.version == 2 and row.performed_on == new_day
    assert sorted(row.levels.values_list("level", flat=True)) == ["L1", "L2"]  # lists unchanged
    stale = clinician.client.patch(path, {"expected_version": 1, "notes": "lost"})
    assert stale.status_code == 409 and stale.json()["current_version"] == 2
    replaced = clinician.client.patch(
        path, {"expected_version": 2, "levels": [TWO_LEVELS["levels"][0]]}
    )
    assert replaced.status_code == 200 and [lv["level"] for lv in replaced.json()["levels"]] == [
        "T12"
    ]
    refused = clinician.client.patch(path, {"expected_version": 3, "levels": None})
    assert refused.status_code == 400 and "levels" in refused.json()["detail"]
    assert (
        clinician.client.patch(path, {"expected_version": 3, "guidance": None}).status_code == 400
    )
    assert researcher.client.get(path).status_code == 403
    assert clinician.client.get("/api/procedures/777777").status_code == 404


# --- follow-ups ------------------------------------------------------------------------------


def test_follow_up_lists(clinician, researcher, seeded):
    patient, procedure = seeded["patient"], seeded["procedure"]
    by_patient = clinician.client.get(f"/api/patients/{patient.pk}/follow-ups").json()
    by_procedure = clinician.client.get(f"/api/procedures/{procedure.pk}/follow-ups").json()
    expected = list(procedure.follow_ups.order_by("due_date", "pk").values_list("pk", flat=True))
    assert [f["id"] for f in by_patient] == expected == [f["id"] for f in by_procedure]
    assert [f["vas"] for f in by_patient[:2]] == [8.0, 3.0]
    assert _views(object_type="registry.followup", patient_study_id=patient.study_id).count() == 2
    assert researcher.client.get(f"/api/patients/{patient.pk}/follow-ups").status_code == 403


def test_record_follow_up(clinician, manager, other_manager, researcher, seeded):
    procedure = seeded["procedure"]
    visit = procedure.follow_ups.filter(completed_on__isnull=True).order_by("due_date").first()
    path = f"/api/follow-ups/{visit.pk}"
    body = {
        "expected_version": 1,
        "completed_on": TODAY.isoformat(),
        "vas": 2.5,
        "analgesic_use": "non_opioid",
    }
    assert other_manager.client.put(path, body).status_code == 403  # not otto's patient
    assert researcher.client.put(path, body).status_code == 403
    ok = manager.client.put(path, body)  # mona's own patient
    assert ok.status_code == 200, ok.content
    saved = m.FollowUp.objects.get(pk=visit.pk)
    assert saved.vas == 2.5 and saved.entered_by == manager.user and saved.entered_via == "staff"
    assert ok.json()["follow_up"]["version"] == 2
    in_window = visit.window_start <= TODAY <= visit.window_end
    assert bool(ok.json()["warnings"]) is (not in_window)
    stale = clinician.client.put(path, body)
    assert stale.status_code == 409 and stale.json()["current_version"] == 2
    future = clinician.client.put(
        path, {**body, "expected_version": 2, "completed_on": "2999-12-31"}
    )
    assert future.status_code == 400 and "2999-12-31" in future.json()["detail"]
    assert clinician.client.put(path, {**body, "expected_version": 2, "vas": 11}).status_code == 422
    assert clinician.client.put("/api/follow-ups/555555", body).status_code == 404


def test_out_of_window_completion_is_a_warning(clinician, seeded):
    procedure = seeded["procedure"]
    visit = procedure.follow_ups.exclude(timepoint="pre").filter(completed_on__isnull=True)
    visit = visit.filter(window_end__lt=TODAY).order_by("due_date").first()
    assert visit is not None
    body = {"expected_version": visit.version, "completed_on": TODAY.isoformat(), "vas": 4}
    response = clinician.client.put(f"/api/follow-ups/{visit.pk}", body)
    assert response.status_code == 200 and "outside its window" in response.json()["warnings"][0]


# --- outcomes and de-identified data ---------------------------------------------------------


def test_outcomes_match_the_outcome_table(clinician, researcher):
    from spinewatch.outcomes import outcome_table
    from spinewatch.registry.deid import deidentified_cohort_frame

    for i, scores in enumerate([(8, 3), (7, 2), (9, 5), (6, 6)]):
        seed_patient(family_name=f"P{i}", hospital_number=f"HN-{i}", vas=scores, with_study=False)
    expected = outcome_table(deidentified_cohort_frame(), test="wilcoxon").to_json_dict()
    # the API states every field on every row (the post-operative ones null at baseline)
    fields = list(TimePointOut.model_fields)
    expected["timepoints"] = [{k: row.get(k) for k in fields} for row in expected["timepoints"]]
    for user in (clinician, researcher):
        response = user.client.get("/api/outcomes?test=wilcoxon")
        assert response.status_code == 200
        assert response.json() == json.loads(json.dumps(expected))
    assert expected["n_patients"] == 4
    by_level = researcher.client.get("/api/outcomes?level=L1&mixed_model=false").json()
    assert by_level["n_patients"] == 4 and by_level["mixed_model"]["fitted"] is False
    none = researcher.client.get("/api/outcomes?level=C3").json()
    assert none["n_patients"] == 0 and none["timepoints"] == []
    later = researcher.client.get(f"/api/outcomes?date_from={TODAY.isoformat()}").json()
    assert later["n_patients"] == 0
    assert researcher.client.get("/api/outcomes?level=Z9").status_code == 422
    assert researcher.client.get("/api/outcomes?date_to=yesterday").status_code == 422
    assert researcher.client.get("/api/outcomes?test=anova").status_code == 422


def test_deidentified_patients_for_researchers(researcher, clinician, seeded):
    patient = seeded["patient"]
    page = researcher.client.get("/api/deidentified/patients")
    assert page.status_code == 200
    text = page.content.decode()
    for secret in ("Quixotewright", "Philomena", "HN-100", "1950-06-15", PROCEDURE_DAY.isoformat()):
        assert secret not in text
    item = page.json()["items"][0]
    assert item["study_id"] == patient.study_id and item["age_years"] is not None
    one = researcher.client.get(f"/api/deidentified/patients/{patient.study_id}")
    assert one.status_code == 200 and one.json() == item
    assert researcher.client.get("/api/deidentified/patients/SW-999999").status_code == 404
    assert researcher.client.get("/api/deidentified/patients/a%2Fb").status_code in (404, 422)
    assert clinician.client.get("/api/deidentified/patients").status_code == 200
    assert not _views(actor_username="rhea").exists()


def test_admin_reads_but_never_writes(admin, seeded):
    patient = seeded["patient"]
    assert admin.client.get(f"/api/patients/{patient.pk}").status_code == 200
    assert (
        admin.client.post(f"/api/patients/{patient.pk}/diagnoses", {"kind": "myeloma"}).status_code
        == 403
    )
    services.update_patient(patient=patient, expected_version=1)  # bump: version 2
    assert (
        admin.client.patch(
            f"/api/patients/{patient.pk}/identity", {"expected_version": 2, "phone": "1"}
        ).status_code
        == 403
    )
