"""``spinewatch dicom-listen [--host H] [--port P] [--ae-title AE]``: the DICOM storage SCP.

Accepts CT series (and vertebra SEGs) by C-STORE, matches them to patients by PatientID and
queues their analysis (see :mod:`spinewatch.pacs.scp`); runs until SIGTERM/SIGINT. Defaults come
from ``SPINEWATCH_DICOM_HOST``, ``SPINEWATCH_DICOM_PORT``, ``SPINEWATCH_DICOM_AE_TITLE``.
``spinewatch serve --dicom`` starts it beside the web server.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r}: expected 1 to 65535")
    return value


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dicom-listen",
        help="run the DICOM storage SCP (C-STORE of CT series from scanners and PACS)",
        description="Accept CT series by DICOM C-STORE, match them and queue their analysis.",
    )
    parser.add_argument("--host", default=None, help="address (SPINEWATCH_DICOM_HOST)")
    parser.add_argument("--port", type=_port, default=None, help="port (SPINEWATCH_DICOM_PORT)")
    parser.add_argument("--ae-title", default=None, help="AE title (SPINEWATCH_DICOM_AE_TITLE)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from spinewatch.cli._django import setup_django

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s [dicom] %(name)s: %(message)s"
    )
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    setup_django(migrate=True)
    from spinewatch.pacs.scp import StorageSCP

    scp = StorageSCP(ae_title=args.ae_title, host=args.host, port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    scp.start(block=False)
    try:
        stop.wait()
    finally:
        scp.stop()
    logging.getLogger("spinewatch.pacs").info("DICOM storage SCP stopped")
    return 0
