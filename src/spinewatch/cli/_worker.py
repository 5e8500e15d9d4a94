"""``spinewatch worker``: run queued scan analyses (started by ``spinewatch serve`` too).

Runs until SIGTERM/SIGINT. A job interrupted by the signal goes back to the queue at once; a job
whose worker was killed outright (SIGKILL, out of memory, power cut) is recovered by any worker
once its heartbeat is older than ``--stale-after`` seconds. ``--once`` runs what is queued and
exits (for cron or tests).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds, 0 < s <= 86400")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number, 1 or more")
    return value


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run queued scan analyses (persisted jobs; recovers jobs of vanished workers)",
        description="Run the analysis jobs queued by scan uploads until stopped.",
    )
    parser.add_argument("--poll", type=_positive, default=1.0, help="seconds between polls (1)")
    parser.add_argument(
        "--heartbeat", type=_positive, default=5.0, help="seconds between heartbeats (5)"
    )
    parser.add_argument(
        "--stale-after",
        type=_positive,
        default=60.0,
        help="seconds without heartbeat after which a running job is recovered (60)",
    )
    parser.add_argument("--max-jobs", type=_count, default=None, help="stop after N jobs")
    parser.add_argument("--once", action="store_true", help="run the jobs queued now, then exit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import signal

    from spinewatch.cli._django import setup_django

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s [worker] %(name)s: %(message)s"
    )
    setup_django(migrate=True)
    from spinewatch.web.scans.worker import WorkerState, run_pending_jobs, run_worker

    if args.once:
        count = run_pending_jobs(
            max_jobs=args.max_jobs, stale_after_s=args.stale_after, heartbeat_s=args.heartbeat
        )
        logging.getLogger("spinewatch.worker").info("ran %d job(s)", count)
        return 0
    state = WorkerState()
    signal.signal(signal.SIGTERM, state.request_stop)
    signal.signal(signal.SIGINT, state.request_stop)
    run_worker(
        state=state,
        poll_s=args.poll,
        heartbeat_s=args.heartbeat,
        stale_after_s=args.stale_after,
        max_jobs=args.max_jobs,
    )
    return 0
