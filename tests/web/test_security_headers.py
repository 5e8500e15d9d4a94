"""Security headers, no-store, cookies, idle timeout, settings from the environment, secret key."""

from __future__ import annotations

import datetime as dt
import importlib
import stat

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory
from django.utils import timezone

from spinewatch.web import _security_settings
from spinewatch.web.security import (
    SecurityHeadersMiddleware,
    ensure_secret_key,
    is_no_store,
    no_store,
)

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clinician(db):
    from spinewatch.accounts.users import create_user

    return create_user(username="cara", password=PASSWORD, role="clinician")


def _csp(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {
        part.split()[0]: " ".join(part.split()[1:]) for part in policy.split(";") if part.strip()
    }


def _assert_security_headers(response):
    csp = _csp(response)
    assert csp["default-src"] == "'self'"
    assert (
        csp["script-src"] == "'self'" and "unsafe-inline" not in response["Content-Security-Policy"]
    )
    assert csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert csp["form-action"] == "'self'" and csp["base-uri"] == "'none'"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_headers_on_the_login_page(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    _assert_security_headers(response)
    assert is_no_store(response)


@pytest.mark.django_db
def test_headers_on_the_admin_login_and_a_404(client):
    _assert_security_headers(client.get("/admin/login/"))
    _assert_security_headers(client.get("/no/such/page/"))


@pytest.mark.django_db
def test_signed_in_pages_are_no_store_and_cookies_are_locked_down(client, clinician, settings):
    csrf_cookie = client.get("/accounts/login/").cookies[settings.CSRF_COOKIE_NAME]
    assert csrf_cookie["httponly"] and csrf_cookie["secure"] and csrf_cookie["samesite"] == "Lax"
    response = client.post("/accounts/login/", {"username": "cara", "password": PASSWORD})
    session_cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session_cookie["httponly"] and session_cookie["samesite"] == "Lax"
    assert session_cookie["secure"]  # not DEBUG
    page = client.get("/accounts/")
    assert page.status_code == 200 and is_no_store(page)
    assert "no-store" in page["Cache-Control"] and "private" in page["Cache-Control"]


@pytest.mark.django_db
def test_idle_timeout(client, clinician, settings):
    from django.contrib.sessions.models import Session

    assert settings.SESSION_COOKIE_AGE == 30 * 60 and settings.SESSION_SAVE_EVERY_REQUEST
    client.post("/accounts/login/", {"username": "cara", "password": PASSWORD})
    key = client.session.session_key
    before = Session.objects.get(session_key=key).expire_date
    assert dt.timedelta(minutes=29) < before - timezone.now() <= dt.timedelta(minutes=30)
    # activity pushes the expiry forward ...
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() + dt.timedelta(minutes=5)
    )
    assert client.get("/accounts/").status_code == 200
    renewed = Session.objects.get(session_key=client.session.session_key).expire_date
    assert renewed - timezone.now() > dt.timedelta(minutes=29)
    # ... and 30 idle minutes end the session
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    response = client.get("/accounts/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def _run(request, response, user=None):
    from django.contrib.auth.models import AnonymousUser

    request.user = user or AnonymousUser()
    return SecurityHeadersMiddleware(lambda r: response)(request)


@pytest.mark.django_db
def test_no_store_rule(clinician):
    rf = RequestFactory()
    # authenticated: every type (CSV export, PNG render) is no-store
    csv = _run(rf.get("/export.csv"), HttpResponse("a,b\n", content_type="text/csv"), clinician)
    assert is_no_store(csv)
    png = _run(rf.get("/scan.png"), HttpResponse(b"\x89PNG", content_type="image/png"), clinician)
    assert is_no_store(png)
    # anonymous: HTML and JSON always (portal), other types left cacheable
    assert is_no_store(_run(rf.get("/portal/x"), HttpResponse("<p>hi</p>")))
    assert is_no_store(_run(rf.get("/api/x"), JsonResponse({"a": 1})))
    plain = _run(rf.get("/robots.txt"), HttpResponse("User-agent: *", content_type="text/plain"))
    assert not is_no_store(plain)
    # a view can insist with @no_store
    view = no_store(lambda request: HttpResponse(b"x", content_type="image/png"))
    request = rf.get("/p.png")
    assert is_no_store(_run(request, view(request)))
    # a view's own 'public, max-age' is overridden for signed-in users
    cached = HttpResponse("<p>x</p>")
    cached["Cache-Control"] = "public, max-age=3600"
    out = _run(rf.get("/x"), cached, clinician)
    assert is_no_store(out) and "public" not in out["Cache-Control"]


@pytest.mark.django_db
def test_token_api_responses_are_no_store(clinician):
    from spinewatch.accounts.permissions import Action, api_requires
    from spinewatch.accounts.tokens import create_token

    token = create_token(clinician).token

    @api_requires(Action.VIEW_DEIDENTIFIED)
    def csv_export(request):
        return HttpResponse("a,b\n", content_type="text/csv")

    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/api/export", HTTP_AUTHORIZATION=f"Bearer {token}")
    request.user = AnonymousUser()
    response = SecurityHeadersMiddleware(csv_export)(request)
    assert response.status_code == 200 and is_no_store(response)


def test_settings_from_environment(monkeypatch):
    try:
        monkeypatch.setenv("SPINEWATCH_SESSION_IDLE_MINUTES", "10")
        monkeypatch.setenv("SPINEWATCH_LOGIN_FAILURE_LIMIT", "3")
        monkeypatch.setenv("SPINEWATCH_LOCKOUT_MINUTES", "60")
        monkeypatch.setenv("SPINEWATCH_DEBUG", "1")
        monkeypatch.setenv("SPINEWATCH_TRUSTED_PROXY_COUNT", "1")
        module = importlib.reload(_security_settings)
        assert module.SESSION_COOKIE_AGE == 600
        assert module.AXES_FAILURE_LIMIT == 3
        assert dt.timedelta(hours=1) == module.AXES_COOLOFF_TIME
        assert module.SESSION_COOKIE_SECURE is False and module.CSRF_COOKIE_SECURE is False
        assert module.AXES_IPWARE_META_PRECEDENCE_ORDER[0] == "HTTP_X_FORWARDED_FOR"
        monkeypatch.setenv("SPINEWATCH_SECURE_COOKIES", "1")
        assert importlib.reload(_security_settings).SESSION_COOKIE_SECURE is True
        for name, bad in [
            ("SPINEWATCH_SESSION_IDLE_MINUTES", "0"),
            ("SPINEWATCH_LOGIN_FAILURE_LIMIT", "five"),
            ("SPINEWATCH_SECURE_COOKIES", "maybe"),
        ]:
            monkeypatch.setenv(name, bad)
            with pytest.raises(ImproperlyConfigured, match=f"{name}='{bad}'"):
                importlib.reload(_security_settings)
            monkeypatch.delenv(name)
    finally:
        for name in (
            "SPINEWATCH_SESSION_IDLE_MINUTES",
            "SPINEWATCH_LOGIN_FAILURE_LIMIT",
            "SPINEWATCH_LOCKOUT_MINUTES",
            "SPINEWATCH_DEBUG",
            "SPINEWATCH_TRUSTED_PROXY_COUNT",
            "SPINEWATCH_SECURE_COOKIES",
        ):
            monkeypatch.delenv(name, raising=False)
        defaults = importlib.reload(_security_settings)
    assert defaults.SESSION_COOKIE_AGE == 1800 and defaults.SESSION_COOKIE_SECURE is True
    assert defaults.AXES_IPWARE_META_PRECEDENCE_ORDER == ("REMOTE_ADDR",)


def test_secret_key_created_once_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("SPINEWATCH_SECRET_KEY", raising=False)
    key = ensure_secret_key(tmp_path / "data")
    path = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 50 and "insecure" not in key
    assert ensure_secret_key(tmp_path / "data") == key
    assert ensure_secret_key(tmp_path / "other") != key
    monkeypatch.setenv("SPINEWATCH_SECRET_KEY", "from-the-environment")
    assert ensure_secret_key(tmp_path / "data") == "from-the-environment"


def test_secret_key_file_problems_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("SPINEWATCH_SECRET_KEY", raising=False)
    path = tmp_path / "secret_key"
    path.write_text("k" * 60)
    path.chmod(0o644)
    with pytest.raises(PermissionError, match="mode 644"):
        ensure_secret_key(tmp_path)
    path.write_text("short")
    path.chmod(0o600)
    with pytest.raises(ValueError, match="5 characters"):
        ensure_secret_key(tmp_path)
