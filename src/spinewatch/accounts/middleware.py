"""Two-factor enforcement: a signed-in user who needs a second factor gets nothing else first.

:class:`TwoFactorMiddleware` (after ``AuthenticationMiddleware``) sends an authenticated user for
whom :func:`spinewatch.accounts.totp.requires_second_factor` holds (every admin; anyone with an
enrolled authenticator) and whose session has not passed the second factor to the TOTP step:
enrolment when they have no confirmed device yet, verification otherwise. HTML requests are
redirected (``?next=`` keeps the target); other requests (``/api/``, ``Accept: application/json``)
get 403 JSON. The sign-in/out and TOTP pages themselves and static files are exempt. Bearer-token
API requests carry no session user at this point and are not affected.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import NoReverseMatch, reverse

from spinewatch.accounts import totp

__all__ = ["TwoFactorMiddleware"]

_EXEMPT_NAMES = (
    "accounts:login",
    "accounts:logout",
    "accounts:totp_verify",
    "accounts:totp_enrol",
    "admin:logout",
)


def _exempt_paths() -> frozenset[str]:
    paths = set()
    for name in _EXEMPT_NAMES:
        try:
            paths.add(reverse(name))
        except NoReverseMatch:
            continue
    return frozenset(paths)


class TwoFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def _exempt(self, request: HttpRequest) -> bool:
        path = request.path_info
        static_url = "/" + str(getattr(settings, "STATIC_URL", "static/")).lstrip("/")
        if path.startswith(static_url):
            return True
        return path in _exempt_paths()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not totp.session_is_verified(request)
            and not self._exempt(request)
            and totp.requires_second_factor(user)
        ):
            return self._challenge(request, user)
        return self.get_response(request)

    def _challenge(self, request: HttpRequest, user: object) -> HttpResponse:
        wants_json = request.path_info.startswith(
            "/api/"
        ) or "application/json" in request.META.get("HTTP_ACCEPT", "")
        if wants_json:
            return JsonResponse({"error": "two-factor verification required"}, status=403)
        step = "accounts:totp_verify" if totp.confirmed_device(user) else "accounts:totp_enrol"
        query = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"{reverse(step)}?{query}")
