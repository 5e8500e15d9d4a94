"""The pain chart: VAS (0-10) over time as a server-rendered SVG (no JavaScript, no inline CSS:
presentation attributes only, which the Content-Security-Policy allows).

The chart is an image with a title and a description for screen readers; the page also gives the
same values as a table. The x axis is calendar time (days), the y axis the VAS, 0 at the bottom.
Procedure dates are drawn as dashed vertical lines so the drop in pain after a treatment shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from spinewatch.web.pages.timeline import PainPoint

__all__ = ["pain_chart_svg"]

_INK = "#1a1f24"
_MUTED = "#4f5966"
_GRID = "#d4dae1"
_LINE = "#0b5cad"
_PROC = "#b0470d"


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def pain_chart_svg(
    points: Sequence[PainPoint],
    *,
    procedures: Sequence[dt.date] = (),
    width: int = 420,
    height: int = 230,
    chart_id: str = "pain-chart",
) -> SafeString:
    """An SVG line chart of ``points`` (at least one); procedure dates as dashed lines."""
    if not points:
        return mark_safe("")
    left, right, top, bottom = 44, 16, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    dates = [p.date for p in points] + list(procedures)
    first, last = min(dates), max(dates)
    span = max((last - first).days, 1)
    pad = max(span * 0.04, 3)
    start = first.toordinal() - pad
    end = last.toordinal() + pad

    def x(day: dt.date) -> float:
        return left + (day.toordinal() - start) / (end - start) * plot_w

    def y(vas: float) -> float:
        return top + (10 - vas) / 10 * plot_h

    out = [
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">Pain (VAS 0-10) over time</title>',
        f'<desc id="{chart_id}-desc">{len(points)} pain scores from '
        f"{points[0].date:%d %b %Y} to {points[-1].date:%d %b %Y}; latest "
        f"{points[-1].vas:g} of 10.</desc>",
    ]
    for tick in range(0, 11, 2):
        ty = y(tick)
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_fmt(ty)}" y2="{_fmt(ty)}" '
            f'stroke="{_GRID}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{_fmt(ty + 4)}" text-anchor="end" font-size="11" '
            f'fill="{_MUTED}">{tick}</text>'
        )
    out.append(
        f'<text x="12" y="{_fmt(top + plot_h / 2)}" font-size="11" fill="{_MUTED}" '
        f'text-anchor="middle" transform="rotate(-90 12 {_fmt(top + plot_h / 2)})">VAS</text>'
    )
    # x ticks: up to 6 evenly spaced dates.
    n_ticks = min(4, max(2, span // 30 + 1))
    for i in range(n_ticks):
        day = dt.date.fromordinal(round(first.toordinal() + span * i / (n_ticks - 1)))
        tx = x(day)
        out.append(
            f'<text x="{_fmt(tx)}" y="{height - 12}" text-anchor="middle" font-size="11" '
            f'fill="{_MUTED}">{day:%b %Y}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y(0))}" y2="{_fmt(y(0))}" '
        f'stroke="{_MUTED}" stroke-width="1"/>'
    )
    for day in procedures:
        px = x(day)
        out.append(
            f'<line x1="{_fmt(px)}" x2="{_fmt(px)}" y1="{top}" y2="{_fmt(y(0))}" stroke="{_PROC}" '
            f'stroke-width="1.5" stroke-dasharray="4 3"><title>Procedure {day:%d %b %Y}'
            "</title></line>"
        )
    path = " ".join(f"{_fmt(x(p.date))},{_fmt(y(p.vas))}" for p in points)
    out.append(
        f'<polyline points="{path}" fill="none" stroke="{_LINE}" stroke-width="2.5" '
        'stroke-linejoin="round" stroke-linecap="round"/>'
    )
    for p in points:
        out.append(
            f'<circle cx="{_fmt(x(p.date))}" cy="{_fmt(y(p.vas))}" r="4.5" fill="#fff" '
            f'stroke="{_LINE}" stroke-width="2.5">'
            f"<title>{escape(p.label or p.timepoint)}: VAS {p.vas:g} "
            f"on {p.date:%d %b %Y}</title></circle>"
        )
    out.append("</svg>")
    return mark_safe("".join(out))
