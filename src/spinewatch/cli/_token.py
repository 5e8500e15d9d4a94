"""``spinewatch token create|list|revoke``: bearer tokens for the JSON API.

``token create USERNAME [--name N] [--days D]`` prints the token ONCE (only its SHA-256 is
stored); ``--days 0`` makes a token that never expires.
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
    listing = actions.add_parser("list", help="list tokens (never the secrets)")
    listing.add_argument("username", nargs="?")
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", type=int)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django()
    from spinewatch.accounts import tokens

    if args.token_action == "create":
        new = tokens.create_token(
            args.username, name=args.name, days=args.days if args.days != 0 else None
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
