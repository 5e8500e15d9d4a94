"""The admin's user page and audit-trail viewer (issue 10 items that belong with issue 12).

Role changes happen on the user page only (the Django admin has no user form); every change is
audited as the admin, via the web; an admin could not read the audit trail before (403).
"""

from __future__ import annotations

import datetime as dt
import re
import time

import pyotp
import pytest
from django.test import Client
from test_pages_support import client_for, make_patient, make_user

from spinewatch.accounts import totp
from spinewatch.accounts.models import ApiToken
from spinewatch.accounts.roles import Role, role_of
from spinewatch.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return {
        "boss": make_user("admin", "boss"),
        "deputy": make_user("admin", "deputy"),
        "cara": make_user("clinician", "cara"),
        "mona": make_user("case_manager", "mona"),
    }


@pytest.fixture
def admin(people) -> Client:
    return client_for(Client(), people["boss"])


def _post(client: Client, user, **data):
    return client.post(f"/accounts/users/{user.pk}/", data)


def _last(action: str, username: str) -> AuditEvent:
    events = [
        e for e in AuditEvent.objects.filter(action=action) if e.detail.get("user") == username
    ]
    return events[-1]


def test_the_user_list_shows_role_second_factor_and_tokens(admin, people) -> None:
    from spinewatch.accounts.tokens import create_token

    create_token(people["cara"], name="scripts")
    html = admin.get("/accounts/users/").content.decode()
    for name in ("boss", "deputy", "cara", "mona"):
        assert f">{name}</a>" in html
    row = html[html.index(">cara</a>") :]
    row = row[: row.index("</tr>")]
    assert (
        "clinician" in row
        and "not set up" in row
        and '<td data-label="API tokens" class="num">1' in row
    )
    boss = html[html.index(">boss</a>") :]
    assert "required, not set up" in boss[: boss.index("</tr>")]
    assert AuditEvent.objects.filter(action="view", object_type="auth.user").exists()


@pytest.mark.parametrize("role", ["clinician", "case_manager", "researcher"])
def test_only_admins_reach_the_user_pages_and_the_audit_trail(people, role) -> None:
    client = client_for(Client(), make_user(role, f"{role}_x"))
    for path in ("/accounts/users/", f"/accounts/users/{people['cara'].pk}/", "/audit/"):
        assert client.get(path).status_code == 403, path
    response = client.post(
        f"/accounts/users/{people['cara'].pk}/", {"action": "role", "role": "admin"}
    )
    assert response.status_code == 403
    assert role_of(people["cara"]) is Role.CLINICIAN


def test_a_role_is_changed_on_the_user_page_and_audited(admin, people) -> None:
    response = _post(admin, people["cara"], action="role", role="researcher")
    assert response.status_code == 302
    assert role_of(people["cara"]) is Role.RESEARCHER
    event = _last("role_change", "cara")
    assert event.changes["role"] == ["clinician", "researcher"]
    assert (event.actor_username, event.via) == ("boss", "web")


def test_no_self_promotion_demotion_or_lock_out(admin, people) -> None:
    assert _post(admin, people["boss"], action="role", role="clinician").status_code == 400
    assert _post(admin, people["boss"], action="deactivate").status_code == 400
    people["boss"].refresh_from_db()
    assert people["boss"].is_active and role_of(people["boss"]) is Role.ADMIN
    # the last active admin cannot be demoted by another
    assert _post(admin, people["deputy"], action="role", role="clinician").status_code == 302
    deputy = client_for(Client(), make_user("admin", "temp_admin"))
    assert _post(deputy, people["boss"], action="deactivate").status_code == 302
    refused = _post(admin, people["boss"], action="role", role="clinician")
    assert refused.status_code in (302, 400)  # boss is inactive now: his session is gone
    last = client_for(Client(), people["deputy"])  # deputy is a clinician now: 403
    assert _post(last, people["boss"], action="activate").status_code == 403


def test_activation_password_unlock_and_second_factor_reset_are_audited(admin, people) -> None:
    cara = people["cara"]
    assert _post(admin, cara, action="deactivate").status_code == 302
    cara.refresh_from_db()
    assert not cara.is_active and _last("update", "cara").changes == {"is_active": [True, False]}
    assert _post(admin, cara, action="activate").status_code == 302
    weak = _post(admin, cara, action="password", password="short", password_again="short")
    assert weak.status_code == 400
    good = "a brand new passphrase 11"
    assert (
        _post(admin, cara, action="password", password=good, password_again=good).status_code == 302
    )
    cara.refresh_from_db()
    assert cara.check_password(good) and _last("password_change", "cara").actor_username == "boss"
    device = totp.start_enrolment(cara)
    assert totp.confirm(device, pyotp.TOTP(device.secret).now())
    for _ in range(5):
        totp.register_failure(cara)
    assert totp.locked_until(cara) is not None
    assert _post(admin, cara, action="unlock").status_code == 302
    assert totp.locked_until(cara) is None
    assert _post(admin, cara, action="reset_2fa").status_code == 302
    assert totp.confirmed_device(cara) is None
    assert _last("two_factor_disable", "cara").actor_username == "boss"


def test_tokens_are_shown_once_revoked_and_an_admins_needs_a_code(admin, people) -> None:
    page = _post(admin, people["cara"], action="token", name="lab pc", days=30)
    assert page.status_code == 200
    token = re.search(r'id="new-token">(swt_[A-Za-z0-9_-]+)<', page.content.decode()).group(1)
    record = ApiToken.objects.get(user=people["cara"])
    assert record.prefix == token[:8]
    assert token not in admin.get(f"/accounts/users/{people['cara'].pk}/").content.decode()
    assert _post(admin, people["cara"], action="revoke", token=record.pk).status_code == 302
    record.refresh_from_db()
    assert record.revoked_at is not None
    # a token for an admin needs that admin's authenticator code
    deputy = people["deputy"]
    refused = _post(admin, deputy, action="token", name="x", days=5)
    assert refused.status_code == 400 and not ApiToken.objects.filter(user=deputy).exists()
    device = totp.start_enrolment(deputy)
    earlier = time.time() - 30
    assert totp.confirm(device, pyotp.TOTP(device.secret).at(earlier), for_time=earlier)
    ok = _post(
        admin, deputy, action="token", name="x", days=5, code=pyotp.TOTP(device.secret).now()
    )
    assert ok.status_code == 200 and ApiToken.objects.get(user=deputy).second_factor_at


def test_new_user_page_creates_one_role(admin) -> None:
    good = "another fine passphrase 3"
    response = admin.post(
        "/accounts/users/new/",
        {"username": "newbie", "email": "", "role": "researcher", "password": good,
         "password_again": good},
    )  # fmt: skip
    assert response.status_code == 302
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="newbie")
    assert role_of(user) is Role.RESEARCHER and not user.is_superuser
    assert _last("create", "newbie").actor_username == "boss"


def test_the_audit_trail_page_filters_and_records_its_viewing(admin, people) -> None:
    from spinewatch.audit.context import acting_as
    from spinewatch.registry import services

    with acting_as(people["cara"], via="web"):
        patient = make_patient(81)
        services.update_patient(patient=patient, expected_version=patient.version,
                                case_manager=people["mona"])  # fmt: skip
    assert admin.get("/admin/audit/auditevent/").status_code == 200  # was 403
    html = admin.get("/audit/").content.decode()
    assert "Audit trail" in html and patient.study_id in html
    by_patient = admin.get("/audit/", {"patient": patient.study_id, "action": "update"})
    assert by_patient.status_code == 200
    rows = by_patient.content.decode().count('<td class="num" data-label="#">')
    assert (
        rows
        == AuditEvent.objects.filter(patient_study_id=patient.study_id, action="update").count()
        >= 1
    )
    by_actor = admin.get("/audit/", {"actor": "cara", "object": "registry.patient"})
    assert "cara" in by_actor.content.decode()
    today = dt.datetime.now(dt.UTC).date()
    empty = admin.get("/audit/", {"date_to": (today - dt.timedelta(days=3)).isoformat()})
    assert "No event matches" in empty.content.decode()
    bad = admin.get("/audit/", {"date_from": "2025-02-02", "date_to": "2025-01-01"})
    assert bad.status_code == 400
    viewing = AuditEvent.objects.filter(action="view", object_type="audit.auditevent").last()
    assert viewing.actor_username == "boss" and viewing.detail["page"] == "audit trail"
    check = admin.post("/audit/verify/")
    assert check.status_code == 200 and "intact" in check.content.decode()
    assert (
        "NOT proven" in check.content.decode() or "proven by the anchor" in check.content.decode()
    )


def test_the_navigation_shows_users_and_audit_to_admins_only(admin, people) -> None:
    html = admin.get("/accounts/").content.decode()
    assert 'href="/accounts/users/"' in html and 'href="/audit/"' in html
    clinician = client_for(Client(), people["cara"])
    html = clinician.get("/accounts/").content.decode()
    assert 'href="/accounts/users/"' not in html and 'href="/audit/"' not in html
