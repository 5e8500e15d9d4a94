"""Issue 12, "accounts and audit": each finding of the probe as a test.

- TOTP guesses were unlimited once the password was known (the failure count lived in the
  session and a good password reset the lock-out);
- an admin could tick "superuser" on their own user in the Django admin, unaudited;
- account, role, token and second-factor changes were not audited;
- admin bearer tokens skipped the second factor.
"""

from __future__ import annotations

import time

import pyotp
import pytest
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse

from spinewatch.accounts import totp
from spinewatch.accounts.errors import TokenError
from spinewatch.accounts.models import ApiToken, TotpDevice
from spinewatch.accounts.testing import signed_in
from spinewatch.accounts.tokens import authenticate_bearer, create_token, revoke_token
from spinewatch.accounts.users import set_active, set_password
from spinewatch.audit.models import AuditEvent
from spinewatch.cli import main

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple 42"  # the make_user fixture's password


def _enrolled(make_user, role: str = "admin", username: str = "root"):
    user = make_user(role, username=username)
    device = totp.start_enrolment(user)
    earlier = time.time() - 30
    assert totp.confirm(device, pyotp.TOTP(device.secret).at(earlier), for_time=earlier)
    return user, device


def _bad_code(device) -> str:
    good = {pyotp.TOTP(device.secret).at(time.time() + d) for d in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in good)


def _events(action: str, username: str) -> list[AuditEvent]:
    return [e for e in AuditEvent.objects.filter(action=action) if e.detail.get("user") == username]


# ------------------------------------------------------------------------- TOTP guessing


def test_wrong_codes_are_counted_per_user_across_sign_ins_and_lock_the_second_factor(
    client, make_user, settings
):
    settings.TOTP_MAX_FAILURES = 5
    user, device = _enrolled(make_user)
    bad = _bad_code(device)
    # the attacker knows the password: 3 guesses, sign in again (the old loophole), 2 more
    for guesses in (3, 2):
        client.logout()
        response = client.post("/accounts/login/", {"username": "root", "password": PASSWORD})
        assert response["Location"].startswith(reverse("accounts:totp_verify"))
        for _ in range(guesses):
            last = client.post(reverse("accounts:totp_verify"), {"code": bad})
    assert last.status_code == 302 and last["Location"] == reverse("accounts:login")
    assert "_auth_user_id" not in client.session
    device.refresh_from_db()
    assert device.locked_until is not None
    assert len(_events("locked_out", "root")) == 1
    # while locked, even the right code is refused, after a fresh password sign-in
    client.post("/accounts/login/", {"username": "root", "password": PASSWORD})
    right = client.post(reverse("accounts:totp_verify"), {"code": pyotp.TOTP(device.secret).now()})
    assert right.status_code == 302 and right["Location"] == reverse("accounts:login")
    assert client.get("/admin/").status_code == 302
    assert not totp.verify(user, pyotp.TOTP(device.secret).now())


def test_an_admin_unlocks_and_a_right_code_resets_the_count(client, make_user, capsys):
    user, device = _enrolled(make_user)
    for _ in range(5):
        totp.register_failure(user)
    assert totp.locked_until(user) is not None
    assert main(["user", "unlock", "root"]) == 0
    assert "second factor unlocked" in capsys.readouterr().out
    assert totp.locked_until(user) is None
    totp.register_failure(user)
    assert TotpDevice.objects.get(pk=device.pk).failed_attempts == 1
    assert totp.verify(user, pyotp.TOTP(device.secret).now())
    assert TotpDevice.objects.get(pk=device.pk).failed_attempts == 0
    unlock_events = [e for e in _events("update", "root") if e.detail.get("second_factor_unlocked")]
    assert unlock_events and unlock_events[-1].via == "cli"


# --------------------------------------------------------------- the Django admin's user form


def test_no_superuser_flag_or_user_form_in_the_django_admin(client, make_user):
    admin = make_user("admin", username="boss")
    signed_in(client, admin)
    assert client.get("/admin/").status_code == 200
    for path in ("/admin/auth/user/", f"/admin/auth/user/{admin.pk}/change/", "/admin/auth/group/"):
        assert client.get(path).status_code == 404, path
    response = client.post(
        f"/admin/auth/user/{admin.pk}/change/",
        {"username": "boss", "is_superuser": "on", "is_staff": "on", "is_active": "on"},
    )
    assert response.status_code == 404
    admin.refresh_from_db()
    assert not admin.is_superuser
    perms = Group.objects.get(name="admin").permissions.values_list("codename", flat=True)
    assert not {"change_user", "add_user", "delete_user", "change_group"} & set(perms)


def test_a_superuser_flag_set_around_the_services_is_still_audited(make_user):
    user = make_user("clinician", username="sneaky")
    user.is_superuser = True
    user.save()
    event = _events("update", "sneaky")[-1]
    assert event.changes["is_superuser"] == [False, True]
    researcher = Group.objects.get(name="researcher")
    user.groups.remove(Group.objects.get(name="clinician"))
    user.groups.add(researcher)
    details = [e.detail for e in _events("role_change", "sneaky")]
    assert {"user": "sneaky", "remove": ["clinician"]} in details
    assert {"user": "sneaky", "add": ["researcher"]} in details


# --------------------------------------------------------------------------- every change


def test_every_account_role_token_and_second_factor_change_is_audited(make_user):
    from spinewatch.accounts.roles import set_role

    user = make_user("clinician", username="cara")
    assert _events("create", "cara")[0].changes["username"] == "cara"
    set_role(user, "researcher")
    assert _events("role_change", "cara")[-1].changes["role"] == ["clinician", "researcher"]
    set_active(user, False)
    assert _events("update", "cara")[-1].changes == {"is_active": [True, False]}
    set_active(user, True)
    set_password(user, "another long passphrase 9")
    assert len(_events("password_change", "cara")) == 1
    assert "another" not in str(_events("password_change", "cara")[0].document())
    new = create_token(user, name="laptop")
    created = _events("token_create", "cara")[-1]
    assert created.detail["prefix"] == new.record.prefix and new.token not in str(created.detail)
    revoke_token(new.record.pk)
    assert _events("token_revoke", "cara")[-1].detail["token_id"] == new.record.pk
    device = totp.start_enrolment(user)
    assert totp.confirm(device, pyotp.TOTP(device.secret).now())
    assert len(_events("two_factor_enable", "cara")) == 1
    totp.reset_device(user)
    assert _events("two_factor_disable", "cara")[-1].detail["was_confirmed"] is True
    # exactly one event per change: the backstop signals stayed quiet inside the services
    assert len(_events("create", "cara")) == 1 and len(_events("role_change", "cara")) == 2


# ----------------------------------------------------------------- tokens and the 2nd factor


def test_an_admin_token_needs_a_code_of_the_admins_authenticator(make_user):
    admin, device = _enrolled(make_user)
    with pytest.raises(TokenError, match="second factor"):
        create_token(admin, name="script")
    with pytest.raises(TokenError, match="not valid"):
        create_token(admin, name="script", totp_code=_bad_code(device))
    new = create_token(admin, name="script", totp_code=pyotp.TOTP(device.secret).now())
    assert new.record.second_factor_at is not None
    request = RequestFactory().get("/api/", HTTP_AUTHORIZATION=f"Bearer {new.token}")
    assert authenticate_bearer(request) == admin
    unenrolled = make_user("admin", username="fresh")
    with pytest.raises(TokenError, match="no authenticator"):
        create_token(unenrolled, name="x", totp_code="123456")


def test_an_admin_token_made_before_the_rule_is_refused(make_user):
    admin, _ = _enrolled(make_user)
    clinician = make_user("clinician", username="clin")
    old_admin = create_token(clinician, name="x")  # made without a code ...
    ApiToken.objects.filter(pk=old_admin.record.pk).update(user=admin)  # ... now an admin's
    request = RequestFactory().get("/api/", HTTP_AUTHORIZATION=f"Bearer {old_admin.token}")
    assert authenticate_bearer(request) is None
    clinicians = create_token(clinician, name="y")
    request = RequestFactory().get("/api/", HTTP_AUTHORIZATION=f"Bearer {clinicians.token}")
    assert authenticate_bearer(request) == clinician  # no second factor needed: none asked


def test_token_create_on_the_command_line_asks_for_the_code(make_user, capsys):
    _, device = _enrolled(make_user)
    assert main(["token", "create", "root"]) == 2
    assert "second factor" in capsys.readouterr().err
    code = pyotp.TOTP(device.secret).now()
    assert main(["token", "create", "root", "--totp-code", code]) == 0
    assert capsys.readouterr().out.startswith("swt_")
    assert _events("token_create", "root")[-1].via == "cli"
