"""The analysis job queue: claim, fencing, heartbeat, recovery, release, graceful stop.

Claim race: on PostgreSQL two threads claim from the same queue concurrently and never get the
same job. On SQLite the test is skipped: its in-memory test database cannot take concurrent
writers from two threads, and SQLite serialises every write anyway (one writer at a time, each
``UPDATE ... WHERE status='queued'`` sees the previous one committed), so the conditional UPDATE
is race-free there by construction; the sequential test below checks the "second claim changes
nothing" half, and the subprocess test (test_jobs_process.py) runs real workers on a SQLite file.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from spinewatch.registry import services
from spinewatch.web.scans import jobs
from spinewatch.web.scans.models import AnalysisJob, JobStatus
from spinewatch.web.scans.uploads import StoredUpload
from spinewatch.web.scans.worker import WorkerState, WorkerStopping, run_job


def _study(n: int = 0):
    patient = services.create_patient(study_id=f"SW-J{n:04d}-{uuid.uuid4().hex[:6]}")
    return services.add_imaging_study(patient=patient, study_date=dt.date(2025, 1, 1))


def _job(study=None, **kwargs) -> AnalysisJob:
    study = study or _study()
    upload = StoredUpload(uuid.uuid4().hex, "ct.nii.gz", "labels.nii.gz", "a.nii.gz", "b.nii.gz")
    return jobs.enqueue_analysis(study_id=study.pk, upload=upload, **kwargs)


def _age(job: AnalysisJob, seconds: float) -> None:
    AnalysisJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(seconds=seconds)
    )


@pytest.mark.django_db
def test_claims_take_the_oldest_job_once():
    first, second = _job(), _job()
    a = jobs.claim_next(worker="A")
    b = jobs.claim_next(worker="B")
    assert (a.pk, b.pk) == (first.pk, second.pk)
    assert a.status == JobStatus.RUNNING and a.worker == "A" and a.attempts == 1
    assert a.claim_token and a.claim_token != b.claim_token
    assert a.heartbeat_at is not None and a.started_at is not None
    assert jobs.claim_next(worker="C") is None


@pytest.mark.django_db
def test_a_second_conditional_claim_of_the_same_row_changes_nothing():
    job = _job()
    assert jobs.claim_next(worker="A").pk == job.pk
    # B read the candidate list before A's UPDATE: its own UPDATE must not match any more
    updated = AnalysisJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(worker="B")
    assert updated == 0
    assert AnalysisJob.objects.get(pk=job.pk).worker == "A"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_on_postgresql_never_run_the_same_job():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent claims need PostgreSQL (see the module docstring for SQLite)")
    ids = {_job(_study(i)).pk for i in range(30)}
    claimed: dict[str, list[int]] = {"A": [], "B": [], "C": []}
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            start.wait()
            while (job := jobs.claim_next(worker=name)) is not None:
                claimed[name].append(job.pk)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    everything = [pk for got in claimed.values() for pk in got]
    assert sorted(everything) == sorted(ids)  # each job claimed exactly once
    assert AnalysisJob.objects.filter(status=JobStatus.RUNNING, attempts=1).count() == 30


@pytest.mark.django_db
def test_enqueue_refuses_a_second_active_job_and_a_bad_convention():
    study = _study()
    _job(study)
    with pytest.raises(jobs.JobError, match="already queued or running"):
        _job(study)
    with pytest.raises(jobs.JobError, match=r"labels convention 'nnunet': expected one of auto"):
        _job(convention="nnunet")
    assert _job(convention="verse").convention == "verse"


@pytest.mark.django_db
def test_enqueue_checks_the_modality_and_contrast_phase():
    job = _job(modality="MR", contrast_phase="auto")
    assert (job.modality, job.contrast_phase) == ("mr", "auto")
    assert _job(contrast_phase="portal_venous").contrast_phase == "portal-venous"
    with pytest.raises(jobs.JobError, match=r"modality 'pet': expected one of auto, ct, mr"):
        _job(modality="pet")
    with pytest.raises(jobs.JobError, match=r"contrast phase 'venous-ish': expected one of"):
        _job(contrast_phase="venous-ish")
    with pytest.raises(jobs.JobError, match="is a CT phase; an MRI"):
        _job(modality="mr", contrast_phase="arterial")


@pytest.mark.django_db
def test_stale_jobs_are_requeued_then_failed_after_max_attempts():
    job = _job(max_attempts=2)
    fresh = _job()
    claimed = jobs.claim_next(worker="host:1:a")
    jobs.claim_next(worker="host:2:b")  # `fresh`, beating normally
    _age(claimed, 120)
    summary = jobs.recover_stale_jobs(stale_after_s=60)
    assert summary.requeued == (job.pk,) and summary.failed == ()
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.claim_token == "" and job.worker == ""
    assert "stopped responding" in job.message and "attempt 2 of 2" in job.message
    assert AnalysisJob.objects.get(pk=fresh.pk).status == JobStatus.RUNNING

    again = jobs.claim_next(worker="host:3:c")
    assert again.pk == job.pk and again.attempts == 2
    _age(again, 120)
    summary = jobs.recover_stale_jobs(stale_after_s=60)
    assert summary.failed == (job.pk,) and summary.requeued == ()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert "interrupted 2 times" in job.message


@pytest.mark.django_db
def test_a_superseded_claim_can_write_nothing():
    _job()
    old = jobs.claim_next(worker="old")
    _age(old, 600)
    jobs.recover_stale_jobs(stale_after_s=60)
    new = jobs.claim_next(worker="new")
    assert new.pk == old.pk and new.claim_token != old.claim_token
    assert not jobs.beat(old)
    assert not jobs.set_progress(old, 50)
    assert not jobs.finish(old, status=JobStatus.DONE)
    assert not jobs.release(old, reason="x")
    row = AnalysisJob.objects.get(pk=new.pk)
    assert row.status == JobStatus.RUNNING and row.worker == "new" and row.progress_pct == 0
    assert jobs.set_progress(new, 50) and jobs.finish(new, status=JobStatus.DONE)
    assert AnalysisJob.objects.get(pk=new.pk).progress_pct == 100


@pytest.mark.django_db
def test_release_requeues_without_counting_the_attempt():
    _job()
    job = jobs.claim_next(worker="w")
    assert jobs.release(job, reason="stopping")
    row = AnalysisJob.objects.get(pk=job.pk)
    assert (row.status, row.attempts, row.message) == (JobStatus.QUEUED, 0, "stopping")


@pytest.mark.django_db
def test_a_worker_stopped_mid_job_puts_the_job_back(monkeypatch):
    import spinewatch.web.scans.worker as worker

    def stop_now(job, lost):
        jobs.set_progress(job, 30)
        raise WorkerStopping

    monkeypatch.setattr(worker, "_analyse", stop_now)
    _job()
    job = jobs.claim_next(worker="w")
    with pytest.raises(WorkerStopping):
        run_job(job)
    row = AnalysisJob.objects.get(pk=job.pk)
    assert row.status == JobStatus.QUEUED and row.attempts == 0 and row.progress_pct == 0
    assert "worker was stopped" in row.message


def test_the_stop_signal_interrupts_only_a_running_job():
    state = WorkerState()
    state.request_stop()  # idle: just stop polling
    assert state.stop.is_set()
    busy = WorkerState()
    busy.busy = True
    with pytest.raises(WorkerStopping):
        busy.request_stop()
    busy.request_stop()  # a second signal does not interrupt the release
    assert busy.stop.is_set()


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_refreshes_a_running_job_and_notices_a_lost_claim():
    _job()
    job = jobs.claim_next(worker="w")
    _age(job, 100)
    lost = threading.Event()
    with jobs.Heartbeat(job, interval_s=0.05, on_lost=lost.set):
        deadline = timezone.now() + dt.timedelta(seconds=5)
        while timezone.now() < deadline:
            row = AnalysisJob.objects.get(pk=job.pk)
            if timezone.now() - row.heartbeat_at < dt.timedelta(seconds=5):
                break
        assert timezone.now() - row.heartbeat_at < dt.timedelta(seconds=5)
        # another worker takes the job over: the heartbeat thread reports the lost claim
        AnalysisJob.objects.filter(pk=job.pk).update(claim_token="someone-else")
        assert lost.wait(5)


@pytest.mark.django_db
def test_worker_refuses_a_heartbeat_slower_than_half_the_stale_time():
    from spinewatch.core.errors import InputError
    from spinewatch.web.scans.worker import run_worker

    with pytest.raises(InputError, match="at most half the stale-after time"):
        run_worker(heartbeat_s=40, stale_after_s=60, max_jobs=1)
