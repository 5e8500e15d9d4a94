"""``spinewatch audit verify|show``: check the hash chain of the audit trail, list its events.

``spinewatch audit verify [--anchor SEQ:HASH] [--no-anchor-file]`` recomputes every hash and link
and checks every anchor kept outside the database (:mod:`spinewatch.audit.anchor`: the anchor
file, written by each day's first event and by this command), then says what was PROVEN and
what was NOT: ``audit trail intact: N events``, the head, the anchored event, and the limits
(events after the latest anchor could be cut from the end; someone able to rewrite both the
database and the anchor file); after a successful check it notes the head in the anchor file.
Exit 0 when intact, 1 at the first bad event (named, with what is wrong) or when no anchor of
the file belongs to this trail; a warning on stderr when the append-only triggers are missing.
``spinewatch audit show [--patient STUDY_ID] [--limit N] [--json]`` lists the latest N events
(oldest first), all or those touching one patient; the listing is itself recorded as a ``view``
event (it shows identifiable values), naming the operating-system user.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

__all__ = ["add_parser", "run"]

EXIT_BROKEN = 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive whole number")
    return value


def _anchor(text: str) -> tuple[int, str]:
    seq, sep, digest = text.partition(":")
    digest = digest.strip().lower()
    if (
        not sep
        or not seq.strip().isdigit()
        or int(seq) < 1
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
    ):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected SEQ:HASH, e.g. 1042:<64 hex digits> as printed by 'audit verify'"
        )
    return int(seq), digest


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="verify or list the audit trail",
        description="Verify the audit trail's hash chain, or list its events.",
    )
    commands = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    check = commands.add_parser(
        "verify",
        help="recompute every hash and link; exit 1 at the first bad event",
        description="Recompute every event's hash and link. Prints 'audit trail intact: N "
        "events' (exit 0) or the first bad event and what is wrong (exit 1).",
    )
    check.add_argument(
        "--anchor",
        type=_anchor,
        metavar="SEQ:HASH",
        help="an event noted earlier (the 'head' of a previous run) that must still be there",
    )
    check.add_argument(
        "--no-anchor-file",
        action="store_true",
        help="neither read nor write the anchor file (SPINEWATCH_AUDIT_ANCHOR_FILE)",
    )
    check.set_defaults(run=run)
    show = commands.add_parser(
        "show",
        help="list the latest events",
        description="List the latest events, oldest first (recorded as a 'view' in the trail).",
    )
    show.add_argument("--patient", metavar="STUDY_ID", help="only events touching this patient")
    show.add_argument(
        "--limit", type=_positive_int, default=50, metavar="N", help="at most N events (50)"
    )
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    show.set_defaults(run=run)


def _line(event: Any) -> str:
    who = event.actor_username or "-"
    if event.actor_role:
        who += f" ({event.actor_role})"
    target = event.object_type or "-"
    if event.object_id:
        target += f" #{event.object_id}"
    parts = [
        f"{event.seq:>7}",
        event.at.strftime("%Y-%m-%d %H:%M:%S") + "Z",
        who,
        event.via,
        event.action,
        target,
    ]
    if event.patient_study_id:
        parts.append(f"patient {event.patient_study_id}")
    if event.changes:
        parts.append("fields: " + ", ".join(sorted(event.changes)))
    return "  ".join(parts)


def _json(event: Any) -> str:
    doc = event.document()
    doc["hash"] = event.hash
    return json.dumps(doc, sort_keys=True, ensure_ascii=False)


def _verify(args: argparse.Namespace) -> int:
    from spinewatch.audit.proof import check_trail

    proof = check_trail(use_anchor_file=not args.no_anchor_file, extra_anchor=args.anchor)
    for warning in proof.warnings:
        print(f"spinewatch: warning: {warning}", file=sys.stderr)
    if not proof.ok:
        print(f"audit trail BROKEN {proof.problem}", file=sys.stderr)
        return EXIT_BROKEN
    print(f"audit trail intact: {proof.n_events} events")
    if proof.head is not None:
        print(f"head: {proof.head}")
    for line in proof.statements:
        print(line)
    if proof.noted:
        print(proof.noted)
    return 0


def _show(args: argparse.Namespace) -> int:
    from spinewatch.audit.context import acting_as
    from spinewatch.audit.models import Action, AuditEvent
    from spinewatch.audit.trail import record

    events = AuditEvent.objects.order_by("-seq")
    if args.patient:
        events = events.filter(patient_study_id=args.patient)
    shown = list(events[: args.limit])[::-1]
    for event in shown:
        print(_json(event) if args.json else _line(event))
    with acting_as(getpass.getuser(), via="cli"):
        record(
            actor=None,
            action=Action.VIEW,
            object_type="audit.auditevent",
            object_id=None,
            patient_study_id=args.patient or None,
            detail={"command": "audit show", "limit": args.limit, "shown": len(shown)},
        )
    return 0


def run(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django()
    if args.audit_command == "verify":
        return _verify(args)
    return _show(args)
