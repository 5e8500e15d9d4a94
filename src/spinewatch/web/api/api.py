"""The NinjaAPI instance: authentication, error mapping and the routers per resource.

Mounted at ``/api/`` by :mod:`spinewatch.web.urls`; the OpenAPI document is
``/api/openapi.json`` (no docs UI: the Content-Security-Policy forbids its CDN scripts).

Errors are JSON ``{"detail": message}``:

=================================================  ======  ================================
raised                                             status  when
=================================================  ======  ================================
(no or bad credentials)                            401     ``WWW-Authenticate: Bearer``
``PermissionDenied``                               403     refused by the permissions
``NotFoundError``, ``Http404``                     404     no such record
``StaleEditError``                                 409     + current and expected version
``InputError`` (``RegistryError`` and the core's)  400     a value the programme refuses
(request does not match the schema)                422     ``detail``: a list of problems
=================================================  ======  ================================
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError

from spinewatch.core.errors import InputError
from spinewatch.registry.errors import NotFoundError, StaleEditError
from spinewatch.web.api import fhir, follow_ups, imaging, outcomes, patients, procedures, research
from spinewatch.web.api.auth import AUTH

__all__ = ["api"]

log = logging.getLogger(__name__)

api = NinjaAPI(
    title="SpineWatch API",
    version="1",
    description=(
        "Patients, scans and analyses, procedures, follow-ups and outcomes of a vertebroplasty "
        "programme. Authenticate with `Authorization: Bearer <token>` (`spinewatch token create "
        "USERNAME`) or a signed-in browser session (unsafe methods need the CSRF token). "
        "Permissions are those of the web pages; researchers see de-identified data only "
        "(`/deidentified/...`, `/outcomes`). Updates carry `expected_version`; a stale one is a "
        "409 with the current version."
    ),
    openapi_url="/openapi.json",
    docs_url=None,
    auth=AUTH,
    urls_namespace="api",
)


@api.exception_handler(AuthenticationError)
def _unauthorised(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = api.create_response(
        request, {"detail": "authentication required: a valid bearer token or session"}, status=401
    )
    response["WWW-Authenticate"] = 'Bearer realm="spinewatch"'
    return response


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "forbidden"}, status=403)


@api.exception_handler(NotFoundError)
def _not_found(request: HttpRequest, exc: NotFoundError) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc)}, status=404)


@api.exception_handler(StaleEditError)
def _stale(request: HttpRequest, exc: StaleEditError) -> HttpResponse:
    return api.create_response(
        request,
        {
            "detail": str(exc),
            "current_version": exc.current_version,
            "expected_version": exc.expected_version,
        },
        status=409,
    )


@api.exception_handler(InputError)
def _bad_input(request: HttpRequest, exc: InputError) -> HttpResponse:
    log.info("API %s %s refused: %s", request.method, request.path, exc)
    return api.create_response(request, {"detail": str(exc)}, status=400)


api.add_router("/patients", patients.router)
api.add_router("", imaging.router)
api.add_router("", procedures.router)
api.add_router("", follow_ups.router)
api.add_router("/outcomes", outcomes.router)
api.add_router("/deidentified", research.router)
api.add_router("/fhir", fhir.router)
