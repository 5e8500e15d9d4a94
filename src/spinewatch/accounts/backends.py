"""Authentication backend: django-axes lock-out for every sign-in that comes from a request.

:class:`ThrottledBackend` is axes' ``AxesStandaloneBackend`` (placed FIRST in
``AUTHENTICATION_BACKENDS``; ``ModelBackend`` does the actual password check after it), with one
difference: ``authenticate()`` called WITHOUT a request -- only code on the server does that
(Django's test client ``login()``, a management shell) -- is not throttled instead of raising
axes' ``AxesBackendRequestParameterRequired``. Every sign-in over HTTP (our login view, the
Django admin login) passes the request and is throttled: after ``AXES_FAILURE_LIMIT`` failures
for one username from one IP address, that pair is locked out for ``AXES_COOLOFF_TIME``.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest

__all__ = ["ThrottledBackend"]


class ThrottledBackend(AxesStandaloneBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)  # type: ignore[no-any-return]
