"""batch.run_batch on Dask: outputs, failures, summary, callback, schedulers."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_batch_support import fake_analysis_module, make_studies
from test_batch_support import inprocess_scheduler as support_scheduler

from spinewatch.imaging.batch import BatchSummary, SchedulerError, StudyOutcome, run_batch


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_studies(tmp_path_factory.mktemp("studies"))


@pytest.fixture(scope="module")
def inprocess_scheduler() -> Iterator[str]:
    with support_scheduler() as address:
        yield address


def check_common(summary: BatchSummary, out: Path) -> dict[str, StudyOutcome]:
    by_id = {s.study_id: s for s in summary.studies}
    assert [s.study_id for s in summary.studies] == ["good1", "labelsonly", "broken", "good2"]
    assert summary.n_ok == 3 and summary.n_failed == 1
    assert [s.study_id for s in summary.failed] == ["broken"]
    broken = by_id["broken"]
    assert broken.status == "failed" and broken.report is None
    assert "ct.nii.gz" in (broken.error or "")
    assert "Traceback" not in (broken.error or "")
    assert not (out / "broken" / "report.json").exists()
    for sid in ("good1", "labelsonly", "good2"):
        s = by_id[sid]
        assert s.ok and s.error is None
        assert s.report == out / sid / "report.json"
        report = json.loads(s.report.read_text())
        assert len(report["vertebrae"]) == s.n_vertebrae
        assert s.picture == out / sid / "spine.png"
        assert s.picture.read_bytes()[:4] == b"\x89PNG"
        assert s.elapsed_s > 0
    assert by_id["good1"].comparison == out / "good1" / "compare.json"
    comparison = json.loads((out / "good1" / "compare.json").read_text())
    assert [e["level"] for e in comparison["levels"]] == ["T12", "L1", "L2"]
    assert by_id["good1"].signal_to_treat is not None
    assert by_id["good2"].comparison is None and by_id["good2"].signal_to_treat is None

    saved = json.loads((out / "batch-summary.json").read_text())
    assert saved["n_studies"] == 4 and saved["n_ok"] == 3 and saved["n_failed"] == 1
    assert [s["status"] for s in saved["studies"]] == ["ok", "ok", "failed", "ok"]
    with (out / "batch-summary.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["study_id"] for r in rows] == ["good1", "labelsonly", "broken", "good2"]
    assert rows[2]["status"] == "failed" and rows[2]["error"] == broken.error
    assert rows[0]["n_vertebrae"] == str(by_id["good1"].n_vertebrae)
    return by_id


def test_batch_machinery_with_stand_in_analysis(
    manifest: Path, inprocess_scheduler: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (out / "broken").mkdir(parents=True)
    (out / "broken" / "report.json").write_text("{}")  # stale, from an earlier run
    calls: list[tuple[str, int, int]] = []

    def on_result(outcome: StudyOutcome, done: int, total: int) -> None:
        calls.append((outcome.study_id, done, total))

    with fake_analysis_module():
        summary = run_batch(
            manifest, out_dir=out, scheduler=inprocess_scheduler, n_workers=3, on_result=on_result
        )
    by_id = check_common(summary, out)
    assert summary.scheduler == inprocess_scheduler and summary.n_workers is None
    assert sorted(c[0] for c in calls) == sorted(by_id)
    assert [c[1] for c in calls] == [1, 2, 3, 4] and {c[2] for c in calls} == {4}
    # The stand-in calls L1 high risk: T12, L1, L2 -> one; L1, L2 (VerSe) -> one.
    assert by_id["good1"].n_vertebrae == 3 and by_id["good1"].high_risk_levels == ("L1",)
    assert by_id["good2"].n_vertebrae == 2 and by_id["good2"].n_high_risk == 1


def test_picture_can_be_skipped(manifest: Path, inprocess_scheduler: str, tmp_path: Path) -> None:
    with fake_analysis_module():
        summary = run_batch(
            manifest, out_dir=tmp_path, scheduler=inprocess_scheduler, picture=False
        )
    assert all(s.picture is None for s in summary.studies)
    assert not list(tmp_path.glob("*/spine.png"))


def test_unreachable_scheduler(manifest: Path, tmp_path: Path) -> None:
    with pytest.raises(
        SchedulerError, match=r"cannot reach the Dask scheduler 'tcp://127\.0\.0\.1:9'"
    ):
        run_batch(manifest, out_dir=tmp_path, scheduler="tcp://127.0.0.1:9", connect_timeout_s=1)


@pytest.mark.slow
def test_end_to_end_on_a_local_process_cluster(manifest: Path, tmp_path: Path) -> None:
    """The default: a LocalCluster of worker processes running the real analysis."""
    out = tmp_path / "out"
    summary = run_batch(manifest, out_dir=out, n_workers=2)
    assert summary.scheduler == "local cluster" and summary.n_workers == 2
    by_id = check_common(summary, out)
    good2: dict[str, Any] = json.loads((out / "good2" / "report.json").read_text())
    assert [v["level"] for v in good2["vertebrae"]] == ["L1", "L2"]
    labels_only = json.loads((out / "labelsonly" / "report.json").read_text())
    assert all(v["trabecular_hu_median"] is None for v in labels_only["vertebrae"])
    assert by_id["labelsonly"].n_vertebrae == 3
    # heights alone cannot call these intact vertebrae safe: listed as not assessable
    assert by_id["labelsonly"].not_assessable_levels == ("T12", "L1", "L2")
    assert by_id["good2"].not_assessable_levels == ()
    with (out / "batch-summary.csv").open(newline="") as fh:
        rows = {r["study_id"]: r for r in csv.DictReader(fh)}
    assert rows["labelsonly"]["not_assessable_levels"] == "T12 L1 L2"
    # the stored report of a study with a prior carries the comparison per vertebra
    good1 = json.loads((out / "good1" / "report.json").read_text())
    assert good1["scan"]["compared_with"]["study_date"] == "2020-01-01"
    got = {v["level"]: v["treat_signal"] for v in good1["vertebrae"]}
    assert got["L2"] is None  # not on the prior
    assert got["T12"] is False and got["L1"] is False
