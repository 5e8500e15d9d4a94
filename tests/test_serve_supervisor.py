"""Issue 12, processes: ``spinewatch serve`` supervises its analysis worker.

The probe killed the worker of a running server: its job stayed "running 13%" and new jobs
queued until the server was restarted. Here the real server runs (gunicorn + supervised worker
on a SQLite file), a long analysis is started, its worker is killed with SIGKILL, and

- a new worker process is running within seconds (not after the 60 s heartbeat timeout),
- the killed worker's job is queued again at once and completed by the new worker,
- a job queued afterwards is processed,
- stopping the server stops its workers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from spinewatch.imaging.phantom import make_spine_phantom, write_phantom
from spinewatch.web.scans.jobs import DEFAULT_STALE_AFTER_S
from test_jobs_process import QUEUE, SPEC, _env, _job, _wait

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _pid(worker: object) -> int:
    return int(str(worker).split(":")[1])


def _queue(env, ct: Path, labels: Path, what: str) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", QUEUE, str(ct), str(labels), what],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    study_id, pk = (int(x) for x in done.stdout.split())
    return study_id, pk


def test_a_killed_worker_is_restarted_and_its_job_requeued_at_once(tmp_path: Path) -> None:
    ct, labels, _ = write_phantom(make_spine_phantom(SPEC), tmp_path / "phantom")
    data = tmp_path / "data"
    env = _env(data)
    log = (tmp_path / "serve.log").open("w+")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "spinewatch.cli", "serve", "--port", str(port),
         "--workers", "1", "--analysis-workers", "1"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    db = data / "registry.sqlite3"
    try:
        deadline = time.monotonic() + 90  # up: migrated, static files collected, listening
        while time.monotonic() < deadline and server.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5)
                break
            except (OSError, urllib.error.URLError):
                time.sleep(0.3)
        study_id, pk = _queue(env, ct, labels, "new")
        row = _wait(db, pk, lambda r: r["status"] == "running" and r["progress_pct"] >= 10, 90)
        assert row["status"] == "running", _log(log)
        first = _pid(row["worker"])
        os.kill(first, signal.SIGKILL)
        killed_at = time.monotonic()

        row = _wait(db, pk, lambda r: r["attempts"] == 2 and r["status"] != "queued", 60)
        recovered_s = time.monotonic() - killed_at
        assert row["status"] in ("running", "done"), (row, _log(log))
        second = _pid(row["worker"]) if row["worker"] else None
        assert recovered_s < DEFAULT_STALE_AFTER_S / 4, (recovered_s, _log(log))
        assert second != first and (second is None or row["status"] == "done" or _alive(second))
        row = _wait(db, pk, lambda r: r["status"] in ("done", "failed"), 180)
        assert row["status"] == "done" and row["attempts"] == 2, (row, _log(log))
        assert "ended with status" in _log(log)  # the supervisor said what happened

        _, pk2 = _queue(env, ct, labels, str(study_id))  # a new job after the kill
        row = _wait(db, pk2, lambda r: r["status"] in ("done", "failed"), 180)
        assert row["status"] == "done" and row["attempts"] == 1, (row, _log(log))
        worker_pid = _pid(_job(db, pk2)["worker"]) if _job(db, pk2)["worker"] else None
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            log.close()
    assert server.returncode == 0
    if worker_pid is not None:
        assert not _alive(worker_pid)  # stopping the server stopped its worker


def _log(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-4000:]
