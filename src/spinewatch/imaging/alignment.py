"""What every image reader shares: the read errors, orientation codes, and a label map
re-indexed onto an image's voxel grid.

:mod:`spinewatch.imaging.io` (NIfTI, and the entry points) and :mod:`spinewatch.imaging.dicom`
(DICOM series) both build on this module; :mod:`~spinewatch.imaging.io` re-exports every name, so
``from spinewatch.imaging.io import ImageReadError`` keeps working. It exists so that the two
readers do not import each other (they used to: io -> dicom for a series, dicom -> io for these).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.errors import InputError
from spinewatch.imaging.volume import Grid, LabelVolume

__all__ = [
    "ALIGN_TOLERANCE_VOXELS",
    "GridMismatchError",
    "ImageReadError",
    "LabelsArg",
    "SeriesSelectionError",
    "align_labels",
    "check_alignable",
    "orientation_code",
    "vertebrae_for_detection",
]

log = logging.getLogger(__name__)

#: Largest distance (in voxels) a voxel centre may move when a label map is re-indexed onto the
#: CT grid; beyond it the two grids differ and :class:`GridMismatchError` is raised.
ALIGN_TOLERANCE_VOXELS = 1e-3


class ImageReadError(InputError):
    """A CT or label file that cannot be read as an image: missing, corrupt, truncated, 4D..."""


class GridMismatchError(InputError):
    """A label map whose voxel grid is not the CT's grid (in any voxel order)."""


class SeriesSelectionError(InputError):
    """Several DICOM series where one was expected, or a requested series UID that is absent."""


def orientation_code(affine: npt.NDArray[np.float64]) -> str:
    """Axis codes such as ``"RAS"`` or ``"LPS"``: the world direction each voxel axis points to."""
    from nibabel.orientations import aff2axcodes

    codes = aff2axcodes(affine)  # type: ignore[no-untyped-call]
    return "".join(str(c) for c in codes)


def _grid_text(grid: Grid) -> str:
    return f"{grid.describe()}, orientation {orientation_code(grid.affine)}"


def _alignment(
    src: Grid, grid: Grid, source: str, tol_voxels: float
) -> tuple[list[int], list[bool]]:
    """How a label grid ``src`` re-indexes onto ``grid``: the label axis feeding each image
    axis and whether it runs backwards; :class:`GridMismatchError` when the grids differ."""

    def mismatch(reason: str) -> GridMismatchError:
        return GridMismatchError(
            f"label map {source} does not describe the image's voxel grid ({reason}): "
            f"labels {_grid_text(src)}; image {_grid_text(grid)}"
        )

    m = np.linalg.solve(src.affine, grid.affine)  # CT voxel index -> label voxel index
    rot = m[:3, :3]
    perm = np.round(rot)
    if not (
        np.all(np.isin(perm, (-1.0, 0.0, 1.0)))
        and np.all(np.abs(perm).sum(axis=0) == 1)
        and np.all(np.abs(perm).sum(axis=1) == 1)
    ):
        raise mismatch("axes are not a flip/permutation of the CT's (rotated or rescaled)")
    # label axis feeding each CT axis, and whether it runs backwards
    src_axis = [int(np.flatnonzero(perm[:, p])[0]) for p in range(3)]
    flips = [bool(perm[src_axis[p], p] < 0) for p in range(3)]
    shape_in_ct_order = tuple(src.shape[a] for a in src_axis)
    if shape_in_ct_order != grid.shape:
        raise mismatch(
            f"shape {src.shape} re-ordered to {shape_in_ct_order} differs from {grid.shape}"
        )
    # the integer re-indexing we are about to apply, as a CT-voxel -> label-voxel matrix
    t = np.zeros((4, 4))
    t[3, 3] = 1.0
    for p in range(3):
        a = src_axis[p]
        t[a, p] = -1.0 if flips[p] else 1.0
        t[a, 3] = src.shape[a] - 1 if flips[p] else 0.0
    corners = np.array(
        [
            [i, j, k, 1.0]
            for i in (0, grid.shape[0] - 1)
            for j in (0, grid.shape[1] - 1)
            for k in (0, grid.shape[2] - 1)
        ]
    ).T
    err = float(np.abs((m - t) @ corners)[:3].max())
    if not err <= tol_voxels:
        raise mismatch(
            f"voxel centres are {err:.3g} voxels apart after re-ordering, tolerance {tol_voxels:g}"
        )
    return src_axis, flips


def check_alignable(
    labels_grid: Grid, grid: Grid, source: str, *, tol_voxels: float = ALIGN_TOLERANCE_VOXELS
) -> None:
    """Refuse (:class:`GridMismatchError`) a label grid that :func:`align_labels` would refuse.

    Grids only -- no voxels: :func:`load_study` calls it with both headers before reading either
    volume, so a label map of another scan costs nothing to refuse.
    """
    if labels_grid is grid or labels_grid.same_as(grid):
        return
    _alignment(labels_grid, grid, source, tol_voxels)


def align_labels(
    labels: LabelVolume, grid: Grid, *, tol_voxels: float = ALIGN_TOLERANCE_VOXELS
) -> LabelVolume:
    """The label map re-indexed onto ``grid`` (normally the CT's), by views -- no interpolation.

    A label map often describes the CT's voxels in another order (a flipped or permuted axis).
    With ``M = inv(labels.affine) @ grid.affine`` (CT voxel -> label voxel), the maps are the same
    physical grid exactly when ``M`` is a signed permutation whose offsets put every voxel centre
    on a voxel centre (within ``tol_voxels``); the label array is then transposed and flipped so
    that ``result.labels[i, j, k]`` is the label of CT voxel ``(i, j, k)``.

    The result always carries ``grid`` itself (the very object), and shares the label array.
    Raises :class:`GridMismatchError`, showing both grids, when the grids really differ.

    >>> g = Grid((4, 3, 2), np.diag([1.0, 1.0, 2.0, 1.0]))
    >>> flipped = Grid((4, 3, 2), g.affine @ np.array(
    ...     [[-1, 0, 0, 3], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]))
    >>> lab = LabelVolume(np.arange(24, dtype=np.uint8).reshape(4, 3, 2), flipped, "x")
    >>> int(align_labels(lab, g).labels[0, 0, 0])  # CT voxel 0 is label voxel 3
    18
    """
    if labels.grid is grid:
        return labels
    if labels.grid.same_as(grid):
        return LabelVolume(labels=labels.labels, grid=grid, source=labels.source)
    src_axis, flips = _alignment(labels.grid, grid, labels.source, tol_voxels)
    arr = np.transpose(labels.labels, src_axis)
    for p in range(3):
        if flips[p]:
            arr = np.flip(arr, axis=p)
    log.debug(
        "%s: label map re-indexed onto the CT grid (axes %s, flipped %s)",
        labels.source,
        src_axis,
        flips,
    )
    return LabelVolume(labels=arr, grid=grid, source=labels.source)


#: A label map, or a function that reads it when it is first needed (:func:`load_study`).
LabelsArg = LabelVolume | Callable[[], LabelVolume] | None


def _labels_now(labels: LabelVolume | Callable[[], LabelVolume]) -> LabelVolume:
    return labels if isinstance(labels, LabelVolume) else labels()


def vertebrae_for_detection(
    labels: LabelsArg, grid: Grid, values: npt.NDArray[Any], convention: Any
) -> Any:
    """A function giving the label map's :func:`~spinewatch.imaging.modality.vertebra_figures`
    on the image grid (None without a label map; no vertebra named when its convention cannot
    be told). A label map on another grid raises :class:`GridMismatchError` when called."""
    if labels is None:
        return None
    source = labels

    def compute() -> Any:
        from spinewatch.core.conventions import vertebra_labels
        from spinewatch.imaging.anatomy import label_bounding_boxes, present_labels
        from spinewatch.imaging.label_reading import prepare_labels
        from spinewatch.imaging.modality import vertebra_figures

        aligned = align_labels(_labels_now(source), grid)  # a mismatch is reported first
        try:
            # read as the analysis will (ids and geometry; the modality is what is being
            # decided, so none is assumed)
            prepared = prepare_labels(aligned, convention)
        except InputError:
            return vertebra_figures(values, aligned.labels, [])  # every structure looked at
        arr = prepared.labels.labels
        boxes = (
            prepared.boxes if prepared.boxes is not None else label_bounding_boxes(prepared.labels)
        )
        ids = list(vertebra_labels(present_labels(boxes), prepared.analysis_convention))
        return vertebra_figures(values, arr, ids)

    return compute
