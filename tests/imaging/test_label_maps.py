"""Reading label maps: every real map of ../shared/data read right or refused for a good reason;
one-label maps refused or split; non-vertebrae given vertebra ids rejected (imaging side:
geometry, :mod:`spinewatch.imaging.label_reading`). The id tables: tests/core."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from spinewatch.core.conventions import LabelConvention, label_for_level, vertebra_labels
from spinewatch.imaging.analysis import analyze, resolve_convention
from spinewatch.imaging.io import load_labels
from spinewatch.imaging.label_check import LEVEL_NORMS, measure_labels
from spinewatch.imaging.label_reading import LabelMapRefused, prepare_labels
from spinewatch.imaging.label_split import split_vertebrae
from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom
from spinewatch.imaging.volume import LabelVolume

Shared = Callable[[str], Path]

TS_SEG = "ct/totalseg-example/example_seg.nii.gz"
TS_DICOM_SEG = "ct/totalseg-example/example_seg_dicom.nii.gz"
VERSE = "ct/verse004/sub-verse004_seg-vert_msk.nii.gz"
TPT_CT = "ct/tptbox-ct/sub-ct_seg-vert_label-22_msk.nii.gz"
TPT_CT_SUB = "ct/tptbox-ct/sub-ct_seg-subreg_label-22_msk.nii.gz"
CTA_T12 = "ct/totalseg-aorta-cta/vertebrae_T12.nii.gz"
L2_CROP = "ct/verse004-L2-crop/sub-verse004_0000_vertebra_21_seg.nii.gz"
TPT_MR = "mri/tptbox-mri/sub-mri_seg-vert_label-6_msk.nii.gz"
TPT_MR_SUB = "mri/tptbox-mri/sub-mri_seg-subreg_label-6_msk.nii.gz"
TS_MR = "mri/totalseg-example-mr/example_seg_mr.nii.gz"


def _levels(prepared) -> dict[int, str]:  # type: ignore[no-untyped-def]
    ids = np.unique(prepared.labels.labels)
    return {k: str(v) for k, v in vertebra_labels(ids, prepared.analysis_convention).items()}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


# -- real maps read right -------------------------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("relative", "convention", "levels"),
    [
        (TS_SEG, "totalsegmentator", {33: "T11", 32: "T12", 31: "L1", 30: "L2"}),
        (TS_DICOM_SEG, "totalsegmentator", {33: "T11", 32: "T12"}),
        (VERSE, "verse", {16 + i: lv for i, lv in enumerate(
            ["T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"])}),
        (TPT_CT, "verse", {21: "L2", 22: "L3", 23: "L4"}),
    ],
)  # fmt: skip
def test_real_maps_are_detected(
    shared_file: Shared, relative: str, convention: str, levels: dict[int, str]
) -> None:
    labels = load_labels(shared_file(relative))
    prepared = prepare_labels(labels, "auto")
    assert prepared.convention.value == convention
    assert prepared.convention_source == "detected"
    assert _levels(prepared) == levels
    assert prepared.rejected == ()
    assert prepared.labels is labels  # nothing had to change: no copy
    assert resolve_convention(labels, "auto").value == convention


@pytest.mark.shared_data
def test_verse_is_told_from_vertebrae_mr_by_the_geometry(shared_file: Shared) -> None:
    """The ids 16..24 are T9..L5 in VerSe and T3..C2 in TotalSegmentator vertebrae_mr: the sizes
    and the order along the column decide, without any modality."""
    prepared = prepare_labels(load_labels(shared_file(VERSE)), "auto")
    assert prepared.convention is LabelConvention.VERSE
    assert "TotalSegmentator (vertebrae_mr)" in prepared.evidence
    assert "do not fit their levels" in prepared.evidence
    assert "label 19 would hold every vertebra" in prepared.evidence  # not total_mr's 19


@pytest.mark.shared_data
@pytest.mark.parametrize("relative", [TPT_CT_SUB, TPT_MR_SUB])
@pytest.mark.parametrize("convention", ["auto", "totalsegmentator"])
def test_subregion_maps_are_refused_saying_what_they_are(
    shared_file: Shared, relative: str, convention: str
) -> None:
    with pytest.raises(LabelMapRefused) as info:
        prepare_labels(load_labels(shared_file(relative)), convention)
    message = str(info.value)
    assert relative.split("/")[-1] in message
    assert "subregion map" in message and "instance map" in message


@pytest.mark.shared_data
def test_tptbox_mri_numbering_contradicts_its_sizes(shared_file: Shared) -> None:
    """The TPTBox MRI sample's ids 5-7 say C5-C7, but its vertebrae are 42-53 ml with 27 mm
    bodies, and its spinal cord ends (conus) at the lower one: lumbar-sized. Read as C5-C7 the
    heights would be compared with cervical norms: refused, pointing at --lowest-level."""
    labels = load_labels(shared_file(TPT_MR))
    for convention in ("auto", "tptbox"):
        with pytest.raises(LabelMapRefused) as info:
            prepare_labels(labels, convention)
        message = str(info.value)
        assert "6 (C6): 53.2 ml where a C6 is" in message
        assert "--lowest-level" in message


@pytest.mark.shared_data
def test_tptbox_mri_named_from_the_lowest_level_with_endplates_merged(
    shared_file: Shared,
) -> None:
    labels = load_labels(shared_file(TPT_MR))
    prepared = prepare_labels(labels, "auto", lowest_level="L2")
    assert prepared.convention is LabelConvention.TPTBOX
    assert _levels(prepared) == {19: "T12", 20: "L1", 21: "L2"}
    assert prepared.levels_named_by == "user: --lowest-level L2"
    arr = prepared.labels.labels
    # discs are not vertebrae; every endplate voxel went to a vertebra it touches
    disc = np.isin(labels.labels, [105, 106])
    assert not arr[disc].any()
    endplate = np.isin(labels.labels, [205, 206, 207])
    assert np.isin(arr[endplate], [19, 20, 21]).all()
    ep205 = labels.labels == 205  # both sides of disc 105: vertebra 5 (T12) and 6 (L1)
    assert set(np.unique(arr[ep205])) == {19, 20}

    report = analyze(None, prepared, convention="auto").to_json_dict()
    l1 = next(v for v in report["vertebrae"] if v["level"] == "L1")
    without = LabelVolume(np.where(labels.labels >= 200, 0, labels.labels), labels.grid, "x")
    bare = analyze(None, without, convention="tptbox", lowest_level="L2").to_json_dict()
    l1_bare = next(v for v in bare["vertebrae"] if v["level"] == "L1")
    # measured: the endplate layers add 2.6 / 2.3 / 1.9 mm to L1's heights
    for key in ("height_anterior_mm", "height_middle_mm", "height_posterior_mm"):
        assert l1[key] - l1_bare[key] > 1.5
    assert report["scan"]["labels_convention"] == "tptbox"
    assert report["scan"]["levels_named_by"] == "user: --lowest-level L2"
    assert any("endplate label 205 merged" in n for n in report["scan"]["label_notes"])


@pytest.mark.shared_data
def test_total_mr_map_is_not_read_with_the_ct_table(shared_file: Shared) -> None:
    """The tester's case: back muscles reported as C2-C5 (75 and 87 ml "vertebrae")."""
    labels = load_labels(shared_file(TS_MR))
    with pytest.raises(LabelMapRefused) as info:
        prepare_labels(labels, "auto")
    message = str(info.value)
    assert "label 19 (TotalSegmentator (total_mr)) holds 2 vertebra-like pieces" in message
    assert "--lowest-level" in message
    # the same without the file's label table and knowing it is an MRI
    with pytest.raises(LabelMapRefused, match="total_mr"):
        prepare_labels(labels, "auto", names={}, modality="MR")
    # forced through the CT table: every "vertebra" is a paired muscle off the midline
    with pytest.raises(LabelMapRefused) as forced:
        prepare_labels(labels, "totalsegmentator")
    text = str(forced.value)
    assert "no label plausibly a vertebra" in text
    assert "46 (C5): 88.3 ml" in text and "mirror pair" in text


@pytest.mark.shared_data
def test_total_mr_vertebrae_split_when_the_lowest_is_named(shared_file: Shared) -> None:
    labels = load_labels(shared_file(TS_MR))
    prepared = prepare_labels(labels, "auto", lowest_level="L2")
    assert prepared.convention is LabelConvention.TOTALSEGMENTATOR_MR
    assert _levels(prepared) == {20: "L1", 21: "L2"}
    # only label 19 (vertebrae) was split: no disc, cord or muscle voxel became a vertebra
    assert not prepared.labels.labels[labels.labels != 19].any()
    report = analyze(None, prepared, convention="auto").to_json_dict()
    assert [v["level"] for v in report["vertebrae"]] == ["L1", "L2"]


@pytest.mark.shared_data
def test_cta_single_vertebra_mask_needs_its_level(shared_file: Shared) -> None:
    labels = load_labels(shared_file(CTA_T12))
    with pytest.raises(LabelMapRefused) as info:
        prepare_labels(labels, "auto")
    message = str(info.value)
    assert "one vertebra-like piece (32 ml)" in message and "--level" in message
    for convention in ("auto", "binary"):
        prepared = prepare_labels(labels, convention, level="T12")
        assert _levels(prepared) == {19: "T12"}
        assert np.array_equal(prepared.labels.labels > 0, labels.labels > 0)
    report = analyze(None, labels, convention="binary", level="T12").to_json_dict()
    assert report["scan"]["labels_convention"] == "binary"
    assert [v["level"] for v in report["vertebrae"]] == ["T12"]
    assert report["vertebrae"][0]["truncated"] is True
    with pytest.raises(LabelMapRefused, match="do not fit the levels"):
        prepare_labels(labels, "binary", level="C3")  # a 32 ml, 44 mm tall "C3"


@pytest.mark.shared_data
def test_l2_compartment_map_is_refused_or_taken_whole_with_its_level(
    shared_file: Shared,
) -> None:
    """spineFE's 6-class map of one vertebra: read as VerSe the "C1..C6" lie at one height."""
    labels = load_labels(shared_file(L2_CROP))
    with pytest.raises(LabelMapRefused) as info:
        prepare_labels(labels, "auto")
    message = str(info.value)
    assert "labels 1, 2, 3, 4, 5, 6" in message
    assert "VerSe: the labels' spacing does not fit" in message
    assert "within the height of the tallest: parts of one structure" in message
    assert "TotalSegmentator (vertebrae_mr)" in message
    assert "--level" in message
    prepared = prepare_labels(labels, "auto", level="L2")
    assert _levels(prepared) == {21: "L2"}
    assert np.array_equal(prepared.labels.labels > 0, labels.labels > 0)
    assert "every non-zero voxel" in prepared.evidence
    given = prepare_labels(labels, "binary", level="L2")  # binary: all non-zero voxels
    assert np.array_equal(given.labels.labels, prepared.labels.labels)
    with pytest.raises(LabelMapRefused, match="one vertebra-like piece"):
        prepare_labels(labels, "binary")


# -- one label, several vertebrae: refused, or split from a named level --------------------------


def _merged(shared_file: Shared, relative: str, body_from: str | None = None):  # type: ignore[no-untyped-def]
    """A real map's vertebrae merged into one label (optionally bodies only, from the TPTBox
    subregion map's 49/50) and the vertebra arrays it came from."""
    labels = load_labels(shared_file(relative))
    arr = labels.labels.astype(np.int32)
    if body_from is not None:
        sub = load_labels(shared_file(body_from)).labels
        arr = np.where(np.isin(sub, [49, 50]), arr, 0)
    ids = [i for i in np.unique(arr) if 0 < i < 100]
    merged = LabelVolume(np.isin(arr, ids).astype(np.uint8), labels.grid, "merged.nii.gz")
    return merged, arr, ids


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("relative", "body_from", "lowest", "n"),
    [
        (TPT_CT, TPT_CT_SUB, "L4", 3),  # bodies only: they come apart at the discs
        (TPT_MR, TPT_MR_SUB, "L2", 3),
    ],
)
def test_bodies_mask_refused_then_split_back(
    shared_file: Shared, relative: str, body_from: str, lowest: str, n: int
) -> None:
    merged, arr, ids = _merged(shared_file, relative, body_from)
    with pytest.raises(LabelMapRefused, match=f"holds {n} vertebra-like pieces"):
        prepare_labels(merged, "auto")
    prepared = prepare_labels(merged, "auto", lowest_level=lowest)
    out = prepared.labels.labels
    levels = _levels(prepared)
    assert len(levels) == n and levels[max(levels)] == lowest
    for original, piece in zip(sorted(ids), sorted(levels), strict=True):  # both caudal last
        assert _dice(arr == original, out == piece) >= 0.95


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("relative", "lowest", "min_dice"),
    [
        (TS_SEG, "L2", 0.9),  # measured 0.918-0.960 (3 mm voxels)
        (VERSE, "L5", 0.8),  # measured 0.815-0.992, the crushed L1 found (0.886)
    ],
)
def test_whole_vertebra_mask_split_back(
    shared_file: Shared, relative: str, lowest: str, min_dice: float
) -> None:
    """Whole vertebrae touch at the facet joints, so the posterior elements are shared out by
    geometry alone (Dice below the bodies' 1.0); the bodies -- what is measured -- agree."""
    labels = load_labels(shared_file(relative))
    conv = prepare_labels(labels, "auto").convention
    original = analyze(None, labels, convention=conv).to_json_dict()
    by_label = {v["label"]: v for v in original["vertebrae"]}
    merged = LabelVolume(np.isin(labels.labels, list(by_label)).astype(np.uint8), labels.grid, "m")
    prepared = prepare_labels(merged, "auto", lowest_level=lowest)
    split = analyze(None, prepared, convention="auto").to_json_dict()
    got = {v["level"]: v for v in split["vertebrae"]}
    for label, want in by_label.items():
        if want["level"] == "T11" and relative == TS_SEG:
            continue  # a 1.9 ml sliver at the scan's edge: merged into T12, as a fragment
        have = got[want["level"]]
        piece = prepared.labels.labels == have["label"]
        assert _dice(labels.labels == label, piece) >= min_dice
        gap = np.linalg.norm(np.subtract(have["body_centroid_mm"], want["body_centroid_mm"]))
        assert gap < 1.0
        assert have["genant_grade"] == want["genant_grade"]
        # the frame's anterior axis comes from the posterior elements, which the split shares
        # out by geometry: on the crushed VerSe004 L1 (12.6 mm tall) it tilts by ~4 degrees and
        # the anterior height moves by 2.2 mm; elsewhere the heights agree within 1.5 mm
        tol_mm = 2.5 if "body_by_canal" in want["quality_flags"] else 2.0
        for key in ("height_anterior_mm", "height_middle_mm", "height_posterior_mm"):
            if want[key] is not None:
                assert abs(have[key] - want[key]) <= tol_mm, (want["level"], key)


@pytest.mark.shared_data
def test_verse_crushed_l1_keeps_its_own_piece(shared_file: Shared) -> None:
    """VerSe004's L1 is a grade-3 crush fracture fused to its neighbours in a merged mask: too
    thin for a distance maximum of its own, found as a run of body tissue between disc gaps.
    Missing it would name every vertebra above it one level too low."""
    merged, arr, _ = _merged(shared_file, VERSE)
    pieces = split_vertebrae(merged.labels > 0, merged.grid.affine)
    assert pieces.count == 9
    l1 = pieces.labels == 5  # cranial first: T9 T10 T11 T12 L1
    assert _dice(l1, arr == 20) > 0.85


def test_split_phantom_bodies_and_refusal_without_levels() -> None:
    ph = make_spine_phantom(
        PhantomSpec(levels=("T11", "T12", "L1", "L2"), spacing_mm=(1.5, 1.5, 1.5))
    )
    arr = ph.labels.labels
    ids = sorted(int(x) for x in np.unique(arr) if x)
    merged = LabelVolume(np.where(arr > 0, 255, 0).astype(np.uint8), ph.labels.grid, "p")
    with pytest.raises(LabelMapRefused, match="holds 4 vertebra-like pieces"):
        prepare_labels(merged, "auto")
    with pytest.raises(LabelMapRefused, match="--level names one vertebra"):
        prepare_labels(merged, "auto", level="L2")
    with pytest.raises(LabelMapRefused, match="not both"):
        prepare_labels(merged, "auto", level="L2", lowest_level="L2")
    with pytest.raises(LabelMapRefused, match="levels lie at or above C2"):
        prepare_labels(merged, "binary", lowest_level="C2")
    prepared = prepare_labels(merged, "auto", lowest_level="L2")
    assert list(_levels(prepared).values()) == ["T11", "T12", "L1", "L2"]
    for ts_id, (verse_id, _) in zip(sorted(ids, reverse=True), _levels(prepared).items(),
                                    strict=True):  # fmt: skip
        assert _dice(arr == ts_id, prepared.labels.labels == verse_id) > 0.9


# -- labels that are not vertebrae ---------------------------------------------------------------


@pytest.mark.shared_data
def test_back_muscle_given_a_vertebra_id_is_rejected_and_reported(shared_file: Shared) -> None:
    """The real left autochthon (erector spinae) of the TotalSegmentator example, relabelled
    L3 (29): too big, too tall, off the midline -> rejected, listed, never analysed."""
    labels = load_labels(shared_file(TS_SEG))
    arr = labels.labels.copy()
    arr[arr == 86] = 29
    faked = LabelVolume(arr, labels.grid, "faked.nii.gz")
    prepared = prepare_labels(faked, "auto")
    assert prepared.convention is LabelConvention.TOTALSEGMENTATOR
    assert [v.label for v in prepared.rejected] == [29]
    reason = "; ".join(prepared.rejected[0].reasons)
    assert "190.3 ml where a L3 is" in reason and "not on the midline" in reason
    report = analyze(None, faked, convention="totalsegmentator").to_json_dict()
    assert [v["level"] for v in report["vertebrae"]] == ["T11", "T12", "L1", "L2"]
    rejected = report["scan"]["rejected_labels"]
    assert rejected == [{"label": 29, "level": "L3", "reason": reason}]


@pytest.mark.shared_data
def test_lateral_vertebra_sized_label_is_rejected(shared_file: Shared) -> None:
    """A label of vertebra size, at the right height and in order, 51 mm to the side of the
    column (the real L1 of the TotalSegmentator example, moved): only the midline test can
    catch it."""
    labels = load_labels(shared_file(TS_SEG))  # RAS, 3 mm: axis 0 runs to the patient's right
    arr = labels.labels.copy()
    l1 = arr == 31
    arr[l1] = 0
    moved = np.zeros_like(l1)
    moved[17:] = l1[:-17]
    arr[moved & (arr == 0)] = 31
    faked = LabelVolume(arr, labels.grid, "lateral.nii.gz")
    prepared = prepare_labels(faked, "auto")
    assert prepared.convention is LabelConvention.TOTALSEGMENTATOR
    assert [v.label for v in prepared.rejected] == [31]
    (reason,) = prepared.rejected[0].reasons  # size, height and order are right
    assert reason.endswith("(at most 30 and 40 mm): not on the midline")
    assert int(reason.split(" mm to the side")[0]) > 40
    report = analyze(None, prepared, convention="auto").to_json_dict()
    assert [v["level"] for v in report["vertebrae"]] == ["T11", "T12", "L2"]
    assert report["scan"]["rejected_labels"][0]["label"] == 31


def test_phantoms_of_every_level_fit_the_norms() -> None:
    """The nominal figures are wide enough for the SpineWatch phantom at every level."""
    from spinewatch.imaging.phantom import PHANTOM_LEVELS

    ph = make_spine_phantom(PhantomSpec(levels=tuple(PHANTOM_LEVELS), spacing_mm=(2.0,) * 3))
    prepared = prepare_labels(ph.labels, "totalsegmentator")
    assert prepared.rejected == ()
    geoms = measure_labels(ph.labels, np.unique(ph.labels.labels)[1:])
    for label, g in geoms.items():
        level = vertebra_labels([label], "totalsegmentator")[label]
        lo, hi = LEVEL_NORMS[level].volume_range_ml
        assert lo < g.volume_ml < hi
    verse = make_spine_phantom(
        PhantomSpec(levels=("C3", "C4", "C5"), spacing_mm=(1.0,) * 3, convention="verse")
    )
    assert prepare_labels(verse.labels, "auto").convention is LabelConvention.VERSE
    assert label_for_level("C4", "verse") in np.unique(verse.labels.labels)


@pytest.mark.shared_data
def test_a_known_modality_rules_out_the_other_modalitys_tables(shared_file: Shared) -> None:
    """An MRI map is not a CT "total" map: with the modality known the TotalSegmentator example
    CT map has no reading left, and the total_mr map no CT reading."""
    from spinewatch.core.acquisition import Acquisition

    ct_map = load_labels(shared_file(TS_SEG))
    mri = Acquisition(modality="MR", modality_source="user")
    with pytest.raises(LabelMapRefused) as info:
        analyze(None, ct_map, convention="auto", acquisition=mri)
    assert "a CT convention, and this scan is MRI" in str(info.value)
    assumed = Acquisition(modality="MR", modality_source="assumed")  # not known: not used
    report = analyze(None, ct_map, convention="auto", acquisition=assumed).to_json_dict()
    assert report["scan"]["labels_convention"] == "totalsegmentator"

    mr_map = load_labels(shared_file(TS_MR))
    with pytest.raises(LabelMapRefused) as info:
        prepare_labels(mr_map, "auto", modality="CT", names={})
    assert "an MRI convention, and this scan is CT" in str(info.value)
