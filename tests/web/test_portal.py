"""Patient portal: making a link, answering anonymously, single use, expiry, nothing revealed."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone
from test_worklists_support import IDENTITY_FIELDS, identity, make_user, patient_with_procedure

from spinewatch.accounts.testing import signed_in
from spinewatch.audit.models import AuditEvent
from spinewatch.registry.models import PortalLink
from spinewatch.registry.services import (
    LinkState,
    create_link,
    find_follow_up,
    find_link,
    hash_token,
    record_follow_up,
)

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
TOKEN_URL = re.compile(r"https?://[^\"<\s]+/portal/([A-Za-z0-9_-]{43})/")


@pytest.fixture
def cm():
    return make_user("case_manager", "cm1")


@pytest.fixture
def visit(cm):
    _patient, proc = patient_with_procedure(
        7, performed_on=TODAY - dt.timedelta(days=30), case_manager=cm
    )
    return find_follow_up(procedure=proc, timepoint="1m")


def _make(client, fu):
    response = client.post(f"/portal/links/new/?follow_up={fu.pk}")
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    match = TOKEN_URL.search(html)
    assert match, "the page shows the link"
    assert "<svg" in html  # the QR code
    return match.group(1), html


def _forbidden(fu):
    ident = identity(7)
    patient = fu.procedure.patient
    values = [getattr(ident, f) for f in IDENTITY_FIELDS] + [patient.study_id, "1948"]
    return values


def test_create_link_shows_once_and_stores_hash_only(cm, visit):
    c = signed_in(Client(), cm)
    get = c.get(f"/portal/links/new/?follow_up={visit.pk}")
    assert get.status_code == 200 and PortalLink.objects.count() == 0
    token, _ = _make(c, visit)
    link = PortalLink.objects.get()
    assert link.token_hash == hash_token(token) and token not in link.token_hash
    assert link.created_by == cm and link.used_at is None
    days = (link.expires_at - link.created_at).total_seconds() / 86400
    assert days == pytest.approx(7, abs=1e-3)
    created = AuditEvent.objects.get(action="create", object_type="registry.portallink")
    assert created.patient_study_id == visit.procedure.patient.study_id
    assert created.actor_username == "cm1" and token not in str(created.changes)


def test_create_link_permissions(cm, visit):
    url = f"/portal/links/new/?follow_up={visit.pk}"
    assert Client().post(url).status_code == 302  # log in first
    other = make_user("case_manager", "cm2")
    assert signed_in(Client(), other).post(url).status_code == 403  # not their patient
    assert signed_in(Client(), make_user("researcher", "r")).post(url).status_code == 403
    assert signed_in(Client(), make_user("admin", "a")).post(url).status_code == 403
    assert signed_in(Client(), make_user("clinician", "d")).post(url).status_code == 200
    assert signed_in(Client(), cm).post("/portal/links/new/?follow_up=x").status_code == 404
    assert PortalLink.objects.count() == 1


def test_link_refused_for_completed_visit(cm, visit):
    record_follow_up(follow_up=visit, expected_version=visit.version, completed_on=TODAY, vas=3)
    response = signed_in(Client(), cm).post(f"/portal/links/new/?follow_up={visit.pk}")
    assert (
        response.status_code == 400 and "only for a visit still to do" in response.content.decode()
    )
    assert PortalLink.objects.count() == 0


def test_portal_answer_anonymous_single_use(cm, visit):
    token, _ = _make(signed_in(Client(), cm), visit)
    patient_client = Client()
    page = patient_client.get(f"/portal/{token}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "How much pain do you have today?" in html
    for value in _forbidden(visit):
        assert value not in html, value
    assert "<a " not in html and "<nav" not in html  # no links into the application
    response = patient_client.post(f"/portal/{token}/", {"vas": "6", "analgesic_use": "non_opioid"})
    assert response.status_code == 302 and response["Location"] == "/portal/thanks/"
    thanks = patient_client.get("/portal/thanks/")
    assert thanks.status_code == 200 and "Thank you" in thanks.content.decode()
    visit.refresh_from_db()
    assert (visit.vas, visit.analgesic_use, visit.completed_on) == (6.0, "non_opioid", TODAY)
    assert (visit.entered_via, visit.entered_by) == ("portal", None)
    link = PortalLink.objects.get()
    assert link.used_at is not None
    event = AuditEvent.objects.get(action="update", object_type="registry.followup")
    assert event.via == "portal" and event.actor_username == ""
    # single use: the second visit and a second submission are 410 and reveal nothing
    for resp in (
        patient_client.get(f"/portal/{token}/"),
        patient_client.post(f"/portal/{token}/", {"vas": "1", "analgesic_use": "none"}),
    ):
        assert resp.status_code == 410
        body = resp.content.decode()
        for value in _forbidden(visit):
            assert value not in body
    visit.refresh_from_db()
    assert visit.vas == 6.0


def test_invalid_answer_is_400_with_message(cm, visit):
    token, _ = _make(signed_in(Client(), cm), visit)
    response = Client().post(f"/portal/{token}/", {"vas": "11", "analgesic_use": "none"})
    assert response.status_code == 400
    assert "from 0 to 10" in response.content.decode()
    response = Client().post(f"/portal/{token}/", {"vas": "4"})
    assert response.status_code == 400 and "pain medicine" in response.content.decode()
    assert PortalLink.objects.get().used_at is None
    ok = Client().post(f"/portal/{token}/", {"vas": "4.5", "analgesic_use": "none"})
    assert ok.status_code == 302
    visit.refresh_from_db()
    assert visit.vas == 4.5


def test_expired_unknown_and_closed_links(cm, visit):
    token, _ = _make(signed_in(Client(), cm), visit)
    assert Client().get(f"/portal/{'A' * 43}/").status_code == 404
    assert Client().get("/portal/short/").status_code == 404
    PortalLink.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert find_link(token)[0] is LinkState.EXPIRED
    resp = Client().get(f"/portal/{token}/")
    assert resp.status_code == 410
    assert (
        Client().post(f"/portal/{token}/", {"vas": "3", "analgesic_use": "none"}).status_code == 410
    )
    visit.refresh_from_db()
    assert visit.completed_on is None
    # a visit completed by staff closes its link
    fresh = create_link(follow_up=visit, created_by=cm)
    assert find_link(fresh.token)[0] is LinkState.VALID
    record_follow_up(follow_up=visit, expected_version=visit.version, completed_on=TODAY, vas=2)
    assert Client().get(f"/portal/{fresh.token}/").status_code == 410


def test_new_link_revokes_older_one(cm, visit):
    first = create_link(follow_up=visit, created_by=cm)
    second = create_link(follow_up=visit, created_by=cm)
    assert find_link(first.token)[0] is LinkState.EXPIRED
    assert find_link(second.token)[0] is LinkState.VALID


def test_portal_csrf(cm, visit):
    token = create_link(follow_up=visit, created_by=cm).token
    strict = Client(enforce_csrf_checks=True)
    assert (
        strict.post(f"/portal/{token}/", {"vas": "3", "analgesic_use": "none"}).status_code == 403
    )
    page = strict.get(f"/portal/{token}/")
    data = {"vas": "3", "analgesic_use": "none", "csrfmiddlewaretoken": page.context["csrf_token"]}
    assert strict.post(f"/portal/{token}/", data).status_code == 302
