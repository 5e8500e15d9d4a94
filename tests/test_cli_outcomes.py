"""``spinewatch outcomes table``: formats, options, errors (exit 2, one line), one real process."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spinewatch.cli import main

CODES = ("pre", "3d", "1m", "3m", "6m", "12m")
MEANS = (7.6, 2.1, 1.8, 1.7, 0.9, 0.6)


@pytest.fixture
def cohort_csv(tmp_path: Path) -> Path:
    """13 patients like the reference study; 6 reach 12 months, 4 stop at 6, 3 at 3 months."""
    rng = np.random.default_rng(42)
    reach = [6] * 6 + [5] * 4 + [4] * 3
    path = tmp_path / "cohort.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["patient_id", "timepoint", "vas", "procedure_date"])
        for p, last in enumerate(reach):
            u = rng.normal(0, 0.8)
            for i, code in enumerate(CODES[:last]):
                vas = float(np.clip(np.round(MEANS[i] + u + rng.normal(0, 1.0), 1), 0, 10))
                writer.writerow([f"SW-{p + 1:03d}", code, f"{vas:.1f}", "2024-02-01"])
    return path


def _pivot(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    return frame.pivot(index="patient_id", columns="timepoint", values="vas")


def test_json_matches_scipy(cohort_csv, capsys):
    assert main(["outcomes", "table", str(cohort_csv), "--format", "json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert [tp["timepoint"] for tp in data["timepoints"]] == list(CODES)
    assert data["test"] == "paired-t" and data["n_patients"] == 13
    wide = _pivot(cohort_csv)
    assert data["timepoints"][0]["n"] == 13
    assert data["timepoints"][0]["mean"] == pytest.approx(wide["pre"].mean())
    assert data["timepoints"][0]["sd"] == pytest.approx(wide["pre"].std(ddof=1))
    for tp in data["timepoints"][1:]:
        both = wide[["pre", tp["timepoint"]]].dropna()
        result = stats.ttest_rel(both[tp["timepoint"]], both["pre"])
        assert tp["p_value"] == pytest.approx(result.pvalue, rel=1e-9)
        assert tp["ci95"] == pytest.approx(list(result.confidence_interval()))
        assert tp["test"] == "paired-t"
    assert data["mixed_model"]["fitted"] is True


def test_wilcoxon_and_no_mixed_model(cohort_csv, capsys):
    argv = ["outcomes", "table", str(cohort_csv), "--format", "json", "--test", "wilcoxon"]
    assert main([*argv, "--no-mixed-model"]) == 0
    data = json.loads(capsys.readouterr().out)
    wide = _pivot(cohort_csv)
    three = data["timepoints"][3]
    both = wide[["pre", "3m"]].dropna()
    assert three["test"] == "wilcoxon"
    d = np.round(both["3m"] - both["pre"], 9)  # float noise must not break ties
    assert three["p_value"] == pytest.approx(stats.wilcoxon(d).pvalue)
    assert data["mixed_model"]["fitted"] is False
    assert all(tp["lmm_estimate"] is None for tp in data["timepoints"])


def test_text_is_the_default_and_csv_parses(cohort_csv, capsys):
    assert main(["outcomes", "table", str(cohort_csv)]) == 0
    text = capsys.readouterr().out
    assert "Mean +/- SD" in text and "Pre-operative" in text and "12 months" in text
    assert main(["outcomes", "table", str(cohort_csv), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["timepoint"] for r in rows] == list(CODES)
    assert rows[5]["n"] == "6"


def test_plot_option_writes_the_png(cohort_csv, tmp_path, capsys):
    plot = tmp_path / "out" / "vas.png"
    assert main(["outcomes", "table", str(cohort_csv), "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "patient_id,timepoint,vas\nP1,pre,8\nP1,2w,3\n",
            "line 3, column \"timepoint\": unknown time point '2w'; "
            "expected one of pre, 3d, 1m, 3m, 6m, 12m",
        ),
        ("patient_id,timepoint,vas\nP1,pre,8\nP1,3d,12\n", "line 3, column \"vas\": VAS '12'"),
        ("patient_id,timepoint,vas\nP1,pre,8\nP1,3d,abc\n", "line 3, column \"vas\": VAS 'abc'"),
        ("patient_id,timepoint,vas\nP1,pre,8\nP1,pre,7\n", "lines 2 and 3"),
        ("patient_id,timepoint,pain\nP1,pre,8\n", 'line 1: missing column "vas"'),
    ],
)
def test_bad_file_exits_2_with_one_line(tmp_path, capsys, body, expected):
    bad = tmp_path / "bad.csv"
    bad.write_text(body, encoding="utf-8")
    assert main(["outcomes", "table", str(bad), "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"spinewatch: error: {bad}, ")
    assert expected in lines[0]
    assert "Traceback" not in captured.err


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["outcomes", "table", str(tmp_path / "none.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.csv" in err and "not found" in err


def test_bad_plot_path_exits_2(cohort_csv, tmp_path, capsys):
    assert main(["outcomes", "table", str(cohort_csv), "--plot", str(tmp_path / "p.gif")]) == 2
    assert "must end in .png" in capsys.readouterr().err


def test_without_a_file_the_registry_frame_is_used(cohort_csv, monkeypatch, capsys):
    """The registry branch, with the registry replaced by the file's frame (no database here)."""
    from spinewatch.cli import _outcomes
    from spinewatch.outcomes.cohort_file import read_cohort_csv

    frame = read_cohort_csv(cohort_csv).drop(columns=["line"])
    frame["timepoint"] = frame["timepoint"].astype(str)  # as a database returns it
    monkeypatch.setattr(_outcomes, "_registry_frame", lambda **filters: frame)
    assert main(["outcomes", "table", "--format", "json"]) == 0
    from_registry = json.loads(capsys.readouterr().out)
    assert main(["outcomes", "table", str(cohort_csv), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == from_registry


def test_registry_filters_are_passed_through(cohort_csv, monkeypatch, capsys):
    from spinewatch.cli import _outcomes
    from spinewatch.outcomes.cohort_file import read_cohort_csv

    seen: dict[str, object] = {}

    def fake(**filters):
        seen.update(filters)
        return read_cohort_csv(cohort_csv)

    monkeypatch.setattr(_outcomes, "_registry_frame", fake)
    argv = ["outcomes", "table", "--diagnosis", "myeloma", "--level", "L1", "--from", "2024-01-01"]
    assert main(argv) == 0
    assert seen == {"diagnosis": "myeloma", "level": "L1", "date_from": dt.date(2024, 1, 1)}
    capsys.readouterr()
    assert main(["outcomes", "table", "--to", "2024-02-30"]) == 2
    assert "--to '2024-02-30' is not a date" in capsys.readouterr().err
    assert main(["outcomes", "table", str(cohort_csv), "--diagnosis", "myeloma"]) == 2
    assert "--diagnosis select from the registry" in capsys.readouterr().err


def test_empty_registry_exits_2(monkeypatch, capsys):
    from spinewatch.cli import _outcomes

    empty = pd.DataFrame({"patient_id": [], "timepoint": [], "vas": []})
    monkeypatch.setattr(_outcomes, "_registry_frame", lambda **filters: empty)
    assert main(["outcomes", "table"]) == 2
    assert "registry holds no completed follow-up" in capsys.readouterr().err


def test_installed_command_in_a_real_process(cohort_csv, tmp_path):
    exe = Path(sys.executable).with_name("spinewatch")
    if not exe.exists():
        pytest.fail(f"{exe} is missing: run `make install`")
    env = {**os.environ, "SPINEWATCH_DATA_DIR": str(tmp_path / "data")}
    ok = subprocess.run(
        [str(exe), "outcomes", "table", str(cohort_csv), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["timepoints"][0]["timepoint"] == "pre"

    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,timepoint,vas\nP1,pre,8\nP1,3d,eleven\n", encoding="utf-8")
    failed = subprocess.run(
        [str(exe), "outcomes", "table", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert failed.returncode == 2
    assert failed.stdout == ""
    assert failed.stderr == (
        f"spinewatch: error: {bad}, line 3, column \"vas\": VAS 'eleven' is not a pain score; "
        "expected a number from 0 to 10\n"
    )


@pytest.mark.django_db
def test_registry_round_trip_gives_the_files_table(cohort_csv, capsys):
    """``spinewatch import cohort`` then ``outcomes table`` without a file = the file's table."""
    from spinewatch.registry.services import import_cohort

    import_cohort(cohort_csv)
    assert main(["outcomes", "table", "--format", "json"]) == 0
    from_registry = json.loads(capsys.readouterr().out)
    assert main(["outcomes", "table", str(cohort_csv), "--format", "json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert from_registry["n_patients"] == 13
    assert from_registry == from_file
    # a filter that selects nobody: the empty registry message, exit 2
    assert main(["outcomes", "table", "--to", "2000-01-01"]) == 2
    assert "no completed follow-up with a VAS matching date_to=2000-01-01" in (
        capsys.readouterr().err
    )
