"""A synthetic spine CT with known truth, for the demo, the tests and the benchmark.

The phantom is drawn analytically in each vertebra's own frame, so its truth does not depend on
the voxel grid:

* a spine curve in the sagittal plane (a mild lordosis/kyphosis, +-10 degrees) along which the
  vertebrae sit, each with its own frame: ``right`` = +x, ``superior`` = the curve's tangent,
  ``anterior`` = ``cross(superior, right)``; sizes grow caudally (C small, L big), and from T9
  to L5 the posterior heights follow the normal level-to-level ratios of
  :mod:`spinewatch.core.vertebral_shape`;
* vertebral bodies: elliptic cylinders (half-width ``a``, half-depth ``b``) with rounded rims,
  a ~1 mm cortical shell at 850 HU and trabecular bone at ``trabecular_hu``, in the **normal
  shape of their level** (:func:`spinewatch.core.vertebral_shape.normal_shape`): the height
  varies linearly across the depth so that ``Ha / Hp`` at the measuring columns is the level's
  normal ratio (mid-thoracic bodies slightly lower in front, L5 taller in front), with mean
  height ``H`` there, and both endplates are concave so that the middle height is the level's
  normal middle ratio times ``H``;
* posterior elements: pedicles (left/right), a lamina arch around the canal, a spinous process
  sloping caudally and transverse processes, at 500 HU;
* intervertebral discs (80 HU) between the endplates, soft tissue (40 HU) in an elliptic torso,
  air (-1000 HU) outside;
* deformities **relative to that normal shape**, symmetric about the body's mid-plane so the
  frame's ``superior`` axis stays the bisector of the endplate normals: ``wedge`` (anterior
  height reduced by the loss, endplates tilted further), ``biconcave`` (middle height reduced by
  the loss, deeper concave endplates with a flat bottom), ``crush`` (all heights reduced by
  the loss). The truth grade is Genant's grade of that loss -- the reduction against the
  level's normal shape, as :mod:`spinewatch.core.genant` grades it;
* lytic lesions: spheres at ``LesionSpec.hu`` replacing bone in the body and the pedicles;
* cement: an ellipsoid at 2500 HU inside the body.

Truth heights are those of the drawn geometry, measured along the body's ``superior`` axis on
the mid-sagittal line at 15 % (anterior), 50 % (middle) and 85 % (posterior) of the body's
antero-posterior depth -- the positions :mod:`spinewatch.imaging.heights` measures at. Truth
volumes and centroids are of the voxels actually drawn.

The volume is drawn on a canonical grid whose axes are nearest R, A, S (rotated by ``tilt_deg``
for an oblique affine) and then re-ordered to ``orientation`` with :mod:`nibabel.orientations`,
so two phantoms that differ only in orientation hold the same voxels (noise included) in another
order. ``spacing_mm`` and ``shape`` are given in the *output* array's axis order.

>>> p = make_spine_phantom(PhantomSpec(levels=("L1", "L2"), spacing_mm=(1.5, 1.5, 1.5)))
>>> sorted(p.truth)
['L1', 'L2']
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
import numpy.typing as npt
from nibabel import orientations as _nio

from spinewatch.core.conventions import LabelConvention, label_for_level
from spinewatch.core.errors import InputError
from spinewatch.core.levels import VertebralLevel
from spinewatch.core.vertebral_shape import normal_shape, posterior_step
from spinewatch.imaging import _phantom_anatomy as _anatomy
from spinewatch.imaging.volume import CtVolume, Grid, LabelVolume

__all__ = [
    "PHANTOM_LEVELS",
    "LesionSpec",
    "Phantom",
    "PhantomSpec",
    "PhantomSpecError",
    "VertebraTruth",
    "full_spine_spec",
    "make_spine_phantom",
    "write_phantom",
]

FloatArray = npt.NDArray[np.float64]
nio: Any = _nio  # nibabel is untyped
_nib: Any = nib

#: The levels the phantom can draw, cranio-caudal (no variants: no T13, no L6).
PHANTOM_LEVELS: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
)

AIR_HU = -1000.0
SOFT_TISSUE_HU = 40.0
DISC_HU = 80.0
CORTEX_HU = 850.0
POSTERIOR_HU = 500.0
CEMENT_HU = 2500.0
CORTEX_MM = 1.0
DEFORMITIES = ("none", "wedge", "biconcave", "crush")
#: Where heights are measured, as a fraction of the half-depth ``b`` from the body centre
#: (15 % / 85 % of the AP depth from the anterior edge -> v = +0.7 b / -0.7 b).
COLUMN_V_FRACTION = 0.7

# Size anchors (index in PHANTOM_LEVELS -> half-width a, half-depth b, height H, disc below), mm.
_ANCHORS = np.array(
    [
        # idx   a     b     H    disc
        [0.0, 9.0, 7.5, 11.0, 4.0],  # C1
        [6.0, 11.0, 8.5, 13.0, 4.5],  # C7
        [7.0, 13.0, 10.5, 15.0, 4.5],  # T1
        [13.0, 17.0, 13.5, 19.0, 5.0],  # T7
        [18.0, 20.0, 15.5, 22.7, 7.0],  # T12
        [19.0, 21.0, 16.0, 23.4, 8.0],  # L1
        [23.0, 24.0, 17.0, 26.0, 9.0],  # L5
    ]
)
_CURVE_AMPLITUDE_DEG = 10.0
_CURVE_WAVELENGTH_MM = 520.0
_CURVE_STEP_MM = 0.5
_SCOLIOSIS_WAVELENGTH_MM = 360.0


class PhantomSpecError(InputError):
    """A phantom specification that cannot be drawn (unknown level, deformity, orientation...)."""


@dataclass(frozen=True)
class LesionSpec:
    """A spherical lytic lesion.

    ``radius_mm``; ``offset_mm`` = (right, anterior, superior) from the body centre in the
    vertebra's frame, mm; ``hu`` the lesion's attenuation.
    """

    radius_mm: float
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    hu: float = 30.0


@dataclass(frozen=True)
class PhantomSpec:
    """What to draw. ``deformities``: level -> (type, height loss %); ``lesions``: level -> specs;
    ``cement``: levels with a cement cast; ``trabecular_hu``: level -> HU (default 200);
    ``shape``: output array shape (default: fitted to the drawn levels plus ``margin_mm``)."""

    levels: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3")
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    orientation: str = "RAS"
    tilt_deg: float = 0.0
    deformities: dict[str, tuple[str, float]] = field(default_factory=dict)
    lesions: dict[str, tuple[LesionSpec, ...]] = field(default_factory=dict)
    cement: tuple[str, ...] = ()
    trabecular_hu: dict[str, float] = field(default_factory=dict)
    noise_hu_sd: float = 10.0
    seed: int = 0
    truncate_top: bool = False
    convention: Literal["totalsegmentator", "verse"] = "totalsegmentator"
    shape: tuple[int, int, int] | None = None
    margin_mm: float = 12.0
    default_trabecular_hu: float = 200.0
    #: lateral (coronal) curve: amplitude in degrees of the column's tilt to the right/left,
    #: varying along it with a wavelength of ``_SCOLIOSIS_WAVELENGTH_MM`` (a Cobb angle of up
    #: to twice the amplitude); 0 draws today's straight coronal profile
    scoliosis_deg: float = 0.0
    #: draw the upper cervical spine as it is (:mod:`._phantom_anatomy`): C1 as a ring without
    #: a body around C2's dens, no C1/C2 disc, and cervical sizes from C2 to C7; False
    #: (default) draws every level as a body with its arch, bit-identical to earlier phantoms
    atlas: bool = False
    #: draw a pair of ribs on each thoracic vertebra (:mod:`._phantom_anatomy`); default none
    ribs: bool = False
    #: draw the sacrum with the alae and the iliac wings below L5 (when L5 is drawn), labelled
    #: as the convention's sacrum (no truth entry: it is not a level); default none
    sacrum: bool = False


@dataclass(frozen=True)
class VertebraTruth:
    """The known truth of one drawn vertebra (world RAS+ mm, ml, HU).

    ``height_*_mm``: the drawn heights; ``normal_*_mm``: the heights of the same body without
    its deformity (the level's normal shape); ``height_loss_pct`` and ``genant_grade``: the
    drawn deformity relative to that normal shape; ``nominal_height_mm``: the mean of the
    normal anterior and posterior heights.
    """

    level: str
    label: int
    body_centroid_mm: tuple[float, float, float]
    body_volume_ml: float
    superior: tuple[float, float, float]
    anterior: tuple[float, float, float]
    height_anterior_mm: float
    height_middle_mm: float
    height_posterior_mm: float
    nominal_height_mm: float
    deformity: str
    height_loss_pct: float
    genant_grade: int
    lytic_volume_ml: float
    posterior_wall_involved: bool
    pedicle_left_involved: bool
    pedicle_right_involved: bool
    trabecular_hu: float
    cement: bool
    cement_volume_ml: float
    truncated: bool
    normal_anterior_mm: float = 0.0
    normal_middle_mm: float = 0.0
    normal_posterior_mm: float = 0.0


@dataclass(frozen=True, eq=False)
class Phantom:
    """A drawn phantom: CT, label map (same grid) and the truth per level name."""

    ct: CtVolume
    labels: LabelVolume
    truth: dict[str, VertebraTruth]
    spec: PhantomSpec


@dataclass(frozen=True)
class _Geometry:
    level: str
    index: int
    centre: FloatArray  # world mm
    rot: FloatArray  # columns: right, anterior, superior (world)
    a: float
    b: float
    h: float  # mean of the normal anterior and posterior column heights, mm
    disc: float
    ratio_a: float = 1.0  # normal Ha / Hp at the measuring columns
    ratio_m: float = 1.0  # normal Hm / ((Ha + Hp) / 2): the endplate concavity


def full_spine_spec(**overrides: Any) -> PhantomSpec:
    """The benchmark phantom: C1..L5 (24 vertebrae) in a 512x512x600 grid, 0.7x0.7x1.0 mm."""
    base: dict[str, Any] = {
        "levels": PHANTOM_LEVELS,
        "spacing_mm": (0.7, 0.7, 1.0),
        "shape": (512, 512, 600),
        "margin_mm": 5.0,
    }
    base.update(overrides)
    return PhantomSpec(**base)


def _genant_grade(loss_pct: float) -> int:
    # Genant 1993 thresholds, written out here so the truth does not depend on the code under test.
    if loss_pct < 20.0:
        return 0
    if loss_pct < 25.0:
        return 1
    if loss_pct <= 40.0:
        return 2
    return 3


def _smoothstep(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    x = np.clip(x, 0.0, 1.0)
    out: npt.NDArray[Any] = x * x * (3.0 - 2.0 * x)
    return out


def _normal_mean_heights(anchor_h: FloatArray, ratio_a: FloatArray) -> FloatArray:
    """Mean wall height per level (mm) whose posterior heights follow the normal posterior
    steps of :mod:`spinewatch.core.vertebral_shape` from T9 to L5 (chained from L1's anchor),
    interpolated between T1's anchor and T9, and the anchors above T1."""
    hp = anchor_h * 2.0 / (1.0 + ratio_a)  # posterior column heights of the anchors
    idx = {name: i for i, name in enumerate(PHANTOM_LEVELS)}
    l1, t9, t1 = idx["L1"], idx["T9"], idx["T1"]
    for i in range(l1 - 1, t9 - 1, -1):  # T12 .. T9, cranially from L1
        hp[i] = hp[i + 1] / posterior_step(PHANTOM_LEVELS[i + 1]).mean
    for i in range(l1 + 1, len(hp)):  # L2 .. L5
        hp[i] = hp[i - 1] * posterior_step(PHANTOM_LEVELS[i]).mean
    hp[t1:t9] = np.interp(np.arange(t1, t9), [t1, t9], [hp[t1], hp[t9]])
    out: FloatArray = hp * (1.0 + ratio_a) / 2.0
    return out


def _spine_geometry(scoliosis_deg: float = 0.0, atlas: bool = False) -> list[_Geometry]:
    """Centres and frames of all PHANTOM_LEVELS along the curve (C1 centre at the origin).

    ``scoliosis_deg``: amplitude of the lateral tilt ``phi`` of the column (0: none, and the
    frames and centres are exactly those of the sagittal curve alone). ``atlas``: cervical sizes
    of :data:`._phantom_anatomy.CERVICAL_SIZES` (C1 placed around C2's dens)."""
    n = len(PHANTOM_LEVELS)
    sizes = np.stack(
        [np.interp(np.arange(n), _ANCHORS[:, 0], _ANCHORS[:, c]) for c in range(1, 5)], axis=1
    )
    shapes = [normal_shape(name) for name in PHANTOM_LEVELS]
    ratio_a = np.array([sh.anterior_ratio.mean for sh in shapes])
    sizes[:, 2] = _normal_mean_heights(sizes[:, 2], ratio_a)
    if atlas:
        for name, dims in _anatomy.CERVICAL_SIZES.items():
            sizes[PHANTOM_LEVELS.index(name)] = dims
    # arc length of each body centre, going caudally
    s_centres = np.zeros(n)
    for i in range(1, n):
        s_centres[i] = s_centres[i - 1] + sizes[i - 1, 2] / 2 + sizes[i - 1, 3] + sizes[i, 2] / 2
    s = np.arange(0.0, s_centres[-1] + _CURVE_STEP_MM, _CURVE_STEP_MM)
    theta = np.deg2rad(_CURVE_AMPLITUDE_DEG) * np.sin(2 * np.pi * (s + 60.0) / _CURVE_WAVELENGTH_MM)
    phi = np.deg2rad(scoliosis_deg) * np.sin(2 * np.pi * s / _SCOLIOSIS_WAVELENGTH_MM)
    # superior tangent t = (sin phi, sin theta cos phi, cos theta cos phi); going caudally the
    # position moves by -t ds
    dx = -np.sin(phi) * _CURVE_STEP_MM
    dy = -np.sin(theta) * np.cos(phi) * _CURVE_STEP_MM
    dz = -np.cos(theta) * np.cos(phi) * _CURVE_STEP_MM
    x = np.concatenate([[0.0], np.cumsum((dx[1:] + dx[:-1]) / 2)])
    y = np.concatenate([[0.0], np.cumsum((dy[1:] + dy[:-1]) / 2)])
    z = np.concatenate([[0.0], np.cumsum((dz[1:] + dz[:-1]) / 2)])
    out: list[_Geometry] = []
    for i, name in enumerate(PHANTOM_LEVELS):
        th = float(np.interp(s_centres[i], s, theta))
        ph = float(np.interp(s_centres[i], s, phi))
        centre = np.array(
            [
                np.interp(s_centres[i], s, x),
                np.interp(s_centres[i], s, y),
                np.interp(s_centres[i], s, z),
            ]
        )
        superior = np.array(
            [math.sin(ph), math.sin(th) * math.cos(ph), math.cos(th) * math.cos(ph)]
        )
        right = np.array([math.cos(ph), 0.0, -math.sin(ph)])
        right -= float(right @ superior) * superior
        right /= float(np.linalg.norm(right))
        anterior = np.cross(superior, right)
        rot = np.stack([right, anterior, superior], axis=1)
        a, b, h, disc = (float(v) for v in sizes[i])
        ratio_m = shapes[i].middle_ratio.mean
        out.append(_Geometry(name, i, centre, rot, a, b, h, disc, float(ratio_a[i]), ratio_m))
    return out


def _posterior_dims(g: _Geometry) -> dict[str, float]:
    ru = max(0.42 * g.a, 6.0)
    rv = max(0.45 * g.b, 5.5)
    return {
        "ru": ru,
        "rv": rv,
        "vc": -g.b - rv + 1.5,
        "pw": max(0.2 * g.a, 2.5),
        "ph": 0.3 * g.h,
        "pz": 0.12 * g.h,
        "t": max(0.18 * g.a, 3.0),
        "lsp": 1.2 * g.b,
        "sw": max(0.12 * g.a, 2.5),
        "tp": 0.7 * g.a,
    }


def _local_extent(g: _Geometry) -> tuple[FloatArray, FloatArray]:
    """(lo, hi) of the vertebra (with half discs) in its local (u, v, w) coordinates, mm."""
    d = _posterior_dims(g)
    u = d["ru"] + d["pw"] + d["tp"] + 2.0
    v_lo = d["vc"] - d["rv"] - d["t"] - d["lsp"] - 2.0
    w = g.h / 2 + g.disc / 2 + 0.3 * d["lsp"] + 3.0
    return np.array([-u, v_lo, -w]), np.array([u, g.b + 2.0, w])


def _corners(lo: npt.ArrayLike, hi: npt.ArrayLike) -> FloatArray:
    """The 8 corners of the box [lo, hi], shape (8, 3)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    pick = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=bool)
    return np.where(pick, hi, lo)


def _extra_extent(spec: PhantomSpec, g: _Geometry) -> tuple[FloatArray, FloatArray] | None:
    """The local box of what ``spec`` draws beyond a plain vertebra (ribs, the atlas and the
    dens; see :mod:`._phantom_anatomy`), or None."""
    lo, hi = _local_extent(g)
    if spec.ribs and g.level.startswith("T"):
        reach, low = _anatomy.rib_extent(g.a, g.h)
        return np.array([-reach, lo[1], min(lo[2], low)]), np.array([reach, hi[1], hi[2]])
    if spec.sacrum and g.level == "L5":
        reach, low, high = _anatomy.sacrum_extent(g.h, g.disc)
        return np.array([-reach, -50.0, low]), np.array([reach, 60.0, max(hi[2], high)])
    if spec.atlas and g.level == "C1":
        r = _anatomy.ATLAS_LATERAL_MM + 2.0
        return np.array([-r, -30.0, lo[2]]), np.array([r, 15.0, hi[2]])
    if spec.atlas and g.level == "C2":
        top = g.h / 2 + _anatomy.DENS_HEIGHT_MM + 2.0
        return lo, np.array([hi[0], hi[1], max(hi[2], top)])
    return None


def _world_bbox(
    g: _Geometry, extent: tuple[FloatArray, FloatArray] | None = None
) -> tuple[FloatArray, FloatArray]:
    lo, hi = _local_extent(g) if extent is None else extent
    corners = _corners(lo, hi)
    world = corners @ g.rot.T + g.centre
    return world.min(axis=0), world.max(axis=0)


def _height_field(
    g: _Geometry, deformity: str, loss: float, u: npt.NDArray[Any], v: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """Body height H(u, v) in mm: the level's normal shape, then the deformity at ``loss``
    (fraction) relative to it.

    Normal shape: linear across the depth with ``Ha / Hp = g.ratio_a`` at the measuring columns
    (``v = +-COLUMN_V_FRACTION * b``) and mean ``g.h`` there, times a central concavity that
    lowers the middle to ``g.ratio_m * g.h`` (a smooth dome, flat within 25 % of the radius,
    gone beyond 60 %, so the anterior and posterior columns keep the wall heights).
    """
    vf = COLUMN_V_FRACTION * g.b
    rr = np.sqrt((u / g.a) ** 2 + (v / g.b) ** 2)
    bump = 1.0 - _smoothstep((rr - 0.25) / 0.35)
    slope = (g.ratio_a - 1.0) / (g.ratio_a + 1.0)
    normal = g.h * (1.0 + slope * v / vf) * (1.0 - (1.0 - g.ratio_m) * bump)
    if deformity == "wedge":
        return normal * (1.0 - loss * (v + vf) / (2 * vf))
    if deformity == "biconcave":
        return normal * (1.0 - loss * bump)
    if deformity == "crush":
        return normal * (1.0 - loss)
    return normal


def _truth_heights(g: _Geometry, deformity: str, loss: float) -> tuple[float, float, float]:
    vs = np.array([COLUMN_V_FRACTION * g.b, 0.0, -COLUMN_V_FRACTION * g.b])
    hs = _height_field(g, deformity, loss, np.zeros(3), vs)
    return float(hs[0]), float(hs[1]), float(hs[2])


def _canonical_grid(
    spec: PhantomSpec, geoms: list[_Geometry], target: npt.NDArray[Any]
) -> tuple[Grid, tuple[int, int, int]]:
    """The canonical (R, A, S-nearest, tilted) grid covering the drawn levels."""
    tilt = math.radians(spec.tilt_deg)
    # rotation about R by tilt, then about S by tilt/2: a truly oblique affine
    rx = np.array(
        [[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)], [0, math.sin(tilt), math.cos(tilt)]]
    )
    t2 = tilt / 2
    rz = np.array([[math.cos(t2), -math.sin(t2), 0], [math.sin(t2), math.cos(t2), 0], [0, 0, 1]])
    rot = rz @ rx
    spacing = np.zeros(3)
    for out_axis, (world_axis, _flip) in enumerate(target):
        spacing[int(world_axis)] = spec.spacing_mm[out_axis]
    lows, highs = zip(*(_world_bbox(g, _extra_extent(spec, g)) for g in geoms), strict=True)
    world_lo, world_hi = np.min(lows, axis=0), np.max(highs, axis=0)
    corners = _corners(world_lo, world_hi)
    local = corners @ rot  # coordinates along the rotated axes
    lo = local.min(axis=0) - spec.margin_mm
    hi = local.max(axis=0) + spec.margin_mm
    if spec.truncate_top:
        top = geoms[0].centre @ rot
        hi[2] = top[2]
    if spec.shape is not None:
        shape_c = np.zeros(3, dtype=int)
        for out_axis, (world_axis, _flip) in enumerate(target):
            shape_c[int(world_axis)] = spec.shape[out_axis]
        centre = (lo + hi) / 2
        if spec.truncate_top:
            lo[2] = hi[2] - (shape_c[2] - 1) * spacing[2]
        else:
            lo = centre - (shape_c - 1) * spacing / 2
    else:
        shape_c = np.ceil((hi - lo) / spacing).astype(int) + 1
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(spacing)
    affine[:3, 3] = rot @ lo
    shape = (int(shape_c[0]), int(shape_c[1]), int(shape_c[2]))
    return Grid(shape, affine), shape


def _validate(spec: PhantomSpec) -> tuple[list[str], npt.NDArray[Any]]:
    levels = [str(VertebralLevel.parse(x)) for x in spec.levels]
    for name in levels:
        if name not in PHANTOM_LEVELS:
            raise PhantomSpecError(
                f"phantom level {name!r} cannot be drawn; expected one of C1..L5"
            )
    if len(set(levels)) != len(levels) or not levels:
        raise PhantomSpecError(f"phantom levels {spec.levels!r} must be distinct and non-empty")
    idx = [PHANTOM_LEVELS.index(x) for x in levels]
    if idx != sorted(idx) or idx[-1] - idx[0] != len(idx) - 1:
        raise PhantomSpecError(
            f"phantom levels {spec.levels!r} must be contiguous and in cranio-caudal order"
        )
    for key in (*spec.deformities, *spec.lesions, *spec.cement, *spec.trabecular_hu):
        if str(VertebralLevel.parse(key)) not in levels:
            raise PhantomSpecError(
                f"phantom spec names level {key!r}, which is not drawn: {levels}"
            )
    for key, (kind, loss) in spec.deformities.items():
        if kind not in DEFORMITIES:
            raise PhantomSpecError(f"deformity {kind!r} for {key}: expected one of {DEFORMITIES}")
        if not 0.0 <= loss < 70.0:
            raise PhantomSpecError(f"height loss {loss!r} % for {key}: expected 0 <= loss < 70")
    if len(spec.spacing_mm) != 3 or not all(0.2 <= s <= 5.0 for s in spec.spacing_mm):
        raise PhantomSpecError(f"spacing_mm {spec.spacing_mm!r}: expected three sizes in 0.2..5 mm")
    code = tuple(spec.orientation.upper())
    try:
        target = nio.axcodes2ornt(code)
    except Exception as exc:
        raise PhantomSpecError(
            f"orientation {spec.orientation!r}: expected axis codes like 'LPS'"
        ) from exc
    if len(code) != 3 or np.isnan(target).any() or sorted(target[:, 0].tolist()) != [0, 1, 2]:
        raise PhantomSpecError(f"orientation {spec.orientation!r}: expected axis codes like 'LPS'")
    if abs(spec.tilt_deg) > 30.0:
        raise PhantomSpecError(f"tilt_deg {spec.tilt_deg!r}: expected at most 30 degrees")
    if spec.noise_hu_sd < 0:
        raise PhantomSpecError(f"noise_hu_sd {spec.noise_hu_sd!r}: expected >= 0")
    return levels, np.asarray(target)


def _local_coords(
    grid: Grid, g: _Geometry, bbox: tuple[slice, slice, slice]
) -> tuple[npt.NDArray[np.float32], ...]:
    """Local (u, v, w) mm of the voxel centres in ``bbox``, broadcast arrays of the bbox shape."""
    m = g.rot.T @ grid.affine[:3, :3]
    m0 = g.rot.T @ (grid.affine[:3, 3] - g.centre)
    i = np.arange(bbox[0].start, bbox[0].stop, dtype=np.float32)[:, None, None]
    j = np.arange(bbox[1].start, bbox[1].stop, dtype=np.float32)[None, :, None]
    k = np.arange(bbox[2].start, bbox[2].stop, dtype=np.float32)[None, None, :]
    out = []
    for r in range(3):
        out.append(
            (i * np.float32(m[r, 0]) + j * np.float32(m[r, 1]))
            + (k * np.float32(m[r, 2]) + np.float32(m0[r]))
        )
    return tuple(out)


def _bbox_for(
    grid: Grid,
    g: _Geometry,
    extra_mm: float = 0.0,
    extent: tuple[FloatArray, FloatArray] | None = None,
) -> tuple[slice, slice, slice] | None:
    lo, hi = _local_extent(g) if extent is None else extent
    lo, hi = lo - extra_mm, hi + extra_mm
    corners = _corners(lo, hi)
    ijk = grid.to_voxel(corners @ g.rot.T + g.centre)
    a = np.maximum(np.floor(ijk.min(axis=0)).astype(int), 0)
    b = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, np.array(grid.shape))
    if np.any(b <= a):
        return None
    return (slice(int(a[0]), int(b[0])), slice(int(a[1]), int(b[1])), slice(int(a[2]), int(b[2])))


def _draw_torso(hu: npt.NDArray[np.float32], grid: Grid, spine_y: float) -> None:
    """Soft tissue inside an elliptic torso (a cylinder along world z), air outside."""
    ni, nj, nk = grid.shape
    a3 = grid.affine
    i = np.arange(ni, dtype=np.float32)[:, None]
    j = np.arange(nj, dtype=np.float32)[None, :]
    step = 32
    for k0 in range(0, nk, step):
        k = np.arange(k0, min(k0 + step, nk), dtype=np.float32)[None, None, :]
        x = (i * a3[0, 0] + j * a3[0, 1])[:, :, None] + k * a3[0, 2] + a3[0, 3]
        y = (i * a3[1, 0] + j * a3[1, 1])[:, :, None] + k * a3[1, 2] + a3[1, 3]
        inside = (x / 150.0) ** 2 + ((y - spine_y - 40.0) / 115.0) ** 2 <= 1.0
        hu[:, :, k0 : k0 + step] = np.where(inside, SOFT_TISSUE_HU, AIR_HU)


def make_spine_phantom(spec: PhantomSpec) -> Phantom:
    """Draw the phantom described by ``spec`` (see the module docstring for the geometry)."""
    levels, target = _validate(spec)
    convention = LabelConvention(spec.convention)
    all_geoms = _spine_geometry(spec.scoliosis_deg, spec.atlas)
    by_name = {g.level: g for g in all_geoms}
    geoms = [by_name[x] for x in levels]
    grid, shape = _canonical_grid(spec, geoms, target)
    drawing = _Drawing.of(spec, convention)

    hu = np.empty(shape, dtype=np.float32)
    _draw_torso(hu, grid, float(np.mean([g.centre[1] for g in geoms])))
    lab = np.zeros(shape, dtype=np.uint8)
    _draw_discs(hu, grid, all_geoms, geoms, drawing)
    if spec.sacrum and by_name["L5"] in geoms:
        _draw_sacrum(hu, lab, grid, by_name["L5"], drawing)
    drawn = {g.level: _draw_vertebra(hu, lab, grid, g, drawing) for g in geoms}
    _add_noise(hu, spec)
    hu_i16 = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    del hu
    truth = {g.level: _vertebra_truth(g, drawn[g.level], lab, grid, drawing) for g in geoms}
    ct, labels = _reoriented(hu_i16, lab, grid, target, levels, spec)
    return Phantom(ct=ct, labels=labels, truth=truth, spec=spec)


@dataclass(frozen=True)
class _Drawing:
    """What ``spec`` draws, by level name: deformities, lesions, cement, trabecular HU."""

    spec: PhantomSpec
    convention: LabelConvention
    deform: dict[str, tuple[str, float]]
    lesions: dict[str, tuple[LesionSpec, ...]]
    cement: set[str]
    trab: dict[str, float]

    @classmethod
    def of(cls, spec: PhantomSpec, convention: LabelConvention) -> _Drawing:
        return cls(
            spec=spec,
            convention=convention,
            deform={str(VertebralLevel.parse(k)): v for k, v in spec.deformities.items()},
            lesions={str(VertebralLevel.parse(k)): v for k, v in spec.lesions.items()},
            cement={str(VertebralLevel.parse(k)) for k in spec.cement},
            trab={str(VertebralLevel.parse(k)): v for k, v in spec.trabecular_hu.items()},
        )

    def surfaces(self, g: _Geometry, u: npt.NDArray[Any], v: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Half the body's height at local (u, v), mm: its endplates at +- this."""
        kind, loss = self.deform.get(g.level, ("none", 0.0))
        return _height_field(g, kind, loss / 100.0, u, v) / 2.0

    def label_of(self, g: _Geometry) -> int:
        return label_for_level(VertebralLevel.parse(g.level), self.convention)


@dataclass(frozen=True)
class _Drawn:
    """One drawn vertebra: its box, body mask, lesion and cement voxels and involvement."""

    bbox: tuple[slice, slice, slice]
    body: npt.NDArray[np.bool_]
    n_lesion: int
    posterior_wall: bool
    pedicle_left: bool
    pedicle_right: bool
    n_cement: int


def _draw_discs(
    hu: npt.NDArray[np.float32],
    grid: Grid,
    all_geoms: list[_Geometry],
    geoms: list[_Geometry],
    drawing: _Drawing,
) -> None:
    """Discs between every adjacent pair touching a drawn level (drawn first: the vertebrae
    overwrite them)."""
    surfaces = drawing.surfaces
    first, last = all_geoms.index(geoms[0]), all_geoms.index(geoms[-1])
    for up_i in range(max(first - 1, 0), min(last + 1, len(all_geoms) - 1)):
        up, lo_g = all_geoms[up_i], all_geoms[up_i + 1]
        if drawing.spec.atlas and up.level == "C1":
            continue  # no disc between the atlas and the axis
        bbox = _bbox_for(grid, up)
        if bbox is None:
            continue
        u1, v1, w1 = _local_coords(grid, up, bbox)
        u2, v2, w2 = _local_coords(grid, lo_g, bbox)
        a, b = (up.a + lo_g.a) / 2, (up.b + lo_g.b) / 2
        in_ellipse = (u1 / a) ** 2 + (v1 / b) ** 2 <= 1.0
        below_up = (w1 < -surfaces(up, u1, v1)) & (w1 > -up.h / 2 - up.disc - 6.0)
        above_lo = (w2 > surfaces(lo_g, u2, v2)) & (w2 < lo_g.h / 2 + lo_g.disc + 6.0)
        disc = in_ellipse & below_up & above_lo
        hu[bbox][disc] = DISC_HU


def _draw_vertebra(
    hu: npt.NDArray[np.float32],
    lab: npt.NDArray[np.uint8],
    grid: Grid,
    g: _Geometry,
    drawing: _Drawing,
) -> _Drawn:
    """Draw one vertebra -- body with its cortex, posterior elements, lesions, cement -- into
    ``hu`` and ``lab``; return what was drawn."""
    spec, lesions, cement, trab = drawing.spec, drawing.lesions, drawing.cement, drawing.trab
    surfaces = drawing.surfaces
    shape = hu.shape
    bbox = _bbox_for(grid, g, extent=_extra_extent(spec, g))
    if bbox is None:
        raise PhantomSpecError(f"level {g.level} falls outside the phantom grid {shape}")
    u, v, w = _local_coords(grid, g, bbox)
    if spec.atlas and g.level == "C1":
        return _draw_atlas(hu, lab, bbox, (u, v, w), drawing.label_of(g))
    half = surfaces(g, u, v)
    rr = np.sqrt((u / g.a) ** 2 + (v / g.b) ** 2)
    d_end = half - np.abs(w)
    # rounded rim: within 2 mm of an endplate the allowed radius shrinks along a quarter circle
    r_e = 2.0
    shrink = np.where(
        d_end < r_e, r_e - np.sqrt(np.clip(r_e**2 - (r_e - d_end) ** 2, 0.0, None)), 0.0
    )
    scale = min(g.a, g.b)
    body = (d_end >= 0) & (rr <= 1.0 - shrink / scale)
    d_rad = (1.0 - rr) * scale
    shell = body & ((d_rad < CORTEX_MM) | (d_end < CORTEX_MM))

    d = _posterior_dims(g)
    cu, cv = d["ru"], d["rv"]
    canal = (u / cu) ** 2 + ((v - d["vc"]) / cv) ** 2 <= 1.0
    ped_u = np.abs(u) - (cu + d["pw"])
    pedicle = (
        ((ped_u / d["pw"]) ** 2 + ((w - d["pz"]) / d["ph"]) ** 2 <= 1.0)
        & (v <= -0.6 * g.b)
        & (v >= d["vc"] - 1.0)
    )
    ring = ((u / (cu + d["t"])) ** 2 + ((v - d["vc"]) / (cv + d["t"])) ** 2 <= 1.0) & (v <= d["vc"])
    lamina = ring & (np.abs(w - 0.05 * g.h) <= 0.35 * g.h)
    v_sp0 = d["vc"] - cv - 0.5 * d["t"]
    dist = v_sp0 - v
    spinous = (
        (np.abs(u) <= d["sw"])
        & (dist >= 0)
        & (dist <= d["lsp"])
        & (np.abs(w - (0.05 * g.h - 0.3 * dist)) <= 0.25 * g.h)
    )
    transverse = (
        (np.abs(w - 0.1 * g.h) <= max(0.12 * g.h, 2.0))
        & (np.abs(v - d["vc"]) <= 3.0)
        & (np.abs(u) >= cu)
        & (np.abs(u) <= cu + d["pw"] + d["tp"])
    )
    posterior = (pedicle | lamina | spinous | transverse) & ~canal & ~body
    label_value = drawing.label_of(g)

    region_hu = hu[bbox]
    region_lab = lab[bbox]
    if spec.ribs and g.level.startswith("T"):  # ribs are not the vertebra: left unlabelled
        region_hu[_anatomy.ribs(u, v, w, g.a, g.b, g.h) & ~body & ~posterior] = POSTERIOR_HU
    region_hu[posterior] = POSTERIOR_HU
    region_hu[body] = trab.get(g.level, spec.default_trabecular_hu)
    region_hu[shell] = CORTEX_HU
    if spec.atlas and g.level == "C2":
        dens, dens_cortex = _anatomy.dens(u, v, w, g.h / 2)
        dens &= ~body
        region_hu[dens] = trab.get(g.level, spec.default_trabecular_hu)
        region_hu[dens_cortex & dens] = CORTEX_HU
        posterior |= dens
    n_lesion = 0
    pw_inv = pl_inv = pr_inv = False
    for les in lesions.get(g.level, ()):
        ou, ov, ow = les.offset_mm
        sphere = (u - ou) ** 2 + (v - ov) ** 2 + (w - ow) ** 2 <= les.radius_mm**2
        in_body = sphere & body
        in_ped = sphere & pedicle & ~body
        region_hu[in_body | in_ped] = les.hu
        pw_inv |= bool(np.any(in_body & (d_rad < 1.5 * CORTEX_MM) & (v < 0) & (np.abs(u) <= cu)))
        pl_inv |= bool(np.any(in_ped & (u < 0)))
        pr_inv |= bool(np.any(in_ped & (u > 0)))
    if lesions.get(g.level):
        all_les = np.zeros(body.shape, dtype=bool)
        for les in lesions[g.level]:
            ou, ov, ow = les.offset_mm
            all_les |= (u - ou) ** 2 + (v - ov) ** 2 + (w - ow) ** 2 <= les.radius_mm**2
        n_lesion = int(np.count_nonzero(all_les & body))
    n_cement = 0
    if g.level in cement:
        blob = (u / (0.45 * g.a)) ** 2 + (v / (0.45 * g.b)) ** 2 + (w / (0.3 * g.h)) ** 2 <= 1.0
        blob &= body
        region_hu[blob] = CEMENT_HU
        n_cement = int(np.count_nonzero(blob))
    region_lab[body | posterior] = label_value
    return _Drawn(bbox, body, n_lesion, pw_inv, pl_inv, pr_inv, n_cement)


#: The sacrum's id per label convention (it is not a vertebral level of the truth).
_SACRUM_LABEL = {LabelConvention.TOTALSEGMENTATOR: 25, LabelConvention.VERSE: 26}


def _draw_sacrum(
    hu: npt.NDArray[np.float32],
    lab: npt.NDArray[np.uint8],
    grid: Grid,
    l5: _Geometry,
    drawing: _Drawing,
) -> None:
    """The lumbosacral disc, the sacrum and the ilia below L5 (:func:`._phantom_anatomy.sacrum`),
    drawn before the vertebrae (L5's body overwrites the disc where its endplate dips)."""
    bbox = _bbox_for(grid, l5, extent=_extra_extent(drawing.spec, l5))
    if bbox is None:
        return
    u, v, w = _local_coords(grid, l5, bbox)
    disc, body, cortex, wings = _anatomy.sacrum(u, v, w, l5.a, l5.b, l5.h, l5.disc)
    region_hu, region_lab = hu[bbox], lab[bbox]
    region_hu[disc] = DISC_HU
    region_hu[wings] = POSTERIOR_HU
    region_hu[body] = drawing.spec.default_trabecular_hu
    region_hu[cortex] = CORTEX_HU
    region_lab[body | wings] = _SACRUM_LABEL[drawing.convention]


def _draw_atlas(
    hu: npt.NDArray[np.float32],
    lab: npt.NDArray[np.uint8],
    bbox: tuple[slice, slice, slice],
    uvw: tuple[npt.NDArray[np.float32], ...],
    label_value: int,
) -> _Drawn:
    """The atlas (C1) as a ring without a body (:func:`._phantom_anatomy.atlas_ring`); its
    truth "body" is the ring (its centroid and volume)."""
    ring = _anatomy.atlas_ring(*uvw)
    hu[bbox][ring] = POSTERIOR_HU
    lab[bbox][ring] = label_value
    return _Drawn(bbox, ring, 0, False, False, False, 0)


def _add_noise(hu: npt.NDArray[np.float32], spec: PhantomSpec) -> None:
    """Gaussian noise of ``spec.noise_hu_sd`` HU, drawn slab by slab (bounded memory)."""
    shape = hu.shape
    if spec.noise_hu_sd > 0:
        rng = np.random.default_rng(spec.seed)
        step = 16
        for k0 in range(0, shape[2], step):
            slab = hu[:, :, k0 : k0 + step]
            slab += rng.standard_normal(slab.shape, dtype=np.float32) * np.float32(spec.noise_hu_sd)


def _vertebra_truth(
    g: _Geometry, drawn: _Drawn, lab: npt.NDArray[np.uint8], grid: Grid, drawing: _Drawing
) -> VertebraTruth:
    """The known truth of one drawn vertebra (world RAS+ mm, ml, HU)."""
    spec, deform, trab = drawing.spec, drawing.deform, drawing.trab
    shape = lab.shape
    vox_ml = grid.voxel_volume_ml
    sup_axis = grid.axis_closest_to(2)
    bbox, body = drawn.bbox, drawn.body
    # ijk of body voxels: the truth centroid comes from the voxels drawn, in world mm
    idx = np.argwhere(body).astype(np.float64) + [s.start for s in bbox]
    centroid = grid.to_world(idx.mean(axis=0))
    lab_here = lab[bbox] == drawing.label_of(g)
    n_sup = shape[sup_axis]
    sl: list[slice] = [slice(None)] * 3
    lo_k = bbox[sup_axis].start
    hi_k = bbox[sup_axis].stop
    touches = False
    if lo_k == 0:
        sl[sup_axis] = slice(0, 1)
        touches |= bool(lab_here[tuple(sl)].any())
    if hi_k == n_sup:
        sl[sup_axis] = slice(-1, None)
        touches |= bool(lab_here[tuple(sl)].any())
    kind, loss = deform.get(g.level, ("none", 0.0))
    ha, hm, hp = _truth_heights(g, kind, loss / 100.0)
    na, nm, np_ = _truth_heights(g, "none", 0.0)
    grade = _genant_grade(loss) if kind != "none" else 0
    n_les, pw_inv, pl_inv, pr_inv, n_cem = (
        drawn.n_lesion,
        drawn.posterior_wall,
        drawn.pedicle_left,
        drawn.pedicle_right,
        drawn.n_cement,
    )
    return VertebraTruth(
        level=g.level,
        label=drawing.label_of(g),
        body_centroid_mm=(float(centroid[0]), float(centroid[1]), float(centroid[2])),
        body_volume_ml=float(np.count_nonzero(body) * vox_ml),
        superior=tuple(float(x) for x in g.rot[:, 2]),  # type: ignore[arg-type]
        anterior=tuple(float(x) for x in g.rot[:, 1]),  # type: ignore[arg-type]
        height_anterior_mm=ha,
        height_middle_mm=hm,
        height_posterior_mm=hp,
        nominal_height_mm=g.h,
        deformity=kind if grade > 0 else "none",
        height_loss_pct=float(loss),
        genant_grade=grade,
        lytic_volume_ml=n_les * vox_ml,
        posterior_wall_involved=pw_inv,
        pedicle_left_involved=pl_inv,
        pedicle_right_involved=pr_inv,
        trabecular_hu=float(trab.get(g.level, spec.default_trabecular_hu)),
        cement=n_cem > 0,
        cement_volume_ml=n_cem * vox_ml,
        truncated=touches,
        normal_anterior_mm=na,
        normal_middle_mm=nm,
        normal_posterior_mm=np_,
    )


def _reoriented(
    hu_i16: npt.NDArray[np.int16],
    lab: npt.NDArray[np.uint8],
    grid: Grid,
    target: npt.NDArray[Any],
    levels: list[str],
    spec: PhantomSpec,
) -> tuple[CtVolume, LabelVolume]:
    """The voxels re-ordered to the requested orientation: same physical truth, another voxel
    order."""
    shape = hu_i16.shape
    src = nio.axcodes2ornt(("R", "A", "S"))
    xform = nio.ornt_transform(src, target)
    out_hu = np.ascontiguousarray(nio.apply_orientation(hu_i16, xform))
    out_lab = np.ascontiguousarray(nio.apply_orientation(lab, xform))
    out_affine = grid.affine @ nio.inv_ornt_aff(xform, shape)
    out_grid = Grid((out_hu.shape[0], out_hu.shape[1], out_hu.shape[2]), out_affine)
    source = f"phantom({','.join(levels)}; {spec.orientation}; {spec.spacing_mm})"
    return (
        CtVolume(out_hu, out_grid, source, {"phantom": True}),
        LabelVolume(out_lab, out_grid, source),
    )


def write_phantom(phantom: Phantom, directory: Path) -> tuple[Path, Path, Path]:
    """Write ``ct.nii.gz`` (int16 HU), ``labels.nii.gz`` (uint8) and ``truth.json`` into
    ``directory`` (created when missing); returns the three paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ct_path = directory / "ct.nii.gz"
    lab_path = directory / "labels.nii.gz"
    truth_path = directory / "truth.json"
    affine = phantom.ct.grid.affine
    ct_img = _nib.Nifti1Image(phantom.ct.hu, affine)
    ct_img.header.set_xyzt_units("mm")
    ct_img.header.set_sform(affine, code=1)
    ct_img.header.set_qform(affine, code=1)
    _nib.save(ct_img, ct_path)
    lab_img = _nib.Nifti1Image(phantom.labels.labels, affine)
    lab_img.header.set_xyzt_units("mm")
    lab_img.header.set_sform(affine, code=1)
    lab_img.header.set_qform(affine, code=1)
    _nib.save(lab_img, lab_path)
    spec = asdict(phantom.spec)
    payload = {
        "spec": spec,
        "convention": phantom.spec.convention,
        "vertebrae": [asdict(t) for t in phantom.truth.values()],
    }
    truth_path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return ct_path, lab_path, truth_path
