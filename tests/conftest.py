"""Shared test fixtures.

Tier three of the test data (house style 10): real scans in ``../shared/data`` beside the repo.
When ``SPINEWATCH_REQUIRE_SHARED_DATA=1`` (CI) a missing file fails the test instead of skipping it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPINEWATCH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def _require_shared() -> bool:
    return os.environ.get("SPINEWATCH_REQUIRE_SHARED_DATA", "") == "1"


@pytest.fixture(autouse=True)
def _own_audit_anchor_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test keeps its audit anchors (spinewatch.audit.anchor) in its own file -- also for
    the commands it starts -- so no test reads another test database's anchors."""
    path = tmp_path / "audit-anchors.log"
    monkeypatch.setenv("SPINEWATCH_AUDIT_ANCHOR_FILE", str(path))
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The root of ``../shared/data``; skips (or fails in CI) when it is absent."""
    if not SHARED_DATA.is_dir():
        msg = f"shared test data not found at {SHARED_DATA}"
        if _require_shared():
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_file(shared_data: Path):
    """``shared_file("ct/verse004/x.nii.gz")`` -> Path, failing in CI when the file is missing."""

    def get(relative: str) -> Path:
        path = shared_data / relative
        if not path.exists():
            msg = f"shared test file missing: {path}"
            if _require_shared():
                pytest.fail(msg)
            pytest.skip(msg)
        return path

    return get


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (the cohort table is cached by the registry's state,
    and a test database rolled back can repeat an earlier test's ids and versions)."""
    yield
    try:
        from django.core.cache import cache

        cache.clear()
    except Exception:  # Django not configured for this test: nothing cached
        pass
