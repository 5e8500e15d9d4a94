"""Who is acting, through which channel and from where -- for the current request or command.

The audit trail needs the actor of every write, but service functions should not grow an
``actor`` parameter each. The acting context travels in a :mod:`contextvars` variable instead:

- the web application's :class:`~spinewatch.audit.middleware.AuditContextMiddleware` sets it for
  each request (the logged-in user, read when an event is recorded, so a log-in during the request
  counts; ``via`` "web", "api" or "portal" by URL prefix; the client IP);
- the command line and importers use :func:`acting_as`::

      with acting_as("alice", via="import"):
          import_cohort(path)          # every event recorded inside names alice, via import

Outside any context, events are recorded as the anonymous ``system`` (via "system"). Context
variables follow the code path, not the thread: a new thread starts with no acting context (a
thread pool must copy it with ``contextvars.copy_context()``).
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from spinewatch.audit.errors import AuditError

__all__ = [
    "ANONYMOUS",
    "Actor",
    "AuditContext",
    "acting_as",
    "current_actor",
    "current_context",
    "parse_ip",
    "parse_via",
    "resolve_actor",
    "role_of",
    "use_context",
]

_VIAS = ("web", "api", "cli", "portal", "import", "system")


@dataclass(frozen=True)
class Actor:
    """Who acted: the user's id (``None`` for a name without an account), username and role."""

    id: int | None
    username: str
    role: str = ""


#: No user: the system itself, an anonymous visitor, a patient on a portal link.
ANONYMOUS = Actor(None, "", "")


def parse_via(value: object) -> str:
    """A channel: ``web``, ``api``, ``cli``, ``portal``, ``import``, ``system``; else AuditError."""
    text = getattr(value, "value", value)
    if not isinstance(text, str) or text not in _VIAS:
        raise AuditError(f"via {value!r}: expected one of {', '.join(_VIAS)}")
    return text


def parse_ip(value: object) -> str | None:
    """An IPv4/IPv6 address in its normal text form (``None`` stays ``None``), else AuditError."""
    if value is None or value == "":
        return None
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise AuditError(f"ip {value!r}: expected an IPv4 or IPv6 address") from None


def role_of(user: Any) -> str:
    """The role the permission checks use (:func:`spinewatch.accounts.roles.role_or_none`), or
    ``""`` for anonymous users and users without a usable role."""
    from spinewatch.accounts.roles import role_or_none

    role = role_or_none(user)
    return role.value if role is not None else ""


def _user_by_name(name: str) -> Any:
    from django.contrib.auth import get_user_model

    model = get_user_model()
    return model._default_manager.filter(**{model.USERNAME_FIELD: name}).first()


def resolve_actor(who: object, *, role: str | None = None) -> Actor:
    """An :class:`Actor` from a Django user, an Actor, a username or ``None``.

    - a user (anything with ``pk`` and ``get_username``): its id, username and :func:`role_of`;
      an anonymous user is :data:`ANONYMOUS`;
    - a string: the account of that username when there is one, else the bare name (a system
      account, an operating-system user running a command);
    - ``None``: :data:`ANONYMOUS`.

    ``role`` overrides the role found.
    """
    if isinstance(who, Actor):
        actor = who
    elif who is None:
        actor = ANONYMOUS
    elif isinstance(who, str):
        name = who.strip()
        if not name or len(name) > 150:
            raise AuditError(f"actor {who!r}: expected a username of 1 to 150 characters")
        user = _user_by_name(name)
        actor = resolve_actor(user) if user is not None else Actor(None, name, "")
    elif hasattr(who, "get_username") and hasattr(who, "pk"):
        if not getattr(who, "is_authenticated", False):
            actor = ANONYMOUS
        else:
            actor = Actor(int(who.pk), str(who.get_username()), role_of(who))
    else:
        raise AuditError(
            f"actor {who!r} ({type(who).__name__}): expected a user, a username or None"
        )
    if role is not None:
        actor = Actor(actor.id, actor.username, role)
    return actor


@dataclass
class AuditContext:
    """The acting context: where the actor comes from, the channel and the client address.

    ``actor_source`` is called when an event is recorded (the middleware passes a function that
    reads ``request.user``); its result goes through :func:`resolve_actor` and is cached per user.
    """

    actor_source: Callable[[], object]
    via: str = "system"
    ip: str | None = None
    role: str | None = None
    _cached: tuple[object, Actor] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.via = parse_via(self.via)
        self.ip = parse_ip(self.ip)

    def actor(self) -> Actor:
        """The acting user now, resolved once per user object (a log-in replaces the object)."""
        who = self.actor_source()
        if self._cached is None or self._cached[0] is not who:
            self._cached = (who, resolve_actor(who, role=self.role))
        return self._cached[1]


_CURRENT: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar(
    "spinewatch_audit_context", default=None
)


def current_context() -> AuditContext | None:
    """The acting context of the current request or command, or ``None``."""
    return _CURRENT.get()


def current_actor() -> Actor:
    """The acting user now (:data:`ANONYMOUS` outside any context)."""
    context = _CURRENT.get()
    return context.actor() if context is not None else ANONYMOUS


@contextmanager
def use_context(context: AuditContext) -> Iterator[AuditContext]:
    """Make ``context`` the acting context inside the ``with`` block (restored on exit)."""
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


@contextmanager
def acting_as(
    user_or_name: object,
    via: str = "cli",
    *,
    ip: str | None = None,
    role: str | None = None,
) -> Iterator[AuditContext]:
    """Record every event inside the block as ``user_or_name`` (a user, a username or ``None``).

    The user is resolved on entry (a username becomes the account's id and role when such an
    account exists). Blocks nest; the inner one wins until it ends.
    """
    actor = resolve_actor(user_or_name, role=role)
    with use_context(AuditContext(lambda: actor, via=via, ip=ip)) as context:
        yield context
