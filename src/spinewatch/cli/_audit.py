"""``spinewatch audit verify|show``: check the hash chain of the audit trail, list its events.

``spinewatch audit verify [--anchor SEQ:HASH]`` prints ``audit trail intact: N events`` and the
head (exit 0), or names the first bad event and what is wrong with it (exit 1); it warns on
stderr when the append-only triggers are missing.
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
    from django.db import connection

    from spinewatch.audit import triggers
    from spinewatch.audit.trail import verify

    result = verify(anchor=args.anchor)
    expected = triggers.TRIGGER_NAMES.get(connection.vendor, ())
    missing = sorted(set(expected) - set(triggers.installed(connection)))
    if missing:
        print(
            "spinewatch: warning: the audit table is not append-only: trigger(s) "
            f"{', '.join(missing)} missing (re-run the audit migrations)",
            file=sys.stderr,
        )
    if result.ok:
        print(f"audit trail intact: {result.n_events} events")
        if result.head_seq is not None:
            print(f"head: {result.head_seq}:{result.head_hash}")
        return 0
    print(
        f"audit trail BROKEN at event {result.first_bad_seq}: {result.problem} "
        f"({result.n_events} events intact before it)",
        file=sys.stderr,
    )
    return EXIT_BROKEN


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
