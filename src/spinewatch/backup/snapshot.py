"""``spinewatch backup``: one archive holding a consistent snapshot of everything SpineWatch keeps.

The archive (``.tar.gz``, written 0600 -- it holds patient data and the secret key) contains:

- ``database.sqlite3`` -- SQLite's online backup API (:meth:`sqlite3.Connection.backup`, one
  step: a consistent copy while the application keeps running), or ``database.pgdump`` --
  ``pg_dump --format=custom`` (one REPEATABLE READ transaction: consistent);
- ``uploads/`` -- the uploaded scans and pictures (``DATA_DIR/uploads``), copied AFTER the
  database, so every file the database refers to is there (a file added meanwhile is harmless);
- ``secret_key`` and ``audit-anchors.log`` from the data directory, when present;
- ``manifest.json`` -- format, time, database vendor, the audit trail's head in the snapshot
  (event count, last ``seq`` and ``hash``, first ``hash``) and the SHA-256 and size of every
  member, checked on restore.

The audit head is read from the snapshot itself for SQLite, and just BEFORE ``pg_dump`` for
PostgreSQL (the dump holds at least those events): :mod:`spinewatch.backup.restore` verifies the
restored chain against it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spinewatch.backup.errors import BackupError

__all__ = ["FORMAT", "BackupSummary", "create_backup", "pg_command_env", "sha256_of"]

FORMAT = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    vendor: str
    events: int
    head_seq: int | None
    files: int
    bytes: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def pg_command_env(database: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Connection arguments and environment for ``pg_dump``/``pg_restore``/``psql`` (the
    password goes in ``PGPASSWORD``, never on the command line)."""
    args = []
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if database.get(key):
            args += [flag, str(database[key])]
    env = dict(os.environ)
    if database.get("PASSWORD"):
        env["PGPASSWORD"] = str(database["PASSWORD"])
    return args, env


def _audit_head_sqlite(path: Path) -> tuple[int, int | None, str | None, str | None]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        count, head = con.execute("SELECT COUNT(*), MAX(seq) FROM audit_auditevent").fetchone()
        if head is None:
            return 0, None, None, None
        (last,) = con.execute("SELECT hash FROM audit_auditevent WHERE seq = ?", (head,)).fetchone()
        (first,) = con.execute("SELECT hash FROM audit_auditevent WHERE seq = 1").fetchone()
    return int(count), int(head), str(last), str(first)


def _audit_head_live(alias: str) -> tuple[int, int | None, str | None, str | None]:
    from spinewatch.audit.models import AuditEvent

    events = AuditEvent.objects.using(alias)
    head = events.order_by("-seq").values_list("seq", "hash").first()
    if head is None:
        return 0, None, None, None
    first = events.filter(seq=1).values_list("hash", flat=True).first()
    return events.count(), int(head[0]), str(head[1]), first


def _dump_database(alias: str, work: Path) -> tuple[str, Path, tuple[Any, ...]]:
    from django.db import connections

    connection = connections[alias]
    if connection.vendor == "sqlite":
        target = work / "database.sqlite3"
        connection.ensure_connection()
        destination = sqlite3.connect(target)
        try:
            connection.connection.backup(destination)  # one step: a consistent copy
        finally:
            destination.close()
        return "sqlite", target, _audit_head_sqlite(target)
    if connection.vendor == "postgresql":
        head = _audit_head_live(alias)  # before the dump: the dump holds at least these
        target = work / "database.pgdump"
        settings = connection.settings_dict
        args, env = pg_command_env(settings)
        command = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", *args]
        done = subprocess.run(
            [*command, "--file", str(target), str(settings["NAME"])],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {' '.join(done.stderr.split())[:500]}")
        return "postgresql", target, head
    raise BackupError(f"database vendor {connection.vendor!r}: expected SQLite or PostgreSQL")


def _add(tar: tarfile.TarFile, path: Path, name: str, files: dict[str, Any]) -> int:
    size = path.stat().st_size
    files[name] = {"sha256": sha256_of(path), "size": size}
    tar.add(path, arcname=name, recursive=False)
    return size


def create_backup(out: Path, *, data_dir: Path, alias: str = "default") -> BackupSummary:
    """Write the archive ``out`` (see the module docstring); refuses an existing ``out``."""
    from spinewatch.audit.anchor import anchor_path

    out = Path(out)
    if out.exists():
        raise BackupError(f"{out}: exists; expected a new file name (nothing is overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    total = 0
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=out.parent) as tmp:
        work = Path(tmp)
        os.chmod(work, 0o700)
        vendor, dump, (events, head_seq, head_hash, first_hash) = _dump_database(alias, work)
        partial = work / "archive.tar.gz"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            total += _add(tar, dump, dump.name, files)
            uploads = data_dir / "uploads"
            for path in sorted(uploads.rglob("*")) if uploads.is_dir() else []:
                if path.is_file() and not path.is_symlink():
                    try:
                        total += _add(tar, path, f"uploads/{path.relative_to(uploads)}", files)
                    except FileNotFoundError:  # removed meanwhile (a failed upload): not needed
                        continue
            anchors = anchor_path()
            for path, name in ((data_dir / "secret_key", "secret_key"),
                               (anchors, "audit-anchors.log")):  # fmt: skip
                if path is not None and path.is_file():
                    total += _add(tar, path, name, files)
            manifest = {
                "format": FORMAT,
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "database": {"vendor": vendor, "file": dump.name},
                "audit": {
                    "events": events,
                    "head_seq": head_seq,
                    "head_hash": head_hash,
                    "first_hash": first_hash,
                },
                "files": files,
            }
            blob = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
            (work / "manifest.json").write_bytes(blob)
            tar.add(work / "manifest.json", arcname="manifest.json")
        shutil.move(str(partial), out)  # whole or nothing
    os.chmod(out, 0o600)
    return BackupSummary(out, vendor, events, head_seq, len(files), total)
