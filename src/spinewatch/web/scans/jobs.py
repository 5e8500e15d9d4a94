"""A small database-backed job queue for scan analyses: persisted, recoverable, with progress.

Why not django-tasks (pinned at 0.12.0)?  Checked before deciding:

- django-tasks 0.12.0 no longer ships a database backend or ``db_worker`` at all: 0.12 turned the
  package into a pure backport of ``django.tasks`` (dummy and immediate backends only) and moved
  the database backend to a separate package, django-tasks-db (RealOrangeOne/django-tasks PR #240,
  "Extract RQ and DB backends into separate packages"). Using it would mean a new dependency.
- Even that database backend cannot recover a task whose worker died: the row stays RUNNING for
  ever ("Unclean exits of the worker leave tasks in limbo", RealOrangeOne/django-tasks-db issue 5,
  open; django-tasks issue 46), and a task result has no progress field.

Recovery and progress are exactly what the scans page needs, so the queue is this module: the
:class:`~spinewatch.web.scans.models.AnalysisJob` row is the job, and these functions move it:

- **claim** (:func:`claim_next`): a conditional ``UPDATE ... SET status='running' WHERE id = %s
  AND status = 'queued'``; only the worker whose UPDATE changed one row owns the job. On
  PostgreSQL (READ COMMITTED) a second concurrent UPDATE waits for the first to commit and then
  re-checks the WHERE against the new row, so it changes nothing; SQLite serialises writers, so
  the same holds. No two workers ever run the same job. Each claim gets a fresh ``claim_token``.
- **heartbeat** (:class:`Heartbeat`, :func:`beat`, :func:`set_progress`): while running, the
  worker refreshes ``heartbeat_at`` (a thread, every few seconds, plus each progress step).
- **recovery** (:func:`recover_stale_jobs`, called when a worker starts and on every poll): a
  running job whose heartbeat is older than ``stale_after_s`` lost its worker (killed, out of
  memory, machine restarted); it is queued again, or marked failed with a clear message once it
  has used up ``max_attempts`` (a job that kills its worker must not loop for ever).
- **fencing**: progress, results and releases are conditional on the claim token, so a worker
  that was presumed dead and wakes up cannot overwrite the newer attempt; its result is rolled
  back (see :mod:`spinewatch.web.scans.worker`).
- **graceful stop** (:func:`release`): a worker asked to stop puts its job back in the queue at
  once, without counting the attempt.
- **dead workers** (:func:`recover_dead_workers`, called with the stale recovery): a running job
  whose worker process -- on THIS machine (same host name and boot), named in the job's
  ``worker`` column -- no longer exists is re-queued at once, without waiting for its heartbeat
  to go stale; ``spinewatch serve`` restarts a dead worker at once (:mod:`spinewatch.cli.
  _supervisor`), and the new worker's first act is this recovery. A process id reused by an
  unrelated process merely leaves the job to the heartbeat rule.

Delivery is at-least-once: an analysis may run twice (a worker that died after storing the
report but before marking the job done), which is harmless because storing an analysis replaces
the previous one. Jobs are processed oldest first.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from spinewatch.core.errors import InputError
from spinewatch.web.scans.models import AnalysisJob, JobStatus
from spinewatch.web.scans.uploads import StoredUpload, upload_dir

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_STALE_AFTER_S",
    "Heartbeat",
    "JobError",
    "RecoverySummary",
    "beat",
    "claim_next",
    "enqueue_analysis",
    "finish",
    "latest_job",
    "recover_dead_workers",
    "recover_stale_jobs",
    "release",
    "rerun_analysis",
    "set_progress",
    "worker_name",
]

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 5.0
"""Seconds between heartbeats of a running job."""
DEFAULT_STALE_AFTER_S = 60.0
"""A running job without a heartbeat for this long has lost its worker."""
DEFAULT_MAX_ATTEMPTS = 3
"""Claims before a job whose worker keeps vanishing is marked failed."""


class JobError(InputError):
    """A job that cannot be queued (one already queued or running; no uploaded files)."""


def _boot_id() -> str:
    """The first 8 characters of this boot's id (Linux), else "": a pid names a process only
    within one boot of one machine."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def worker_name() -> str:
    """``host:pid:random:boot`` -- unique per worker process, readable in the job row."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{_boot_id()}"


def _local_pid(worker: str) -> int | None:
    """The process id of a worker name of THIS machine and boot, else None."""
    parts = worker.rsplit(":", 3)
    if len(parts) != 4 or parts[0] != socket.gethostname()[:120] or parts[3] != _boot_id():
        return None
    try:
        pid = int(parts[1])
    except ValueError:
        return None
    return pid if pid > 0 else None


def _process_gone(pid: int) -> bool:
    """Is process ``pid`` gone (or a zombie waiting to be reaped)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def latest_job(study_id: int) -> AnalysisJob | None:
    """The most recent job of an imaging study (any status), or None."""
    return AnalysisJob.objects.filter(study_id=study_id).order_by("-created_at", "-id").first()


def _check_convention(convention: str) -> str:
    from spinewatch.core.conventions import LabelConvention

    if convention == "auto":
        return convention
    try:
        return LabelConvention(convention).value
    except ValueError:
        names = ", ".join(["auto", *(c.value for c in LabelConvention)])
        raise JobError(f"labels convention {convention!r}: expected one of {names}") from None


_MODALITIES = ("auto", "ct", "mr")
_PHASES = ("auto", "native", "arterial", "portal-venous", "delayed", "unknown")


def _check_acquisition(modality: str, contrast_phase: str) -> tuple[str, str]:
    modality = (modality or "auto").strip().lower()
    phase = (contrast_phase or "auto").strip().lower().replace("_", "-")
    if modality not in _MODALITIES:
        raise JobError(f"modality {modality!r}: expected one of {', '.join(_MODALITIES)}")
    if phase not in _PHASES:
        raise JobError(f"contrast phase {phase!r}: expected one of {', '.join(_PHASES)}")
    if modality == "mr" and phase not in ("auto", "native"):
        raise JobError(f"contrast phase {phase!r} is a CT phase; an MRI (modality mr) has none")
    return modality, phase


def enqueue_analysis(
    *,
    study_id: int,
    upload: StoredUpload,
    convention: str = "auto",
    series_uid: str = "",
    requested_by: object = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    modality: str = "auto",
    contrast_phase: str = "auto",
) -> AnalysisJob:
    """Queue the analysis of a study's uploaded files; refuses while one is queued or running.

    ``modality`` (auto/ct/mr) and ``contrast_phase`` (auto/native/arterial/portal-venous/
    delayed/unknown) are handed to :func:`spinewatch.imaging.io.load_study` by the worker.
    """
    convention = _check_convention(convention)
    modality, contrast_phase = _check_acquisition(modality, contrast_phase)
    if not 1 <= max_attempts <= 20:
        raise JobError(f"max_attempts {max_attempts!r}: expected 1 to 20")
    with transaction.atomic():
        busy = AnalysisJob.objects.filter(
            study_id=study_id, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
        ).exists()
        if busy:
            raise JobError(
                f"imaging study {study_id}: an analysis is already queued or running; wait for "
                "it to finish before starting another"
            )
        job = AnalysisJob.objects.create(
            study_id=study_id,
            requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            upload_dir=upload.dir_name,
            ct_file=upload.ct_file,
            labels_file=upload.labels_file,
            ct_name=upload.ct_name,
            labels_name=upload.labels_name,
            convention=convention,
            series_uid=series_uid.strip(),
            max_attempts=max_attempts,
            modality=modality,
            contrast_phase=contrast_phase,
        )
    logger.info("queued %s", job)
    return job


def rerun_analysis(*, study_id: int, requested_by: object = None) -> AnalysisJob:
    """Queue a new analysis of the files of the study's latest job (same convention, series,
    modality and contrast phase)."""
    previous = latest_job(study_id)
    kept = (previous.labels_file or previous.ct_file) if previous is not None else ""
    if previous is None or not kept or not (upload_dir(previous.upload_dir) / kept).is_file():
        raise JobError(
            f"imaging study {study_id}: no uploaded files to analyse again (the study was "
            "registered without files); upload the CT and label map instead"
        )
    upload = StoredUpload(
        previous.upload_dir,
        previous.ct_file,
        previous.labels_file,
        previous.ct_name,
        previous.labels_name,
    )
    return enqueue_analysis(
        study_id=study_id,
        upload=upload,
        convention=previous.convention,
        series_uid=previous.series_uid,
        requested_by=requested_by,
        max_attempts=previous.max_attempts,
        modality=previous.modality,
        contrast_phase=previous.contrast_phase,
    )


def claim_next(*, worker: str, job_id: int | None = None) -> AnalysisJob | None:
    """Take the oldest queued job for ``worker`` (race-free, see the module doc); None if none.

    ``job_id``: take that job only (a command that waits for its own job and finds no worker
    running claims it itself; whoever claims first runs it)."""
    queued = AnalysisJob.objects.filter(status=JobStatus.QUEUED)
    if job_id is not None:
        queued = queued.filter(pk=job_id)
    candidates = list(queued.order_by("created_at", "id").values_list("pk", flat=True)[:20])
    for pk in candidates:
        token = uuid.uuid4().hex
        now = timezone.now()
        won = AnalysisJob.objects.filter(pk=pk, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING,
            worker=worker[:200],
            claim_token=token,
            attempts=F("attempts") + 1,
            started_at=now,
            heartbeat_at=now,
            finished_at=None,
            progress_pct=0,
            message="",
        )
        if won == 1:
            job = AnalysisJob.objects.get(pk=pk)
            logger.info("%s claimed %s (attempt %d)", worker, job, job.attempts)
            return job
    return None


def _mine(job: AnalysisJob) -> object:
    return AnalysisJob.objects.filter(
        pk=job.pk, status=JobStatus.RUNNING, claim_token=job.claim_token
    )


def beat(job: AnalysisJob) -> bool:
    """Refresh the heartbeat; False when the job is no longer this claim's (recovered)."""
    return bool(_mine(job).update(heartbeat_at=timezone.now()))  # type: ignore[attr-defined]


def set_progress(job: AnalysisJob, percent: int, message: str | None = None) -> bool:
    """Store progress (0-100, never backwards) and a heartbeat; False when no longer ours."""
    percent = max(0, min(100, int(percent)))
    changes: dict[str, object] = {"progress_pct": percent, "heartbeat_at": timezone.now()}
    if message is not None:
        changes["message"] = message
    updated = _mine(job).filter(progress_pct__lte=percent).update(**changes)  # type: ignore[attr-defined]
    if updated:
        job.progress_pct = percent
    return bool(updated)


def finish(job: AnalysisJob, *, status: str, message: str = "", picture_file: str = "") -> bool:
    """Mark the claimed job done or failed; False when the claim was lost meanwhile."""
    if status not in (JobStatus.DONE, JobStatus.FAILED):
        raise ValueError(f"status {status!r}: expected 'done' or 'failed'")
    changes: dict[str, object] = {
        "status": status,
        "message": message,
        "finished_at": timezone.now(),
        "claim_token": "",
    }
    if status == JobStatus.DONE:
        changes["progress_pct"] = 100
        changes["picture_file"] = picture_file
    updated = bool(_mine(job).update(**changes))  # type: ignore[attr-defined]
    if updated:
        job.status = status
        job.message = message
    else:
        logger.warning("%s: claim %s lost before it finished", job, job.claim_token)
    return updated


def release(job: AnalysisJob, *, reason: str) -> bool:
    """Put a claimed job back in the queue without counting the attempt (graceful stop)."""
    updated = _mine(job).update(  # type: ignore[attr-defined]
        status=JobStatus.QUEUED,
        claim_token="",
        worker="",
        progress_pct=0,
        attempts=F("attempts") - 1,
        message=reason,
    )
    if updated:
        logger.info("released %s: %s", job, reason)
    return bool(updated)


@dataclass(frozen=True)
class RecoverySummary:
    """Jobs found running without a live worker: ids queued again and ids marked failed."""

    requeued: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()


_RUNNING_FIELDS = ("pk", "claim_token", "attempts", "max_attempts", "worker", "heartbeat_at")


def _requeue_or_fail(rows: list[tuple], now: dt.datetime, what: str) -> RecoverySummary:  # type: ignore[type-arg]
    """Requeue (or fail, past ``max_attempts``) running jobs that lost their worker; ``what``
    says how it was found (``stopped responding``/``ended``), for the job's message."""
    requeued: list[int] = []
    failed: list[int] = []
    for pk, token, attempts, max_attempts, worker, heartbeat in rows:
        row = AnalysisJob.objects.filter(pk=pk, status=JobStatus.RUNNING, claim_token=token)
        seen = heartbeat.isoformat(timespec="seconds") if heartbeat else "never"
        if attempts >= max_attempts:
            message = (
                f"The analysis was interrupted {attempts} times: its worker stopped while running "
                f"it (last sign of life {seen}), perhaps for lack of memory. It was not tried "
                "again; re-run the analysis, and tell the administrator if it happens again."
            )
            if row.update(
                status=JobStatus.FAILED, claim_token="", finished_at=now, message=message
            ):
                failed.append(pk)
                logger.error("job %s failed: worker %s vanished %d times", pk, worker, attempts)
        else:
            message = (
                f"The worker analysing this scan {what} (last sign of life {seen}); "
                f"the analysis was queued again (attempt {attempts + 1} of {max_attempts})."
            )
            if row.update(
                status=JobStatus.QUEUED, claim_token="", worker="", progress_pct=0, message=message
            ):
                requeued.append(pk)
                logger.warning("job %s requeued: worker %s %s", pk, worker, what)
    return RecoverySummary(tuple(requeued), tuple(failed))


def recover_stale_jobs(
    *, stale_after_s: float = DEFAULT_STALE_AFTER_S, now: dt.datetime | None = None
) -> RecoverySummary:
    """Requeue (or fail, past ``max_attempts``) running jobs whose heartbeat is too old."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=stale_after_s)
    stale = AnalysisJob.objects.filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True), status=JobStatus.RUNNING
    ).values_list(*_RUNNING_FIELDS)
    return _requeue_or_fail(list(stale), now, "stopped responding")


def recover_dead_workers(*, now: dt.datetime | None = None) -> RecoverySummary:
    """Requeue (or fail, past ``max_attempts``) at once the running jobs whose worker process
    on this machine no longer exists (killed, out of memory): no heartbeat wait."""
    now = now or timezone.now()
    running = AnalysisJob.objects.filter(status=JobStatus.RUNNING).values_list(*_RUNNING_FIELDS)
    dead = []
    for values in running:
        pid = _local_pid(values[4])
        if pid is not None and pid != os.getpid() and _process_gone(pid):
            dead.append(values)
    return _requeue_or_fail(dead, now, "ended")


class Heartbeat:
    """Context manager: a daemon thread that calls :func:`beat` every ``interval_s`` seconds.

    The thread uses its own database connection (Django connections are per thread) and closes
    it on exit. ``on_lost`` is called once if the claim is lost (the job was recovered by
    another worker), so the runner can give up early.
    """

    def __init__(
        self,
        job: AnalysisJob,
        interval_s: float = DEFAULT_HEARTBEAT_S,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.job = job
        self.interval_s = interval_s
        self.on_lost = on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-job-{job.pk}", daemon=True
        )

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    close_old_connections()
                    if not beat(self.job):
                        if self.on_lost is not None:
                            self.on_lost()
                        return
                except Exception:  # a database hiccup: try again at the next beat
                    logger.exception("heartbeat of job %s failed", self.job.pk)
        finally:
            connection.close()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=max(5.0, 2 * self.interval_s))
