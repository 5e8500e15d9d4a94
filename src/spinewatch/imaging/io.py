"""Reading a CT or MRI and its vertebra label map into the canonical geometry of :mod:`.volume`.

Entry points:

- :func:`load_image` -- a CT *or* an MRI from NIfTI (``.nii``, ``.nii.gz``), a DICOM series
  directory or a ``.zip`` of one, its modality decided at input
  (:mod:`spinewatch.imaging.modality`: the DICOM Modality tag, the user's ``modality``, or the
  voxel values -- refused when unsure) and its contrast phase as far as the header or the user
  tell it (:mod:`spinewatch.imaging.contrast`). A CT becomes a
  :class:`~spinewatch.imaging.volume.CtVolume` in HU, an MRI an
  :class:`~spinewatch.imaging.volume.MrVolume` in signal units.
- :func:`load_ct` -- a CT only (the caller states it is one), in Hounsfield units. The array
  keeps the order stored in the file (NIfTI) or the order ``[column, row, slice]`` with slices
  ascending along the slice normal (DICOM); the affine always maps voxel ``(i, j, k)`` to world
  RAS+ mm.
- :func:`load_labels` -- an integer label map (NIfTI; float-stored whole numbers accepted).
- :func:`align_labels` -- re-index a label map stored in another voxel order (flipped and/or
  permuted axes) onto the CT's grid, without interpolation; a grid that really differs is refused.
- :func:`load_study` -- :func:`load_image` and :func:`load_labels`, labels aligned to the image.

Memory: a 512x512x600 int16 CT is ~300 MB; values are converted slab by slab along the last
axis so no float64 copy of the whole volume is ever made.
"""

from __future__ import annotations

import logging
import math
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.acquisition import Acquisition, AcquisitionError, ContrastPhase, Modality
from spinewatch.imaging.alignment import (
    ALIGN_TOLERANCE_VOXELS,
    GridMismatchError,
    ImageReadError,
    LabelsArg,
    SeriesSelectionError,
    align_labels,
    check_alignable,
    orientation_code,
)
from spinewatch.imaging.alignment import vertebrae_for_detection as _vertebrae_for_detection
from spinewatch.imaging.limits import InputLimits, check_image_bytes, current_limits
from spinewatch.imaging.volume import CtVolume, GeometryError, Grid, LabelVolume, MrVolume

__all__ = [
    "ALIGN_TOLERANCE_VOXELS",
    "GridMismatchError",
    "ImageReadError",
    "NiftiHeader",
    "SeriesSelectionError",
    "align_labels",
    "check_alignable",
    "load_ct",
    "load_image",
    "load_labels",
    "load_study",
    "orientation_code",
    "read_nifti_header",
    "requested_acquisition",
]

log = logging.getLogger(__name__)

_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_READ_CHUNK_BYTES = 16 << 20  # gzip's readinto allocates its request as bytes: keep it small
_SLAB_VOXELS = 8_000_000  # voxels converted per step (~64 MB of float64 temporaries at most)


# --------------------------------------------------------------------------------------------
# small helpers


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(_NIFTI_SUFFIXES)


def _slabs(shape: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """Index tuples cutting a 3D array into slabs along its last axis."""
    per_slice = max(1, int(np.prod(shape[:-1])))
    step = max(1, _SLAB_VOXELS // per_slice)
    for k0 in range(0, shape[-1], step):
        yield (slice(None), slice(None), slice(k0, min(shape[-1], k0 + step)))


def _first_voxel(mask: npt.NDArray[np.bool_], sl: tuple[slice, ...]) -> tuple[int, int, int]:
    """Full-volume index of the first True voxel of a slab mask."""
    idx = np.argwhere(mask)[0]
    k0 = sl[2].start or 0
    return (int(idx[0]), int(idx[1]), int(idx[2]) + k0)


def _value_scan(
    raw: npt.NDArray[Any], slope: float, inter: float, path: Path, what: str
) -> tuple[float, float, bool]:
    """Min, max and whether every scaled value is a whole number; refuses non-finite values.

    Works slab by slab so a float64 copy of the volume is never made.
    """
    lo, hi = np.inf, -np.inf
    integral = True
    is_int = np.issubdtype(raw.dtype, np.integer)
    for sl in _slabs(raw.shape):
        block = raw[sl]
        if is_int and slope == 1.0 and inter == 0.0:
            if block.size:
                lo = min(lo, float(block.min()))
                hi = max(hi, float(block.max()))
            continue
        vals = block.astype(np.float64) * slope + inter
        finite = np.isfinite(vals)
        if not finite.all():
            i, j, k = _first_voxel(~finite, sl)
            raise ImageReadError(
                f"{path}: {what} has non-finite value {vals[i, j, k - (sl[2].start or 0)]} at "
                f"voxel ({i}, {j}, {k}); expected finite numbers"
            )
        if vals.size:
            lo = min(lo, float(vals.min()))
            hi = max(hi, float(vals.max()))
        if integral and not np.array_equal(vals, np.round(vals)):
            integral = False
    return lo, hi, integral


def _convert(
    raw: npt.NDArray[Any], slope: float, inter: float, dtype: npt.DTypeLike
) -> npt.NDArray[Any]:
    """``raw * slope + inter`` as ``dtype``, slab by slab (no whole-volume float64 copy)."""
    target = np.dtype(dtype)
    if slope == 1.0 and inter == 0.0:
        out = raw.astype(target, copy=False)
        return out if out.dtype.isnative else out.astype(target.newbyteorder("="))
    out = np.empty(raw.shape, dtype=target, order="F")
    for sl in _slabs(raw.shape):
        block = raw[sl].astype(np.float64) * slope + inter
        if np.issubdtype(target, np.integer):
            block = np.round(block)
        out[sl] = block
    return out


_NIBABEL_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    OverflowError,
    zlib.error,
    struct.error,
)

#: sizeof_hdr of NIfTI-1 and NIfTI-2 (the first 4 bytes, in the file's byte order)
_NIFTI_HEADER_SIZES = (348, 540)


def _nibabel_errors() -> tuple[type[BaseException], ...]:
    from isal.isal_zlib import error as isal_error
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError

    isal_errors: tuple[type[BaseException], ...] = (isal_error,)  # type: ignore[assignment]
    return (*_NIBABEL_READ_ERRORS, ImageFileError, HeaderDataError, *isal_errors)


@dataclass(frozen=True)
class NiftiHeader:
    """What a NIfTI file's header says, read without touching its voxels.

    ``shape`` is every dimension ``dim[1..dim[0]]``; ``dtype`` the stored voxel type (file byte
    order); ``offset`` the byte where voxels start (in the uncompressed stream); ``slope`` and
    ``inter`` the scaling as nibabel applies it (1 and 0 when ``scl_slope`` is 0 or not finite);
    ``grid`` the first three dimensions with the sform (code > 0), else the qform, else the
    voxel sizes; ``nbytes`` the stored voxel array's size, already checked against the limit.
    """

    path: Path
    what: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    offset: int
    slope: float
    inter: float
    grid: Grid
    affine_source: str
    nbytes: int


def _header_bytes(path: Path, what: str, limits: InputLimits) -> bytes:
    """The bytes before the voxels (fixed header + extensions), at most a bounded amount.

    Read by hand so that a header claiming a 2 GiB extension or a huge ``vox_offset`` never
    makes a reader ask for that much memory: the fixed header gives ``vox_offset``, which must
    lie within ``limits.max_file_bytes``; only then is the rest of the header read.
    """
    from nibabel.openers import ImageOpener

    with ImageOpener(str(path), "rb") as fh:
        head = fh.read(4)
        sizes = {struct.unpack(f"{e}i", head)[0] for e in "<>"} if len(head) == 4 else set()
        fixed = next((n for n in _NIFTI_HEADER_SIZES if n in sizes), None)
        if fixed is None:
            raise ImageReadError(
                f"{path}: cannot read {what} as NIfTI (its first 4 bytes {head!r} are not "
                "sizeof_hdr 348 or 540); expected a NIfTI-1 or NIfTI-2 file"
            )
        head += fh.read(fixed - 4 + 4)  # the fixed header and the 4 extension-flag bytes
        if len(head) < fixed:
            raise ImageReadError(
                f"{path}: {what} header ends after {len(head)} of {fixed} bytes (truncated file)"
            )
        endian = "<" if struct.unpack("<i", head[:4])[0] == fixed else ">"
        if fixed == 348:
            vox_offset = float(struct.unpack(f"{endian}f", head[108:112])[0])
        else:
            vox_offset = float(struct.unpack(f"{endian}q", head[168:176])[0])
        if not math.isfinite(vox_offset) or not 0 <= vox_offset <= limits.max_file_bytes:
            raise ImageReadError(
                f"{path}: {what} header field vox_offset is {vox_offset:g}; expected 0 to "
                f"{limits.max_file_bytes} (SPINEWATCH_MAX_DICOM_FILE_BYTES)"
            )
        wanted = max(int(vox_offset), len(head))
        if wanted > len(head):
            head += fh.read(wanted - len(head))
    return head


def read_nifti_header(
    path: Path | str, what: str, limits: InputLimits | None = None
) -> NiftiHeader:
    """Parse and check a 3D NIfTI file's header; refuse it before any voxel is allocated.

    Raises :class:`ImageReadError` (missing, not NIfTI, not 3D, unusable affine, non-numeric
    voxels) and :class:`~spinewatch.imaging.limits.InputTooLargeError` when its dimensions x
    voxel size exceed ``limits.max_image_bytes``.
    """
    import io as _io

    import nibabel as nib

    path = Path(path)
    limits = current_limits(limits)
    if not path.exists():
        raise ImageReadError(f"{path}: {what} file not found")
    if not path.is_file():
        raise ImageReadError(f"{path}: {what} must be a NIfTI file (.nii or .nii.gz)")
    errors = _nibabel_errors()
    try:
        raw = _header_bytes(path, what, limits)
        nifti2 = len(raw) >= 540 and raw[4:8] == b"n+2\0"
        if not nifti2 and raw[344:348] != b"n+1\0":
            magic = raw[4:8] if len(raw) >= 540 and raw[4:6] == b"n+" else raw[344:348]
            raise ImageReadError(
                f"{path}: cannot read {what} as NIfTI (magic {magic!r}); expected a single-file "
                "NIfTI-1 ('n+1') or NIfTI-2 ('n+2') image"
            )
        klass = nib.Nifti2Header if nifti2 else nib.Nifti1Header
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            header: Any = klass.from_fileobj(_io.BytesIO(raw))  # type: ignore[no-untyped-call]
            dims = [int(d) for d in header["dim"]]
            dtype = np.dtype(header.get_data_dtype())
            affine = np.asarray(header.get_best_affine(), dtype=np.float64)
            scale = header.get_slope_inter()
            offset = int(header.get_data_offset())
        for warning in caught:
            log.info("%s: %s header: %s", path, what, warning.message)
    except ImageReadError:
        raise
    except errors as exc:
        raise ImageReadError(
            f"{path}: cannot read {what} as NIfTI ({type(exc).__name__}: {exc})"
        ) from exc
    if not 1 <= dims[0] <= 7 or any(d < 1 for d in dims[1 : dims[0] + 1]):
        raise ImageReadError(
            f"{path}: {what} header field dim is {dims}; expected dim[0] from 1 to 7 and that "
            "many sizes >= 1"
        )
    shape = tuple(dims[1 : dims[0] + 1])
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise ImageReadError(
            f"{path}: {what} has voxel type {dtype}; expected integer or real numbers"
        )
    nbytes = check_image_bytes(
        str(path), shape, dtype.itemsize, limits, what=what, detail=f" ({dtype.name})"
    )
    if len(shape) < 3 or any(s != 1 for s in shape[3:]):
        raise ImageReadError(
            f"{path}: {what} has shape {shape}; expected a 3D volume "
            "(a 4th dimension is accepted only when it has size 1)"
        )
    sform_code, qform_code = int(header["sform_code"]), int(header["qform_code"])
    if sform_code > 0:
        affine_source = "sform"
    elif qform_code > 0:
        affine_source = "qform"
    else:
        affine_source = "pixdim"
        log.warning(
            "%s: neither sform nor qform is set; using the voxel sizes only (orientation unknown)",
            path,
        )
    try:
        grid = Grid(shape[:3], affine)  # type: ignore[arg-type]
    except GeometryError as exc:
        raise ImageReadError(f"{path}: {what} has an unusable affine: {exc}") from exc
    slope = 1.0 if scale[0] is None else float(scale[0])
    inter = 0.0 if scale[1] is None else float(scale[1])
    return NiftiHeader(path, what, shape, dtype, offset, slope, inter, grid, affine_source, nbytes)


def _open_voxels(path: Path) -> Any:
    """The file as a binary stream, a ``.gz`` one inflated by ISA-L (``isal.igzip``: the same
    bytes as Python's gzip, in less than half its time -- inflating is most of reading a CT)."""
    if path.name.lower().endswith(".gz"):
        from isal import igzip

        return igzip.open(path, "rb")  # type: ignore[no-untyped-call]
    from nibabel.openers import ImageOpener

    return ImageOpener(str(path), "rb")


def _read_voxels(
    path: Path, offset: int, dtype: np.dtype[Any], shape: tuple[int, ...]
) -> npt.NDArray[Any]:
    """The stored (unscaled) voxels, read straight into their final array.

    nibabel's reader holds the decompressed bytes and the array at once (2x the volume); reading
    the (gzip) stream into a pre-allocated Fortran-ordered array keeps the peak at 1x. The
    caller has checked ``shape`` x ``dtype`` against the memory limit.
    """
    out = np.empty(shape[::-1], dtype=dtype).T  # Fortran order, as NIfTI stores voxels
    buf = memoryview(out.T).cast("B")  # type: ignore[arg-type]
    with _open_voxels(path) as fh:
        fh.seek(offset)
        filled = 0
        while filled < buf.nbytes:
            n = fh.readinto(buf[filled : filled + _READ_CHUNK_BYTES])
            if not n:
                raise EOFError(
                    f"voxel data ends after {filled} of {buf.nbytes} bytes (truncated file)"
                )
            filled += n
    return out


def _read_nifti(
    path: Path, what: str, limits: InputLimits | None = None, header: NiftiHeader | None = None
) -> tuple[npt.NDArray[Any], float, float, Grid, str]:
    """Raw (unscaled) voxel array, slope, intercept, grid and affine source of a 3D NIfTI file."""
    header = header if header is not None else read_nifti_header(path, what, limits)
    try:
        raw = _read_voxels(path, header.offset, header.dtype, header.shape)
    except _nibabel_errors() as exc:
        raise ImageReadError(
            f"{path}: {what} voxel data cannot be read -- truncated or corrupt file "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    raw = raw.reshape(header.shape[:3], order="F")
    slope, inter = header.slope, header.inter
    if not (np.isfinite(slope) and np.isfinite(inter)) or slope == 0.0:
        raise ImageReadError(
            f"{path}: {what} has scl_slope={slope}, scl_inter={inter}; "
            "expected a finite, non-zero slope"
        )
    return raw, slope, inter, header.grid, header.affine_source


# --------------------------------------------------------------------------------------------
# CT


def _ct_dtype(lo: float, hi: float, integral: bool) -> np.dtype[Any]:
    if integral:
        for dt in (np.int16, np.int32):
            info = np.iinfo(dt)
            if info.min <= lo and hi <= info.max:
                return np.dtype(dt)
    return np.dtype(np.float32)


def _nifti_values(
    path: Path, what: str, header: NiftiHeader
) -> tuple[npt.NDArray[Any], Grid, dict[str, Any]]:
    """The scaled voxel values (smallest exact dtype), grid and meta of a 3D NIfTI image."""
    raw, slope, inter, grid, affine_source = _read_nifti(path, what, header=header)
    integral_scale = float(slope).is_integer() and float(inter).is_integer()
    if np.issubdtype(raw.dtype, np.integer) and integral_scale:
        lo_raw, hi_raw = int(raw.min()), int(raw.max())
        ends = (lo_raw * slope + inter, hi_raw * slope + inter)
        lo, hi, integral = min(ends), max(ends), True
    else:
        lo, hi, integral = _value_scan(raw, slope, inter, path, what)
    dtype = _ct_dtype(lo, hi, integral)
    if max(abs(lo), abs(hi)) > float(np.finfo(np.float32).max):
        raise ImageReadError(
            f"{path}: {what} values reach {max(abs(lo), abs(hi)):.3g} after scaling "
            f"(scl_slope={slope:g}, scl_inter={inter:g}); expected values a float32 can hold"
        )
    values = _convert(raw, slope, inter, dtype)
    del raw
    meta: dict[str, Any] = {
        "format": "nifti",
        "series_uid": None,
        "study_uid": None,
        "modality": None,
        "manufacturer": None,
        "kernel": None,
        "slice_spacing_mm": float(grid.spacing_mm[2]),
        "n_slices": int(grid.shape[2]),
        "orientation": orientation_code(grid.affine),
        "affine_source": affine_source,
    }
    log.debug("%s: %s %s, %s, values %s..%s", path, what, grid.describe(), values.dtype, lo, hi)
    return values, grid, meta


def _load_nifti_ct(path: Path, limits: InputLimits | None) -> CtVolume:
    hu, grid, meta = _nifti_values(path, "CT", read_nifti_header(path, "CT", limits))
    acquisition = Acquisition(
        modality_evidence="NIfTI read as CT by the caller",
        contrast_evidence="no contrast information in a NIfTI file",
    )
    return CtVolume(hu=hu, grid=grid, source=str(path), meta=meta, acquisition=acquisition)


def _build_acquisition(
    where: str,
    modality: Any,
    contrast_phase: ContrastPhase | str | None,
    header: Any = None,
) -> Acquisition:
    """An Acquisition from a modality decision and the contrast request, errors naming ``where``."""
    from spinewatch.imaging.contrast import decide_contrast_at_input

    try:
        contrast = decide_contrast_at_input(
            contrast_phase, modality=modality.modality, header=header
        )
        return Acquisition(
            modality=modality.modality,
            modality_source=modality.source,
            modality_evidence=modality.evidence,
            contrast_phase=contrast.phase,
            contrast_source=contrast.source,
            contrast_evidence=contrast.evidence,
        )
    except AcquisitionError as exc:
        raise AcquisitionError(f"{where}: {exc}") from exc


def _load_nifti_image(
    path: Path,
    modality: Modality | str | None,
    contrast_phase: ContrastPhase | str | None,
    labels: LabelsArg = None,
    convention: Any = "auto",
    labels_grid: tuple[Grid, str] | None = None,
    limits: InputLimits | None = None,
) -> CtVolume | MrVolume:
    from spinewatch.imaging.modality import decide_modality, parse_modality_request

    try:
        wanted = parse_modality_request(modality)
    except AcquisitionError as exc:
        raise AcquisitionError(f"{path}: {exc}") from exc
    header = read_nifti_header(path, "image", limits)
    if labels_grid is not None:  # compare the grids before a single voxel is read
        check_alignable(labels_grid[0], header.grid, labels_grid[1])
    values, grid, meta = _nifti_values(path, "image", header)
    vertebrae = _vertebrae_for_detection(labels, grid, values, convention)
    decided = decide_modality(wanted, where=str(path), values=values, vertebrae=vertebrae)
    acquisition = _build_acquisition(str(path), decided, contrast_phase)
    if decided.modality is Modality.MR:
        meta["units"] = "MRI signal (arbitrary units, not HU)"
        return MrVolume(
            signal=values, grid=grid, source=str(path), meta=meta, acquisition=acquisition
        )
    return CtVolume(hu=values, grid=grid, source=str(path), meta=meta, acquisition=acquisition)


def requested_acquisition(
    modality: Modality | str | None = "auto", contrast_phase: ContrastPhase | str | None = "auto"
) -> Acquisition:
    """The acquisition of a study analysed without an image (labels only): what the user said
    (source ``user``), else the defaults (CT, native, assumed)."""
    from spinewatch.imaging.contrast import parse_phase_request
    from spinewatch.imaging.modality import parse_modality_request

    wanted = parse_modality_request(modality)
    phase = parse_phase_request(contrast_phase)
    return Acquisition(
        modality=wanted or Modality.CT,
        modality_source="user" if wanted else "assumed",
        modality_evidence="set by the user; no image given" if wanted else "no image given",
        contrast_phase=phase or ContrastPhase.NATIVE,
        contrast_source="user" if phase else "assumed",
        contrast_evidence="set by the user; no image given" if phase else "no image given",
    )


def _check_image_path(path: Path, what: str) -> None:
    """Refuse an input that is neither NIfTI nor DICOM (directory or zip), with a hint."""
    if not path.exists():
        raise ImageReadError(f"{path}: {what} file or directory not found")
    hint = ""
    try:
        with path.open("rb") as fh:
            if fh.read(132)[128:132] == b"DICM":
                hint = " (this is one DICOM file: pass the directory holding its series)"
    except OSError:
        pass
    raise ImageReadError(
        f"{path}: unsupported {what} input; expected a .nii/.nii.gz file, a DICOM directory or "
        f"a .zip{hint}"
    )


def load_image(
    path: Path | str,
    *,
    series_uid: str | None = None,
    modality: Modality | str | None = "auto",
    contrast_phase: ContrastPhase | str | None = "auto",
    labels: LabelsArg = None,
    convention: Any = "auto",
    labels_grid: tuple[Grid, str] | None = None,
    limits: InputLimits | None = None,
) -> CtVolume | MrVolume:
    """Read a CT or an MRI, deciding its modality at input (see the module docstring).

    ``modality``: ``"auto"`` (DICOM: the Modality tag; NIfTI: detected from the values, refused
    with :class:`~spinewatch.imaging.modality.ModalityUndecidedError` when unsure), ``"ct"`` or
    ``"mr"`` (NIfTI: decides; DICOM: must agree with the tag). ``contrast_phase``: ``"auto"``
    (the DICOM header; NIfTI: native *assumed*, checked later against the image by the
    analysis) or a phase (``"native"``, ``"arterial"``, ``"portal-venous"``, ``"delayed"``,
    ``"unknown"``). ``labels`` (with its ``convention``): the study's label map, whose vertebrae
    help the detection when the image has neither air nor fat (a tight CT crop; see
    :mod:`spinewatch.imaging.modality`; a function returning it is read only when needed).
    ``labels_grid`` (grid, source): the label map's grid from its header -- compared with the
    image's grid as soon as the image header gives it, before any voxel is read
    (:class:`GridMismatchError`). ``limits``: the input bounds (default:
    :func:`~spinewatch.imaging.limits.current_limits`). Other arguments and errors as
    :func:`load_ct`.
    """
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".zip":
        from spinewatch.imaging.dicom import load_dicom_image

        return load_dicom_image(
            path,
            series_uid=series_uid,
            modality=modality,
            contrast_phase=contrast_phase,
            labels=labels,
            convention=convention,
            labels_grid=labels_grid,
            limits=limits,
        )
    if _is_nifti(path):
        if series_uid is not None:
            raise SeriesSelectionError(
                f"{path}: a series UID ({series_uid!r}) applies to DICOM input only; "
                "a NIfTI file holds one series"
            )
        return _load_nifti_image(
            path, modality, contrast_phase, labels, convention, labels_grid, limits
        )
    _check_image_path(path, "image")
    raise AssertionError("unreachable")  # pragma: no cover


def load_ct(
    path: Path | str, *, series_uid: str | None = None, limits: InputLimits | None = None
) -> CtVolume:
    """Read a CT in Hounsfield units.

    ``path`` is a NIfTI file (``.nii``/``.nii.gz``; the sform when its code is > 0, else the
    qform), a directory holding a DICOM series (searched recursively) or a ``.zip`` of one.
    ``series_uid`` picks one series when a DICOM input holds several.

    Returns a :class:`CtVolume` whose ``hu`` is int16 when the rescaled values are whole numbers
    that fit (int32 when they need it), else float32; axis order as stored (NIfTI) or
    ``[column, row, slice]`` (DICOM).

    Raises :class:`ImageReadError` for missing, unreadable, truncated, non-3D or non-image input,
    :class:`SeriesSelectionError` when the series to read is ambiguous or absent,
    :class:`~spinewatch.imaging.limits.InputTooLargeError` when the header claims more than
    ``limits`` allow (checked before allocating).
    """
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".zip":
        from spinewatch.imaging.dicom import load_dicom_series

        return load_dicom_series(path, series_uid=series_uid, limits=limits)
    if _is_nifti(path):
        if series_uid is not None:
            raise SeriesSelectionError(
                f"{path}: a series UID ({series_uid!r}) applies to DICOM input only; "
                "a NIfTI file holds one series"
            )
        return _load_nifti_ct(path, limits)
    _check_image_path(path, "CT")
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# labels


def _label_dtype(hi: float) -> np.dtype[Any]:
    for dt in (np.uint8, np.uint16, np.uint32):
        if hi <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise OverflowError(hi)


def _check_labels_path(path: Path) -> None:
    if path.is_dir() or not _is_nifti(path):
        if not path.exists():
            raise ImageReadError(f"{path}: label map file not found")
        raise ImageReadError(
            f"{path}: unsupported label map; expected a NIfTI file (.nii or .nii.gz)"
        )


def load_labels(
    path: Path | str, *, limits: InputLimits | None = None, header: NiftiHeader | None = None
) -> LabelVolume:
    """Read an integer label map (NIfTI), 0 = background.

    Integer voxels and float-stored whole numbers are accepted; a non-integral or negative
    value is refused with :class:`ImageReadError` naming one offending voxel (index and value).
    The result uses the smallest unsigned dtype that holds the largest label (uint8, uint16,
    uint32), in the voxel order stored in the file. ``header``: its
    :func:`read_nifti_header`, when already read.
    """
    path = Path(path)
    _check_labels_path(path)
    raw, slope, inter, grid, _ = _read_nifti(path, "label map", limits, header)
    lo, hi, integral = _value_scan(raw, slope, inter, path, "label map")
    if not integral:
        _raise_bad_label(raw, slope, inter, path, lambda v: v != np.round(v), "a whole number")
    if lo < 0:
        _raise_bad_label(raw, slope, inter, path, lambda v: v < 0, "a label >= 0")
    if hi > np.iinfo(np.uint32).max:
        raise ImageReadError(f"{path}: label map holds label {hi:g}; expected labels < 2**32")
    labels = _convert(raw, slope, inter, _label_dtype(hi))
    return LabelVolume(labels=labels, grid=grid, source=str(path))


def _raise_bad_label(
    raw: npt.NDArray[Any],
    slope: float,
    inter: float,
    path: Path,
    bad: Any,
    expected: str,
) -> None:
    for sl in _slabs(raw.shape):
        vals = raw[sl].astype(np.float64) * slope + inter
        mask = bad(vals)
        if mask.any():
            i, j, k = _first_voxel(mask, sl)
            value = vals[i, j, k - (sl[2].start or 0)]
            raise ImageReadError(
                f"{path}: label map voxel ({i}, {j}, {k}) has value {value:g}; expected {expected}"
            )
    raise AssertionError("unreachable: a bad label value was found but not located")


# --------------------------------------------------------------------------------------------
# alignment


def load_study(
    ct_path: Path | str | None,
    labels_path: Path | str,
    *,
    series_uid: str | None = None,
    modality: Modality | str | None = "auto",
    contrast_phase: ContrastPhase | str | None = "auto",
    convention: Any = "auto",
    limits: InputLimits | None = None,
) -> tuple[CtVolume | MrVolume | None, LabelVolume]:
    """Read an image (optional; CT or MRI by :func:`load_image`) and its label map, the labels
    re-indexed onto the image's grid.

    Both headers are read and their grids compared first (:func:`check_alignable`), so a label
    map of another scan -- or a file whose header claims more than ``limits`` allow -- is refused
    before any voxel is read. Without an image the labels are returned in their stored order
    (``modality`` and ``contrast_phase`` then only matter to :func:`requested_acquisition`).
    ``convention`` names the label map's vertebrae for the modality detection (as the analysis
    will). Errors as :func:`load_image`, :func:`load_labels` and :func:`align_labels`.
    """
    limits = current_limits(limits)
    labels_path = Path(labels_path)
    _check_labels_path(labels_path)
    labels_header = read_nifti_header(labels_path, "label map", limits)
    if ct_path is None:
        if series_uid is not None:
            raise SeriesSelectionError(
                f"a series UID ({series_uid!r}) was given without an image to pick it from"
            )
        return None, load_labels(labels_path, limits=limits, header=labels_header)
    read: list[LabelVolume] = []

    def labels() -> LabelVolume:
        if not read:
            read.append(load_labels(labels_path, limits=limits, header=labels_header))
        return read[0]

    image = load_image(
        ct_path,
        series_uid=series_uid,
        modality=modality,
        contrast_phase=contrast_phase,
        labels=labels,
        convention=convention,
        labels_grid=(labels_header.grid, str(labels_path)),
        limits=limits,
    )
    return image, align_labels(labels(), image.grid)
