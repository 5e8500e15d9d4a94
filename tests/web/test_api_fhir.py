"""``/api/fhir/Patient/{study_id}/$everything``: roles, de-identification, audit, validity."""

from __future__ import annotations

import json

import pytest
from _api_support import make_api_user, seed_patient
from fhir.resources.R4B.bundle import Bundle

from spinewatch.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _path(study_id: str) -> str:
    return f"/api/fhir/Patient/{study_id}/$everything"


def test_clinician_gets_identifiable_bundle_and_the_read_is_audited():
    clinician = make_api_user("clinician", "cleo")
    seeded = seed_patient()
    sid = seeded["patient"].study_id
    response = clinician.client.get(_path(sid))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    bundle = response.json()
    Bundle.model_validate(bundle)
    text = json.dumps(bundle)
    assert "Quixotewright" in text and "HN-100" in text
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert kinds >= {"Patient", "Condition", "Procedure", "Observation", "ImagingStudy"}
    event = AuditEvent.objects.filter(action="view", patient_study_id=sid).latest("seq")
    assert event.detail["fhir"] == "$everything" and event.detail["deidentified"] is False


def test_researcher_gets_the_deidentified_bundle_only():
    researcher = make_api_user("researcher", "rhea")
    seeded = seed_patient()
    sid = seeded["patient"].study_id
    response = researcher.client.get(_path(sid))
    assert response.status_code == 200
    bundle = response.json()
    Bundle.model_validate(bundle)
    text = json.dumps(bundle)
    for secret in ("Quixotewright", "Philomena", "HN-100", "1950-06-15", "birthDate", "DateTime"):
        assert secret not in text
    assert AuditEvent.objects.filter(
        action="view", patient_study_id=sid, detail__deidentified=True
    ).exists()


def test_unknown_bad_and_anonymous():
    clinician = make_api_user("clinician", "cleo")
    assert clinician.client.get(_path("SW-999999")).status_code == 404
    assert clinician.client.get(_path("bad id!")).status_code in (404, 422)
    from django.test import Client

    assert Client().get(_path("SW-000001")).status_code == 401


def _pain(study_id: str, timepoint: str, date: str, value: float) -> dict:
    from spinewatch.outcomes.fhir import EXT_VISIT, STUDY_ID_SYSTEM

    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
                    "subject": {"identifier": {"system": STUDY_ID_SYSTEM, "value": study_id}},
                    "effectiveDateTime": date,
                    "extension": [{"url": EXT_VISIT, "valueCoding": {"code": timepoint}}],
                    "valueQuantity": {"value": value},
                }
            }
        ],
    }


def test_post_bundle_imports_pain_scores_with_the_follow_up_permission():
    from spinewatch.registry import models as m

    clinician = make_api_user("clinician", "cleo")
    researcher = make_api_user("researcher", "rhea")
    seeded = seed_patient()
    sid = seeded["patient"].study_id
    visit = m.FollowUp.objects.filter(procedure__patient__study_id=sid, timepoint="1m").get()
    date = visit.due_date.isoformat()
    assert (
        researcher.client.post("/api/fhir/Bundle", _pain(sid, "1m", date, 2.5)).status_code == 403
    )
    bad = clinician.client.post("/api/fhir/Bundle", _pain(sid, "1m", date, 12))
    assert (
        bad.status_code == 400
        and "entry 0 (Observation), valueQuantity.value: 12" in bad.json()["detail"]
    )
    visit.refresh_from_db()
    assert visit.vas is None
    ok = clinician.client.post("/api/fhir/Bundle", _pain(sid, "1m", date, 2.5))
    assert ok.status_code == 200 and ok.json()["imported"] == 1
    visit.refresh_from_db()
    assert (visit.vas, visit.completed_on.isoformat(), visit.entered_via) == (2.5, date, "import")
