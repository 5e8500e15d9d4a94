"""The working grid of the built-in segmenter: the CT re-ordered to R, A, S voxel axes and
block-averaged to about 2 mm, and the way back to the CT's own grid.

Re-ordering is a view (transposes and flips, no copy): the voxel axes nearest to world R, A
and S become axes 0, 1, 2 with indices increasing towards right, anterior and superior. A tilted
(oblique) affine keeps its tilt -- the column is tracked per slice, so a tilt of up to ~30
degrees only shears it. Block averaging by whole factors keeps each working voxel an exact
union of CT voxels, which makes the way back (:func:`to_ct_grid`) an index computation.

Why about 2 mm: a disc is >= 4 mm high even in the cervical spine (Frobin et al., Clin Biomech
2002, report cervical disc heights of about 4-6 mm), so two working voxels still see it; the
canal (>= 10 mm across) spans five. Finer detail is restored on the CT grid afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from nibabel import orientations as _nio

from spinewatch.imaging.volume import CtVolume, Grid

__all__ = ["WORKING_SPACING_MM", "WorkingGrid", "make_working_grid", "to_ct_grid"]

nio: Any = _nio  # nibabel is untyped

#: Target working voxel size in mm (an engineering choice; see the module docstring).
WORKING_SPACING_MM = 2.0
_SLAB_SLICES = 16


@dataclass(frozen=True, eq=False)
class WorkingGrid:
    """The CT on the working grid.

    ``hu``: float32 array, shape (nx, ny, nz), axes towards R, A, S (mean HU of each block);
    ``spacing_mm``: working voxel size per axis; ``factors``: CT voxels per working voxel per
    (re-ordered) axis; ``source_ornt``: nibabel orientation of the CT's voxel axes (which world
    axis each points along, and whether flipped); ``canonical_shape``: the CT's shape in R, A, S
    order.
    """

    hu: npt.NDArray[np.float32]
    spacing_mm: tuple[float, float, float]
    factors: tuple[int, int, int]
    source_ornt: npt.NDArray[np.float64]
    canonical_shape: tuple[int, int, int]
    canonical_spacing_mm: tuple[float, float, float]
    ct_shape: tuple[int, int, int]

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one working voxel in mm^3."""
        return float(np.prod(self.spacing_mm))


def _ras() -> npt.NDArray[np.float64]:
    return np.asarray(nio.axcodes2ornt(("R", "A", "S")), dtype=np.float64)


def canonical_view(
    array: npt.NDArray[Any], grid: Grid
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64]]:
    """``array`` (shape ``grid.shape``) as a view in R, A, S voxel order, and the orientation of
    the grid's voxel axes (nibabel ``io_orientation``)."""
    src = np.asarray(nio.io_orientation(grid.affine), dtype=np.float64)
    return nio.apply_orientation(array, nio.ornt_transform(src, _ras())), src


def make_working_grid(ct: CtVolume, spacing_mm: float = WORKING_SPACING_MM) -> WorkingGrid:
    """Re-order ``ct`` to R, A, S and block-average it to about ``spacing_mm``.

    Memory: one float32 working array (the CT's voxel count / product of the factors) plus one
    slab of float32 temporaries; the CT itself is only read.
    """
    view, src = canonical_view(ct.hu, ct.grid)
    sp = _permuted(np.asarray(ct.grid.spacing_mm), src)
    factors = tuple(max(1, round(spacing_mm / s)) for s in sp)
    fx, fy, fz = factors
    nx, ny, nz = (view.shape[a] // f for a, f in enumerate(factors))
    out = np.empty((nx, ny, nz), dtype=np.float32)
    # integer CTs are summed exactly in int32 (at most 65536 int16 values per working voxel);
    # the strided adds touch each CT voxel once, slab by slab along the axis that varies
    # slowest in memory (nibabel hands Fortran-ordered arrays: there, the last one)
    acc_type = np.int32 if np.issubdtype(view.dtype, np.integer) else np.float32
    scale = np.float32(1.0 / (fx * fy * fz))
    slow = int(np.argmax(np.abs(view.strides)))
    order: Literal["C", "F"] = "F" if abs(view.strides[0]) < abs(view.strides[2]) else "C"
    n_slow = out.shape[slow]
    for a0 in range(0, n_slow, _SLAB_SLICES):
        a1 = min(n_slow, a0 + _SLAB_SLICES)
        cut = [slice(0, nx * fx), slice(0, ny * fy), slice(0, nz * fz)]
        cut[slow] = slice(a0 * factors[slow], a1 * factors[slow])
        block = view[tuple(cut)]
        shape = [nx, ny, nz]
        shape[slow] = a1 - a0
        acc = np.zeros(tuple(shape), dtype=acc_type, order=order)
        for i in range(fx):
            for j in range(fy):
                for k in range(fz):
                    acc += block[i::fx, j::fy, k::fz]
        dest = [slice(None)] * 3
        dest[slow] = slice(a0, a1)
        out[tuple(dest)] = acc * scale
    return WorkingGrid(
        hu=out,
        spacing_mm=(float(sp[0] * fx), float(sp[1] * fy), float(sp[2] * fz)),
        factors=(fx, fy, fz),
        source_ornt=src,
        canonical_shape=(int(view.shape[0]), int(view.shape[1]), int(view.shape[2])),
        canonical_spacing_mm=(float(sp[0]), float(sp[1]), float(sp[2])),
        ct_shape=ct.grid.shape,
    )


def _permuted(sp_ct: npt.NDArray[np.float64], src: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    """CT spacing re-ordered like the voxel axes (CT axis i points along world axis src[i, 0])."""
    out = np.empty(3)
    for i in range(3):
        out[int(src[i, 0])] = sp_ct[i]
    return out


def to_ct_grid(canonical: npt.NDArray[Any], working: WorkingGrid) -> npt.NDArray[Any]:
    """An array in canonical (R, A, S) CT-resolution order back in the CT's own voxel order, in
    Fortran memory order (NIfTI's; no copy when ``canonical`` is Fortran-ordered and the CT is
    stored R, A, S)."""
    out = nio.apply_orientation(canonical, nio.ornt_transform(_ras(), working.source_ornt))
    if out.shape != working.ct_shape:  # pragma: no cover - guarded by construction
        raise ValueError(f"array of shape {out.shape} is not on the CT grid {working.ct_shape}")
    return np.asfortranarray(out)
