"""``spinewatch demo`` end to end, in a fresh process, as ``make demo`` runs it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_builds_registry_prints_table_and_writes_outputs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SPINEWATCH_DATA_DIR"}}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spinewatch.cli",
            "demo",
            "--dir",
            str(tmp_path),
            "--patients",
            "9",
            "--no-serve",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "9 fictional patients" in out
    assert "Pre-operative" in out and "12 months" in out
    assert "Signal to treat before collapse" in out

    for picture in ("outcomes.png", "phantom/current/spine.png", "phantom/prior/spine.png"):
        assert (tmp_path / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", picture

    current = json.loads((tmp_path / "phantom/current/report.json").read_text())
    by_level = {v["level"]: v for v in current["vertebrae"]}
    # the demo's current scan draws a 30% wedge at T12 and a 10 mm lesion at L1
    assert by_level["T12"]["deformity"] == "wedge"
    assert by_level["T12"]["genant_grade"] == 2
    assert by_level["L1"]["lytic_volume_ml"] == pytest.approx(4.19, rel=0.15)

    comparison = json.loads((tmp_path / "phantom/comparison.json").read_text())
    signalled = {lv["level"] for lv in comparison["levels"] if lv["signal_to_treat"]}
    assert {"T12", "L1"} <= signalled

    with sqlite3.connect(tmp_path / "data" / "registry.sqlite3") as db:
        (patients,) = db.execute("select count(*) from registry_patient").fetchone()
        (names,) = db.execute(
            "select count(*) from registry_patientidentity where hospital_number like 'DEMO-%'"
        ).fetchone()
        (findings,) = db.execute("select count(*) from registry_vertebrafinding").fetchone()
    assert patients == names == 9
    # the prior and the current phantom scan, both analysed through the upload -> job path
    assert findings == 2 * len(current["vertebrae"])
