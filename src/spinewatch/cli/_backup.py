"""``spinewatch backup OUT.tar.gz`` / ``spinewatch restore ARCHIVE [--force]``.

``backup``: a consistent snapshot of the registry database (SQLite backup API or ``pg_dump``),
the uploads, the secret key and the audit anchors in one archive, 0600
(:mod:`spinewatch.backup.snapshot`). ``restore``: into an EMPTY database and data directory
(``--force`` moves what is there aside), then the audit chain is verified and the command says
what was proven (:mod:`spinewatch.backup.restore`); exit 1 when the restored trail is broken.
Both are audited as the operating-system user.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run_backup", "run_restore"]


def add_parser(subparsers: Any) -> None:
    backup = subparsers.add_parser(
        "backup",
        help="one archive: database snapshot, uploads, secret key, audit anchors",
        description="Write a consistent backup archive (it holds patient data: keep it safe).",
    )
    backup.add_argument("out", type=Path, metavar="OUT.tar.gz", help="a new file")
    backup.set_defaults(run=run_backup)
    restore = subparsers.add_parser(
        "restore",
        help="restore a backup archive into an empty installation, then verify the audit trail",
        description="Restore a SpineWatch backup archive and verify its audit chain.",
    )
    restore.add_argument("archive", type=Path, metavar="ARCHIVE.tar.gz")
    restore.add_argument(
        "--force",
        action="store_true",
        help="move an existing SQLite file/uploads aside (PostgreSQL: replace its objects)",
    )
    restore.set_defaults(run=run_restore)


def run_backup(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django(migrate=False)
    from django.conf import settings

    from spinewatch.audit.context import acting_as
    from spinewatch.audit.trail import record
    from spinewatch.backup.snapshot import create_backup

    summary = create_backup(args.out, data_dir=Path(settings.DATA_DIR))
    with acting_as(getpass.getuser(), via="cli"):
        record(
            actor=None,
            action="export",
            object_type="",
            object_id=None,
            detail={
                "backup": str(summary.path),
                "database": summary.vendor,
                "audit_events": summary.events,
                "files": summary.files,
            },
        )
    head = f", audit trail up to event {summary.head_seq}" if summary.head_seq else ""
    print(
        f"backup written: {summary.path} ({summary.vendor} database, {summary.files} files, "
        f"{summary.bytes} bytes{head}); it holds patient data and the secret key: keep it safe"
    )
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django(migrate=False)  # never create tables in the (empty) target
    from django.conf import settings

    from spinewatch.backup.restore import restore_backup

    summary = restore_backup(
        args.archive,
        data_dir=Path(settings.DATA_DIR),
        database=settings.DATABASES["default"],
        force=args.force,
    )
    for aside in summary.moved_aside:
        print(f"moved aside: {aside}")
    proof = summary.proof
    for warning in proof.warnings:
        print(f"spinewatch: warning: {warning}", file=sys.stderr)
    if not proof.ok:
        print(f"restored, but the audit trail is BROKEN {proof.problem}", file=sys.stderr)
        return 1
    print(f"restored {summary.vendor} database and {summary.files} files from {args.archive}")
    print(
        f"audit trail intact: {proof.n_events} events"
        + (f", head {proof.head}" if proof.head else "")
    )
    for line in proof.statements:
        print(line)
    return 0
