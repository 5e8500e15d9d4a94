"""Response headers that keep patient data out of caches, and the served secret key.

``Cache-Control: no-store`` -- which responses get it (the rule, in one place):

1. every response to an AUTHENTICATED request (session user, or a bearer-token API call marked by
   :func:`spinewatch.accounts.permissions.api_requires`), whatever its type: pages, JSON, CSV
   exports, rendered scan images -- anything a signed-in person sees may carry patient data;
2. every HTML or JSON response, signed in or not (the patient portal is anonymous but shows a
   patient's own answers; sign-in pages gain nothing from caching);
3. any response of a view decorated with :func:`no_store` (belt and braces for new views).

Static files never reach this middleware (WhiteNoise answers them earlier, with long cache
lifetimes), which is why rule 2 costs nothing. :class:`SecurityHeadersMiddleware` also sends
``Permissions-Policy`` (no camera, microphone, geolocation ...). The other headers come from
Django (``SecurityMiddleware``, ``XFrameOptionsMiddleware``) and django-csp (``CSPMiddleware``),
configured in :mod:`spinewatch.web._security_settings`.

:func:`ensure_secret_key`: a served application never runs on a hard-coded key; without
``SPINEWATCH_SECRET_KEY`` one is generated once into ``<data dir>/secret_key`` (mode 0600).

:func:`secure_data_dir`: the data directory (SQLite registry, uploads, secret key, audit anchors)
is private to the service's user: the directory 0700, its files 0600 -- created so, and
tightened (with a warning in the log) when found looser; the process' umask becomes 077 so
that every file written later (the SQLite file and its journal, uploads, pictures, backups) is
private too. Called by every entry point before Django touches the data directory.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from whitenoise.middleware import WhiteNoiseMiddleware

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "SECRET_KEY_FILE",
    "SecurityHeadersMiddleware",
    "StaticFilesMiddleware",
    "ensure_secret_key",
    "is_no_store",
    "no_store",
    "secure_data_dir",
    "secure_sqlite_files",
]

log = logging.getLogger(__name__)

V = TypeVar("V", bound=Callable[..., Any])

SECRET_KEY_FILE = "secret_key"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")
_CACHEABLE_NEVER_TYPES = ("text/html", "application/json", "application/problem+json")
_DEFAULT_PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def _mark_no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)  # max-age=0, no-cache, no-store, must-revalidate, private
    return response


def no_store(view: V) -> V:
    """View decorator: the response must never be stored by a browser or proxy cache."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> HttpResponse:
        response = view(*args, **kwargs)
        response._spinewatch_no_store = True  # type: ignore[union-attr]
        return _mark_no_store(response)

    return wrapper  # type: ignore[return-value]


def is_no_store(response: HttpResponse) -> bool:
    """Does ``Cache-Control`` forbid storing the response?"""
    directives = {d.strip().lower() for d in response.get("Cache-Control", "").split(",")}
    return "no-store" in directives


class SecurityHeadersMiddleware:
    """``Cache-Control: no-store`` by the rule above, and ``Permissions-Policy``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.permissions_policy = getattr(
            settings, "PERMISSIONS_POLICY", _DEFAULT_PERMISSIONS_POLICY
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.permissions_policy and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = self.permissions_policy
        if self._needs_no_store(request, response):
            _mark_no_store(response)
        return response

    @staticmethod
    def _needs_no_store(request: HttpRequest, response: HttpResponse) -> bool:
        if getattr(response, "_spinewatch_no_store", False):
            return True
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return True
        if getattr(request, "auth_via", None) == "token":
            return True
        content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
        return content_type in _CACHEABLE_NEVER_TYPES


class StaticFilesMiddleware(WhiteNoiseMiddleware):  # type: ignore[misc]
    """WhiteNoise, quiet when ``STATIC_ROOT`` does not exist yet.

    ``spinewatch serve`` collects the static files before it starts; tests and command-line use
    never collect them, and WhiteNoise's "No directory at" warning would be an error under
    ``filterwarnings = error``. A missing root is logged instead and simply serves nothing.
    """

    def add_files(self, root: str, prefix: str | None = None) -> None:
        if not self.autorefresh and not os.path.isdir(root):
            log.info(
                "static files: no directory at %s (run collectstatic, or spinewatch serve)", root
            )
            return
        super().add_files(root, prefix=prefix)


def _read_secret_key(path: Path) -> str:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(
            f"{path}: mode {mode:o} lets other users read the secret key; expected 600 "
            f"(run: chmod 600 {path})"
        )
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 50:
        raise ValueError(f"{path}: the secret key is {len(key)} characters; expected >= 50")
    return key


def ensure_secret_key(data_dir: Path | str) -> str:
    """``SPINEWATCH_SECRET_KEY`` if set; else the key in ``data_dir/secret_key``, created once.

    The file is created with mode 0600 (owner read/write only) and holds 64 URL-safe characters
    (~384 bits). A file that exists but is empty, shorter than 50 characters or readable by
    others is refused with :class:`PermissionError`/:class:`ValueError` naming it.
    """
    from_env = os.environ.get("SPINEWATCH_SECRET_KEY", "")
    if from_env:
        return from_env
    directory = secure_data_dir(data_dir)
    path = directory / SECRET_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret_key(path)
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    log.info("created a new secret key in %s", path)
    return key


def _tighten(path: Path, mode: int) -> None:
    current = path.stat().st_mode & 0o777
    if current & ~mode & 0o777:
        os.chmod(path, mode)
        log.warning("%s: mode %o was open to other users; set to %o", path, current, mode)


def secure_data_dir(data_dir: Path | str) -> Path:
    """Make ``data_dir`` private (see the module docstring) and return it.

    Top-level entries are tightened (files 0600, folders 0700); deeper ones need not be, since
    nobody else can enter the directory. Raises :class:`PermissionError` when the directory
    belongs to another user and cannot be changed.
    """
    os.umask(0o077)
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    _tighten(directory, PRIVATE_DIR_MODE)
    for entry in directory.iterdir():
        if entry.is_symlink() or entry.name == SECRET_KEY_FILE:
            continue  # a secret key others could read is refused, not quietly kept in use
        if entry.is_dir():
            _tighten(entry, PRIVATE_DIR_MODE)
        elif entry.is_file():
            _tighten(entry, PRIVATE_FILE_MODE)
    return directory


def secure_sqlite_files(databases: dict[str, Any]) -> None:
    """Files of the SQLite databases in Django's ``DATABASES`` (and their journals): 0600."""
    for config in databases.values():
        if "sqlite" not in str(config.get("ENGINE", "")):
            continue
        name = str(config.get("NAME") or "")
        if not name or name == ":memory:" or name.startswith("file:"):
            continue
        for suffix in _SQLITE_COMPANIONS:
            path = Path(name + suffix)
            if path.is_file():
                _tighten(path, PRIVATE_FILE_MODE)
