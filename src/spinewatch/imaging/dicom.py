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
A zip is read member by member in memory and gives exactly what the extracted directory gives.
"""

from __future__ import annotations

import contextlib
import functools
import io as _io
import logging
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.acquisition import Acquisition, AcquisitionError, ContrastPhase, Modality
from spinewatch.imaging.io import (
    ImageReadError,
    SeriesSelectionError,
    _vertebrae_for_detection,
    orientation_code,
)
from spinewatch.imaging.modality import MODALITY_TAG, ModalityDecision, decide_modality
from spinewatch.imaging.volume import CtVolume, GeometryError, Grid, LabelVolume, MrVolume

__all__ = [
    "MISSING_SLICE_FACTOR",
    "READABLE_MODALITIES",
    "SLICE_SPACING_TOLERANCE",
    "SeriesInfo",
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


# --------------------------------------------------------------------------------------------
# enumerating files


def _open_file(path: Path) -> IO[bytes]:
    return path.open("rb")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> IO[bytes]:
    return _io.BytesIO(zf.read(info))


@contextlib.contextmanager
def _sources(path: Path) -> Iterator[list[tuple[str, Callable[[], IO[bytes]]]]]:
    """(name, opener) for every regular file of a directory tree or member of a zip; a zip
    stays open (members read in memory, never extracted) while the context is active."""
    if path.is_dir():
        files = [p for p in sorted(path.rglob("*")) if p.is_file()]
        yield [(str(p), functools.partial(_open_file, p)) for p in files]
        return
    if not path.exists():
        raise ImageReadError(f"{path}: DICOM directory or zip not found")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImageReadError(f"{path}: not a readable zip archive ({exc})") from exc
    with zf:
        members = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
        yield [(f"{path}:{i.filename}", functools.partial(_read_member, zf, i)) for i in members]


def _read_header(name: str, opener: Callable[[], IO[bytes]]) -> Any | None:
    """The dataset without pixel data, or None for a file that is not DICOM."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        with opener() as fh:
            return dcmread(fh, stop_before_pixels=True)
    except InvalidDicomError:
        return None
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ImageReadError(f"{name}: cannot read zip member ({exc})") from exc
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
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
    sources: list[tuple[str, Callable[[], IO[bytes]]]],
    modalities: tuple[str, ...] = ("CT",),
) -> _Found:
    """Images of ``modalities`` (or with an empty Modality) grouped by SeriesInstanceUID."""
    found = _Found({}, {}, set())
    n_files = n_dicom = 0
    for name, opener in sources:
        n_files += 1
        ds = _read_header(name, opener)
        if ds is None:
            continue
        n_dicom += 1
        modality = _modality(ds)
        uid = str(ds.get("SeriesInstanceUID", ""))
        if not _is_image(ds) or (modality and modality not in modalities):
            found.other_modalities.add(modality or "?")
            if _is_image(ds):
                found.other[uid] = modality
            continue
        found.series.setdefault(uid, []).append(_Image(name, opener, ds))
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


def list_series(path: Path | str, *, modalities: tuple[str, ...] = ("CT",)) -> list[SeriesInfo]:
    """The image series of ``modalities`` (default CT) in a DICOM directory or zip, by UID."""
    with _sources(Path(path)) as sources:
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


def _check_consistent(images: list[_Image]) -> tuple[int, int, npt.NDArray[np.float64], Any]:
    """Rows, Columns, IOP and PixelSpacing shared by every image (else ImageReadError)."""
    first = images[0]
    rows, cols = int(first.ds.Rows), int(first.ds.Columns)
    iop = _floats(first, "ImageOrientationPatient", 6)
    spacing = _floats(first, "PixelSpacing", 2)
    for img in images:
        ds = img.ds
        if int(ds.Rows) != rows or int(ds.Columns) != cols:
            raise ImageReadError(
                f"{img.name}: tag Rows/Columns is {int(ds.Rows)}x{int(ds.Columns)}; expected "
                f"{rows}x{cols} like {first.name} (one series must share one image size)"
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
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames != 1:
            raise ImageReadError(
                f"{img.name}: tag NumberOfFrames is {frames}; multi-frame (enhanced) CT is not "
                "supported, expected one slice per file"
            )
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise ImageReadError(
                f"{img.name}: tag SamplesPerPixel is {ds.SamplesPerPixel}; expected 1 (greyscale)"
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


def _hu_slice(img: _Image) -> npt.NDArray[np.float64]:
    """One slice's values after the Modality LUT (HU for CT; signal units for MR), shape
    (rows, columns), float64."""
    from pydicom import dcmread
    from pydicom.pixels.processing import apply_modality_lut

    try:
        with img.open() as fh:
            ds = dcmread(fh)
        px = ds.pixel_array
        hu = np.asarray(apply_modality_lut(px, ds), dtype=np.float64)
    except ImageReadError:
        raise
    except Exception as exc:  # pydicom's decoders raise many types; all mean "cannot decode"
        syntax = getattr(getattr(img.ds, "file_meta", None), "TransferSyntaxUID", "?")
        raise ImageReadError(
            f"{img.name}: pixel data cannot be decoded (transfer syntax {syntax}; "
            f"{type(exc).__name__}: {exc})"
        ) from exc
    if hu.shape != (int(img.ds.Rows), int(img.ds.Columns)):
        raise ImageReadError(
            f"{img.name}: pixel data has shape {hu.shape}; expected "
            f"{int(img.ds.Rows)}x{int(img.ds.Columns)}"
        )
    return hu


def _read_pixels(images: list[_Image], cols: int, rows: int) -> npt.NDArray[Any]:
    """Value volume ``[column, row, slice]``: int16 while exact, widened only when needed."""
    out: npt.NDArray[Any] = np.empty((cols, rows, len(images)), dtype=np.int16, order="F")
    for k, img in enumerate(images):
        hu = _hu_slice(img)
        if np.issubdtype(out.dtype, np.integer):
            if not np.array_equal(hu, np.round(hu)):
                out = out.astype(np.float32, order="F")
            elif hu.size and (
                hu.min() < np.iinfo(out.dtype).min or hu.max() > np.iinfo(out.dtype).max
            ):
                out = out.astype(
                    np.int32 if hu.min() >= -(2**31) and hu.max() < 2**31 else np.float32, order="F"
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
) -> CtVolume:
    """Read one CT series from a DICOM directory (recursive) or ``.zip`` into HU.

    Other modalities are skipped (use :func:`load_dicom_image` to read an MR series).
    ``series_uid`` picks a series when the input holds several (else
    :class:`SeriesSelectionError` lists each: UID, description, slice count).
    ``spacing_tolerance`` is the relative deviation of a slice step from the median step that is
    still accepted as even. Returns ``hu[column, row, slice]`` with slices ascending along the
    slice normal and an affine to RAS+ mm (sheared when the gantry was tilted); its acquisition
    carries the contrast phase the header states.
    """
    path = Path(path)
    with _sources(path) as sources:
        found = _scan(path, sources, ("CT",))
        values, grid, meta, ds = _load(path, found, series_uid, spacing_tolerance)
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
    labels: LabelVolume | None = None,
    convention: Any = "auto",
) -> CtVolume | MrVolume:
    """Read one CT or MR series (DICOM directory or ``.zip``) as the image type its modality needs.

    The Modality tag decides (:func:`spinewatch.imaging.modality.decide_modality`; a
    ``modality`` given that contradicts it is refused; an empty tag is decided from the values
    or by ``modality``). A CT becomes a :class:`CtVolume` in HU, an MR a :class:`MrVolume` in
    its signal units. ``contrast_phase`` (``"auto"``: from the header) as in
    :func:`spinewatch.imaging.contrast.decide_contrast_at_input`. A series of another modality
    (PT, NM, US...) is refused naming the tag and value; ``labels``/``convention`` help the
    detection of an empty tag (see :func:`spinewatch.imaging.io.load_image`); other arguments as
    :func:`load_dicom_series`.
    """
    path = Path(path)
    with _sources(path) as sources:
        found = _scan(path, sources, READABLE_MODALITIES)
        if series_uid is not None and series_uid not in found.series and series_uid in found.other:
            raise ImageReadError(
                f"{path}: series {series_uid!r} has tag {MODALITY_TAG} "
                f"{found.other[series_uid]!r}; expected one of {', '.join(READABLE_MODALITIES)}"
            )
        values, grid, meta, ds = _load(path, found, series_uid, spacing_tolerance)
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
    path: Path, found: _Found, series_uid: str | None, spacing_tolerance: float
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
    rows, cols, iop, pixel_spacing = _check_consistent(images)
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
    values = _read_pixels(images, cols, rows)
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
