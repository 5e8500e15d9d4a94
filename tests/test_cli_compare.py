"""``spinewatch compare PRIOR.json CURRENT.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spinewatch.cli import main


def vertebra(level: str, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "level": level,
        "height_anterior_mm": 25.0,
        "height_middle_mm": 24.0,
        "height_posterior_mm": 26.0,
        "genant_grade": 0,
        "height_loss_pct": 3.0,
        "trabecular_hu_median": 180.0,
        "lytic_volume_ml": 0.0,
        "lytic_fraction": 0.0,
        "cement_volume_ml": 0.0,
        "collapse_risk": "low",
    }
    base.update(values)
    return base


@pytest.fixture
def reports(tmp_path: Path) -> tuple[Path, Path]:
    prior = tmp_path / "prior.json"
    current = tmp_path / "current.json"
    prior.write_text(
        json.dumps(
            {
                "scan": {"ct": "a.nii.gz", "labels": "a-seg.nii.gz", "study_date": "2024-01-10"},
                "vertebrae": [vertebra("T12"), vertebra("L1"), vertebra("L2")],
            }
        )
    )
    current.write_text(
        json.dumps(
            {
                "scan": {"ct": "b.nii.gz", "labels": "b-seg.nii.gz", "study_date": "2024-07-10"},
                "vertebrae": [
                    vertebra("T12"),
                    vertebra(
                        "L1", lytic_volume_ml=1.4, lytic_fraction=0.08, collapse_risk="moderate"
                    ),
                    vertebra("L2", genant_grade=1, height_anterior_mm=19.5, height_loss_pct=22.0),
                ],
            }
        )
    )
    return prior, current


def test_json_output(reports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    prior, current = reports
    assert main(["compare", str(prior), str(current), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["interval_days"] == 182
    assert result["prior"]["source"] == str(prior)
    by_level = {e["level"]: e for e in result["levels"]}
    assert by_level["L1"]["flags"] == ["new_lesion"]
    assert by_level["L2"]["flags"] == ["new_fracture"]
    assert by_level["L2"]["height_anterior_mm"]["change_mm"] == -5.5
    assert result["summary"]["signal_to_treat"] == ["L1", "L2"]


def test_text_output_and_out_file(
    reports: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prior, current = reports
    out = tmp_path / "res" / "cmp.json"
    assert main(["compare", str(prior), str(current), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Signal to treat before collapse: L1, L2" in text
    assert "interval: 182 days" in text
    assert json.loads(out.read_text())["summary"]["new_lesion"] == ["L1"]


def test_bad_json_exit_2_one_message(
    reports: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prior, _ = reports
    bad = tmp_path / "bad.json"
    bad.write_text('{"scan": {}\n "vertebrae": []}')
    assert main(["compare", str(prior), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{bad}: line 2, column 2: invalid JSON" in err
    assert "Traceback" not in err


def test_missing_file_and_not_a_report(
    reports: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prior, _ = reports
    assert main(["compare", str(prior), str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"patients": []}')
    assert main(["compare", str(other), str(prior)]) == 2
    assert "other.json: not a SpineWatch report: key 'scan' missing" in capsys.readouterr().err
