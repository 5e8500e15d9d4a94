"""``spinewatch pacs pull|push|poll|unmatched|assign``: SpineWatch and the PACS (DICOMweb).

Contract (used by acceptance checks; extend it, do not change it):

- ``spinewatch pacs pull STUDY_UID --patient STUDY_ID [--labels LABELS] [--wait]``: retrieve the
  study, store it for that patient (its PatientID must be the patient's hospital number), queue
  the analysis; ``--wait`` waits until the analysis ends (running it here when no worker takes
  it). The scan id is the last word printed.
- ``spinewatch pacs push SCAN_ID``: SR + SEG (+ the picture) into the same study in the PACS.
- ``spinewatch pacs poll``: one pass of the watch for patients whose scan is due.

Also ``pacs unmatched`` (the reconciliation list), ``pacs assign STUDY_UID --patient
STUDY_ID [--labels LABELS]`` (reconcile: a person says whose study it is; analysis queued) and
``pacs import DIR`` (the DICOM files of a folder received as if sent by C-STORE).
The PACS is ``SPINEWATCH_DICOMWEB_URL`` (see ``spinewatch.web._pacs_settings``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

_CONVENTIONS = ("auto", "totalsegmentator", "verse")
_WAIT_FOR_WORKER_S = 3.0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pacs",
        help="pull CT studies from the PACS, push results back, watch for due patients",
        description="SpineWatch and the PACS over DICOMweb (SPINEWATCH_DICOMWEB_URL).",
    )
    sub = parser.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)
    pull = sub.add_parser("pull", help="retrieve one study and queue its analysis")
    pull.add_argument("study_uid", metavar="STUDY_UID", help="the StudyInstanceUID")
    pull.add_argument("--patient", required=True, metavar="STUDY_ID", help="the patient (study id)")
    pull.add_argument("--labels", type=Path, help="vertebra label map (NIfTI) of the CT")
    pull.add_argument("--convention", choices=_CONVENTIONS, default="auto")
    pull.add_argument("--wait", action="store_true", help="wait until the analysis has ended")
    pull.add_argument("--timeout", type=float, default=1800.0, help="seconds --wait waits (1800)")
    pull.set_defaults(run=run)
    push = sub.add_parser("push", help="store the results of a scan into its study in the PACS")
    push.add_argument("scan_id", metavar="SCAN_ID", type=int, help="the scan (imaging study) id")
    push.set_defaults(run=run)
    poll = sub.add_parser("poll", help="one pass of the watch for patients whose scan is due")
    poll.set_defaults(run=run)
    unmatched = sub.add_parser("unmatched", help="studies awaiting reconciliation")
    unmatched.set_defaults(run=run)
    assign = sub.add_parser("assign", help="reconcile: assign a received study to a patient")
    assign.add_argument("study_uid", metavar="STUDY_UID")
    assign.add_argument("--patient", required=True, metavar="STUDY_ID")
    assign.add_argument("--labels", type=Path, help="vertebra label map (NIfTI) of the CT")
    assign.add_argument("--convention", choices=_CONVENTIONS, default="auto")
    assign.set_defaults(run=run)
    importer = sub.add_parser(
        "import", help="receive the DICOM files of a folder (a CD, a kept C-STORE) as if sent"
    )
    importer.add_argument("folder", type=Path, metavar="DIR")
    importer.set_defaults(run=run)


def _patient(study_id: str) -> Any:
    from spinewatch.registry.errors import NotFoundError
    from spinewatch.registry.models import Patient

    patient = Patient.objects.filter(study_id=study_id.strip()).first()
    if patient is None:
        raise NotFoundError(f"--patient {study_id!r}: no patient has that study id")
    return patient


def _labels(path: Path | None) -> Path | None:
    if path is not None and not path.is_file():
        from spinewatch.core.errors import InputError

        raise InputError(f"--labels {path}: file not found")
    return path


def _wait(job_id: int, timeout_s: float) -> Any:
    """Wait for the job; claim and run it here when no worker has taken it after a moment."""
    from spinewatch.web.scans import jobs
    from spinewatch.web.scans.models import AnalysisJob, JobStatus
    from spinewatch.web.scans.worker import run_job

    started = time.monotonic()
    while True:
        job = AnalysisJob.objects.get(pk=job_id)
        if not job.active:
            return job
        if job.status == JobStatus.QUEUED and time.monotonic() - started >= _WAIT_FOR_WORKER_S:
            mine = jobs.claim_next(worker=jobs.worker_name(), job_id=job_id)
            if mine is not None:
                return run_job(mine)
        if time.monotonic() - started > timeout_s:
            from spinewatch.core.errors import InputError

            raise InputError(f"analysis job {job_id}: not finished after {timeout_s:.0f} s")
        time.sleep(0.5)


def _pull(args: argparse.Namespace) -> int:
    from spinewatch.pacs.dicomweb import client_from_settings
    from spinewatch.pacs.pull import pull_study

    patient = _patient(args.patient)
    received = pull_study(
        client_from_settings(),
        args.study_uid,
        patient=patient,
        labels=_labels(args.labels),
        convention=args.convention,
    )
    row = received.study
    print(f"study {row.study_instance_uid}: {row.message}")
    for series in row.series:
        mark = "*" if series.get("chosen") else " "
        print(f" {mark} {series.get('modality')} {series.get('uid')} {series.get('note', '')}")
    if row.imaging_study_id is None:
        from spinewatch.pacs.errors import PacsError

        raise PacsError(f"study {row.study_instance_uid} stored but not analysed: {row.message}")
    if args.wait and received.job_id is not None:
        job = _wait(received.job_id, args.timeout)
        if job.status != "done":
            from spinewatch.core.errors import InputError

            raise InputError(f"scan {row.imaging_study_id}: analysis failed: {job.message}")
        print(f"analysis done ({job.message or 'ok'})")
    print(f"scan {row.imaging_study_id}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from spinewatch.pacs.dicomweb import client_from_settings
    from spinewatch.pacs.push import push_results
    from spinewatch.registry.errors import NotFoundError
    from spinewatch.registry.models import ImagingStudy

    study = ImagingStudy.objects.filter(pk=args.scan_id).first()
    if study is None:
        raise NotFoundError(f"SCAN_ID {args.scan_id}: no such scan")
    summary = push_results(client_from_settings(), study)
    for kind, series, sop in summary.objects:
        print(f"{kind} series {series} instance {sop}")
    print(summary.describe())
    return 0


def _poll(args: argparse.Namespace) -> int:
    from spinewatch.pacs.dicomweb import client_from_settings
    from spinewatch.pacs.pull import poll_once

    summary = poll_once(client_from_settings())
    print(summary.describe())
    return 0


def _unmatched(args: argparse.Namespace) -> int:
    from spinewatch.registry.models import ReceivedStudy

    rows = ReceivedStudy.objects.filter(status="unmatched").order_by("received_at")
    for row in rows:
        print(
            f"{row.study_instance_uid}  PatientID {row.dicom_patient_id!r}  "
            f"{row.study_date or '-'}  {row.message}"
        )
    print(f"{rows.count()} study(ies) awaiting reconciliation")
    return 0


def _assign(args: argparse.Namespace) -> int:
    from spinewatch.pacs.receive import analyse_received_study
    from spinewatch.registry import services
    from spinewatch.registry.errors import NotFoundError
    from spinewatch.registry.models import ReceivedStudy

    row = ReceivedStudy.objects.filter(study_instance_uid=args.study_uid).first()
    if row is None:
        raise NotFoundError(f"STUDY_UID {args.study_uid}: not received")
    row = services.assign_received_study(
        received=row, patient=_patient(args.patient), expected_version=row.version
    )
    result = analyse_received_study(row, labels=_labels(args.labels), convention=args.convention)
    print(f"study {row.study_instance_uid}: {result.study.message}")
    if result.study.imaging_study_id is not None:
        print(f"scan {result.study.imaging_study_id}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from collections import defaultdict

    from spinewatch.core.errors import InputError
    from spinewatch.pacs.receive import read_dicom_headers, receive_study

    if not args.folder.is_dir():
        raise InputError(f"DIR {args.folder}: not a folder")
    files = sorted(p for p in args.folder.rglob("*") if p.is_file())
    by_study: dict[str, list[Path]] = defaultdict(list)
    for path, ds in read_dicom_headers(files):
        by_study[str(ds.get("StudyInstanceUID", ""))].append(path)
    if not by_study:
        raise InputError(f"DIR {args.folder}: no DICOM file found")
    failed = 0
    for study_uid, paths in sorted(by_study.items()):
        try:
            result = receive_study(paths, via="c_store", calling_ae="IMPORT")
        except InputError as exc:
            failed += 1
            print(f"study {study_uid}: not taken: {exc}")
            continue
        scan = f" (scan {result.study.imaging_study_id})" if result.study.imaging_study_id else ""
        print(f"study {study_uid}: {result.study.message}{scan}")
    return 2 if failed == len(by_study) else 0


def run(args: argparse.Namespace) -> int:
    import logging

    from spinewatch.audit.context import acting_as
    from spinewatch.cli._django import setup_django

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    setup_django(migrate=True)
    action = {
        "pull": _pull,
        "push": _push,
        "poll": _poll,
        "unmatched": _unmatched,
        "assign": _assign,
        "import": _import,
    }[args.pacs_command]
    import getpass

    with acting_as(getpass.getuser(), via="cli"):
        return action(args)
