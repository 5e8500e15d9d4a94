"""Fuzzing the input readers (issue 12): DICOM, NIfTI, zip and report files made hostile.

Hypothesis starts from VALID small files and mutates them the way a broken scanner export, a
truncated transfer or an attacker would: header fields set to boundary and random values
(dimensions, data types, offsets, scaling, affines, DICOM Rows/Columns/bits/frames/positions/
rescale/transfer syntax, pixel data lengths), random byte flips, insertions and truncations, zip
headers that lie about sizes, methods and CRCs, junk members, JSON values replaced, NaN and
Infinity tokens, deep nesting. Every case must end in one of two ways:

- the file is read (a volume or a report comes back), or
- it is refused with an :class:`~spinewatch.core.errors.InputError` (the one-line message);

anything else -- a traceback -- fails the test. Each case runs under :mod:`tracemalloc`
(numpy's buffers are traced) with tight input limits (``LIMITS``: 8 MiB per volume), and its
peak must stay below ``MEMORY_BOUND_MB``; Hypothesis' deadline bounds each case's time (a hang,
not a speed test: the bound is generous). The examples are derandomized (the same cases in
every CI run); ``SPINEWATCH_FUZZ_RANDOM=1`` explores new ones and ``SPINEWATCH_FUZZ_EXAMPLES``
sets how many per reader. The tally (cases, read, refused, tracebacks, memory peak) is printed
at the end of the run by ``tests/fuzz/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import math
import os
import struct
import tempfile
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import record
from spinewatch.core.errors import InputError
from spinewatch.imaging.limits import InputLimits

#: Examples per reader in one run (4 readers: >= 1,000 cases).
EXAMPLES = int(os.environ.get("SPINEWATCH_FUZZ_EXAMPLES", "300"))
#: Peak traced memory allowed to one case (MB). The limits below allow an 8 MiB volume; the
#: readers hold it at most twice or three times (raw + converted + a slab of temporaries).
MEMORY_BOUND_MB = 64
LIMITS = InputLimits(
    max_image_bytes=8 << 20,
    max_file_bytes=2 << 20,
    max_archive_bytes=16 << 20,
    max_report_bytes=1 << 20,
)
#: A hang, not a speed test: one small case normally takes milliseconds.
DEADLINE = dt.timedelta(seconds=10)

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=DEADLINE,
    derandomize=os.environ.get("SPINEWATCH_FUZZ_RANDOM", "") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

pytestmark = pytest.mark.slow


def run_case(reader: str, action: Callable[[], object]) -> None:
    """Run one case: read or refused (InputError); count it; check its memory peak."""
    tracemalloc.start()
    outcome = "read"
    try:
        action()
    except InputError:
        outcome = "refused"
    except BaseException:
        outcome = "traceback"
        raise
    finally:
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        record(reader, outcome=outcome, peak_mb=peak_mb, bound_mb=MEMORY_BOUND_MB)
    assert peak_mb < MEMORY_BOUND_MB, f"{reader}: {peak_mb:.1f} MB traced"


# ---------------------------------------------------------------------------------- values

I16 = st.one_of(
    st.sampled_from([0, 1, -1, 2, 3, 4, 5, 7, 8, 16, 64, 255, 256, 32767, -32768]),
    st.integers(-32768, 32767),
)
I32 = st.one_of(
    st.sampled_from([0, 1, -1, 348, 352, 540, 2**31 - 1, -(2**31)]),
    st.integers(-(2**31), 2**31 - 1),
)
F32 = st.one_of(
    st.sampled_from(
        [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, math.nan, math.inf, -math.inf, 1e38, -1e38, 1e-38, 3e9]
    ),
    st.floats(width=32),
)


def rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws; False is what Hypothesis shrinks towards."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


def _flip_bytes(data: bytes, draw: st.DrawFn) -> bytes:
    """Random byte edits: flips, an insertion, a truncation."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        if not out:
            break
        at = draw(st.integers(0, len(out) - 1))
        out[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(out)))
        out[at:at] = draw(st.binary(max_size=64))
    if rarely(draw, 5):
        out = out[: draw(st.integers(0, len(out)))]
    return bytes(out)


# ------------------------------------------------------------------------------------ NIfTI

#: NIfTI-1 header fields: (offset, struct format, value strategy)
_NIFTI_FIELDS: tuple[tuple[int, str, st.SearchStrategy[Any]], ...] = (
    (0, "<i", I32),  # sizeof_hdr
    *((40 + 2 * k, "<h", I16) for k in range(8)),  # dim[0..7]
    (70, "<h", st.one_of(st.sampled_from([2, 4, 8, 16, 64, 128, 256, 512, 768, 1024, 1280]), I16)),
    (72, "<h", I16),  # bitpix
    *((76 + 4 * k, "<f", F32) for k in range(8)),  # pixdim
    (108, "<f", F32),  # vox_offset
    (112, "<f", F32),  # scl_slope
    (116, "<f", F32),  # scl_inter
    (252, "<h", I16),  # qform_code
    (254, "<h", I16),  # sform_code
    *((256 + 4 * k, "<f", F32) for k in range(6)),  # quatern_b..qoffset_z
    *((280 + 4 * k, "<f", F32) for k in range(12)),  # srow_x, srow_y, srow_z
    (344, "4s", st.sampled_from([b"n+1\0", b"ni1\0", b"n+2\0", b"\0\0\0\0"])),
    (348, "<i", st.sampled_from([0, 1, 2**31 - 1])),  # extension flag
)


def _base_nifti(dtype: Any, rng_seed: int) -> bytes:
    rng = np.random.default_rng(rng_seed)
    arr = rng.integers(0, 40, size=(6, 5, 4)).astype(dtype)
    img = nib.Nifti1Image(arr, np.diag([1.5, 1.5, 2.0, 1.0]))
    img.header.set_slope_inter(1.0, 0.0)
    buffer = io.BytesIO()
    buffer.write(img.header.binaryblock + b"\0\0\0\0")
    buffer.write(arr.tobytes(order="F"))
    return buffer.getvalue()


@st.composite
def nifti_files(draw: st.DrawFn) -> tuple[bytes, bool]:
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.float32, np.float64, np.int32]))
    data = bytearray(_base_nifti(dtype, draw(st.integers(0, 3))))
    for _ in range(draw(st.integers(0, 6))):
        offset, fmt, values = draw(st.sampled_from(_NIFTI_FIELDS))
        value = draw(values)
        data[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    if draw(st.booleans()):
        data = bytearray(_flip_bytes(bytes(data), draw))
    return bytes(data), draw(st.booleans())


@FUZZ
@given(case=nifti_files())
def test_fuzz_nifti(case: tuple[bytes, bool]) -> None:
    from spinewatch.imaging.io import load_ct, load_labels

    data, compress = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("x.nii.gz" if compress else "x.nii")
        path.write_bytes(gzip.compress(data, compresslevel=1) if compress else data)
        run_case("nifti", lambda: (load_ct(path, limits=LIMITS), load_labels(path, limits=LIMITS)))


# ------------------------------------------------------------------------------------ DICOM

#: (group, element, VR) of the attributes mutated, and the value generator for each VR kind
_DICOM_TAGS = (
    (0x0028, 0x0010, "US"),  # Rows
    (0x0028, 0x0011, "US"),  # Columns
    (0x0028, 0x0100, "US"),  # BitsAllocated
    (0x0028, 0x0101, "US"),  # BitsStored
    (0x0028, 0x0102, "US"),  # HighBit
    (0x0028, 0x0103, "US"),  # PixelRepresentation
    (0x0028, 0x0002, "US"),  # SamplesPerPixel
    (0x0028, 0x0008, "IS"),  # NumberOfFrames
    (0x0020, 0x0032, "DS"),  # ImagePositionPatient
    (0x0020, 0x0037, "DS"),  # ImageOrientationPatient
    (0x0028, 0x0030, "DS"),  # PixelSpacing
    (0x0028, 0x1053, "DS"),  # RescaleSlope
    (0x0028, 0x1052, "DS"),  # RescaleIntercept
    (0x0008, 0x0060, "CS"),  # Modality
    (0x0028, 0x0004, "CS"),  # PhotometricInterpretation
    (0x0020, 0x000E, "UI"),  # SeriesInstanceUID
    (0x0002, 0x0010, "UI"),  # TransferSyntaxUID
    (0x7FE0, 0x0010, "OW"),  # PixelData
)
_LONG_VRS = {"OB", "OW", "OF", "SQ", "UT", "UN"}
_NUMBER_TEXT = st.text(alphabet="0123456789+-.eE \\xNaInf", max_size=40)
_SYNTAXES = st.sampled_from(
    [
        b"1.2.840.10008.1.2\0",
        b"1.2.840.10008.1.2.1\0",
        b"1.2.840.10008.1.2.2\0",
        b"1.2.840.10008.1.2.4.50",
        b"1.2.840.10008.1.2.4.90",
        b"1.2.840.10008.1.2.5\0",
        b"1.2.840.10008.1.2.1.99",
        b"9.9\0",
    ]
)


def _value_for(vr: str, tag: tuple[int, int], draw: st.DrawFn) -> bytes:
    if tag == (0x0002, 0x0010):
        return draw(_SYNTAXES)
    if vr == "US":
        return draw(
            st.one_of(
                st.sampled_from([0, 1, 2, 3, 4, 8, 12, 15, 16, 17, 32, 64, 255, 65535]).map(
                    lambda v: struct.pack("<H", v)
                ),
                st.binary(max_size=6),
            )
        )
    if vr in ("IS", "DS"):
        return draw(_NUMBER_TEXT).encode("ascii")
    if vr == "OW":
        return draw(st.one_of(st.binary(max_size=200), st.just(b"")))
    return draw(st.text(max_size=70)).encode("utf-8", "replace")


def _set_element(data: bytes, group: int, element: int, value: bytes) -> bytes:
    """Replace (explicit VR little endian) element ``(group, element)``'s value bytes."""
    at = data.find(struct.pack("<HH", group, element))
    if at < 0:
        return data
    vr = data[at + 4 : at + 6].decode("latin-1")
    if len(value) % 2:
        value += b" "
    if vr in _LONG_VRS:
        (length,) = struct.unpack("<I", data[at + 8 : at + 12])
        start = at + 12
        header = data[at : at + 8] + struct.pack("<I", len(value))
    else:
        (length,) = struct.unpack("<H", data[at + 6 : at + 8])
        start = at + 8
        if len(value) > 0xFFFF:
            value = value[:0xFFFE]
        header = data[at : at + 6] + struct.pack("<H", len(value))
    if length == 0xFFFFFFFF:  # undefined length: leave it
        return data
    return data[:at] + header + value + data[start + length :]


def _slice_bytes(k: int, rows: int, cols: int) -> bytes:
    from _hostile_support import dicom_slice

    pixels = (np.arange(rows * cols, dtype=np.int16) * (k + 1)).tobytes()
    return dicom_slice(
        rows=rows, columns=cols, z=2.0 * k, pixels=pixels, extra={"NumberOfFrames": "1"}
    )


_SERIES_CACHE: dict[tuple[int, int], list[bytes]] = {}


def _base_series(rows: int, cols: int) -> list[bytes]:
    key = (rows, cols)
    if key not in _SERIES_CACHE:
        _SERIES_CACHE[key] = [_slice_bytes(k, rows, cols) for k in range(3)]
    return _SERIES_CACHE[key]


@st.composite
def dicom_series_bytes(draw: st.DrawFn) -> list[bytes]:
    rows, cols = draw(st.sampled_from([(4, 4), (8, 6), (16, 16)]))
    files = list(_base_series(rows, cols))
    for _ in range(draw(st.integers(0, 4))):
        group, element, vr = draw(st.sampled_from(_DICOM_TAGS))
        value = _value_for(vr, (group, element), draw)
        targets = range(len(files)) if draw(st.booleans()) else [draw(st.integers(0, 2))]
        for i in targets:
            files[i] = _set_element(files[i], group, element, value)
    if draw(st.booleans()):
        i = draw(st.integers(0, len(files) - 1))
        files[i] = _flip_bytes(files[i], draw)
    if rarely(draw, 6):
        files.append(draw(st.binary(max_size=300)))  # a stray non-DICOM file
    return files


def _write_series(directory: Path, files: list[bytes]) -> None:
    directory.mkdir()
    for i, data in enumerate(files):
        (directory / f"{i:03d}.dcm").write_bytes(data)


@FUZZ
@given(files=dicom_series_bytes())
def test_fuzz_dicom(files: list[bytes]) -> None:
    from spinewatch.imaging.io import load_image

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "series"
        _write_series(directory, files)
        run_case("dicom", lambda: load_image(directory, limits=LIMITS))


# -------------------------------------------------------------------------------------- zip

_ZIP_FIELDS = (  # (signature, offset from it, format, strategy)
    (b"PK\x03\x04", 8, "<H", st.sampled_from([0, 8, 9, 12, 14, 93, 99, 65535])),  # method
    (b"PK\x03\x04", 14, "<I", st.integers(0, 2**32 - 1)),  # CRC
    (b"PK\x03\x04", 18, "<I", st.sampled_from([0, 1, 100, 2**31, 2**32 - 1])),  # compressed
    (b"PK\x03\x04", 22, "<I", st.sampled_from([0, 1, 100, 2**20, 2**31, 2**32 - 1])),  # size
    (b"PK\x03\x04", 26, "<H", st.sampled_from([0, 1, 255, 65535])),  # name length
    (b"PK\x01\x02", 10, "<H", st.sampled_from([0, 8, 12, 14, 99, 65535])),  # method
    (b"PK\x01\x02", 20, "<I", st.sampled_from([0, 1, 100, 2**31, 2**32 - 1])),  # compressed
    (b"PK\x01\x02", 24, "<I", st.sampled_from([0, 1, 2**20, 3 << 30, 2**32 - 1])),  # size
    (b"PK\x01\x02", 42, "<I", st.integers(0, 2**32 - 1)),  # local header offset
    (b"PK\x05\x06", 10, "<H", st.sampled_from([0, 1, 3, 65535])),  # entries
    (b"PK\x05\x06", 12, "<I", st.integers(0, 2**32 - 1)),  # central directory size
    (b"PK\x05\x06", 16, "<I", st.integers(0, 2**32 - 1)),  # central directory offset
)


@st.composite
def zip_archives(draw: st.DrawFn) -> bytes:
    files = draw(dicom_series_bytes()) if draw(st.booleans()) else list(_base_series(8, 6))
    buffer = io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with zipfile.ZipFile(buffer, "w", compression=method) as zf:
        for i, data in enumerate(files):
            zf.writestr(f"series/{i:03d}.dcm", data)
        if rarely(draw, 4):  # a member that inflates far beyond 100x
            zf.writestr("zeros.bin", bytes(draw(st.integers(0, 1 << 20))), zipfile.ZIP_DEFLATED)
        if rarely(draw, 6):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zipfile warns about the duplicate we want
                zf.writestr("series/000.dcm", b"duplicate name")
    data = bytearray(buffer.getvalue())
    for _ in range(draw(st.integers(0, 3))):
        signature, offset, fmt, values = draw(st.sampled_from(_ZIP_FIELDS))
        starts = [i for i in range(len(data)) if data.startswith(signature, i)]
        if not starts:
            continue
        at = draw(st.sampled_from(starts)) + offset
        data[at : at + struct.calcsize(fmt)] = struct.pack(fmt, draw(values))
    if rarely(draw, 4):
        data = bytearray(_flip_bytes(bytes(data), draw))
    return bytes(data)


@FUZZ
@given(archive=zip_archives())
def test_fuzz_zip(archive: bytes) -> None:
    from spinewatch.imaging.io import load_ct

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "series.zip"
        path.write_bytes(archive)
        run_case("zip", lambda: load_ct(path, limits=LIMITS))


# ----------------------------------------------------------------------------------- reports


def _base_report() -> dict[str, Any]:
    vertebra = {
        "level": "L1",
        "label": 31,
        "body_centroid_mm": [1.5, -20.0, 300.0],
        "body_volume_ml": 25.1,
        "height_anterior_mm": 24.0,
        "height_middle_mm": 22.5,
        "height_posterior_mm": 26.0,
        "reference_height_mm": 26.0,
        "height_loss_pct": 13.4,
        "genant_grade": 1,
        "deformity": "wedge",
        "truncated": False,
        "trabecular_hu_median": 95.0,
        "trabecular_hu_mean": 97.0,
        "lytic_volume_ml": 1.2,
        "lytic_fraction": 0.05,
        "posterior_wall_involved": False,
        "pedicles_involved": [],
        "cement_volume_ml": None,
        "collapse_risk": "moderate",
        "reasons": ["grade 1 fracture"],
        "confidence": "high",
        "confidence_reasons": [],
        "sins_imaging": {"points": 3, "components": {}},
        "not_assessed": [],
    }
    l2 = dict(vertebra, level="L2", label=30, genant_grade=0, deformity=None, height_loss_pct=2.0)
    return {
        "scan": {
            "study_date": "2024-03-01",
            "ct": "ct.nii.gz",
            "labels": "labels.nii.gz",
            "modality": "ct",
            "labels_convention": "totalsegmentator",
        },
        "vertebrae": [vertebra, l2],
    }


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, (*prefix, i))
    return found


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: _replace(doc[head], rest, value)}
    copy = list(doc)
    copy[head] = _replace(doc[head], rest, value)
    return copy


_MEASUREMENTS = (
    "height_anterior_mm",
    "height_middle_mm",
    "height_posterior_mm",
    "reference_height_mm",
    "height_loss_pct",
    "trabecular_hu_median",
    "trabecular_hu_mean",
    "lytic_volume_ml",
    "lytic_fraction",
    "cement_volume_ml",
    "body_volume_ml",
)


def _like(value: Any) -> st.SearchStrategy[Any]:
    """A value of the same JSON type as ``value`` (numbers anywhere on the line)."""
    if isinstance(value, bool) or value is None:
        return st.one_of(st.none(), st.booleans())
    if isinstance(value, int | float):
        return st.one_of(
            st.integers(-(10**6), 10**6),
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 10**30]),
        )
    if isinstance(value, str):
        return st.one_of(st.text(max_size=20), st.sampled_from(["L1", "T13", "S1", "C0", ""]))
    if isinstance(value, list):
        return st.lists(JSON_VALUES, max_size=4)
    return JSON_VALUES


@st.composite
def report_texts(draw: st.DrawFn) -> str:
    doc: Any = _base_report()
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths[1:] if len(paths) > 1 else paths))
        current: Any = doc
        for key in path:
            current = current[key]
        value = draw(JSON_VALUES if rarely(draw, 4) else _like(current))
        doc = _replace(doc, path, value)
    if isinstance(doc, dict) and rarely(draw, 4):  # every measurement extreme
        extremes = st.sampled_from([0, -0.0, 5e-324, -5e-324, 1e-300, 1e6, -1e6, 1e308, -1e308])
        entries = doc.get("vertebrae")
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                for key in _MEASUREMENTS:
                    entry[key] = draw(extremes)
    text = json.dumps(doc)
    kind = draw(st.integers(0, 39)) - 35  # 1..4: a text-level mutation (0 and below: none)
    if kind == 1:  # a non-standard constant somewhere a value may stand
        token = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
        spots = [i + 1 for i, c in enumerate(text) if c in ":,["]
        if spots:
            at = draw(st.sampled_from(spots))
            text = text[:at] + token + ("," if text[at] not in "]}" else "") + text[at:]
        else:
            text = token
    elif kind == 2:  # deep nesting
        depth = draw(st.integers(10, 5000))
        text = text[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    elif kind == 3:
        text = _flip_bytes(text.encode(), draw).decode("utf-8", "replace")
    elif kind == 4:
        text = draw(st.text(max_size=200))
    return text


@FUZZ
@given(texts=st.tuples(report_texts(), report_texts()))
def test_fuzz_reports(texts: tuple[str, str]) -> None:
    """Two mutated reports (a prior and a current) through every reader of reports."""
    from spinewatch.imaging.compare import (
        apply_comparison,
        compare_reports,
        format_comparison_text,
        load_report,
    )
    from spinewatch.registry.services.imaging import read_report

    def read(paths: list[Path]) -> None:
        reports = [load_report(path, limits=LIMITS) for path in paths]
        refused: InputError | None = None
        for prior, current in (reports, reports[::-1]):
            try:  # each reader on its own: one refusing must not hide the others
                comparison = compare_reports(prior, current)
                format_comparison_text(comparison)
                json.dumps(comparison, allow_nan=False)  # what `spinewatch compare` prints
                json.dumps(apply_comparison(current, comparison).to_json_dict(), allow_nan=False)
            except InputError as exc:
                refused = exc
        for report in reports:
            try:
                read_report(report)
            except InputError as exc:
                refused = exc
        if refused is not None:
            raise refused

    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / "prior.json", Path(tmp) / "current.json"]
        for path, text in zip(paths, texts, strict=True):
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        run_case("report", lambda: read(paths))


def test_the_fuzz_bases_are_valid_inputs(tmp_path: Path) -> None:
    """The seeds the mutations start from read cleanly (else every case would be a refusal)."""
    from spinewatch.imaging.compare import load_report
    from spinewatch.imaging.io import load_ct, load_image, load_labels

    (tmp_path / "x.nii").write_bytes(_base_nifti(np.int16, 0))
    assert load_ct(tmp_path / "x.nii", limits=LIMITS).hu.shape == (6, 5, 4)
    assert load_labels(tmp_path / "x.nii", limits=LIMITS).labels.max() > 0
    _write_series(tmp_path / "s", _base_series(8, 6))
    assert load_image(tmp_path / "s", limits=LIMITS).grid.shape == (6, 8, 3)
    (tmp_path / "r.json").write_text(json.dumps(_base_report()))
    assert str(load_report(tmp_path / "r.json").vertebrae[0].level) == "L1"
    assert zlib.crc32(b"") == 0  # zlib present for the zip cases
