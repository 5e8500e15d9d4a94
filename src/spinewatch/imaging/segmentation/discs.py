"""Vertebral bodies and discs along the column.

Yao et al. (IEEE ISBI 2006) partition the column with an intensity profile along the spinal
cord; Klinder et al. ("Automated model-based vertebra detection, identification, and segmentation
in CT images", Medical Image Analysis 13(3):471-482, 2009) likewise separate neighbours at the
disc. Here the profile is the mean HU in a small box at the body centre, sampled in the plane
*normal to the column* (trilinear interpolation at each slice's centre-line point), so a disc
tilted by the lordosis -- the lumbosacral disc lies 30-40 degrees off the axial plane -- is cut
across and not diagonally through both endplates. Through a body the box holds marrow and, near
its ends, the bright endplates; through a disc it holds disc tissue (~70-100 HU) flanked by the
two endplates. A disc is therefore a profile minimum lying ``DISC_PROMINENCE_HU`` below the
maxima on *both* sides within half a vertebral pitch: this holds whatever the marrow density
(osteoporotic marrow near 100 HU is still flanked by endplates brighter than the disc). And it
is a *narrow* valley -- the endplates are a disc height apart, while in an osteoporotic body,
whose marrow reads near disc tissue, the dip between its own endplates is a body height wide:
each minimum's prominence is weighted down as its width at half prominence grows from a
quarter to three quarters of the pitch, and the regularly spaced subset with the largest
weighted sum is kept. Between two chosen discs lie whole vertebrae: a gap off a whole number of
pitches costs prominence (:func:`_spacing_penalty`), so a lytic or destroyed body -- whose dark
middle can read below disc tissue and lies half a pitch from the discs around it -- does not
replace those discs (the spacing of neighbouring discs as a prior: Alomari et al., "Labeling of
lumbar discs using both pixel- and object-level features with a two-level probabilistic model",
IEEE TMI 30(1):1-10, 2011; Klinder et al. 2009; Glocker et al. 2012).

The expected pitch (body + disc height along the column) comes from the body's own width: adult
body height is roughly 0.7-0.8 times its width from C3 to L5 (Panjabi et al., Spine 1991/1992
morphometry series give C: width ~17 mm, height ~14 mm; L: ~45-50 mm, ~27 mm) -- so the pitch
adapts along a full spine without knowing the level.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from spinewatch.imaging.segmentation.column import Column

__all__ = [
    "Disc",
    "body_profile",
    "body_profile_smooth",
    "centre_line_mm",
    "expected_pitch_vox",
    "find_discs",
    "spacing_problem",
]

#: A disc minimum lies this far below the profile maxima on both sides (HU). Engineering choice:
#: discs read 70-100 HU, endplates at 2-3 mm voxels 150-400 HU, marrow 60-250 HU.
DISC_PROMINENCE_HU = 35.0
#: Typical disc tissue (annulus and nucleus) at 2-3 mm voxels, HU, and how far from the bodies'
#: median level towards it a minimum must reach to be a disc. Engineering choices: a lytic
#: lesion or a dense island inside a body makes a shallower dip than a disc does.
DISC_TISSUE_HU = 80.0
DISC_LEVEL_FRACTION = 0.4
#: A minimum flanked within this fraction of the expected pitch on both sides by profile maxima
#: ``DISC_PROMINENCE_HU`` above the bodies' median level is taken for a disc between two
#: endplates even when it does not read darker than the marrow: at 3 mm a thin lumbosacral disc
#: averages with its endplates to the level of a fatty marrow. Engineering choice: a disc with
#: its endplates is about a quarter of the pitch high.
ENDPLATE_REACH_FRACTION = 0.3
#: A valley up to NARROW_PITCH[0] pitches wide (at half its prominence) keeps its full weight,
#: falling linearly to none at NARROW_PITCH[1]: a disc is 0.2-0.3 of body + disc height from
#: the cervical to the lumbar spine (Frobin et al., Clin Biomech 2002; Panjabi et al. lumbar
#: morphometry) -- the real scans' discs measured 0.18-0.38 pitches -- while the marrow between
#: one body's own endplates makes a valley of 0.44-0.54; next to a biconcave or crushed body,
#: though, the disc fills the lost height and its valley widens towards half a pitch, so wide
#: valleys lose weight rather than being refused. Engineering choice.
NARROW_PITCH = (0.35, 0.75)
#: Neighbouring discs are at least this fraction of the expected pitch apart.
MIN_GAP_FRACTION = 0.5
#: Neighbouring discs of the chosen set are at least this many pitches apart (a body is
#: never shorter than ~2/3 of body + disc height). Engineering choice.
MIN_DISC_GAP = 0.65
#: A gap between two chosen discs within this many pitches of a whole number of vertebrae
#: costs nothing (neighbouring pitches differ by well under a quarter; the expected pitch
#: carries the width estimate's error too). Engineering choice.
SPACING_TOLERANCE = 0.25
#: The profile's period is searched within this range of the width-based pitch, and used when
#: its autocorrelation reaches PERIOD_MIN_CORR there. Engineering choices.
PERIOD_RANGE = (0.7, 1.5)
PERIOD_MIN_CORR = 0.2
#: Plausible gap between neighbouring discs, in expected pitches: below it a body was split,
#: above it a disc was missed (a pitch varies by well under +-35 % between neighbours, and the
#: width-based estimate carries its own error). Engineering choice.
GAP_RANGE = (0.65, 1.45)
#: A disc inferred from the spacing is searched this many pitches around its expected place.
#: Engineering choice: neighbouring pitches differ by well under a quarter.
INFER_WINDOW = 0.25
#: Expected pitch (body height + disc) per mm of body width (see the module docstring).
PITCH_PER_WIDTH = 0.75
#: How far a disc's plane may tilt from the column's tangent, degrees (the lumbosacral disc
#: is wedged ~10-20 degrees; Panjabi/morphometry and clinical lordosis figures vary).
#: Engineering choice.
NORMAL_SEARCH_DEG = 20.0
#: HU range the profile is clipped to: cement or a dense sclerotic island must not make a
#: body look like two; fat must not make marrow look like a disc.
PROFILE_HU = (-50.0, 450.0)


@dataclass(frozen=True)
class Disc:
    """A disc: slice index ``z`` (float, sub-slice), centre ``point`` and unit ``normal`` (the
    column's local superior direction), both in working-voxel coordinates scaled to mm."""

    z: float
    point_mm: tuple[float, float, float]
    normal: tuple[float, float, float]
    depth: float
    #: Half the disc's height along the column, mm: half the profile valley's width at half its
    #: prominence (includes the partial-volume blur of the slices).
    half_height_mm: float = 0.0
    #: placed from its neighbours' spacing at a weak minimum (see ``_fill_gaps``)
    inferred: bool = False


def centre_line_mm(
    column: Column, spacing_mm: tuple[float, float, float]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(points, tangents): the body centre of each slice in mm (nz, 3) and the column's unit
    superior direction there (nz, 3), smoothed over ~2 slices."""
    nz = column.x.size
    c = np.stack(
        [column.x * spacing_mm[0], column.y * spacing_mm[1], np.arange(nz) * spacing_mm[2]], 1
    )
    smooth = ndi.gaussian_filter1d(c, 2.0, axis=0, mode="nearest") if nz > 1 else c
    t = np.gradient(smooth, axis=0) if nz > 1 else np.array([[0.0, 0.0, 1.0]])
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    return c, np.asarray(t, dtype=np.float64)


def body_profile(
    hu: npt.NDArray[np.float32], column: Column, spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.float64]:
    """Mean HU (clipped to ``PROFILE_HU``) in a box at the body centre of each slice, in the
    plane normal to the column (length nz).

    The box spans 0.5 of the body's half width to each side and 0.5 of its half depth front and
    back -- inside the body, clear of its curved rim and of the pedicles. All slices are sampled
    in one :func:`scipy.ndimage.map_coordinates` call on 7 x 5 points each.
    """
    nz = hu.shape[2]
    c, t = centre_line_mm(column, spacing_mm)
    right = np.array([1.0, 0.0, 0.0])
    u = right[None, :] - t[:, :1] * t
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-9)
    v = np.cross(t, u)
    hw_mm = (column.half_width * spacing_mm[0])[:, None, None]
    hd_mm = (column.half_depth * spacing_mm[1])[:, None, None]
    a = np.linspace(-0.5, 0.5, 7)[None, :, None] * hw_mm
    b = np.linspace(-0.5, 0.5, 5)[None, None, :] * hd_mm
    pts = (
        c[:, None, None, :]
        + a[..., None] * u[:, None, None, :]
        + b[..., None] * v[:, None, None, :]
    )
    coords = (pts / np.asarray(spacing_mm)).reshape(-1, 3).T
    vals = ndi.map_coordinates(hu, coords, order=1, mode="nearest")
    vals = np.clip(vals, *PROFILE_HU).reshape(nz, -1)
    return np.asarray(vals.mean(axis=1), dtype=np.float64)


def expected_pitch_vox(
    column: Column,
    spacing_mm: tuple[float, float, float],
    profile: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """Expected vertebral pitch (body + disc height) per slice, in slices along S (nz,).

    From the body width (``PITCH_PER_WIDTH``), rescaled by the column's own period when the
    ``profile`` (see :func:`body_profile`) shows one: the autocorrelation of the profile along
    the chain peaks at the pitch (endplate pairs repeat every vertebra). The width of a body
    whose cortex is faint (osteoporosis at 3 mm) is easily underestimated; its period is not.
    """
    width_mm = 2.0 * column.half_width * spacing_mm[0]
    pitch = np.asarray(PITCH_PER_WIDTH * width_mm / spacing_mm[2], dtype=np.float64)
    if profile is None:
        return pitch
    seg = profile[column.z0 : column.z1 + 1]
    base = float(np.median(pitch[column.z0 : column.z1 + 1]))
    lo, hi = int(np.floor(PERIOD_RANGE[0] * base)), int(np.ceil(PERIOD_RANGE[1] * base))
    if lo < 2 or seg.size < 2 * hi:  # fewer than two periods in view: keep the width's
        return pitch
    x = seg - seg.mean()
    denom = float((x * x).sum())
    if denom <= 0:
        return pitch
    corr = np.array([float((x[:-lag] * x[lag:]).sum()) / denom for lag in range(lo, hi + 1)])
    best = int(np.argmax(corr))
    if corr[best] < PERIOD_MIN_CORR:
        return pitch
    return np.asarray(pitch * (lo + best) / base, dtype=np.float64)


def spacing_problem(
    discs: list[Disc], pitch_vox: npt.NDArray[np.float64], spacing_mm: tuple[float, float, float]
) -> str | None:
    """Why the spacing of neighbouring discs is implausible (a gap outside ``GAP_RANGE``
    expected pitches: a missed disc or a split body), or None when it is plausible."""
    for lo, hi in itertools.pairwise(discs):
        gap = hi.z - lo.z
        expected = pitch_vox[min(max(round(0.5 * (lo.z + hi.z)), 0), pitch_vox.size - 1)]
        ratio = gap / max(expected, 1e-6)
        if not GAP_RANGE[0] <= ratio <= GAP_RANGE[1]:
            return (
                f"discs {gap * spacing_mm[2]:.0f} mm apart at slices {lo.z:.0f}-{hi.z:.0f} "
                f"({ratio:.2f} of the {expected * spacing_mm[2]:.0f} mm expected from the body "
                "width)"
            )
    return None


def body_profile_smooth(
    profile: npt.NDArray[np.float64], spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.float64]:
    """The profile lightly smoothed along S (a Gaussian of ~1 mm, at least half a slice)."""
    return np.asarray(
        ndi.gaussian_filter1d(profile, max(0.5, 1.0 / spacing_mm[2]), mode="nearest"),
        dtype=np.float64,
    )


def _valley_width(profile: npt.NDArray[np.float64], z: int, level: float) -> int:
    """Slices between the points left and right of ``z`` where ``profile`` climbs back to
    ``level`` (the valley's full width at half its prominence)."""
    left = z
    while left > 0 and profile[left] < level:
        left -= 1
    right = z
    while right < profile.size - 1 and profile[right] < level:
        right += 1
    return right - left


def _spacing_penalty(gap_pitches: float) -> float:
    """What a gap of ``gap_pitches`` expected pitches between two chosen discs costs (HU of
    prominence): nothing within ``SPACING_TOLERANCE`` of a whole number of vertebrae (one, or
    two or more with a disc missed -- :func:`_fill_gaps` looks for it), rising linearly to
    ``DISC_PROMINENCE_HU`` half-way between two whole numbers. Between two discs lie whole
    vertebrae: a minimum half a pitch from a disc is inside a body (a lytic lesion, the marrow
    between a body's own endplates), whatever its depth."""
    off = abs(gap_pitches - max(1.0, round(gap_pitches)))
    return DISC_PROMINENCE_HU * max(0.0, off - SPACING_TOLERANCE) / (0.5 - SPACING_TOLERANCE)


def _regular_subset(
    prominent: list[tuple[int, float]], pitch_vox: npt.NDArray[np.float64]
) -> list[int]:
    """The subset of (slice, prominence) minima with the largest summed prominence in which
    neighbours are at least ``MIN_DISC_GAP`` pitches apart (dynamic programming along z).

    In an osteoporotic spine the middle of a body can dip between its two bright endplates as
    deep as a disc; such a dip lies half a pitch from the discs on both sides, so a set holding
    it loses two discs for one and the discs win."""
    if not prominent:
        return []
    n = len(prominent)
    best = np.zeros(n)
    prev = np.full(n, -1)
    for i, (zi, pi) in enumerate(prominent):
        best[i] = pi
        for j in range(i):
            zj = prominent[j][0]
            pitch = 0.5 * (pitch_vox[zi] + pitch_vox[zj])
            if zi - zj < MIN_DISC_GAP * pitch:
                continue
            score = best[j] + pi - _spacing_penalty((zi - zj) / pitch)
            if score > best[i]:
                best[i], prev[i] = score, j
    i = int(np.argmax(best))
    out = []
    while i >= 0:
        out.append(prominent[i][0])
        i = int(prev[i])
    return sorted(out)


def _disc_normal(
    hu: npt.NDArray[np.float32],
    point_mm: npt.NDArray[np.float64],
    tangent: npt.NDArray[np.float64],
    column: Column,
    z: int,
    spacing_mm: tuple[float, float, float],
) -> npt.NDArray[np.float64]:
    """The disc's own plane: the column's tangent tilted by up to ``NORMAL_SEARCH_DEG`` (about
    the right-left and the antero-posterior axes) to where a disc-sized patch through the disc
    centre reads darkest (clipped HU). The lumbosacral disc is wedged and tilted more than the
    line through the body centres (and a lordotic or wedged disc elsewhere too); a plane along
    the tangent would cut the promontory into L5."""
    right = np.array([1.0, 0.0, 0.0])
    u0 = right - float(right @ tangent) * tangent
    u0 /= np.linalg.norm(u0)
    v0 = np.cross(tangent, u0)
    hw = 0.6 * column.half_width[z] * spacing_mm[0]
    hd = 0.6 * column.half_depth[z] * spacing_mm[1]
    a = np.linspace(-hw, hw, 7)
    b = np.linspace(-hd, hd, 5)
    best, best_n = np.inf, tangent
    angles = np.deg2rad(np.arange(-NORMAL_SEARCH_DEG, NORMAL_SEARCH_DEG + 1e-6, 5.0))
    for sag in angles:  # rotation about the right-left axis u0
        for cor in angles[::2]:  # rotation about the antero-posterior axis v0
            n = tangent * np.cos(sag) * np.cos(cor) + v0 * np.sin(sag) + u0 * np.sin(cor)
            n /= np.linalg.norm(n)
            u = u0 - float(u0 @ n) * n
            u /= np.linalg.norm(u)
            v = np.cross(n, u)
            pts = point_mm[None, None, :] + a[:, None, None] * u + b[None, :, None] * v
            coords = (pts / np.asarray(spacing_mm)).reshape(-1, 3).T
            vals = ndi.map_coordinates(hu, coords, order=1, mode="nearest")
            score = float(np.clip(vals, *PROFILE_HU).mean())
            if score < best - 1e-6:
                best, best_n = score, n
    return np.asarray(best_n, dtype=np.float64)


def _minima(
    prof: npt.NDArray[np.float64],
    smooth: npt.NDArray[np.float64],
    inside: npt.NDArray[np.bool_],
    pitch_vox: npt.NDArray[np.float64],
) -> tuple[list[tuple[int, float]], dict[int, int], list[tuple[int, float]]]:
    """Disc candidates along the profile: (slice, weighted prominence) of the minima that pass
    the disc tests, the valley width of each (slices), and the weak minima (slice, prominence
    on the deeper side) that :func:`_fill_gaps` may use."""
    nz = smooth.size
    candidates = [
        z
        for z in range(1, nz - 1)
        if inside[z] and smooth[z] <= smooth[z - 1] and smooth[z] < smooth[z + 1]
    ]
    # a disc also reads well below the bodies' own level: at least 40 % of the way from the
    # median of the profile (mostly bodies) down to disc tissue
    body_level = float(np.median(smooth[inside])) if inside.any() else 0.0
    ceiling = body_level - DISC_LEVEL_FRACTION * max(body_level - DISC_TISSUE_HU, 0.0)
    # marrow at or below disc tissue (fatty or osteoporotic marrow, Pickhardt et al. 2013): a
    # disc cannot read darker than the bodies, and the dark valleys are the bodies' own marrow
    # between their endplates; only a minimum between two close endplates is a disc then
    # (the marrow's level is the profile's lower quartile: the bodies fill most of the column,
    # but endplate zones of low-density bodies are wide and lift the median)
    marrow_level = float(np.percentile(smooth[inside], 25)) if inside.any() else 0.0
    fatty = marrow_level < DISC_TISSUE_HU
    prominent: list[tuple[int, float]] = []
    widths: dict[int, int] = {}
    weak: list[tuple[int, float]] = []
    for z in candidates:
        reach = max(2, round(MIN_GAP_FRACTION * pitch_vox[z]))
        lo, hi = max(0, z - reach), min(nz, z + reach + 1)
        left, right = smooth[lo:z].max(initial=-1e9), smooth[z + 1 : hi].max(initial=-1e9)
        prom = min(left, right) - smooth[z]
        width = _valley_width(smooth, z, smooth[z] + 0.5 * max(prom, 1.0))
        if (
            max(left, right) - smooth[z] >= DISC_PROMINENCE_HU
            and width < NARROW_PITCH[1] * (pitch_vox[z])
        ):
            weak.append((z, float(max(left, right) - smooth[z])))
            widths[z] = width
        # unsmoothed: a thin disc stays deep; or a thin disc smeared by partial volume between
        # two bright endplates close on both sides
        fr = max(1, round(ENDPLATE_REACH_FRACTION * pitch_vox[z]))
        plates = min(
            smooth[max(0, z - fr) : z].max(initial=-1e9),
            smooth[z + 1 : z + fr + 1].max(initial=-1e9),
        )
        endplates = plates >= body_level + DISC_PROMINENCE_HU
        if not endplates and (fatty or prof[max(z - 1, 0) : z + 2].min() > ceiling):
            continue
        if prom >= DISC_PROMINENCE_HU:
            narrow = np.clip(
                (NARROW_PITCH[1] - width / pitch_vox[z]) / (NARROW_PITCH[1] - NARROW_PITCH[0]),
                0.0,
                1.0,
            )
            if narrow > 0:
                prominent.append((z, float(prom * narrow)))
                widths[z] = width
    return prominent, widths, weak


def _fill_gaps(
    kept: list[int],
    weak: list[tuple[int, float]],
    pitch_vox: npt.NDArray[np.float64],
    z0: int,
    z1: int,
) -> list[int]:
    """Discs inferred where the found ones leave a gap of more than ``GAP_RANGE[1]`` expected
    pitches (between two discs, or between a disc and the end of the column): at each missing
    position (the gap divided evenly), the strongest weak minimum within ``INFER_WINDOW``
    pitches of it -- one endplate bright, the other smeared by partial volume or a fracture.
    The vertebrae on both sides share one period (Klinder et al. 2009 and Glocker et al. 2012
    likewise use the expected spacing of neighbours to find a vertebra the image shows weakly).
    Returns the inferred slices (not in ``kept``)."""
    out: list[int] = []
    if not kept:
        return out

    def at(z: float) -> float:
        return float(pitch_vox[min(max(round(z), 0), pitch_vox.size - 1)])

    edges = [float(z0), *map(float, sorted(kept)), float(z1)]
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        p = at(0.5 * (a + b))
        gap = b - a
        end = i == 0 or i == len(edges) - 2
        n_missing = round(gap / p) - 1 if gap > GAP_RANGE[1] * p else 0
        for k in range(1, n_missing + 1):
            # a gap at the column's end: counted from the disc inwards (the end is a cut body)
            expected = (
                (b - k * p) if i == 0 else (a + k * p) if end else a + k * gap / (n_missing + 1)
            )
            near = [
                (prom, z)
                for z, prom in weak
                if abs(z - expected) <= INFER_WINDOW * p
                and all(abs(z - o) >= MIN_DISC_GAP * p for o in (*kept, *out))
            ]
            if near:
                out.append(max(near)[1])
    return out


def find_discs(
    hu: npt.NDArray[np.float32], column: Column, spacing_mm: tuple[float, float, float]
) -> tuple[list[Disc], npt.NDArray[np.float64]]:
    """The discs along ``column``, ordered by ascending z (caudal first), and the profile they
    were found in (``hu``: working grid, axes R, A, S). A disc inferred from its neighbours'
    spacing (:func:`_fill_gaps`) has ``inferred`` set."""
    prof = body_profile(hu, column, spacing_mm)
    smooth = body_profile_smooth(prof, spacing_mm)
    nz = smooth.size
    pitch_vox = expected_pitch_vox(column, spacing_mm, smooth)
    inside = np.zeros(nz, dtype=bool)
    inside[column.z0 : column.z1 + 1] = True
    prominent, widths, weak = _minima(prof, smooth, inside, pitch_vox)
    kept = _regular_subset(prominent, pitch_vox)
    inferred = set(_fill_gaps(kept, weak, pitch_vox, column.z0, column.z1))
    c, t = centre_line_mm(column, spacing_mm)
    grid = np.arange(nz, dtype=np.float64)
    discs = []
    for z in sorted({*kept, *inferred}):
        zf = float(z)
        # sub-slice position: parabola through the minimum and its neighbours
        p0, p1, p2 = smooth[z - 1], smooth[z], smooth[z + 1]
        den = p0 - 2 * p1 + p2
        if den > 1e-9:
            zf += float(np.clip(0.5 * (p0 - p2) / den, -0.5, 0.5))
        point = tuple(float(np.interp(zf, grid, c[:, i])) for i in range(3))
        n = np.array([np.interp(zf, grid, t[:, i]) for i in range(3)])
        n /= np.linalg.norm(n)
        n = _disc_normal(hu, np.array(point), n, column, z, spacing_mm)
        discs.append(
            Disc(
                zf,
                (point[0], point[1], point[2]),
                (float(n[0]), float(n[1]), float(n[2])),
                float(smooth[z]),
                0.5 * widths[z] * spacing_mm[2] / max(abs(float(n[2])), 0.5),
                inferred=z in inferred,
            )
        )
    return discs, prof
