"""The picture a radiologist recognises: a curved sagittal reformat along the spine, by risk.

Method (all in world millimetres, RAS+):

1. The body centroids of the report's vertebrae, in cranio-caudal level order, are fitted with a
   smoothing parametric cubic spline (:func:`scipy.interpolate.make_splprep`, parameterised by
   chord length, a residual of about :data:`CENTROID_SD_MM` per point allowed), resampled at equal
   arc length (``px_mm``, default 0.75 mm) and extended along its end tangents by ``extend_mm``.
   One vertebra gives a straight line along its own superior axis.
2. The left-right axis ``r`` is the mean of the vertebrae's own right axes (world +x without
   frames). At each curve sample with cranial unit tangent ``t`` the in-plane anterior direction
   is ``a = t x r`` (normalised): perpendicular to the curve, inside the sagittal plane the curve
   and ``r`` define.
3. Each output row samples the line ``c + d * a`` for ``d`` from ``+anterior_mm`` (left column:
   anterior on the left, as radiologists view a sagittal) to ``-posterior_mm``; row 0 is the most
   cranial sample (head at the top). World points go to voxel indices with
   :meth:`~spinewatch.imaging.volume.Grid.to_voxel` and are sampled with
   :func:`scipy.ndimage.map_coordinates` (linear for CT, nearest for labels) from the smallest
   voxel box that holds them: the volume is never resampled (memory stays that of the picture).
4. Bone window (W 1800 / L 400) grey for a CT; an MRI (:class:`MrVolume`, signal units) is drawn
   with a window from the 1st to the 99th percentile of its sampled signal -- it is a picture
   background only, never read as HU; each vertebra outlined and filled semi-transparently in the
   colour of its ``collapse_risk`` (low green, moderate amber, high red, light grey when not
   assessable -- never green --, dark grey when the report does not list it); level name with
   its confidence marker (:data:`CONFIDENCE_MARKERS`: three dots, filled for each step of
   confidence), Genant grade, lytic %, "not assessable", "diffuse infiltration" and the
   comparison's "treat signal" beside each body; a legend line for the colours and one for the
   markers; title with the scan and its acquisition (modality, contrast phase and why:
   :func:`~spinewatch.imaging.report.acquisition_summary`).

Drawn with :class:`matplotlib.figure.Figure` on an Agg canvas (no pyplot global state).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.interpolate import make_interp_spline, make_splprep

from spinewatch.core.collapse_risk import CollapseRisk
from spinewatch.core.errors import InputError
from spinewatch.imaging.report import ScanInfo, SpineReport, VertebraReport, acquisition_summary
from spinewatch.imaging.volume import CtVolume, Grid, LabelVolume, MrVolume

__all__ = [
    "BONE_WINDOW",
    "CENTROID_SD_MM",
    "CONFIDENCE_MARKERS",
    "RISK_COLOURS",
    "CurvedReformat",
    "RenderError",
    "curved_sagittal",
    "ellipsize_middle",
    "render_sagittal",
    "spine_curve",
]

logger = logging.getLogger(__name__)

BONE_WINDOW: tuple[float, float] = (1800.0, 400.0)
"""(width, level) in HU of the grey-scale window."""
CENTROID_SD_MM = 1.5
"""Expected scatter (mm) of a body centroid about the smooth spinal curve (spline smoothing)."""
RISK_COLOURS: dict[str | None, str] = {
    "low": "#2ca02c",
    "not_assessable": "#9aa5b1",
    "moderate": "#ff9f1c",
    "high": "#e3262b",
    None: "#5d6773",
}
"""Overlay colour per ``collapse_risk``: grey for not assessable, a darker grey (None) for a
label the report does not list."""
CONFIDENCE_MARKERS: dict[str, str] = {
    "high": "\u25cf\u25cf\u25cf",
    "medium": "\u25cf\u25cf\u25cb",
    "low": "\u25cf\u25cb\u25cb",
}
"""Marker after each level name per ``confidence`` (filled dots: high 3, medium 2, low 1)."""

_OUTSIDE_HU = np.nan


class RenderError(InputError):
    """A report or volume the reformat cannot be drawn from (names the key or value)."""


FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class CurvedReformat:
    """A curved sagittal reformat, sampled.

    ``hu``: (rows, cols) float32 HU, NaN outside the CT (None without a CT); ``signal``: the same
    for an MRI's signal units (None unless the image is an MRI); ``labels``: (rows,
    cols) label values (0 outside); row 0 is cranial, column 0 anterior; both axes ``px_mm`` mm
    per pixel. ``points_mm`` (rows, 3) are the curve samples in world mm, ``anterior`` (rows, 3)
    the unit sampling directions, ``offsets_mm`` (cols,) the signed distance along ``anterior`` of
    each column. ``level_rows`` maps each vertebra level drawn to its row (nearest curve sample to
    its body centroid).
    """

    hu: npt.NDArray[np.float32] | None
    labels: npt.NDArray[np.int64]
    points_mm: FloatArray
    anterior: FloatArray
    offsets_mm: FloatArray
    px_mm: float
    level_rows: dict[str, int]
    signal: npt.NDArray[np.float32] | None = None


#: Percentiles of an MRI's sampled signal mapped to black and white.
MR_WINDOW_PERCENTILES = (1.0, 99.0)


# -- geometry ---------------------------------------------------------------------------------


def _unit(v: FloatArray) -> FloatArray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.asarray(v / np.where(n > 0, n, 1.0), dtype=np.float64)


def spine_curve(
    centroids_mm: npt.ArrayLike,
    *,
    px_mm: float = 0.75,
    extend_mm: float = 25.0,
    superior: npt.ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """A smooth curve through body centroids, resampled every ``px_mm`` of arc length.

    ``centroids_mm`` (n, 3) world mm, cranial first. Returns ``(points, tangents)``, each
    (m, 3): points from ``extend_mm`` above the first centroid to ``extend_mm`` below the last,
    and unit tangents pointing cranially. With one centroid the curve is the straight line along
    ``superior`` (default world +z).
    """
    pts = np.asarray(centroids_mm, dtype=np.float64).reshape(-1, 3)
    if len(pts) == 0:
        raise RenderError("no body centroid to draw the spine through")
    if px_mm <= 0 or not np.isfinite(px_mm):
        raise RenderError(f"px_mm must be a positive number of mm, got {px_mm!r}")
    # Drop repeated points (two levels at one place would make the chord parameter degenerate).
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-6
    pts = pts[keep]

    if len(pts) == 1:
        up = _unit(np.asarray(superior if superior is not None else (0.0, 0.0, 1.0), float))
        dense = pts[0] + np.outer(np.array([1.0, -1.0]), up)  # a 2 mm segment, cranial first
    else:
        u = np.linspace(0.0, 1.0, max(200, 20 * len(pts)))
        if len(pts) >= 4:
            weights = np.full(len(pts), 1.0 / CENTROID_SD_MM)
            spl, _ = make_splprep(pts.T, w=weights, s=float(len(pts)), k=3)
            dense = np.asarray(spl(u), dtype=np.float64).T
        else:  # two or three points: the interpolating line or parabola (chord-length parameter)
            chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
            interp = make_interp_spline(chord / chord[-1], pts, k=len(pts) - 1)
            dense = np.asarray(interp(u), dtype=np.float64)

    seg = np.linalg.norm(np.diff(dense, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    total = float(arc[-1])
    # Resample at equal arc length; extend linearly beyond both ends along the end tangents.
    s = np.arange(-extend_mm, total + extend_mm + 1e-9, px_mm)
    inner = np.clip(s, 0.0, total)
    points = np.stack([np.interp(inner, arc, dense[:, d]) for d in range(3)], axis=1)
    head_dir = _unit(dense[0] - dense[min(1, len(dense) - 1)])  # cranial
    tail_dir = _unit(dense[-1] - dense[max(len(dense) - 2, 0)])  # caudal
    before, after = s < 0, s > total
    points[before] = dense[0] + np.outer(-s[before], head_dir)
    points[after] = dense[-1] + np.outer(s[after] - total, tail_dir)
    tangents = -np.gradient(points, axis=0)  # points run caudally; tangents point cranially
    return points, _unit(tangents)


# -- report parsing ---------------------------------------------------------------------------


def _report_vertebrae(report: SpineReport) -> list[VertebraReport]:
    """The report's vertebrae with a body centroid, in cranio-caudal order."""
    if not isinstance(report, SpineReport):
        raise RenderError(
            f"report {type(report).__name__}: expected a SpineReport "
            "(SpineReport.from_json_dict reads a report's JSON)"
        )
    out = [v for v in report.vertebrae if v.body_centroid_mm is not None]
    return sorted(out, key=lambda v: v.level)


def _frame_axis(vertebrae: Sequence[VertebraReport], which: str) -> FloatArray | None:
    """Mean of the vertebrae's frame axes ('superior', 'anterior' or 'right'), or None."""
    vectors = []
    for v in vertebrae:
        if v.frame is None:
            continue
        sup = np.asarray(v.frame.superior, dtype=np.float64)
        ant = np.asarray(v.frame.anterior, dtype=np.float64)
        vec = {"superior": sup, "anterior": ant, "right": np.cross(ant, sup)}[which]
        if np.linalg.norm(vec) > 1e-6:
            vectors.append(_unit(vec))
    if not vectors:
        return None
    mean = np.mean(vectors, axis=0)
    return _unit(mean) if np.linalg.norm(mean) > 1e-6 else None


# -- sampling ---------------------------------------------------------------------------------


def _sample(
    volume: npt.NDArray[Any], grid: Grid, world: FloatArray, *, order: int, cval: float
) -> npt.NDArray[Any]:
    """Sample ``volume`` at world points (..., 3) from the smallest voxel box holding them."""
    vox = grid.to_voxel(world)
    flat = vox.reshape(-1, 3)
    shape = np.asarray(grid.shape)
    lo = np.clip(np.floor(flat.min(axis=0)).astype(int) - 1, 0, shape)
    hi = np.clip(np.ceil(flat.max(axis=0)).astype(int) + 2, 0, shape)
    out_dtype = np.float32 if order > 0 else np.int64
    if np.any(hi <= lo):  # the picture lies entirely outside the volume
        return np.full(world.shape[:-1], cval, dtype=out_dtype)
    box = volume[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    coords = (vox - lo).reshape(-1, 3).T
    # Points outside the real volume get cval; the box edges inside the volume are padded.
    inside = np.all((vox >= -0.5) & (vox <= shape - 0.5), axis=-1).reshape(-1)
    if order == 0:
        box = box if box.dtype.kind in "iu" and box.dtype.itemsize <= 4 else box.astype(np.int64)
    values = ndimage.map_coordinates(
        box, coords, order=order, mode="nearest", output=out_dtype, prefilter=False
    )
    values[~inside] = cval
    result: npt.NDArray[Any] = values.reshape(world.shape[:-1])
    return result


def curved_sagittal(
    ct: CtVolume | MrVolume | None,
    labels: LabelVolume,
    report: SpineReport,
    *,
    px_mm: float = 0.75,
    anterior_mm: float = 40.0,
    posterior_mm: float = 60.0,
    extend_mm: float = 25.0,
) -> CurvedReformat:
    """Sample the curved sagittal reformat (see the module docstring for the method).

    ``labels`` (and ``ct`` when given: a CT, or an MRI drawn as background) on any grids; only
    the points of the picture are sampled.
    """
    vertebrae = _report_vertebrae(report)
    if not vertebrae:
        raise RenderError("report has no vertebra with a body centroid: nothing to draw")
    if anterior_mm < 0 or posterior_mm < 0 or anterior_mm + posterior_mm <= 0:
        raise RenderError(
            f"anterior_mm and posterior_mm must be >= 0 with a positive sum, got "
            f"{anterior_mm}, {posterior_mm}"
        )
    centroids = np.array([v.body_centroid_mm for v in vertebrae], dtype=np.float64)
    # A vertebra cut by the scan's edge has a displaced centroid: fit without it when we can.
    whole = np.array([not v.truncated for v in vertebrae])
    fit = centroids[whole] if whole.sum() >= 2 or whole.sum() == whole.size else centroids
    superior = _frame_axis(vertebrae, "superior")
    points, tangents = spine_curve(fit, px_mm=px_mm, extend_mm=extend_mm, superior=superior)
    right = _frame_axis(vertebrae, "right")
    if right is None:
        right = np.array([1.0, 0.0, 0.0])
    anterior = np.cross(tangents, right)
    # Where the curve runs along r (never in a spine), fall back to the world anterior axis.
    degenerate = np.linalg.norm(anterior, axis=1) < 1e-3
    anterior[degenerate] = np.array([0.0, 1.0, 0.0])
    anterior = _unit(anterior)

    offsets = np.arange(anterior_mm, -posterior_mm - 1e-9, -px_mm)
    world = points[:, None, :] + offsets[None, :, None] * anterior[:, None, :]
    hu = signal = None
    if isinstance(ct, CtVolume):
        hu = _sample(ct.hu, ct.grid, world, order=1, cval=_OUTSIDE_HU).astype(np.float32)
    elif isinstance(ct, MrVolume):
        signal = _sample(ct.signal, ct.grid, world, order=1, cval=np.nan).astype(np.float32)
    lab = _sample(labels.labels, labels.grid, world, order=0, cval=0).astype(np.int64)

    level_rows: dict[str, int] = {}
    for v, c in zip(vertebrae, centroids, strict=True):
        level_rows[str(v.level)] = int(np.argmin(np.linalg.norm(points - c, axis=1)))
    return CurvedReformat(
        hu=hu,
        labels=lab,
        points_mm=points,
        anterior=anterior,
        offsets_mm=offsets,
        px_mm=float(px_mm),
        level_rows=level_rows,
        signal=signal,
    )


# -- drawing ----------------------------------------------------------------------------------


def _label_levels(
    values: npt.NDArray[np.int64],
    vertebrae: Sequence[VertebraReport],
    convention: Any,
) -> dict[int, str]:
    """Level name of each *vertebra* label value in the picture (other structures are left out).

    The report's own ``label`` fields come first; ``convention`` names vertebrae the report does
    not list (e.g. one too truncated to analyse).
    """
    names: dict[int, str] = {}
    for v in vertebrae:
        if v.label is not None:
            names[v.label] = str(v.level)
    if convention is not None:
        from spinewatch.core.conventions import vertebra_labels

        for value, level in vertebra_labels((int(x) for x in values), convention).items():
            names.setdefault(value, str(level))
    present = {int(x) for x in values}
    return {value: name for value, name in names.items() if value in present}


def ellipsize_middle(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters by replacing its middle with "…" (the
    start and the end of a file name say the most: the series and the extension).

    >>> ellipsize_middle("patient-0042_thoraco-lumbar_CT.nii.gz", 20)
    'patient-0…_CT.nii.gz'
    """
    if max_chars < 1:
        raise RenderError(f"max_chars {max_chars!r} is invalid; expected an integer >= 1")
    if len(text) <= max_chars:
        return text
    keep = max_chars - 1
    head = (keep + 1) // 2
    tail = keep - head
    return text[:head] + "…" + (text[len(text) - tail :] if tail else "")


def _signal_grey(signal: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """An MRI's sampled signal to 0-1 grey, window from the percentiles of what is in view."""
    finite = signal[np.isfinite(signal)]
    if finite.size == 0:
        return np.zeros(signal.shape, dtype=np.float64)
    lo, hi = (float(v) for v in np.percentile(finite, MR_WINDOW_PERCENTILES))
    scaled = (np.nan_to_num(signal, nan=lo).astype(np.float64) - lo) / max(hi - lo, 1e-6)
    return np.asarray(np.clip(scaled, 0.0, 1.0), dtype=np.float64)


def _scan_lines(scan: ScanInfo, has_ct: bool) -> tuple[str, list[str]]:
    """The source's file name (whole: fitted to the picture later) and the subtitle's facts,
    the acquisition (modality, contrast phase, why) first. ``has_ct``: an image (CT or MRI)
    was drawn."""
    name = Path(scan.ct if has_ct and scan.ct else scan.labels or "label map").name
    summary = acquisition_summary(scan, evidence=False) if has_ct else ""
    bits = [summary] if summary else []
    if not has_ct:
        bits.append("label map only (no CT)")
    if scan.study_date:
        bits.append(f"study {scan.study_date}")
    if scan.spacing_mm is not None:
        bits.append("voxel " + " x ".join(f"{float(s):.2g}" for s in scan.spacing_mm) + " mm")
    if scan.orientation:
        bits.append(scan.orientation)
    if scan.labels_convention:
        bits.append(f"labels: {scan.labels_convention}")
    if scan.analysed_at:
        bits.append(f"analysed {scan.analysed_at[:16].replace('T', ' ')}")
    if scan.spinewatch_version:
        bits.append(f"SpineWatch {scan.spinewatch_version}")
    return name, bits


def _text_width_px(fig: Any, text: str, **props: Any) -> float:
    """The rendered width of ``text`` in pixels with the text properties ``props``."""
    artist = fig.text(0.0, 0.0, text, **props)
    try:
        return float(artist.get_window_extent(renderer=fig.canvas.get_renderer()).width)
    finally:
        artist.remove()


def _fit_middle(fig: Any, prefix: str, name: str, max_px: float, **props: Any) -> str:
    """``prefix + name`` with ``name`` ellipsized in the middle until it fits ``max_px``."""
    if _text_width_px(fig, prefix + name, **props) <= max_px:
        return prefix + name
    lo, hi = 1, len(name)  # the longest cut that fits, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _text_width_px(fig, prefix + ellipsize_middle(name, mid), **props) <= max_px:
            lo = mid
        else:
            hi = mid - 1
    return prefix + ellipsize_middle(name, lo)


def _wrap_bits(fig: Any, bits: Sequence[str], sep: str, max_px: float, **props: Any) -> list[str]:
    """``bits`` joined by ``sep`` into as few lines as fit ``max_px`` each (greedy)."""
    lines: list[str] = []
    for bit in bits:
        if lines and _text_width_px(fig, lines[-1] + sep + bit, **props) <= max_px:
            lines[-1] += sep + bit
        else:
            lines.append(bit)
    return lines


def _detail(v: VertebraReport) -> str:
    """The line(s) under a level name: the state (not assessable, treat signal, diffuse
    infiltration) on a line of its own, then grade, lytic % and cement -- short enough for the
    label column."""
    state = []
    if v.collapse_risk is CollapseRisk.NOT_ASSESSABLE:
        state.append("not assessable")
    if v.change.treat_signal is True:
        state.append("treat signal")
    if v.infiltration.infiltrated is True:
        state.append("diffuse infiltration")
    parts: list[str] = []
    grade, deformity = v.genant.grade, v.genant.deformity
    if v.truncated:
        parts.append("cut by scan edge")
    elif grade is not None:
        shape = "" if deformity is None or deformity.value == "none" else f" {deformity.value}"
        parts.append(f"G{int(grade)}{shape}")
    if v.lesions.fraction is not None:
        parts.append(f"lytic {v.lesions.fraction * 100:.0f}%")
    if v.cement.volume_ml is not None and v.cement.volume_ml > 0:
        parts.append("cement")
    line = "  ".join(state + parts)
    if len(line) <= _DETAIL_MAX_CHARS:
        return line
    return "\n".join(text for text in ("  ".join(state), "  ".join(parts)) if text)


#: A detail longer than this (characters) is split after the state words: the label column is
#: about 2 inches wide at 8.5 pt.
_DETAIL_MAX_CHARS = 34


def render_sagittal(
    ct: CtVolume | MrVolume | None,
    labels: LabelVolume,
    report: SpineReport,
    path: Path,
    *,
    convention: Any = None,
    px_mm: float = 0.75,
    anterior_mm: float = 40.0,
    posterior_mm: float = 60.0,
    dpi: int = 150,
) -> Path:
    """Draw the curved sagittal reformat to a PNG at ``path``; return ``path``.

    ``report``: the analysis (a JSON report is read by :meth:`SpineReport.from_json_dict`);
    ``convention`` (a
    :class:`~spinewatch.core.conventions.LabelConvention` or its name) names label values the
    report does not list. ``ct`` may be an MRI (drawn in a percentile window) or None: then the
    label mask alone is drawn.
    """
    path = Path(path)
    reformat = curved_sagittal(
        ct, labels, report, px_mm=px_mm, anterior_mm=anterior_mm, posterior_mm=posterior_mm
    )
    vertebrae = _report_vertebrae(report)
    by_level = {str(v.level): v for v in vertebrae}
    present = np.unique(reformat.labels)
    present = present[present != 0]
    if convention is None:
        convention = report.scan.labels_convention
    names = _label_levels(present, vertebrae, convention)
    has_image = reformat.hu is not None or reformat.signal is not None
    rgb, colour_of = _coloured_image(reformat, names, by_level, has_image)
    fig, ax, geometry = _figure(rgb, px_mm, dpi)
    _draw_outlines(ax, reformat, colour_of, px_mm)
    _draw_orientation_and_scale(ax, geometry)
    _draw_level_labels(ax, reformat, names, by_level, geometry, px_mm, anterior_mm)
    _draw_titles(fig, report, reformat, has_image, geometry, px_mm, dpi)
    _draw_legend(fig, vertebrae, names, by_level, geometry)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor=fig.get_facecolor())
    rows, cols = reformat.labels.shape
    logger.info("wrote curved sagittal reformat %s (%d x %d px samples)", path, rows, cols)
    return path


@dataclass(frozen=True)
class _Geometry:
    """The picture's size: the reformat in mm, the figure and the image in inches."""

    height_mm: float
    width_mm: float
    fig_w: float
    fig_h: float
    img_h_in: float


#: A thin black outline under the picture's text, readable over bone and over the dark frame.
def _outline() -> list[Any]:
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=2.5, foreground="black")]


def _confidence(v: VertebraReport) -> str | None:
    """The vertebra's confidence class name (None: not rated)."""
    c = v.confidence.confidence
    return None if c is None else c.value


def _risk_colour(entry: VertebraReport | None) -> str:
    risk = entry.collapse_risk if entry is not None else None
    return RISK_COLOURS.get(risk.value if risk is not None else None, RISK_COLOURS[None])


def _coloured_image(
    reformat: CurvedReformat,
    names: dict[int, str],
    by_level: dict[str, VertebraReport],
    has_image: bool,
) -> tuple[FloatArray, dict[int, str]]:
    """The grey base (bone window, an MRI's percentile window, or the mask in bone grey) with
    each vertebra tinted by its collapse risk; and the colour of each label value."""
    from matplotlib.colors import to_rgb

    if reformat.hu is not None:
        width, level = BONE_WINDOW
        hu = reformat.hu
        grey = np.clip((np.nan_to_num(hu, nan=-1024.0) - (level - width / 2)) / width, 0.0, 1.0)
    elif reformat.signal is not None:
        grey = _signal_grey(reformat.signal)
    else:
        grey = np.where(reformat.labels > 0, 0.62, 0.04)
    rgb = np.repeat(grey[:, :, None], 3, axis=2).astype(np.float64)
    alpha = 0.32 if has_image else 0.55
    colour_of: dict[int, str] = {}
    for value, level_name in names.items():
        colour = _risk_colour(by_level.get(level_name))
        colour_of[int(value)] = colour
        mask = reformat.labels == value
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.asarray(to_rgb(colour))
    return rgb, colour_of


def _figure(rgb: FloatArray, px_mm: float, dpi: int) -> tuple[Any, Any, _Geometry]:
    """The figure and the image's axes. Layout (inches): label column on the left, image,
    legend below, title above."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, cols = rgb.shape[:2]
    height_mm, width_mm = rows * px_mm, cols * px_mm
    img_h_in = float(np.clip(height_mm / 55.0, 5.0, 11.0))
    img_w_in = img_h_in * width_mm / height_mm
    left_in, right_in, top_in, bottom_in = 2.2, 0.35, 1.15, 1.15
    fig_w = left_in + img_w_in + right_in
    fig_w = max(fig_w, 6.6)
    fig_h = top_in + img_h_in + bottom_in
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi, facecolor="#101418")
    FigureCanvasAgg(fig)
    x0 = left_in + (fig_w - left_in - img_w_in - right_in) / 2
    ax = fig.add_axes((x0 / fig_w, bottom_in / fig_h, img_w_in / fig_w, img_h_in / fig_h))
    extent = (0.0, width_mm, height_mm, 0.0)
    ax.imshow(rgb, extent=extent, interpolation="bilinear", aspect="equal")
    return fig, ax, _Geometry(height_mm, width_mm, fig_w, fig_h, img_h_in)


def _draw_outlines(
    ax: Any, reformat: CurvedReformat, colour_of: dict[int, str], px_mm: float
) -> None:
    """Each vertebra's outline in its risk colour; the axes framed, without ticks."""
    rows, cols = reformat.labels.shape
    height_mm, width_mm = rows * px_mm, cols * px_mm
    for value, colour in colour_of.items():
        mask = (reformat.labels == value).astype(np.float64)
        if mask.sum() >= 4:
            ax.contour(
                (np.arange(cols) + 0.5) * px_mm,
                (np.arange(rows) + 0.5) * px_mm,
                mask,
                levels=[0.5],
                colors=[colour],
                linewidths=1.1,
            )
    ax.set_xlim(0.0, width_mm)
    ax.set_ylim(height_mm, 0.0)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#3a4450")


def _draw_orientation_and_scale(ax: Any, g: _Geometry) -> None:
    """Orientation letters, as on a viewer, and a vertical scale bar (50 mm, or 20 mm on a
    short picture) along the posterior edge."""
    outline = _outline()
    height_mm, width_mm = g.height_mm, g.width_mm
    for text, x, y, ha, va in (
        ("A", 2.0, height_mm / 2, "left", "center"),
        ("P", width_mm - 2.0, height_mm / 2, "right", "center"),
        ("S", width_mm / 2, 2.0, "center", "top"),
        ("I", width_mm / 2, height_mm - 2.0, "center", "bottom"),
    ):
        ax.text(
            x,
            y,
            text,
            color="#ffd54a",
            fontsize=10,
            fontweight="bold",
            ha=ha,
            va=va,
            path_effects=outline,
        )
    bar = 50.0 if height_mm > 120 else 20.0
    bx, by1 = width_mm - 3.0, height_mm - 6.0
    ax.plot([bx, bx], [by1, by1 - bar], color="white", linewidth=2.0, solid_capstyle="butt")
    for y in (by1, by1 - bar):
        ax.plot([bx - 1.5, bx], [y, y], color="white", linewidth=1.2)
    ax.text(
        bx - 2.0,
        by1 - bar / 2,
        f"{bar:.0f} mm",
        color="white",
        fontsize=8.5,
        ha="right",
        va="center",
        rotation=90,
        path_effects=outline,
    )


def _draw_level_labels(
    ax: Any,
    reformat: CurvedReformat,
    names: dict[int, str],
    by_level: dict[str, VertebraReport],
    g: _Geometry,
    px_mm: float,
    anterior_mm: float,
) -> None:
    """Level names beside each body, outside the image on the anterior side, with a leader
    line to the body's anterior edge on that row, and the vertebra's findings below."""
    from matplotlib.colors import to_rgb

    outline = _outline()
    height_mm, img_h_in = g.height_mm, g.img_h_in
    placed: list[float] = []
    min_gap = max(11.0, height_mm / 50.0)
    # room a label needs below the previous one: its name (11.5 pt, above its anchor) and the
    # previous label's detail lines (8.5 pt x 1.25 leading, 2 pt below its anchor), in data mm
    pt_mm = height_mm / img_h_in / 72.0
    detail_lines = 0
    label_of_level = {name: value for value, name in names.items()}
    for level_name, row in sorted(reformat.level_rows.items(), key=lambda kv: kv[1]):
        v = by_level[level_name]
        y = (row + 0.5) * px_mm
        gap = max(min_gap, pt_mm * (11.5 * 1.15 + 2.0 + 8.5 * 1.25 * detail_lines))
        y_text = max(y, placed[-1] + gap) if placed else y
        placed.append(y_text)
        colour = _risk_colour(v)
        # The name in a lighter tint of its risk colour: readable on the dark background.
        text_colour = tuple(0.6 * c + 0.4 for c in to_rgb(colour))
        label_value = label_of_level.get(level_name)
        hits = (
            np.flatnonzero(reformat.labels[row] == label_value)
            if label_value is not None
            else np.array([], dtype=np.intp)
        )
        x_edge = (hits[0] + 0.5) * px_mm if len(hits) else max(anterior_mm - 20.0, 0.0)
        marker = CONFIDENCE_MARKERS.get(_confidence(v) or "")
        ax.annotate(
            level_name if marker is None else f"{level_name} {marker}",
            xy=(x_edge, y),
            xytext=(-0.04, y_text),
            textcoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            color=text_colour,
            fontsize=11.5,
            fontweight="bold",
            path_effects=outline,
            annotation_clip=False,
            arrowprops={
                "arrowstyle": "-",
                "color": colour,
                "linewidth": 0.7,
                "alpha": 0.7,
                "shrinkA": 0.0,
                "shrinkB": 1.0,
            },
        )
        detail = _detail(v)
        detail_lines = detail.count("\n") + 1 if detail else 0
        if detail:
            ax.annotate(
                detail,
                xy=(-0.04, y_text),
                xycoords=("axes fraction", "data"),
                xytext=(0.0, -2.0),
                textcoords="offset points",
                ha="right",
                va="top",
                color="#e8edf2",
                fontsize=8.5,
                annotation_clip=False,
            )


def _draw_titles(
    fig: Any,
    report: SpineReport,
    reformat: CurvedReformat,
    has_image: bool,
    g: _Geometry,
    px_mm: float,
    dpi: int,
) -> None:
    """Title: the source name ellipsized in the middle to fit; the facts wrapped onto at most
    two lines; the footer (orientation, window, scale). Light grey on the dark background
    (contrast > 7:1), never smaller than 8 pt."""
    fig_w, fig_h = g.fig_w, g.fig_h
    name, bits = _scan_lines(report.scan, has_image)
    max_px = (fig_w - 0.3) * dpi
    title_props: dict[str, Any] = {"fontsize": 12.5, "fontweight": "bold"}
    title = _fit_middle(fig, "Curved sagittal reformat  ·  ", name, max_px, **title_props)
    fig.text(0.5, 1 - 0.3 / fig_h, title, ha="center", va="center", color="white", **title_props)
    sub_props: dict[str, Any] = {"fontsize": 8.5}
    lines = _wrap_bits(fig, bits, "  ·  ", max_px, **sub_props)
    if len(lines) > 2:
        lines = [lines[0], _fit_middle(fig, "", "  ·  ".join(lines[1:]), max_px, **sub_props)]
    for i, line in enumerate(lines):
        y_in = 0.62 + 0.2 * i
        fig.text(
            0.5, 1 - y_in / fig_h, line, ha="center", va="center", color="#c9d1d9", **sub_props
        )
    window = (
        "bone window W 1800 / L 400"
        if reformat.hu is not None
        else "MRI signal, 1st-99th percentile window"
        if reformat.signal is not None
        else "label map"
    )
    footer = f"anterior left, cranial up  ·  {window}  ·  {px_mm:g} mm/pixel"
    fig.text(
        0.5,
        0.82 / fig_h,
        _fit_middle(fig, "", footer, max_px, fontsize=8.5),
        ha="center",
        va="center",
        color="#c9d1d9",
        fontsize=8.5,
    )


def _draw_legend(
    fig: Any,
    vertebrae: list[VertebraReport],
    names: dict[int, str],
    by_level: dict[str, VertebraReport],
    g: _Geometry,
) -> None:
    """The risk colours (not assessable and "not in report" only when drawn) and the
    confidence markers' key."""
    from matplotlib.patches import Patch

    fig_h = g.fig_h
    handles = [
        Patch(
            facecolor=RISK_COLOURS[k],
            edgecolor="none",
            label=f"collapse risk {k}" if k == "low" else k,
        )
        for k in ("low", "moderate", "high")
    ]
    if any(v.collapse_risk is CollapseRisk.NOT_ASSESSABLE for v in vertebrae):
        handles.append(
            Patch(
                facecolor=RISK_COLOURS["not_assessable"], edgecolor="none", label="not assessable"
            )
        )
    if any(name not in by_level for name in names.values()):
        handles.append(Patch(facecolor=RISK_COLOURS[None], edgecolor="none", label="not in report"))
    legend = fig.legend(
        handles=handles,
        loc="lower center",
        ncol=len(handles),
        frameon=False,
        fontsize=9.5,
        bbox_to_anchor=(0.5, 0.1 / fig_h),
        handlelength=1.3,
        columnspacing=1.4,
    )
    for legend_text in legend.get_texts():
        legend_text.set_color("white")
    if any(_confidence(v) in CONFIDENCE_MARKERS for v in vertebrae):
        key = "   ".join(f"{m} {k}" for k, m in CONFIDENCE_MARKERS.items())
        fig.text(
            0.5,
            0.52 / fig_h,
            f"confidence per vertebra:   {key}",
            ha="center",
            va="center",
            color="#e8edf2",
            fontsize=9.0,
        )
