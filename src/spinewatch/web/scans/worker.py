"""The worker: runs queued analysis jobs outside the web request (``spinewatch worker``).

One job (:func:`run_job`):

1. read the image (CT or MRI, with the job's ``modality`` and ``contrast_phase``) and the label
   map (:func:`spinewatch.imaging.io.load_study`, the first half of
   :func:`~spinewatch.imaging.analysis.analyze_files`; the volumes are kept for the picture
   instead of being read twice) -> progress 10 %;
2. :func:`~spinewatch.imaging.analysis.analyze` with ``progress(done, total)`` after each
   vertebra -> 10-85 %; the report gets ``scan.study_date`` (for comparisons with later scans);
   when the patient has an earlier analysed study (:func:`~spinewatch.web.scans.display.
   prior_study`), the report is compared with it and carries the comparison
   (:func:`spinewatch.imaging.compare.apply_comparison`: ``treat_signal`` per vertebra, the
   signal raising the level's risk), so the stored report, the findings and the worklist see
   it; a comparison that fails (a malformed prior report) is logged and noted on the job, the
   analysis is kept;
3. the curved sagittal picture (:func:`~spinewatch.imaging.render.render_sagittal`) next to the
   files, ``sagittal-<job>.png`` -> 95 % (a picture that cannot be drawn does not lose the
   analysis: the job ends done, saying so);
4. in ONE transaction: :func:`spinewatch.registry.services.store_analysis` (re-reading the
   study's version; retried if someone edited the study meanwhile; the study's modality is set
   from the report) and the job marked done -- conditional on the claim token, so a worker whose
   job was taken over rolls its result back.

An :class:`~spinewatch.core.errors.InputError` (unreadable file, grids that do not match, several
DICOM series, labels of no known convention, a header claiming more than the input limits...),
an operating-system error or a lack of memory fails the job with the same one-line message the
command line prints (:func:`spinewatch.core.errors.user_message`), the server's upload paths
replaced by the names the files were uploaded with. Any other exception is a bug: it fails the
job with a generic message and the traceback in the log. Registry writes are audited as the user who
asked for the analysis, ``via`` "system".

:func:`run_pending_jobs` (tests, ``spinewatch worker --once``) recovers stale jobs and runs what
is queued; :func:`run_worker` is the long-running loop with heartbeats and a graceful stop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.db import DatabaseError, close_old_connections, connection, transaction

from spinewatch.core.errors import InputError, user_message
from spinewatch.imaging.report import SpineReport
from spinewatch.web.scans import jobs
from spinewatch.web.scans.models import AnalysisJob, JobStatus
from spinewatch.web.scans.uploads import upload_dir

__all__ = [
    "GENERIC_FAILURE",
    "WorkerState",
    "WorkerStopping",
    "run_job",
    "run_pending_jobs",
    "run_worker",
]

logger = logging.getLogger(__name__)

GENERIC_FAILURE = (
    "The analysis failed because of an internal error (job {job}). The details are in the "
    "server log; please tell the administrator."
)


class WorkerStopping(BaseException):
    """Raised in the worker's main thread when it is asked to stop in the middle of a job."""


class _ClaimLost(Exception):
    """The job was recovered by another worker (this one was presumed dead)."""


def _friendly(message: str, names: dict[str, str]) -> str:
    """Replace server paths in ``message`` by the names the files were uploaded with."""
    for path, name in sorted(names.items(), key=lambda kv: -len(kv[0])):
        message = message.replace(path, name)
    return message


@contextlib.contextmanager
def _acting_for(job: AnalysisJob) -> Iterator[None]:
    from spinewatch.audit.context import acting_as

    who: Any = job.requested_by if job.requested_by_id else "analysis-worker"
    with acting_as(who, via="system"):
        yield


def _store(job: AnalysisJob, report: SpineReport, picture: str, note: str) -> None:
    from spinewatch.registry import services
    from spinewatch.registry.models import ImagingStudy, LevelCheck
    from spinewatch.web.notify.alerts import alert_new_high_risk, high_levels

    with transaction.atomic():
        for attempt in range(3):
            study = ImagingStudy.objects.get(pk=job.study_id)
            before = high_levels(study)
            shift = LevelCheck.objects.filter(study_id=job.study_id, pending=True).first()
            try:
                with transaction.atomic():
                    services.store_analysis(
                        study=study,
                        expected_version=study.version,
                        report=report,
                        renamed=shift.renamed if shift is not None else None,
                    )
                    if shift is not None:  # the re-analysis after a level shift is stored
                        services.finish_level_shift(study=study)
                    alert_new_high_risk(ImagingStudy.objects.get(pk=job.study_id), before)
                break
            except services.StaleEditError:
                if attempt == 2:
                    raise
        if not jobs.finish(job, status=JobStatus.DONE, message=note, picture_file=picture):
            raise _ClaimLost


def _with_prior(study: Any, report: SpineReport) -> tuple[SpineReport, str]:
    """``report`` compared with the patient's latest earlier analysed study, and a note (empty,
    or why the comparison could not be made)."""
    from spinewatch.imaging.compare import apply_comparison, compare_reports
    from spinewatch.web.scans.display import dated_report, prior_study

    prior = prior_study(study)
    if prior is None or not prior.report:
        return report, ""
    when = prior.study_date.isoformat()
    try:
        comparison = compare_reports(
            dated_report(prior),
            report,
            prior_source=f"the study of {when}",
            current_source=f"the study of {study.study_date.isoformat()}",
        )
        return apply_comparison(report, comparison), ""
    except InputError as exc:
        logger.warning("study %s: comparison with study %s failed: %s", study.pk, prior.pk, exc)
        return report, f"Analysed; not compared with the study of {when}: {exc}"


def _segment(ct_path: Any, job: AnalysisJob) -> tuple[Any, Any, dict[str, Any]]:
    """Read the CT and segment it with the segmenter the ``SPINEWATCH_SEGMENTER`` setting names;
    returns the CT, the label map (TotalSegmentator ids) and the report's ``segmentation``
    record (segmenter, version, level evidence)."""
    from django.conf import settings

    from spinewatch.imaging.io import load_ct
    from spinewatch.imaging.segmentation import get_segmenter

    ct = load_ct(ct_path, series_uid=job.series_uid or None)
    result = get_segmenter(settings.SPINEWATCH_SEGMENTER).segment(ct, ct_path=ct_path)
    return ct, result.labels, result.to_json_dict()


def _analyse(job: AnalysisJob, lost: threading.Event) -> None:
    from spinewatch.imaging.analysis import analyze
    from spinewatch.imaging.io import GridMismatchError, load_study, requested_acquisition
    from spinewatch.imaging.render import render_sagittal
    from spinewatch.imaging.volume import GeometryError
    from spinewatch.registry.models import ImagingStudy

    directory = upload_dir(job.upload_dir)
    ct_path = directory / job.ct_file if job.ct_file else None
    labels_path = directory / job.labels_file if job.labels_file else None

    def step(percent: int, message: str) -> None:
        if lost.is_set() or not jobs.set_progress(job, percent, message):
            raise _ClaimLost

    segmentation = None
    convention = job.convention
    if labels_path is None:  # a CT alone: segment it first
        step(2, "Reading the CT")
        ct, labels, segmentation = _segment(ct_path, job)
        convention = "totalsegmentator"
    else:
        step(2, "Reading the scan and the label map")
        ct, labels = load_study(
            ct_path,
            labels_path,
            series_uid=job.series_uid or None,
            modality=job.modality,
            contrast_phase=job.contrast_phase,
            convention=job.convention,
        )
    step(10, "Measuring the vertebrae")

    def progress(done: int, total: int) -> None:
        step(10 + (75 * done) // max(total, 1), f"Measured {done} of {total} vertebrae")

    try:
        result = analyze(
            ct,
            labels,
            convention=convention,
            progress=progress,
            ct_path=job.ct_name or None,
            labels_path=job.labels_name or None,
            acquisition=None
            if ct is not None
            else requested_acquisition(job.modality, job.contrast_phase),
        )
    except GeometryError as exc:
        raise GridMismatchError(str(exc)) from exc
    study = ImagingStudy.objects.get(pk=job.study_id)
    report = replace(
        result,
        scan=result.scan.with_fields(study_date=study.study_date.isoformat()),
        extra={} if segmentation is None else {"segmentation": segmentation},
    )
    report, compare_note = _with_prior(study, report)

    step(85, "Drawing the sagittal picture")
    picture, note = f"sagittal-{job.pk}.png", compare_note
    temporary = directory / f"sagittal-{job.pk}.tmp.png"
    try:
        render_sagittal(ct, labels, report, temporary, convention=report.scan.labels_convention)
        os.replace(temporary, directory / picture)
    except Exception:
        logger.exception("job %s: the sagittal picture could not be drawn", job.pk)
        temporary.unlink(missing_ok=True)
        picture = ""
        note = "Analysed; the sagittal picture could not be drawn (see the log)."
        note += f" {compare_note}" if compare_note else ""
    del ct, labels
    step(95, "Storing the results")
    _store(job, report, picture, note)


def run_job(job: AnalysisJob, *, heartbeat_s: float | None = None) -> AnalysisJob:
    """Run one CLAIMED job to its end (done or failed); returns it, re-read.

    ``heartbeat_s``: beat from a thread every so many seconds (the long-running worker); None
    relies on the progress steps alone (tests, short jobs). :class:`WorkerStopping` puts the
    job back in the queue and propagates.
    """
    directory = upload_dir(job.upload_dir)
    names = {str(directory / job.labels_file): job.labels_name} if job.labels_file else {}
    if job.ct_file:
        names[str(directory / job.ct_file)] = job.ct_name
    names[str(directory)] = "the uploaded files"
    lost = threading.Event()
    beating = (
        jobs.Heartbeat(job, heartbeat_s, on_lost=lost.set)
        if heartbeat_s
        else contextlib.nullcontext()
    )
    try:
        with beating, _acting_for(job):
            _analyse(job, lost)
        logger.info("job %s done", job.pk)
    except WorkerStopping:
        try:
            jobs.release(
                job,
                reason="The worker was stopped while analysing this scan; the analysis was "
                "queued again.",
            )
        except Exception:  # the job will be recovered as stale instead
            logger.exception("job %s could not be released", job.pk)
        raise
    except _ClaimLost:
        logger.warning("job %s was taken over by another worker; result discarded", job.pk)
    except Exception as exc:
        message = user_message(exc)  # the very line the command line prints for it
        if message is None:
            logger.exception("job %s failed with an internal error", job.pk)
            jobs.finish(job, status=JobStatus.FAILED, message=GENERIC_FAILURE.format(job=job.pk))
        else:
            logger.info("job %s failed: %s", job.pk, message)
            jobs.finish(job, status=JobStatus.FAILED, message=_friendly(message, names))
    return AnalysisJob.objects.get(pk=job.pk)


def run_pending_jobs(
    *,
    max_jobs: int | None = None,
    worker: str | None = None,
    stale_after_s: float = jobs.DEFAULT_STALE_AFTER_S,
    heartbeat_s: float | None = None,
) -> int:
    """Recover stale jobs, then run queued jobs until none is left (or ``max_jobs``).

    Returns the number of jobs run (done or failed).
    """
    name = worker or jobs.worker_name()
    jobs.recover_dead_workers()
    jobs.recover_stale_jobs(stale_after_s=stale_after_s)
    count = 0
    while max_jobs is None or count < max_jobs:
        job = jobs.claim_next(worker=name)
        if job is None:
            break
        run_job(job, heartbeat_s=heartbeat_s)
        count += 1
    return count


class WorkerState:
    """What the signal handler needs: the stop flag and whether a job is running."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.busy = False
        self.interrupted = False

    def request_stop(self, *_: object) -> None:
        """Signal handler: stop polling; interrupt a running job (it is queued again)."""
        self.stop.set()
        if self.busy and not self.interrupted:
            self.interrupted = True
            raise WorkerStopping


def run_worker(
    *,
    state: WorkerState | None = None,
    poll_s: float = 1.0,
    heartbeat_s: float = jobs.DEFAULT_HEARTBEAT_S,
    stale_after_s: float = jobs.DEFAULT_STALE_AFTER_S,
    max_jobs: int | None = None,
) -> int:
    """Poll for jobs until ``state.stop`` is set (or ``max_jobs`` ran); returns jobs run.

    Jobs of dead workers on this machine and stale jobs are recovered on start and on every
    poll. Database errors (a restarting server)
    are logged and retried after ``poll_s``.
    """
    if not 0 < heartbeat_s * 2 <= stale_after_s:
        raise InputError(
            f"heartbeat {heartbeat_s} s, stale-after {stale_after_s} s: expected a positive "
            "heartbeat at most half the stale-after time"
        )
    state = state or WorkerState()
    name = jobs.worker_name()
    logger.info(
        "worker %s started (poll %.1f s, heartbeat %.1f s, stale after %.0f s)",
        name,
        poll_s,
        heartbeat_s,
        stale_after_s,
    )
    count = 0
    last_notify = 0.0
    try:
        while not state.stop.is_set() and (max_jobs is None or count < max_jobs):
            close_old_connections()
            try:
                jobs.recover_dead_workers()  # a sibling killed on this machine: at once
                jobs.recover_stale_jobs(stale_after_s=stale_after_s)
                job = jobs.claim_next(worker=name)
            except DatabaseError:
                logger.exception("worker %s: database unavailable; retrying", name)
                connection.close()
                state.stop.wait(poll_s)
                continue
            if job is None:
                last_notify = _notify_tick(last_notify)
                state.stop.wait(poll_s)
                continue
            state.busy = True
            try:
                run_job(job, heartbeat_s=heartbeat_s)
            finally:
                state.busy = False
            count += 1
    except WorkerStopping:
        logger.info("worker %s: stopped during a job (queued again)", name)
    finally:
        connection.close()
    logger.info("worker %s stopped after %d job(s)", name, count)
    return count


#: Seconds between two passes over the visits for reminders and overdue alerts.
NOTIFY_SCAN_S = 300.0


def _notify_tick(last_scan: float) -> float:
    """Send the outbox's due messages (every :data:`NOTIFY_SCAN_S` queue reminders and overdue
    alerts first) and warm the cohort table after a change of the registry. Returns the time
    of the last scan. A database failure is logged, never fatal."""
    from spinewatch.web.notify.alerts import queue_overdue_alerts, queue_reminders
    from spinewatch.web.notify.outbox import send_due

    now = time.monotonic()
    try:
        if now - last_scan >= NOTIFY_SCAN_S:
            with transaction.atomic():
                queue_reminders()
                queue_overdue_alerts()
            last_scan = now
        send_due()
        from spinewatch.web.cohort.cache import warm

        warm()
    except DatabaseError:
        logger.exception("outbox: database unavailable; retrying at the next poll")
    return last_scan


def wait_for(job_id: int, *, timeout_s: float = 60.0, poll_s: float = 0.2) -> AnalysisJob:
    """Wait until a job is done or failed (tests and scripts); returns it."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = AnalysisJob.objects.get(pk=job_id)
        if not job.active or time.monotonic() > deadline:
            return job
        time.sleep(poll_s)


def picture_path(job: AnalysisJob) -> Path | None:
    """The sagittal PNG of a done job, if it exists."""
    if not job.picture_file:
        return None
    path = upload_dir(job.upload_dir) / job.picture_file
    return path if path.is_file() else None
