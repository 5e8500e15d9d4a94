"""Issue 12, "inputs bounded before allocation": each finding of the probe as a test.

Header bombs (NIfTI 30000^3 and 3000^3, DICOM Rows/Columns 65535), a gzip-bomb label map on
another grid, a zip holding a 3 GiB member, malformed DICOM tags and hostile prior reports:
each is refused with an :class:`InputError` naming the file and the value, before memory is
allocated for it. The bombs run in a separate process under an address-space cap and their peak
resident memory is asserted (``_hostile_support.probe``); the small cases run in-process under
:mod:`tracemalloc` (numpy's allocations are traced).
"""

from __future__ import annotations

import contextlib
import json
import tracemalloc
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from _hostile_support import (
    dicom_series,
    dicom_slice,
    gzip_bomb_nifti,
    header_bomb_nifti,
    lying_zip,
    probe,
    zip_bomb,
)
from spinewatch.core.errors import InputError
from spinewatch.imaging.compare import ReportFormatError, load_report
from spinewatch.imaging.dicom import load_dicom_series
from spinewatch.imaging.io import (
    GridMismatchError,
    ImageReadError,
    load_ct,
    load_labels,
    load_study,
)
from spinewatch.imaging.limits import (
    InputLimits,
    InputTooLargeError,
    LimitSettingError,
    limits_from_env,
    parse_json,
)

#: Peak resident memory (MB) allowed to a probe process that refuses a bomb: the interpreter
#: with numpy, nibabel and pydicom loaded takes ~80-120 MB; the bombs claim 1 GiB to 49 TiB.
BOMB_RSS_BOUND_MB = 300.0


def _traced_peak_mb(action) -> float:
    tracemalloc.start()
    try:
        with contextlib.suppress(InputError):
            action()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _valid_labels(path: Path, shape=(4, 4, 3)) -> Path:
    nib.save(nib.Nifti1Image(np.zeros(shape, np.uint8), np.eye(4)), str(path))
    return path


# ------------------------------------------------------------------------------ NIfTI headers


@pytest.mark.parametrize("side", [30000, 3000])
def test_a_nifti_header_claiming_a_huge_volume_is_refused_before_allocating(
    tmp_path: Path, side: int
) -> None:
    bomb = header_bomb_nifti(tmp_path / f"bomb{side}.nii", (side, side, side))
    with pytest.raises(InputTooLargeError) as info:
        load_labels(bomb)
    message = str(info.value)
    assert f"bomb{side}.nii" in message and f"{side}x{side}x{side}" in message
    assert "SPINEWATCH_MAX_IMAGE_BYTES" in message
    assert _traced_peak_mb(lambda: load_ct(bomb)) < 5


def test_the_image_limit_is_a_setting(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((64, 64, 64), np.int16), np.eye(4)), str(path))
    assert load_ct(path).hu.shape == (64, 64, 64)  # 0.5 MiB, far below the default
    monkeypatch.setenv("SPINEWATCH_MAX_IMAGE_BYTES", "256KiB")
    with pytest.raises(InputTooLargeError, match=r"64x64x64 .*limit is 256 KiB"):
        load_ct(path)
    assert limits_from_env({"SPINEWATCH_MAX_IMAGE_BYTES": "1.5GiB"}).max_image_bytes == 3 << 29
    monkeypatch.setenv("SPINEWATCH_MAX_IMAGE_BYTES", "lots")
    with pytest.raises(LimitSettingError, match="SPINEWATCH_MAX_IMAGE_BYTES='lots'"):
        load_ct(path)


def test_a_clinical_ct_fits_the_default_limit() -> None:
    limits = InputLimits()
    assert limits.max_image_bytes >= 512 * 512 * 2000 * 2  # int16 series, ~1 GiB
    assert limits.max_image_bytes >= 512 * 512 * 2000 * 4  # the same as a float32 NIfTI


def test_nifti_header_with_a_huge_extension_or_offset_is_refused(tmp_path: Path) -> None:
    from _hostile_support import nifti_header_bytes

    header = bytearray(nifti_header_bytes((4, 4, 4)))
    header[348:352] = b"\x01\x00\x00\x00"  # extensions follow ...
    ext = np.array([2**31 - 16, 4], dtype="<i4").tobytes()  # ... one claiming 2 GiB
    path = tmp_path / "ext.nii"
    path.write_bytes(bytes(header) + ext + bytes(200))
    with pytest.raises(ImageReadError, match=r"ext\.nii"):
        load_labels(path)
    far = bytearray(nifti_header_bytes((4, 4, 4)))
    far[108:112] = np.array([3e9], dtype="<f4").tobytes()  # vox_offset 3 GB
    (tmp_path / "far.nii").write_bytes(bytes(far) + bytes(200))
    with pytest.raises(ImageReadError, match=r"vox_offset is 3e\+09"):
        load_labels(tmp_path / "far.nii")


@pytest.mark.parametrize("dims", [[3, 4, 0, 4], [3, 4, -2, 4], [9, 4, 4, 4]])
def test_nifti_header_with_zero_negative_or_too_many_dims_is_refused(tmp_path, dims) -> None:
    from _hostile_support import nifti_header_bytes

    header = bytearray(nifti_header_bytes((4, 4, 4)))
    header[40:48] = np.array(dims, dtype="<i2").tobytes()
    (tmp_path / "d.nii").write_bytes(bytes(header) + bytes(128))
    with pytest.raises(ImageReadError, match=r"d\.nii"):
        load_labels(tmp_path / "d.nii")


def test_grids_are_compared_from_the_headers_before_a_gzip_bomb_is_inflated(
    tmp_path: Path,
) -> None:
    """The probe's 4 MB gzip NIfTI used 4.3 GB and 42 s before the grid mismatch was found."""
    ct = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((40, 40, 30), np.int16), np.eye(4)), str(ct))
    bomb = gzip_bomb_nifti(tmp_path / "labels.nii.gz", (1024, 1024, 1000))  # 1000 MiB inflated
    assert bomb.stat().st_size < 8 << 20
    with pytest.raises(GridMismatchError, match=r"labels\.nii\.gz.*\(1024, 1024, 1000\)"):
        load_study(ct, bomb)
    assert _traced_peak_mb(lambda: load_study(ct, bomb)) < 20
    outcome = probe("study", str(ct), str(bomb))
    assert outcome["error"] == "GridMismatchError", outcome
    assert outcome["maxrss_mb"] < BOMB_RSS_BOUND_MB, outcome


def test_bomb_memory_is_bounded_in_a_fresh_process(tmp_path: Path) -> None:
    small = _valid_labels(tmp_path / "ok.nii.gz")
    baseline = probe("study", "-", str(small))
    assert baseline["error"] is None, baseline
    bombs = {
        "nifti 30000^3": ("study", "-", str(header_bomb_nifti(tmp_path / "a.nii", (30000,) * 3))),
        "nifti 3000^3": ("study", "-", str(header_bomb_nifti(tmp_path / "b.nii", (3000,) * 3))),
        "dicom 65535^2": (
            "image",
            str(dicom_series(tmp_path / "rows", rows=65535, columns=65535, pixels=bytes(32))),
        ),
        "zip 3 GiB member": ("image", str(zip_bomb(tmp_path / "bomb.zip", 3 << 30))),
    }
    assert (tmp_path / "bomb.zip").stat().st_size < 8 << 20
    for name, args in bombs.items():
        outcome = probe(*args)
        assert outcome["input_error"] is True, (name, outcome)
        assert outcome["maxrss_mb"] < BOMB_RSS_BOUND_MB, (name, outcome)
        # what the bomb cost above the reader's own imports
        assert outcome["maxrss_mb"] - baseline["maxrss_mb"] < 100, (name, outcome, baseline)


# ------------------------------------------------------------------------------------- DICOM


def test_dicom_rows_and_columns_65535_are_refused_before_decoding(tmp_path: Path) -> None:
    series = dicom_series(tmp_path / "s", rows=65535, columns=65535, pixels=bytes(32))
    with pytest.raises(InputTooLargeError, match=r"65535x65535.*SPINEWATCH_MAX_IMAGE_BYTES"):
        load_dicom_series(series)
    assert _traced_peak_mb(lambda: load_dicom_series(series)) < 5


def test_dicom_slice_too_large_for_one_file_is_refused(tmp_path: Path) -> None:
    series = dicom_series(tmp_path / "s", n=2, rows=16384, columns=16384, pixels=bytes(32))
    limits = InputLimits(max_file_bytes=64 << 20)
    with pytest.raises(InputTooLargeError, match=r"Rows 16384 x Columns 16384 at 16 bits"):
        load_dicom_series(series, limits=limits)


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ({"rows": None}, r"tag Rows \(0028,0010\) is empty; expected a whole number"),
        ({"columns": None}, r"tag Columns \(0028,0011\) is empty"),
        ({"extra": {"NumberOfFrames": "7"}, "patch": b"x "}, r"NumberOfFrames .*'x'"),
        ({"extra": {"NumberOfFrames": "3"}}, r"NumberOfFrames \(0028,0008\) is 3; multi-frame"),
        ({"extra": {"SamplesPerPixel": 9}}, r"SamplesPerPixel \(0028,0002\) is 9"),
    ],
)
def test_malformed_dicom_tags_are_refused_naming_file_and_tag(tmp_path, tags, match) -> None:
    patch = tags.pop("patch", None)
    series = dicom_series(tmp_path / "s", **tags)
    if patch is not None:  # pydicom will not write NumberOfFrames "x": edit the bytes
        frames = b"\x28\x00\x08\x00IS\x02\x007 "
        for f in series.iterdir():
            data = f.read_bytes()
            assert frames in data
            f.write_bytes(data.replace(frames, frames[:-2] + patch))
    with pytest.raises(ImageReadError, match=match) as info:
        load_dicom_series(series)
    assert "000.dcm" in str(info.value) or str(series) in str(info.value)


def test_a_dicom_element_claiming_4_gb_does_not_allocate_it(tmp_path: Path) -> None:
    data = bytearray(dicom_slice())
    at = data.find(b"\x08\x00\x3e\x10")  # (0008,103E) SeriesDescription, added below
    assert at == -1
    # a private OB element whose 4-byte length says 0xFFFFFFF0 right after the file meta
    meta_end = data.find(b"\x08\x00\x16\x00")  # SOPClassUID in the dataset
    element = b"\x09\x00\x10\x10OB\x00\x00" + (0xFFFFFFF0).to_bytes(4, "little") + bytes(16)
    data[meta_end:meta_end] = element
    directory = tmp_path / "s"
    directory.mkdir()
    for k in range(2):
        (directory / f"{k}.dcm").write_bytes(bytes(data))
    assert _traced_peak_mb(lambda: load_dicom_series(directory)) < 20
    with pytest.raises(ImageReadError):
        load_dicom_series(directory)


# --------------------------------------------------------------------------------------- zips


def test_a_zip_holding_a_3_gib_member_is_refused_unread(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "bomb.zip", 3 << 30)
    with pytest.raises(InputTooLargeError, match=r"bomb\.zip:image\.dcm: declared .* 3 GiB"):
        load_ct(bomb)
    assert _traced_peak_mb(lambda: load_ct(bomb)) < 5


def test_a_zip_member_inflating_more_than_100_fold_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ratio.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.dcm", bytes(1 << 20))  # 1 MiB of zeros -> ~1 kB
    with pytest.raises(InputTooLargeError, match=r"ratio \d+.*SPINEWATCH_MAX_ZIP_RATIO"):
        load_ct(path)
    # a small member is not judged by its ratio (POI's 100 kB grace)
    with zipfile.ZipFile(tmp_path / "small.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("notes.txt", bytes(50_000))
    with pytest.raises(ImageReadError, match="no CT image found"):
        load_ct(tmp_path / "small.zip")


def test_a_zip_member_longer_than_declared_is_cut_at_its_declared_size(tmp_path: Path) -> None:
    real = dicom_slice()
    path = lying_zip(tmp_path / "lie.zip", real + bytes(5 << 20), declared_size=len(real) // 2)
    peak = _traced_peak_mb(lambda: load_ct(path))
    assert peak < 4  # never inflated past the declared size
    with pytest.raises(ImageReadError, match=r"lie\.zip:image\.dcm"):
        load_ct(path)


def test_too_many_zip_members_or_too_large_a_total_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(12):
            zf.writestr(f"{k}.dcm", b"x" * 1000)
    with pytest.raises(InputTooLargeError, match="12 files; the limit is 10"):
        load_ct(path, limits=InputLimits(max_zip_members=10))
    with pytest.raises(InputTooLargeError, match=r"add up to .*SPINEWATCH_MAX_ARCHIVE_BYTES"):
        load_ct(path, limits=InputLimits(max_archive_bytes=5000))


def test_a_zip_series_is_streamed_and_equals_its_directory(tmp_path: Path) -> None:
    directory = dicom_series(tmp_path / "s", n=4, rows=32, columns=32)
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(directory.iterdir()):
            zf.write(f, f.name)
    from_dir, from_zip = load_ct(directory), load_ct(path)
    np.testing.assert_array_equal(from_dir.hu, from_zip.hu)
    assert from_dir.grid.same_as(from_zip.grid)


# ------------------------------------------------------------------------------------ reports


def _report(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prior.json"
    path.write_text(text, encoding="utf-8")
    return path


def test_nan_in_a_text_field_of_a_prior_report_is_refused(tmp_path: Path) -> None:
    text = '{"scan": {"source": NaN}, "vertebrae": [{"level": "L1"}]}'
    with pytest.raises(ReportFormatError, match=r"prior\.json: line 1, column 21: NaN"):
        load_report(_report(tmp_path, text))
    text = '{"scan": {}, "vertebrae": [{"level": "L1", "reasons": [-Infinity]}]}'
    with pytest.raises(ReportFormatError, match="-Infinity is not a JSON value"):
        load_report(_report(tmp_path, text))


def test_a_deeply_nested_prior_report_is_refused_without_recursion(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    path = _report(tmp_path, '{"scan": {}, "vertebrae": [], "x": ' + deep + "}")
    with pytest.raises(ReportFormatError, match=r"nested more than 64 levels"):
        load_report(path)


def test_an_oversized_report_is_refused_before_reading(tmp_path: Path) -> None:
    path = _report(tmp_path, '{"scan": {}, "vertebrae": []}' + " " * 5000)
    with pytest.raises(InputTooLargeError, match="SPINEWATCH_MAX_REPORT_BYTES"):
        load_report(path, limits=InputLimits(max_report_bytes=1000))


def test_a_parsed_report_with_nan_or_deep_nesting_is_refused_by_the_registry() -> None:
    from spinewatch.registry.errors import RegistryError
    from spinewatch.registry.services.imaging import read_report

    nested: object = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(RegistryError, match="nested more than 64 levels"):
        read_report({"scan": {}, "vertebrae": [], "x": nested})
    with pytest.raises(RegistryError, match=r"scan\.source is nan"):
        read_report({"scan": {"source": float("nan")}, "vertebrae": []})


def test_parse_json_keeps_brackets_and_nan_inside_strings() -> None:
    doc = parse_json('{"a": "NaN [[[[", "b": ["\\"]]]]"]}', source="x", max_depth=2)
    assert doc == {"a": "NaN [[[[", "b": ['"]]]]']}
    assert json.loads(json.dumps(doc)) == doc


def test_absurd_measurements_in_a_report_are_refused_not_turned_into_infinity(
    tmp_path: Path,
) -> None:
    """Found by the fuzzer: heights of 1e308 and -1e308 gave a change of -Infinity, and the
    comparison could not be written as JSON (a traceback in ``spinewatch compare``)."""
    from spinewatch.imaging.compare import compare_reports
    from spinewatch.imaging.report import SpineReport

    for absurd in (1e308, -1e308):
        with pytest.raises(ReportFormatError, match=r"height_anterior_mm: expected .*1e\+06\]"):
            SpineReport.from_json_dict(
                {"scan": {}, "vertebrae": [{"level": "L1", "height_anterior_mm": absurd}]}
            )
    tiny = {"scan": {}, "vertebrae": [{"level": "L1", "lytic_volume_ml": 5e-324}]}
    grown = {"scan": {}, "vertebrae": [{"level": "L1", "lytic_volume_ml": 20.0}]}
    comparison = compare_reports(
        SpineReport.from_json_dict(tiny), SpineReport.from_json_dict(grown)
    )
    json.dumps(comparison, allow_nan=False)  # a percentage of a denormal prior: null, not inf


def test_a_zip_of_an_unknown_version_or_method_is_refused(tmp_path: Path) -> None:
    """Found by the fuzzer: zipfile raises NotImplementedError for a 'version needed to
    extract' above 6.3 or an unknown compression method -- a traceback before."""
    import struct

    directory = dicom_series(tmp_path / "s", n=2)
    for name, offset, value in (("version.zip", 6, 64), ("method.zip", 10, 99)):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as zf:
            for f in sorted(directory.iterdir()):
                zf.write(f, f.name)
        data = bytearray(path.read_bytes())
        central = data.find(b"PK\x01\x02")
        data[central + offset : central + offset + 2] = struct.pack("<H", value)
        path.write_bytes(bytes(data))
        with pytest.raises(ImageReadError, match=name.replace(".", r"\.")):
            load_ct(path)
