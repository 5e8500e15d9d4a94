"""Issue 12: every hostile input and OS error ends the command line in ONE line and exit 2.

The probe found tracebacks for empty Rows, NumberOfFrames "x", NaN in a text field of a prior
report, a 10^5-deep nested prior JSON and ``--out`` naming an existing file; the header and zip
bombs ended in MemoryError tracebacks. Each runs here through :func:`spinewatch.cli.main`.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from _hostile_support import dicom_series, header_bomb_nifti, zip_bomb
from spinewatch.cli import main
from spinewatch.core.errors import user_message


def _one_line_exit_2(capsys, argv: list[str], *needles: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("spinewatch: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture()
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.nii.gz"
    arr = np.zeros((4, 4, 3), np.uint8)
    arr[1:3, 1:3, :] = 31
    nib.save(nib.Nifti1Image(arr, np.eye(4)), str(path))
    return path


def _report(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_empty_rows_exits_2(tmp_path, labels, capsys) -> None:
    series = dicom_series(tmp_path / "s", rows=None)
    _one_line_exit_2(
        capsys, ["analyze", str(series), "--labels", str(labels)], "000.dcm", "Rows (0028,0010)"
    )


def test_number_of_frames_x_exits_2(tmp_path, labels, capsys) -> None:
    series = dicom_series(tmp_path / "s", extra={"NumberOfFrames": "7"})
    frames = b"\x28\x00\x08\x00IS\x02\x007 "
    for f in series.iterdir():
        f.write_bytes(f.read_bytes().replace(frames, frames[:-2] + b"x "))
    _one_line_exit_2(
        capsys, ["analyze", str(series), "--labels", str(labels)], "NumberOfFrames", "'x'"
    )


def test_prior_report_with_nan_in_a_text_field_exits_2(tmp_path, labels, capsys) -> None:
    prior = _report(
        tmp_path, "prior.json", '{"scan": {"source": NaN}, "vertebrae": [{"level": "L1"}]}'
    )
    current = _report(tmp_path, "current.json", '{"scan": {}, "vertebrae": [{"level": "L1"}]}')
    _one_line_exit_2(capsys, ["compare", str(prior), str(current)], "prior.json", "NaN")
    _one_line_exit_2(
        capsys, ["analyze", "--labels", str(labels), "--prior", str(prior)], "prior.json", "NaN"
    )


def test_deeply_nested_prior_exits_2(tmp_path, capsys) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    prior = _report(tmp_path, "prior.json", '{"scan": {}, "vertebrae": [], "x": ' + deep + "}")
    current = _report(tmp_path, "current.json", '{"scan": {}, "vertebrae": []}')
    _one_line_exit_2(capsys, ["compare", str(prior), str(current)], "nested more than 64")


def test_out_naming_an_existing_file_exits_2_before_the_analysis(
    tmp_path, labels, capsys, monkeypatch
) -> None:
    existing = tmp_path / "results"
    existing.write_text("not a folder")

    def never(*args, **kwargs):  # the check comes before any reading
        raise AssertionError("the study was read although --out cannot be written")

    monkeypatch.setattr("spinewatch.imaging.io.load_study", never)
    _one_line_exit_2(
        capsys,
        ["analyze", "--labels", str(labels), "--out", str(existing)],
        "--out",
        "exists and is not a folder",
    )
    assert existing.read_text() == "not a folder"
    report = _report(tmp_path, "r.json", '{"scan": {}, "vertebrae": []}')
    _one_line_exit_2(
        capsys, ["compare", str(report), str(report), "--out", str(tmp_path)], "is a folder"
    )
    _one_line_exit_2(capsys, ["analyze-batch", str(report), "--out", str(existing)], "not a folder")


def test_header_and_zip_bombs_exit_2(tmp_path, labels, capsys) -> None:
    bomb = header_bomb_nifti(tmp_path / "big.nii", (30000, 30000, 30000))
    _one_line_exit_2(capsys, ["analyze", "--labels", str(bomb)], "big.nii", "49.1 TiB")
    zipped = zip_bomb(tmp_path / "bomb.zip", 1 << 30)
    _one_line_exit_2(
        capsys, ["analyze", str(zipped), "--labels", str(labels)], "bomb.zip:image.dcm"
    )


def test_every_os_error_is_one_line_and_other_errors_keep_their_traceback() -> None:
    disk_full = OSError(errno.ENOSPC, "No space left on device", "/data/report.json")
    assert user_message(disk_full) == "no space left on the disk: /data/report.json"
    assert user_message(FileExistsError(17, "File exists", "out")) == "File exists: out"
    assert "SPINEWATCH_MAX_IMAGE_BYTES" in (user_message(MemoryError()) or "")
    assert user_message(KeyError("bug")) is None
    assert user_message(json.JSONDecodeError("x", "doc", 0)) is None  # a reader's job to wrap


def test_an_os_error_inside_a_command_exits_2(tmp_path, labels, capsys, monkeypatch) -> None:
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out"))

    monkeypatch.setattr("spinewatch.imaging.io.load_study", full_disk)
    _one_line_exit_2(capsys, ["analyze", "--labels", str(labels)], "no space left on the disk")
