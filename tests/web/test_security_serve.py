"""``spinewatch serve`` for real: gunicorn in a subprocess, on a free port, with a temp data dir."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_serve_migrates_collects_static_and_serves_with_headers(tmp_path: Path):
    port = _free_port()
    data = tmp_path / "data"
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SPINEWATCH_SECRET_KEY")
    }
    env.update(SPINEWATCH_DATA_DIR=str(data), SPINEWATCH_DEBUG="0", PYTHONUNBUFFERED="1")
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "spinewatch.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status, headers, body = _get(f"{base}/admin/login/")
                break
            except (ConnectionError, urllib.error.URLError, TimeoutError):
                time.sleep(0.3)
        log.seek(0)
        assert status == 200, f"server did not answer; its output:\n{log.read()}"
        assert b"csrfmiddlewaretoken" in body
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "no-store" in headers["Cache-Control"]
        # static files: collected under the data dir, served by WhiteNoise
        assert (data / "static" / "web" / "app.css").is_file()
        status, headers, body = _get(f"{base}/static/web/app.css")
        assert status == 200 and headers["Content-Type"].startswith("text/css")
        assert body == (data / "static" / "web" / "app.css").read_bytes()
        assert headers["X-Content-Type-Options"] == "nosniff"
        status, _, _ = _get(f"{base}/static/admin/css/base.css")
        assert status == 200
        # migrations applied, secret key created privately
        assert (data / "registry.sqlite3").is_file()
        key_file = data / "secret_key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    assert process.returncode == 0
