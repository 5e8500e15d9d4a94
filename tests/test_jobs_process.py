"""Real ``spinewatch worker`` processes on a SQLite file: kill -9 mid-job, restart, completion.

1. A job is queued (patient, study, uploaded phantom files) by a separate Python process.
2. Worker A picks it up; while it is analysing, A is killed with SIGKILL (no clean-up at all).
   The row stays ``running`` with A's last heartbeat.
3. Worker B starts, finds the heartbeat stale, queues the job again and completes it.
4. A re-run is queued; worker C is stopped with SIGTERM while analysing: the job goes back to
   the queue at once, without counting the attempt, and ``spinewatch worker --once`` completes it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom, write_phantom

pytestmark = pytest.mark.slow

#: Large enough that the analysis takes seconds (a window to kill the worker in).
SPEC = PhantomSpec(
    levels=("T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"),
    spacing_mm=(0.8, 0.8, 0.8),
)

QUEUE = textwrap.dedent(
    """
    import datetime as dt, shutil, sys
    from pathlib import Path
    from spinewatch.cli._django import setup_django
    setup_django(migrate=True)
    from django.core.files.uploadedfile import SimpleUploadedFile
    from spinewatch.registry import services
    from spinewatch.web.scans import jobs
    from spinewatch.web.scans.uploads import store_upload
    ct, labels = Path(sys.argv[1]), Path(sys.argv[2])
    if sys.argv[3] == "new":
        patient = services.create_patient(study_id="SW-PROC1")
        study = services.add_imaging_study(patient=patient, study_date=dt.date(2025, 2, 1))
        stored = store_upload(
            SimpleUploadedFile("ct.nii.gz", ct.read_bytes()),
            SimpleUploadedFile("labels.nii.gz", labels.read_bytes()),
        )
        job = jobs.enqueue_analysis(study_id=study.pk, upload=stored)
    else:
        job = jobs.rerun_analysis(study_id=int(sys.argv[3]))
    print(job.study_id, job.pk)
    """
)


def _env(data: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(SPINEWATCH_DATA_DIR=str(data), SPINEWATCH_DEBUG="1", PYTHONUNBUFFERED="1")
    return env


def _job(db: Path, pk: int) -> dict[str, object]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
        con.row_factory = sqlite3.Row
        row = con.execute(
            "SELECT status, progress_pct, attempts, message, worker"
            " FROM web_analysisjob WHERE id=?",
            (pk,),
        ).fetchone()
    return dict(row)


def _wait(db: Path, pk: int, predicate, timeout_s: float, process=None) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = _job(db, pk)
        if predicate(row):
            return row
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.05)
    return _job(db, pk)


def _worker(env, log, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "spinewatch.cli", "worker", "--poll", "0.2", *extra],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def test_worker_killed_mid_job_is_recovered_after_restart(tmp_path: Path):
    ct, labels, _ = write_phantom(make_spine_phantom(SPEC), tmp_path / "phantom")
    data = tmp_path / "data"
    env = _env(data)
    queued = subprocess.run(
        [sys.executable, "-c", QUEUE, str(ct), str(labels), "new"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    study_id, pk = (int(x) for x in queued.stdout.split())
    db = data / "registry.sqlite3"
    assert _job(db, pk)["status"] == "queued"
    log = (tmp_path / "workers.log").open("w+")
    timing = ("--heartbeat", "0.5", "--stale-after", "3")
    try:
        a = _worker(env, log, *timing)
        row = _wait(db, pk, lambda r: r["status"] == "running" and r["progress_pct"] >= 10, 60, a)
        assert row["status"] == "running", _log(log)
        os.kill(a.pid, signal.SIGKILL)
        a.wait(10)
        row = _job(db, pk)
        assert row["status"] == "running" and row["attempts"] == 1, row  # killed mid-way

        b = _worker(env, log, *timing)
        row = _wait(db, pk, lambda r: r["status"] in ("done", "failed"), 120, b)
        assert row["status"] == "done", (row, _log(log))
        assert row["attempts"] == 2 and row["progress_pct"] == 100
        b.send_signal(signal.SIGTERM)
        assert b.wait(30) == 0
        with sqlite3.connect(db) as con:
            levels = con.execute(
                "SELECT level FROM registry_vertebrafinding WHERE study_id=? ORDER BY id",
                (study_id,),
            ).fetchall()
        assert [lv for (lv,) in levels] == list(SPEC.levels)

        # graceful stop in the middle of a re-run: back in the queue at once
        rerun = subprocess.run(
            [sys.executable, "-c", QUEUE, str(ct), str(labels), str(study_id)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        pk2 = int(rerun.stdout.split()[1])
        c = _worker(env, log, *timing)
        row = _wait(db, pk2, lambda r: r["status"] == "running" and r["progress_pct"] >= 10, 60, c)
        assert row["status"] == "running", _log(log)
        c.send_signal(signal.SIGTERM)
        assert c.wait(30) == 0
        row = _job(db, pk2)
        assert row["status"] == "queued" and row["attempts"] == 0, row
        assert "worker was stopped" in str(row["message"])
        once = subprocess.run(
            [sys.executable, "-m", "spinewatch.cli", "worker", "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert once.returncode == 0, once.stderr
        assert _job(db, pk2)["status"] == "done"
    finally:
        for name in ("a", "b", "c"):
            process = locals().get(name)
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        log.close()


def _log(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-4000:]
