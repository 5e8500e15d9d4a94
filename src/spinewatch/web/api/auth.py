"""Who is calling the API: a bearer token (scripts) or the browser's session (with CSRF).

Both classes are django-ninja auth callables; an operation accepts the first that returns a user,
else it answers 401 (``WWW-Authenticate: Bearer``). The rules are those of
:func:`spinewatch.accounts.permissions.api_requires`:

- ``Authorization: Bearer swt_...`` -> :func:`spinewatch.accounts.tokens.authenticate_bearer`;
  a bad, expired or revoked token is a 401 even when a session cookie is present too;
- otherwise the session user; an unsafe method (POST, PUT, PATCH, DELETE) must then pass
  Django's CSRF check (403 without the token), because a browser sends the cookie by itself.

The authenticated user becomes ``request.user`` (so the audit trail names them) and
``request.auth_via`` is ``"token"`` or ``"session"`` (so responses are marked ``no-store``).
What the user may then do is decided by :mod:`spinewatch.accounts.permissions` in each route.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer

from spinewatch.accounts.tokens import authenticate_bearer, has_bearer

__all__ = ["AUTH", "BearerToken", "SessionWithCsrf"]


class BearerToken(HttpBearer):
    """``Authorization: Bearer swt_...`` (``spinewatch token create USERNAME``)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any | None:
        user = authenticate_bearer(request)
        if user is None:
            return None
        request.user = user
        request.auth_via = "token"
        return user


class SessionWithCsrf(APIKeyCookie):
    """The signed-in browser session; unsafe methods need the CSRF token (``X-CSRFToken``)."""

    param_name: str = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> Any | None:
        if has_bearer(request):
            return None  # a token was offered: it alone decides (401 when it is bad)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None  # 401, not a CSRF 403, for a caller who is not signed in at all
        return super().__call__(request)  # CSRF check (unsafe methods), then authenticate

    def authenticate(self, request: HttpRequest, key: str | None) -> Any | None:
        request.auth_via = "session"
        return request.user


#: The API's authentication, in order of precedence.
AUTH = [BearerToken(), SessionWithCsrf()]
