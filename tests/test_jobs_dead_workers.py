"""jobs.recover_dead_workers: a job whose worker process on this machine is gone is re-queued
at once -- no waiting for its heartbeat to go stale (issue 12, supervised workers)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from spinewatch.web.scans import jobs
from spinewatch.web.scans.models import AnalysisJob, JobStatus
from test_jobs import _job

pytestmark = pytest.mark.django_db


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def _claimed_by(name: str) -> AnalysisJob:
    job = _job()
    claimed = jobs.claim_next(worker=name, job_id=job.pk)
    assert claimed is not None
    return claimed


def test_the_job_of_a_dead_local_worker_is_requeued_at_once() -> None:
    live = jobs.worker_name()  # this very process: alive
    host, _, rand, boot = live.split(":")
    dead = f"{host}:{_dead_pid()}:{rand}:{boot}"
    elsewhere = f"another-host:{_dead_pid()}:{rand}:{boot}"
    other_boot = f"{host}:{_dead_pid()}:{rand}:00000000"
    jobs_by_worker = {name: _claimed_by(name) for name in (live, dead, elsewhere, other_boot)}
    summary = jobs.recover_dead_workers()
    assert summary.requeued == (jobs_by_worker[dead].pk,)
    row = AnalysisJob.objects.get(pk=jobs_by_worker[dead].pk)
    assert row.status == JobStatus.QUEUED and row.worker == "" and row.claim_token == ""
    assert "worker analysing this scan ended" in row.message
    for name in (live, elsewhere, other_boot):  # alive, or not ours to judge: left running
        assert AnalysisJob.objects.get(pk=jobs_by_worker[name].pk).status == JobStatus.RUNNING
    assert socket.gethostname()[:120] == host


def test_a_dead_workers_job_past_its_attempts_fails_instead_of_looping() -> None:
    name = jobs.worker_name().split(":")
    name[1] = str(_dead_pid())
    job = _job(max_attempts=1)
    claimed = jobs.claim_next(worker=":".join(name), job_id=job.pk)
    summary = jobs.recover_dead_workers()
    assert summary.failed == (claimed.pk,)
    assert AnalysisJob.objects.get(pk=claimed.pk).status == JobStatus.FAILED
