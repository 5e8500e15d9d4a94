"""``spinewatch serve [--host 127.0.0.1] [--port 8000] [--workers N]``: the production server.

Steps: make sure a real secret key exists (``SPINEWATCH_SECRET_KEY`` or, outside debug, the key
kept in ``SPINEWATCH_DATA_DIR/secret_key``, created once with mode 0600); apply migrations;
collect static files into ``STATIC_ROOT`` (under the data directory; WhiteNoise serves them);
then start the scan-analysis worker(s) (``spinewatch worker``, ``--analysis-workers N`` child
processes, 1 by default; ``--no-worker`` when workers run elsewhere) and, with ``--dicom``, the
DICOM storage SCP (``spinewatch dicom-listen``), all SUPERVISED
(:class:`spinewatch.cli._supervisor.Supervisor`: a child that dies is restarted at once, and a
restarted worker re-queues its predecessor's job at once); and run gunicorn (sync workers) on
the Django WSGI application until SIGINT/SIGTERM. The children are stopped on the way out
(SIGTERM, then SIGKILL after 20 s: a worker's job goes back to the queue either way).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["add_parser", "default_workers", "run", "supervised_children"]

_DEV_KEY_MARK = "insecure"


def default_workers() -> int:
    """2 x cores + 1 (gunicorn's rule of thumb), at most 8."""
    return min(8, 2 * (os.cpu_count() or 1) + 1)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r}: expected 1 to 65535")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"workers {text!r}: expected 1 to 64")
    return value


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the web application (gunicorn; migrations and static files first)",
        description="Apply migrations, collect static files and serve SpineWatch with gunicorn.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="worker processes (default 2 x cores + 1, max 8)",
    )
    parser.add_argument(
        "--timeout", type=int, default=120, help="seconds before a silent worker is restarted"
    )
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="do not start the scan-analysis worker (run `spinewatch worker` elsewhere)",
    )
    parser.add_argument(
        "--analysis-workers",
        type=_workers,
        default=1,
        metavar="N",
        help="scan-analysis worker processes, supervised: restarted at once if one dies (1)",
    )
    parser.add_argument(
        "--dicom",
        action="store_true",
        help="also run the DICOM storage SCP (spinewatch dicom-listen, SPINEWATCH_DICOM_*)",
    )
    parser.set_defaults(run=run)


def supervised_children(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(name, spinewatch arguments) of each child process ``serve`` keeps alive."""
    children: list[tuple[str, list[str]]] = []
    if not getattr(args, "no_worker", False):
        n = getattr(args, "analysis_workers", 1) or 1
        children += [(f"analysis worker {i + 1}", ["worker"]) for i in range(n)]
    if getattr(args, "dicom", False):
        children.append(("DICOM listener", ["dicom-listen"]))
    return children


def _debug() -> bool:
    return os.environ.get("SPINEWATCH_DEBUG", "").lower() in {"1", "true", "yes", "on"}


def run(args: argparse.Namespace) -> int:
    from spinewatch.core.errors import InputError
    from spinewatch.web.security import ensure_secret_key

    if not _debug():
        data_dir = os.environ.get("SPINEWATCH_DATA_DIR", "spinewatch-data")
        os.environ["SPINEWATCH_SECRET_KEY"] = ensure_secret_key(data_dir)

    from spinewatch.cli._django import setup_django

    setup_django(migrate=True)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    if not settings.DEBUG and (not settings.SECRET_KEY or _DEV_KEY_MARK in settings.SECRET_KEY):
        raise InputError(
            "refusing to serve with the development secret key: set SPINEWATCH_SECRET_KEY "
            "(or unset it to use the key kept in the data directory)"
        )
    call_command("collectstatic", interactive=False, verbosity=0)
    connections.close_all()  # no database connection may be shared with forked workers

    from gunicorn.app.base import BaseApplication

    from spinewatch.web.wsgi import application

    options = {
        "bind": f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}",
        "workers": args.workers or default_workers(),
        "worker_class": "sync",
        "timeout": args.timeout,
        "graceful_timeout": 20,
        "accesslog": "-",
        "errorlog": "-",
        "proc_name": "spinewatch",
        "control_socket_disable": True,  # gunicorn >= 25.1 would open ~/.gunicorn/gunicorn.ctl
        "limit_request_line": 8190,
    }

    class SpineWatchServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    from spinewatch.cli._supervisor import Supervisor

    supervisor = Supervisor(supervised_children(args)).start()
    try:
        SpineWatchServer().run()
    finally:
        supervisor.stop()
    return 0
