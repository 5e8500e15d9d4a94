"""The one canonical in-memory form of a scan: voxels plus their affine to world millimetres.

Two image types, on purpose not interchangeable: :class:`CtVolume` holds Hounsfield units
(``hu``) and is the only input the density, lesion and cement measurements accept;
:class:`MrVolume` holds an MRI's arbitrary signal units (``signal``, no ``hu`` attribute at all),
so an MRI can give geometry and a picture background but can never reach a HU threshold by
mistake. Each carries its :class:`~spinewatch.core.acquisition.Acquisition` (modality, contrast
phase and where they came from).

Every array here is indexed ``[i, j, k]`` (voxel axes as stored), and ``affine`` maps a voxel
index ``(i, j, k, 1)`` to world coordinates in millimetres, RAS+ (the NIfTI convention: +x right,
+y anterior, +z superior). Nothing downstream may assume which voxel axis is superior: use
:meth:`Grid.axis_closest_to` or the affine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.acquisition import Acquisition, AcquisitionError, Modality

__all__ = ["CtVolume", "GeometryError", "Grid", "LabelVolume", "MrVolume", "ScanVolume"]


class GeometryError(ValueError):
    """A grid or affine that cannot be used (singular, non-finite, wrong shape)."""


@dataclass(frozen=True, eq=False)
class Grid:
    """A voxel grid in world space.

    ``shape`` is the array shape ``(ni, nj, nk)``; ``affine`` a 4x4 float64 matrix mapping voxel
    indices to world RAS+ millimetres.

    >>> g = Grid((10, 10, 5), np.diag([0.5, 0.5, 2.0, 1.0]))
    >>> g.spacing_mm
    (0.5, 0.5, 2.0)
    >>> g.voxel_volume_ml
    0.0005
    """

    shape: tuple[int, int, int]
    affine: npt.NDArray[np.float64] = field(repr=False)

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise GeometryError(f"affine must be a finite 4x4 matrix, got {affine!r}")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
            raise GeometryError(f"affine is singular: {affine[:3, :3].tolist()}")
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise GeometryError(f"grid shape must be three positive sizes, got {self.shape}")
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along each array axis, in mm."""
        sp = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        return (float(sp[0]), float(sp[1]), float(sp[2]))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in ml (1 ml = 1000 mm^3)."""
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    @property
    def axis_directions(self) -> npt.NDArray[np.float64]:
        """Unit world direction of each voxel axis, as columns of a 3x3 matrix."""
        m = self.affine[:3, :3]
        return np.asarray(m / np.sqrt((m**2).sum(axis=0)), dtype=np.float64)

    def axis_closest_to(self, world_axis: int) -> int:
        """The voxel axis most nearly parallel to world axis 0 (x/R), 1 (y/A) or 2 (z/S)."""
        return int(np.argmax(np.abs(self.axis_directions[world_axis, :])))

    def to_world(self, ijk: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Voxel indices, shape (..., 3), to world mm, shape (..., 3)."""
        pts = np.asarray(ijk, dtype=np.float64)
        return np.asarray(pts @ self.affine[:3, :3].T + self.affine[:3, 3], dtype=np.float64)

    def to_voxel(self, xyz: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """World mm, shape (..., 3), to (fractional) voxel indices, shape (..., 3)."""
        inv = np.linalg.inv(self.affine)
        pts = np.asarray(xyz, dtype=np.float64)
        return np.asarray(pts @ inv[:3, :3].T + inv[:3, 3], dtype=np.float64)

    def same_as(self, other: Grid, *, tol_mm: float = 1e-3) -> bool:
        """True when both grids have the same shape and the same voxel-to-world mapping."""
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, atol=tol_mm, rtol=0)
        )

    def describe(self) -> str:
        """One line for error messages: shape, spacing and origin."""
        sp = ", ".join(f"{s:.3g}" for s in self.spacing_mm)
        org = ", ".join(f"{o:.1f}" for o in self.affine[:3, 3])
        return f"shape {self.shape}, spacing ({sp}) mm, origin ({org}) mm"


@dataclass(frozen=True, eq=False)
class CtVolume:
    """A CT in Hounsfield units on ``grid``.

    ``hu`` keeps the smallest exact dtype (int16 where rescaling gives whole numbers, else
    float32) so a 512x512x600 scan stays near 300 MB. ``source`` names the file or series for
    messages; ``meta`` holds scanner facts worth reporting (series UID, kernel, slice spacing...).
    ``acquisition`` must say CT (default: CT, native, both assumed).
    """

    hu: npt.NDArray[Any] = field(repr=False)
    grid: Grid
    source: str
    meta: dict[str, Any] = field(default_factory=dict)
    acquisition: Acquisition = field(default_factory=Acquisition)

    def __post_init__(self) -> None:
        _check_shape(self.hu, self.grid, self.source)
        if self.acquisition.modality is not Modality.CT:
            raise AcquisitionError(
                f"{self.source}: a CtVolume holds Hounsfield units, but its acquisition says "
                f"{self.acquisition.modality.value}; load an MRI as an MrVolume"
            )


def _mr_default() -> Acquisition:
    return Acquisition(modality=Modality.MR)


@dataclass(frozen=True, eq=False)
class MrVolume:
    """An MRI on ``grid`` in the scanner's arbitrary signal units (any weighting).

    ``signal`` is NOT in Hounsfield units and has no fixed scale, so it is used for geometry
    checks and as the picture's background only; density, lesions and cement are never measured
    on it (the analysis reports them as null with
    :data:`~spinewatch.core.acquisition.MRI_NOT_ASSESSED`). Same dtype rules, ``source`` and
    ``meta`` as :class:`CtVolume`; ``acquisition`` must say MR.
    """

    signal: npt.NDArray[Any] = field(repr=False)
    grid: Grid
    source: str
    meta: dict[str, Any] = field(default_factory=dict)
    acquisition: Acquisition = field(default_factory=_mr_default)

    def __post_init__(self) -> None:
        _check_shape(self.signal, self.grid, self.source)
        if self.acquisition.modality is not Modality.MR:
            raise AcquisitionError(
                f"{self.source}: an MrVolume holds MRI signal, but its acquisition says "
                f"{self.acquisition.modality.value}"
            )


#: Either image type; code that needs Hounsfield units must narrow to :class:`CtVolume`.
ScanVolume = CtVolume | MrVolume


def _check_shape(values: npt.NDArray[Any], grid: Grid, source: str) -> None:
    if values.shape != grid.shape:
        raise GeometryError(
            f"{source}: voxel array shape {values.shape} does not match grid {grid.shape}"
        )


@dataclass(frozen=True, eq=False)
class LabelVolume:
    """An integer label map on ``grid`` (0 = background), as stored by the segmenter.

    Which label is which vertebra is decided by a label convention
    (:mod:`spinewatch.core.conventions`), not here.
    """

    labels: npt.NDArray[np.integer[Any]] = field(repr=False)
    grid: Grid
    source: str

    def __post_init__(self) -> None:
        if self.labels.shape != self.grid.shape:
            raise GeometryError(
                f"{self.source}: label array shape {self.labels.shape} "
                f"does not match grid {self.grid.shape}"
            )
