"""``spinewatch manage ARGS...``: Django's management commands (migrate, createsuperuser, ...)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]

# Commands that manage migrations themselves: do not migrate before running them.
_NO_AUTO_MIGRATE = frozenset(
    {"migrate", "makemigrations", "showmigrations", "sqlmigrate", "squashmigrations", "help"}
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "manage",
        help="run a Django management command (migrate, createsuperuser, ...)",
        description="Pass the arguments to Django's management utility, e.g. "
        "'spinewatch manage createsuperuser' or 'spinewatch manage help'.",
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    argv = list(args.args)
    setup_django(migrate=bool(argv) and argv[0] not in _NO_AUTO_MIGRATE)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["spinewatch manage", *argv])
    return 0
