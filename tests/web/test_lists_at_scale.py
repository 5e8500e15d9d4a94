"""Patient list, API lists and search at scale (issue 13): a fixed number of queries per page
(no query per row), search through the normalised, indexed search text."""

from __future__ import annotations

import datetime as dt

import pytest
from _api_support import make_api_user
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from test_worklists_support import make_user

from spinewatch.accounts.testing import signed_in
from spinewatch.core.procedures import TreatedLevel
from spinewatch.registry import models as m
from spinewatch.registry.search import patient_search
from spinewatch.registry.services import IdentityData, update_patient_identity
from spinewatch.registry.services.bulk import BulkPatient, BulkProcedure, import_patients

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _patients(n: int, start: int, family: str = "Listwell") -> None:
    import_patients(
        [
            BulkPatient(
                identity=IdentityData(
                    family_name=f"{family}{start + i}",
                    given_name="Fictiva",
                    hospital_number=f"LS-{start + i}",
                    birth_date=dt.date(1950, 1, 1),
                ),
                diagnosis=("myeloma", None),
                procedures=[
                    BulkProcedure(
                        performed_on=dt.date(2024, 1, 1),
                        levels=[TreatedLevel("L1", "transpedicular", 11, 4.0)],
                        vas={"pre": 7.0},
                        recorded_via="staff",
                        fields={"operator": "Dr List"},
                    )
                ],
            )
            for i in range(n)
        ]
    )


def _count(get, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries.captured_queries)


def test_lists_cost_the_same_number_of_queries_for_a_bigger_page():
    page = signed_in(Client(), make_user("clinician", "clin"))
    api = make_api_user("clinician", "cara").client
    urls = {
        "patient list": (page.get, "/"),
        "patient search": (page.get, "/?q=listwell"),
        "api patients": (api.get, "/api/patients?limit=100"),
        "api search": (api.get, "/api/patients?search=listwell&limit=100"),
        "api de-identified": (api.get, "/api/deidentified/patients?limit=100"),
    }
    _patients(2, 0)
    for get, url in urls.values():  # once-per-session work (token use noted, session) first
        get(url)
    few = {name: _count(get, url) for name, (get, url) in urls.items()}
    _patients(20, 100)
    many = {name: _count(get, url) for name, (get, url) in urls.items()}
    assert many == few  # no query per row (the de-identified list made ~10 per patient)
    assert many["api de-identified"] <= 20, many


def test_search_ignores_accents_and_case_and_follows_identity_changes():
    _patients(1, 0, family="Müller-Åberg")
    patient = m.Patient.objects.get()

    def found(text: str) -> bool:
        return m.Patient.objects.filter(patient_search(text)).exists()

    assert found("muller-aberg0") and found("MÜLLER") and found("ls0") and found("LS-0")
    assert found(patient.study_id.lower()) and found("fictiva muller")
    assert not found("fictiva smith")
    update_patient_identity(patient=patient, expected_version=1, family_name="Zephyrine")
    assert found("zephyr") and not found("muller")


def test_search_text_index_exists_only_on_postgresql():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'registry_%%_trgm'"
            )
            names = {row[0] for row in cursor.fetchall()}
            assert names == {"registry_identity_search_trgm", "registry_patient_study_id_trgm"}
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE name LIKE '%trgm%'")
            assert cursor.fetchall() == []
