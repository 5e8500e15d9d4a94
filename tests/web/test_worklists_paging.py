"""Worklists at scale (issue 13): paged in the database, a fixed number of queries per page, small
audit events, visits overdue for years still reachable."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from test_worklists_support import make_user

from spinewatch.accounts.testing import signed_in
from spinewatch.audit.models import AuditEvent
from spinewatch.core.procedures import TreatedLevel
from spinewatch.registry.services import IdentityData
from spinewatch.registry.services.bulk import BulkPatient, BulkProcedure, import_patients
from spinewatch.web.worklists.queries import follow_ups_due

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def _patients(n: int, start: int, performed_on: dt.date) -> None:
    import_patients(
        [
            BulkPatient(
                identity=IdentityData(
                    family_name=f"Pagerton{start + i}",
                    given_name="Fictiva",
                    hospital_number=f"PG-{start + i}",
                ),
                diagnosis=("myeloma", None),
                procedures=[
                    BulkProcedure(
                        performed_on=performed_on,
                        levels=[TreatedLevel("L1", "transpedicular", 11, 4.0)],
                        recorded_via="staff",
                        fields={"operator": "Dr Page"},
                    )
                ],
            )
            for i in range(n)
        ]
    )


@pytest.fixture
def clinician():
    return signed_in(Client(), make_user("clinician", "clin"))


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries.captured_queries)


LIST_URLS = [
    "/worklists/",
    "/worklists/follow-ups/?page_size=10",
    "/worklists/follow-ups/?page_size=10&sort=-visit&q=pagerton",
    "/worklists/scans/?page_size=10",
    "/worklists/high-risk/",
]


def test_pages_cost_the_same_number_of_queries_with_more_rows(clinician):
    _patients(3, 0, TODAY - dt.timedelta(days=200))
    few = {url: _queries(clinician, url) for url in LIST_URLS}
    _patients(30, 100, TODAY - dt.timedelta(days=200))
    many = {url: _queries(clinician, url) for url in LIST_URLS}
    assert many == few  # no query per row (N+1)
    assert max(many.values()) <= 25, many


def test_follow_ups_are_paged_and_the_audit_event_lists_the_page_only(clinician):
    _patients(25, 0, TODAY - dt.timedelta(days=200))  # several visits overdue each
    total = len(follow_ups_due(today=TODAY))
    assert total > 50
    html = clinician.get("/worklists/follow-ups/?page_size=10&page=2").content.decode()
    assert f'class="count">{total}<' in html and f"Page 2 of {-(-total // 10)}" in html
    event = AuditEvent.objects.filter(action="view").last()
    assert event.detail["page_number"] == 2
    assert 1 <= len(event.detail["study_ids"]) <= 10
    index = clinician.get("/worklists/").content.decode()
    assert f"The first 25 of {total}" in index
    event = AuditEvent.objects.filter(action="view").last()
    assert len(event.detail["study_ids"]) <= 25
    # page size bounded, page beyond the end shows the last page, junk refused
    html = clinician.get("/worklists/follow-ups/?page_size=100000&page=99").content.decode()
    assert total < 200 and 'rel="next"' not in html and 'rel="prev"' not in html
    assert html.count('class="button small" href="/worklists/follow-ups/') == total
    assert clinician.get("/worklists/follow-ups/?page=x").status_code == 404


def test_a_visit_overdue_for_years_stays_reachable(clinician):
    _patients(30, 0, TODAY - dt.timedelta(days=60))
    _patients(1, 900, dt.date(2015, 6, 1))  # every visit overdue for years
    html = clinician.get("/worklists/follow-ups/?page_size=5&sort=due").content.decode()
    assert "Pagerton900" in html
    html = clinician.get("/worklists/follow-ups/?page_size=5&q=pagerton900").content.decode()
    assert "Pagerton900" in html and 'class="count">5<' in html  # 3d, 1m, 3m, 6m, 12m
    html = clinician.get("/worklists/follow-ups/?status=overdue&page_size=200").content.decode()
    assert "Pagerton900" in html
