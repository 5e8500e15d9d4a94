"""spinewatch.imaging.segmenters: TotalSegmentator command building and output reading.

TotalSegmentator itself (and its weights) is not installed here: running it is tested with a
stand-in executable on PATH that behaves like its CLI (writes the -o file or fails).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from spinewatch.core.conventions import LabelConvention, level_for_label
from spinewatch.imaging.io import ImageReadError, load_labels
from spinewatch.imaging.segmenters import (
    INSTALL_HINT,
    SegmenterFailed,
    SegmenterUnavailable,
    read_totalsegmentator_output,
    run_totalsegmentator,
    totalsegmentator_command,
    vertebra_roi_subset,
)

SEG = "ct/totalseg-example/example_seg.nii.gz"


def _ts_parser() -> argparse.ArgumentParser:
    """The subset of TotalSegmentator v2's own argparse definition that our command uses
    (totalsegmentator/bin/TotalSegmentator.py)."""
    p = argparse.ArgumentParser(prog="TotalSegmentator")
    p.add_argument("-i", dest="input", required=True)
    p.add_argument("-o", dest="output", required=True)
    p.add_argument("-ml", "--ml", action="store_true")
    p.add_argument("-f", "--fast", action="store_true")
    p.add_argument("-ta", "--task", default="total")
    p.add_argument("-rs", "--roi_subset", nargs="+")
    p.add_argument("-d", "--device", default="gpu")
    return p


def test_command_parses_as_totalsegmentator_v2_arguments() -> None:
    cmd = totalsegmentator_command(Path("/data/ct.nii.gz"), Path("/tmp/out.nii.gz"), fast=True)
    assert cmd[0] == "TotalSegmentator"
    args = _ts_parser().parse_args(cmd[1:])
    assert args.input == "/data/ct.nii.gz"
    assert args.output == "/tmp/out.nii.gz"
    assert args.ml and args.fast
    assert args.task == "total"
    assert args.device == "cpu"
    assert args.roi_subset == vertebra_roi_subset()
    slow = _ts_parser().parse_args(totalsegmentator_command("a", "b", device="gpu:1")[1:])
    assert not slow.fast
    assert slow.device == "gpu:1"


def test_roi_subset_is_every_totalsegmentator_vertebra() -> None:
    names = vertebra_roi_subset()
    assert len(names) == 7 + 12 + 5 + 1  # C1..C7, T1..T12, L1..L5, S1
    assert names[0] == "vertebrae_C1" and names[-1] == "vertebrae_S1"
    assert "vertebrae_T13" not in names and "vertebrae_L6" not in names


def test_bad_device_is_refused() -> None:
    with pytest.raises(ValueError, match="'tpu'"):
        totalsegmentator_command("a", "b", device="tpu")


def test_missing_totalsegmentator_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(SegmenterUnavailable) as info:
        run_totalsegmentator(tmp_path / "ct.nii.gz", tmp_path / "work")
    assert INSTALL_HINT in str(info.value)
    assert "pip install TotalSegmentator" in str(info.value)


def _fake_cli(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir()
    exe = bin_dir / "TotalSegmentator"
    exe.write_text(f"#!{sys.executable}\nimport shutil, sys\nargs = sys.argv[1:]\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


@pytest.mark.shared_data
def test_run_with_a_stand_in_cli_returns_its_output(
    shared_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seg = shared_file(SEG)
    _fake_cli(
        tmp_path / "bin",
        f"assert '--ml' in args and '--roi_subset' in args\n"
        f"shutil.copy({str(seg)!r}, args[args.index('-o') + 1])",
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", ""))
    out = run_totalsegmentator(tmp_path / "ct.nii.gz", tmp_path / "work")
    assert out.parent == tmp_path / "work"
    np.testing.assert_array_equal(read_totalsegmentator_output(out).labels, load_labels(seg).labels)


def test_failing_segmenter_reports_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_cli(tmp_path / "bin", "sys.stderr.write('CUDA out of memory\\n'); sys.exit(3)")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(SegmenterFailed, match=r"exit status 3: CUDA out of memory"):
        run_totalsegmentator(tmp_path / "ct.nii.gz", tmp_path / "work")
    (tmp_path / "bin" / "TotalSegmentator").unlink()
    _fake_cli(tmp_path / "bin2", "pass")
    monkeypatch.setenv("PATH", str(tmp_path / "bin2"))
    with pytest.raises(SegmenterFailed, match="wrote no"):
        run_totalsegmentator(tmp_path / "ct.nii.gz", tmp_path / "work")


# ---------------------------------------------------------------------------------- real outputs


@pytest.mark.shared_data
def test_real_multilabel_output_reads_in_total_numbering(shared_file) -> None:
    lv = read_totalsegmentator_output(shared_file(SEG))
    raw = np.asarray(nib.load(str(shared_file(SEG))).dataobj)
    np.testing.assert_array_equal(lv.labels, raw)
    levels = {
        str(level_for_label(int(v), LabelConvention.TOTALSEGMENTATOR))
        for v in np.unique(lv.labels)
        if level_for_label(int(v), LabelConvention.TOTALSEGMENTATOR) is not None
    }
    assert {"L1", "L2", "T12"} <= levels


@pytest.mark.shared_data
def test_real_label_table_names_our_roi_subset(shared_file) -> None:
    """TotalSegmentator's own label table (in the real file's header) names every class in our
    --roi_subset with the id our convention gives it."""
    from spinewatch.imaging.segmenters import label_table

    table = label_table(shared_file(SEG))
    by_name = {name: key for key, name in table.items()}
    for name in vertebra_roi_subset():
        level = level_for_label(by_name[name], LabelConvention.TOTALSEGMENTATOR)
        assert level is not None and f"vertebrae_{level}" == name


@pytest.mark.shared_data
def test_real_per_structure_directory_gives_the_same_map(shared_file, tmp_path: Path) -> None:
    img = nib.load(str(shared_file(SEG)))
    labels = np.asarray(img.dataobj)
    table = {30: "vertebrae_L2", 31: "vertebrae_L1", 32: "vertebrae_T12", 33: "vertebrae_T11"}
    out = tmp_path / "segmentations"
    out.mkdir()
    for key, name in table.items():
        mask = (labels == key).astype(np.uint8)
        nib.save(nib.Nifti1Image(mask, img.affine), str(out / f"{name}.nii.gz"))
    nib.save(nib.Nifti1Image((labels == 5).astype(np.uint8), img.affine), str(out / "liver.nii.gz"))
    nib.save(
        nib.Nifti1Image((labels == 25).astype(np.uint8), img.affine), str(out / "sacrum.nii.gz")
    )
    (out / "statistics.json").write_text("{}")
    combined = read_totalsegmentator_output(out)
    expected = np.where(np.isin(labels, list(table)), labels, 0)
    np.testing.assert_array_equal(combined.labels, expected)
    np.testing.assert_allclose(combined.grid.affine, img.affine, atol=1e-5)


def test_renumbered_multilabel_file_is_mapped_through_its_label_table(tmp_path: Path) -> None:
    arr = np.zeros((4, 4, 3), dtype=np.uint8)
    arr[0] = 1
    arr[1] = 2
    arr[2] = 3
    img = nib.Nifti1Image(arr, np.eye(4))
    xml = (
        '<?xml version="1.0"?><CaretExtension><LabelTable>'
        '<Label Key="1" Red="1"><![CDATA[vertebrae_L1]]></Label>'
        '<Label Key="2" Red="1"><![CDATA[vertebrae_T12]]></Label>'
        '<Label Key="3" Red="1"><![CDATA[liver]]></Label>'
        "</LabelTable></CaretExtension>"
    )
    img.header.extensions.append(nib.nifti1.Nifti1Extension(0, xml.encode()))
    nib.save(img, str(tmp_path / "subset.nii.gz"))
    lv = read_totalsegmentator_output(tmp_path / "subset.nii.gz")
    assert set(np.unique(lv.labels[0]).tolist()) == {31}
    assert set(np.unique(lv.labels[1]).tolist()) == {32}
    assert set(np.unique(lv.labels[2]).tolist()) == {0}  # not a vertebra


def test_directory_without_vertebra_masks_or_with_non_binary_mask(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4)), str(tmp_path / "liver.nii"))
    with pytest.raises(ImageReadError, match="no vertebra masks"):
        read_totalsegmentator_output(tmp_path)
    nib.save(
        nib.Nifti1Image(np.full((2, 2, 2), 7, np.uint8), np.eye(4)),
        str(tmp_path / "vertebrae_L3.nii.gz"),
    )
    with pytest.raises(ImageReadError, match="binary mask"):
        read_totalsegmentator_output(tmp_path)


@pytest.mark.shared_data
def test_one_label_vertebrae_output_is_refused(shared_file) -> None:
    """total_mr writes every vertebra into label 19 'vertebrae': no 'total' id can hold it."""
    from spinewatch.core.conventions import ConventionError

    path = shared_file("mri/totalseg-example-mr/example_seg_mr.nii.gz")
    with pytest.raises(ConventionError) as info:
        read_totalsegmentator_output(path)
    message = str(info.value)
    assert "label 19 'vertebrae'" in message and "total_mr" in message
    assert "--lowest-level" in message
