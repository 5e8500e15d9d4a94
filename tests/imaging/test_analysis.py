"""End-to-end analysis: phantom truth (lesions, cement, density), the JSON contract, real scans."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spinewatch.core.errors import InputError
from spinewatch.imaging.analysis import analyze, analyze_files, present_labels, resolve_convention
from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom, write_phantom
from spinewatch.imaging.report import SpineReport, format_text

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
    "not_measured",
    "confidence",
    "confidence_reasons",
    "noise_hu_sd",
    "treat_signal",
    "treat_signal_reasons",
    "change_flags",
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
    assert scan["compared_with"] is None
    for v in rep["vertebrae"]:
        assert set(v) >= CONTRACT_KEYS
        # every phantom vertebra is whole and measured: a verdict, never "not assessable"
        assert v["collapse_risk"] in {"low", "moderate", "high"}
        assert v["not_measured"] == []
        assert v["deformity"] in {"none", "wedge", "biconcave", "crush"}
        # 1 mm voxels, whole vertebrae, phantom noise: high confidence, said why
        assert v["confidence"] == "high", v["confidence_reasons"]
        assert v["confidence_reasons"][0] == "no quality concern"
        assert v["noise_hu_sd"] is not None
        assert (v["treat_signal"], v["treat_signal_reasons"], v["change_flags"]) == (None, [], [])
    _no_nan(rep)
    json.dumps(rep, allow_nan=False)
    text = format_text(SpineReport.from_json_dict(rep))
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
        # heights alone cannot call a vertebra safe
        if v["genant_grade"] == 0:
            assert v["collapse_risk"] == "not_assessable"
            assert v["reasons"][0] == (
                "not assessable: trabecular density and lytic lesions not assessed (no CT)"
            )
        assert v["sins_imaging"]["bone_lesion"] == "not_assessed"
        assert v["confidence"] == "medium" and v["noise_hu_sd"] is None
        assert "label map only: no density, lesions" in v["confidence_reasons"]
    _no_nan(rep)
    text = format_text(SpineReport.from_json_dict(rep))
    assert "not assessable" in text and "low " not in text


def test_mri_is_measured_for_geometry_only() -> None:
    from spinewatch.core.acquisition import MRI_NOT_ASSESSED, Acquisition
    from spinewatch.imaging.volume import MrVolume

    spec = PhantomSpec(levels=LEVELS, spacing_mm=(1.5, 1.5, 1.5), deformities={"L1": ("wedge", 30)})
    ph = make_spine_phantom(spec)
    mri = Acquisition(modality="MR", modality_source="user")
    # the phantom's values as MRI signal: an MrVolume never reaches the HU measurements
    image = MrVolume(signal=ph.ct.hu, grid=ph.ct.grid, source="phantom MRI", acquisition=mri)
    rep = analyze(image, ph.labels, convention="totalsegmentator").to_json_dict()
    got = {v["level"]: v for v in rep["vertebrae"]}
    for v in got.values():
        assert v["trabecular_hu_median"] is None and v["lytic_volume_ml"] is None
        assert v["cement_volume_ml"] is None and v["noise_hu_sd"] is None
        assert v["height_anterior_mm"] is not None
        assert any(MRI_NOT_ASSESSED in x for x in v["reasons"])
        assert v["confidence"] == "medium"
    assert got["T12"]["collapse_risk"] == "not_assessable"
    assert got["L1"]["collapse_risk"] == "high" and got["L1"]["genant_grade"] == 2


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
    # the truncated vertebrae have no heights: never "low"; the reasons say why
    for name in ("T11", "T12", "L2"):
        v = got[name]
        assert v["collapse_risk"] != "low"
        assert "heights not measured (vertebra cut by the scan edge)" in v["not_measured"]
        assert v["sins_imaging"]["collapse"] == "not_assessed"
        assert v["confidence"] == "low"
        assert any(r.startswith("vertebra cut by the scan edge") for r in v["confidence_reasons"])
    # 3 mm slices: at best medium; noise of a routine abdominal CT, estimated around the bone
    assert got["L1"]["confidence"] == "medium"
    assert "voxel 3.0 mm along the superior axis (> 1.5 mm)" in got["L1"]["confidence_reasons"]
    assert 10.0 < got["L1"]["noise_hu_sd"] < 50.0
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


def _cta(shared_file):  # type: ignore[no-untyped-def]
    from spinewatch.imaging.io import load_ct, load_labels
    from spinewatch.imaging.volume import LabelVolume

    ct = load_ct(shared_file("ct/totalseg-aorta-cta/ct_cropped.nii.gz"))
    mask = load_labels(shared_file("ct/totalseg-aorta-cta/vertebrae_T12.nii.gz"))
    # TotalSegmentator's binary T12 mask, read as its "total" id of T12 (32)
    labels = LabelVolume(
        (np.asarray(mask.labels) != 0).astype(np.int16) * 32, mask.grid, mask.source
    )
    return ct, labels


@pytest.mark.shared_data
def test_contrast_phase_shifts_the_density_thresholds_on_the_real_cta(shared_file) -> None:
    """The real CTA crop (arterial phase): the T12 thresholds move up by the phase's offset."""
    from spinewatch.core.acquisition import Acquisition
    from spinewatch.imaging.volume import CtVolume

    ct, labels = _cta(shared_file)

    def t12(scan: CtVolume, phase: str) -> dict:
        acq = Acquisition(contrast_phase=phase, contrast_source="user")
        rep = analyze(scan, labels, convention="totalsegmentator", acquisition=acq)
        out = rep.to_json_dict()
        assert out["scan"]["density_offset_hu"] == acq.contrast_phase.density_offset_hu
        (v,) = out["vertebrae"]
        return v

    native, arterial, unknown = (t12(ct, p) for p in ("native", "arterial", "unknown"))
    hu = native["trabecular_hu_median"]
    assert 90 < hu < 110  # measured on this crop: ~102 HU (contrast-enhanced marrow)
    assert arterial["trabecular_hu_median"] == hu  # the HU are measured, never shifted
    assert f"trabecular {hu:.0f} HU (<= 110 HU: osteoporosis" in " ".join(native["reasons"])
    assert (
        f"trabecular {hu:.0f} HU (<= 130 HU = 110 + 20 HU arterial contrast: osteoporosis"
        in " ".join(arterial["reasons"])
    )
    assert "(<= 130 HU = 110 + 20 HU contrast, phase unknown: osteoporosis" in " ".join(
        unknown["reasons"]
    )
    assert "contrast_offset_plus_20_hu" in arterial["density_flags"]
    assert "contrast_offset_plus_20_hu" not in native["density_flags"]
    # T12 is cut by the crop: no heights, but the density is evidence -> moderate, not hidden
    assert native["truncated"] and native["collapse_risk"] == "moderate"

    # The same real marrow 15 HU denser (as if more enhanced): native thresholds call it only
    # a fracture-risk mention (low), the arterial ones still osteoporotic (moderate).
    denser = CtVolume(np.asarray(ct.hu, dtype=np.float32) + 15.0, ct.grid, ct.source, ct.meta)
    native, arterial = t12(denser, "native"), t12(denser, "arterial")
    assert 110 < native["trabecular_hu_median"] <= 125
    assert "osteoporosis_hu_le_110" not in native["density_flags"]
    assert "osteoporosis_hu_le_110" in arterial["density_flags"]
    assert native["collapse_risk"] == "not_assessable"  # no rule fired, heights missing
    assert arterial["collapse_risk"] == "moderate"


def test_every_report_key_is_documented(treated_phantom) -> None:
    """docs/report.md documents every key the analysis writes (and the comparison adds)."""
    from pathlib import Path

    from spinewatch.imaging.compare import apply_comparison, compare_reports

    _, rep, _ = treated_phantom
    report = SpineReport.from_json_dict(rep)
    compared = apply_comparison(report, compare_reports(report, report)).to_json_dict()
    doc = (Path(__file__).resolve().parents[2] / "docs" / "report.md").read_text()
    keys = set(compared) | set(compared["scan"]) | set(compared["scan"]["compared_with"])
    for v in compared["vertebrae"]:
        keys |= set(v) | set(v["frame"]) | set(v["sins_imaging"] or {})
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert not missing, f"undocumented report keys: {missing}"
