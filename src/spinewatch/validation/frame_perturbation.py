"""Headers corrupted and masks cut to bodies: what the frame validation does to real label maps.

Why: each vertebra's frame (superior, anterior) must come from the anatomy, not the header
(issue 7, part 3). Two perturbations of a real map test that:

* **A corrupted header** (:func:`reheader`): the same voxels under another affine, ``world @
  affine`` for a 4x4 world transform (a flip, a rotation, or a swap of two voxel axes expressed
  in world terms, :func:`voxel_axis_swap`). The anatomy has not moved, so the frame found must
  be the same *in the voxel sense*: ``anterior' = M anterior`` and ``superior' = M superior``
  for the transform's 3x3 part ``M`` (:func:`frame_angles_deg`), and the header's
  disagreement must be flagged. A left-right mirror (``FLIP_X``) keeps anterior and superior
  where they were and cannot be seen from the vertebrae.
* **Body-only labels** (:func:`cut_to_bodies`): each vertebra's body alone, as separated in front
  of its canal by the product's own anatomy step -- what a body-only segmentation (TotalSegmentator
  ``vertebrae_body``, the TPTBox subregions 49/50) gives. Without posterior elements the anterior
  comes from the body's shape and the column's curve; it must match the full mask's.

World transforms are 4x4 arrays in RAS+ mm; angles in degrees.

>>> round(angle_deg(np.array([1.0, 0, 0]), np.array([0, 1.0, 0])))
90
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spinewatch.imaging.anatomy import VertebraRegion
from spinewatch.imaging.volume import Grid, LabelVolume

__all__ = [
    "FLIP_X",
    "FLIP_Y",
    "FLIP_Z",
    "HEADER_FLAGS",
    "FrameAngles",
    "angle_deg",
    "cut_to_bodies",
    "frame_angles_deg",
    "reheader",
    "rotation",
    "voxel_axis_swap",
]

FloatArray = npt.NDArray[np.float64]

#: The quality flags that say a frame came from, or disagreed with, the header.
HEADER_FLAGS = frozenset(
    {"header_orientation_disagrees", "anterior_from_header", "superior_from_header"}
)
FLIP_X: FloatArray = np.diag([-1.0, 1.0, 1.0, 1.0])
FLIP_Y: FloatArray = np.diag([1.0, -1.0, 1.0, 1.0])
FLIP_Z: FloatArray = np.diag([1.0, 1.0, -1.0, 1.0])


def angle_deg(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """The angle between two 3-vectors, degrees (0-180)."""
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cos = float(va @ vb) / float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def rotation(axis: int, deg: float) -> FloatArray:
    """4x4 world rotation about world axis 0/1/2 (R, A, S) by ``deg`` degrees."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    out = np.eye(4)
    out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
    return out


def voxel_axis_swap(grid: Grid, axes: tuple[int, int]) -> FloatArray:
    """The world transform that makes a header swap voxel axes ``axes`` (the voxels stay):
    ``affine @ P @ inverse(affine)`` with ``P`` the permutation. Meaningful as a corruption
    when the two axes have the same spacing."""
    order = [0, 1, 2, 3]
    order[axes[0]], order[axes[1]] = axes[1], axes[0]
    swap = np.eye(4)[order]
    out: FloatArray = grid.affine @ swap @ np.linalg.inv(grid.affine)
    return out


def reheader(labels: LabelVolume, world: npt.ArrayLike, source: str = "") -> LabelVolume:
    """The same voxels under another header: affine ``world @ labels.grid.affine``."""
    m = np.asarray(world, dtype=np.float64)
    return LabelVolume(
        labels.labels,
        Grid(labels.grid.shape, m @ labels.grid.affine),
        source or f"{labels.source} (re-headed)",
    )


def cut_to_bodies(labels: LabelVolume, regions: Sequence[VertebraRegion]) -> LabelVolume:
    """Body-only labels: each vertebra's body as separated in front of its canal (``regions``
    from :func:`~spinewatch.imaging.anatomy.find_vertebrae` on ``labels``), on its grid."""
    out = np.zeros_like(labels.labels)
    for r in regions:
        out[r.bbox][r.body] = r.label
    return LabelVolume(out, labels.grid, f"{labels.source} (bodies only)")


@dataclass(frozen=True)
class FrameAngles:
    """How far one vertebra's frame is from a reference frame carried through a transform.

    ``anterior_deg``/``superior_deg``: angles to ``M @ reference``; ``left_right``: the
    |component| of the anterior along the reference's right (``M @ right``; 0 = no twist);
    ``origin_mm``: distance of the body centroid from the transformed reference centroid.
    """

    level: str
    anterior_deg: float
    superior_deg: float
    left_right: float
    origin_mm: float


def frame_angles_deg(
    got: Sequence[VertebraRegion],
    reference: Sequence[VertebraRegion],
    world: npt.ArrayLike | None = None,
) -> list[FrameAngles]:
    """Per level present in both, ``got``'s frame against ``reference``'s carried by the world
    transform ``world`` (4x4; None: identity) -- the same frame in the voxel sense gives 0."""
    m4 = np.eye(4) if world is None else np.asarray(world, dtype=np.float64)
    m = m4[:3, :3]
    ref = {r.level: r for r in reference}
    out = []
    for g in got:
        r = ref.get(g.level)
        if r is None:
            continue
        moved = m @ r.frame.origin_mm + m4[:3, 3]
        out.append(
            FrameAngles(
                level=str(g.level.value),
                anterior_deg=angle_deg(g.frame.anterior, m @ r.frame.anterior),
                superior_deg=angle_deg(g.frame.superior, m @ r.frame.superior),
                left_right=abs(float(g.frame.anterior @ (m @ r.frame.right))),
                origin_mm=float(np.linalg.norm(g.frame.origin_mm - moved)),
            )
        )
    return out
