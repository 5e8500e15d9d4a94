"""Middleware that makes each request the acting context of the audit trail.

Add ``"spinewatch.audit.middleware.AuditContextMiddleware"`` to ``MIDDLEWARE`` *after*
``AuthenticationMiddleware``. For each request it sets (:mod:`spinewatch.audit.context`):

- the actor: ``request.user``, read when an event is recorded (a log-in or log-out during the
  request replaces ``request.user`` and is seen);
- ``via``: by the longest matching path prefix in ``settings.SPINEWATCH_AUDIT_VIA_PREFIXES``
  (default ``{"/api/": "api", "/portal/": "portal"}``), else ``"web"``;
- ``ip``: ``REMOTE_ADDR`` (what the WSGI server saw; behind a reverse proxy, set the server to
  pass the client address, e.g. gunicorn's ``forwarded_allow_ips``). Not parseable -> ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from spinewatch.audit.context import AuditContext, parse_ip, parse_via, use_context
from spinewatch.audit.errors import AuditError

__all__ = ["DEFAULT_VIA_PREFIXES", "AuditContextMiddleware", "request_context", "via_for_path"]

DEFAULT_VIA_PREFIXES: Mapping[str, str] = {
    "/api/": "api",
    "/portal/links/": "web",  # staff pages that make portal links
    "/portal/": "portal",
}


def via_for_path(path: str) -> str:
    """The channel of a request path: the longest configured prefix that matches, else ``web``."""
    prefixes: Mapping[str, str] = getattr(
        settings, "SPINEWATCH_AUDIT_VIA_PREFIXES", DEFAULT_VIA_PREFIXES
    )
    best = ""
    via = "web"
    for prefix, name in prefixes.items():
        if path.startswith(prefix) and len(prefix) > len(best):
            best, via = prefix, name
    return parse_via(via)


def request_context(request: HttpRequest) -> AuditContext:
    """The acting context of ``request`` (see the module docstring)."""
    try:
        ip = parse_ip(request.META.get("REMOTE_ADDR"))
    except AuditError:
        ip = None
    return AuditContext(
        lambda: getattr(request, "user", None), via=via_for_path(request.path_info), ip=ip
    )


class AuditContextMiddleware:
    """Sets the audit trail's acting context for the duration of each request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with use_context(request_context(request)):
            return self.get_response(request)
