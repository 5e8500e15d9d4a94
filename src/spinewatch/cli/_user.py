"""``spinewatch user add|list|set-role|activate|deactivate|unlock|reset-2fa``: accounts.

``user add USERNAME --role ROLE`` reads the password from standard input: typed twice without
echo on a terminal, or one line from a pipe (``printf '%s\\n' "$PW" | spinewatch user add ...``).
A weak password (Django's validators) or an existing username ends with exit status 2.
``unlock`` lifts both the password lock-out (django-axes) and the second-factor lock-out. Every
change is audited as the operating-system user, via ``cli``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

__all__ = ["add_parser", "run"]

_ROLES = ("admin", "clinician", "case_manager", "researcher")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "user",
        help="manage users (add, list, set-role, unlock, reset-2fa)",
        description="Create users with one role each and look after their sign-in.",
    )
    actions = parser.add_subparsers(dest="user_action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="create a user; the password is read from standard input")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=_ROLES)
    add.add_argument("--email", default="")

    actions.add_parser("list", help="list users with their role and two-factor state")

    set_role = actions.add_parser("set-role", help="give a user another (single) role")
    set_role.add_argument("username")
    set_role.add_argument("--role", required=True, choices=_ROLES)

    unlock = actions.add_parser(
        "unlock", help="lift a user's sign-in lock-outs (password and second factor)"
    )
    unlock.add_argument("username")

    for name, what in (("activate", "let a user sign in again"), ("deactivate", "stop a user")):
        toggle = actions.add_parser(name, help=what)
        toggle.add_argument("username")

    reset = actions.add_parser("reset-2fa", help="remove a user's authenticator (lost phone)")
    reset.add_argument("username")

    parser.set_defaults(run=run)


def _read_password(username: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass(f"Password for {username}: ")
        second = getpass.getpass("Password (again): ")
        if first != second:
            from spinewatch.accounts.errors import AccountError

            raise AccountError("the two passwords differ")
        return first
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line.rstrip("\r\n")


def _get_user(username: str) -> Any:
    from django.contrib.auth import get_user_model

    from spinewatch.accounts.errors import AccountError

    User = get_user_model()
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
    if user is None:
        raise AccountError(f"user {username!r} does not exist")
    return user


def run(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django()
    from spinewatch.audit.context import acting_as

    with acting_as(getpass.getuser(), via="cli"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    action = args.user_action
    if action == "add":
        from spinewatch.accounts.users import create_user

        password = _read_password(args.username)
        user = create_user(
            username=args.username, password=password, role=args.role, email=args.email
        )
        print(f"created user {user.get_username()} ({args.role})")
        return 0
    if action == "list":
        from django.contrib.auth import get_user_model

        from spinewatch.accounts.models import TotpDevice
        from spinewatch.accounts.roles import role_or_none

        User = get_user_model()
        with_device = set(
            TotpDevice.objects.filter(confirmed=True).values_list("user_id", flat=True)
        )
        for user in User.objects.order_by(User.USERNAME_FIELD).prefetch_related("groups"):
            role = role_or_none(user)
            state = "active" if user.is_active else "inactive"
            twofa = "2fa" if user.pk in with_device else "no-2fa"
            print(f"{user.get_username()}\t{role.value if role else '-'}\t{state}\t{twofa}")
        return 0
    if action == "set-role":
        from spinewatch.accounts.roles import set_role

        user = _get_user(args.username)
        set_role(user, args.role)
        print(f"{user.get_username()} is now {args.role}")
        return 0
    if action == "unlock":
        from axes.utils import reset

        from spinewatch.accounts.events import account_event
        from spinewatch.accounts.totp import unlock

        user = _get_user(args.username)
        removed = reset(username=args.username)
        second = unlock(user)
        if removed:
            account_event("update", user, detail={"sign_in_unlocked": removed})
        extra = "; second factor unlocked" if second else ""
        print(f"unlocked {args.username} ({removed} failed-attempt record(s) removed{extra})")
        return 0
    if action in ("activate", "deactivate"):
        from spinewatch.accounts.users import set_active

        user = _get_user(args.username)
        changed = set_active(user, action == "activate")
        state = "active" if action == "activate" else "inactive"
        print(f"{user.get_username()} is {state}{'' if changed else ' (no change)'}")
        return 0
    if action == "reset-2fa":
        from spinewatch.accounts.totp import reset_device

        user = _get_user(args.username)
        had = reset_device(user)
        what = "authenticator removed" if had else "had no authenticator"
        print(f"{user.get_username()}: {what}; a new one is set up at the next sign-in")
        return 0
    raise AssertionError(action)  # pragma: no cover - argparse restricts the choices
