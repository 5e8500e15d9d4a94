"""Synthetic lytic lesions written into a real CT crop around a labelled vertebra, with their truth.

Why: a detector tuned on phantoms (homogeneous bone, white noise) may fail on real trabecular
texture, partial volume and scanner noise. Inserting lesions of known size, shape, density and
position into *real* vertebrae measures it where it has to work.

What :func:`insert_lesion` does, all in world mm through the crop's affine and the vertebra's own
frame (``region.frame``: right, anterior, superior):

* **Shape** (in the vertebra frame, scaled to the requested volume): ``sphere``; ``ellipsoid``
  (semi-axes in a ratio of up to ~2.2, random orientation); ``lobulated`` (the union of 2-4
  overlapping spheres); and a look-alike, ``channel`` (:data:`LOOK_ALIKE_SHAPES`). The scale is
  iterated until the volume *inside the confinement* (see below) matches the request (within
  ~2 %); the truth is what was actually written.
* **Place**: ``central`` (around the body centroid, with no lesion voxel within
  :data:`CENTRAL_WALL_GAP_MM` (and two voxels) + the wall zone of the posterior wall:
  unambiguously not involving it), ``posterior_wall`` (at the mid-sagittal posterior wall,
  reaching through it), or ``pedicle_left``/``pedicle_right`` (centred on the pedicle base:
  posterior-element voxels of that side next to the body, reaching into the body).
* **Confinement**: the lesion exists only in the vertebral body (``region.body``), and for a
  pedicle case also in the posterior-element voxels of that side within
  :data:`PEDICLE_REACH_MM` of the body.
* **Partial volume**: each voxel is sampled at ``SUPERSAMPLE**3`` (64) points and the lesion
  fraction ``f`` is the share inside the shape; the truth volume is exactly ``sum(f) x voxel``.
* **Density and noise**: ``new = (1 - f) x old + f x lesion_hu + sqrt(1 - (1 - f)**2) x n`` where
  ``n`` is noise of the scan's own SD and neighbour correlation (:func:`estimate_noise`,
  :func:`synthesize_noise`), so the lesion carries the scan's noise, not the bone's texture, and
  a partial-volume voxel keeps the full noise variance.
* **Truth**: volume (total, in the body, in each pedicle), the lesion volume in the posterior wall
  zone (body voxels within :data:`WALL_ZONE_MM` of the posterior surface, measured by marching
  along ``-anterior``: :func:`posterior_distance_mm`), the gap between the lesion and the wall,
  and the involvement flags derived from them.

:func:`with_trabecular_background` moves a real vertebra's trabecular background to a target HU
(osteoporotic: ~60-110 HU; or a denser, normal one) keeping its texture and noise: the smooth
local mean ``m`` (normalised Gaussian over the non-cortical voxels) is mapped to
``target + alpha x (m - background)`` (``alpha = target / background``) and every voxel keeps its
deviation from ``m``.

Everything is deterministic for a given ``seed``. Arrays are crops ``[i, j, k]`` on
``region.grid`` (the shape of ``region.mask``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinewatch.core.errors import InputError
from spinewatch.imaging.density import check_crop, depth_mm
from spinewatch.imaging.lesions import masked_smooth

if TYPE_CHECKING:
    from spinewatch.imaging.anatomy import VertebraRegion

__all__ = [
    "CENTRAL_WALL_GAP_MM",
    "LOOK_ALIKE_SHAPES",
    "MIN_NOISE_VOXELS",
    "PEDICLE_BASE_MM",
    "PEDICLE_REACH_MM",
    "PLACES",
    "SHAPES",
    "SUPERSAMPLE",
    "TRUTH_MIN_PEDICLE_ML",
    "TRUTH_MIN_WALL_ML",
    "WALL_ZONE_MM",
    "Ellipsoid",
    "InsertedLesion",
    "InsertionError",
    "LesionSpec",
    "NoiseModel",
    "TrabecularShift",
    "estimate_noise",
    "insert_lesion",
    "posterior_distance_mm",
    "synthesize_noise",
    "with_trabecular_background",
]

FloatArray = npt.NDArray[np.float64]

SHAPES = ("sphere", "ellipsoid", "lobulated")
#: Shapes of the look-alikes a detector must *not* call a lesion: ``channel``, a tube five times
#: as long as wide along the vertebra's anterior axis (a basivertebral venous channel entering at
#: the posterior wall, with ``place="posterior_wall"``).
LOOK_ALIKE_SHAPES = ("channel",)
PLACES = ("central", "posterior_wall", "pedicle_left", "pedicle_right")
#: Sub-samples per voxel axis for the partial-volume fraction (4**3 = 64 points per voxel).
SUPERSAMPLE = 4
#: The posterior wall zone of the truth: body voxels within this distance (mm) of the posterior
#: surface, in the posterior half of the body (the clinical question: does the lesion reach the
#: posterior cortex, where cement could leak towards the canal).
WALL_ZONE_MM = 3.0
#: A ``central`` lesion keeps this much bone (mm), and at least two voxels, between itself and
#: the wall zone.
CENTRAL_WALL_GAP_MM = 3.0
#: Posterior-element voxels within this distance (mm) of the body are the pedicle a ``pedicle_*``
#: lesion may fill (the pedicle, not the lamina or the processes).
PEDICLE_REACH_MM = 12.0
#: The pedicle base (the lesion's centre) is the centroid of that side's posterior-element voxels
#: within this distance (mm) of the body.
PEDICLE_BASE_MM = 6.0
#: Truth: the lesion involves the posterior wall when at least this volume (ml) of it lies in the
#: wall zone, a pedicle when at least :data:`TRUTH_MIN_PEDICLE_ML` lies in it.
TRUTH_MIN_WALL_ML = 0.01
TRUTH_MIN_PEDICLE_ML = 0.02
#: Fewer soft-tissue voxels than this around the vertebra and the noise is estimated from the
#: trabecular core's residual instead (an upper bound: it includes fine bone texture).
MIN_NOISE_VOXELS = 500
_NOISE_WINDOW_MM = 6.0
_SOFT_TISSUE_HU = (-60.0, 120.0)
_DENSE_RISE_HU = 150.0
_MAX_PLACEMENT_TRIES = 40
#: A lesion may take at most this share of the voxels it is confined to.
_MAX_SHARE_OF_ROOM = 0.5
_MAX_SCALE_ITERATIONS = 8
_VOLUME_TOLERANCE = 0.02


class InsertionError(InputError):
    """A lesion that cannot be inserted as asked (bad spec, or no room for it in the vertebra)."""


@dataclass(frozen=True)
class LesionSpec:
    """What to insert: ``volume_ml`` (> 0), ``hu`` (the lesion's own attenuation, HU), ``shape``
    (one of :data:`SHAPES`) and ``place`` (one of :data:`PLACES`)."""

    volume_ml: float
    hu: float
    shape: str = "sphere"
    place: str = "central"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.volume_ml) and 0.0 < self.volume_ml <= 100.0):
            raise InsertionError(f"lesion volume_ml={self.volume_ml!r}: expected 0 < ml <= 100")
        if not (math.isfinite(self.hu) and -1000.0 <= self.hu <= 3000.0):
            raise InsertionError(f"lesion hu={self.hu!r}: expected a finite HU in -1000..3000")
        if self.shape not in SHAPES + LOOK_ALIKE_SHAPES:
            raise InsertionError(
                f"lesion shape={self.shape!r}: expected one of {SHAPES + LOOK_ALIKE_SHAPES}"
            )
        if self.place not in PLACES:
            raise InsertionError(f"lesion place={self.place!r}: expected one of {PLACES}")


@dataclass(frozen=True)
class NoiseModel:
    """The scan's noise: ``sd_hu`` per voxel, the correlation between neighbouring voxels along
    each array axis (``lag1_correlation``), the number of voxels it was measured on and where
    (``source``: ``"soft tissue"`` around the vertebra or ``"bone residual"``)."""

    sd_hu: float
    lag1_correlation: tuple[float, float, float]
    n_voxels: int
    source: str


@dataclass(frozen=True)
class Ellipsoid:
    """One part of a lesion shape, in lesion-centred vertebra coordinates (right, anterior,
    superior mm): centre (3,), semi-axes (3,), and ``axes`` (3, 3) whose columns are the
    semi-axes' unit directions."""

    centre_mm: FloatArray
    radii_mm: FloatArray
    axes: FloatArray

    def scaled(self, k: float) -> Ellipsoid:
        return Ellipsoid(self.centre_mm * k, self.radii_mm * k, self.axes)


@dataclass(frozen=True, eq=False)
class InsertedLesion:
    """A crop with one inserted lesion and its truth.

    ``hu``: the new CT crop (float32 HU, crop shape); ``fraction``: the lesion's share of each
    voxel (float32, 0..1); ``centre_mm``: the lesion centre (world mm); volumes in ml
    (``volume_ml`` = ``sum(fraction) x voxel volume``); ``wall_zone_ml``: lesion volume in the
    posterior wall zone; ``posterior_wall_gap_mm``: bone between the lesion (voxels at least half
    lesion) and the posterior surface (0 when it reaches the wall, inf when it lies in the
    anterior half); ``parts``: the shape as placed (vertebra frame, mm).
    """

    hu: npt.NDArray[np.float32] = field(repr=False)
    fraction: npt.NDArray[np.float32] = field(repr=False)
    spec: LesionSpec
    centre_mm: FloatArray
    volume_ml: float
    body_volume_ml: float
    pedicle_left_ml: float
    pedicle_right_ml: float
    wall_zone_ml: float
    posterior_wall_gap_mm: float
    noise: NoiseModel
    parts: tuple[Ellipsoid, ...] = field(repr=False)

    @property
    def posterior_wall_involved(self) -> bool:
        """The lesion reaches the posterior wall zone (>= :data:`TRUTH_MIN_WALL_ML`)."""
        return self.wall_zone_ml >= TRUTH_MIN_WALL_ML

    @property
    def pedicle_left_involved(self) -> bool:
        return self.pedicle_left_ml >= TRUTH_MIN_PEDICLE_ML

    @property
    def pedicle_right_involved(self) -> bool:
        return self.pedicle_right_ml >= TRUTH_MIN_PEDICLE_ML


@dataclass(frozen=True)
class TrabecularShift:
    """What :func:`with_trabecular_background` did: the body's background before (HU, median of
    the non-cortical core), the target, the scale ``alpha`` of the smooth local variation and the
    number of voxels changed."""

    original_hu: float
    target_hu: float
    alpha: float
    n_voxels: int


# --- noise ------------------------------------------------------------------------------------
def _robust_sd(values: npt.NDArray[Any]) -> float:
    v = np.asarray(values, dtype=np.float64)
    return float(1.4826 * np.median(np.abs(v - np.median(v)))) if v.size else 0.0


def _window(spacing_mm: tuple[float, float, float]) -> tuple[int, int, int]:
    w = [max(3, 2 * round(0.5 * _NOISE_WINDOW_MM / s) + 1) for s in spacing_mm]
    return (w[0], w[1], w[2])


def estimate_noise(
    hu: npt.NDArray[Any], exclude: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float]
) -> NoiseModel:
    """The scan's noise SD (HU) and neighbour correlation, from the CT crop itself.

    Measured in homogeneous soft tissue: voxels whose ~6 mm box stays two voxels clear of
    ``exclude`` (the vertebra), with a box mean of -60..120 HU (muscle, disc, organs), and whose
    3x3x3 neighbourhood is not constant (a masked crop's zeros are not tissue). Along each axis
    the first and second differences of the voxels (``d1 = x[i+1] - x[i]``, ``d2 = x[i+1] -
    2 x[i] + x[i-1]``) cancel the slowly varying tissue; their robust variances (MAD) are
    ``2 s^2 (1 - r1)`` and ``s^2 (6 - 8 r1 + 2 r2)`` for noise of SD ``s`` and neighbour
    correlations ``r1``, ``r2``. With the correlation of Gaussian-filtered white noise
    (``r2 = r1**4``) the ratio gives ``r1`` and then ``s`` (averaged over the axes). With fewer
    than :data:`MIN_NOISE_VOXELS` such voxels the trabecular core of the vertebra (deeper than
    3 mm, not cortical) is used instead, the noise taken as uncorrelated with half the first
    differences' variance (``source = "bone residual"``: bone texture counts as noise there, and
    its structure would pass for correlation).
    """
    x = np.asarray(hu, dtype=np.float32)
    win = _window(spacing_mm)
    mean = ndimage.uniform_filter(x, win, mode="nearest")
    # windows must not reach the vertebra: half a window plus two voxels away from it
    away = ndimage.distance_transform_edt(~np.asarray(exclude, dtype=np.bool_), sampling=spacing_mm)
    near = away <= 0.5 * _NOISE_WINDOW_MM + 2.0 * max(spacing_mm)
    interior = np.zeros(x.shape, dtype=np.bool_)
    core = tuple(slice(w // 2, n - w // 2) for w, n in zip(win, x.shape, strict=True))
    interior[core] = True
    # every voxel of real tissue carries noise: a constant 3x3x3 neighbourhood is a masked crop
    m3 = ndimage.uniform_filter(x, 3, mode="nearest")
    live = ndimage.uniform_filter(x * x, 3, mode="nearest") - m3 * m3 > 1.0
    lo, hi = _SOFT_TISSUE_HU
    cand = interior & ~near & live & (mean >= lo) & (mean <= hi)
    source = "soft tissue"
    if np.count_nonzero(cand) < MIN_NOISE_VOXELS:
        vert = np.asarray(exclude, dtype=np.bool_)
        inside = depth_mm(vert, spacing_mm) > 3.0
        ref = float(np.median(x[inside])) if inside.any() else 0.0
        cand = inside & (x < ref + _DENSE_RISE_HU) & live
        source = "bone residual"
    variances, rhos = [], []
    for axis in range(3):
        v, r = _axis_noise(x, cand, axis, white=source != "soft tissue")
        if v is not None:
            variances.append(v)
            rhos.append(r)
        else:
            rhos.append(0.0)
    sd = math.sqrt(float(np.mean(variances))) if variances else 0.0
    return NoiseModel(
        sd_hu=sd,
        lag1_correlation=(rhos[0], rhos[1], rhos[2]),
        n_voxels=int(np.count_nonzero(cand)),
        source=source,
    )


def _axis_noise(
    x: npt.NDArray[np.float32], cand: npt.NDArray[np.bool_], axis: int, *, white: bool
) -> tuple[float | None, float]:
    """(noise variance, lag-1 correlation) along ``axis`` from the robust variances of the first
    and second differences over runs of three candidate voxels; (None, 0) with too few. With
    ``white`` (bone, whose texture has structure of its own) the noise is taken as uncorrelated
    and its variance as half the first differences' variance."""
    a = np.moveaxis(x, axis, 0)
    c = np.moveaxis(cand, axis, 0)
    ok = c[:-2] & c[1:-1] & c[2:]
    if np.count_nonzero(ok) < 50:
        return None, 0.0
    d1 = (a[2:] - a[1:-1])[ok]
    d2 = (a[2:] - 2.0 * a[1:-1] + a[:-2])[ok]
    v1, v2 = _robust_sd(d1) ** 2, _robust_sd(d2) ** 2
    if v1 <= 0 or white:
        return 0.5 * v1, 0.0
    ratio = v2 / v1
    # ratio(r) = (6 - 8 r + 2 r^4) / (2 (1 - r)) falls from 3 at r = 0 towards 1 as r -> 1
    lo, hi = -0.5, 0.99
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if (6.0 - 8.0 * mid + 2.0 * mid**4) / (2.0 * (1.0 - mid)) > ratio:
            lo = mid
        else:
            hi = mid
    rho = 0.5 * (lo + hi)
    return v1 / (2.0 * (1.0 - rho)), rho


def _lag1(sigma_vox: float) -> float:
    """Lag-1 correlation of white noise filtered by ``ndimage.gaussian_filter1d`` (sigma in
    voxels): ``sum(k[i] k[i+1]) / sum(k[i]^2)`` of the discrete kernel."""
    k = _kernel(sigma_vox)
    return float(np.dot(k[:-1], k[1:]) / np.dot(k, k))


def _kernel(sigma_vox: float) -> npt.NDArray[np.float64]:
    n = 2 * math.ceil(4.0 * sigma_vox) + 3
    delta = np.zeros(n)
    delta[n // 2] = 1.0
    return np.asarray(ndimage.gaussian_filter1d(delta, sigma_vox, mode="constant"))


def _kernel_sigma(rho: float) -> float:
    """The Gaussian kernel sigma (voxels, <= 3) whose filtered white noise has neighbour
    correlation ``rho`` (bisection on the discrete kernel); 0 for uncorrelated noise."""
    if rho <= 0.02:
        return 0.0
    target = min(rho, _lag1(3.0))
    lo, hi = 0.05, 3.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if _lag1(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def synthesize_noise(
    shape: tuple[int, ...], model: NoiseModel, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """Gaussian noise of ``model.sd_hu`` whose neighbour correlation along each axis is
    ``model.lag1_correlation`` (negative values taken as 0): white noise filtered by a Gaussian
    per axis, normalised by the kernel's exact energy so the SD is ``sd_hu``."""
    white = rng.standard_normal(shape).astype(np.float32)
    sig = [_kernel_sigma(r) for r in model.lag1_correlation]
    if not any(s > 0 for s in sig):
        return np.asarray(white * np.float32(model.sd_hu), dtype=np.float32)
    field_ = ndimage.gaussian_filter(white, sig, mode="wrap")
    energy = 1.0
    for s in sig:
        if s > 0:
            k = _kernel(s)
            energy *= float(np.dot(k, k))
    return np.asarray(field_ * np.float32(model.sd_hu / math.sqrt(energy)), dtype=np.float32)


# --- geometry ---------------------------------------------------------------------------------
def posterior_distance_mm(
    body: npt.NDArray[np.bool_], region: VertebraRegion, max_mm: float = 20.0
) -> npt.NDArray[np.float64]:
    """For each voxel of ``body``: the distance (mm) from its centre along ``-frame.anterior`` to
    where the ray leaves the body (voxels taken as boxes: nearest-voxel membership), by marching
    in steps of a quarter of the smallest spacing; ``inf`` beyond ``max_mm`` and outside the body.
    A surface voxel of a wall facing straight back has half a voxel."""
    out = np.full(body.shape, np.inf)
    idx = np.argwhere(body)
    if idx.size == 0:
        return out
    grid = region.grid
    step = 0.25 * min(grid.spacing_mm)
    back_vox = grid.to_voxel(-np.asarray(region.frame.anterior)) - grid.to_voxel(np.zeros(3))
    pos = idx.astype(np.float64)
    alive = np.ones(len(idx), dtype=np.bool_)
    dist = np.full(len(idx), np.inf)
    shape = np.asarray(body.shape)
    for n in range(1, math.ceil(max_mm / step) + 1):
        t = n * step
        p = np.rint(pos[alive] + t * back_vox).astype(np.int64)
        ok = np.all((p >= 0) & (p < shape), axis=1)
        inside = np.zeros(len(p), dtype=np.bool_)
        inside[ok] = body[p[ok, 0], p[ok, 1], p[ok, 2]]
        live_idx = np.flatnonzero(alive)
        left = live_idx[~inside]
        # the exit lies between the last step inside and this one
        dist[left] = t - 0.5 * step
        alive[left] = False
        if not alive.any():
            break
    out[tuple(idx.T)] = dist
    return out


def _local(region: VertebraRegion, idx: npt.NDArray[np.intp]) -> FloatArray:
    from spinewatch.imaging.anatomy import local_coordinates

    return local_coordinates(region.grid, region.frame, idx)


def _random_rotation(rng: np.random.Generator) -> FloatArray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))[None, :]
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return np.asarray(q, dtype=np.float64)


def _unit_shape(shape: str, rng: np.random.Generator) -> tuple[Ellipsoid, ...]:
    """The shape at about unit radius (scaled to the volume later)."""
    eye = np.eye(3)
    if shape == "sphere":
        return (Ellipsoid(np.zeros(3), np.ones(3), eye),)
    if shape == "channel":
        # semi-axes 1 : 5 : 1 (right, anterior, superior), scaled to the unit sphere's volume
        radii = np.array([1.0, 5.0, 1.0]) / 5.0 ** (1.0 / 3.0)
        return (Ellipsoid(np.zeros(3), radii, eye),)
    if shape == "ellipsoid":
        log_r = rng.uniform(-0.4, 0.4, 3)
        log_r -= log_r.mean()  # product of the semi-axes 1: the unit sphere's volume
        return (Ellipsoid(np.zeros(3), np.exp(log_r), _random_rotation(rng)),)
    parts = [Ellipsoid(np.zeros(3), np.ones(3), eye)]
    for _ in range(int(rng.integers(1, 4))):  # 2-4 spheres in all
        r = float(rng.uniform(0.5, 0.9))
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        d = float(rng.uniform(0.4, 0.8)) * (1.0 + r)  # < 1 + r: overlapping the main sphere
        parts.append(Ellipsoid(direction * d, np.full(3, r), eye))
    return tuple(parts)


def _fractions(
    region: VertebraRegion,
    centre_mm: FloatArray,
    parts: tuple[Ellipsoid, ...],
    confine: npt.NDArray[np.bool_],
    n_sub: int,
) -> npt.NDArray[np.float32]:
    """Share of each voxel of ``confine`` inside the union of ``parts`` (placed at ``centre_mm``,
    vertebra frame), from ``n_sub**3`` sample points per voxel; 0 elsewhere."""
    grid = region.grid
    out = np.zeros(confine.shape, dtype=np.float32)
    reach = max(float(np.linalg.norm(p.centre_mm)) + float(p.radii_mm.max()) for p in parts)
    corners = np.array(
        [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64
    )
    vox = grid.to_voxel(centre_mm + reach * corners)
    lo = np.maximum(np.floor(vox.min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(vox.max(axis=0)).astype(int) + 2, np.asarray(confine.shape))
    if np.any(hi <= lo):
        return out
    box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
    idx = np.argwhere(confine[box]) + lo
    if idx.size == 0:
        return out
    rot = region.frame.rotation
    base = (grid.to_world(idx) - centre_mm) @ rot
    sub = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    offsets = np.stack(np.meshgrid(sub, sub, sub, indexing="ij"), axis=-1).reshape(-1, 3)
    off_local = (offsets @ grid.affine[:3, :3].T) @ rot
    frac = np.empty(len(idx), dtype=np.float32)
    chunk = max(1, 400_000 // len(offsets))
    for start in range(0, len(idx), chunk):
        pts = base[start : start + chunk, None, :] + off_local[None, :, :]
        inside = np.zeros(pts.shape[:2], dtype=np.bool_)
        for p in parts:
            q = ((pts - p.centre_mm) @ p.axes) / p.radii_mm
            inside |= np.einsum("nmk,nmk->nm", q, q) <= 1.0
        frac[start : start + chunk] = inside.mean(axis=1)
    out[tuple(idx.T)] = frac
    return out


def _scaled_fractions(
    region: VertebraRegion,
    centre_mm: FloatArray,
    unit: tuple[Ellipsoid, ...],
    confine: npt.NDArray[np.bool_],
    target_ml: float,
    *,
    n_sub: int = SUPERSAMPLE,
    start: float | None = None,
) -> tuple[npt.NDArray[np.float32], tuple[Ellipsoid, ...], float]:
    """Scale ``unit`` until the confined volume is ``target_ml`` (a fixed-point iteration on the
    cube root of the volume); returns the fractions, the parts and the scale."""
    voxel_ml = region.grid.voxel_volume_ml
    k = start if start is not None else (target_ml * 1000.0 * 3.0 / (4.0 * math.pi)) ** (1 / 3)
    frac = np.zeros(confine.shape, dtype=np.float32)
    parts = unit
    for _ in range(_MAX_SCALE_ITERATIONS):
        parts = tuple(p.scaled(k) for p in unit)
        frac = _fractions(region, centre_mm, parts, confine, n_sub)
        got = float(frac.sum(dtype=np.float64)) * voxel_ml
        if got <= 0.0:
            raise InsertionError(
                f"{region.level}: no room for a {target_ml:.2f} ml lesion at "
                f"{np.round(centre_mm, 1).tolist()} mm (outside the vertebra)"
            )
        if abs(got / target_ml - 1.0) <= _VOLUME_TOLERANCE:
            break
        k *= (target_ml / got) ** (1.0 / 3.0)
    return frac, parts, k


@dataclass
class _Anatomy:
    body: npt.NDArray[np.bool_]
    posterior: npt.NDArray[np.bool_]
    body_local: FloatArray  # (n, 3) local mm of the body voxels
    post_idx: npt.NDArray[np.intp]
    post_local: FloatArray
    post_to_body_mm: FloatArray  # distance of each posterior voxel to the body (mm)
    wall_distance: FloatArray  # posterior_distance_mm of the body voxels, crop shape
    posterior_half: npt.NDArray[np.bool_]  # body voxels in the posterior half, crop shape


def _anatomy(region: VertebraRegion) -> _Anatomy:
    body = np.asarray(region.body, dtype=np.bool_)
    posterior = np.asarray(region.mask, dtype=np.bool_) & ~body
    body_idx = np.argwhere(body)
    body_local = _local(region, body_idx)
    post_idx = np.argwhere(posterior)
    to_body = ndimage.distance_transform_edt(~body, sampling=region.grid.spacing_mm)
    half = np.zeros(body.shape, dtype=np.bool_)
    half[tuple(body_idx.T)] = body_local[:, 1] <= float(np.median(body_local[:, 1]))
    return _Anatomy(
        body=body,
        posterior=posterior,
        body_local=body_local,
        post_idx=post_idx,
        post_local=_local(region, post_idx),
        post_to_body_mm=np.asarray(to_body[tuple(post_idx.T)], dtype=np.float64),
        wall_distance=posterior_distance_mm(body, region, max_mm=40.0),
        posterior_half=half,
    )


def _world(region: VertebraRegion, local: FloatArray) -> FloatArray:
    return region.frame.to_world(local)


def _wall_zone(an: _Anatomy) -> npt.NDArray[np.bool_]:
    return an.body & an.posterior_half & (an.wall_distance <= WALL_ZONE_MM)


def _pedicle(an: _Anatomy, side: str, reach_mm: float) -> npt.NDArray[np.bool_]:
    """Posterior-element voxels of ``side`` ('left': negative local right) within ``reach_mm``
    of the body."""
    sign = -1.0 if side == "left" else 1.0
    sel = (an.post_to_body_mm <= reach_mm) & (sign * an.post_local[:, 0] > 0)
    out = np.zeros(an.body.shape, dtype=np.bool_)
    out[tuple(an.post_idx[sel].T)] = True
    return out


def _candidate_centre(
    spec: LesionSpec, an: _Anatomy, region: VertebraRegion, rng: np.random.Generator, attempt: int
) -> FloatArray:
    loc = an.body_local
    lo, hi = np.percentile(loc, 5, axis=0), np.percentile(loc, 95, axis=0)
    half = 0.5 * (hi - lo)
    mid = 0.5 * (hi + lo)
    r_eq = (spec.volume_ml * 1000.0 * 3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    if spec.place == "central":
        # later attempts move forwards (away from the wall) and narrow the random spread
        spread = max(0.0, 1.0 - attempt / _MAX_PLACEMENT_TRIES)
        forward = attempt / _MAX_PLACEMENT_TRIES * half[1]
        c = mid + np.array(
            [
                rng.uniform(-0.25, 0.25) * half[0] * spread,
                rng.uniform(0.0, 0.35) * half[1] * spread + forward,
                rng.uniform(-0.2, 0.2) * half[2] * spread,
            ]
        )
        return _world(region, c)
    if spec.place == "posterior_wall":
        strip = (np.abs(loc[:, 0]) <= 4.0) & (np.abs(loc[:, 2] - mid[2]) <= 0.3 * half[2])
        if not strip.any():
            raise InsertionError(f"{region.level}: no posterior wall found at the midline")
        wall = float(loc[strip, 1].min())
        c = np.array(
            [
                rng.uniform(-2.0, 2.0),
                wall + rng.uniform(0.4, 0.7) * r_eq,
                mid[2] + rng.uniform(-0.15, 0.15) * half[2],
            ]
        )
        return _world(region, c)
    side = spec.place.removeprefix("pedicle_")
    sign = -1.0 if side == "left" else 1.0
    sel = (an.post_to_body_mm <= PEDICLE_BASE_MM) & (sign * an.post_local[:, 0] > 0)
    if np.count_nonzero(sel) < 5:
        raise InsertionError(f"{region.level}: no {side} pedicle next to the body")
    base = an.post_local[sel].mean(axis=0)
    jitter = rng.uniform(-1.0, 1.0, 3) * np.array([1.0, 1.0, 2.0])
    return _world(region, base + jitter)


def _wall_gap(frac: npt.NDArray[np.float32], an: _Anatomy, spacing: tuple[float, ...]) -> float:
    sel = (frac >= 0.5) & an.body & an.posterior_half
    if not sel.any():
        return math.inf
    return max(0.0, float(an.wall_distance[sel].min()) - 0.5 * min(spacing))


def _placement_ok(
    spec: LesionSpec, frac: npt.NDArray[np.float32], an: _Anatomy, vox: float, voxel_mm: float
) -> bool:
    if spec.place == "central":
        # the gap is at least two voxels: one voxel of bone cannot be resolved as "clear"
        gap = max(CENTRAL_WALL_GAP_MM, 2.0 * voxel_mm)
        keep_off = an.body & an.posterior_half & (an.wall_distance <= WALL_ZONE_MM + gap)
        return not bool(np.any(frac[keep_off] > 0))
    if spec.place == "posterior_wall":
        return float(frac[_wall_zone(an)].sum(dtype=np.float64)) * vox >= 0.1 * spec.volume_ml
    side = spec.place.removeprefix("pedicle_")
    in_pedicle = float(frac[_pedicle(an, side, PEDICLE_REACH_MM)].sum(dtype=np.float64)) * vox
    in_body = float(frac[an.body].sum(dtype=np.float64)) * vox
    return in_pedicle >= 0.1 * spec.volume_ml and in_body >= 0.2 * spec.volume_ml


def insert_lesion(
    hu: npt.NDArray[Any],
    region: VertebraRegion,
    spec: LesionSpec,
    *,
    seed: int,
    noise: NoiseModel | None = None,
) -> InsertedLesion:
    """Insert one lesion into the CT crop ``hu`` of ``region`` (see the module docstring).

    ``noise``: the scan's noise model, estimated from the crop when None. Raises
    :class:`InsertionError` when no placement satisfies the place's rule (e.g. a lesion too big
    to stay clear of the posterior wall in a small body).
    """
    check_crop(hu, region)
    rng = np.random.default_rng(seed)
    an = _anatomy(region)
    if not an.body.any():
        raise InsertionError(f"{region.level}: the vertebra has no body to put a lesion in")
    vox = region.grid.voxel_volume_ml
    confine = an.body
    if spec.place.startswith("pedicle_"):
        confine = an.body | _pedicle(an, spec.place.removeprefix("pedicle_"), PEDICLE_REACH_MM)
    room_ml = float(np.count_nonzero(confine)) * vox
    if spec.volume_ml > _MAX_SHARE_OF_ROOM * room_ml:
        raise InsertionError(
            f"{region.level}: cannot place a {spec.volume_ml:.2f} ml lesion ({spec.place}) in "
            f"{room_ml:.1f} ml of vertebra (at most {_MAX_SHARE_OF_ROOM:.0%} of it)"
        )
    unit = _unit_shape(spec.shape, rng)
    frac: npt.NDArray[np.float32] | None = None
    parts: tuple[Ellipsoid, ...] = unit
    centre = np.zeros(3)
    for attempt in range(_MAX_PLACEMENT_TRIES):
        centre = _candidate_centre(spec, an, region, rng, attempt)
        try:
            # placement judged on 2**3 samples per voxel, the truth on SUPERSAMPLE**3
            f, p, k = _scaled_fractions(region, centre, unit, confine, spec.volume_ml, n_sub=2)
            if not _placement_ok(spec, f, an, vox, max(region.grid.spacing_mm)):
                continue
            f, p, _k = _scaled_fractions(region, centre, unit, confine, spec.volume_ml, start=k)
        except InsertionError:
            continue
        if _placement_ok(spec, f, an, vox, max(region.grid.spacing_mm)):
            frac, parts = f, p
            break
    if frac is None:
        raise InsertionError(
            f"{region.level}: cannot place a {spec.volume_ml:.2f} ml {spec.shape} lesion "
            f"({spec.place}) in a {float(an.body.sum()) * vox:.1f} ml body"
        )
    model = noise if noise is not None else estimate_noise(hu, region.mask, region.grid.spacing_mm)
    old = np.asarray(hu, dtype=np.float32)
    new = old.copy()
    touched = frac > 0
    box = ndimage.find_objects(touched.astype(np.uint8))[0]
    n = synthesize_noise(tuple(s.stop - s.start for s in box), model, rng)
    f = frac[box]
    keep = 1.0 - f
    mixed = keep * old[box] + f * np.float32(spec.hu) + np.sqrt(1.0 - keep * keep) * n
    new[box] = np.where(touched[box], mixed, old[box]).astype(np.float32)
    left = _pedicle(an, "left", PEDICLE_REACH_MM)
    right = _pedicle(an, "right", PEDICLE_REACH_MM)
    return InsertedLesion(
        hu=new,
        fraction=frac,
        spec=spec,
        centre_mm=np.asarray(centre, dtype=np.float64),
        volume_ml=float(frac.sum(dtype=np.float64)) * vox,
        body_volume_ml=float(frac[an.body].sum(dtype=np.float64)) * vox,
        pedicle_left_ml=float(frac[left].sum(dtype=np.float64)) * vox,
        pedicle_right_ml=float(frac[right].sum(dtype=np.float64)) * vox,
        wall_zone_ml=float(frac[_wall_zone(an)].sum(dtype=np.float64)) * vox,
        posterior_wall_gap_mm=_wall_gap(frac, an, region.grid.spacing_mm),
        noise=model,
        parts=parts,
    )


# --- background -------------------------------------------------------------------------------
def with_trabecular_background(
    hu: npt.NDArray[Any],
    region: VertebraRegion,
    target_hu: float,
    *,
    smoothing_mm: float = 4.0,
) -> tuple[npt.NDArray[np.float32], TrabecularShift]:
    """The crop with the vertebra's trabecular background moved to ``target_hu`` (see the module
    docstring): an osteoporotic version of a real vertebra (``target_hu`` ~60-110) or a denser
    one, with its own texture and noise.

    The background is the median HU of the body deeper than 3 mm; cortical voxels (more than 150
    HU above it) and everything outside the vertebra label are left as they are. ``smoothing_mm``
    is the sigma of the local mean. Raises :class:`InsertionError` for a target outside 20..400
    HU or a vertebra without a measurable core.
    """
    check_crop(hu, region)
    if not (math.isfinite(target_hu) and 20.0 <= target_hu <= 400.0):
        raise InsertionError(f"target_hu={target_hu!r}: expected a trabecular HU in 20..400")
    x = np.asarray(hu, dtype=np.float32)
    spacing = region.grid.spacing_mm
    body = np.asarray(region.body, dtype=np.bool_)
    core = body & (depth_mm(body, spacing) > 3.0)
    if np.count_nonzero(core) < 20:
        raise InsertionError(f"{region.level}: body too small for a trabecular background")
    bg = float(np.median(x[core]))
    if bg <= 10.0:
        raise InsertionError(f"{region.level}: trabecular background {bg:.0f} HU is not bone")
    support = np.asarray(region.mask, dtype=np.bool_) & (x < bg + _DENSE_RISE_HU)
    local_mean = masked_smooth(x, support, spacing, smoothing_mm)
    alpha = float(min(1.0, target_hu / bg))
    new_mean = np.float32(target_hu) + np.float32(alpha) * (local_mean - np.float32(bg))
    out = x.copy()
    out[support] += (new_mean - local_mean)[support]
    shift = TrabecularShift(
        original_hu=bg, target_hu=float(target_hu), alpha=alpha, n_voxels=int(support.sum())
    )
    return out, shift
