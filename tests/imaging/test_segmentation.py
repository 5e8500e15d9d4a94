"""The built-in CT vertebra segmenter: phantoms (known truth), level naming rules, refusals, the
CLI, and the real scans of ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest

from spinewatch.cli import main
from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.io import load_ct, load_labels
from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom, write_phantom
from spinewatch.imaging.segmentation import (
    NoSpineError,
    NotCtError,
    ScoutError,
    get_segmenter,
    segment_ct,
)
from spinewatch.imaging.segmentation.levels import name_levels
from spinewatch.imaging.volume import CtVolume, Grid


def matched_dice(pred: np.ndarray, truth: np.ndarray) -> dict[int, float]:
    """Per truth label: Dice with the predicted label overlapping it most (0 when missed)."""
    out = {}
    for lab in np.unique(truth):
        if lab == 0:
            continue
        m = truth == lab
        vals, counts = np.unique(pred[m], return_counts=True)
        keep = vals > 0
        if not keep.any():
            out[int(lab)] = 0.0
            continue
        best = vals[keep][np.argmax(counts[keep])]
        p = pred == best
        out[int(lab)] = float(2 * np.count_nonzero(p & m) / (p.sum() + m.sum()))
    return out


PHANTOMS = {
    "ras-1mm": PhantomSpec(),
    "lps-0.8mm": PhantomSpec(orientation="LPS", spacing_mm=(0.8, 0.8, 0.8)),
    "pir-1.5mm": PhantomSpec(orientation="PIR", spacing_mm=(1.5, 1.5, 1.5)),
    "tilt15-3mm": PhantomSpec(tilt_deg=15.0, spacing_mm=(3.0, 3.0, 3.0)),
    "fractures-lesion-cement": PhantomSpec(
        deformities={"L1": ("wedge", 35.0), "L2": ("crush", 40.0), "L3": ("biconcave", 30.0)},
        lesions={"T12": (LesionSpec(8.0, (0.0, 0.0, 0.0)),)},
        cement=("L3",),
    ),
    "cervical-0.5mm": PhantomSpec(levels=("C4", "C5", "C6", "C7"), spacing_mm=(0.5, 0.5, 0.5)),
    # a lateral C curve: T8 and L3 centres ~20-28 mm off the apex, Cobb angle ~38 degrees
    "scoliosis-20deg": PhantomSpec(
        levels=("T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3"),
        scoliosis_deg=20.0,
        spacing_mm=(1.5, 1.5, 1.5),
    ),
}


@pytest.mark.parametrize("name", sorted(PHANTOMS))
def test_phantom_whole_vertebra_dice(name: str) -> None:
    phantom = make_spine_phantom(PHANTOMS[name])
    result = segment_ct(phantom.ct)
    assert result.labels.grid.same_as(phantom.ct.grid)
    dice = matched_dice(np.asarray(result.labels.labels), np.asarray(phantom.labels.labels))
    assert min(dice.values()) >= 0.90, dice
    # one label per drawn vertebra: a fractured, lytic or cemented body is not split or merged
    predicted = {v.label for v in result.vertebrae}
    assert len(predicted) == len(phantom.truth)


def test_scoliosis_phantom_bends_laterally() -> None:
    truth = make_spine_phantom(PHANTOMS["scoliosis-20deg"]).truth
    x = [truth[k].body_centroid_mm[0] for k in ("T8", "T11", "L3")]
    assert abs(x[0] - x[1]) > 15.0 and abs(x[2] - x[1]) > 15.0  # a C curve, apex near T11


def test_osteoporotic_phantom_dice() -> None:
    # marrow at 90 HU (below the bone threshold, near disc tissue) is filled inside its cortex
    # and kept apart from the spinal canal by position, not HU; discs still found between it
    spec = PhantomSpec(default_trabecular_hu=90.0, noise_hu_sd=20.0, seed=3)
    phantom = make_spine_phantom(spec)
    result = segment_ct(phantom.ct)
    dice = matched_dice(np.asarray(result.labels.labels), np.asarray(phantom.labels.labels))
    assert min(dice.values()) >= 0.90, dice
    assert len(result.vertebrae) == len(phantom.truth)


def test_phantom_without_landmark_is_named_relative_and_unconfirmed() -> None:
    result = segment_ct(make_spine_phantom(PhantomSpec()).ct)
    assert result.level_method == "relative"
    assert result.levels_confirmed is False
    assert all(v.level_confirmed is False for v in result.vertebrae)
    assert "unconfirmed" in result.level_evidence[-1]
    record = result.to_json_dict()
    assert record["segmenter"] == "spinewatch-classical" and record["version"]


def test_levels_from_the_sacrum_and_ribs_agreeing() -> None:
    # segment 1 = sacrum, 2..6 rib-free (L5..L1), 7..8 rib-bearing (T12, T11)
    ribs = {k: k >= 7 for k in range(1, 9)}
    naming = name_levels(8, True, ribs)
    assert naming.method == "sacrum+ribs" and naming.confirmed
    assert naming.levels[0] is VertebralLevel.L5 and naming.levels[5] is VertebralLevel.T12


def test_levels_when_ribs_and_sacrum_disagree_are_unconfirmed() -> None:
    ribs = {k: k >= 6 for k in range(1, 9)}  # only four rib-free vertebrae above the sacrum
    naming = name_levels(8, True, ribs)
    assert not naming.confirmed
    assert naming.levels[0] is VertebralLevel.L5
    assert "disagree" in " ".join(naming.evidence)


def test_levels_from_the_last_rib_alone_are_unconfirmed() -> None:
    # a 12th rib not found would shift every name by one: ribs alone never confirm
    ribs = {1: False, 2: False, 3: True, 4: True}
    naming = name_levels(4, False, ribs)
    assert naming.method == "ribs" and not naming.confirmed
    assert [str(x) for x in naming.levels] == ["L2", "L1", "T12", "T11"]


def test_levels_from_the_sacrum_with_a_missed_disc_are_unconfirmed() -> None:
    naming = name_levels(5, True, {}, spacing_problem="discs 70 mm apart")
    assert naming.method == "sacrum" and not naming.confirmed
    assert naming.levels[0] is VertebralLevel.L5
    assert "missed" in " ".join(naming.evidence)


def test_levels_from_the_sacrum_alone_are_confirmed() -> None:
    naming = name_levels(4, True, {})
    assert naming.method == "sacrum" and naming.confirmed
    assert [str(x) for x in naming.levels] == ["L5", "L4", "L3"]


def test_levels_without_landmark() -> None:
    naming = name_levels(3, False, {1: False, 2: False, 3: False})
    assert naming.method == "relative" and not naming.confirmed
    assert [str(x) for x in naming.levels] == ["L5", "L4", "L3"]


def test_scout_is_refused() -> None:
    grid = Grid((256, 256, 1), np.diag([1.0, 1.0, 5.0, 1.0]))
    ct = CtVolume(np.full((256, 256, 1), -1000, dtype=np.int16), grid, "scout.nii.gz")
    with pytest.raises(ScoutError, match="scout"):
        segment_ct(ct)


def test_ct_without_spine_is_refused() -> None:
    phantom = make_spine_phantom(PhantomSpec())
    hu = np.where(phantom.ct.hu > 150, 40, phantom.ct.hu).astype(np.int16)  # bone -> soft tissue
    with pytest.raises(NoSpineError, match="no vertebral column"):
        segment_ct(CtVolume(hu, phantom.ct.grid, "no-spine"))


def test_cli_segment_writes_totalsegmentator_ids(tmp_path, capsys) -> None:
    phantom = make_spine_phantom(PhantomSpec(spacing_mm=(1.5, 1.5, 1.5)))
    ct_path, _, _ = write_phantom(phantom, tmp_path / "ph")
    out = tmp_path / "seg.nii.gz"
    assert main(["segment", str(ct_path), "--out", str(out)]) == 0
    labels = load_labels(out)
    assert set(np.unique(labels.labels).tolist()) - {0} <= set(range(25, 51))
    assert labels.grid.same_as(load_ct(ct_path).grid)
    assert "UNCONFIRMED" in capsys.readouterr().out


def test_cli_segment_bad_input_exit_2(tmp_path, capsys) -> None:
    bad = tmp_path / "x.nii.gz"
    bad.write_bytes(b"not a nifti")
    assert main(["segment", str(bad), "--out", str(tmp_path / "o.nii.gz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.nii.gz" in err[0]


def test_cli_analyze_without_labels_segments_first(tmp_path, capsys) -> None:
    import json

    phantom = make_spine_phantom(PhantomSpec(spacing_mm=(1.5, 1.5, 1.5)))
    ct_path, _, _ = write_phantom(phantom, tmp_path / "ph")
    assert main(["analyze", str(ct_path), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["segmentation"]["segmenter"] == "spinewatch-classical"
    assert report["segmentation"]["levels_confirmed"] is False
    assert len(report["vertebrae"]) == 5
    assert (tmp_path / "out" / "labels.nii.gz").is_file()


def test_unknown_segmenter_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of builtin, totalsegmentator"):
        get_segmenter("nnunet")


# --------------------------------------------------------------------------------------------
# real scans


@pytest.mark.shared_data
def test_mri_is_refused(shared_file) -> None:
    ct = load_ct(shared_file("mri/tptbox-mri/sub-mri_label-6_T2w.nii.gz"))
    with pytest.raises(NotCtError, match="not a CT"):
        segment_ct(ct)


@pytest.mark.shared_data
def test_example_ct_segmented_and_named_from_a_landmark(shared_file) -> None:
    import nibabel as nib

    ct = load_ct(shared_file("ct/totalseg-example/example_ct.nii.gz"))
    result = segment_ct(ct)
    ref = np.asarray(nib.load(shared_file("ct/totalseg-example/example_seg.nii.gz")).dataobj)
    pred = np.asarray(result.labels.labels)[:, :, 82:112]
    ref = np.where((ref >= 25) & (ref <= 50), ref, 0)
    # the names must be TotalSegmentator's (same id), and confirmed from the sacrum: the L5/S1
    # disc is found along the tilted column and the bone below it joins both ilia; the 12th rib
    # running past L1 is credited to T12 (its medial end), so ribs agree
    assert result.level_method == "sacrum+ribs" and result.levels_confirmed
    for lab in (30, 31, 32):  # L2, L1, T12 (T11 has only 70 voxels in the reference)
        m, p = ref == lab, pred == lab
        same_id = 2 * np.count_nonzero(m & p) / (m.sum() + p.sum())
        assert same_id >= 0.85, (lab, same_id)  # figures in docs/validation.md
    named = {v.level: v for v in result.vertebrae}
    assert named["T12"].rib_bearing is True and named["L1"].rib_bearing is False


def _aligned(shared_file, ct_rel: str, labels_rel: str) -> tuple[np.ndarray, np.ndarray, object]:
    from spinewatch.imaging.io import align_labels

    ct = load_ct(shared_file(ct_rel))
    ref = np.asarray(align_labels(load_labels(shared_file(labels_rel)), ct.grid).labels)
    result = segment_ct(ct)
    return np.asarray(result.labels.labels), ref, result


@pytest.mark.shared_data
def test_small_field_of_view_example_slices_alone(shared_file) -> None:
    # the 30 slices of the example on their own: no sacrum in view, so whatever the names,
    # they must not be confirmed; the shapes still match TotalSegmentator's
    pred, ref, result = _aligned(
        shared_file,
        "ct/totalseg-example/example_ct_sm.nii.gz",
        "ct/totalseg-example/example_seg.nii.gz",
    )
    assert not result.levels_confirmed
    assert all(not v.level_confirmed for v in result.vertebrae)
    ref = np.where((ref >= 25) & (ref <= 50), ref, 0)
    dice = matched_dice(pred, ref)
    assert min(dice[30], dice[31], dice[32]) >= 0.85, dice  # figures in docs/validation.md


@pytest.mark.shared_data
def test_tptbox_crop_three_vertebrae(shared_file) -> None:
    # a 110 x 70 x 110 mm crop (L2-L4, two of them cut by the edge), thin noisy slices,
    # marrow ~60 HU: three vertebrae found, names relative and unconfirmed
    pred, ref, result = _aligned(
        shared_file,
        "ct/tptbox-ct/sub-ct_label-22_ct.nii.gz",
        "ct/tptbox-ct/sub-ct_seg-vert_label-22_msk.nii.gz",
    )
    assert not result.levels_confirmed
    dice = matched_dice(pred, ref)
    assert len({v.label for v in result.vertebrae}) == 3
    # below the 0.85 target (0.823-0.836 with the edge drawn at the cortex's half maximum, was
    # 0.779-0.810): figures and diagnosis in docs/validation.md (Built-in segmentation)
    assert min(dice.values()) >= 0.81, dice


@pytest.mark.shared_data
def test_dicom_series_with_contrast_is_not_confirmed(shared_file) -> None:
    # 20 slices (40 mm) through a destroyed T12 next to an enhanced aorta: the aorta is kept
    # out, the names stay unconfirmed (T11 and T12 one label: target not met, docs/validation.md)
    pred, ref, result = _aligned(
        shared_file, "ct/totalseg-example/dicom", "ct/totalseg-example/example_seg_dicom.nii.gz"
    )
    assert not result.levels_confirmed
    ref = np.where((ref >= 25) & (ref <= 50), ref, 0)
    dice = matched_dice(pred, ref)
    assert dice[32] >= 0.40, dice


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("first", "last"), [(0, 112), (36, 112), (40, 112), (44, 112), (60, 112), (20, 105), (0, 103)]
)
def test_example_ct_cropped_never_confirms_a_wrong_level(shared_file, first, last) -> None:
    # the same scan cut from below (the sacrum leaves the view; the promontory is near slice 44)
    # or from above (T12 leaves it; the T12/L1 disc is near slice 103). Each vertebra
    # TotalSegmentator names is either named the same here or marked unconfirmed -- never
    # wrong and confirmed. Measured on 63 crops (docs/validation.md): none was.
    import nibabel as nib

    ct = load_ct(shared_file("ct/totalseg-example/example_ct.nii.gz"))
    hu = np.ascontiguousarray(np.asarray(ct.hu)[:, :, first:last])
    affine = ct.grid.affine.copy()
    affine[:3, 3] += affine[:3, :3] @ np.array([0.0, 0.0, float(first)])
    result = segment_ct(CtVolume(hu, Grid(hu.shape, affine), f"slices {first}-{last}"))
    confirmed = {v.label: v.level_confirmed for v in result.vertebrae}
    ref = np.zeros(ct.grid.shape, dtype=np.int16)
    seg = nib.load(shared_file("ct/totalseg-example/example_seg.nii.gz"))
    ref[:, :, 82:112] = np.asarray(seg.dataobj)
    ref = ref[:, :, first:last]
    pred = np.asarray(result.labels.labels)
    for lab in (30, 31, 32):
        m = ref == lab
        if m.sum() < 300:  # (almost) out of view
            continue
        vals, counts = np.unique(pred[m], return_counts=True)
        keep = vals > 0
        best = int(vals[keep][np.argmax(counts[keep])]) if keep.any() else 0
        assert best == lab or not confirmed.get(best, False), (lab, best, result.level_evidence)
    if first >= 44:  # no bone joins the ilia below the lowest disc any more
        assert not result.levels_confirmed
