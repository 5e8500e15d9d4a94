"""The cohort's pain trajectories: one thin line per patient under the bold mean +/- SD.

x = the follow-up time points present (categorical, equally spaced, protocol order; the baseline
always shown), y = VAS pain 0-10 points. The number of patients with a value is written under
each tick. Rendered with matplotlib's Agg canvas on a :class:`matplotlib.figure.Figure` of its
own, so no pyplot state (and no open figure) is left behind.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spinewatch.core.errors import InputError
from spinewatch.core.protocol import DEFAULT_PROTOCOL, FollowUpProtocol, TimePoint
from spinewatch.outcomes.table import count_patients, count_text, validate_cohort_frame

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PlotError", "plot_trajectories", "short_label", "trajectory_figure"]

logger = logging.getLogger(__name__)

_UNITS = {"d": "d", "w": "wk", "m": "mo", "y": "y"}
_PATIENT_COLOUR = "#9a9a9a"
_MEAN_COLOUR = "#1f3b73"


class PlotError(InputError):
    """A plot that cannot be written (bad path or suffix); the message names the path."""


def short_label(timepoint: TimePoint, *, is_baseline: bool = False) -> str:
    """A compact tick label: baseline -> "Pre-op", ``3d`` -> "3 d", ``12m`` -> "12 mo"."""
    if is_baseline:
        return "Pre-op"
    match = re.fullmatch(r"(\d+)\s*([dwmy])", timepoint.code.strip().lower())
    if match:
        return f"{match.group(1)} {_UNITS[match.group(2)]}"
    return timepoint.label


def trajectory_figure(
    frame: pd.DataFrame,
    *,
    protocol: FollowUpProtocol = DEFAULT_PROTOCOL,
    title: str | None = None,
) -> Figure:
    """The trajectory plot as a :class:`matplotlib.figure.Figure` (Agg canvas attached).

    ``frame`` has columns ``patient_id``, ``timepoint`` (protocol codes) and ``vas`` (0-10); it is
    validated like :func:`spinewatch.outcomes.table.outcome_table`'s input. The axes hold one
    grey line per patient (gid ``"patient:<id>"``) and the mean with SD error bars (gid
    ``"mean"``), at x = 0, 1, ... for the time points shown. With a ``study_id`` column (the
    registry's frame, where a patient's second procedure is its own series ``"SW-1/2"``) the
    title counts patients and treatment series apart, like the outcome table.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as _Figure

    data = validate_cohort_frame(frame, protocol=protocol)
    present = set(data["timepoint"])
    baseline_code = protocol.baseline.code
    points = [tp for tp in protocol.timepoints if tp.code in present or tp.code == baseline_code]
    x_of = {tp.code: i for i, tp in enumerate(points)}

    fig = _Figure(figsize=(7.0, 4.6), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    for patient_id, patient in data.groupby("patient_id", sort=True):
        ordered = patient.assign(x=patient["timepoint"].map(x_of)).sort_values("x")
        ax.plot(
            ordered["x"].to_numpy(dtype=float),
            ordered["vas"].to_numpy(dtype=float),
            color=_PATIENT_COLOUR,
            linewidth=0.8,
            alpha=0.55,
            marker="o",
            markersize=2.2,
            zorder=1,
            gid=f"patient:{patient_id}",
        )

    xs, means, sds, counts = _mean_sd_by_timepoint(data, points, x_of)
    mean_artist = ax.errorbar(
        xs,
        means,
        yerr=sds,
        color=_MEAN_COLOUR,
        linewidth=2.4,
        elinewidth=1.4,
        capsize=4,
        capthick=1.4,
        marker="o",
        markersize=6,
        markerfacecolor="white",
        markeredgewidth=1.8,
        zorder=3,
        label="Mean \u00b1 SD",
    )
    mean_artist.lines[0].set_gid("mean")
    n_series = int(data["patient_id"].nunique())
    n_patients = count_patients(frame, data)
    one_per_patient = n_patients == n_series
    ax.plot(
        [],
        [],
        color=_PATIENT_COLOUR,
        linewidth=0.8,
        label="Individual patients" if one_per_patient else "Individual treatment series",
    )

    _style_axes(ax, points, counts, means, sds, baseline_code)
    ax.legend(frameon=False, loc="upper right", fontsize=9)
    ax.set_title(
        title
        if title is not None
        else f"Pain after vertebroplasty ({count_text(n_patients, n_series)})",
        fontsize=12,
        loc="left",
    )
    return fig


def _mean_sd_by_timepoint(
    data: pd.DataFrame, points: list[TimePoint], x_of: dict[str, int]
) -> tuple[list[float], list[float], list[float], list[int]]:
    """``(x, mean, SD, n)`` of the VAS per time point shown (x, mean and SD only where n > 0;
    the SD of one value is 0)."""
    xs: list[float] = []
    means: list[float] = []
    sds: list[float] = []
    counts: list[int] = []
    for tp in points:
        values = data.loc[data["timepoint"] == tp.code, "vas"].to_numpy(dtype=float)
        counts.append(int(values.size))
        if values.size:
            xs.append(float(x_of[tp.code]))
            means.append(float(values.mean()))
            sds.append(float(values.std(ddof=1)) if values.size >= 2 else 0.0)
    return xs, means, sds, counts


def _style_axes(
    ax: Any,
    points: list[TimePoint],
    counts: list[int],
    means: list[float],
    sds: list[float],
    baseline_code: str,
) -> None:
    """Ticks labelled with each time point and its n, the 0-10 VAS axis (room below for an
    error bar), grid and spines."""
    ax.set_xticks(range(len(points)))
    ax.set_xticklabels(
        [
            f"{short_label(tp, is_baseline=tp.code == baseline_code)}\nn = {n}"
            for tp, n in zip(points, counts, strict=True)
        ]
    )
    ax.set_xlim(-0.4, len(points) - 0.6)
    lowest = min([m - s for m, s in zip(means, sds, strict=True)] + [0.0])
    ax.set_ylim(min(-0.4, lowest - 0.3), 10.4)
    ax.set_yticks(np.arange(0, 11, 2))
    ax.set_ylabel("VAS pain (0\u201310)")
    ax.set_xlabel("Time after procedure")
    ax.grid(axis="y", color="#e3e3e3", linewidth=0.7, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", length=0, pad=6)


def plot_trajectories(
    frame: pd.DataFrame,
    path: Path,
    *,
    protocol: FollowUpProtocol = DEFAULT_PROTOCOL,
    title: str | None = None,
) -> Path:
    """Write the VAS trajectory plot of a long cohort frame to ``path`` (PNG) and return it.

    See :func:`trajectory_figure` for what is drawn. The parent directory is created when
    missing. Raises :class:`PlotError` when ``path`` does not end in ``.png`` or cannot be
    written, and the frame's own errors (:class:`CohortFrameError`) for bad data.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise PlotError(f"plot path {str(path)!r} must end in .png; expected a PNG file name")
    fig = trajectory_figure(frame, protocol=protocol, title=title)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", metadata={"Software": "SpineWatch"})
    except OSError as exc:
        raise PlotError(
            f"cannot write plot {str(path)!r}: {exc.strerror or exc}; expected a writable path"
        ) from None
    logger.info("wrote VAS trajectory plot to %s", path)
    return path
