"""One shared answer to a stale edit: the "changed by someone else" page (HTTP 409).

The registry's services refuse an update based on an old version with
:class:`~spinewatch.registry.errors.StaleEditError`. Every editing view -- in any area -- wraps
itself with :func:`handle_stale_edits`, so a stale save never overwrites silently and never
becomes a 500::

    from spinewatch.web.pages.stale import handle_stale_edits

    @handle_stale_edits(current=lambda request, pk: {"decision": Finding.objects.get(pk=pk)...})
    def my_edit_view(request, pk): ...

or plainly ``@handle_stale_edits`` (then only what you tried is shown, with the message).
``current(request, *args, **kwargs)`` returns what is stored NOW (field name -> value); the page
shows it next to what the person tried (the POSTed fields), and offers "reload and re-apply":
a link to the form (``reload_url``, default the same URL) which then shows the current values.

For htmx requests the page replaces ``#main`` (``HX-Retarget``/``HX-Reselect``), so a stale edit
in an inline form is never swapped into a table cell.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from spinewatch.registry.errors import StaleEditError

__all__ = ["handle_stale_edits", "stale_edit_response"]

log = logging.getLogger(__name__)

V = TypeVar("V", bound=Callable[..., HttpResponse])
CurrentValues = Callable[..., Mapping[str, Any]]

_HIDDEN_FIELDS = ("csrfmiddlewaretoken", "expected_version", "version")
_MANAGEMENT_SUFFIXES = ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS")


def _label(name: str) -> str:
    """``levels-0-cement_volume_ml`` -> ``levels 1 · cement volume ml``."""
    parts = name.split("-")
    if len(parts) == 3 and parts[1].isdigit():
        return f"{parts[0].replace('_', ' ')} {int(parts[1]) + 1} · {parts[2].replace('_', ' ')}"
    return name.replace("_", " ")


def _tried(request: HttpRequest) -> dict[str, str]:
    tried: dict[str, str] = {}
    for key in request.POST:
        if key in _HIDDEN_FIELDS or key.endswith(_MANAGEMENT_SUFFIXES) or key.startswith("add_"):
            continue
        values = [v for v in request.POST.getlist(key) if v.strip()]
        if values:
            tried[key] = ", ".join(values)
    return tried


def _text(value: Any) -> str:
    if value is None or value == "":
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def stale_edit_response(
    request: HttpRequest,
    exc: StaleEditError,
    *,
    current: Mapping[str, Any] | None = None,
    reload_url: str | None = None,
) -> HttpResponse:
    """The 409 page for ``exc``: what is stored now vs what ``request`` tried to save."""
    tried = _tried(request)
    now = {k: _text(v) for k, v in (current or {}).items()}
    names = list(now) + [k for k in tried if k not in now]
    rows = [
        {
            "name": name,
            "label": _label(name),
            "current": now.get(name, "\u2014" if current is not None else ""),
            "tried": tried.get(name, "\u2014"),
            "differs": current is not None and now.get(name) != tried.get(name),
        }
        for name in names
    ]
    url = reload_url or request.get_full_path()
    response = render(
        request,
        "web/pages/stale_edit.html",
        {
            "what": exc.what,
            "message": str(exc),
            "current_version": exc.current_version,
            "expected_version": exc.expected_version,
            "rows": rows,
            "has_current": current is not None,
            "reload_url": url,
        },
        status=409,
    )
    if request.headers.get("HX-Request"):
        response["HX-Retarget"] = "#main"
        response["HX-Reselect"] = "#main"
        response["HX-Reswap"] = "outerHTML"
    return response


@overload
def handle_stale_edits(view: V) -> V: ...
@overload
def handle_stale_edits(
    *, current: CurrentValues | None = None, reload_url: Callable[..., str] | None = None
) -> Callable[[V], V]: ...


def handle_stale_edits(
    view: V | None = None,
    *,
    current: CurrentValues | None = None,
    reload_url: Callable[..., str] | None = None,
) -> V | Callable[[V], V]:
    """Turn a :class:`StaleEditError` raised by the view into the 409 page.

    ``current(request, *args, **kwargs)`` and ``reload_url(request, *args, **kwargs)`` receive
    the view's arguments. Use bare (``@handle_stale_edits``) or with arguments.
    """

    def decorator(inner: V) -> V:
        @functools.wraps(inner)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return inner(request, *args, **kwargs)
            except StaleEditError as exc:
                log.info("stale edit by %s: %s", request.user, exc)
                values = None
                if current is not None:
                    try:
                        values = current(request, *args, **kwargs)
                    except Exception:  # the record may be gone; still show the page
                        log.exception("could not read the current values after a stale edit")
                url = reload_url(request, *args, **kwargs) if reload_url is not None else None
                return stale_edit_response(request, exc, current=values, reload_url=url)

        return wrapper  # type: ignore[return-value]

    if view is not None:
        return decorator(view)
    return decorator
