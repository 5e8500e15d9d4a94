"""Synthetic fractures in REAL vertebra masks: compress a body along its own superior axis.

Why: the real scans hold one real fracture (VerSe004 L1). To measure Genant grading on real
bodies -- their own shapes, partial volume, endplate irregularity -- fractures of known loss are
built into real label maps, alone and next to other (real or built) fractures.

:func:`deform_body` takes a real label map, finds the vertebra's body and frame with the
product's own anatomy step (:func:`spinewatch.imaging.anatomy.find_vertebrae`), and compresses
the body towards the plane through its centroid perpendicular to ``superior`` by a factor
``s(u, v)`` of the local right/anterior position (frame coordinates ``u, v, w`` in mm):

* ``wedge``: ``s`` falls linearly from 1 at the posterior measuring column to ``1 - loss`` at
  the anterior one (continued linearly in front, never above 1 behind);
* ``biconcave``: ``s = 1 - loss * bump``, the phantom's central dome (1 within 25 % of the
  body's half-width/half-depth around the middle column, 0 beyond 60 %), so the walls keep
  their heights;
* ``crush``: ``s = 1 - loss`` everywhere.

Backward mapping with nearest-neighbour sampling: an output voxel of the body zone belongs to
the body when the point ``(u, v, w / s)`` of the original lies in the original body. The
posterior elements and every other label are untouched. A column's height is therefore the
original height times ``s`` at that column (to a voxel), so the truth of a deformity is
*relative to that real vertebra's own shape* -- a body whose own shape is off its level's
normal reads a few points higher or lower when graded against the normal (as a reader would).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinewatch.core.errors import InputError
from spinewatch.imaging.anatomy import find_vertebrae
from spinewatch.imaging.heights import BodyHeights, body_heights
from spinewatch.imaging.volume import LabelVolume

__all__ = ["KINDS", "DeformationError", "deform_body"]

KINDS = ("wedge", "biconcave", "crush")
#: The wedge factor never falls below this (a 100 % wedge in front of the anterior column
#: would otherwise divide by zero).
_MIN_SCALE = 0.15


class DeformationError(InputError):
    """A deformity that cannot be built as asked (unknown kind, level absent, no heights)."""


def _bump(rr: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    x = np.clip((rr - 0.25) / 0.35, 0.0, 1.0)
    out: npt.NDArray[np.float64] = 1.0 - x * x * (3.0 - 2.0 * x)
    return out


def deform_body(
    labels: LabelVolume, convention: str, level: str, kind: str, loss: float
) -> tuple[LabelVolume, BodyHeights]:
    """``labels`` with ``level``'s body deformed (``kind`` at ``loss``, a fraction 0-1), and
    the body heights measured on the original (the reference the deformity is relative to).

    ``convention`` names the map's label convention (e.g. ``"verse"``). The input is not
    changed; the result is a new map on the same grid. Raises :class:`DeformationError`.
    """
    if kind not in KINDS:
        raise DeformationError(f"deformity kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not 0.0 < loss < 1.0:
        raise DeformationError(f"height loss {loss!r}; expected a fraction between 0 and 1")
    regions = {str(r.level.value): r for r in find_vertebrae(labels, convention)}
    if level not in regions:
        raise DeformationError(
            f"{labels.source}: level {level!r} not in the map; it holds {', '.join(regions)}"
        )
    region = regions[level]
    before = body_heights(region)
    if before is None:
        raise DeformationError(f"{labels.source}: {level} has no heights to deform (truncated?)")
    v_a, v_m, v_p = before.columns_v_mm
    frame, grid = region.frame, region.grid
    zone = ndimage.binary_dilation(region.body, iterations=2) & ~region.posterior
    ijk = np.argwhere(zone)
    local = frame.to_local(grid.to_world(ijk))
    u, v, w = local[:, 0], local[:, 1], local[:, 2]
    half_width = float(np.abs(region.body_local_mm[:, 0]).max())
    half_depth = before.ap_depth_mm / 2.0
    if kind == "wedge":
        s = np.clip(1.0 - loss * (v - v_p) / (v_a - v_p), _MIN_SCALE, 1.0)
    elif kind == "biconcave":
        rr = np.sqrt((u / half_width) ** 2 + ((v - v_m) / half_depth) ** 2)
        s = 1.0 - loss * _bump(rr)
    else:
        s = np.full_like(u, 1.0 - loss)
    source = frame.to_world(np.column_stack([u, v, w / s]))
    src_ijk = np.rint(grid.to_voxel(source)).astype(np.int64)
    inside = np.all((src_ijk >= 0) & (src_ijk < np.array(region.body.shape)), axis=1)
    keep = np.zeros(len(ijk), dtype=bool)
    keep[inside] = region.body[tuple(src_ijk[inside].T)]
    out = np.array(labels.labels, copy=True)
    crop = out[region.bbox]
    zone_ijk = tuple(ijk.T)
    was = crop[zone_ijk] == region.label
    crop[zone_ijk] = np.where(keep, region.label, np.where(was, 0, crop[zone_ijk]))
    return LabelVolume(out, labels.grid, f"{labels.source} ({level} {kind} {loss:.0%})"), before
