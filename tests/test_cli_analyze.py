"""``spinewatch analyze``: the command-line contract on phantom files."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from spinewatch.cli import main
from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom, write_phantom


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    ph = make_spine_phantom(
        PhantomSpec(
            levels=("T12", "L1", "L2"),
            spacing_mm=(1.5, 1.5, 1.5),
            orientation="LPS",
            deformities={"L1": ("wedge", 30.0)},
            lesions={"L2": (LesionSpec(7.0),)},
        )
    )
    directory = tmp_path_factory.mktemp("study")
    ct, labels, _truth = write_phantom(ph, directory)
    return ph, ct, labels, directory


def test_json_output(study, capsys) -> None:
    ph, ct, labels, _ = study
    assert main(["analyze", str(ct), "--labels", str(labels), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [v["level"] for v in out["vertebrae"]] == ["T12", "L1", "L2"]
    l1 = out["vertebrae"][1]
    assert (l1["genant_grade"], l1["deformity"]) == (2, "wedge")
    assert out["vertebrae"][2]["lytic_volume_ml"] > 0.5
    for v in out["vertebrae"]:
        t = ph.truth[v["level"]]
        assert np.linalg.norm(np.subtract(v["body_centroid_mm"], t.body_centroid_mm)) < 1.0


def test_labels_only_text_and_verse_flag(study, capsys) -> None:
    _, _ct, labels, _ = study
    code = main(["analyze", "--labels", str(labels), "--labels-convention", "totalsegmentator",
                 "--format", "text"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "geometry only" in text and "L1" in text and "wedge" in text
    # the wrong convention: these labels are not VerSe vertebrae -> exit 2, one message
    assert main(["analyze", "--labels", str(labels), "--labels-convention", "verse"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spinewatch: error:") and err.count("\n") == 1


def test_out_dir_and_prior(study, tmp_path, capsys) -> None:
    _, ct, labels, _ = study
    out_dir = tmp_path / "out"
    assert main(["analyze", str(ct), "--labels", str(labels), "--out", str(out_dir)]) == 0
    capsys.readouterr()
    report = json.loads((out_dir / "report.json").read_text())
    png = (out_dir / "spine.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(report["vertebrae"]) == 3
    prior = out_dir / "report.json"
    args = ["analyze", str(ct), "--labels", str(labels), "--prior", str(prior)]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert "comparison" in out


def test_bad_inputs_exit_2(study, tmp_path, capsys) -> None:
    _, ct, labels, _ = study
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not an image at all")
    other = make_spine_phantom(PhantomSpec(levels=("L1", "L2"), spacing_mm=(2.0, 2.0, 2.0)))
    other_ct, _, _ = write_phantom(other, tmp_path / "other")
    truncated = tmp_path / "cut.nii.gz"
    truncated.write_bytes(ct.read_bytes()[:2000])
    cases = [
        ["analyze"],  # neither a CT to segment nor --labels
        ["analyze", str(ct), "--labels", str(tmp_path / "missing.nii.gz")],
        ["analyze", str(junk), "--labels", str(labels)],
        ["analyze", str(truncated), "--labels", str(labels)],
        ["analyze", str(other_ct), "--labels", str(labels)],  # grids differ
    ]
    for args in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("spinewatch: error:"), (args, err)
        assert "Traceback" not in err


def test_labels_in_another_voxel_order_are_aligned(study, tmp_path, capsys) -> None:
    _, ct, labels, _ = study
    img = nib.load(labels)
    flipped = nib.as_closest_canonical(img)  # LPS -> RAS: same physical grid, other order
    path = tmp_path / "ras_labels.nii.gz"
    nib.save(flipped, path)
    assert main(["analyze", str(ct), "--labels", str(labels)]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(["analyze", str(ct), "--labels", str(path)]) == 0
    b = json.loads(capsys.readouterr().out)
    for va, vb in zip(a["vertebrae"], b["vertebrae"], strict=True):
        assert va["body_centroid_mm"] == vb["body_centroid_mm"]
        assert va["height_posterior_mm"] == vb["height_posterior_mm"]
        assert va["trabecular_hu_median"] == vb["trabecular_hu_median"]


def test_start_up_is_light() -> None:
    code = (
        "import sys; from spinewatch.cli import build_parser; build_parser(); "
        "heavy = [m for m in ('numpy', 'scipy', 'nibabel', 'django', 'spinewatch.imaging.analysis')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "spinewatch.imaging.analysis" not in out.stdout and "scipy" not in out.stdout


def test_fast_flag_uses_the_working_grid(tmp_path, capsys) -> None:
    phantom = make_spine_phantom(
        PhantomSpec(levels=("T12", "L1", "L2"), spacing_mm=(0.6, 0.6, 0.6), noise_hu_sd=5.0)
    )
    ct, labels, _ = write_phantom(phantom, tmp_path)
    reports = {}
    for mode in ("exact", "fast"):
        argv = ["analyze", str(ct), "--labels", str(labels), "--format", "json"]
        assert main([*argv, "--fast"] if mode == "fast" else argv) == 0
        reports[mode] = json.loads(capsys.readouterr().out)
    exact = {v["level"]: v for v in reports["exact"]["vertebrae"]}
    fast = {v["level"]: v for v in reports["fast"]["vertebrae"]}
    assert list(exact) == list(fast) == ["T12", "L1", "L2"]
    # same answers within the documented tolerance, but a different computation
    assert any(exact[k]["body_volume_ml"] != fast[k]["body_volume_ml"] for k in exact)
    for level, truth in phantom.truth.items():
        assert fast[level]["height_middle_mm"] == pytest.approx(truth.height_middle_mm, abs=1.0)
