"""spinewatch.imaging.io: NIfTI CT and label reading, label alignment, studies.

Synthetic volumes written with nibabel in tmp_path (known truth), plus the real scans in
../shared/data (marker shared_data).
"""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import (
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

from spinewatch.core.errors import InputError
from spinewatch.imaging.io import (
    GridMismatchError,
    ImageReadError,
    SeriesSelectionError,
    align_labels,
    load_ct,
    load_labels,
    load_study,
    orientation_code,
)
from spinewatch.imaging.volume import Grid, LabelVolume

OBLIQUE = np.array(
    [
        [0.9, -0.1, 0.05, -100.0],
        [0.1, 0.8, -0.2, 50.0],
        [-0.05, 0.3, 2.4, -700.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def _save(arr: np.ndarray, path: Path, affine: np.ndarray = OBLIQUE, **scale: float) -> Path:
    img = nib.Nifti1Image(arr, affine)
    if scale:
        img.header.set_slope_inter(scale.get("slope", 1.0), scale.get("inter", 0.0))
    nib.save(img, str(path))
    return path


def _rng() -> np.random.Generator:
    return np.random.default_rng(3)


# ---------------------------------------------------------------------------------- CT values


def test_int16_ct_round_trip_keeps_dtype_values_and_affine(tmp_path: Path) -> None:
    raw = _rng().integers(-1024, 3000, size=(7, 6, 5), dtype=np.int16)
    ct = load_ct(_save(raw, tmp_path / "ct.nii.gz"))
    assert ct.hu.dtype == np.int16
    np.testing.assert_array_equal(ct.hu, raw)
    np.testing.assert_allclose(ct.grid.affine, OBLIQUE, atol=1e-5)
    assert ct.meta["orientation"] == orientation_code(OBLIQUE)
    assert ct.meta["n_slices"] == 5
    assert ct.meta["affine_source"] == "sform"


def test_uint16_with_integer_intercept_gives_int16_hu(tmp_path: Path) -> None:
    raw = _rng().integers(0, 4096, size=(6, 5, 4), dtype=np.uint16)
    ct = load_ct(_save(raw, tmp_path / "ct.nii", inter=-1024.0))
    assert ct.hu.dtype == np.int16
    np.testing.assert_array_equal(ct.hu, raw.astype(np.int64) - 1024)


def test_integer_scaling_beyond_int16_uses_int32(tmp_path: Path) -> None:
    raw = np.array([0, 1000, 2000, 40000], dtype=np.int32).reshape(1, 1, 4)
    raw = np.broadcast_to(raw, (2, 2, 4)).copy()
    ct = load_ct(_save(raw, tmp_path / "ct.nii.gz", slope=2.0, inter=-1024.0))
    assert ct.hu.dtype == np.int32
    np.testing.assert_array_equal(ct.hu, raw.astype(np.int64) * 2 - 1024)


def test_fractional_slope_gives_float32(tmp_path: Path) -> None:
    raw = _rng().integers(0, 4000, size=(5, 5, 3), dtype=np.int16)
    ct = load_ct(_save(raw, tmp_path / "ct.nii.gz", slope=0.25, inter=-1000.0))
    assert ct.hu.dtype == np.float32
    np.testing.assert_allclose(ct.hu, raw * 0.25 - 1000.0, rtol=0, atol=1e-3)


def test_float_stored_ct_whole_numbers_become_int16_else_float32(tmp_path: Path) -> None:
    whole = _rng().integers(-1000, 2000, size=(4, 4, 3)).astype(np.float64)
    ct = load_ct(_save(whole, tmp_path / "whole.nii.gz"))
    assert ct.hu.dtype == np.int16
    np.testing.assert_array_equal(ct.hu, whole)
    frac = whole + 0.5
    ct = load_ct(_save(frac, tmp_path / "frac.nii.gz"))
    assert ct.hu.dtype == np.float32
    np.testing.assert_allclose(ct.hu, frac, atol=1e-4)


def test_non_finite_ct_value_is_refused_naming_the_voxel(tmp_path: Path) -> None:
    arr = np.zeros((4, 4, 3), dtype=np.float32)
    arr[1, 2, 2] = np.nan
    with pytest.raises(ImageReadError, match=r"voxel \(1, 2, 2\)"):
        load_ct(_save(arr, tmp_path / "nan.nii.gz"))


def test_singleton_fourth_dimension_is_accepted(tmp_path: Path) -> None:
    arr = _rng().integers(-100, 100, size=(4, 3, 2, 1), dtype=np.int16)
    ct = load_ct(_save(arr, tmp_path / "ct4.nii.gz"))
    assert ct.hu.shape == (4, 3, 2)
    np.testing.assert_array_equal(ct.hu, arr[..., 0])


@pytest.mark.parametrize("shape", [(4, 3, 2, 2), (5, 4)])
def test_non_3d_volume_is_refused(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = _save(np.zeros(shape, dtype=np.int16), tmp_path / "bad.nii.gz")
    with pytest.raises(ImageReadError, match=r"expected a 3D volume") as info:
        load_ct(path)
    assert str(path) in str(info.value)


def test_qform_used_when_sform_code_is_zero_and_sform_preferred_otherwise(
    tmp_path: Path,
) -> None:
    arr = np.zeros((3, 3, 3), dtype=np.int16)
    q_aff = np.diag([-2.0, -2.0, 3.0, 1.0])
    q_aff[:3, 3] = (10.0, 20.0, 30.0)
    s_aff = np.diag([1.0, 1.0, 1.0, 1.0])
    img = nib.Nifti1Image(arr, None)
    img.set_qform(q_aff, code=1)
    img.set_sform(s_aff, code=0)
    nib.save(img, str(tmp_path / "q.nii.gz"))
    ct = load_ct(tmp_path / "q.nii.gz")
    np.testing.assert_allclose(ct.grid.affine, q_aff, atol=1e-5)
    assert ct.meta["affine_source"] == "qform"
    img.set_sform(s_aff, code=2)
    nib.save(img, str(tmp_path / "s.nii.gz"))
    ct = load_ct(tmp_path / "s.nii.gz")
    np.testing.assert_allclose(ct.grid.affine, s_aff, atol=1e-6)
    assert ct.meta["affine_source"] == "sform"


# ---------------------------------------------------------------------------------- bad files


def test_missing_and_unsupported_inputs(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="not found"):
        load_ct(tmp_path / "nope.nii.gz")
    (tmp_path / "x.mha").write_bytes(b"ObjectType = Image\n")
    with pytest.raises(ImageReadError, match=r"unsupported CT input"):
        load_ct(tmp_path / "x.mha")
    dcm = tmp_path / "one.dcm"
    dcm.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 10)
    with pytest.raises(ImageReadError, match="pass the directory"):
        load_ct(dcm)
    with pytest.raises(ImageReadError, match="not found"):
        load_labels(tmp_path / "nope.nii.gz")


def test_text_file_named_nifti_is_refused(tmp_path: Path) -> None:
    for name in ("notes.nii.gz", "notes.nii"):
        bad = tmp_path / name
        bad.write_text("patient notes, not an image\n" * 20)
        with pytest.raises(ImageReadError, match=r"notes\.nii") as info:
            load_ct(bad)
        assert isinstance(info.value, InputError)


def test_truncated_uncompressed_nifti_is_refused(tmp_path: Path) -> None:
    path = _save(np.ones((20, 20, 20), dtype=np.int16), tmp_path / "ct.nii")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"ct\.nii"):
        load_ct(path)


def test_series_uid_with_nifti_is_refused(tmp_path: Path) -> None:
    path = _save(np.zeros((2, 2, 2), dtype=np.int16), tmp_path / "ct.nii.gz")
    with pytest.raises(SeriesSelectionError, match="DICOM input only"):
        load_ct(path, series_uid="1.2.3")


# ---------------------------------------------------------------------------------- labels


def test_labels_integer_and_float_stored(tmp_path: Path) -> None:
    lab = _rng().integers(0, 50, size=(6, 5, 4)).astype(np.int16)
    as_int = load_labels(_save(lab, tmp_path / "i.nii.gz"))
    as_float = load_labels(_save(lab.astype(np.float64), tmp_path / "f.nii.gz"))
    for lv in (as_int, as_float):
        assert lv.labels.dtype == np.uint8
        np.testing.assert_array_equal(lv.labels, lab)


@pytest.mark.parametrize(("top", "dtype"), [(255, np.uint8), (300, np.uint16), (70000, np.uint32)])
def test_labels_use_smallest_unsigned_dtype(tmp_path: Path, top: int, dtype: type) -> None:
    lab = np.zeros((3, 3, 3), dtype=np.int32)
    lab[1, 1, 1] = top
    lv = load_labels(_save(lab, tmp_path / "l.nii.gz"))
    assert lv.labels.dtype == dtype
    assert int(lv.labels[1, 1, 1]) == top


def test_non_integral_label_is_refused_naming_voxel_and_value(tmp_path: Path) -> None:
    lab = np.zeros((4, 4, 4), dtype=np.float32)
    lab[2, 3, 1] = 30.5
    with pytest.raises(ImageReadError, match=r"voxel \(2, 3, 1\) has value 30\.5"):
        load_labels(_save(lab, tmp_path / "l.nii.gz"))


def test_negative_label_is_refused(tmp_path: Path) -> None:
    lab = np.zeros((4, 4, 4), dtype=np.int16)
    lab[0, 1, 3] = -2
    with pytest.raises(ImageReadError, match=r"voxel \(0, 1, 3\) has value -2"):
        load_labels(_save(lab, tmp_path / "l.nii.gz"))


def test_label_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="expected a NIfTI file"):
        load_labels(tmp_path)


# ---------------------------------------------------------------------------------- alignment


def _all_orientations() -> list[str]:
    out = []
    for perm in itertools.permutations("RAS"):
        for flips in itertools.product((False, True), repeat=3):
            opposite = {"R": "L", "A": "P", "S": "I"}
            out.append("".join(opposite[c] if f else c for c, f in zip(perm, flips, strict=True)))
    return out


def _reorient(arr: np.ndarray, affine: np.ndarray, codes: str) -> tuple[np.ndarray, np.ndarray]:
    """nibabel's own re-orientation: the independent reference for align_labels."""
    start = io_orientation(affine)
    xform = ornt_transform(start, axcodes2ornt(tuple(codes)))
    new_arr = apply_orientation(arr, xform)
    new_aff = affine @ inv_ornt_aff(xform, arr.shape)
    return new_arr, new_aff


@pytest.mark.parametrize("codes", _all_orientations())
def test_align_labels_undoes_every_flip_and_permutation(codes: str) -> None:
    shape = (7, 5, 4)
    ct_aff = np.diag([0.8, 0.8, 2.5, 1.0])
    ct_aff[:3, 3] = (-50.0, 20.0, -300.0)
    truth = _rng().integers(0, 40, size=shape).astype(np.uint8)
    lab_arr, lab_aff = _reorient(truth, ct_aff, codes)
    assert orientation_code(lab_aff) == codes
    lv = LabelVolume(lab_arr, Grid(lab_arr.shape, lab_aff), "labels.nii.gz")
    ct_grid = Grid(shape, ct_aff)
    out = align_labels(lv, ct_grid)
    assert out.grid is ct_grid
    np.testing.assert_array_equal(out.labels, truth)
    assert np.shares_memory(out.labels, lab_arr)  # views, not copies


def test_align_labels_same_grid_keeps_the_array() -> None:
    g = Grid((3, 4, 5), OBLIQUE)
    lv = LabelVolume(np.zeros((3, 4, 5), np.uint8), Grid((3, 4, 5), OBLIQUE.copy()), "l")
    out = align_labels(lv, g)
    assert out.labels is lv.labels
    assert out.grid is g
    assert align_labels(out, g) is out


def test_align_labels_tolerates_float32_jitter_in_a_flipped_map() -> None:
    g = Grid((6, 6, 6), OBLIQUE)
    arr, aff = _reorient(np.arange(216, dtype=np.uint8).reshape(6, 6, 6), OBLIQUE, "LIP")
    aff = aff.copy()
    aff[:3, 3] += 2e-4  # float32 rounding of an sform: far below a thousandth of a voxel
    lv = LabelVolume(arr, Grid(arr.shape, aff), "jit")
    out = align_labels(lv, g)
    assert out.grid is g
    np.testing.assert_array_equal(out.labels, np.arange(216).reshape(6, 6, 6))


def _mismatch_cases() -> dict[str, np.ndarray]:
    base = np.diag([1.0, 1.0, 2.0, 1.0])
    shifted = base.copy()
    shifted[0, 3] = 1.0
    half = base.copy()
    half[2, 3] = 1.0
    spacing = np.diag([1.0, 1.0, 2.5, 1.0])
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    rotated = base @ np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    return {"shifted": shifted, "half": half, "spacing": spacing, "rotated": rotated}


@pytest.mark.parametrize("case", ["shifted", "half", "spacing", "rotated", "shape"])
def test_align_labels_refuses_a_different_grid_showing_both(case: str) -> None:
    ct_grid = Grid((8, 8, 6), np.diag([1.0, 1.0, 2.0, 1.0]))
    if case == "shape":
        lab_grid = Grid((8, 8, 7), ct_grid.affine)
    else:
        lab_grid = Grid((8, 8, 6), _mismatch_cases()[case])
    lv = LabelVolume(np.zeros(lab_grid.shape, np.uint8), lab_grid, "seg.nii.gz")
    with pytest.raises(GridMismatchError) as info:
        align_labels(lv, ct_grid)
    msg = str(info.value)
    assert "seg.nii.gz" in msg
    assert ct_grid.describe() in msg
    assert lab_grid.describe() in msg


def test_align_labels_permuted_shape_mismatch_is_refused() -> None:
    ct_grid = Grid((8, 6, 4), np.eye(4))
    arr, aff = _reorient(np.zeros((8, 6, 5), np.uint8), np.eye(4), "PIR")
    lv = LabelVolume(arr, Grid(arr.shape, aff), "seg")
    with pytest.raises(GridMismatchError, match="differs from"):
        align_labels(lv, ct_grid)


def test_load_study_aligns_labels_saved_in_another_order(tmp_path: Path) -> None:
    ct_arr = _rng().integers(-1000, 1500, size=(9, 8, 6), dtype=np.int16)
    truth = (ct_arr > 300).astype(np.uint8) * 31
    ct_path = _save(ct_arr, tmp_path / "ct.nii.gz")
    lab_arr, lab_aff = _reorient(truth, OBLIQUE, "SLP")
    lab_path = _save(lab_arr.astype(np.float32), tmp_path / "seg.nii.gz", affine=lab_aff)
    ct, labels = load_study(ct_path, lab_path)
    assert ct is not None
    np.testing.assert_array_equal(labels.labels, truth)
    assert labels.grid is ct.grid
    none_ct, alone = load_study(None, lab_path)
    assert none_ct is None
    np.testing.assert_array_equal(alone.labels, lab_arr)
    with pytest.raises(SeriesSelectionError):
        load_study(None, lab_path, series_uid="1.2")


# ---------------------------------------------------------------------------------- real data

pytestmark_shared = pytest.mark.shared_data
TS = "ct/totalseg-example/"


@pytestmark_shared
def test_real_example_ct_loads_in_hu(shared_file) -> None:
    ct = load_ct(shared_file(TS + "example_ct.nii.gz"))
    assert ct.hu.shape == (122, 101, 112)
    assert ct.hu.dtype == np.int16  # stored int32, but every value fits int16
    assert ct.meta["orientation"] == "RAS"
    assert ct.grid.spacing_mm == pytest.approx((3.0, 3.0, 3.0))
    lo, hi = int(ct.hu.min()), int(ct.hu.max())
    assert -1300 < lo < -900  # air
    assert 1000 < hi < 4000  # bone / contrast
    raw = np.asarray(nib.load(str(shared_file(TS + "example_ct.nii.gz"))).dataobj)
    np.testing.assert_array_equal(ct.hu, raw)


@pytestmark_shared
def test_real_labels_land_on_bone_and_misalignment_would_show(shared_file) -> None:
    ct, labels = load_study(
        shared_file(TS + "example_ct_sm.nii.gz"), shared_file(TS + "example_seg.nii.gz")
    )
    assert ct is not None
    for lab in (30, 31):  # L2, L1
        assert np.median(ct.hu[labels.labels == lab]) > 100
    flipped = labels.labels[::-1]  # a wrong (left-right flipped) alignment
    assert np.median(ct.hu[flipped == 31]) < 50


@pytestmark_shared
def test_real_verse_mask_loads_pir_oblique_float_stored(shared_file) -> None:
    lv = load_labels(shared_file("ct/verse004/sub-verse004_seg-vert_msk.nii.gz"))
    assert lv.labels.dtype == np.uint8
    assert lv.labels.shape == (161, 338, 61)
    assert orientation_code(lv.grid.affine) == "PIR"
    assert sorted(np.unique(lv.labels).tolist()) == [0, *range(16, 25)]
    off_diagonal = lv.grid.axis_directions - np.round(lv.grid.axis_directions)
    assert np.abs(off_diagonal).max() > 0.01  # oblique


@pytestmark_shared
@pytest.mark.parametrize("codes", ["LPS", "PIR"])
def test_real_scan_in_another_voxel_order_aligns_back(
    shared_file, tmp_path: Path, codes: str
) -> None:
    ct_path, seg_path = (
        shared_file(TS + "example_ct_sm.nii.gz"),
        shared_file(TS + "example_seg.nii.gz"),
    )
    seg = nib.load(str(seg_path))
    arr, aff = _reorient(np.asarray(seg.dataobj), seg.affine, codes)
    out = tmp_path / f"seg_{codes}.nii.gz"
    nib.save(nib.Nifti1Image(arr, aff), str(out))
    ct, aligned = load_study(ct_path, out)
    _, direct = load_study(ct_path, seg_path)
    assert ct is not None
    np.testing.assert_array_equal(aligned.labels, direct.labels)
    # and the CT itself re-ordered: world positions of a label are the same
    ct_img = nib.load(str(ct_path))
    ct_arr, ct_aff = _reorient(np.asarray(ct_img.dataobj), ct_img.affine, codes)
    ct2_path = tmp_path / f"ct_{codes}.nii.gz"
    nib.save(nib.Nifti1Image(ct_arr, ct_aff), str(ct2_path))
    ct2, lab2 = load_study(ct2_path, seg_path)
    assert ct2 is not None
    assert ct2.meta["orientation"] == codes
    for lab in (30, 31):
        c1 = ct.grid.to_world(np.argwhere(direct.labels == lab).mean(axis=0))
        c2 = ct2.grid.to_world(np.argwhere(lab2.labels == lab).mean(axis=0))
        np.testing.assert_allclose(c1, c2, atol=1e-3)
        assert np.median(ct2.hu[lab2.labels == lab]) == np.median(ct.hu[direct.labels == lab])


@pytestmark_shared
def test_real_truncated_and_corrupt_gzip_are_refused(shared_file, tmp_path: Path) -> None:
    data = shared_file(TS + "example_ct_sm.nii.gz").read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.nii\.gz.*truncated or corrupt"):
        load_ct(cut)
    # bytes flipped inside the deflate stream: CRC or zlib error on data access
    bad = bytearray(data)
    for i in range(len(bad) // 2, len(bad) // 2 + 64):
        bad[i] ^= 0xFF
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(bytes(bad))
    with pytest.raises(ImageReadError, match=r"corrupt\.nii\.gz"):
        load_ct(corrupt)
    header_only = tmp_path / "header.nii.gz"
    header_only.write_bytes(gzip.compress(gzip.decompress(data)[:400]))
    with pytest.raises(ImageReadError, match=r"header\.nii\.gz"):
        load_labels(header_only)


def test_big_endian_file_reads_to_native_values(tmp_path: Path) -> None:
    raw = _rng().integers(-1024, 3000, size=(5, 4, 3)).astype(np.int16)
    for name, arr in (("be.nii", raw), ("bel.nii.gz", (np.abs(raw) % 7).astype(np.float32))):
        img = nib.Nifti1Image(arr, OBLIQUE, header=nib.Nifti1Header(endianness=">"))
        nib.save(img, str(tmp_path / name))
        assert nib.load(str(tmp_path / name)).get_data_dtype().byteorder == ">"
    ct = load_ct(tmp_path / "be.nii")
    assert ct.hu.dtype == np.int16 and ct.hu.dtype.isnative
    np.testing.assert_array_equal(ct.hu, raw)
    labels = load_labels(tmp_path / "bel.nii.gz")
    assert labels.labels.dtype == np.uint8
    np.testing.assert_array_equal(labels.labels, np.abs(raw) % 7)
