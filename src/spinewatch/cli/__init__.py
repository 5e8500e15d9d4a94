"""The ``spinewatch`` command: thin parsers that call library functions and format the result.

Sub-commands live in ``_<name>.py`` modules, each with ``add_parser(subparsers)`` (argparse only,
so start-up stays light) and ``run(args) -> int`` (which imports what it needs). Input errors
(:class:`spinewatch.core.errors.InputError`), every operating-system error (a missing or
unreadable file, a full disk, an output path that exists as a file...), a lack of memory and an
unreachable database end in ONE line on stderr and exit status 2
(:func:`spinewatch.core.errors.user_message`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# Sub-command modules; the order is the order of ``spinewatch --help``.
_COMMANDS: tuple[str, ...] = (
    "_analyze",
    "_segment",
    "_compare",
    "_batch",
    "_validate",
    "_outcomes",
    "_importer",
    "_export",
    "_demo",
    "_manage",
    "_user",
    "_token",
    "_serve",
    "_worker",
    "_pacs",
    "_dicom_listen",
    "_audit",
    "_backup",
)

EXIT_INPUT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spinewatch",
        description="SpineWatch: vertebroplasty surveillance, treatment, follow-up, results.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"spinewatch.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from spinewatch.core.errors import user_message

    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = user_message(exc) or _database_message(exc)
        if message is None:
            raise
        print(f"spinewatch: error: {message}", file=sys.stderr)
        return EXIT_INPUT_ERROR


def _database_message(exc: BaseException) -> str | None:
    """One line for a database that cannot be reached (only when Django was loaded)."""
    db = sys.modules.get("django.db")
    if db is None or not isinstance(exc, db.OperationalError | db.InterfaceError):
        return None
    return "database unavailable: " + " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
