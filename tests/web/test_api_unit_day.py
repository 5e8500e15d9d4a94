"""The unit's day through the JSON API: procedure details, visit outcomes and voiding."""

from __future__ import annotations

import pytest
from _api_support import TODAY, make_api_user, seed_patient

from spinewatch.registry import models as m

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_procedure_details_outcomes_and_void_through_the_api():
    doc = make_api_user("clinician", "cara-ud")
    patient = seed_patient(with_procedure=False, with_study=False)["patient"]
    body = {
        "performed_on": TODAY.isoformat(),
        "procedure_type": "vertebroplasty",
        "guidance": "fluoroscopy",
        "anaesthesia": "local",
        "day_case": True,
        "cement_type": "pmma",
        "fluoroscopy_time_s": 120.5,
        "dose_area_product_gycm2": 14.2,
        "levels": [
            {
                "level": "L1",
                "approach": "transpedicular",
                "needle_gauge": 11,
                "cement_volume_ml": 4.0,
                "access": "unipedicular",
                "biopsy": True,
                "biopsy_result": "pending",
            }
        ],
    }
    made = doc.client.post(f"/api/patients/{patient.pk}/procedures", body)
    assert made.status_code == 201, made.content
    out = made.json()
    assert (out["cement_type"], out["fluoroscopy_time_s"], out["status"]) == (
        "pmma",
        120.5,
        "performed",
    )
    assert out["levels"][0]["access"] == "unipedicular" and out["levels"][0]["biopsy"] is True
    visit = next(fu for fu in out["follow_ups"] if fu["timepoint"] == "1m")
    outcome = doc.client.post(
        f"/api/follow-ups/{visit['id']}/outcome",
        {
            "expected_version": visit["version"],
            "outcome": "withdrew",
            "outcome_on": TODAY.isoformat(),
        },
    )
    assert outcome.status_code == 200, outcome.content
    assert [fu["timepoint"] for fu in outcome.json()] == ["1m", "3m", "6m", "12m"]
    assert {fu["outcome"] for fu in outcome.json()} == {"withdrew"}
    bad = doc.client.post(
        f"/api/procedures/{out['id']}/void", {"expected_version": 99, "reason": "x"}
    )
    assert bad.status_code == 409
    void = doc.client.post(
        f"/api/procedures/{out['id']}/void",
        {"expected_version": out["version"], "reason": "wrong patient"},
    )
    assert void.status_code == 204
    again = doc.client.get(f"/api/procedures/{out['id']}").json()
    assert again["voided"] is True and again["void_reason"] == "wrong patient"
    assert doc.client.post(
        f"/api/widgets/{out['id']}/void", {"expected_version": 1, "reason": "x"}
    ).status_code in (404, 422)
    researcher = make_api_user("researcher", "rhea-ud")
    assert (
        researcher.client.post(
            f"/api/patients/{patient.pk}/void", {"expected_version": 1, "reason": "x"}
        ).status_code
        == 403
    )
    assert m.Patient.objects.get(pk=patient.pk).voided_at is None
