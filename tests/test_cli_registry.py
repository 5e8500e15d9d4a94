"""``spinewatch import cohort`` and ``spinewatch manage`` through the dispatcher."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spinewatch.cli import main

pytestmark = pytest.mark.django_db

GOOD = "patient_id,timepoint,vas\nP01,pre,8\nP01,3d,2\nP01,1m,1.5\nP02,pre,7\nP02,3d,3\n"


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


def test_import_cohort_prints_summary(tmp_path, capsys):
    from spinewatch.registry import models as m

    path = tmp_path / "cohort.csv"
    path.write_text(GOOD)
    assert main(["import", "cohort", str(path), "--procedure-date", "2024-01-10"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "imported 2 patients, 2 procedures, 5 follow-ups"
    assert err == ""
    assert set(m.Procedure.objects.values_list("performed_on", flat=True)) == {dt.date(2024, 1, 10)}
    assert (tmp_path / "data").is_dir()


def test_bad_file_exits_2_with_one_line_and_imports_nothing(tmp_path, capsys):
    from spinewatch.registry import models as m

    path = tmp_path / "bad.csv"
    path.write_text(GOOD + "P03,2w,4\n")
    assert main(["import", "cohort", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "bad.csv" in lines[0] and "line 7" in lines[0] and "'2w'" in lines[0]
    assert not m.Patient.objects.exists()


def test_duplicate_import_exits_2(tmp_path, capsys):
    path = tmp_path / "cohort.csv"
    path.write_text(GOOD)
    assert main(["import", "cohort", str(path)]) == 0
    assert main(["import", "cohort", str(path)]) == 2
    assert "already in the registry" in capsys.readouterr().err


def test_missing_file_and_bad_date_exit_2(tmp_path, capsys):
    assert main(["import", "cohort", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["import", "cohort", str(tmp_path / "x.csv"), "--procedure-date", "01/02/2024"])
    assert info.value.code == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_manage_passes_through(capsys):
    assert main(["manage", "check"]) == 0
    assert "no issues" in capsys.readouterr().out


def test_fresh_data_dir_needs_no_setup_step(tmp_path):
    """A new process on an empty data directory migrates the SQLite registry by itself."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["SPINEWATCH_DATA_DIR"] = str(tmp_path / "fresh")
    path = tmp_path / "cohort.csv"
    path.write_text(GOOD)
    cmd = [sys.executable, "-m", "spinewatch.cli", "import", "cohort", str(path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported 2 patients, 2 procedures, 5 follow-ups"
    assert Path(tmp_path / "fresh" / "registry.sqlite3").is_file()
