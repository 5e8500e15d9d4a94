"""Reading a CT or MR series from DICOM files (a directory, searched recursively, or a ``.zip``).

Geometry comes from ImagePositionPatient (IPP), ImageOrientationPatient (IOP) and PixelSpacing
only -- never from SliceThickness, which is the reconstruction thickness, not the step:

- the voxel array is ``hu[column, row, slice]``; slices are sorted by their position along the
  slice normal ``n = row_cosines x column_cosines`` (ascending);
- affine columns (DICOM LPS, then converted to RAS+ by negating x and y):
  ``row_cosines * column spacing``, ``column_cosines * row spacing``, and the *actual* step
  between consecutive IPPs. With gantry tilt the IPPs step obliquely to the normal and the
  affine is sheared (the slice stack is a parallelepiped), which maps every voxel correctly;
- steps along the normal must be even: a step larger than :data:`MISSING_SLICE_FACTOR` x the
  median is reported as missing slices, any other step off the median by more than
  ``spacing_tolerance`` (relative, default :data:`SLICE_SPACING_TOLERANCE`) as uneven spacing;
- values are rescaled per slice (RescaleSlope/Intercept, or a Modality LUT) to HU, stored as
  int16 when every value is a whole number that fits (int32 if needed), else float32.

Files that are not DICOM (pydicom's InvalidDicomError) are skipped silently; non-image objects
and localizers are skipped too. :func:`load_dicom_series` reads CT only (other modalities are
skipped; an input without a CT image is refused). :func:`load_dicom_image` reads a CT *or* an MR
series by its Modality tag (0008,0060) -- an MR series becomes an
:class:`~spinewatch.imaging.volume.MrVolume` in its signal units, never HU -- and refuses a
series of any other modality naming the tag and value. Both record the scan's
:class:`~spinewatch.core.acquisition.Acquisition`: the modality from the tag, the contrast phase
from the header (:func:`spinewatch.imaging.contrast.phase_from_dicom`) or the user.
A zip is read member by member, streamed (never extracted, never held whole) and gives exactly
what the extracted directory gives.

Hostile input (:mod:`spinewatch.imaging.limits`): before a zip is read, each member's declared
uncompressed size, its inflation ratio and the archive's total are checked, and a member is
never read past its declared size (:class:`_BoundedReader`, which also caps every single read so
that a header element claiming 4 GB cannot make a reader ask for it). The headers are read
without pixel data; Rows, Columns, NumberOfFrames and SamplesPerPixel are parsed as whole numbers
in their DICOM ranges (an empty or non-numeric value is refused naming the file and tag), and
the series' Rows x Columns x slices is checked against the memory limit before the volume is
allocated; the pixel data of each file is then read once.
"""

from __future__ import annotations

import contextlib
import functools
import io as _io
import logging
import os
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import numpy as np
import numpy.typing as npt

from spinewatch.core.acquisition import Acquisition, AcquisitionError, ContrastPhase, Modality
from spinewatch.core.errors import InputError
from spinewatch.imaging.alignment import (
    ImageReadError,
    LabelsArg,
    SeriesSelectionError,
    check_alignable,
    orientation_code,
)
from spinewatch.imaging.alignment import vertebrae_for_detection as _vertebrae_for_detection
from spinewatch.imaging.limits import (
    ZIP_RATIO_GRACE_BYTES,
    InputLimits,
    InputTooLargeError,
    check_image_bytes,
    current_limits,
    format_bytes,
)
from spinewatch.imaging.modality import MODALITY_TAG, ModalityDecision, decide_modality
from spinewatch.imaging.volume import CtVolume, GeometryError, Grid, MrVolume

__all__ = [
    "MISSING_SLICE_FACTOR",
    "READABLE_MODALITIES",
    "SLICE_SPACING_TOLERANCE",
    "SeriesInfo",
    "check_zip_archive",
    "list_series",
    "load_dicom_image",
    "load_dicom_series",
]

log = logging.getLogger(__name__)

#: Largest relative deviation of one slice step from the median step (0.01 = 1 %).
SLICE_SPACING_TOLERANCE = 0.01
#: A step larger than this multiple of the median step means slices are missing.
MISSING_SLICE_FACTOR = 1.5
#: Largest difference between two images' orientation cosines (or pixel spacings, relative).
_ORIENTATION_TOL = 1e-4
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Deflated Explicit VR Little Endian: the dataset after the file meta is zlib-compressed.
_DEFLATED = "1.2.840.10008.1.2.1.99"
#: Modality values an image series may have (an empty value is decided as for NIfTI).
READABLE_MODALITIES = ("CT", "MR")


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found in a DICOM input: its UID ("" when absent), description, slice
    count and Modality value ("" when empty)."""

    uid: str
    description: str
    n_slices: int
    modality: str = "CT"

    def describe(self) -> str:
        uid = self.uid or "(no SeriesInstanceUID)"
        return f"{uid} {self.modality or '?'} {self.description!r} ({self.n_slices} slices)"


@dataclass
class _Image:
    name: str  # file path or "archive.zip:member", for messages
    open: Callable[[], IO[bytes]]
    ds: Any  # pydicom Dataset, header only
    size: int = 0  # bytes of the file (a zip member: its declared uncompressed size)
    #: where the pixel data element starts in the file (the header pass stops there), so the
    #: pixel pass reads that element alone instead of parsing the file again; None: re-read
    #: the whole file (a deflated transfer syntax, whose offsets are not the file's)
    pixel_offset: int | None = None


@dataclass(frozen=True)
class _Source:
    name: str
    open: Callable[[], IO[bytes]]
    size: int


# --------------------------------------------------------------------------------------------
# enumerating files


class _BoundedReader(_io.RawIOBase):
    """A read-only, seekable view of ``raw`` that never goes past ``limit`` bytes.

    Every ``read(n)`` asks ``raw`` for at most what is left before the limit (+1, to notice a
    stream that is longer than it should be), so a DICOM element claiming a length of 4 GB
    cannot make pydicom allocate 4 GB; reading beyond the limit raises
    :class:`InputTooLargeError` naming the file.
    """

    def __init__(self, raw: IO[bytes], limit: int, name: str, what: str) -> None:
        super().__init__()
        self._raw = raw
        self._limit = limit
        self._name = name
        self._what = what
        # the position is kept here: pydicom reads a header in many small pieces, and asking
        # the wrapped stream each time cost as much as the reads
        self._pos = int(raw.tell())

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = _io.SEEK_SET) -> int:
        self._pos = int(self._raw.seek(offset, whence))
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        position = self._pos
        room = max(0, self._limit - position)
        wanted = room + 1 if size is None or size < 0 else min(size, room + 1)
        data = self._raw.read(wanted)
        self._pos = position + len(data)
        if self._pos > self._limit:
            raise InputTooLargeError(
                f"{self._name}: {self._what} is larger than {format_bytes(self._limit)}; "
                "expected at most that (SPINEWATCH_MAX_DICOM_FILE_BYTES)"
            )
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _open_file(path: Path, limit: int) -> IO[bytes]:
    # Bounded by the file's own size too: no single read asks for more than the file holds.
    handle = path.open("rb")
    size = os.fstat(handle.fileno()).st_size
    return _BoundedReader(handle, min(limit, size), str(path), "the file")  # type: ignore[return-value]


def _open_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> IO[bytes]:
    # zipfile itself stops at the declared size (and checks the CRC there): a member whose
    # data inflate beyond what its header says is cut off and refused as corrupt.
    reader = zf.open(info)
    return _BoundedReader(reader, info.file_size, name, "the zip member")  # type: ignore[return-value]


def _check_members(path: Path, infos: list[zipfile.ZipInfo], limits: InputLimits) -> None:
    """Refuse a zip whose members' declared sizes, ratios, total or count exceed ``limits``."""
    if len(infos) > limits.max_zip_members:
        raise InputTooLargeError(
            f"{path}: the zip holds {len(infos)} files; the limit is {limits.max_zip_members} "
            "(SPINEWATCH_MAX_ZIP_MEMBERS)"
        )
    total = 0
    for info in infos:
        name = f"{path}:{info.filename}"
        if info.file_size > limits.max_file_bytes:
            raise InputTooLargeError(
                f"{name}: declared uncompressed size {format_bytes(info.file_size)} exceeds the "
                f"limit of {format_bytes(limits.max_file_bytes)} per DICOM file "
                "(SPINEWATCH_MAX_DICOM_FILE_BYTES)"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > ZIP_RATIO_GRACE_BYTES and ratio > limits.max_zip_ratio:
            raise InputTooLargeError(
                f"{name}: {format_bytes(info.compress_size)} inflate to "
                f"{format_bytes(info.file_size)} (ratio {ratio:.0f}); expected at most "
                f"{limits.max_zip_ratio:g} (SPINEWATCH_MAX_ZIP_RATIO): a zip bomb?"
            )
        total += info.file_size
    if total > limits.max_archive_bytes:
        raise InputTooLargeError(
            f"{path}: the zip's members add up to {format_bytes(total)} uncompressed; the limit "
            f"is {format_bytes(limits.max_archive_bytes)} (SPINEWATCH_MAX_ARCHIVE_BYTES)"
        )


def check_zip_archive(path: Path | str, *, limits: InputLimits | None = None) -> int:
    """Refuse a zip whose members' declared sizes, ratios, total or count exceed the limits
    (:class:`InputTooLargeError`) or that cannot be read as a zip (:class:`ImageReadError`),
    WITHOUT inflating anything; returns the number of files in it. For an upload page."""
    path = Path(path)
    with _sources(path, current_limits(limits)) as sources:
        return len(sources)


@contextlib.contextmanager
def _sources(path: Path, limits: InputLimits) -> Iterator[list[_Source]]:
    """Every regular file of a directory tree or member of a zip; a zip stays open (members
    streamed, never extracted nor held whole) while the context is active."""
    if path.is_dir():
        files = [p for p in sorted(path.rglob("*")) if p.is_file()]
        yield [
            _Source(str(p), functools.partial(_open_file, p, limits.max_file_bytes), _size(p))
            for p in files
        ]
        return
    if not path.exists():
        raise ImageReadError(f"{path}: DICOM directory or zip not found")
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # zipfile raises many types on a malformed archive
        # (BadZipFile, EOFError, struct.error, NotImplementedError for an unknown version...)
        raise ImageReadError(
            f"{path}: not a readable zip archive ({type(exc).__name__}: {exc})"
        ) from exc
    with zf:
        members = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
        _check_members(path, members, limits)
        yield [
            _Source(
                f"{path}:{i.filename}",
                functools.partial(_open_member, zf, i, f"{path}:{i.filename}"),
                i.file_size,
            )
            for i in members
        ]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """pydicom's warnings about a malformed file go to the log, not to the caller's screen."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught[:5]:
        log.info("%s: %s", name, warning.message)


#: Header attributes SpineWatch reads; each is converted once, here, so that a malformed value
#: is refused naming the file and tag instead of failing later.
_HEADER_KEYWORDS = (
    "Modality",
    "SeriesInstanceUID",
    "SeriesDescription",
    "ImageType",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "BitsAllocated",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "PixelSpacing",
    "StudyInstanceUID",
    "Manufacturer",
    "ConvolutionKernel",
    "ProtocolName",
    "ContrastBolusAgent",
    "ContrastBolusAgentPhase",
    "ContrastBolusRoute",
    "ContrastBolusUsageSequence",
)


def _convert_header(name: str, ds: Any) -> None:
    for keyword in _HEADER_KEYWORDS:
        try:
            value = ds.get(keyword)
            if keyword == "ContrastBolusUsageSequence" and value:
                for item in value:
                    item.get("ContrastBolusAgentPhase")
        except Exception as exc:  # pydicom's value converters raise many types
            raise ImageReadError(
                f"{name}: tag {keyword} cannot be read ({type(exc).__name__}: {exc}); "
                "expected a valid DICOM value"
            ) from exc
    try:
        str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    except Exception as exc:
        raise ImageReadError(
            f"{name}: tag TransferSyntaxUID cannot be read ({type(exc).__name__}: {exc})"
        ) from exc


def _read_header(source: _Source) -> tuple[Any, int | None] | None:
    """The dataset without pixel data and the offset of its pixel data element (see
    :attr:`_Image.pixel_offset`), or None for a file that is not DICOM."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    name = source.name
    try:
        with _quiet(name), source.open() as fh:
            ds = dcmread(fh, stop_before_pixels=True)
            # pydicom stops *before* the pixel data element: the file position is its start
            offset = int(fh.tell())
            _convert_header(name, ds)
            syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
            return ds, (None if syntax == _DEFLATED else offset)
    except InvalidDicomError:
        return None
    except InputError:  # ImageReadError, InputTooLargeError: already say what is wrong
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ImageReadError(f"{name}: cannot read zip member ({exc})") from exc
    except Exception as exc:  # pydicom's parser raises many types on malformed files
        raise ImageReadError(f"{name}: corrupt DICOM file ({type(exc).__name__}: {exc})") from exc


def _modality(ds: Any) -> str:
    return str(ds.get("Modality", "") or "").strip().upper()


def _is_image(ds: Any) -> bool:
    if "Rows" not in ds or "Columns" not in ds:
        return False  # not an image (DICOMDIR, structured report, ...)
    image_type = [str(t).upper() for t in (ds.get("ImageType") or [])]
    return "LOCALIZER" not in image_type


@dataclass
class _Found:
    """Image series of the wanted modalities by SeriesInstanceUID, and the other image series'
    modalities (for messages)."""

    series: dict[str, list[_Image]]
    other: dict[str, str]
    other_modalities: set[str]


def _scan(
    path: Path,
    sources: list[_Source],
    modalities: tuple[str, ...] = ("CT",),
) -> _Found:
    """Images of ``modalities`` (or with an empty Modality) grouped by SeriesInstanceUID."""
    found = _Found({}, {}, set())
    n_files = n_dicom = 0
    for source in sources:
        n_files += 1
        header = _read_header(source)
        if header is None:
            continue
        ds, pixel_offset = header
        n_dicom += 1
        modality = _modality(ds)
        uid = str(ds.get("SeriesInstanceUID", ""))
        if not _is_image(ds) or (modality and modality not in modalities):
            found.other_modalities.add(modality or "?")
            if _is_image(ds):
                found.other[uid] = modality
            continue
        found.series.setdefault(uid, []).append(
            _Image(source.name, source.open, ds, source.size, pixel_offset)
        )
    if not found.series:
        seen = found.other_modalities
        other = (
            f"; other objects seen: modality {sorted(seen)} (tag {MODALITY_TAG})" if seen else ""
        )
        wanted = " or ".join(modalities)
        raise ImageReadError(
            f"{path}: no {wanted} image found ({n_files} files, {n_dicom} of them DICOM{other}); "
            f"expected a directory or zip holding a {wanted} series"
        )
    for uid, images in found.series.items():
        values = sorted({_modality(img.ds) for img in images})
        if len(values) > 1:
            raise ImageReadError(
                f"{path}: series {uid or '(no SeriesInstanceUID)'} mixes tag {MODALITY_TAG} "
                f"values {values}; expected one modality per series"
            )
    return found


def _info(uid: str, images: list[_Image]) -> SeriesInfo:
    ds = images[0].ds
    return SeriesInfo(uid, str(ds.get("SeriesDescription", "")), len(images), _modality(ds))


def list_series(
    path: Path | str, *, modalities: tuple[str, ...] = ("CT",), limits: InputLimits | None = None
) -> list[SeriesInfo]:
    """The image series of ``modalities`` (default CT) in a DICOM directory or zip, by UID."""
    with _sources(Path(path), current_limits(limits)) as sources:
        found = _scan(Path(path), sources, modalities).series
    return [_info(uid, found[uid]) for uid in sorted(found)]


# --------------------------------------------------------------------------------------------
# geometry


def _floats(img: _Image, keyword: str, n: int) -> npt.NDArray[np.float64]:
    value = img.ds.get(keyword)
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ImageReadError(
            f"{img.name}: tag {keyword} is {value!r}; expected {n} numbers"
        ) from exc
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ImageReadError(f"{img.name}: tag {keyword} is {value!r}; expected {n} numbers")
    return arr


#: DICOM tag numbers of the integer attributes checked here, for messages.
_INT_TAGS = {
    "Rows": "(0028,0010)",
    "Columns": "(0028,0011)",
    "NumberOfFrames": "(0028,0008)",
    "SamplesPerPixel": "(0028,0002)",
    "BitsAllocated": "(0028,0100)",
}


def _int_tag(img: _Image, keyword: str, low: int, high: int, default: int | None = None) -> int:
    """A whole-number attribute in ``[low, high]`` (``default`` when absent or empty)."""
    value = img.ds.get(keyword)
    tag = f"{keyword} {_INT_TAGS.get(keyword, '')}".rstrip()
    if (value is None or value == "") and default is not None:
        return default
    number: int | None = None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            as_float = float(value)
            if as_float.is_integer():
                number = int(as_float)
        except (TypeError, ValueError, OverflowError):
            number = None
    if number is None or not low <= number <= high:
        shown = "empty" if value is None or value == "" else repr(value)
        raise ImageReadError(
            f"{img.name}: tag {tag} is {shown}; expected a whole number from {low} to {high}"
        )
    return number


def _check_consistent(
    images: list[_Image], where: Path, limits: InputLimits
) -> tuple[int, int, npt.NDArray[np.float64], Any]:
    """Rows, Columns, IOP and PixelSpacing shared by every image (else ImageReadError), and the
    series' size checked against ``limits`` before any pixel is read."""
    first = images[0]
    rows, cols = _int_tag(first, "Rows", 1, 65535), _int_tag(first, "Columns", 1, 65535)
    check_image_bytes(
        str(where),
        (cols, rows, len(images)),
        2,
        limits,
        what="DICOM series",
        detail=f" (Rows {rows} x Columns {cols} x {len(images)} files, int16)",
    )
    iop = _floats(first, "ImageOrientationPatient", 6)
    spacing = _floats(first, "PixelSpacing", 2)
    for img in images:
        img_rows, img_cols = _int_tag(img, "Rows", 1, 65535), _int_tag(img, "Columns", 1, 65535)
        if img_rows != rows or img_cols != cols:
            raise ImageReadError(
                f"{img.name}: tag Rows/Columns is {img_rows}x{img_cols}; expected "
                f"{rows}x{cols} like {first.name} (one series must share one image size)"
            )
        if img.size > limits.max_file_bytes:
            raise InputTooLargeError(
                f"{img.name}: the file is {format_bytes(img.size)}; the limit per DICOM file is "
                f"{format_bytes(limits.max_file_bytes)} (SPINEWATCH_MAX_DICOM_FILE_BYTES)"
            )
        other = _floats(img, "ImageOrientationPatient", 6)
        if not np.allclose(other, iop, atol=_ORIENTATION_TOL, rtol=0):
            raise ImageReadError(
                f"{img.name}: tag ImageOrientationPatient is {other.tolist()}; expected "
                f"{iop.tolist()} like {first.name} (one series must share one orientation)"
            )
        sp = _floats(img, "PixelSpacing", 2)
        if not np.allclose(sp, spacing, rtol=_ORIENTATION_TOL, atol=0):
            raise ImageReadError(
                f"{img.name}: tag PixelSpacing is {sp.tolist()}; expected {spacing.tolist()} "
                f"like {first.name}"
            )
        frames = _int_tag(img, "NumberOfFrames", 1, 2**31 - 1, default=1)
        if frames != 1:
            raise ImageReadError(
                f"{img.name}: tag NumberOfFrames (0028,0008) is {frames}; multi-frame (enhanced) "
                "CT is not supported, expected one slice per file"
            )
        samples = _int_tag(img, "SamplesPerPixel", 1, 4, default=1)
        if samples != 1:
            raise ImageReadError(
                f"{img.name}: tag SamplesPerPixel (0028,0002) is {samples}; expected 1 (greyscale)"
            )
        bits = _int_tag(img, "BitsAllocated", 1, 64, default=16)
        decoded = rows * cols * max(1, -(-bits // 8))
        if decoded > limits.max_file_bytes:
            raise InputTooLargeError(
                f"{img.name}: Rows {rows} x Columns {cols} at {bits} bits decode to "
                f"{format_bytes(decoded)} per slice; the limit per DICOM file is "
                f"{format_bytes(limits.max_file_bytes)} (SPINEWATCH_MAX_DICOM_FILE_BYTES)"
            )
    if np.any(spacing <= 0):
        raise ImageReadError(
            f"{first.name}: tag PixelSpacing is {spacing.tolist()}; expected positive sizes"
        )
    row_cos, col_cos = iop[:3], iop[3:]
    if (
        abs(np.linalg.norm(row_cos) - 1) > 1e-3
        or abs(np.linalg.norm(col_cos) - 1) > 1e-3
        or abs(float(row_cos @ col_cos)) > 1e-3
    ):
        raise ImageReadError(
            f"{first.name}: tag ImageOrientationPatient is {iop.tolist()}; expected two "
            "orthogonal unit vectors"
        )
    return rows, cols, iop, spacing


def _sort_and_step(
    images: list[_Image], normal: npt.NDArray[np.float64], tolerance: float, where: Path
) -> tuple[list[_Image], npt.NDArray[np.float64], float, float]:
    """Images sorted along the normal, the IPP step vector (LPS), the slice spacing along the
    normal (mm) and the gantry tilt (degrees)."""
    if len(images) < 2:
        raise ImageReadError(
            f"{where}: the CT series has {len(images)} image; expected at least 2 slices"
        )
    ipp = np.stack([_floats(img, "ImagePositionPatient", 3) for img in images])
    pos = ipp @ normal
    order = np.argsort(pos, kind="stable")
    images = [images[i] for i in order]
    ipp, pos = ipp[order], pos[order]
    steps = np.diff(pos)
    dup = np.flatnonzero(steps < 1e-3)
    if dup.size:
        i = int(dup[0])
        raise ImageReadError(
            f"{where}: {images[i].name} and {images[i + 1].name} lie at the same slice position "
            f"{pos[i]:.3f} mm; expected one image per position (two acquisitions in one series?)"
        )
    median = float(np.median(steps))
    gaps = np.flatnonzero(steps > MISSING_SLICE_FACTOR * median)
    if gaps.size:
        listed = ", ".join(
            f"{steps[g]:.3g} mm between positions {pos[g]:.3f} and {pos[g + 1]:.3f}"
            for g in gaps[:5]
        )
        raise ImageReadError(
            f"{where}: missing slices -- gap of {listed} (median spacing {median:.3g} mm, "
            f"gap threshold {MISSING_SLICE_FACTOR}x)"
        )
    uneven = np.flatnonzero(np.abs(steps - median) > tolerance * median)
    if uneven.size:
        g = int(uneven[0])
        raise ImageReadError(
            f"{where}: uneven slice spacing -- step of {steps[g]:.4g} mm between positions "
            f"{pos[g]:.3f} and {pos[g + 1]:.3f}, median {median:.4g} mm (tolerance "
            f"{tolerance:.3g} relative, setting spacing_tolerance)"
        )
    step = (ipp[-1] - ipp[0]) / (len(images) - 1)
    off = np.linalg.norm(np.diff(ipp, axis=0) - step, axis=1)
    bad = np.flatnonzero(off > max(tolerance * float(np.linalg.norm(step)), 1e-3))
    if bad.size:
        g = int(bad[0])
        raise ImageReadError(
            f"{where}: slice positions are not on one straight line -- {images[g + 1].name} "
            f"(ImagePositionPatient {ipp[g + 1].tolist()}) is {off[g]:.3g} mm off the stack's "
            "common step; expected a regular slice stack"
        )
    cos = float(step @ normal / np.linalg.norm(step))
    tilt_deg = float(np.degrees(np.arccos(min(1.0, abs(cos)))))
    return images, step, float(step @ normal), tilt_deg


# --------------------------------------------------------------------------------------------
# pixels


def _stored_pixels(img: _Image) -> tuple[npt.NDArray[Any], Any]:
    """One slice's stored values (shape (rows, columns), as decoded by pydicom) and the dataset
    they came with: the header parsed by the scan plus the pixel data element, read from its
    offset without parsing the file again (the whole file only when no offset is known)."""
    from pydicom import dcmread
    from pydicom.dataset import Dataset
    from pydicom.filereader import read_dataset

    with img.open() as fh:
        if img.pixel_offset is None:
            whole = dcmread(fh)
            return whole.pixel_array, whole
        fh.seek(img.pixel_offset)
        implicit, little = img.ds.original_encoding
        tail = read_dataset(cast(BinaryIO, fh), bool(implicit), bool(little))
    native = _native_pixels(img, tail)
    if native is not None:
        return native, img.ds
    ds = Dataset()
    ds.file_meta = img.ds.file_meta
    for group in (0x0028, 0x7FE0):  # the image pixel module and the offset tables
        ds.update(img.ds.group_dataset(group))
    ds.update(tail)
    return ds.pixel_array, ds


#: Implicit and Explicit VR Little Endian: pixel data stored as plain little-endian values.
_NATIVE_LITTLE_ENDIAN = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")


def _native_pixels(img: _Image, tail: Any) -> npt.NDArray[Any] | None:
    """The stored values of the one layout nearly every CT slice has -- uncompressed little
    endian, one sample of 16 bits all stored, one frame -- viewed straight from the pixel data
    bytes; None for anything else (pydicom's decoder then reads it).

    Hand-written because pydicom's general decoder validates and converts per call, which
    costs more than the read itself for a 512 KB slice; the layout checked here has exactly
    one reading (what pydicom gives for it, byte for byte)."""
    ds = img.ds
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if syntax not in _NATIVE_LITTLE_ENDIAN or 0x7FE00010 not in tail:
        return None
    if (
        ds.get("BitsAllocated") != 16
        or ds.get("BitsStored") != 16
        or ds.get("SamplesPerPixel", 1) != 1
        or ds.get("NumberOfFrames", 1) not in (1, "1", None, "")
        or ds.get("PixelRepresentation") not in (0, 1)
    ):
        return None
    rows, cols = _int_tag(img, "Rows", 1, 65535), _int_tag(img, "Columns", 1, 65535)
    data = tail.get_item(0x7FE00010).value
    if not isinstance(data, bytes) or len(data) != rows * cols * 2:
        return None  # pydicom's decoder says what is wrong with it
    dtype = "<i2" if ds.PixelRepresentation == 1 else "<u2"
    return np.frombuffer(data, dtype=dtype).reshape(rows, cols)


def _slice_values(img: _Image) -> npt.NDArray[Any]:
    """One slice's values after the Modality LUT (HU for CT; signal units for MR), shape
    (rows, columns): integers when the rescale is by whole numbers -- the usual CT,
    never through floating point -- else float64 as pydicom's ``apply_modality_lut`` gives."""
    from pydicom.pixels.processing import apply_modality_lut

    try:
        with _quiet(img.name):
            px, ds = _stored_pixels(img)
            slope, inter = _whole_rescale(ds)
            if slope is None or inter is None:  # a Modality LUT, or a fractional rescale
                values: npt.NDArray[Any] = np.asarray(apply_modality_lut(px, ds), dtype=np.float64)
            elif np.issubdtype(px.dtype, np.integer):
                # int32 holds any 16-bit value rescaled by a moderate slope and intercept
                small = px.dtype.itemsize <= 2 and abs(slope) <= 2**14 and abs(inter) <= 2**29
                values = (
                    px if (slope, inter) == (1, 0) else px.astype(np.int32 if small else np.int64)
                )
                if slope != 1:
                    values *= slope
                if inter:
                    values += inter
            else:  # pragma: no cover - pydicom decodes greyscale CT/MR to integers
                values = np.asarray(px, dtype=np.float64) * slope + inter
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # pydicom's decoders raise many types; all mean "cannot decode"
        syntax = getattr(getattr(img.ds, "file_meta", None), "TransferSyntaxUID", "?")
        raise ImageReadError(
            f"{img.name}: pixel data cannot be decoded (transfer syntax {syntax}; "
            f"{type(exc).__name__}: {exc})"
        ) from exc
    rows, cols = _int_tag(img, "Rows", 1, 65535), _int_tag(img, "Columns", 1, 65535)
    if values.shape != (rows, cols):
        raise ImageReadError(
            f"{img.name}: pixel data has shape {values.shape}; expected {rows}x{cols}"
        )
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise ImageReadError(
            f"{img.name}: pixel values are not finite after RescaleSlope/Intercept or the "
            "Modality LUT; expected finite numbers"
        )
    return values


def _whole_rescale(ds: Any) -> tuple[int | None, int | None]:
    """(slope, intercept) as integers when the values are ``stored * slope + intercept`` with
    whole numbers (no rescale: (1, 0)); (None, None) for a Modality LUT or a fractional
    rescale (then pydicom's ``apply_modality_lut`` in float64 decides, as it always did)."""
    if "ModalityLUTSequence" in ds and ds.get("ModalityLUTSequence"):
        return None, None
    if "RescaleSlope" not in ds or "RescaleIntercept" not in ds:
        return 1, 0
    slope, inter = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    if not (slope.is_integer() and inter.is_integer()) or max(abs(slope), abs(inter)) > 2**31:
        return None, None
    return int(slope), int(inter)


def _widen(
    out: npt.NDArray[Any], dtype: type[np.generic], where: str, limits: InputLimits
) -> npt.NDArray[Any]:
    """``out`` as ``dtype`` (a second copy exists for a moment: both are checked)."""
    wider = np.dtype(dtype).itemsize
    check_image_bytes(
        where,
        out.shape,
        out.dtype.itemsize + wider,
        limits,
        what="DICOM series",
        detail=f" (widening {out.dtype} to {np.dtype(dtype).name})",
    )
    return out.astype(dtype, order="F")


def _read_pixels(
    images: list[_Image], cols: int, rows: int, where: str, limits: InputLimits
) -> npt.NDArray[Any]:
    """Value volume ``[column, row, slice]``: int16 while exact, widened only when needed.

    Each slice is decoded once and written straight into the volume; whole-number values (the
    usual CT rescale) never pass through floating point, and only a fractional rescale or a
    Modality LUT is checked for whole numbers."""
    out: npt.NDArray[Any] = np.empty((cols, rows, len(images)), dtype=np.int16, order="F")
    for k, img in enumerate(images):
        hu = _slice_values(img)
        if hu.size and np.issubdtype(out.dtype, np.integer):
            lo, hi = hu.min(), hu.max()
            if hu.dtype.kind == "f" and not np.array_equal(hu, np.round(hu)):
                out = _widen(out, np.float32, where, limits)
            elif lo < np.iinfo(out.dtype).min or hi > np.iinfo(out.dtype).max:
                fits = lo >= -(2**31) and hi < 2**31
                out = _widen(out, np.int32 if fits else np.float32, where, limits)
        if out.dtype == np.float32 and hu.size and np.abs(hu).max() > np.finfo(np.float32).max:
            raise ImageReadError(
                f"{img.name}: pixel values reach {np.abs(hu).max():.3g}; expected values a "
                "float32 can hold"
            )
        out[:, :, k] = hu.T
    return out


# --------------------------------------------------------------------------------------------
# public


def _text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    try:
        return "/".join(str(v) for v in value)
    except TypeError:
        return str(value)


def load_dicom_series(
    path: Path | str,
    *,
    series_uid: str | None = None,
    spacing_tolerance: float = SLICE_SPACING_TOLERANCE,
    limits: InputLimits | None = None,
) -> CtVolume:
    """Read one CT series from a DICOM directory (recursive) or ``.zip`` into HU.

    Other modalities are skipped (use :func:`load_dicom_image` to read an MR series).
    ``series_uid`` picks a series when the input holds several (else
    :class:`SeriesSelectionError` lists each: UID, description, slice count).
    ``spacing_tolerance`` is the relative deviation of a slice step from the median step that is
    still accepted as even. ``limits``: the input bounds (default
    :func:`~spinewatch.imaging.limits.current_limits`). Returns ``hu[column, row, slice]`` with
    slices ascending along the slice normal and an affine to RAS+ mm (sheared when the gantry
    was tilted); its acquisition carries the contrast phase the header states.
    """
    path = Path(path)
    limits = current_limits(limits)
    with _sources(path, limits) as sources:
        found = _scan(path, sources, ("CT",))
        values, grid, meta, ds = _load(path, found, series_uid, spacing_tolerance, limits)
    tag = meta.get("modality") or ""
    mod = (
        ModalityDecision(Modality.CT, "dicom", f"DICOM {MODALITY_TAG} {tag!r}")
        if tag
        else ModalityDecision(Modality.CT, "assumed", f"DICOM {MODALITY_TAG} is empty; read as CT")
    )
    acquisition = _acquisition(path, mod, None, ds)
    return CtVolume(hu=values, grid=grid, source=str(path), meta=meta, acquisition=acquisition)


def load_dicom_image(
    path: Path | str,
    *,
    series_uid: str | None = None,
    modality: Modality | str | None = "auto",
    contrast_phase: ContrastPhase | str | None = "auto",
    spacing_tolerance: float = SLICE_SPACING_TOLERANCE,
    labels: LabelsArg = None,
    convention: Any = "auto",
    labels_grid: tuple[Grid, str] | None = None,
    limits: InputLimits | None = None,
) -> CtVolume | MrVolume:
    """Read one CT or MR series (DICOM directory or ``.zip``) as the image type its modality needs.

    The Modality tag decides (:func:`spinewatch.imaging.modality.decide_modality`; a
    ``modality`` given that contradicts it is refused; an empty tag is decided from the values
    or by ``modality``). A CT becomes a :class:`CtVolume` in HU, an MR a :class:`MrVolume` in
    its signal units. ``contrast_phase`` (``"auto"``: from the header) as in
    :func:`spinewatch.imaging.contrast.decide_contrast_at_input`. A series of another modality
    (PT, NM, US...) is refused naming the tag and value; ``labels``/``convention`` help the
    detection of an empty tag (see :func:`spinewatch.imaging.io.load_image`); ``labels_grid``
    (grid, source) is compared with the series' grid before its pixels are read; other
    arguments as :func:`load_dicom_series`.
    """
    path = Path(path)
    limits = current_limits(limits)
    with _sources(path, limits) as sources:
        found = _scan(path, sources, READABLE_MODALITIES)
        if series_uid is not None and series_uid not in found.series and series_uid in found.other:
            raise ImageReadError(
                f"{path}: series {series_uid!r} has tag {MODALITY_TAG} "
                f"{found.other[series_uid]!r}; expected one of {', '.join(READABLE_MODALITIES)}"
            )
        values, grid, meta, ds = _load(
            path, found, series_uid, spacing_tolerance, limits, labels_grid
        )
    mod = decide_modality(
        modality,
        where=str(path),
        header_value=meta.get("modality"),
        from_dicom=True,
        values=values,
        vertebrae=_vertebrae_for_detection(labels, grid, values, convention),
    )
    acquisition = _acquisition(path, mod, contrast_phase, ds)
    if mod.modality is Modality.MR:
        meta["units"] = "MRI signal (arbitrary units, not HU)"
        return MrVolume(
            signal=values, grid=grid, source=str(path), meta=meta, acquisition=acquisition
        )
    return CtVolume(hu=values, grid=grid, source=str(path), meta=meta, acquisition=acquisition)


def _acquisition(
    path: Path, mod: ModalityDecision, contrast_phase: ContrastPhase | str | None, ds: Any
) -> Acquisition:
    from spinewatch.imaging.contrast import decide_contrast_at_input

    try:
        with _quiet(str(path)):
            contrast = decide_contrast_at_input(contrast_phase, modality=mod.modality, header=ds)
        return Acquisition(
            modality=mod.modality,
            modality_source=mod.source,
            modality_evidence=mod.evidence,
            contrast_phase=contrast.phase,
            contrast_source=contrast.source,
            contrast_evidence=contrast.evidence,
        )
    except AcquisitionError as exc:
        raise AcquisitionError(f"{path}: {exc}") from exc


def _load(
    path: Path,
    found: _Found,
    series_uid: str | None,
    spacing_tolerance: float,
    limits: InputLimits,
    labels_grid: tuple[Grid, str] | None = None,
) -> tuple[npt.NDArray[Any], Grid, dict[str, Any], Any]:
    """Values ``[column, row, slice]``, grid, meta and the first image's header of one series."""
    series = found.series
    if series_uid is None:
        if len(series) > 1:
            listed = "; ".join(_info(u, series[u]).describe() for u in sorted(series))
            raise SeriesSelectionError(
                f"{path}: holds {len(series)} image series, pick one by its UID (--series UID): "
                f"{listed}"
            )
        uid = next(iter(series))
    else:
        if series_uid not in series:
            listed = "; ".join(_info(u, series[u]).describe() for u in sorted(series))
            kind = "CT" if all(_modality(v[0].ds) in ("CT", "") for v in series.values()) else ""
            raise SeriesSelectionError(
                f"{path}: no {kind + ' ' if kind else ''}series with UID {series_uid!r}; "
                f"available: {listed}"
            )
        uid = series_uid
    images = series[uid]
    rows, cols, iop, pixel_spacing = _check_consistent(images, path, limits)
    row_cos, col_cos = iop[:3], iop[3:]
    normal = np.cross(row_cos, col_cos)
    normal /= np.linalg.norm(normal)
    images, step, slice_spacing, tilt_deg = _sort_and_step(images, normal, spacing_tolerance, path)
    lps = np.eye(4)
    lps[:3, 0] = row_cos * pixel_spacing[1]  # along a row: column index, column spacing
    lps[:3, 1] = col_cos * pixel_spacing[0]  # down a column: row index, row spacing
    lps[:3, 2] = step
    lps[:3, 3] = _floats(images[0], "ImagePositionPatient", 3)
    try:
        grid = Grid((cols, rows, len(images)), _LPS_TO_RAS @ lps)
    except GeometryError as exc:
        raise ImageReadError(f"{path}: unusable DICOM geometry: {exc}") from exc
    if tilt_deg > 0.01:
        log.info("%s: gantry tilt %.2f deg; using a sheared affine", path, tilt_deg)
    if labels_grid is not None:  # compare the grids before a single pixel is read
        check_alignable(labels_grid[0], grid, labels_grid[1])
    values = _read_pixels(images, cols, rows, str(path), limits)
    ds = images[0].ds
    meta: dict[str, Any] = {
        "format": "dicom",
        "series_uid": uid or None,
        "study_uid": _text(ds, "StudyInstanceUID"),
        "series_description": _text(ds, "SeriesDescription"),
        "modality": _text(ds, "Modality"),
        "manufacturer": _text(ds, "Manufacturer"),
        "kernel": _text(ds, "ConvolutionKernel"),
        "slice_spacing_mm": round(abs(slice_spacing), 6),
        "n_slices": len(images),
        "orientation": orientation_code(grid.affine),
        "gantry_tilt_deg": round(tilt_deg, 4),
        "affine_source": "dicom",
    }
    return values, grid, meta, ds
