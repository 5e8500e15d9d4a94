"""End-to-end fixtures: the REAL server (gunicorn + analysis worker) on a demo registry, driven
by Debian's headless Chromium through Playwright's sync API.

One server per pytest process: each xdist worker builds its own demo registry in its own tmp
folder and picks its own free port, so ``pytest -n 2`` never starts two servers on one port.
Screenshots go to ``SPINEWATCH_E2E_SCREENSHOTS`` (else a tmp folder), named after test and step.

Environment:
- ``SPINEWATCH_REQUIRE_BROWSER=1`` (CI): a missing ``/usr/bin/chromium`` fails instead of
  skipping.
- ``SPINEWATCH_E2E_SCREENSHOTS=DIR``: keep the screenshots there.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _e2e_support import EXPECT_MS, WAIT_MS, DemoPatient, E2EServer
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

CHROMIUM = Path(os.environ.get("SPINEWATCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROLES = ("clinician", "case_manager", "researcher", "admin")

_LOGIN_LINE = re.compile(
    r"^\s+(?P<role>clinician|case_manager|researcher|admin)\s+(?P<user>\S+)\s+(?P<password>\S+)"
)
_SHOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _require_browser() -> bool:
    return os.environ.get("SPINEWATCH_REQUIRE_BROWSER", "") == "1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(data_dir: Path) -> dict[str, str]:
    """The server's environment: SQLite in ``data_dir`` and production settings (no debug, so
    Secure session cookies and the data directory's own secret key)."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "SPINEWATCH_DEBUG", "SPINEWATCH_SECRET_KEY"):
        env.pop(name, None)
    env["SPINEWATCH_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _spinewatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "spinewatch.cli", *args]


def _build_demo(root: Path) -> dict[str, tuple[str, str]]:
    """``spinewatch demo --dir ROOT --patients 8 --no-serve``; returns the log-ins it printed."""
    result = subprocess.run(
        _spinewatch("demo", "--dir", str(root), "--patients", "8", "--no-serve"),
        env=_server_env(root / "data"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"spinewatch demo failed ({result.returncode}):\n{result.stdout[-2000:]}\n"
            f"{result.stderr[-4000:]}"
        )
    logins: dict[str, tuple[str, str]] = {}
    for line in result.stdout.splitlines():
        match = _LOGIN_LINE.match(line)
        if match:
            logins[match["role"]] = (match["user"], match["password"])
    missing = sorted(set(ROLES) - set(logins))
    if missing:
        pytest.fail(f"spinewatch demo printed no log-in for {missing}:\n{result.stdout[-3000:]}")
    return logins


def _read_registry(data_dir: Path) -> tuple[list[DemoPatient], dict[str, int]]:
    """The demo patients' identities and the user ids, read-only from the SQLite file."""
    conn = sqlite3.connect(f"file:{data_dir / 'registry.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT p.study_id, i.family_name, i.given_name, i.hospital_number, "
            "p.case_manager_id, (SELECT COUNT(*) FROM registry_imagingstudy s "
            "WHERE s.patient_id = p.id), i.birth_date FROM registry_patient p "
            "JOIN registry_patientidentity i ON i.patient_id = p.id ORDER BY p.study_id"
        ).fetchall()
        users = dict(conn.execute("SELECT username, id FROM auth_user").fetchall())
    finally:
        conn.close()
    if len(rows) != 8:
        pytest.fail(f"the demo registry has {len(rows)} patients with an identity; expected 8")
    return [DemoPatient(*row) for row in rows], users


def _wait_until_up(process: subprocess.Popen[bytes], url: str, timeout_s: float) -> bool:
    """Poll ``url`` until it answers 200; False when the server process ends first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    return False


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # the group this fixture started (start_new_session)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (gunicorn, its workers, the analysis worker);
    SIGKILL when it has not ended within 25 s."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)
    _signal_group(process, signal.SIGKILL)  # no straggler of the group outlives the session


@pytest.fixture(scope="session")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EServer]:
    """A populated demo registry served by ``spinewatch serve --workers 2`` on a free port."""
    root = tmp_path_factory.mktemp("e2e-demo")
    logins = _build_demo(root)
    data_dir = root / "data"
    patients, user_ids = _read_registry(data_dir)
    log_path = root / "serve.log"
    server = E2EServer(
        base_url="",
        data_dir=data_dir,
        log_path=log_path,
        logins=logins,
        patients=patients,
        user_ids=user_ids,
    )
    process: subprocess.Popen[bytes] | None = None
    with log_path.open("ab") as log:
        for _attempt in range(3):  # a free port can be taken between choosing and binding it
            port = _free_port()
            process = subprocess.Popen(
                _spinewatch("serve", "--port", str(port), "--workers", "2"),
                env=_server_env(data_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            server.base_url = f"http://127.0.0.1:{port}"
            if _wait_until_up(process, server.url("/accounts/login/"), timeout_s=90):
                break
            _stop(process)
            process = None
    if process is None:
        pytest.fail(f"spinewatch serve did not come up:\n{server.log_tail()}")
    try:
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium (never a downloaded browser)."""
    if not CHROMIUM.exists():
        msg = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if _require_browser():
            pytest.fail(msg)
        pytest.skip(msg)
    expect.set_options(timeout=EXPECT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_context(browser: Browser, e2e_server: E2EServer) -> Iterator[Callable[..., BrowserContext]]:
    """``new_context(**options)`` -> a fresh browser context (its own cookies), closed at the end.

    Desktop 1280x900 unless ``viewport`` is given; relative URLs go to the server. A JavaScript
    error in any of its pages fails the test at the end.
    """
    made: list[BrowserContext] = []
    errors: list[str] = []

    def make(**options: object) -> BrowserContext:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        options.setdefault("base_url", e2e_server.base_url)
        options.setdefault("locale", "en-GB")
        context = browser.new_context(**options)  # type: ignore[arg-type]
        context.set_default_timeout(WAIT_MS)

        def watch(page: Page) -> None:
            page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))

        context.on("page", watch)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()
    assert not errors, f"JavaScript errors in the pages: {errors}"


@pytest.fixture
def staff_page(new_context: Callable[..., BrowserContext]) -> Page:
    """A page in a fresh desktop context (sign in with ``sign_in``)."""
    return new_context().new_page()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("SPINEWATCH_E2E_SCREENSHOTS", "")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("e2e-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shot(screenshot_dir: Path, request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """``shot(page, "patient-page")`` saves a full-page PNG named after the test and the step."""
    counter = [0]
    test_name = _SHOT_NAME.sub("-", request.node.name)

    def take(page: Page, step: str) -> Path:
        counter[0] += 1
        path = screenshot_dir / f"{test_name}-{counter[0]:02d}-{_SHOT_NAME.sub('-', step)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
