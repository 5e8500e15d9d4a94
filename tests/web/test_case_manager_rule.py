"""Issue 12: case managers could create or reassign patients to ANOTHER case manager through the
web forms (the API refused it). One rule now (``may_assign_case_manager``), in both."""

from __future__ import annotations

import pytest
from django.test import Client
from test_pages_support import client_for, make_patient, make_user

from spinewatch.registry import models as rm

pytestmark = pytest.mark.django_db


def _new(hospital_number: str, case_manager) -> dict[str, object]:
    return {
        "family_name": "Rule",
        "given_name": "One",
        "hospital_number": hospital_number,
        "sex": "female",
        "case_manager": case_manager.pk if case_manager is not None else "",
        "diagnosis_kind": "myeloma",
        "diagnosed_on": "2024-01-05",
    }


def _edit(patient, case_manager) -> dict[str, object]:
    ident = patient.identity
    return {
        "family_name": ident.family_name,
        "given_name": ident.given_name,
        "hospital_number": ident.hospital_number,
        "birth_date": ident.birth_date.isoformat() if ident.birth_date else "",
        "sex": ident.sex,
        "case_manager": case_manager.pk if case_manager is not None else "",
        "phone": "",
        "email": "",
        "expected_version": patient.version,
    }


@pytest.fixture
def people(db):
    return {
        "me": make_user("case_manager", "cm_me"),
        "colleague": make_user("case_manager", "cm_colleague"),
        "clinician": make_user("clinician", "dr_rule"),
    }


def test_a_case_manager_cannot_register_a_patient_for_a_colleague(people) -> None:
    client = client_for(Client(), people["me"])
    response = client.post("/patients/new/", _new("HN-RULE-1", people["colleague"]))
    assert response.status_code == 400
    assert "under your own name" in response.content.decode()
    assert not rm.Patient.objects.filter(identity__hospital_number="HN-RULE-1").exists()
    # for themselves, or for nobody: allowed
    assert client.post("/patients/new/", _new("HN-RULE-2", people["me"])).status_code == 302
    assert client.post("/patients/new/", _new("HN-RULE-3", None)).status_code == 302
    mine = rm.Patient.objects.get(identity__hospital_number="HN-RULE-2")
    assert mine.case_manager == people["me"]


def test_a_case_manager_cannot_hand_their_patient_to_a_colleague(people) -> None:
    patient = make_patient(71, case_manager=people["me"])
    client = client_for(Client(), people["me"])
    response = client.post(
        f"/patients/{patient.study_id}/edit/", _edit(patient, people["colleague"])
    )
    assert response.status_code == 400
    patient.refresh_from_db()
    assert patient.case_manager == people["me"]
    # taking an unassigned patient is allowed (own or none, as the API)
    free = make_patient(72)
    ok = client.post(f"/patients/{free.study_id}/edit/", _edit(free, people["me"]))
    assert ok.status_code == 302
    free.refresh_from_db()
    assert free.case_manager == people["me"]


def test_a_clinician_assigns_anyone_on_the_web(people) -> None:
    patient = make_patient(73, case_manager=people["me"])
    client = client_for(Client(), people["clinician"])
    response = client.post(
        f"/patients/{patient.study_id}/edit/", _edit(patient, people["colleague"])
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.case_manager == people["colleague"]


def test_the_api_applies_the_same_rule(people) -> None:
    from _api_support import JsonClient

    from spinewatch.accounts.tokens import create_token

    api = JsonClient(create_token(people["me"], name="t").token)
    patient = make_patient(74, case_manager=people["me"])
    assert api.post("/api/patients", {"case_manager": "cm_colleague"}).status_code == 403
    assert api.post("/api/patients", {"case_manager": "cm_me"}).status_code == 201
    refused = api.patch(
        f"/api/patients/{patient.pk}",
        {"case_manager": "cm_colleague", "expected_version": patient.version},
    )
    assert refused.status_code == 403 and "case manager" in refused.json()["detail"]
