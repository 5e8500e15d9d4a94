"""Bone by Hounsfield units, with the marrow filled in.

Cortical bone is well above 200 HU while soft tissue stays below ~100 HU, so a fixed threshold
separates bone from its surroundings on any calibrated CT (the classical first step of Yao,
O'Connor & Summers, "Automated spinal column extraction and partitioning", IEEE ISBI 2006,
390-393). Trabecular bone of an osteoporotic or lytic body can fall below the threshold, but it
is enclosed by the cortical shell: holes of the thresholded mask are filled slice by slice in the
axial plane. Holes larger than a vertebral body's cross-section (the thoracic cage closed by
calcified costal cartilage, the pelvic ring) are left open.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

__all__ = [
    "BONE_HU",
    "CLOSING_MM",
    "MAX_HOLE_MM2",
    "FilledBone",
    "close_in_plane",
    "disc_structure",
    "enclosed",
    "filled_bone",
    "in_plane_structure",
]

#: Bone threshold in HU. Half-way between cortical bone (several hundred HU) and soft tissue
#: (0-100 HU) on partial-volume edges; an engineering choice in line with the 200 HU bone
#: threshold; Yao et al. 2006 also start from a plain threshold. Checked on the real scans of
#: docs/validation.md, not tuned to them.
BONE_HU = 200.0
#: Largest axial hole (mm^2) filled as marrow. Engineering choice: an adult lumbar body's
#: marrow cross-section is well under 30 cm^2 (about 5 x 4 cm outside the cortex), while the
#: thoracic cage or the pelvic ring, when closed by bone, encloses hundreds of cm^2.
MAX_HOLE_MM2 = 3000.0
#: Radius of the axial closing before filling, mm: a cortex or lamina thinner than a voxel
#: averages below the threshold in places; bridging gaps of up to ~6 mm closes the ring while
#: the canal (>= 10 mm across) stays open. Engineering choice.
CLOSING_MM = 3.0
#: Reach of the four-direction enclosure test, mm: about a lumbar body's half width (~25 mm;
#: Panjabi et al., Spine 1992), so the marrow of a body sees its cortex on every side, while
#: soft tissue next to the column sees bone on one or two sides only. Engineering choice.
ENCLOSE_MM = 45.0


def in_plane_structure() -> npt.NDArray[np.bool_]:
    """3x3x3 structuring element connecting voxels within an axial slice only (axis 2 = S)."""
    s = np.zeros((3, 3, 3), dtype=bool)
    s[:, :, 1] = ndi.generate_binary_structure(2, 1)
    return s


class FilledBone:
    """Bone (``hu >= bone_hu``) and its filled form on one grid (axes R, A, S).

    ``bone``: the thresholded mask; ``holes``: enclosed axial holes no larger than
    ``MAX_HOLE_MM2`` (marrow, lesions, the spinal canal where the neural arch is closed);
    ``filled``: ``bone | holes``; ``hole_labels``/``hole_area_mm2``: the holes as 2D components.
    """

    def __init__(
        self,
        bone: npt.NDArray[np.bool_],
        holes: npt.NDArray[np.bool_],
        hole_labels: npt.NDArray[np.int32],
        hole_area_mm2: npt.NDArray[np.float64],
    ) -> None:
        self.bone = bone
        self.holes = holes
        self.filled = bone | holes
        #: voxels that see bone in at least three of the four in-plane directions (set by
        #: :func:`filled_bone`): a body whose cortex is broken on one side
        self.partly_enclosed = np.zeros(bone.shape, dtype=bool)
        self.hole_labels = hole_labels
        self.hole_area_mm2 = hole_area_mm2


def disc_structure(
    spacing_mm: tuple[float, float, float], radius_mm: float
) -> npt.NDArray[np.bool_]:
    """An axial disc of ``radius_mm`` (at least the 4-neighbour cross), shape (a, b, 1)."""
    rx = max(1, int(radius_mm / spacing_mm[0]))
    ry = max(1, int(radius_mm / spacing_mm[1]))
    i = np.arange(-rx, rx + 1)[:, None] * spacing_mm[0]
    j = np.arange(-ry, ry + 1)[None, :] * spacing_mm[1]
    r = max(radius_mm, max(spacing_mm[0], spacing_mm[1]))
    disc = i**2 + j**2 <= r**2 + 1e-6
    return disc[:, :, None]


def close_in_plane(
    mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float], radius_mm: float
) -> npt.NDArray[np.bool_]:
    """Axial closing with a disc of ``radius_mm``: bridges the partial-volume gaps of a thin
    cortex or lamina (never across slices, so discs stay open)."""
    st = disc_structure(spacing_mm, radius_mm)
    pad = ((st.shape[0], st.shape[0]), (st.shape[1], st.shape[1]), (0, 0))
    out = ndi.binary_closing(np.pad(mask, pad), structure=st)
    return np.asarray(out[pad[0][0] : -pad[0][1], pad[1][0] : -pad[1][1]] | mask, dtype=bool)


def enclosed(
    mask: npt.NDArray[np.bool_],
    spacing_mm: tuple[float, float, float],
    reach_mm: float,
    directions: int = 4,
) -> npt.NDArray[np.bool_]:
    """Voxels not in ``mask`` that see ``mask`` within ``reach_mm`` to the left, the right, the
    front and the back in their axial slice (``mask``: axes R, A, S), after bridging one-voxel
    gaps in ``mask``: the inside of a cortical ring that plain hole filling misses because the
    ring is broken. ``directions``: how many of the four must see bone (3 also fills a ring
    open on one side -- and the notches between a body, a rib and a transverse process, so it
    is only used where a body is expected)."""
    ring = ndi.binary_dilation(mask, structure=np.ones((3, 3, 1), dtype=bool))
    hits = np.zeros(mask.shape, dtype=np.uint8)
    for axis in (0, 1):
        k = max(1, round(reach_mm / spacing_mm[axis] / 2.0))
        for origin in (k, -k):  # one-sided windows of 2k+1 voxels
            hits += ndi.maximum_filter1d(
                ring, size=2 * k + 1, axis=axis, origin=origin, mode="constant"
            )
    return np.asarray((hits >= directions) & ~ring, dtype=bool)


def filled_bone(
    hu: npt.NDArray[Any],
    spacing_mm: tuple[float, float, float],
    *,
    bone_hu: float = BONE_HU,
    max_hole_mm2: float = MAX_HOLE_MM2,
) -> FilledBone:
    """Threshold ``hu`` (shape (nx, ny, nz), axes R, A, S) and fill enclosed axial holes.

    The array is padded by one slice above and below so the first and last slices are filled like
    the others (``binary_fill_holes`` treats the whole border as outside).
    """
    bone = hu >= bone_hu
    structure = in_plane_structure()
    closed = close_in_plane(bone, spacing_mm, CLOSING_MM)
    padded = np.pad(closed, ((0, 0), (0, 0), (1, 1)))
    holes = ndi.binary_fill_holes(padded, structure=structure)[:, :, 1:-1] & ~closed
    hole_labels, n = ndi.label(holes, structure=structure)
    pixel_mm2 = spacing_mm[0] * spacing_mm[1]
    area = np.bincount(hole_labels.ravel(), minlength=n + 1).astype(np.float64) * pixel_mm2
    area[0] = 0.0
    too_big = area > max_hole_mm2
    if too_big.any():
        holes &= ~too_big[hole_labels]
        hole_labels[too_big[hole_labels]] = 0
    out = FilledBone(closed, holes, hole_labels.astype(np.int32, copy=False), area)
    # a cortical ring broken by noise or partial volume (a thin osteoporotic cortex): what sees
    # bone within ENCLOSE_MM in three of the four in-plane directions may be inside it; the
    # caller uses it only where a body is expected
    part = enclosed(closed, spacing_mm, ENCLOSE_MM, directions=3)
    # a region larger than any body's cross-section (the lungs inside the ribs, the pelvis
    # inside the ilia) is not marrow
    part_labels, n_part = ndi.label(part, structure=structure)
    if n_part:
        part_area = np.bincount(part_labels.ravel(), minlength=n_part + 1) * pixel_mm2
        part_area[0] = 0.0
        part &= ~(part_area > max_hole_mm2)[part_labels]
    out.partly_enclosed = part
    return out
