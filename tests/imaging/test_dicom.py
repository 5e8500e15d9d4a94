"""spinewatch.imaging.dicom: DICOM CT series (directory or zip) -> HU volume on an RAS+ grid.

Synthetic series are written with pydicom; each pixel's stored value is a known function of its
*patient (LPS)* position computed straight from the DICOM geometry rules, so the loaded volume
is checked against an independent computation: hu[i, j, k] == f(RAS world of voxel (i, j, k)).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from spinewatch.core.acquisition import AcquisitionError, ContrastPhase, Modality
from spinewatch.imaging.dicom import list_series, load_dicom_image, load_dicom_series
from spinewatch.imaging.io import (
    ImageReadError,
    SeriesSelectionError,
    align_labels,
    load_ct,
    load_image,
    load_labels,
    load_study,
)
from spinewatch.imaging.volume import CtVolume, MrVolume

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _ds(value: float) -> str:
    return f"{value:.6g}"


def hu_of_lps(p: np.ndarray) -> np.ndarray:
    """The phantom: HU as a function of LPS position (mm), shape (..., 3) -> (...)."""
    return np.round(3.0 * p[..., 0] - 2.0 * p[..., 1] + 5.0 * p[..., 2])


def hu_of_ras(p: np.ndarray) -> np.ndarray:
    lps = p * np.array([-1.0, -1.0, 1.0])
    return hu_of_lps(lps)


def write_series(
    directory: Path,
    *,
    n: int = 6,
    rows: int = 5,
    cols: int = 4,
    iop: tuple[float, ...] = AXIAL,
    pixel_spacing: tuple[float, float] = (0.8, 0.7),
    origin: tuple[float, float, float] = (-10.0, 20.0, -300.0),
    step: tuple[float, float, float] | None = None,
    positions: list[np.ndarray] | None = None,
    uid: str | None = None,
    description: str = "axial",
    slope: float | Callable[[int], float] = 1.0,
    intercept: float | Callable[[int], float] = -1024.0,
    modality: str = "CT",
    signed: bool = True,
    rows_of: Callable[[int], int] | None = None,
    hu: Callable[[np.ndarray], np.ndarray] = hu_of_lps,
    order: list[int] | None = None,
    extra: dict[str, object] | None = None,
) -> str:
    """Write a series (files named in a scrambled order) and return its SeriesInstanceUID.

    ``extra``: further attributes by keyword (ContrastBolusAgent...), on every image."""
    directory.mkdir(parents=True, exist_ok=True)
    uid = uid or generate_uid()
    study = "1.2.826.0.1.3680043.8.498.1"
    row_cos, col_cos = np.array(iop[:3]), np.array(iop[3:])
    normal = np.cross(row_cos, col_cos)
    step_v = normal * 2.5 if step is None else np.asarray(step)
    if positions is None:
        positions = [np.asarray(origin) + k * step_v for k in range(n)]
    for idx, k in enumerate(order or list(range(len(positions)))):
        ipp = positions[k]
        nrows = rows_of(k) if rows_of else rows
        r, c = np.meshgrid(np.arange(nrows), np.arange(cols), indexing="ij")
        # DICOM: pixel (row r, column c) sits at IPP + c*colspacing*row_cos + r*rowspacing*col_cos
        lps = (
            ipp
            + c[..., None] * pixel_spacing[1] * row_cos
            + r[..., None] * pixel_spacing[0] * col_cos
        )
        s = slope(k) if callable(slope) else slope
        b = intercept(k) if callable(intercept) else intercept
        stored = (hu(lps) - b) / s
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = modality
        ds.Manufacturer = "SYNTH"
        ds.ConvolutionKernel = ["B30f", "2"]
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = uid
        ds.SeriesDescription = description
        ds.InstanceNumber = idx + 1
        ds.ImagePositionPatient = [_ds(v) for v in ipp]
        ds.ImageOrientationPatient = [_ds(v) for v in iop]
        ds.PixelSpacing = [_ds(v) for v in pixel_spacing]
        ds.SliceThickness = "99"  # must never be used as the step
        ds.Rows, ds.Columns = nrows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleSlope = _ds(s)
        ds.RescaleIntercept = _ds(b)
        for keyword, value in (extra or {}).items():
            setattr(ds, keyword, value)
        dtype = np.int16 if signed else np.uint16
        assert np.all(stored == np.round(stored))
        ds.PixelData = np.round(stored).astype(dtype).tobytes()
        ds.save_as(directory / f"img{(idx * 7919) % 1000:04d}_{idx}.dcm", enforce_file_format=True)
    return uid


def check_geometry(ct, hu=hu_of_ras) -> None:
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in ct.hu.shape], indexing="ij"), axis=-1)
    np.testing.assert_array_equal(ct.hu, hu(ct.grid.to_world(ijk)))


# ---------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    "iop",
    [
        AXIAL,
        (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0),  # rows flipped
        (1.0, 0.0, 0.0, 0.0, 0.0, -1.0),  # coronal
        (0.0, 1.0, 0.0, 0.0, 0.0, -1.0),  # sagittal
        (0.8, 0.6, 0.0, -0.48, 0.64, 0.6),  # oblique
    ],
)
def test_orientation_and_positions_match_the_dicom_geometry(tmp_path: Path, iop) -> None:
    write_series(tmp_path, iop=iop, order=[3, 0, 5, 1, 4, 2])
    ct = load_ct(tmp_path)
    assert ct.hu.shape == (4, 5, 6)  # [column, row, slice]
    assert ct.hu.dtype == np.int16
    check_geometry(ct)
    assert ct.meta["slice_spacing_mm"] == pytest.approx(2.5)  # not SliceThickness (99)
    assert ct.meta["n_slices"] == 6
    assert ct.meta["gantry_tilt_deg"] == pytest.approx(0.0, abs=1e-6)
    # slices ascend along the normal
    normal_ras = np.cross(*np.reshape(iop, (2, 3))) * np.array([-1, -1, 1])
    assert ct.grid.affine[:3, 2] @ normal_ras > 0


def test_reversed_slice_stack_is_sorted_by_position(tmp_path: Path) -> None:
    write_series(tmp_path / "a", step=(0, 0, -2.5), origin=(0, 0, 0))
    write_series(tmp_path / "b", step=(0, 0, 2.5), origin=(0, 0, -12.5))
    a, b = load_ct(tmp_path / "a"), load_ct(tmp_path / "b")
    np.testing.assert_allclose(a.grid.affine, b.grid.affine, atol=1e-6)
    np.testing.assert_array_equal(a.hu, b.hu)


def test_gantry_tilt_gives_a_sheared_affine_that_maps_every_voxel(tmp_path: Path) -> None:
    tilt = np.radians(15)
    step = (0.0, 2.5 * np.tan(tilt), 2.5)  # IPP steps obliquely to the axial normal
    write_series(tmp_path, step=step, n=8, order=[7, 1, 3, 5, 0, 2, 4, 6])
    ct = load_ct(tmp_path)
    check_geometry(ct)
    assert ct.meta["gantry_tilt_deg"] == pytest.approx(15.0, abs=1e-3)
    assert ct.meta["slice_spacing_mm"] == pytest.approx(2.5)
    np.testing.assert_allclose(ct.grid.affine[:3, 2], [0.0, -step[1], 2.5], atol=1e-4)


# ---------------------------------------------------------------------------------- spacing


def test_missing_slice_is_reported_with_positions(tmp_path: Path) -> None:
    pos = [np.array([0.0, 0.0, 2.5 * k]) for k in range(8)]
    del pos[4]
    write_series(tmp_path, positions=pos)
    with pytest.raises(ImageReadError, match=r"missing slices.*5 mm between positions 7\.500 and"):
        load_ct(tmp_path)


def test_uneven_spacing_is_refused_unless_tolerated(tmp_path: Path) -> None:
    pos = [np.array([0.0, 0.0, 2.5 * k]) for k in range(8)]
    pos[3] = pos[3] + np.array([0.0, 0.0, 0.2])
    write_series(tmp_path, positions=pos)
    with pytest.raises(ImageReadError, match=r"uneven slice spacing.*spacing_tolerance"):
        load_ct(tmp_path)
    ct = load_dicom_series(tmp_path, spacing_tolerance=0.1)
    assert ct.hu.shape[2] == 8


def test_duplicate_positions_are_refused(tmp_path: Path) -> None:
    pos = [np.array([0.0, 0.0, 2.5 * k]) for k in range(5)]
    write_series(tmp_path, positions=[*pos, pos[2]])
    with pytest.raises(ImageReadError, match="same slice position"):
        load_ct(tmp_path)


def test_positions_off_a_straight_line_are_refused(tmp_path: Path) -> None:
    pos = [np.array([0.0, 0.0, 2.5 * k]) for k in range(6)]
    pos[2] = pos[2] + np.array([3.0, 0.0, 0.0])  # in-plane jump of one slice
    write_series(tmp_path, positions=pos)
    with pytest.raises(ImageReadError, match="not on one straight line"):
        load_ct(tmp_path)


def test_single_slice_is_refused(tmp_path: Path) -> None:
    write_series(tmp_path, n=1)
    with pytest.raises(ImageReadError, match="at least 2 slices"):
        load_ct(tmp_path)


# ---------------------------------------------------------------------------------- values


def test_unsigned_pixels_with_intercept_give_exact_int16(tmp_path: Path) -> None:
    write_series(tmp_path, signed=False, intercept=-1024.0, origin=(10.0, 20.0, 200.0))
    ct = load_ct(tmp_path)
    assert ct.hu.dtype == np.int16
    check_geometry(ct)


def test_rescale_is_applied_per_slice(tmp_path: Path) -> None:
    write_series(
        tmp_path,
        intercept=lambda k: -1000.0 - 10 * k,
        slope=lambda k: 1 + k % 2,
        hu=lambda p: 2 * hu_of_lps(p),
    )
    ct = load_ct(tmp_path)
    assert ct.hu.dtype == np.int16
    check_geometry(ct, hu=lambda p: 2 * hu_of_ras(p))


def test_fractional_rescale_gives_float32(tmp_path: Path) -> None:
    write_series(tmp_path, slope=0.5, intercept=-1024.0, hu=lambda p: hu_of_lps(p) + 0.5)
    ct = load_ct(tmp_path)
    assert ct.hu.dtype == np.float32
    check_geometry(ct, hu=lambda p: hu_of_ras(p) + 0.5)


def test_values_beyond_int16_widen_to_int32(tmp_path: Path) -> None:
    write_series(
        tmp_path,
        intercept=0.0,
        slope=2.0,
        origin=(-8000.0, 0.0, 0.0),
        hu=lambda p: 2 * hu_of_lps(p),
    )
    ct = load_ct(tmp_path)
    assert ct.hu.dtype == np.int32
    assert int(ct.hu.min()) < -(2**15)
    check_geometry(ct, hu=lambda p: 2 * hu_of_ras(p))


def _pydicom_reference(directory: Path) -> np.ndarray:
    """The series decoded by pydicom alone (full read, its Modality LUT in float64), stacked
    ``[column, row, slice]`` by ascending position along the normal (axial: z)."""
    from pydicom import dcmread
    from pydicom.pixels.processing import apply_modality_lut

    dss = [dcmread(f) for f in sorted(directory.iterdir())]
    dss.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack([apply_modality_lut(ds.pixel_array, ds).T for ds in dss], axis=-1)


def test_each_file_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pydicom

    write_series(tmp_path, n=7)
    calls: list[object] = []
    real = pydicom.dcmread

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args[0])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pydicom, "dcmread", counting)
    ct = load_ct(tmp_path)
    assert len(calls) == 7  # the header pass; the pixel pass reads the pixel element alone
    check_geometry(ct)


@pytest.mark.parametrize(
    ("signed", "bits_stored", "intercept", "slope"),
    [
        (True, 16, -1024.0, 1.0),  # the usual CT: read without pydicom's decoder
        (False, 16, -1024.0, 1.0),
        (False, 12, -1024.0, 1.0),  # 12 bits stored: pydicom's decoder
        (True, 16, -1024.0, 3.0),  # a whole slope: integer arithmetic
        (True, 16, -1024.5, 0.25),  # fractional: pydicom's Modality LUT in float64
    ],
)
def test_values_are_what_pydicom_reads(
    tmp_path: Path, signed: bool, bits_stored: int, intercept: float, slope: float
) -> None:
    def hu(p: np.ndarray) -> np.ndarray:
        stored = np.mod(np.abs(hu_of_lps(p)), 2**bits_stored if not signed else 2**11)
        return stored * slope + intercept

    write_series(
        tmp_path,
        signed=signed,
        intercept=intercept,
        slope=slope,
        hu=hu,
        extra={"BitsStored": bits_stored, "HighBit": bits_stored - 1},
    )
    ct = load_ct(tmp_path)
    expected = _pydicom_reference(tmp_path)
    np.testing.assert_array_equal(ct.hu, expected)
    exact = np.array_equal(expected, np.round(expected))
    assert ct.hu.dtype == (np.int16 if exact else np.float32)


# ---------------------------------------------------------------------------------- series


def test_several_series_need_a_choice(tmp_path: Path) -> None:
    a = write_series(tmp_path / "s1", description="soft tissue", n=6)
    b = write_series(tmp_path / "nested" / "s2", description="bone", n=4, origin=(0, 0, 0))
    with pytest.raises(SeriesSelectionError) as info:
        load_ct(tmp_path)
    msg = str(info.value)
    assert a in msg and b in msg
    assert "'soft tissue' (6 slices)" in msg and "'bone' (4 slices)" in msg
    assert load_ct(tmp_path, series_uid=b).hu.shape[2] == 4
    assert load_ct(tmp_path, series_uid=a).meta["series_uid"] == a
    with pytest.raises(SeriesSelectionError, match=r"no CT series with UID '9\.9'"):
        load_ct(tmp_path, series_uid="9.9")
    assert sorted(s.n_slices for s in list_series(tmp_path)) == [4, 6]


def test_non_dicom_files_are_ignored_and_non_ct_skipped(tmp_path: Path) -> None:
    write_series(tmp_path, n=4)
    (tmp_path / "README.txt").write_text("exported by PACS\n")
    (tmp_path / ".DS_Store").write_bytes(bytes(range(256)))
    (tmp_path / "empty").write_bytes(b"")
    write_series(tmp_path / "mr", modality="MR", n=3)
    ct = load_ct(tmp_path)
    assert ct.hu.shape[2] == 4
    assert ct.meta["modality"] == "CT"
    assert ct.meta["kernel"] == "B30f/2"
    assert ct.meta["manufacturer"] == "SYNTH"


def test_input_without_ct_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here\n")
    write_series(tmp_path / "mr", modality="MR", n=3)
    with pytest.raises(ImageReadError, match=r"no CT image found.*modality \['MR'\]"):
        load_ct(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageReadError, match="no CT image found"):
        load_ct(empty)


def test_mixed_image_sizes_or_orientations_are_refused(tmp_path: Path) -> None:
    write_series(tmp_path / "rows", rows_of=lambda k: 6 if k == 3 else 5)
    with pytest.raises(ImageReadError, match="Rows/Columns"):
        load_ct(tmp_path / "rows")
    uid = write_series(tmp_path / "iop", n=3)
    write_series(
        tmp_path / "iop" / "more",
        n=3,
        uid=uid,
        iop=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
        origin=(0, 0, 50),
    )
    with pytest.raises(ImageReadError, match="ImageOrientationPatient"):
        load_ct(tmp_path / "iop")


def test_zip_gives_exactly_what_the_directory_gives(tmp_path: Path) -> None:
    src = tmp_path / "series"
    write_series(src, n=7, step=(0.0, 0.5, 2.5), signed=False)
    (src / "sub").mkdir()
    (src / "sub" / "notes.txt").write_text("x")
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.rglob("*"), reverse=True):
            zf.write(p, p.relative_to(tmp_path))
    d, z = load_ct(src), load_ct(archive)
    assert d.hu.dtype == z.hu.dtype
    np.testing.assert_array_equal(d.hu, z.hu)
    np.testing.assert_array_equal(d.grid.affine, z.grid.affine)
    assert d.meta == z.meta


def test_bad_zip_and_missing_input(tmp_path: Path) -> None:
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"PK not really")
    with pytest.raises(ImageReadError, match="not a readable zip"):
        load_ct(bad)
    with pytest.raises(ImageReadError, match="not found"):
        load_ct(tmp_path / "gone.zip")


def test_truncated_dicom_pixel_data_is_refused(tmp_path: Path) -> None:
    write_series(tmp_path, n=3)
    victim = sorted(tmp_path.glob("*.dcm"))[1]
    data = victim.read_bytes()
    victim.write_bytes(data[:-20])
    with pytest.raises(ImageReadError, match=victim.name):
        load_ct(tmp_path)


# ---------------------------------------------------------------------------------- real data

TS = "ct/totalseg-example/"


@pytest.fixture(scope="module")
def real_dicom_ct(shared_file):
    """The real series, decoded once per module (JPEG 2000: ~1 s)."""
    return load_ct(shared_file(TS + "dicom"))


@pytest.mark.shared_data
def test_real_dicom_series_loads_and_its_label_map_lands_on_bone(
    shared_file, real_dicom_ct
) -> None:
    ct = real_dicom_ct
    assert ct.hu.shape == (512, 512, 20)
    assert ct.hu.dtype == np.int16
    assert ct.grid.spacing_mm == pytest.approx((0.9765625, 0.9765625, 2.0))
    assert ct.meta["manufacturer"] == "SIEMENS"
    assert ct.meta["slice_spacing_mm"] == pytest.approx(2.0)
    assert int(ct.hu.min()) >= -1100 and int(ct.hu.max()) < 4000
    labels = load_labels(shared_file(TS + "example_seg_dicom.nii.gz"))  # LAS, our grid is LPS
    aligned = align_labels(labels, ct.grid)
    # T12 (32) and T11 (33) are the vertebrae in this 40 mm stack
    for lab in (32, 33):
        assert np.median(ct.hu[aligned.labels == lab]) > 150
        # the stored (un-flipped) array taken as if it were on the CT grid: soft tissue/air
        assert np.median(ct.hu[labels.labels == lab]) < 0
    _, study_labels = load_study(
        shared_file(TS + "dicom"), shared_file(TS + "example_seg_dicom.nii.gz")
    )
    np.testing.assert_array_equal(study_labels.labels, aligned.labels)


@pytest.mark.shared_data
def test_real_dicom_zip_equals_directory(shared_file, real_dicom_ct, tmp_path: Path) -> None:
    src = shared_file(TS + "dicom")
    archive = tmp_path / "dicom.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.iterdir()):
            zf.write(p, f"export/{p.name}")
    d, z = real_dicom_ct, load_ct(archive)
    np.testing.assert_array_equal(d.hu, z.hu)
    np.testing.assert_array_equal(d.grid.affine, z.grid.affine)
    assert d.hu.dtype == z.hu.dtype
    assert d.meta == z.meta


# ------------------------------------------------------------------------ modality and contrast


def mr_signal(p: np.ndarray) -> np.ndarray:
    """Non-negative signal in arbitrary units, a function of LPS position (mm)."""
    return np.round(3000.0 + 2.0 * p[..., 0] + p[..., 1] + 3.0 * p[..., 2])


def test_an_mr_series_loads_as_signal_never_as_hu(tmp_path: Path) -> None:
    write_series(tmp_path, modality="MR", hu=mr_signal, intercept=0.0, signed=False, n=4)
    image = load_image(tmp_path)
    assert isinstance(image, MrVolume) and not hasattr(image, "hu")
    assert image.signal.shape == (4, 5, 4)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in image.signal.shape], indexing="ij"), -1)
    lps = image.grid.to_world(ijk) * np.array([-1.0, -1.0, 1.0])
    np.testing.assert_array_equal(image.signal, mr_signal(lps))  # same geometry rules as CT
    acq = image.acquisition
    assert (acq.modality, acq.modality_source) == (Modality.MR, "dicom")
    assert acq.modality_evidence == "DICOM Modality (0008,0060) 'MR'"
    assert image.meta["units"].startswith("MRI signal")
    # load_ct is the CT-only reader: the same input holds no CT
    with pytest.raises(ImageReadError, match=r"no CT image found.*modality \['MR'\]"):
        load_ct(tmp_path)


def test_other_modalities_are_refused_naming_the_tag_and_value(tmp_path: Path) -> None:
    pet = write_series(tmp_path / "pt", modality="PT", n=3)
    with pytest.raises(
        ImageReadError, match=r"no CT or MR image found .*modality \['PT'\] \(tag Modality"
    ):
        load_image(tmp_path / "pt")
    write_series(tmp_path / "pt" / "ct", n=3)
    assert isinstance(load_image(tmp_path / "pt"), CtVolume)  # the PT series is skipped
    with pytest.raises(
        ImageReadError, match=rf"series '{pet}' has tag Modality \(0008,0060\) 'PT'"
    ):
        load_image(tmp_path / "pt", series_uid=pet)


def test_ct_and_mr_in_one_input_need_a_choice_listing_each_modality(tmp_path: Path) -> None:
    ct_uid = write_series(tmp_path / "ct", n=3, description="ABD")
    mr_uid = write_series(tmp_path / "mr", n=4, modality="MR", hu=mr_signal, intercept=0.0)
    # the series are listed in UID order (random UIDs here): either may come first
    with pytest.raises(
        SeriesSelectionError, match=r"2 image series.*(CT 'ABD'.* MR 'axial'|MR 'axial'.* CT 'ABD')"
    ):
        load_image(tmp_path)
    assert isinstance(load_image(tmp_path, series_uid=mr_uid), MrVolume)
    assert isinstance(load_image(tmp_path, series_uid=ct_uid), CtVolume)
    assert [s.modality for s in list_series(tmp_path, modalities=("CT", "MR"))] == sorted(
        ["CT", "MR"], key=lambda m: {"CT": ct_uid, "MR": mr_uid}[m]
    )


def test_the_user_cannot_contradict_the_modality_tag(tmp_path: Path) -> None:
    write_series(tmp_path, modality="MR", hu=mr_signal, intercept=0.0, n=3)
    with pytest.raises(AcquisitionError, match=r"is 'MR' but CT was requested"):
        load_image(tmp_path, modality="ct")
    assert load_image(tmp_path, modality="mr").acquisition.modality_source == "dicom"


def test_an_empty_modality_tag_is_decided_by_the_user(tmp_path: Path) -> None:
    write_series(tmp_path, modality="", hu=mr_signal, intercept=0.0, n=3)
    image = load_image(tmp_path, modality="mr")
    assert isinstance(image, MrVolume)
    assert image.acquisition.modality_evidence.startswith("DICOM Modality (0008,0060) is empty")
    assert load_ct(tmp_path).acquisition.modality_source == "assumed"  # load_ct: read as CT


@pytest.mark.parametrize(
    ("extra", "phase", "evidence"),
    [
        (
            {"SeriesDescription": "ABD PV"},
            ContrastPhase.PORTAL_VENOUS,
            "SeriesDescription 'ABD PV'",
        ),
        ({"ContrastBolusAgent": "IOMERON 400"}, ContrastPhase.UNKNOWN_PHASE, "ContrastBolusAgent"),
        ({"ProtocolName": "Thorax nativ"}, ContrastPhase.NATIVE, "ProtocolName 'Thorax nativ'"),
        ({}, ContrastPhase.NATIVE, "no contrast information in the DICOM header"),
    ],
)
def test_the_contrast_phase_comes_from_the_header(tmp_path: Path, extra, phase, evidence) -> None:
    description = extra.pop("SeriesDescription", "axial")
    write_series(tmp_path, n=3, description=description, extra=extra)
    for ct in (load_image(tmp_path), load_dicom_series(tmp_path)):
        assert ct.acquisition.contrast_phase is phase
        assert evidence in ct.acquisition.contrast_evidence
        assert ct.acquisition.contrast_source == (
            "assumed" if not extra and description == "axial" else "dicom"
        )


def test_a_stated_phase_wins_over_the_header_and_an_mri_takes_none(tmp_path: Path) -> None:
    write_series(tmp_path / "ct", n=3, description="ABD PV")
    acq = load_dicom_image(tmp_path / "ct", contrast_phase="arterial").acquisition
    assert (acq.contrast_phase, acq.contrast_source) == (ContrastPhase.ARTERIAL, "user")
    write_series(tmp_path / "mr", n=3, modality="MR", hu=mr_signal, intercept=0.0)
    with pytest.raises(AcquisitionError, match=r"mr: contrast phase 'arterial' is a CT phase"):
        load_image(tmp_path / "mr", contrast_phase="arterial")
