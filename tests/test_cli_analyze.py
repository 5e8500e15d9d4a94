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
    # the same scan: nothing changed, every level compared, no signal, risks as measured
    assert [v["treat_signal"] for v in out["vertebrae"]] == [False, False, False]
    assert [v["collapse_risk"] for v in out["vertebrae"]] == [
        v["collapse_risk"] for v in report["vertebrae"]
    ]
    assert out["scan"]["compared_with"]["source"] == str(prior)


def test_prior_signal_raises_the_risk_in_the_report_text_and_picture(study, tmp_path, capsys):
    _, ct, labels, _ = study
    assert main(["analyze", str(ct), "--labels", str(labels)]) == 0
    earlier = json.loads(capsys.readouterr().out)
    # the prior scan, one year earlier: L2 had no lesion then, T12 was 3 mm taller
    earlier["scan"]["study_date"] = "2024-01-15"
    by_level = {v["level"]: v for v in earlier["vertebrae"]}
    by_level["L2"].update(lytic_volume_ml=0.0, lytic_fraction=0.0, n_lesions=0)
    for key in ("height_anterior_mm", "height_middle_mm", "height_posterior_mm"):
        by_level["T12"][key] += 3.0
    prior = tmp_path / "prior.json"
    prior.write_text(json.dumps(earlier))
    out_dir = tmp_path / "out"
    args = ["analyze", str(ct), "--labels", str(labels), "--prior", str(prior)]
    assert main([*args, "--out", str(out_dir)]) == 0
    out = {v["level"]: v for v in json.loads(capsys.readouterr().out)["vertebrae"]}
    assert out["L2"]["treat_signal"] is True and out["L2"]["change_flags"] == ["new_lesion"]
    assert out["L2"]["collapse_risk"] == "high"  # a new lesion: the actionable finding
    assert "collapse risk raised from" in out["L2"]["reasons"][0]
    assert out["T12"]["treat_signal"] is True and out["T12"]["change_flags"] == ["height_loss"]
    assert out["T12"]["collapse_risk"] == "moderate"  # early height loss: at least moderate
    written = json.loads((out_dir / "report.json").read_text())
    assert {v["level"]: v["collapse_risk"] for v in written["vertebrae"]} == {
        name: v["collapse_risk"] for name, v in out.items()
    }
    assert main([*args, "--format", "text"]) == 0
    text = capsys.readouterr().out
    l2_line = next(line for line in text.splitlines() if line.startswith("L2 "))
    assert "high" in l2_line and "TREAT" in l2_line and "signal: new lytic lesion" in l2_line
    assert f"compared with: {prior}" in text


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


# -- label maps that cannot be read as they are (real maps of ../shared/data) ---------------------

REFUSED = [
    ("mri/totalseg-example-mr/example_seg_mr.nii.gz", [], "holds 2 vertebra-like pieces"),
    ("mri/totalseg-example-mr/example_seg_mr.nii.gz", ["--labels-convention", "totalsegmentator"],
     "no label plausibly a vertebra"),
    ("mri/tptbox-mri/sub-mri_seg-vert_label-6_msk.nii.gz", [], "do not fit their levels"),
    ("mri/tptbox-mri/sub-mri_seg-subreg_label-6_msk.nii.gz", [], "subregion map"),
    ("ct/tptbox-ct/sub-ct_seg-subreg_label-22_msk.nii.gz", [], "subregion map"),
    ("ct/totalseg-aorta-cta/vertebrae_T12.nii.gz", [], "--level LEVEL"),
    ("ct/verse004-L2-crop/sub-verse004_0000_vertebra_21_seg.nii.gz", [], "readings considered"),
]  # fmt: skip


@pytest.mark.shared_data
@pytest.mark.parametrize(("relative", "extra", "reason"), REFUSED)
def test_unreadable_label_maps_exit_2_with_one_line(
    shared_file, capsys, relative: str, extra: list[str], reason: str
) -> None:
    path = shared_file(relative)
    assert main(["analyze", "--labels", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spinewatch: error:") and err.count("\n") == 1
    assert relative.split("/")[-1] in err and reason in err


def test_level_and_lowest_level_exclude_each_other(study, capsys) -> None:
    _, _ct, labels, _ = study
    with pytest.raises(SystemExit) as info:  # argparse's usage error
        main(["analyze", "--labels", str(labels), "--level", "T12", "--lowest-level", "L1"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.shared_data
def test_levels_named_on_the_command_line(shared_file, tmp_path, capsys) -> None:
    mr = shared_file("mri/tptbox-mri/sub-mri_seg-vert_label-6_msk.nii.gz")
    image = shared_file("mri/tptbox-mri/sub-mri_label-6_T2w.nii.gz")
    out_dir = tmp_path / "mr"
    argv = ["analyze", str(image), "--labels", str(mr), "--lowest-level", "L2", "--out",
            str(out_dir)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert [v["level"] for v in report["vertebrae"]] == ["T12", "L1", "L2"]
    assert report["scan"]["labels_convention"] == "tptbox"
    assert report["scan"]["levels_named_by"] == "user: --lowest-level L2"
    assert report["scan"]["rejected_labels"] == []
    assert (out_dir / "spine.png").read_bytes()[:4] == b"\x89PNG"

    cta = shared_file("ct/totalseg-aorta-cta/vertebrae_T12.nii.gz")
    assert main(["analyze", "--labels", str(cta), "--level", "T12", "--labels-convention",
                 "binary"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert [v["level"] for v in report["vertebrae"]] == ["T12"]
    assert report["scan"]["labels_convention"] == "binary"
    assert report["scan"]["labels_convention_source"] == "user"


# -- modality and contrast phase ----------------------------------------------------------------


def _run_json(capsys, *argv: str) -> dict:
    assert main(["analyze", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_auto_detects_the_phantom_as_ct_and_records_why(study, capsys) -> None:
    _, ct, labels, _ = study
    scan = _run_json(capsys, str(ct), "--labels", str(labels))["scan"]
    assert (scan["modality"], scan["modality_source"]) == ("CT", "detected")
    assert "bright cortical rims" in scan["modality_evidence"]
    assert (scan["contrast_phase"], scan["contrast_source"]) == ("native", "assumed")
    assert "no contrast-filled aorta or IVC found in front of T12-L2" in scan["contrast_evidence"]


def test_modality_mr_gives_geometry_only(study, capsys) -> None:
    _, ct, labels, _ = study
    # a TotalSegmentator CT ("total") map is not read on an MRI unless the user says so
    out = _run_json(
        capsys,
        str(ct),
        "--labels",
        str(labels),
        "--modality",
        "mr",
        "--labels-convention",
        "totalsegmentator",
    )
    assert (out["scan"]["modality"], out["scan"]["modality_source"]) == ("MR", "user")
    for v in out["vertebrae"]:
        assert v["trabecular_hu_median"] is None and v["lytic_volume_ml"] is None
        assert v["not_assessed"] == ["MRI: not assessed"]
    assert out["vertebrae"][1]["genant_grade"] == 2  # the geometry is still measured


def test_contrast_phase_option_is_recorded_with_its_offset(study, capsys) -> None:
    _, ct, labels, _ = study
    scan = _run_json(capsys, str(ct), "--labels", str(labels), "--contrast-phase", "portal-venous")[
        "scan"
    ]
    assert (scan["contrast_phase"], scan["contrast_source"]) == ("portal_venous", "user")
    assert scan["density_offset_hu"] == 14.75
    assert main(["analyze", str(ct), "--labels", str(labels), "--format", "text"]) == 0
    assert "acquisition: CT, native (no contrast), assumed" in capsys.readouterr().out


def test_undecidable_modality_and_contradictions_exit_2_in_one_line(
    study, tmp_path, capsys
) -> None:
    _, ct, labels, _ = study
    rng = np.random.default_rng(1)
    values = rng.uniform(-25.0, 300.0, size=(30, 30, 30)).astype(np.float32)
    values.flat[::100] = -60.0  # 1 % below -30 HU: neither an MRI nor a fat population
    seg = np.zeros(values.shape, np.uint8)
    seg[10:20, 10:20, 2:14], seg[10:20, 10:20, 16:28] = 20, 21
    odd, odd_labels = tmp_path / "odd.nii.gz", tmp_path / "odd_seg.nii.gz"
    # 3 mm voxels: the two labelled blocks are 32 ml, the size of a lumbar vertebra
    nib.save(nib.Nifti1Image(values, np.diag([3.0, 3.0, 3.0, 1.0])), odd)
    nib.save(nib.Nifti1Image(seg, np.diag([3.0, 3.0, 3.0, 1.0])), odd_labels)
    cases = [
        (["analyze", str(odd), "--labels", str(odd_labels)], "cannot tell CT from MRI"),
        (["analyze", str(ct), "--labels", str(labels), "--modality", "mr",
          "--contrast-phase", "arterial"], "is a CT phase; an MRI has none"),
        (["analyze", str(ct), "--segment", "totalsegmentator", "--modality", "mr"],
         "give --labels for an MRI"),
    ]  # fmt: skip
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("spinewatch: error:") and err.count("\n") == 1, err
        assert expected in err
    assert main(["analyze", str(odd), "--labels", str(odd_labels), "--modality", "ct"]) == 0
    assert json.loads(capsys.readouterr().out)["scan"]["modality_source"] == "user"


def test_help_explains_the_modality_and_contrast_options(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--modality {auto,ct,mr}" in text and "refused when unsure" in text
    assert "--contrast-phase {auto,native,arterial,portal-venous,delayed,unknown}" in text
    assert "shifts the density thresholds" in text
