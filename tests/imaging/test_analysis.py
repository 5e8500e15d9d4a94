"""End-to-end analysis: phantom truth (lesions, cement, density), the JSON contract, real scans."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spinewatch.core.errors import InputError
from spinewatch.imaging.analysis import analyze, analyze_files, present_labels, resolve_convention
from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom, write_phantom
from spinewatch.imaging.report import format_text

LEVELS = ("T12", "L1", "L2")
CONTRACT_KEYS = {
    "level",
    "body_centroid_mm",
    "height_anterior_mm",
    "height_middle_mm",
    "height_posterior_mm",
    "genant_grade",
    "deformity",
    "height_loss_pct",
    "truncated",
    "trabecular_hu_median",
    "lytic_volume_ml",
    "lytic_fraction",
    "collapse_risk",
    "reasons",
    "sins_imaging",
    "quality_flags",
    "body_volume_ml",
    "frame",
    "reference_height_mm",
    "cement_volume_ml",
    "posterior_wall_involved",
    "pedicle_left_involved",
    "pedicle_right_involved",
}


def _no_nan(obj: object) -> None:
    if isinstance(obj, float):
        assert math.isfinite(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _no_nan(v)
    elif isinstance(obj, list):
        for v in obj:
            _no_nan(v)


@pytest.fixture(scope="module")
def treated_phantom():
    spec = PhantomSpec(
        levels=("T11", "T12", "L1", "L2", "L3"),
        spacing_mm=(1.0, 1.0, 1.0),
        deformities={"L1": ("wedge", 30.0)},
        lesions={"L2": (LesionSpec(8.0, (0.0, 2.0, 0.0)),)},
        cement=("T12",),
        trabecular_hu={"T11": 90.0},
    )
    ph = make_spine_phantom(spec)
    calls: list[tuple[int, int]] = []
    report = analyze(
        ph.ct, ph.labels, convention="auto", progress=lambda d, t: calls.append((d, t))
    )
    return ph, report.to_json_dict(), calls


def test_contract_order_and_json(treated_phantom) -> None:
    ph, rep, calls = treated_phantom
    assert [v["level"] for v in rep["vertebrae"]] == list(ph.truth)
    assert calls == [(i, 5) for i in range(1, 6)]
    scan = rep["scan"]
    assert scan["labels_convention"] == "totalsegmentator"
    assert scan["orientation"] == "RAS" and scan["shape"] == list(ph.ct.hu.shape)
    assert rep["report_version"] == 2
    # no acquisition given: CT, native, and the report says both were assumed
    assert (scan["modality"], scan["modality_source"]) == ("CT", "assumed")
    assert (scan["contrast_phase"], scan["contrast_source"]) == ("native", "assumed")
    assert scan["density_offset_hu"] == 0.0
    for v in rep["vertebrae"]:
        assert set(v) >= CONTRACT_KEYS
        assert v["collapse_risk"] in {"low", "moderate", "high"}
        assert v["deformity"] in {"none", "wedge", "biconcave", "crush"}
    _no_nan(rep)
    json.dumps(rep, allow_nan=False)
    text = format_text(rep)
    assert all(name in text for name in ph.truth)


def test_phantom_truth_end_to_end(treated_phantom) -> None:
    ph, rep, _ = treated_phantom
    got = {v["level"]: v for v in rep["vertebrae"]}
    for name, t in ph.truth.items():
        v = got[name]
        assert np.linalg.norm(np.subtract(v["body_centroid_mm"], t.body_centroid_mm)) < 1.0
        assert (v["genant_grade"], v["deformity"]) == (t.genant_grade, t.deformity)
    # lesion volume within 15 % of the voxels replaced
    assert got["L2"]["lytic_volume_ml"] == pytest.approx(ph.truth["L2"].lytic_volume_ml, rel=0.15)
    assert got["L2"]["n_lesions"] == 1
    assert got["L3"]["lytic_volume_ml"] < 0.1
    # cement reported, not called bone; density of the osteoporotic level
    assert "cement_present" in got["T12"]["quality_flags"]
    assert got["T12"]["cement_volume_ml"] == pytest.approx(
        ph.truth["T12"].cement_volume_ml, rel=0.2
    )
    assert got["T11"]["trabecular_hu_median"] == pytest.approx(90, abs=10)
    assert got["L3"]["trabecular_hu_median"] == pytest.approx(200, abs=10)
    assert got["L1"]["collapse_risk"] in {"moderate", "high"}


def test_without_ct_density_fields_are_null() -> None:
    ph = make_spine_phantom(PhantomSpec(levels=LEVELS, spacing_mm=(1.5, 1.5, 1.5)))
    rep = analyze(None, ph.labels, convention="totalsegmentator").to_json_dict()
    assert rep["scan"]["ct"] is None
    for v in rep["vertebrae"]:
        assert v["trabecular_hu_median"] is None and v["lytic_volume_ml"] is None
        assert v["cement_volume_ml"] is None and v["height_posterior_mm"] is not None
    _no_nan(rep)


def test_files_round_trip_and_verse_convention(tmp_path) -> None:
    ph = make_spine_phantom(
        PhantomSpec(
            levels=LEVELS, spacing_mm=(1.5, 1.5, 1.5), orientation="LPS", convention="verse"
        )
    )
    ct_path, lab_path, _ = write_phantom(ph, tmp_path)
    rep = analyze_files(ct_path, lab_path, convention="auto").to_json_dict()
    assert rep["scan"]["labels_convention"] == "verse"
    assert rep["scan"]["ct"] == str(ct_path)
    for v in rep["vertebrae"]:
        t = ph.truth[v["level"]]
        assert np.linalg.norm(np.subtract(v["body_centroid_mm"], t.body_centroid_mm)) < 1.0


def test_convention_helpers_and_errors() -> None:
    ph = make_spine_phantom(PhantomSpec(levels=LEVELS, spacing_mm=(2.0, 2.0, 2.0)))
    assert present_labels(ph.labels) == sorted(t.label for t in ph.truth.values())
    assert resolve_convention(ph.labels, "auto").value == "totalsegmentator"
    with pytest.raises(InputError, match="bogus"):
        resolve_convention(ph.labels, "bogus")


@pytest.mark.shared_data
def test_totalsegmentator_example_nifti(shared_file) -> None:
    ct = shared_file("ct/totalseg-example/example_ct_sm.nii.gz")
    seg = shared_file("ct/totalseg-example/example_seg.nii.gz")
    rep = analyze_files(ct, seg).to_json_dict()
    got = {v["level"]: v for v in rep["vertebrae"]}
    assert list(got) == ["T11", "T12", "L1", "L2"]
    assert got["T11"]["truncated"] and got["T12"]["truncated"] and got["L2"]["truncated"]
    assert not got["L1"]["truncated"] and got["L1"]["height_posterior_mm"] is not None
    # an aligned map lands on bone: trabecular HU of real vertebrae (not soft tissue ~40 HU)
    assert got["L2"]["trabecular_hu_median"] > 100
    assert 80 < got["L1"]["trabecular_hu_median"] < 300
    assert "coarse_slices" in got["L1"]["quality_flags"]  # 3 mm voxels
    _no_nan(rep)


@pytest.mark.shared_data
def test_totalsegmentator_example_dicom(shared_file) -> None:
    ct = shared_file("ct/totalseg-example/dicom")
    seg = shared_file("ct/totalseg-example/example_seg_dicom.nii.gz")
    rep = analyze_files(ct, seg).to_json_dict()
    assert rep["scan"]["orientation"] == "LPS"
    for v in rep["vertebrae"]:
        assert v["truncated"]  # 20 slices of 2 mm: every vertebra is cut
        assert v["trabecular_hu_median"] > 100


@pytest.mark.shared_data
def test_verse004_geometry_without_ct(shared_file) -> None:
    mask = shared_file("ct/verse004/sub-verse004_seg-vert_msk.nii.gz")
    ctd_path = shared_file("ct/verse004/sub-verse004_seg-subreg_ctd.json")
    rep = analyze_files(None, mask).to_json_dict()
    assert rep["scan"]["labels_convention"] == "verse" and rep["scan"]["orientation"] == "PIR"
    got = {v["label"]: v for v in rep["vertebrae"]}
    import nibabel as nib

    affine = nib.load(mask).affine
    errors = []
    for entry in json.loads(ctd_path.read_text())[1:]:
        expert = affine[:3, :3] @ [entry["X"], entry["Y"], entry["Z"]] + affine[:3, 3]
        errors.append(np.linalg.norm(np.subtract(got[entry["label"]]["body_centroid_mm"], expert)))
    assert np.median(errors) < 2.0
    # L1 (label 20) of VerSe004 is collapsed; its neighbours are not
    assert got[20]["genant_grade"] == 3
    assert got[19]["genant_grade"] == 0 and got[21]["genant_grade"] == 0
