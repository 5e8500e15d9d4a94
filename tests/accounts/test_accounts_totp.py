"""TOTP: enrolment, verification against an independent RFC 6238 code, replay, the 2FA flow."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from django.urls import reverse

from spinewatch.accounts import totp
from spinewatch.accounts.errors import TotpError
from spinewatch.accounts.models import TotpDevice

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple 42"  # the make_user fixture's password
T0 = 1_700_000_010.0  # a fixed instant, 0 s into its 30 s step


def test_reference_implementation_matches_rfc6238_vector(totp_code):
    # RFC 6238 appendix B: SHA-1 secret "12345678901234567890", T=59 s -> 94287082 (8 digits)
    import base64

    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp_code(secret, 59, digits=8) == "94287082"
    assert totp_code(secret, 1111111109, digits=8) == "07081804"


def test_enrolment_uri_secret_and_qr(make_user):
    user = make_user("clinician", username="cara")
    device = totp.start_enrolment(user)
    assert not device.confirmed and len(device.secret) == 32  # 160 bits
    uri = totp.provisioning_uri(device)
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert parsed.path == "/SpineWatch:cara"
    query = parse_qs(parsed.query)
    assert query["secret"] == [device.secret] and query["issuer"] == ["SpineWatch"]
    svg = totp.qr_svg(uri)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and "style" not in svg  # inline styles would break the CSP
    # a second enrolment replaces a pending secret
    assert totp.start_enrolment(user).secret != device.secret


def test_confirm_and_verify_with_independent_codes(make_user, totp_code):
    user = make_user("clinician")
    device = totp.start_enrolment(user)
    assert not totp.verify(user, totp_code(device.secret, T0), for_time=T0)  # not confirmed yet
    assert not totp.confirm(
        device, "000000" if totp_code(device.secret, T0) != "000000" else "111111", for_time=T0
    )
    assert totp.confirm(device, totp_code(device.secret, T0), for_time=T0)
    assert device.confirmed and device.confirmed_at is not None
    # the next step's code is accepted once ...
    code = totp_code(device.secret, T0 + 30)
    assert totp.verify(user, code, for_time=T0 + 30)
    # ... and never again (replay), nor any older code
    assert not totp.verify(user, code, for_time=T0 + 30)
    assert not totp.verify(user, totp_code(device.secret, T0), for_time=T0 + 30)
    with pytest.raises(TotpError, match="already has a confirmed"):
        totp.start_enrolment(user)


def test_clock_drift_window_is_one_step(make_user, totp_code):
    user = make_user("clinician")
    device = totp.start_enrolment(user)
    assert totp.confirm(device, totp_code(device.secret, T0), for_time=T0)
    now = T0 + 300
    assert not totp.verify(user, totp_code(device.secret, now - 60), for_time=now)  # 2 steps old
    assert not totp.verify(user, totp_code(device.secret, now + 60), for_time=now)  # 2 ahead
    assert totp.verify(user, totp_code(device.secret, now - 30), for_time=now)  # 1 step old
    assert totp.verify(user, totp_code(device.secret, now + 30), for_time=now)  # 1 ahead
    assert not totp.verify(user, "12345", for_time=now) and not totp.verify(
        user, "abcdef", for_time=now
    )


def test_codes_from_pyotp_and_spaces_accepted(make_user):
    user = make_user("clinician")
    device = totp.start_enrolment(user)
    code = pyotp.TOTP(device.secret).at(T0)
    assert totp.confirm(device, f"{code[:3]} {code[3:]}", for_time=T0)


def test_requires_second_factor(make_user, totp_code):
    admin, clinician = make_user("admin"), make_user("clinician")
    assert totp.requires_second_factor(admin)
    assert not totp.requires_second_factor(clinician)
    device = totp.start_enrolment(clinician)
    assert not totp.requires_second_factor(clinician)  # pending device: still optional
    totp.confirm(device, totp_code(device.secret, time.time()))
    assert totp.requires_second_factor(clinician)  # enrolled: now always asked


def _enrolled_admin(make_user, totp_code):
    admin = make_user("admin", username="root")
    device = totp.start_enrolment(admin)
    earlier = time.time() - 30  # confirmed one step ago, so the current code is still fresh
    assert totp.confirm(device, totp_code(device.secret, earlier), for_time=earlier)
    return admin, device


def test_admin_without_device_is_sent_to_enrolment_then_gets_in(client, make_user, totp_code):
    make_user("admin", username="root")
    response = client.post("/accounts/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:totp_enrol"))
    # any page is refused until the second factor is done
    blocked = client.get("/admin/")
    assert blocked.status_code == 302 and blocked["Location"].startswith(
        reverse("accounts:totp_enrol")
    )
    api = client.get("/api/anything", HTTP_ACCEPT="application/json")
    assert api.status_code == 403 and api.json() == {"error": "two-factor verification required"}
    page = client.get(reverse("accounts:totp_enrol"), {"next": "/admin/"})
    assert page.status_code == 200 and b"<svg" in page.content
    device = TotpDevice.objects.get(user__username="root")
    assert device.secret[:4].encode() in page.content  # the typed key is shown for manual entry
    done = client.post(
        reverse("accounts:totp_enrol"),
        {"code": totp_code(device.secret, time.time()), "next": "/admin/"},
    )
    assert done.status_code == 302 and done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_admin_with_device_must_verify_each_sign_in(client, make_user, totp_code):
    _, device = _enrolled_admin(make_user, totp_code)
    response = client.post("/accounts/login/", {"username": "root", "password": PASSWORD})
    assert response["Location"].startswith(reverse("accounts:totp_verify"))
    # the enrolment page cannot be used to replace the device with only a password
    sneaky = client.get(reverse("accounts:totp_enrol"))
    assert sneaky.status_code == 302 and sneaky["Location"].startswith(
        reverse("accounts:totp_verify")
    )
    wrong = client.post(
        reverse("accounts:totp_verify"),
        {"code": "000000" if totp_code(device.secret, time.time()) != "000000" else "111111"},
    )
    assert wrong.status_code == 200 and b"not valid" in wrong.content
    code = totp_code(device.secret, time.time())
    ok = client.post(reverse("accounts:totp_verify"), {"code": code, "next": "/admin/"})
    assert ok.status_code == 302 and ok["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    # a new sign-in (fresh session) must verify again, and the same code is now refused
    client.logout()
    client.post("/accounts/login/", {"username": "root", "password": PASSWORD})
    replay = client.post(reverse("accounts:totp_verify"), {"code": code})
    assert replay.status_code == 200 and b"already used" in replay.content
    assert client.get("/admin/").status_code == 302


def test_too_many_wrong_codes_log_the_session_out(client, make_user, totp_code, settings):
    _, device = _enrolled_admin(make_user, totp_code)
    client.post("/accounts/login/", {"username": "root", "password": PASSWORD})
    good = {totp_code(device.secret, time.time() + d) for d in (-30, 0, 30)}
    bad = next(c for c in ("000000", "111111", "222222", "333333") if c not in good)
    for _ in range(settings.TOTP_MAX_FAILURES - 1):
        assert client.post(reverse("accounts:totp_verify"), {"code": bad}).status_code == 200
    last = client.post(reverse("accounts:totp_verify"), {"code": bad})
    assert last.status_code == 302 and last["Location"] == reverse("accounts:login")
    assert "_auth_user_id" not in client.session


def test_clinician_without_device_is_not_asked(client, make_user):
    make_user("clinician", username="cara")
    response = client.post("/accounts/login/", {"username": "cara", "password": PASSWORD})
    assert response["Location"] == reverse("pages:start")
    assert client.get(reverse("accounts:account")).status_code == 200


def test_testing_helper_marks_the_session_verified(client, make_user):
    from spinewatch.accounts.testing import signed_in

    admin = make_user("admin")
    signed_in(client, admin)
    assert client.get("/admin/").status_code == 200
    client.logout()
    signed_in(client, admin, second_factor=False)
    assert client.get("/admin/").status_code == 302


def test_reset_device(make_user, totp_code):
    admin, _ = _enrolled_admin(make_user, totp_code)
    assert totp.reset_device(admin) and not totp.reset_device(admin)
    assert totp.confirmed_device(admin) is None
