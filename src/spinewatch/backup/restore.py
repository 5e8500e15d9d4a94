"""``spinewatch restore``: put a backup archive back, then prove its audit trail intact.

Steps, each refusing with :class:`~spinewatch.backup.errors.BackupError` (nothing half-done):

1. read ``manifest.json``; extract every member into a private temporary folder, refusing any
   member the manifest does not list, any path leaving the folder, and any file whose SHA-256
   or size differs from the manifest (a damaged or altered archive);
2. the database: the same vendor as the archive's (SQLite to SQLite, PostgreSQL to PostgreSQL);
   the target must be EMPTY -- no SQLite file / no table in the PostgreSQL database -- unless
   ``force`` (then the SQLite file is moved aside, ``<name>.before-restore-<time>``, or
   ``pg_restore --clean`` replaces the objects); SQLite: copied into place by rename,
   PostgreSQL: ``pg_restore``;
3. ``uploads/`` into the data directory (an existing non-empty one is moved aside with
   ``force``, else refused); the secret key and the anchor file only where none exists (an
   existing anchor file is kept: if it notes events newer than the backup, the check below
   says that those events are not in the archive);
4. the audit chain of the restored database is verified -- every hash, every link, the
   snapshot's head from the manifest as an anchor, and the anchors of the anchor file
   (:func:`spinewatch.audit.proof.check_trail`) -- and the result says what was proven.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from spinewatch.backup.errors import BackupError
from spinewatch.backup.snapshot import FORMAT, pg_command_env, sha256_of

__all__ = ["RestoreSummary", "read_manifest", "restore_backup"]


@dataclass(frozen=True)
class RestoreSummary:
    vendor: str
    files: int
    events: int
    proof: Any  # spinewatch.audit.proof.Proof
    moved_aside: tuple[str, ...]


def read_manifest(archive: Path) -> dict[str, Any]:
    """The archive's manifest, checked for its format."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            manifest = json.loads(member.read(1 << 20))
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(
            f"{archive}: not a SpineWatch backup ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: backup format {manifest.get('format')!r}; expected {FORMAT}")
    return manifest


def _extract(archive: Path, manifest: Mapping[str, Any], into: Path) -> None:
    files: Mapping[str, Any] = manifest.get("files") or {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            name = member.name
            if name == "manifest.json":
                continue
            path = PurePosixPath(name)
            if name not in files or path.is_absolute() or ".." in path.parts or not member.isfile():
                raise BackupError(f"{archive}: member {name!r} is not listed in the manifest")
            target = into / path
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            source = tar.extractfile(member)
            if source is None:
                raise BackupError(f"{archive}: member {name!r} cannot be read")
            with source, target.open("xb") as out:
                shutil.copyfileobj(source, out)
            os.chmod(target, 0o600)
    for name, expected in files.items():
        target = into / name
        if not target.is_file():
            raise BackupError(f"{archive}: member {name!r} of the manifest is missing")
        if target.stat().st_size != expected.get("size") or sha256_of(target) != expected.get(
            "sha256"
        ):
            raise BackupError(
                f"{archive}: member {name!r} does not match its SHA-256 in the manifest "
                "(a damaged or altered archive)"
            )


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _restore_sqlite(dump: Path, database: Mapping[str, Any], force: bool) -> list[str]:
    name = str(database.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        raise BackupError(f"database {name!r}: a SQLite restore needs a database file")
    target = Path(name)
    moved: list[str] = []
    if target.exists():
        if not force:
            raise BackupError(
                f"{target}: a database is already there; restore into an empty place, or use "
                "--force to move it aside first"
            )
        aside = target.with_name(f"{target.name}.before-restore-{_stamp()}")
        target.rename(aside)
        moved.append(str(aside))
        for suffix in ("-wal", "-shm", "-journal"):
            Path(name + suffix).unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(dump, partial)
    os.chmod(partial, 0o600)
    os.replace(partial, target)
    return moved


def _pg_tables(database: Mapping[str, Any]) -> int:
    args, env = pg_command_env(database)
    done = subprocess.run(
        ["psql", *args, "--dbname", str(database["NAME"]), "-tA", "-c",
         "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BackupError(f"psql failed: {' '.join(done.stderr.split())[:400]}")
    return int(done.stdout.strip() or 0)


def _restore_postgresql(dump: Path, database: Mapping[str, Any], force: bool) -> list[str]:
    if _pg_tables(database) and not force:
        raise BackupError(
            f"PostgreSQL database {database['NAME']!r} holds tables; restore into an empty "
            "database, or use --force to replace its objects"
        )
    args, env = pg_command_env(database)
    command = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", *args]
    if force:
        command += ["--clean", "--if-exists"]
    done = subprocess.run(
        [*command, "--dbname", str(database["NAME"]), str(dump)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {' '.join(done.stderr.split())[:500]}")
    return []


def _put_files(work: Path, data_dir: Path, force: bool) -> tuple[int, list[str]]:
    from spinewatch.audit.anchor import anchor_path

    moved: list[str] = []
    count = 0
    uploads = work / "uploads"
    target = data_dir / "uploads"
    if uploads.is_dir():
        if target.exists() and any(target.iterdir()):
            if not force:
                raise BackupError(
                    f"{target}: holds files; restore into an empty data directory, or use "
                    "--force to move them aside"
                )
            aside = target.with_name(f"uploads.before-restore-{_stamp()}")
            target.rename(aside)
            moved.append(str(aside))
        elif target.exists():
            target.rmdir()
        shutil.copytree(uploads, target)
        count += sum(1 for p in target.rglob("*") if p.is_file())
    anchors = anchor_path()
    for name, destination in (("secret_key", data_dir / "secret_key"),
                              ("audit-anchors.log", anchors)):  # fmt: skip
        source = work / name
        if destination is not None and source.is_file() and not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(source, destination)
            os.chmod(destination, 0o600)
            count += 1
    return count, moved


@contextmanager
def _alias_for(database: Mapping[str, Any], alias: str) -> Iterator[str]:
    """A Django connection alias to ``database`` for the time of the check."""
    from django.db import connections

    if alias == "default":
        connections["default"].close()
        yield "default"
        return
    connections.settings[alias] = connections.configure_settings({alias: dict(database)})[alias]
    try:
        yield alias
    finally:
        connections[alias].close()
        del connections[alias]
        del connections.settings[alias]


def restore_backup(
    archive: Path,
    *,
    data_dir: Path,
    database: Mapping[str, Any],
    alias: str = "default",
    force: bool = False,
) -> RestoreSummary:
    """Restore ``archive`` into ``database`` (a Django ``DATABASES`` entry) and ``data_dir``,
    then verify the audit chain (through ``alias``, made for ``database`` when not
    ``default``). See the module docstring."""
    from spinewatch.audit.proof import check_trail

    archive = Path(archive)
    manifest = read_manifest(archive)
    vendor = manifest["database"]["vendor"]
    engine = str(database.get("ENGINE", ""))
    target_vendor = (
        "postgresql" if "postgresql" in engine else "sqlite" if "sqlite" in engine else engine
    )
    if vendor != target_vendor:
        raise BackupError(
            f"{archive}: a {vendor} backup; the target database is {target_vendor} (restore "
            "needs the same kind of database)"
        )
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=data_dir) as tmp:
        work = Path(tmp)
        _extract(archive, manifest, work)
        dump = work / manifest["database"]["file"]
        if vendor == "sqlite":
            moved = _restore_sqlite(dump, database, force)
        else:
            moved = _restore_postgresql(dump, database, force)
        count, moved_files = _put_files(work, data_dir, force)
    audit = manifest.get("audit") or {}
    head = (audit["head_seq"], audit["head_hash"]) if audit.get("head_seq") else None
    with _alias_for(database, alias) as using:
        proof = check_trail(extra_anchor=head, note_head=False, using=using)
    return RestoreSummary(
        vendor, count + 1, int(audit.get("events") or 0), proof, tuple(moved + moved_files)
    )
