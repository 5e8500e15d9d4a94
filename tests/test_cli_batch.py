"""``spinewatch analyze-batch MANIFEST.csv``: exit 0 / 1 / 2, progress on stderr."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from spinewatch.cli import main


def _support() -> ModuleType:
    path = Path(__file__).parent / "imaging" / "test_batch_support.py"
    spec = importlib.util.spec_from_file_location("spinewatch_batch_test_support", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


support = _support()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = support.make_studies(tmp_path_factory.mktemp("studies"))
    return path


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with support.inprocess_scheduler() as address:
        yield address


def test_bad_manifest_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "m.csv"
    bad.write_text("study_id,ct\ns1,x.nii.gz\n")
    assert main(["analyze-batch", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spinewatch: error: ") and "lacks column(s) labels" in err
    assert err.count("\n") == 1


def test_some_failed_exit_1_lists_them(
    manifest: Path, scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    with support.fake_analysis_module():
        code = main(["analyze-batch", str(manifest), "--out", str(out), "--scheduler", scheduler])
    assert code == 1
    captured = capsys.readouterr()
    assert "3 of 4 studies analysed" in captured.out
    assert "good1: high collapse risk at L1" in captured.out
    assert "1 study failed:" in captured.err
    assert "  broken: " in captured.err
    assert "4/4" in captured.err  # the tqdm bar
    assert json.loads((out / "batch-summary.json").read_text())["n_failed"] == 1


def test_all_succeeded_exit_0(
    manifest: Path, scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.csv"
    lines = manifest.read_text().splitlines()
    folder = manifest.parent
    good.write_text(
        "study_id,ct,labels\n"
        + "".join(
            f"{sid},{folder / ct},{folder / labels}\n"
            for sid, ct, labels, *_ in (line.split(",") for line in lines[1:])
            if sid.startswith("good")
        )
    )
    with support.fake_analysis_module():
        code = main(
            [
                "analyze-batch",
                str(good),
                "--out",
                str(tmp_path / "o"),
                "--scheduler",
                scheduler,
                "--quiet",
                "--no-picture",
            ]
        )
    assert code == 0
    captured = capsys.readouterr()
    assert "2 of 2 studies analysed" in captured.out
    assert "failed" not in captured.err
    assert not list((tmp_path / "o").glob("*/spine.png"))


@pytest.mark.slow
def test_local_cluster_end_to_end(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Default local process cluster and the real analysis; the broken study fails alone."""
    small = tmp_path / "small.csv"
    folder = manifest.parent
    small.write_text(
        "study_id,ct,labels\n"
        f"good2,{folder / 'p2' / 'ct.nii.gz'},{folder / 'p2' / 'labels.nii.gz'}\n"
        f"broken,{folder / 'broken' / 'ct.nii.gz'},{folder / 'p1' / 'labels.nii.gz'}\n"
    )
    code = main(["analyze-batch", str(small), "--out", str(tmp_path / "o"), "--no-picture"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "1 of 2 studies analysed" in captured.out and "on local cluster" in captured.out
    failures = captured.err.split("1 study failed:")[1]
    assert "  broken: " in failures and "good2" not in failures


def test_workers_must_be_positive(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["analyze-batch", str(manifest), "--workers", "0"])
    assert info.value.code == 2
    assert "at least 1 worker" in capsys.readouterr().err
