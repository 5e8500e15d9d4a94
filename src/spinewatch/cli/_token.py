"""``spinewatch token create|list|revoke``: bearer tokens for the JSON API.

``token create USERNAME [--name N] [--days D] [--totp-code CODE]`` prints the token ONCE (only
its SHA-256 is stored); ``--days 0`` makes a token that never expires. For a user who must use a
second factor (every admin), a current code of that user's authenticator is required:
``--totp-code``, or typed at the prompt on a terminal. Creating and revoking are audited as the
operating-system user, via ``cli``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "token",
        help="API bearer tokens (create, list, revoke)",
        description="Create, list and revoke bearer tokens for the JSON API.",
    )
    actions = parser.add_subparsers(dest="token_action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a token for USERNAME (printed once)")
    create.add_argument("username")
    create.add_argument("--name", default="api", help="what the token is for (default: api)")
    create.add_argument(
        "--days", type=int, default=90, help="lifetime in days (default 90; 0: never expires)"
    )
    create.add_argument(
        "--totp-code",
        default=None,
        metavar="CODE",
        help="a current code of the user's authenticator (required for admins; asked on a "
        "terminal when missing)",
    )
    listing = actions.add_parser("list", help="list tokens (never the secrets)")
    listing.add_argument("username", nargs="?")
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", type=int)
    parser.set_defaults(run=run)


def _code_for(username: str, given: str | None) -> str | None:
    """The --totp-code, else (on a terminal, for a user who needs one) a code typed now."""
    if given is not None or sys.stdin is None or not sys.stdin.isatty():
        return given
    from django.contrib.auth import get_user_model

    from spinewatch.accounts.totp import requires_second_factor

    User = get_user_model()
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
    if user is None or not requires_second_factor(user):
        return None
    import getpass

    return getpass.getpass(f"Current code from {username}'s authenticator: ").strip() or None


def run(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django()
    import getpass

    from spinewatch.audit.context import acting_as

    with acting_as(getpass.getuser(), via="cli"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from spinewatch.accounts import tokens

    if args.token_action == "create":
        new = tokens.create_token(
            args.username,
            name=args.name,
            days=args.days if args.days != 0 else None,
            totp_code=_code_for(args.username, args.totp_code),
        )
        expiry = new.record.expires_at.isoformat() if new.record.expires_at else "never"
        print(new.token)
        print(
            f"token {new.record.pk} for {args.username} ({new.record.name}), expires {expiry}; "
            "shown once only: store it now",
            file=sys.stderr,
        )
        return 0
    if args.token_action == "list":
        from spinewatch.accounts.models import ApiToken

        query = ApiToken.objects.select_related("user").order_by("pk")
        if args.username:
            query = query.filter(user__username=args.username)
        for record in query:
            state = (
                "revoked" if record.revoked_at else ("usable" if record.is_usable() else "expired")
            )
            expiry = record.expires_at.isoformat() if record.expires_at else "never"
            used = record.last_used_at.isoformat() if record.last_used_at else "never"
            print(
                f"{record.pk}\t{record.user.get_username()}\t{record.name}\t{record.prefix}…"
                f"\t{state}\texpires {expiry}\tlast used {used}"
            )
        return 0
    if args.token_action == "revoke":
        record = tokens.revoke_token(args.token_id)
        print(f"token {record.pk} ({record.prefix}…) of {record.user.get_username()} revoked")
        return 0
    raise AssertionError(args.token_action)  # pragma: no cover
