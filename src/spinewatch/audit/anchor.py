"""Anchors of the audit trail kept OUTSIDE the database: what lets ``audit verify`` see a trail
cut short or re-hashed.

The hash chain alone proves that the events present are unaltered and in order; it cannot prove
that none were removed from the END, nor that someone able to write the table did not recompute
every hash from some point on. An *anchor* -- an event's ``seq`` and ``hash`` noted elsewhere --
closes both gaps up to that event: if the trail still holds event ``seq`` with that hash, no
event up to it was removed, changed or re-hashed.

SpineWatch keeps anchors by default in a file outside the database
(``SPINEWATCH_AUDIT_ANCHOR_FILE``, default ``<data dir>/audit-anchors.log``; ``off`` disables it):

- the first event of each day (UTC) writes the chain head to it, once its transaction commits;
- ``spinewatch audit verify`` checks EVERY anchor in it and, after a successful check, adds the
  head it has just verified.

One line per anchor, appended (``O_APPEND``, mode 0600)::

    2026-03-02T08:14:03Z 1042 <hash of event 1042> <hash of event 1>

The last field names the trail (the hash of its first event), so an anchor of another database
-- a test run, a different installation -- is told apart from a rewritten trail in messages.
The file is as trustworthy as where it is kept: point the setting at storage the database's
users cannot write (another machine's mount, an append-only or WORM volume, a log shipper).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ANCHOR_ENV", "Anchor", "anchor_path", "read_anchors", "write_anchor"]

log = logging.getLogger("spinewatch.audit")

ANCHOR_ENV = "SPINEWATCH_AUDIT_ANCHOR_FILE"
_LINE = re.compile(
    r"^(?P<at>\S+)\s+(?P<seq>[0-9]+)\s+(?P<hash>[0-9a-f]{64})\s+(?P<first>[0-9a-f]{64})\s*$"
)


@dataclass(frozen=True)
class Anchor:
    """Event ``seq`` had ``hash`` when noted at ``at``; ``first`` is the trail's first hash."""

    at: str
    seq: int
    hash: str
    first: str
    line: int = 0

    def text(self) -> str:
        return f"{self.at} {self.seq} {self.hash} {self.first}\n"


def anchor_path() -> Path | None:
    """The anchor file: ``SPINEWATCH_AUDIT_ANCHOR_FILE`` (read now, so a command or a test can
    set it), else the ``AUDIT_ANCHOR_FILE`` setting, else ``<DATA_DIR>/audit-anchors.log``;
    ``None`` when set to ``off``."""
    from django.conf import settings

    raw = os.environ.get(ANCHOR_ENV) or getattr(settings, "AUDIT_ANCHOR_FILE", "") or ""
    if str(raw).strip().lower() in ("off", "none", "0"):
        return None
    if raw:
        return Path(raw)
    return Path(settings.DATA_DIR) / "audit-anchors.log"


def read_anchors(path: Path) -> tuple[list[Anchor], list[str]]:
    """The anchors in ``path`` and the problems found reading it (unreadable lines)."""
    anchors: list[Anchor] = []
    problems: list[str] = []
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"{path}: cannot be read ({exc.strerror or exc})"]
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            problems.append(f"{path}, line {number}: not an anchor ({line[:60]!r})")
            continue
        anchors.append(
            Anchor(match["at"], int(match["seq"]), match["hash"], match["first"], number)
        )
    return anchors, problems


def write_anchor(seq: int, digest: str, first: str, *, path: Path | None = None) -> Path | None:
    """Append one anchor line (the file is created 0600); returns the file, or None when
    anchoring is off. An OSError is logged, not raised: a full disk must not lose the event."""
    target = path if path is not None else anchor_path()
    if target is None:
        return None
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = Anchor(now, seq, digest, first).text().encode("ascii")
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("audit anchor for event %d could not be written to %s: %s", seq, target, exc)
        return None
    return target
