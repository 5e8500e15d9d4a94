"""Passwords (Argon2, validators) and sign-in lock-out by django-axes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.hashers import identify_hasher
from django.db.models import F
from django.urls import reverse

from spinewatch.accounts.errors import AccountError
from spinewatch.accounts.users import create_user, password_problems
from spinewatch.web import _security_settings as security

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"
PASSWORD = "correct horse battery staple 42"  # the make_user fixture's password


def test_argon2_is_the_password_hash(settings):
    settings.PASSWORD_HASHERS = security.PASSWORD_HASHERS
    assert security.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    user = create_user(username="ada", password=PASSWORD, role="clinician")
    assert user.password.startswith("argon2$argon2id$")
    assert identify_hasher(user.password).algorithm == "argon2"
    assert user.check_password(PASSWORD) and not user.check_password(PASSWORD + "x")


def test_password_validators_refuse_short_and_common():
    assert any("at least 12" in p for p in password_problems("Sh0rt!pw"))
    assert any("too common" in p for p in password_problems("password1234"))
    assert password_problems(PASSWORD) == []
    with pytest.raises(AccountError, match="password refused"):
        create_user(username="bob", password="password1234", role="clinician")


def test_existing_username_refused_case_insensitively(make_user):
    make_user("clinician", username="Ada")
    with pytest.raises(AccountError, match="already exists"):
        create_user(username="ada", password=PASSWORD, role="researcher")


def _login(client, username, password, ip="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_login_page_renders_and_signs_in(client, make_user):
    make_user("clinician", username="cara")
    page = client.get(LOGIN)
    assert page.status_code == 200 and b'name="csrfmiddlewaretoken"' in page.content
    response = _login(client, "cara", PASSWORD)
    # a clinician lands where their work is (issue 10), through the role dispatcher
    assert response.status_code == 302 and response["Location"] == reverse("pages:start")
    assert client.get(reverse("pages:start"))["Location"] == "/worklists/"
    assert client.get(reverse("accounts:account")).status_code == 200


def test_lockout_after_limit_and_release_after_window(client, make_user, settings):
    from axes.models import AccessAttempt

    make_user("clinician", username="cara")
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5 and dt.timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    for _ in range(limit - 1):
        response = _login(client, "cara", "wrong password!!")
        assert response.status_code == 200 and b"correct username and password" in response.content
    response = _login(client, "cara", "wrong password!!")
    assert response.status_code == 429 and b"Sign-in paused" in response.content
    # the right password is refused while locked out ...
    response = _login(client, "cara", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # ... but the same username from another address is not locked (lock is per username+IP)
    assert _login(client, "cara", PASSWORD, ip="10.0.0.2").status_code == 302
    client.logout()
    # 15 minutes later the lock has lapsed
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - dt.timedelta(minutes=16))
    assert _login(client, "cara", PASSWORD).status_code == 302


def test_lockout_still_active_before_window_ends(client, make_user):
    from axes.models import AccessAttempt

    make_user("clinician", username="cara")
    for _ in range(5):
        _login(client, "cara", "wrong password!!")
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - dt.timedelta(minutes=14))
    assert _login(client, "cara", PASSWORD).status_code == 429


def test_admin_site_login_is_throttled_too(client, make_user):
    make_user("admin", username="root")
    for _ in range(5):
        client.post("/admin/login/", {"username": "root", "password": "nope nope nope"})
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 429


def test_success_resets_the_failure_count(client, make_user):
    from axes.models import AccessAttempt

    make_user("clinician", username="cara")
    for _ in range(4):
        _login(client, "cara", "wrong password!!")
    assert _login(client, "cara", PASSWORD).status_code == 302
    assert not AccessAttempt.objects.filter(username="cara").exists()


def test_test_client_login_without_request_still_works(client, make_user):
    make_user("clinician", username="cara")
    assert client.login(username="cara", password=PASSWORD)
    assert not client.login(username="cara", password="wrong")


def test_open_redirect_refused_after_login(client, make_user):
    make_user("clinician", username="cara")
    response = client.post(
        LOGIN, {"username": "cara", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and "evil" not in response["Location"]
