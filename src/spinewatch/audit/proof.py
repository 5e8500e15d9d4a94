"""Verify the audit trail against the anchors kept outside the database, and say in words what
was proven and what was not -- for ``spinewatch audit verify`` and the admin's audit page alike.

:func:`check_trail` reads the anchor file (:mod:`spinewatch.audit.anchor`), keeps the anchors of
THIS trail (same first event), refuses when the file holds anchors but none of this trail (the
trail was rewritten from its start or emptied -- or the file is another database's), runs
:func:`spinewatch.audit.trail.verify` with them, and returns a :class:`Proof`: ``ok``, the
``statements`` (proven / NOT proven), ``warnings`` and the ``problem`` when broken. With
``note_head`` a verified head not yet in the file is added to it (the next check is anchored
there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinewatch.audit.anchor import Anchor, anchor_path, read_anchors, write_anchor

__all__ = ["Proof", "check_trail"]


@dataclass
class Proof:
    ok: bool
    n_events: int = 0
    head: str | None = None  # "seq:hash"
    problem: str | None = None
    statements: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    noted: str | None = None  # "anchor noted: ..." when the head was written


def _anchor_statements(result: Any, ours: list[Anchor], path: Path | None) -> list[str]:
    if result.anchored_seq is None:
        why = "anchoring is off" if path is None else f"{path} holds no anchor of this trail yet"
        return [
            "NOT proven: that no event was removed from the end, or that the trail was not "
            f"re-hashed from some event on -- no anchor outside the database ({why})"
        ]
    noted = next((f"noted {a.at}" for a in ours if a.seq == result.anchored_seq), "given")
    source = f"{path} ({len(ours)} anchor(s) checked)" if ours else "--anchor"
    lines = [
        f"proven by the anchor {source}: event {result.anchored_seq} ({noted}) is still "
        "there unchanged, so no event up to it was removed, edited or re-hashed"
    ]
    after = result.head_seq - result.anchored_seq
    if after:
        lines.append(
            f"NOT proven: that no event after event {result.anchored_seq} was removed from the end "
            f"({after} event(s) are newer than the latest anchor)"
        )
    lines.append(
        "NOT proven: that the database and the anchor file were not both rewritten -- keep the "
        "anchor file where the database's users cannot write (SPINEWATCH_AUDIT_ANCHOR_FILE)"
    )
    return lines


def check_trail(
    *,
    use_anchor_file: bool = True,
    extra_anchor: tuple[int, str] | None = None,
    note_head: bool = True,
    using: str = "default",
) -> Proof:
    """Verify the trail with every anchor (see the module docstring)."""
    from django.db import connections

    from spinewatch.audit import triggers
    from spinewatch.audit.models import AuditEvent
    from spinewatch.audit.trail import verify

    path = anchor_path() if use_anchor_file else None
    anchors, problems = read_anchors(path) if path is not None else ([], [])
    proof = Proof(ok=False, warnings=[f"anchor file {p}" for p in problems])
    first = AuditEvent.objects.using(using).filter(seq=1).values_list("hash", flat=True).first()
    ours = [a for a in anchors if a.first == first]
    foreign = [a for a in anchors if a.first != first]
    connection = connections[using]
    missing = sorted(
        set(triggers.TRIGGER_NAMES.get(connection.vendor, ())) - set(triggers.installed(connection))
    )
    if missing:
        proof.warnings.append(
            f"the audit table is not append-only: trigger(s) {', '.join(missing)} missing "
            "(re-run the audit migrations)"
        )
    if foreign and not ours:
        proof.problem = (
            f"none of the {len(foreign)} anchor(s) in {path} belongs to this trail (its first "
            "event's hash differs, or it has no event any more): the trail was rewritten from "
            "its start or emptied -- or the anchor file is another database's (then move it "
            "aside)"
        )
        return proof
    if foreign:
        proof.warnings.append(
            f"{len(foreign)} anchor(s) in {path} belong to another trail (another database); "
            "ignored"
        )
    result = verify(anchor=extra_anchor, anchors=[(a.seq, a.hash) for a in ours], using=using)
    proof.n_events = result.n_events
    if not result.ok:
        proof.problem = (
            f"at event {result.first_bad_seq}: {result.problem} ({result.n_events} events intact "
            "before it)"
        )
        return proof
    proof.ok = True
    if result.head_seq is None:
        proof.statements.append("proven: nothing -- the trail is empty")
        return proof
    proof.head = f"{result.head_seq}:{result.head_hash}"
    proof.statements.append(
        f"proven: events 1 to {result.head_seq} are unaltered and in order (every hash "
        "recomputed, every link checked): none was edited, inserted, reordered or removed "
        "between them"
    )
    proof.statements += _anchor_statements(result, ours, path)
    fresh = note_head and path is not None and (not ours or ours[-1].seq != result.head_seq)
    if fresh and write_anchor(result.head_seq, str(result.head_hash), str(first), path=path):
        proof.noted = f"anchor noted: event {result.head_seq} in {path}"
    return proof
