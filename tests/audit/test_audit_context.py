"""The acting context: acting_as for commands, the middleware for requests."""

from __future__ import annotations

import contextvars
import threading

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory

from spinewatch.audit.context import (
    ANONYMOUS,
    Actor,
    acting_as,
    current_actor,
    current_context,
    parse_ip,
    parse_via,
    resolve_actor,
)
from spinewatch.audit.errors import AuditError
from spinewatch.audit.middleware import AuditContextMiddleware, via_for_path
from spinewatch.audit.models import AuditEvent
from spinewatch.audit.trail import record


def test_acting_as_a_bare_name_needs_no_database():
    """A name without an account (checked in the database) stays a bare name."""
    assert current_context() is None
    actor = Actor(None, "batch-worker", "system")
    with acting_as(actor, via="import") as context:
        assert context.via == "import" and current_actor() == actor
        with acting_as(None, via="system"):
            assert current_actor() == ANONYMOUS
        assert current_actor() == actor
    assert current_context() is None and current_actor() == ANONYMOUS


def test_context_is_restored_after_an_error():
    with pytest.raises(RuntimeError), acting_as(Actor(1, "a"), via="cli"):
        raise RuntimeError
    assert current_context() is None


def test_a_new_thread_starts_without_the_context_unless_copied():
    seen = {}
    with acting_as(Actor(1, "alice"), via="cli"):
        plain = threading.Thread(target=lambda: seen.update(plain=current_actor()))
        plain.start()
        plain.join()
        ctx = contextvars.copy_context()
        copied = threading.Thread(target=lambda: seen.update(copied=ctx.run(current_actor)))
        copied.start()
        copied.join()
    assert seen == {"plain": ANONYMOUS, "copied": Actor(1, "alice")}


def test_parsers_refuse_bad_values():
    assert parse_via("api") == "api"
    assert parse_ip(" 192.168.0.1 ") == "192.168.0.1"
    assert parse_ip("2001:DB8:0:0::1") == "2001:db8::1"
    assert parse_ip("") is None
    with pytest.raises(AuditError, match="via 'email'"):
        parse_via("email")
    with pytest.raises(AuditError, match="ip 'localhost'"):
        parse_ip("localhost")
    with pytest.raises(AuditError, match=r"actor 3\.5"):
        resolve_actor(3.5)
    with pytest.raises(AuditError, match="actor '  ': expected a username"):
        resolve_actor("  ")


@pytest.mark.django_db
def test_resolve_actor_finds_accounts_and_roles(clinician):
    assert resolve_actor(clinician) == Actor(clinician.pk, "dr_house", "clinician")
    assert resolve_actor("dr_house") == Actor(clinician.pk, "dr_house", "clinician")
    assert resolve_actor("nobody") == Actor(None, "nobody", "")
    assert resolve_actor(AnonymousUser()) == ANONYMOUS
    assert resolve_actor(clinician, role="admin").role == "admin"
    boss = get_user_model().objects.create_superuser(username="root", password="x" * 16)
    # recorded as the role the permission checks use: a superuser without a role group is admin
    assert resolve_actor(boss).role == "admin"


def _view(request):
    event = record(actor=None, action="view", object_type="registry.patient", object_id=5)
    return HttpResponse(str(event.seq))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "via"),
    [("/patients/5/", "web"), ("/api/patients/5", "api"), ("/portal/abc", "portal")],
)
def test_middleware_sets_actor_channel_and_address(clinician, path, via):
    request = RequestFactory().get(path, REMOTE_ADDR="203.0.113.9")
    request.user = clinician
    response = AuditContextMiddleware(_view)(request)
    event = AuditEvent.objects.get(seq=int(response.content))
    assert (event.actor_id, event.actor_username, event.actor_role) == (
        clinician.pk,
        "dr_house",
        "clinician",
    )
    assert (event.via, event.ip) == (via, "203.0.113.9")
    assert current_context() is None


@pytest.mark.django_db
def test_middleware_sees_a_log_in_during_the_request(clinician):
    def log_in_then_record(request):
        before = record(actor=None, action="view", object_type="", object_id=None)
        request.user = clinician  # what django.contrib.auth.login() does
        after = record(actor=None, action="login", object_type="auth.user", object_id=clinician.pk)
        return HttpResponse(f"{before.seq},{after.seq}")

    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR="not an address")
    request.user = AnonymousUser()
    response = AuditContextMiddleware(log_in_then_record)(request)
    before, after = (AuditEvent.objects.get(seq=int(s)) for s in response.content.split(b","))
    assert (before.actor_id, before.actor_username, before.ip) == (None, "", None)
    assert (after.actor_id, after.actor_username, after.via) == (clinician.pk, "dr_house", "web")


def test_via_prefixes_are_configurable(settings):
    settings.SPINEWATCH_AUDIT_VIA_PREFIXES = {"/api/": "api", "/api/portal/": "portal"}
    assert via_for_path("/api/portal/x") == "portal"  # the longest prefix wins
    assert via_for_path("/api/x") == "api"
    assert via_for_path("/portal/x") == "web"
    settings.SPINEWATCH_AUDIT_VIA_PREFIXES = {"/x/": "carrier-pigeon"}
    with pytest.raises(AuditError, match="carrier-pigeon"):
        via_for_path("/x/1")
