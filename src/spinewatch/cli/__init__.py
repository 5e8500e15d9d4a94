"""The ``spinewatch`` command: thin parsers that call library functions and format the result.

Sub-commands live in ``_<name>.py`` modules, each with ``add_parser(subparsers)`` (argparse only,
so start-up stays light) and ``run(args) -> int`` (which imports what it needs). Input errors
(:class:`spinewatch.core.errors.InputError` and unreadable files) end in one line on stderr and
exit status 2; anything else is a bug and keeps its traceback.
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
    "_demo",
    "_manage",
    "_user",
    "_token",
    "_serve",
    "_worker",
    "_pacs",
    "_dicom_listen",
    "_audit",
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
    from spinewatch.core.errors import InputError

    try:
        return int(args.run(args) or 0)
    except InputError as exc:
        print(f"spinewatch: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"spinewatch: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
