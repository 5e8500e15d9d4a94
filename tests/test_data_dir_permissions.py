"""Issue 12, data at rest: the SQLite registry was world-readable (0644 in a 0755 directory).

The data directory is 0700 and every file in it 0600 -- a new one as created, an old one
tightened at start -- whichever entry point starts first (a command, the served application).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path


def _env(data: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(SPINEWATCH_DATA_DIR=str(data), SPINEWATCH_DEBUG="0")
    return env


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _spinewatch(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "spinewatch.cli", *args],
        env=_env(data),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_a_new_data_directory_and_registry_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    os.umask(0o022)  # what a login shell usually has
    _spinewatch(data, "user", "list")
    assert _mode(data) == 0o700
    registry = data / "registry.sqlite3"
    assert _mode(registry) == 0o600
    for entry in data.iterdir():
        assert _mode(entry) & 0o077 == 0, entry


def test_an_existing_open_data_directory_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _spinewatch(data, "user", "list")
    os.chmod(data, 0o755)
    os.chmod(data / "registry.sqlite3", 0o644)
    (data / "uploads").mkdir(mode=0o755)
    os.chmod(data / "uploads", 0o755)
    _spinewatch(data, "user", "list")
    assert _mode(data) == 0o700
    assert _mode(data / "registry.sqlite3") == 0o600
    assert _mode(data / "uploads") == 0o700
