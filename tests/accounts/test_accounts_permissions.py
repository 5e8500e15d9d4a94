"""The permission matrix, per-object rules and the view/API helpers."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory
from django.views import View

from spinewatch.accounts.permissions import (
    Action,
    RequiresMixin,
    api_requires,
    can,
    patient_of,
    require,
    requires,
)

pytestmark = pytest.mark.django_db

# The matrix as the issue and the module docstring state it, written out independently here:
# Y = allowed, O = only own/unassigned patients, - = refused.
EXPECTED = {
    #                        admin clin  cm   res
    "view_identifiable":    ("Y", "Y", "Y", "-"),
    "view_deidentified":    ("Y", "Y", "Y", "Y"),
    "edit_patient":         ("-", "Y", "O", "-"),
    "edit_clinical":        ("-", "Y", "-", "-"),
    "record_follow_up":     ("-", "Y", "O", "-"),
    "manage_portal_links":  ("-", "Y", "O", "-"),
    "export_identifiable":  ("-", "Y", "-", "-"),
    "export_deidentified":  ("Y", "Y", "Y", "Y"),
    "view_audit":           ("Y", "-", "-", "-"),
    "manage_users":         ("Y", "-", "-", "-"),
}  # fmt: skip
ROLES = ("admin", "clinician", "case_manager", "researcher")


def test_expected_table_covers_every_action():
    assert set(EXPECTED) == {a.value for a in Action}


@pytest.fixture
def people(make_user, django_user_model):
    users = {role: make_user(role) for role in ROLES}
    users["other_cm"] = make_user("case_manager")
    return users


@pytest.fixture
def patients(people):
    from spinewatch.registry.models import Patient

    return {
        "own": Patient.objects.create(study_id="SW-T1", case_manager=people["case_manager"]),
        "unassigned": Patient.objects.create(study_id="SW-T2"),
        "colleague": Patient.objects.create(study_id="SW-T3", case_manager=people["other_cm"]),
    }


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("column,role", list(enumerate(ROLES)))
def test_matrix(people, patients, action, column, role):
    user = people[role]
    expected = EXPECTED[action][column]
    # role level (obj=None): "may do it to some patient"
    assert can(user, action) is (expected != "-")
    for which, patient in patients.items():
        allowed = expected == "Y" or (expected == "O" and which in ("own", "unassigned"))
        assert can(user, action, patient) is allowed, (role, action, which)
        if allowed:
            require(user, action, patient)
        else:
            with pytest.raises(PermissionDenied):
                require(user, action, patient)


def test_researcher_never_reaches_identifiable_data(people, patients):
    researcher = people["researcher"]
    for action in (Action.VIEW_IDENTIFIABLE, Action.EXPORT_IDENTIFIABLE):
        assert not can(researcher, action)
        assert not any(can(researcher, action, p) for p in patients.values())


def test_nobody_without_usable_role(people, patients, django_user_model):
    inactive = people["clinician"]
    inactive.is_active = False
    norole = django_user_model.objects.create_user("norole", password="x" * 20)
    for user in (AnonymousUser(), None, inactive, norole):
        for action in Action:
            assert not can(user, action)
            assert not can(user, action, patients["unassigned"])


def test_patient_reached_through_related_objects(people, patients):
    own = patients["own"]
    follow_up = SimpleNamespace(procedure=SimpleNamespace(patient=own))
    finding = SimpleNamespace(study=SimpleNamespace(patient=own))
    assert patient_of(follow_up) is own and patient_of(finding) is own
    colleague_fu = SimpleNamespace(procedure=SimpleNamespace(patient=patients["colleague"]))
    cm = people["case_manager"]
    assert can(cm, "record_follow_up", follow_up)
    assert not can(cm, "record_follow_up", colleague_fu)
    with pytest.raises(TypeError, match="'str'"):
        can(cm, "record_follow_up", "SW-T1")


def test_unknown_action_is_an_error(people):
    with pytest.raises(ValueError):
        can(people["admin"], "launch_rockets")


def test_requires_decorator(people):
    rf = RequestFactory()

    @requires(Action.EDIT_CLINICAL)
    def view(request):
        return HttpResponse("ok")

    anonymous = rf.get("/x/")
    anonymous.user = AnonymousUser()
    response = view(anonymous)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    request = rf.get("/x/")
    request.user = people["clinician"]
    assert view(request).status_code == 200
    request.user = people["case_manager"]
    with pytest.raises(PermissionDenied):
        view(request)


def test_requires_decorator_with_object(people, patients):
    rf = RequestFactory()

    @requires(Action.RECORD_FOLLOW_UP, get_object=lambda request, key: patients[key])
    def view(request, key):
        return HttpResponse(request.permission_object.study_id)

    request = rf.post("/x/")
    request.user = people["case_manager"]
    assert view(request, "own").content == b"SW-T1"
    with pytest.raises(PermissionDenied):
        view(request, "colleague")


def test_requires_mixin(people):
    class Page(RequiresMixin, View):
        required_actions = (Action.VIEW_AUDIT,)

        def get(self, request):
            return HttpResponse("audit")

    rf = RequestFactory()
    request = rf.get("/audit/")
    request.user = people["admin"]
    assert Page.as_view()(request).status_code == 200
    request.user = people["clinician"]
    with pytest.raises(PermissionDenied):
        Page.as_view()(request)


def _body(response):
    return json.loads(response.content)


def test_api_requires_token_session_and_refusals(people, patients, client):
    from spinewatch.accounts.tokens import create_token

    rf = RequestFactory()

    @api_requires(Action.VIEW_DEIDENTIFIED)
    def cohort(request):
        return JsonResponse({"user": request.user.get_username(), "via": request.auth_via})

    @api_requires(Action.VIEW_IDENTIFIABLE)
    def identity(request):
        require(request.user, Action.RECORD_FOLLOW_UP, patients["colleague"])
        return JsonResponse({"ok": True})

    token = create_token(people["researcher"]).token
    request = rf.get("/api/cohort", HTTP_AUTHORIZATION=f"Bearer {token}")
    request.user = AnonymousUser()
    response = cohort(request)
    assert response.status_code == 200
    assert _body(response) == {"user": people["researcher"].username, "via": "token"}

    request = rf.get("/api/x", HTTP_AUTHORIZATION=f"Bearer {token}")
    request.user = AnonymousUser()
    assert identity(request).status_code == 403  # researcher: never identifiable

    request = rf.get("/api/x", HTTP_AUTHORIZATION="Bearer swt_not-a-real-token")
    request.user = people["clinician"]  # a session does not rescue a bad token
    response = identity(request)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")

    request = rf.get("/api/x")
    request.user = AnonymousUser()
    assert cohort(request).status_code == 401

    request = rf.get("/api/x")
    request.user = people["case_manager"]  # allowed to view, refused by per-object require
    response = identity(request)
    assert response.status_code == 403 and "record follow up" in _body(response)["error"]

    assert getattr(cohort, "csrf_exempt", False) is True


def test_api_session_post_needs_csrf(people):
    from django.middleware.csrf import get_token

    rf = RequestFactory()

    @api_requires(Action.RECORD_FOLLOW_UP)
    def record(request):
        return JsonResponse({"ok": True}, status=201)

    request = rf.post("/api/fu", data="{}", content_type="application/json")
    request.user = people["clinician"]
    request._dont_enforce_csrf_checks = False
    response = record(request)
    assert response.status_code == 403 and _body(response) == {"error": "CSRF check failed"}

    # the same with a valid CSRF cookie + header passes
    seed = rf.get("/")
    token = get_token(seed)
    cookie = seed.META["CSRF_COOKIE"]
    request = rf.post("/api/fu", data="{}", content_type="application/json", HTTP_X_CSRFTOKEN=token)
    request.COOKIES["csrftoken"] = cookie
    request.user = people["clinician"]
    assert record(request).status_code == 201
