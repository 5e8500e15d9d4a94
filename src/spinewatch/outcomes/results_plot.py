"""Plots of the results section: Kaplan-Meier curves with numbers at risk, rates with their
Wilson CIs, cement volume per level and analgesic use over time.

Same style as :mod:`spinewatch.outcomes.plot` (matplotlib, Agg canvas on a Figure of its own:
no pyplot state); :func:`save_figure` writes PNG and SVG (``metadata`` without a date, so the
files are reproducible).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from spinewatch.outcomes.plot import PlotError
from spinewatch.outcomes.procedure_outcomes import ANALGESICS
from spinewatch.outcomes.survival import DEFAULT_DAYS, KaplanMeier

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from spinewatch.outcomes._results_table import ResultsTable

__all__ = [
    "analgesic_figure",
    "cement_volume_figure",
    "km_figure",
    "rates_figure",
    "save_figure",
]

logger = logging.getLogger(__name__)
_COLOURS = ("#1f3b73", "#b5462f", "#4f7f3a", "#8a6d1f")
_SUFFIXES = {".png": "png", ".svg": "svg"}


def _figure(width: float = 7.0, height: float = 4.6) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as _Figure

    fig = _Figure(figsize=(width, height), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _tidy(ax: object) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)  # type: ignore[attr-defined]


def save_figure(fig: Figure, path: Path | str) -> Path:
    """Write ``fig`` as PNG or SVG (by the suffix); :class:`PlotError` for another suffix or an
    unwritable path."""
    path = Path(path)
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise PlotError(f"plot path {str(path)!r} must end in .png or .svg")
    metadata = {"Software": "SpineWatch"} if fmt == "png" else {"Date": None}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format=fmt, metadata=metadata)
    except OSError as exc:
        raise PlotError(f"cannot write plot {str(path)!r}: {exc.strerror or exc}") from None
    logger.info("wrote %s", path)
    return path


def km_figure(fits: Sequence[KaplanMeier], *, days: Sequence[int] = DEFAULT_DAYS) -> Figure:
    """Step curves (percent) with shaded 95% CIs, censoring ticks, and the numbers at risk of
    each endpoint under the axis at ``days``."""
    fig = _figure(7.0, 4.2 + 0.25 * len(fits))
    grid = fig.add_gridspec(2, 1, height_ratios=(5, 0.5 + 0.35 * len(fits)))
    ax = fig.add_subplot(grid[0])
    horizon = float(max([*days, *(float(k.durations.max()) for k in fits if k.n)]))
    for colour, km in zip(_COLOURS, fits, strict=False):
        xs = np.concatenate([[0.0], km.times, [horizon]])
        ys = 100.0 * np.concatenate(
            [[1.0], km.survival, [km.survival[-1] if km.times.size else 1.0]]
        )
        ax.step(
            xs,
            ys,
            where="post",
            color=colour,
            linewidth=2,
            label=km.label or km.endpoint,
            gid=f"km:{km.endpoint}",
        )
        if km.times.size:
            lo = 100.0 * np.concatenate([[1.0], km.ci95_lo, [km.ci95_lo[-1]]])
            hi = 100.0 * np.concatenate([[1.0], km.ci95_hi, [km.ci95_hi[-1]]])
            ax.fill_between(xs, lo, hi, step="post", color=colour, alpha=0.12, linewidth=0)
        censored = (
            np.setdiff1d(km.durations, km.times[km.events > 0]) if km.times.size else km.durations
        )
        ax.plot(censored, [100.0 * km.at(t) for t in censored], "|", color=colour, markersize=7)
    ax.set_xlim(0, horizon)
    ax.set_ylim(0, 102)
    ax.set_ylabel("Patients free of the event (%)")
    ax.set_xticks(list(days))
    ax.grid(axis="y", color="#e3e3e3", linewidth=0.7)
    ax.legend(frameon=False, loc="lower left", fontsize=9)
    ax.set_title("Kaplan-Meier estimates", loc="left", fontsize=12)
    _tidy(ax)
    table = fig.add_subplot(grid[1], sharex=ax)
    table.set_axis_off()
    table.text(0, 1.0, "At risk", fontsize=8, va="top", ha="left", transform=table.transAxes)
    for row, (colour, km) in enumerate(zip(_COLOURS, fits, strict=False), start=1):
        y = 1.0 - 0.9 * row / (len(fits) + 0.5)
        for day in days:
            table.text(
                day,
                y,
                str(km.number_at_risk(day)),
                color=colour,
                fontsize=8,
                ha="center",
                va="top",
                transform=table.get_xaxis_transform(),
            )
    ax.set_xlabel("Days after the index procedure")
    return fig


def rates_figure(table: ResultsTable, *, outcome: str) -> Figure:
    """One outcome's rate (%) per group with its Wilson 95% CI (rows of a rate table whose
    ``outcome`` column equals ``outcome``)."""
    records = [r for r in table.records() if r["outcome"] == outcome and r["n"]]
    fig = _figure(7.0, 1.2 + 0.35 * max(len(records), 1))
    ax = fig.add_subplot()
    y = np.arange(len(records))[::-1]
    pct = np.array([r["pct"] for r in records], dtype=float)
    lo = np.array([r["ci95_lo"] for r in records], dtype=float)
    hi = np.array([r["ci95_hi"] for r in records], dtype=float)
    ax.errorbar(
        pct,
        y,
        xerr=[pct - lo, hi - pct],
        fmt="o",
        color=_COLOURS[0],
        capsize=3,
        gid=f"rates:{outcome}",
    )
    ax.set_yticks(y, [f"{r['group']} ({r['events']}/{r['n']})" for r in records], fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"{outcome} (%, Wilson 95% CI)")
    ax.set_title(table.title, loc="left", fontsize=12)
    ax.grid(axis="x", color="#e3e3e3", linewidth=0.7)
    _tidy(ax)
    return fig


def cement_volume_figure(levels: Sequence[str], volumes_ml: Sequence[float]) -> Figure:
    """Box plot of the cement volume (ml) per treated level, cranio-caudal."""
    from spinewatch.core.levels import VertebralLevel

    order = sorted(set(levels), key=lambda v: VertebralLevel.parse(v).rank)
    data = [[v for lv, v in zip(levels, volumes_ml, strict=True) if lv == name] for name in order]
    fig = _figure()
    ax = fig.add_subplot()
    ax.boxplot(data, tick_labels=[f"{n}\nn = {len(d)}" for n, d in zip(order, data, strict=True)])
    ax.set_ylabel("Cement volume (ml)")
    ax.set_title("Cement volume per level", loc="left", fontsize=12)
    ax.grid(axis="y", color="#e3e3e3", linewidth=0.7)
    _tidy(ax)
    return fig


def analgesic_figure(table: ResultsTable) -> Figure:
    """Stacked bars: the share of each analgesic class per time point."""
    records = table.records()
    fig = _figure()
    ax = fig.add_subplot()
    x = np.arange(len(records))
    bottom = np.zeros(len(records))
    colours = ("#d9d9d9", "#9ecae1", "#4292c6", "#08306b")
    for colour, name in zip(colours, ANALGESICS, strict=True):
        values = np.array([r[f"{name}_pct"] for r in records], dtype=float)
        ax.bar(x, values, bottom=bottom, color=colour, label=name.replace("_", "-"))
        bottom += values
    ax.set_xticks(x, [f"{r['label']}\nn = {r['n']}" for r in records], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("Patients (%)")
    ax.set_title("Analgesic use over time", loc="left", fontsize=12)
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    _tidy(ax)
    return fig
