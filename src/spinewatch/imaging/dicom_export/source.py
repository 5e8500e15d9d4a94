"""The CT series the results refer to: its DICOM headers matched to the analysis grid.

:func:`spinewatch.imaging.dicom.load_dicom_series` stores a series as ``hu[column, row, slice]``
with slices sorted along the slice normal. A SEG object needs one frame per *source image*, so
:func:`frames_on_images` finds, for every CT header, the grid slice it is (from its
ImagePositionPatient, LPS mm, mapped through the grid's inverse affine) and cuts that slice out
of a label array on the grid, transposed to DICOM's ``(rows, columns)``.

:func:`read_headers` reads the headers (no pixel data) of a series directory or zip.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError

from spinewatch.core.errors import InputError
from spinewatch.imaging.volume import Grid

__all__ = ["SourceMismatchError", "frames_on_images", "read_headers", "slice_index_of"]

_LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])
#: Largest distance (voxels) between a header's position and the grid slice it is matched to.
_POSITION_TOL_VOXELS = 0.05


class SourceMismatchError(InputError):
    """CT headers that do not lie on the analysis grid (another series, another geometry)."""


def read_headers(path: Path | str, *, series_uid: str | None = None) -> list[Dataset]:
    """The CT image headers (without pixel data) of a directory (recursive) or zip.

    ``series_uid``: keep only that series. Non-DICOM files are skipped.
    """
    path = Path(path)
    out: list[Dataset] = []

    def keep(ds: Dataset) -> None:
        if "Rows" not in ds or str(ds.get("Modality", "")) != "CT":
            return
        if series_uid and str(ds.get("SeriesInstanceUID", "")) != series_uid:
            return
        out.append(ds)

    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            try:
                keep(dcmread(item, stop_before_pixels=True))
            except InvalidDicomError:
                continue
    else:
        with zipfile.ZipFile(path) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                with zf.open(info) as fh:
                    try:
                        keep(dcmread(fh, stop_before_pixels=True))
                    except InvalidDicomError:
                        continue
    if not out:
        raise SourceMismatchError(f"{path}: no CT image header found (series {series_uid!r})")
    return out


def slice_index_of(ds: Dataset, grid: Grid) -> int:
    """The index along the grid's third axis of the CT image ``ds`` (refused when off-grid)."""
    try:
        ipp_lps = np.asarray([float(v) for v in ds.ImagePositionPatient], dtype=np.float64)
    except (AttributeError, TypeError, ValueError):
        raise SourceMismatchError(
            f"CT image {ds.get('SOPInstanceUID', '?')}: tag ImagePositionPatient "
            f"{ds.get('ImagePositionPatient')!r}; expected three numbers"
        ) from None
    ijk = grid.to_voxel(ipp_lps * _LPS_TO_RAS)
    k = round(float(ijk[2]))
    off = np.abs(ijk - np.array([0.0, 0.0, k]))
    if np.any(off > _POSITION_TOL_VOXELS) or not 0 <= k < grid.shape[2]:
        raise SourceMismatchError(
            f"CT image {ds.get('SOPInstanceUID', '?')}: ImagePositionPatient "
            f"{ipp_lps.tolist()} is at voxel {np.round(ijk, 3).tolist()} of the analysis grid "
            f"({grid.describe()}); expected the corner of one of its slices"
        )
    return k


def frames_on_images(
    array: npt.NDArray[Any], grid: Grid, datasets: Sequence[Dataset]
) -> npt.NDArray[Any]:
    """Cut ``array`` (shape ``grid.shape``, ``[column, row, slice]``) into one frame per CT
    image of ``datasets``, in their order: shape ``(len(datasets), rows, columns)``."""
    if array.shape != grid.shape:
        raise SourceMismatchError(f"array shape {array.shape}: expected the grid's {grid.shape}")
    cols, rows = grid.shape[0], grid.shape[1]
    out = np.empty((len(datasets), rows, cols), dtype=array.dtype)
    for n, ds in enumerate(datasets):
        if int(ds.Rows) != rows or int(ds.Columns) != cols:
            raise SourceMismatchError(
                f"CT image {ds.get('SOPInstanceUID', '?')}: {int(ds.Rows)}x{int(ds.Columns)} "
                f"pixels; expected {rows}x{cols} like the analysis grid"
            )
        out[n] = array[:, :, slice_index_of(ds, grid)].T
    return out
