"""THE one place where SpineWatch decides who may do what -- pages, JSON API and exports alike.

Every view asks :func:`can` / :func:`require` (or uses :func:`requires`, :class:`RequiresMixin`,
:func:`api_requires`); no view compares roles itself.

Permission matrix (``✓`` allowed, ``own`` = per object, see below, ``·`` refused)
=========================  =====  =========  ============  ==========
action                     admin  clinician  case_manager  researcher
=========================  =====  =========  ============  ==========
view_identifiable          ✓      ✓          ✓             ·
view_deidentified          ✓      ✓          ✓             ✓
edit_patient               ·      ✓          own           ·
edit_clinical              ·      ✓          ·             ·
record_follow_up           ·      ✓          own           ·
manage_portal_links        ·      ✓          own           ·
export_identifiable        ·      ✓          ·             ·
export_deidentified        ✓      ✓          ✓             ✓
view_audit                 ✓      ·          ·             ·
manage_users               ✓      ·          ·             ·
=========================  =====  =========  ============  ==========

Meaning of the actions:

- ``view_identifiable``: names, birth dates, hospital numbers, contact details (patient page,
  worklists, portal-link page). Researchers NEVER get it, for any object.
- ``view_deidentified``: study id, age, dates as days from the index procedure (cohort page,
  de-identified patient views).
- ``edit_patient``: create a patient, edit identity/contact details, assign the case manager.
- ``edit_clinical``: diagnoses, procedures, scans and their analysis, finding decisions,
  surveillance plans -- clinical judgement, so clinicians only.
- ``record_follow_up``: enter a follow-up (pain score, analgesic use) for a patient.
- ``manage_portal_links``: create, show (QR) or revoke a patient's portal link.
- ``export_identifiable`` / ``export_deidentified``: CSV/JSON exports (identifiable: clinicians
  only, e.g. an MDT list).
- ``view_audit``: read the audit trail (which itself contains identifiable values, hence admins
  also hold ``view_identifiable``: oversight, read-only -- they cannot edit clinical data).
- ``manage_users``: create users, change roles, unlock, reset two-factor, revoke API tokens.

Per-object rule ("own"): a case manager sees the identifiable data of ALL patients (a unit's
case managers cover for each other; worklists merely filter to their own), but the WRITES marked
``own`` are allowed only on patients whose ``case_manager`` is that user or who have no case
manager yet. A clinician reassigns a patient to another case manager: who may put a patient
under which case manager is ONE rule, :func:`may_assign_case_manager` -- ``edit_patient`` on the
patient as it is AND as it will be -- used by the web forms and the API alike (a case manager
may register or keep a patient for themselves or for nobody, never for a colleague).

With ``obj=None``, :func:`can` answers the role-level question ("may this user do this to some
patient?") -- use it to show or hide a menu entry, and call it again WITH the object before
acting on one.

``obj`` may be a patient (anything with ``case_manager_id``) or anything that leads to one through
``.patient``, ``.procedure`` or ``.study`` (procedure, follow-up, scan, finding, diagnosis ...).
Anything else raises :class:`TypeError` for per-object rules: a programming error, loudly.

Nobody may do anything when anonymous, inactive, or without exactly one role.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse

from spinewatch.accounts.roles import Role, role_or_none

__all__ = [
    "MATRIX",
    "Action",
    "RequiresMixin",
    "api_requires",
    "can",
    "json_forbidden",
    "json_unauthorised",
    "may_assign_case_manager",
    "patient_of",
    "require",
    "require_case_manager_assignment",
    "requires",
]

log = logging.getLogger(__name__)

V = TypeVar("V", bound=Callable[..., Any])


class Action(enum.StrEnum):
    """Everything a person can try to do in SpineWatch that needs a permission."""

    VIEW_IDENTIFIABLE = "view_identifiable"
    VIEW_DEIDENTIFIED = "view_deidentified"
    EDIT_PATIENT = "edit_patient"
    EDIT_CLINICAL = "edit_clinical"
    RECORD_FOLLOW_UP = "record_follow_up"
    MANAGE_PORTAL_LINKS = "manage_portal_links"
    EXPORT_IDENTIFIABLE = "export_identifiable"
    EXPORT_DEIDENTIFIED = "export_deidentified"
    VIEW_AUDIT = "view_audit"
    MANAGE_USERS = "manage_users"


class _Grant(enum.Enum):
    ALL = "all"
    OWN = "own"  # case manager's own or unassigned patients


_A, _O = _Grant.ALL, _Grant.OWN

# role -> action -> grant; an action missing from a role's row is refused.
MATRIX: dict[Role, dict[Action, _Grant]] = {
    Role.ADMIN: {
        Action.VIEW_IDENTIFIABLE: _A,
        Action.VIEW_DEIDENTIFIED: _A,
        Action.EXPORT_DEIDENTIFIED: _A,
        Action.VIEW_AUDIT: _A,
        Action.MANAGE_USERS: _A,
    },
    Role.CLINICIAN: {
        Action.VIEW_IDENTIFIABLE: _A,
        Action.VIEW_DEIDENTIFIED: _A,
        Action.EDIT_PATIENT: _A,
        Action.EDIT_CLINICAL: _A,
        Action.RECORD_FOLLOW_UP: _A,
        Action.MANAGE_PORTAL_LINKS: _A,
        Action.EXPORT_IDENTIFIABLE: _A,
        Action.EXPORT_DEIDENTIFIED: _A,
    },
    Role.CASE_MANAGER: {
        Action.VIEW_IDENTIFIABLE: _A,
        Action.VIEW_DEIDENTIFIED: _A,
        Action.EDIT_PATIENT: _O,
        Action.RECORD_FOLLOW_UP: _O,
        Action.MANAGE_PORTAL_LINKS: _O,
        Action.EXPORT_DEIDENTIFIED: _A,
    },
    Role.RESEARCHER: {
        Action.VIEW_DEIDENTIFIED: _A,
        Action.EXPORT_DEIDENTIFIED: _A,
    },
}


def patient_of(obj: Any) -> Any:
    """The patient of ``obj``: ``obj`` itself, or via ``.patient``/``.procedure``/``.study``.

    Raises :class:`TypeError` naming the type when no patient can be reached.
    """
    seen = 0
    current = obj
    while current is not None and seen < 4:
        if hasattr(current, "case_manager_id"):
            return current
        for attribute in ("patient", "procedure", "study"):
            if hasattr(current, attribute):
                current = getattr(current, attribute)
                break
        else:
            break
        seen += 1
    raise TypeError(
        f"cannot find the patient of {type(obj).__name__!r}: expected a patient or an object with "
        "a .patient, .procedure or .study leading to one"
    )


def can(user: Any, action: Action | str, obj: Any = None) -> bool:
    """May ``user`` do ``action`` (to ``obj`` when given)?  See the module docstring's matrix."""
    action = Action(action)
    role = role_or_none(user)
    if role is None:
        return False
    grant = MATRIX[role].get(action)
    if grant is None:
        return False
    if grant is _Grant.ALL or obj is None:
        return True
    patient = patient_of(obj)
    manager_id = patient.case_manager_id
    return manager_id is None or manager_id == user.pk


def require(user: Any, action: Action | str, obj: Any = None) -> None:
    """Raise :class:`~django.core.exceptions.PermissionDenied` unless :func:`can` allows it."""
    if not can(user, action, obj):
        name = user.get_username() if getattr(user, "is_authenticated", False) else "anonymous"
        what = f" on {type(obj).__name__} {obj}" if obj is not None else ""
        log.info("permission denied: %s may not %s%s", name, Action(action).value, what)
        raise PermissionDenied(f"you may not {Action(action).value.replace('_', ' ')}{what}")


@dataclass(frozen=True)
class _PatientToBe:
    """The patient as an assignment would leave it (only its case manager matters here)."""

    case_manager_id: int | None


def may_assign_case_manager(user: Any, manager: Any, patient: Any = None) -> bool:
    """May ``user`` make ``manager`` (a user, or None for nobody) the case manager of
    ``patient`` (None: a patient being registered)?  ``edit_patient`` on the patient as it is
    and as it will be."""
    to_be = _PatientToBe(getattr(manager, "pk", None) if manager is not None else None)
    if not can(user, Action.EDIT_PATIENT, to_be):
        return False
    return patient is None or can(user, Action.EDIT_PATIENT, patient)


def require_case_manager_assignment(user: Any, manager: Any, patient: Any = None) -> None:
    """:class:`PermissionDenied` naming the case manager unless :func:`may_assign_case_manager`."""
    if not may_assign_case_manager(user, manager, patient):
        name = manager.get_username() if manager is not None else "nobody"
        log.info("permission denied: %s may not assign a patient to %s", user, name)
        raise PermissionDenied(
            f"you may not make {name} the case manager: a case manager registers and keeps "
            "patients for themselves (or for nobody); a clinician assigns them to others"
        )


def _check_all(user: Any, actions: Iterable[Action], obj: Any = None) -> None:
    for action in actions:
        require(user, action, obj)


def requires(
    *actions: Action | str, get_object: Callable[..., Any] | None = None
) -> Callable[[V], V]:
    """Decorator for function views: log in first, then EVERY action must be allowed.

    ``get_object(request, *args, **kwargs)`` (optional) fetches the object for per-object rules;
    the object is passed to the view as ``request.permission_object``. Anonymous users are sent
    to the login page; refused users get 403 (:class:`PermissionDenied`).
    """
    parsed = tuple(Action(a) for a in actions)

    def decorator(view: V) -> V:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            obj = get_object(request, *args, **kwargs) if get_object is not None else None
            _check_all(request.user, parsed, obj)
            request.permission_object = obj  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        wrapper.required_actions = parsed  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


class RequiresMixin:
    """Class-based-view mixin: ``required_actions = (Action.X, ...)``; all must be allowed.

    Override :meth:`get_permission_object` to apply per-object rules (default: none).
    """

    required_actions: tuple[Action, ...] = ()

    def get_permission_object(self) -> Any:
        return None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not self.required_actions:
            raise TypeError(f"{type(self).__name__}.required_actions is empty")
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        _check_all(request.user, self.required_actions, self.get_permission_object())
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


def json_unauthorised(message: str = "authentication required") -> JsonResponse:
    """401 with ``WWW-Authenticate: Bearer`` and ``{"error": ...}``."""
    response = JsonResponse({"error": message}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="spinewatch"'
    return response


def json_forbidden(message: str = "forbidden") -> JsonResponse:
    """403 with ``{"error": ...}``."""
    return JsonResponse({"error": message}, status=403)


def api_requires(*actions: Action | str) -> Callable[[V], V]:
    """Decorator for JSON API views (no DRF): bearer token or session, then the actions.

    - ``Authorization: Bearer <token>`` -> :func:`spinewatch.accounts.tokens.authenticate_bearer`
      (a bad, expired or revoked token is a 401 even if a session cookie is present);
    - else the session user; unsafe methods (POST, PUT, PATCH, DELETE) with a session must pass
      Django's CSRF check (the view itself is CSRF-exempt so that token clients need no cookie);
    - anonymous -> 401 JSON; refused action -> 403 JSON; a :class:`PermissionDenied` raised by
      the view (a per-object :func:`require`) -> 403 JSON too.

    ``request.user`` is the authenticated user inside the view; ``request.auth_via`` is
    ``"token"`` or ``"session"``.
    """
    parsed = tuple(Action(a) for a in actions)

    def decorator(view: V) -> V:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            from spinewatch.accounts.tokens import authenticate_bearer, has_bearer

            if has_bearer(request):
                user = authenticate_bearer(request)
                if user is None:
                    return json_unauthorised("invalid, expired or revoked API token")
                request.user = user
                request.auth_via = "token"  # type: ignore[attr-defined]
            else:
                if not request.user.is_authenticated:
                    return json_unauthorised()
                if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
                    refusal = _csrf_refusal(request)
                    if refusal is not None:
                        return json_forbidden("CSRF check failed")
                request.auth_via = "session"  # type: ignore[attr-defined]
            try:
                _check_all(request.user, parsed)
                return view(request, *args, **kwargs)  # type: ignore[no-any-return]
            except PermissionDenied as exc:
                return json_forbidden(str(exc) or "forbidden")

        wrapper.csrf_exempt = True  # type: ignore[attr-defined]
        wrapper.required_actions = parsed  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def _csrf_refusal(request: HttpRequest) -> HttpResponse | None:
    from django.middleware.csrf import CsrfViewMiddleware

    def _never_called(_: HttpRequest) -> HttpResponse:  # pragma: no cover
        raise AssertionError("not used")

    middleware = CsrfViewMiddleware(_never_called)
    middleware.process_request(request)
    return middleware.process_view(request, None, (), {})  # type: ignore[arg-type]
