"""The spinal column's curve and each vertebra's anatomical axes, from the anatomy alone.

Why: a vertebra's frame (superior, anterior, right) decides where its heights are measured. The
scan's header (world +z superior, +y anterior) is not anatomy: a flipped axis, a wrong sform or a
body-only label map without posterior elements must not twist the frame. This module works on
numbers the label map gives (centroids, body voxel centres, the posterior elements' centroid)
and never reads the header's axes except as the last resort, which it says
(:data:`ANTERIOR_FROM_HEADER`). :mod:`spinewatch.imaging.anatomy` calls it.

1. **Curve** (:func:`fit_column_curve`): the body centroids in cranio-caudal order are
   parametrised by chord length ``t`` (mm, increasing caudally). At each vertebra a local
   quadratic in ``t`` is fitted to the centroids by weighted least squares (Gaussian weights of
   ``t``, sigma = the local spacing of neighbouring centroids, i.e. about one vertebra); its
   first derivative gives the tangent (``superior`` = minus the unit tangent) and its second the
   curvature vector (1/mm, pointing to the centre of curvature). One outlying centroid (a
   fragment, a body the separation missed) is found by leave-one-out prediction: the centroid
   farthest across the curve from the fit through the others is left out of every fit when
   that distance exceeds :data:`OUTLIER_MIN_MM` and ``OUTLIER_MAD_FACTOR`` times the median of
   the same distances among the others without it; its own tangent then comes from the
   others.
2. **Anterior** (:func:`orient_column`), in the plane perpendicular to each vertebra's superior:

   * with posterior elements: the direction from their centroid to the body centroid (signed by
     the anatomy). Made consistent along the column: a vertebra whose direction is more than
     :data:`OUTLIER_ANGLE_DEG` from the agreeing directions of at least two neighbours (within
     two levels) takes theirs (``anterior_from_neighbours``). Real axial rotation (scoliosis
     turns vertebrae by a few degrees per level) is kept: there is no further smoothing;
   * body only: the antero-posterior *axis* is the body's line of bilateral symmetry in its
     cross-section (:func:`body_shape`); a shape symmetric about two lines (an elliptic body)
     takes the one nearer its minor axis, since a thoracolumbar body is wider than deep
     (endplate width exceeds depth: Panjabi et al., Spine 1991;16:888-901 and
     1992;17:299-306). A vertebra whose axis is weak (a round body) or disagrees with its
     neighbours' by more than :data:`OUTLIER_ANGLE_DEG` takes theirs. The axes are made
     sign-consistent along the column (adjacent vertebrae never point more than 90 degrees
     apart), and the column's one sign is voted: per vertebra, the **wall shape** (the
     anterior wall is convex, the posterior wall flat or concave: :func:`body_shape`'s
     ``convexity_mm``) and the **curvature** at levels whose sagittal curve is known -- the
     thoracic kyphosis (T3-T9: centre of curvature anterior) and the lumbar lordosis (L2-L6:
     centre posterior). The thoracolumbar junction is practically straight and lordosis
     starts at L1-L2 (Bernhardt & Bridwell, Spine 1989;14:717-721); supine, most of it lies at
     L4-S1 (Yukawa et al., Asian Spine J 2019;13:663-671), so the curvature's vote is weighted
     by its size. The cervical curve does not vote (engineering choice: the neck's posture on
     the table varies). The curvature never sets the axis itself: its direction also holds any
     scoliosis. When the votes do not reach :data:`MIN_SIGN_EVIDENCE`, the header's +y gives
     the sign (:data:`ANTERIOR_FROM_HEADER`);
   * with posterior elements on some vertebrae only, those sign their neighbours.
3. **Header check** (:func:`header_rotation_deg`): the angle of the rotation between the
   anatomy's (right, anterior, superior) and the header's (+x, +y, +z). Above
   :data:`HEADER_DISAGREEMENT_DEG` the header disagrees with the anatomy (a flipped or swapped
   axis); the anatomy's frame is used anyway. A left-right mirror (one flipped x axis) cannot
   be seen: a vertebra is left-right symmetric, and ``right = cross(anterior, superior)`` is the
   right of a right-handed world whichever way the header mirrors it.

The thresholds not taken from a publication are engineering choices, named below with their
reasons. Vectors are world RAS+ unit vectors, shape (3,); point sets are (n, 3) world mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinewatch.core.levels import Region, VertebralLevel

__all__ = [
    "ANTERIOR_FROM_HEADER",
    "ANTERIOR_FROM_NEIGHBOURS",
    "HEADER_DISAGREEMENT_DEG",
    "MIN_SIGN_EVIDENCE",
    "OUTLIER_ANGLE_DEG",
    "OUTLIER_MAD_FACTOR",
    "OUTLIER_MIN_MM",
    "AnteriorEstimate",
    "BodyShape",
    "ColumnCurve",
    "axis_name",
    "body_shape",
    "expected_curvature_sign",
    "fit_column_curve",
    "header_rotation_deg",
    "orient_column",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Quality flag: no anatomical evidence decided which way is anterior; the header's +y did.
ANTERIOR_FROM_HEADER = "anterior_from_header"
#: Quality flag: the vertebra's own anterior direction was replaced by its neighbours'.
ANTERIOR_FROM_NEIGHBOURS = "anterior_from_neighbours"

#: A centroid is an outlier of the curve when its distance across the curve from the fit
#: through the others exceeds this (mm) -- engineering choice: about a fifth of a lumbar body's
#: depth, well above the 1-2 mm of a body centroid's segmentation noise, below the offset of a
#: label centroid taken for a body centroid (the posterior elements pull it 10-20 mm back).
OUTLIER_MIN_MM = 6.0
#: ... and this many times the median of those distances (engineering choice).
OUTLIER_MAD_FACTOR = 4.0
#: A vertebra's anterior direction more than this from its neighbours' is an outlier
#: (engineering choice: adjacent vertebrae differ by a few degrees of axial rotation even in
#: scoliosis; a segmentation error or a twisted body-only axis is off by 45-90 degrees).
OUTLIER_ANGLE_DEG = 35.0
#: Sum of the sign votes (each in -1..1) needed to trust the anatomy's sign of the AP axis of a
#: body-only column: the equivalent of one vertebra's confident vote (engineering choice).
MIN_SIGN_EVIDENCE = 1.0
#: Rotation between the anatomy's frame and the header's axes above which the header disagrees
#: (engineering choice: a vertebra's own tilt in a supine CT -- lordosis, kyphosis, scoliosis,
#: axial rotation together -- stays well below it; a swapped axis gives ~90, a flip ~180).
HEADER_DISAGREEMENT_DEG = 60.0

# Weights of the unsigned axis evidence (engineering choices): a vertebra with posterior
# elements is certain (1); the cross-section's width/depth ratio counts from 1.05 (no
# information) to 1.2 (full weight). The curvature only votes for the sign: its direction
# also holds any scoliosis and, from two or three centroids, the noise of cut vertebrae.
_SHAPE_RATIO_NONE = 1.05
_SHAPE_RATIO_FULL = 1.20
#: The mirror line counts fully when it matches its mirror image this much better than the
#: perpendicular line does (normalised correlations; engineering choice: 0.05-0.25 on real
#: lumbar and thoracic bodies, ~0 for an elliptic one), and not at all when its own match is
#: below _SYMMETRY_FLOOR (an asymmetric, e.g. fractured, body). Two mirror lines whose matches
#: differ by less than _SYMMETRY_TIE are a tie, broken by the minor axis.
_SYMMETRY_CONTRAST = 0.1
_SYMMETRY_FLOOR = 0.8
_SYMMETRY_TIE = 0.03
#: Curvature (1/mm) times this gives the curvature vote's size before tanh: a supine lower
#: lumbar curvature (~1/150 mm) votes nearly fully, a straight stretch (< 1/1000 mm) barely.
_CURVE_REF_MM = 300.0
#: An axis this weak (difference of the tensor's two eigenvalues) is no axis.
_MIN_AXIS_STRENGTH = 0.25
#: Wall-shape vote: ``tanh((|convexity| - half a voxel) / this)`` with the convexity's sign;
#: the outlines of real lumbar and thoracic bodies differ by 2-6 mm, voxelisation noise by up
#: to about half a voxel (engineering choice).
_CONVEXITY_REF_MM = 1.5
#: Fraction of the body's half-width over which the anterior and posterior walls are profiled.
_WALL_SPAN = 0.6


@dataclass(frozen=True)
class ColumnCurve:
    """The column's curve at each vertebra (cranio-caudal order, n vertebrae).

    ``superior``: (n, 3) unit tangents pointing cranially; ``curvature_per_mm``: (n, 3)
    curvature vectors (1/mm), perpendicular to ``superior``, pointing to the centre of
    curvature (zero where unknown); ``outliers``: (n,) centroids left out of the fit.
    """

    superior: FloatArray
    curvature_per_mm: FloatArray
    outliers: BoolArray


@dataclass(frozen=True)
class BodyShape:
    """A vertebral body's cross-section perpendicular to its superior axis.

    ``axis``: unit vector (3,) along the cross-section's antero-posterior axis (its line of
    bilateral symmetry), sign arbitrary; ``weight``: 0-1, how clearly the shape shows that axis
    (by the symmetry's contrast and the width/depth ratio); ``convexity_mm``: how much more the
    wall at ``+axis`` bulges outwards than the wall at ``-axis`` over the central part of the
    width (sagitta difference, mm): > 0 means ``+axis`` is the convex (anterior) wall;
    ``resolution_mm``: the profiles' bin width (about the voxel size); ``ratio``: width/depth as
    the square root of the ratio of the principal second moments (>= 1); ``symmetry``: the
    normalised correlation (0-1) of the cross-section with its mirror image about ``axis``.
    """

    axis: FloatArray
    weight: float
    convexity_mm: float
    resolution_mm: float
    ratio: float = 1.0
    symmetry: float = 0.0


@dataclass(frozen=True)
class AnteriorEstimate:
    """A vertebra's anterior direction (unit, perpendicular to its superior) and its source:
    ``posterior_elements`` (its own), ``body_shape`` (its own cross-section, signed along the
    column), ``neighbours`` (its own evidence too weak: its neighbours' axis), ``outlier`` (its
    own direction disagreed with its neighbours' and was replaced by theirs) or ``header``
    (the anatomy could not tell which way is anterior: the header's +y did)."""

    anterior: FloatArray
    source: str


def _unit(vec: FloatArray) -> FloatArray:
    norm = float(np.linalg.norm(vec))
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"cannot normalise the zero vector {vec.tolist()}")
    return np.asarray(vec / norm, dtype=np.float64)


def _project(vec: FloatArray, normal: FloatArray) -> FloatArray:
    """``vec`` minus its component along the unit ``normal``."""
    return np.asarray(vec - (vec @ normal) * normal, dtype=np.float64)


def _angle_deg(a: FloatArray, b: FloatArray) -> float:
    cos = float(a @ b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


# --- the curve ---------------------------------------------------------------------------------


def _chord_params(points: FloatArray) -> FloatArray:
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def _local_sigma(t: FloatArray, t0: float) -> float:
    """The spacing of the centroids around ``t0`` (mean of the steps next to the nearest one):
    about one vertebra's height plus a disc, which grows from the neck to the sacrum."""
    steps = np.diff(t)
    if len(steps) == 0:
        return 1.0
    k = int(np.argmin(np.abs(t - t0)))
    near = steps[max(k - 1, 0) : k + 1]
    return max(float(np.mean(near)), 1e-6)


def _local_fit(
    t: FloatArray,
    points: FloatArray,
    base: FloatArray,
    t0: float,
    degree: int = 2,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Value, first and second derivative at ``t0`` of a polynomial fit of ``points`` (m, 3)
    against ``t`` (m,), weighted by ``base`` (m,) times a Gaussian of ``t - t0`` (sigma: the
    local spacing); the degree drops to what the points support."""
    tau = t - t0
    sigma = _local_sigma(t, t0)
    w = base * np.exp(-0.5 * (tau / sigma) ** 2)
    useful = int(np.count_nonzero(w > 1e-3))
    deg = min(degree, useful - 1, len(t) - 1)
    if deg < 1:
        return points[int(np.argmax(w))], np.zeros(3), np.zeros(3)
    design = np.column_stack([tau**p for p in range(deg + 1)])
    sw = np.sqrt(np.maximum(w, 1e-12))[:, None]
    coef, *_ = np.linalg.lstsq(design * sw, points * sw, rcond=None)
    second = 2.0 * coef[2] if deg >= 2 else np.zeros(3)
    return coef[0], coef[1], second


def _loo_distances(t: FloatArray, points: FloatArray, base: FloatArray) -> FloatArray:
    """Distance (mm) of each point across the curve from the local quadratic through all the
    others (extrapolated beyond the ends: the lordosis bends most at the last lumbar levels)."""
    n = len(points)
    out = np.zeros(n)
    for j in range(n):
        keep = np.arange(n) != j
        value, d1, _ = _local_fit(t[keep], points[keep], base[keep], float(t[j]))
        resid = points[j] - value
        if float(np.linalg.norm(d1)) > 1e-9:
            resid = _project(resid, _unit(d1))
        out[j] = float(np.linalg.norm(resid))
    return out


def _param_on(polyline_t: FloatArray, polyline: FloatArray, point: FloatArray) -> float:
    """Chord parameter of the point of the polyline nearest ``point``, the end segments
    extended beyond the ends (an outlier past an end keeps its place along the column)."""
    best_d, best_t = np.inf, float(polyline_t[0])
    last = len(polyline) - 2
    for a in range(last + 1):
        seg = polyline[a + 1] - polyline[a]
        length2 = float(seg @ seg)
        f = 0.0 if length2 < 1e-12 else float((point - polyline[a]) @ seg / length2)
        f = float(np.clip(f, -np.inf if a == 0 else 0.0, np.inf if a == last else 1.0))
        d = float(np.linalg.norm(polyline[a] + f * seg - point))
        if d < best_d:
            best_d, best_t = d, float(polyline_t[a] + f * (polyline_t[a + 1] - polyline_t[a]))
    return best_t


def fit_column_curve(
    centroids_mm: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> ColumnCurve | None:
    """The column's tangent and curvature at each of ``centroids_mm`` (n, 3), world mm, in
    cranio-caudal order (see the module docstring); None for fewer than two points.

    ``weights`` (n,), 0-1: how much each centroid is trusted (a piece cut by the scan's edge
    less than a whole vertebra); all 1 when None.
    """
    pts = np.asarray(centroids_mm, dtype=np.float64).reshape(-1, 3)
    n = len(pts)
    if n < 2:
        return None
    base = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(n)
    base = np.clip(base, 1e-3, 1.0)
    outliers = np.zeros(n, dtype=bool)
    for _ in range(max(1, n // 8) if n >= 4 else 0):
        idx = np.flatnonzero(~outliers)
        t_in = _chord_params(pts[idx])
        dist = _loo_distances(t_in, pts[idx], base[idx])
        worst = int(np.argmax(dist))
        if dist[worst] <= OUTLIER_MIN_MM or len(idx) <= 3:
            break
        # the scale comes from the others fitted without the candidate, which pulls them too
        rest = np.delete(idx, worst)
        t_rest = _chord_params(pts[rest])
        spread = _loo_distances(t_rest, pts[rest], base[rest])
        if dist[worst] <= OUTLIER_MAD_FACTOR * float(np.median(spread)):
            break
        outliers[idx[worst]] = True
    idx = np.flatnonzero(~outliers)
    t_in = _chord_params(pts[idx])
    t_all = np.array([_param_on(t_in, pts[idx], p) for p in pts])
    t_all[idx] = t_in
    superior = np.zeros((n, 3))
    curvature = np.zeros((n, 3))
    for k in range(n):
        if len(idx) == 2:
            d1, d2 = pts[idx[1]] - pts[idx[0]], np.zeros(3)
        else:
            _, d1, d2 = _local_fit(t_in, pts[idx], base[idx], float(t_all[k]))
        speed = float(np.linalg.norm(d1))
        if speed < 1e-9:  # coincident centroids: no direction
            d1 = pts[idx[0]] - pts[idx[-1]]
            speed = float(np.linalg.norm(d1))
        tangent = _unit(d1)
        superior[k] = -tangent  # t grows caudally
        curvature[k] = _project(d2, tangent) / speed**2
    return ColumnCurve(superior, curvature, outliers)


# --- the body's own shape ----------------------------------------------------------------------


def _plane_basis(normal: FloatArray) -> tuple[FloatArray, FloatArray]:
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    e1 = _unit(_project(helper, normal))
    return e1, np.cross(normal, e1)


def _wall_curvature(u: FloatArray, v: FloatArray, bin_mm: float) -> tuple[float, float] | None:
    """Quadratic coefficients (1/mm) of the outermost +v and -v wall profiles against u."""
    idx = np.floor(u / bin_mm).astype(np.int64)
    order = np.lexsort((v, idx))
    ks, vs = idx[order], v[order]
    first = np.r_[True, ks[1:] != ks[:-1]]
    last = np.r_[ks[1:] != ks[:-1], True]
    if int(first.sum()) < 4:
        return None
    centres = (ks[first].astype(np.float64) + 0.5) * bin_mm
    design = np.column_stack([np.ones(len(centres)), centres, centres**2])
    top, *_ = np.linalg.lstsq(design, vs[last], rcond=None)
    bottom, *_ = np.linalg.lstsq(design, vs[first], rcond=None)
    return float(top[2]), float(bottom[2])


def _footprint(q: FloatArray, pixel_mm: float, blur_mm: float) -> tuple[FloatArray, float]:
    """The points ``q`` (m, 2) splatted bilinearly onto a square grid of ``pixel_mm`` centred
    on the origin and blurred (Gaussian, ``blur_mm``): the projected cross-section, and the
    grid's half-size. Bilinear splatting keeps the image centred on the points (a histogram
    would shift it by up to half a pixel when voxel centres fall on the bin edges)."""
    half = float(np.abs(q).max()) + 2.0 * blur_mm + 2.0 * pixel_mm
    n = int(np.ceil(2.0 * half / pixel_mm))
    pixel = 2.0 * half / n
    f = (q + half) / pixel - 0.5  # pixel-centre coordinates
    i0 = np.floor(f).astype(np.int64)
    frac = f - i0
    image = np.zeros(n * n)
    for di in (0, 1):
        for dj in (0, 1):
            w = (frac[:, 0] if di else 1 - frac[:, 0]) * (frac[:, 1] if dj else 1 - frac[:, 1])
            flat = (i0[:, 0] + di) * n + (i0[:, 1] + dj)
            image += np.bincount(flat, weights=w, minlength=n * n)
    blurred = ndimage.gaussian_filter(image.reshape(n, n), blur_mm / pixel)
    return np.asarray(blurred, dtype=np.float64), half


def _mirror_scores(image: FloatArray, half: float, angles_rad: FloatArray) -> FloatArray:
    """Normalised correlation of ``image`` with its mirror image about each line through the
    centre at ``angles_rad`` (from the grid's first axis)."""
    n = image.shape[0]
    pixel = 2.0 * half / n
    centres = (np.arange(n) + 0.5) * pixel - half
    ii, jj = np.nonzero(image > 1e-3 * image.max())
    weights = image[ii, jj]
    pts = np.column_stack([centres[ii], centres[jj]])
    d = np.column_stack([np.cos(angles_rad), np.sin(angles_rad)])  # (T, 2)
    along = pts @ d.T  # (K, T)
    mirrored = 2.0 * along[:, :, None] * d[None, :, :] - pts[:, None, :]  # (K, T, 2)
    idx = (mirrored + half) / pixel - 0.5
    values = ndimage.map_coordinates(image, idx.reshape(-1, 2).T, order=1, cval=0.0)
    return np.asarray(
        (weights @ values.reshape(len(pts), len(angles_rad))) / float(weights @ weights),
        dtype=np.float64,
    )


def _symmetry_line(
    image: FloatArray, half: float, minor_rad: float, ratio: float
) -> tuple[float, float, float]:
    """Angle (rad) of the cross-section's line of bilateral symmetry, its score and the score of
    the perpendicular line. A shape symmetric about two lines (an ellipse) takes the one nearer
    its minor axis (``minor_rad``), the antero-posterior axis of a body wider than deep."""
    coarse = np.deg2rad(np.arange(0.0, 180.0, 3.0))
    scores = _mirror_scores(image, half, coarse)
    peaks = [i for i in range(len(coarse)) if scores[i] >= max(scores[i - 1], scores[i - 59])]
    peaks.sort(key=lambda i: -scores[i])
    best = peaks[0]
    if ratio >= _SHAPE_RATIO_NONE:
        rivals = [i for i in peaks if scores[i] >= scores[best] - _SYMMETRY_TIE]

        def off_minor(i: int) -> float:
            diff = abs(coarse[i] - minor_rad) % np.pi
            return float(min(diff, np.pi - diff))

        best = min(rivals, key=off_minor)
    fine = coarse[best] + np.deg2rad(np.arange(-3.0, 3.01, 0.5))
    fine_scores = _mirror_scores(image, half, fine)
    k = int(np.argmax(fine_scores))
    perp = _mirror_scores(image, half, np.array([fine[k] + np.pi / 2]))
    return float(fine[k]), float(fine_scores[k]), float(perp[0])


def body_shape(
    points_mm: npt.ArrayLike, superior: npt.ArrayLike, resolution_mm: float = 1.0
) -> BodyShape | None:
    """The cross-section of a body given by its voxel centres ``points_mm`` (n, 3), world mm,
    perpendicular to the unit ``superior`` (see :class:`BodyShape`); ``resolution_mm`` is about
    the voxel size. None for fewer than 30 points.

    The antero-posterior axis is the cross-section's line of bilateral symmetry: the line about
    which the projected body (a 2-D image on a 1 mm grid, blurred by half a voxel) best matches
    its own mirror image (normalised correlation, 3-degree search refined to 0.5 degree).
    """
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    if len(pts) < 30:
        return None
    sup = _unit(np.asarray(superior, dtype=np.float64))
    e1, e2 = _plane_basis(sup)
    q = (pts - pts.mean(axis=0)) @ np.column_stack([e1, e2])
    evals, evecs = np.linalg.eigh(np.cov(q.T))
    ratio = float(np.sqrt(max(evals[1], 1e-12) / max(evals[0], 1e-12)))
    minor_rad = float(np.arctan2(evecs[1, 0], evecs[0, 0]))
    res = max(1.0, float(resolution_mm))
    image, half = _footprint(q, max(1.0, 0.5 * res), 0.5 * res)
    angle, symmetry, perpendicular = _symmetry_line(image, half, minor_rad, ratio)
    ap2 = np.array([np.cos(angle), np.sin(angle)])
    axis = _unit(ap2[0] * e1 + ap2[1] * e2)
    # weight: a clear mirror line, or a clear width/depth ratio along it
    off_minor = abs(float(ap2 @ evecs[:, 0]))
    span = _SHAPE_RATIO_FULL - _SHAPE_RATIO_NONE
    by_ratio = float(np.clip((ratio - _SHAPE_RATIO_NONE) / span, 0.0, 1.0)) * off_minor**2
    by_mirror = float(np.clip((symmetry - perpendicular) / _SYMMETRY_CONTRAST, 0.0, 1.0))
    weight = max(by_ratio, by_mirror) * float(
        np.clip((symmetry - _SYMMETRY_FLOOR) / (1.0 - _SYMMETRY_FLOOR) * 2.0, 0.0, 1.0)
    )
    u = q @ np.array([-ap2[1], ap2[0]])
    v = q @ ap2
    span_u = _WALL_SPAN * float(np.percentile(np.abs(u), 98))
    central = np.abs(u) <= span_u
    walls = _wall_curvature(u[central], v[central], res) if central.sum() >= 30 else None
    convexity = 0.0 if walls is None else -(walls[0] + walls[1]) * span_u**2
    return BodyShape(axis, weight, float(convexity), res, ratio, symmetry)


# --- anterior along the column -----------------------------------------------------------------


def expected_curvature_sign(level: VertebralLevel) -> int:
    """+1 where the centre of the column's sagittal curvature lies anterior (thoracic kyphosis,
    T3-T9), -1 where it lies posterior (lumbar lordosis, L2-L6), 0 where it is not known well
    enough to vote (cervical spine, the junctions, the sacrum); see the module docstring."""
    if level.region is Region.THORACIC and 3 <= level.number <= 9:
        return 1
    if level.region is Region.LUMBAR and level.number >= 2:
        return -1
    return 0


def _principal(tensor: FloatArray) -> tuple[FloatArray, float]:
    """Principal axis (unit, sign arbitrary) of a symmetric 3x3 tensor and its strength (the
    difference of its two largest eigenvalues)."""
    evals, evecs = np.linalg.eigh(tensor)
    return np.asarray(evecs[:, 2], dtype=np.float64), float(evals[2] - evals[1])


def _near(levels: Sequence[VertebralLevel], i: int, distance: int = 2) -> list[int]:
    """Indices of the other vertebrae within ``distance`` levels of vertebra ``i``."""
    return [
        j for j in range(len(levels)) if j != i and abs(levels[j].rank - levels[i].rank) <= distance
    ]


@dataclass
class _Column:
    levels: Sequence[VertebralLevel]
    superiors: FloatArray
    posterior: list[FloatArray | None]
    shapes: list[BodyShape | None]
    curvature: FloatArray
    reliability: FloatArray

    def proj(self, i: int) -> FloatArray:
        s = self.superiors[i]
        return np.asarray(np.eye(3) - np.outer(s, s), dtype=np.float64)

    def tensor(self, i: int) -> FloatArray:
        """Unsigned axis evidence of vertebra ``i`` (3x3, in its own plane)."""
        t = np.zeros((3, 3))
        p = self.posterior[i]
        if p is not None:
            t += np.outer(p, p)
        shape = self.shapes[i]
        if shape is not None:
            t += shape.weight * np.outer(shape.axis, shape.axis)
        return np.asarray(t * self.reliability[i], dtype=np.float64)

    def seen_from(self, i: int, j: int) -> FloatArray:
        """Vertebra ``j``'s evidence tensor in vertebra ``i``'s plane."""
        p = self.proj(i)
        return np.asarray(p @ self.tensor(j) @ p, dtype=np.float64)


def _posterior_outliers(col: _Column) -> list[FloatArray | None]:
    """The posterior-elements directions with outliers replaced by agreeing neighbours'."""
    out = list(col.posterior)
    for i, p in enumerate(col.posterior):
        if p is None:
            continue
        near = [col.posterior[j] for j in _near(col.levels, i)]
        dirs = [_unit(_project(d, col.superiors[i])) for d in near if d is not None]
        if len(dirs) < 2:
            continue
        ref = _unit(np.sum(dirs, axis=0))
        if max(_angle_deg(d, ref) for d in dirs) > OUTLIER_ANGLE_DEG:
            continue  # the neighbours disagree among themselves: no reference
        if _angle_deg(p, ref) > OUTLIER_ANGLE_DEG:
            out[i] = ref
    return out


def _choose_axes(col: _Column) -> list[tuple[FloatArray, str] | None]:
    """Unsigned axis and source for each vertebra without posterior elements (None: none)."""
    axes: list[tuple[FloatArray, str] | None] = []
    for i in range(len(col.levels)):
        own, strength = _principal(col.proj(i) @ col.tensor(i) @ col.proj(i))
        others = [col.seen_from(i, j) for j in _near(col.levels, i)]
        near, near_strength = _principal(np.sum(others, axis=0)) if others else (own, 0.0)
        angle = min(_angle_deg(own, near), _angle_deg(own, -near))
        if strength >= _MIN_AXIS_STRENGTH and (
            near_strength < _MIN_AXIS_STRENGTH or angle <= OUTLIER_ANGLE_DEG
        ):
            axes.append((own, "body_shape"))
        elif near_strength >= _MIN_AXIS_STRENGTH:
            # a weak own axis borrows the neighbours'; a confident one that disagrees is replaced
            axes.append((near, "outlier" if strength >= _MIN_AXIS_STRENGTH else "neighbours"))
        else:
            axes.append(None)
    return axes


def _propagate_signs(
    col: _Column, axes: list[FloatArray | None], signed: list[bool], seed: int | None
) -> None:
    """Flip the unsigned ``axes`` in place so each agrees with the nearest signed one (in the
    column's order); ``seed`` is signed first when nothing is."""
    if seed is not None and not any(signed):
        signed[seed] = True
    while True:
        todo = [i for i, a in enumerate(axes) if a is not None and not signed[i]]
        done = [i for i, a in enumerate(axes) if a is not None and signed[i]]
        if not todo or not done:
            return
        i, j = min(((i, j) for i in todo for j in done), key=lambda ij: abs(ij[0] - ij[1]))
        a, ref = axes[i], axes[j]
        assert a is not None and ref is not None
        if float(a @ (col.proj(i) @ ref)) < 0:
            axes[i] = -a
        signed[i] = True


def _sign_votes(col: _Column, axes: list[FloatArray | None]) -> float:
    """Evidence (sum of votes in -1..1) that the signed ``axes`` point anteriorly."""
    total = 0.0
    for i, a in enumerate(axes):
        if a is None:
            continue
        shape = col.shapes[i]
        if shape is not None:
            cos = float(shape.axis @ a)
            if abs(cos) >= np.cos(np.deg2rad(OUTLIER_ANGLE_DEG)):
                beyond = max(abs(shape.convexity_mm) - 0.5 * shape.resolution_mm, 0.0)
                vote = float(np.tanh(beyond / _CONVEXITY_REF_MM))
                vote *= shape.weight * col.reliability[i]  # a weak axis has no clear walls
                total += float(np.sign(cos * shape.convexity_mm)) * vote
        expected = expected_curvature_sign(col.levels[i])
        if expected:
            total += (
                expected
                * float(np.tanh(float(col.curvature[i] @ a) * _CURVE_REF_MM))
                * col.reliability[i]
            )
    return total


def orient_column(
    levels: Sequence[VertebralLevel],
    superiors: npt.ArrayLike,
    posterior_directions: Sequence[FloatArray | None],
    shapes: Sequence[BodyShape | None],
    curvature_per_mm: npt.ArrayLike | None = None,
    reliability: npt.ArrayLike | None = None,
) -> list[AnteriorEstimate]:
    """Each vertebra's anterior direction from the anatomy (see the module docstring).

    ``levels`` in cranio-caudal order; ``superiors`` (n, 3) unit vectors; per vertebra the unit
    direction from its posterior elements to its body perpendicular to its superior (None
    without posterior elements) and its :func:`body_shape` (None when unknown);
    ``curvature_per_mm`` (n, 3) from :func:`fit_column_curve` (zeros when None);
    ``reliability`` (n,), 0-1, scales each vertebra's evidence (a piece cut by the scan's edge
    counts less; below 0.5 its posterior elements are not used); all 1 when None.
    """
    n = len(levels)
    sup = np.asarray(superiors, dtype=np.float64).reshape(n, 3)
    curv = (
        np.zeros((n, 3))
        if curvature_per_mm is None
        else np.asarray(curvature_per_mm, dtype=np.float64).reshape(n, 3)
    )
    rel = np.ones(n) if reliability is None else np.asarray(reliability, dtype=np.float64)
    rel = np.clip(rel.reshape(n), 0.0, 1.0)
    posterior_directions = [
        p if rel[i] >= 0.5 else None for i, p in enumerate(posterior_directions)
    ]
    col = _Column(levels, sup, list(posterior_directions), list(shapes), curv, rel)
    fixed = _posterior_outliers(col)
    col.posterior = fixed
    axes: list[FloatArray | None] = []
    sources: list[str] = []
    signed = [p is not None for p in fixed]
    chosen = _choose_axes(col)
    for i in range(n):
        p = fixed[i]
        own = posterior_directions[i]
        if p is not None:
            axes.append(p)
            sources.append("posterior_elements" if p is own else "outlier")
        elif (pick := chosen[i]) is not None:
            axes.append(pick[0])
            sources.append(pick[1])
        else:
            axes.append(None)
            sources.append("header")
    strengths = [
        _principal(col.proj(i) @ col.tensor(i) @ col.proj(i))[1] if a is not None else -1.0
        for i, a in enumerate(axes)
    ]
    seed = int(np.argmax(strengths)) if any(a is not None for a in axes) else None
    from_anatomy = any(signed)
    _propagate_signs(col, axes, signed, seed)
    if not from_anatomy and seed is not None:
        votes = _sign_votes(col, axes)
        if abs(votes) >= MIN_SIGN_EVIDENCE:
            flip = votes < 0
        else:  # the anatomy cannot tell: the header's +y, said so
            flip = sum(float(a[1]) for a in axes if a is not None) < 0
            sources = ["header" for _ in sources]
        if flip:
            axes = [None if a is None else -a for a in axes]
    out = []
    for i in range(n):
        a = axes[i]
        if a is None:
            a = _header_anterior(sup[i])
        out.append(AnteriorEstimate(_unit(_project(a, sup[i])), sources[i]))
    return out


def _header_anterior(superior: FloatArray) -> FloatArray:
    """World +y made perpendicular to ``superior`` (world -z when +y is along it)."""
    for world in (np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])):
        cand = _project(world, superior)
        if float(np.linalg.norm(cand)) > 0.2:
            return _unit(cand)
    return _plane_basis(superior)[0]


# --- the header check --------------------------------------------------------------------------


def header_rotation_deg(
    right: npt.ArrayLike, anterior: npt.ArrayLike, superior: npt.ArrayLike
) -> float:
    """Angle (degrees, 0-180) of the rotation taking the header's axes (+x, +y, +z) onto the
    anatomy's orthonormal right-handed (``right``, ``anterior``, ``superior``)."""
    rot = np.column_stack([np.asarray(v, dtype=np.float64) for v in (right, anterior, superior)])
    cos = (float(np.trace(rot)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def axis_name(direction: npt.ArrayLike) -> str:
    """The world axis nearest ``direction`` with its sign, as the header calls it: ``"+y
    (anterior)"``, ``"-z (inferior)"``..."""
    vec = np.asarray(direction, dtype=np.float64)
    axis = int(np.argmax(np.abs(vec)))
    positive = bool(vec[axis] > 0)
    names = (("right", "left"), ("anterior", "posterior"), ("superior", "inferior"))
    word = names[axis][0 if positive else 1]
    return f"{'+' if positive else '-'}{'xyz'[axis]} ({word})"
