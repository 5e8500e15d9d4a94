"""Synthetic single-vertebra crops for the density/lesion/cement/risk tests.

A vertebra is drawn analytically in its own frame (right, anterior, superior), on a crop grid with
any spacing and rotation: an elliptic-cylinder body (half-width ``a``, half-depth ``b``, height
``h``) with a 1 mm cortical shell, two pedicles and a lamina arch behind it. Truth (lesion voxels,
pedicle voxels replaced) is counted on the voxels actually drawn, like the phantom's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.volume import Grid

CORTEX_HU = 850.0
POSTERIOR_HU = 500.0
SOFT_TISSUE_HU = 40.0


@dataclass(frozen=True)
class Sphere:
    radius_mm: float
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # right, anterior, superior
    hu: float = 30.0


@dataclass
class Synthetic:
    hu: npt.NDArray[np.float32]
    region: Any
    lesion_voxels: int  # voxels of the lesion spheres inside the body
    pedicle_left_voxels: int
    pedicle_right_voxels: int
    body_voxels: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lesion_ml(self) -> float:
        return self.lesion_voxels * self.region.grid.voxel_volume_ml


def rotation(tilt_deg: float, axis: str = "x") -> npt.NDArray[np.float64]:
    """A rotation matrix about world x (a sagittal tilt) or z."""
    t = math.radians(tilt_deg)
    c, s = math.cos(t), math.sin(t)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=np.float64)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)


def make_region_obj(
    *,
    level: VertebralLevel,
    grid: Grid,
    mask: npt.NDArray[np.bool_],
    body: npt.NDArray[np.bool_],
    origin_mm: npt.NDArray[np.float64],
    superior: npt.NDArray[np.float64],
    anterior: npt.NDArray[np.float64],
) -> Any:
    """A VertebraRegion of the drawn vertebra (its frame set by hand)."""
    right = np.cross(anterior, superior)
    bbox = (slice(0, mask.shape[0]), slice(0, mask.shape[1]), slice(0, mask.shape[2]))
    from spinewatch.imaging.anatomy import VertebraFrame, VertebraRegion

    frame = VertebraFrame(origin_mm=origin_mm, superior=superior, anterior=anterior, right=right)
    return VertebraRegion(
        level=level,
        label=0,
        bbox=bbox,
        grid=grid,
        mask=mask,
        body=body,
        posterior=mask & ~body,
        frame=frame,
        truncated=False,
        quality_flags=(),
    )


def make_vertebra(
    *,
    level: str = "L1",
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
    rot: npt.NDArray[np.float64] | None = None,
    voxel_rot: npt.NDArray[np.float64] | None = None,
    a_mm: float = 21.0,
    b_mm: float = 16.0,
    h_mm: float = 26.0,
    trabecular_hu: float = 200.0,
    lesions: tuple[Sphere, ...] = (),
    blastic: tuple[Sphere, ...] = (),
    cement: tuple[Sphere, ...] = (),
    noise_hu_sd: float = 10.0,
    seed: int = 0,
    with_posterior: bool = True,
) -> Synthetic:
    """One vertebra in a crop. ``rot`` maps local (right, anterior, superior) to world (its
    columns are the frame's axes); ``voxel_rot`` maps the voxel axes to world (the affine's
    direction cosines; identity = RAS voxel axes, independent of the vertebra's own tilt)."""
    rot = np.eye(3) if rot is None else np.asarray(rot, dtype=np.float64)
    vrot = np.eye(3) if voxel_rot is None else np.asarray(voxel_rot, dtype=np.float64)
    sp = np.asarray(spacing_mm, dtype=np.float64)
    # local extents: body + posterior elements behind it (to -b - 32 mm)
    lo = np.array([-a_mm - 6, -b_mm - 32, -h_mm / 2 - 6])
    hi = np.array([a_mm + 6, b_mm + 6, h_mm / 2 + 6])
    centre = np.array([10.0, -40.0, 300.0])
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    # the corners in the voxel axes' frame (world rotated by vrot)
    in_vox_frame = (rot @ corners.T).T @ vrot  # rows: coordinates along vrot's columns
    vlo, vhi = in_vox_frame.min(axis=0), in_vox_frame.max(axis=0)
    shape = tuple(math.ceil((vhi[i] - vlo[i]) / sp[i]) + 1 for i in range(3))
    affine = np.eye(4)
    affine[:3, :3] = vrot @ np.diag(sp)
    affine[:3, 3] = centre + vrot @ vlo
    grid = Grid(shape, affine)  # type: ignore[arg-type]
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1)
    local = (grid.to_world(ijk) - centre) @ rot  # (..., 3): right, anterior, superior
    u, v, w = local[..., 0], local[..., 1], local[..., 2]
    rr = np.sqrt((u / a_mm) ** 2 + (v / b_mm) ** 2)
    body = (rr <= 1.0) & (np.abs(w) <= h_mm / 2)
    d_rad = (1.0 - rr) * min(a_mm, b_mm)
    shell = body & ((d_rad < 1.0) | (h_mm / 2 - np.abs(w) < 1.0))
    hu = np.full(shape, SOFT_TISSUE_HU, dtype=np.float32)
    posterior = np.zeros(shape, dtype=bool)
    pedicle = np.zeros(shape, dtype=bool)
    if with_posterior:
        pu = 0.55 * a_mm
        pedicle = (
            ((np.abs(u) - pu) ** 2 / 16.0 + (w / 6.0) ** 2 <= 1.0)
            & (v <= -b_mm + 3)
            & (v >= -b_mm - 14)
        )
        canal = (u / 9.0) ** 2 + ((v + b_mm + 10) / 8.0) ** 2 <= 1.0
        ring = (u / 13.0) ** 2 + ((v + b_mm + 10) / 12.0) ** 2 <= 1.0
        lamina = ring & ~canal & (v <= -b_mm - 10) & (np.abs(w) <= 0.35 * h_mm)
        posterior = (pedicle | lamina) & ~body
        pedicle &= ~body
        hu[posterior] = POSTERIOR_HU
    hu[body] = trabecular_hu
    hu[shell] = CORTEX_HU
    lesion_body = np.zeros(shape, dtype=bool)
    ped_l = ped_r = 0
    for sph in lesions:
        ou, ov, ow = sph.offset_mm
        s = (u - ou) ** 2 + (v - ov) ** 2 + (w - ow) ** 2 <= sph.radius_mm**2
        in_ped = s & pedicle
        hu[(s & body) | in_ped] = sph.hu
        lesion_body |= s & body
        ped_l += int(np.count_nonzero(in_ped & (u < 0)))
        ped_r += int(np.count_nonzero(in_ped & (u > 0)))
    for sph in blastic:
        ou, ov, ow = sph.offset_mm
        s = (u - ou) ** 2 + (v - ov) ** 2 + (w - ow) ** 2 <= sph.radius_mm**2
        hu[s & body & ~shell] = sph.hu
    n_cement = 0
    for sph in cement:
        ou, ov, ow = sph.offset_mm
        s = ((u - ou) ** 2 + (v - ov) ** 2 + (w - ow) ** 2 <= sph.radius_mm**2) & body
        hu[s] = sph.hu
        n_cement += int(np.count_nonzero(s))
    if noise_hu_sd > 0:
        rng = np.random.default_rng(seed)
        hu += rng.standard_normal(shape).astype(np.float32) * np.float32(noise_hu_sd)
    mask = body | posterior
    idx = np.argwhere(body)
    origin_mm = grid.to_world(idx.mean(axis=0))
    region = make_region_obj(
        level=VertebralLevel.parse(level),
        grid=grid,
        mask=mask,
        body=body,
        origin_mm=origin_mm,
        superior=rot[:, 2].copy(),
        anterior=rot[:, 1].copy(),
    )
    return Synthetic(
        hu=np.rint(hu).astype(np.float32),
        region=region,
        lesion_voxels=int(np.count_nonzero(lesion_body)),
        pedicle_left_voxels=ped_l,
        pedicle_right_voxels=ped_r,
        body_voxels=int(np.count_nonzero(body)),
        extra={"n_cement": n_cement, "u": None},
    )
