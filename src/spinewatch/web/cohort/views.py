"""Cohort page: the outcome table and plot of the filtered registry, and its CSV exports.

Everything here is computed from :func:`spinewatch.registry.deid.deidentified_cohort_frame`
(study ids, no names, no calendar dates), so clinicians and researchers see and export the same
de-identified data; the outcome table is the same as on ``cohort_frame`` (the identifiers do not
enter it). Exports record an ``export`` event (filters and row count) in the audit trail.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pandas as pd
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from spinewatch.accounts.permissions import Action, requires
from spinewatch.audit.trail import record
from spinewatch.core.csv_cells import csv_text
from spinewatch.core.errors import InputError
from spinewatch.registry.deid import deidentified_cohort_frame
from spinewatch.web.cohort.forms import CohortFilterForm

__all__ = ["DATA_COLUMNS", "data_csv", "index", "plot_png", "results_figure", "table_csv"]

log = logging.getLogger(__name__)

#: Columns of /cohort/data.csv (de-identified long data).
DATA_COLUMNS = (
    "study_id",
    "procedure_number",
    "timepoint",
    "vas",
    "days_from_index",
    "diagnosis",
    "levels",
    "approaches",
    "procedure_type",
)


TEST_LABELS = {"paired-t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}
_DASH = "\u2014"


def _f(value: float | None, digits: int = 1) -> str:
    return _DASH if value is None else f"{value:.{digits}f}"


def _pair(pair: list[float] | None, digits: int = 1) -> str:
    return _DASH if not pair else f"{pair[0]:.{digits}f} to {pair[1]:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return _DASH
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _sentence(text: str | None) -> str | None:
    """A note as a sentence: ending with a full stop."""
    if not text:
        return text
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def display_row(row: dict[str, Any]) -> dict[str, Any]:
    """One row of ``OutcomeTable.to_json_dict()["timepoints"]`` as the cells of the HTML table.

    A mean without a standard deviation (one value) shows the SD as "n/a" and sets
    ``sd_missing`` so the template adds the footnote marker.
    """
    baseline = "n_paired" not in row
    sd_missing = row["mean"] is not None and row["sd"] is None
    cells = {
        "timepoint": row["timepoint"],
        "label": row["label"],
        "baseline": baseline,
        "n": row["n"],
        "mean_sd": f"{_f(row['mean'])} \u00b1 {'n/a' if sd_missing else _f(row['sd'])}",
        "sd_missing": sd_missing,
        "median_iqr": f"{_f(row['median'])} [{_pair(row['iqr'])}]",
        "n_paired": _DASH,
        "change": _DASH,
        "p": _DASH,
        "p_holm": _DASH,
        "responders": _DASH,
        "lmm": _DASH
        if row["lmm_estimate"] is None
        else f"{_f(row['lmm_estimate'])} ({_pair(row['lmm_ci95'])})",
        "note": _sentence(row["note"]),
    }
    if not baseline:
        cells["n_paired"] = _DASH if row["n_paired"] is None else str(row["n_paired"])
        if row["mean_change"] is not None:
            cells["change"] = f"{_f(row['mean_change'])} ({_pair(row['ci95'])})"
        cells["p"] = _p(row["p_value"])
        cells["p_holm"] = _p(row["p_holm"])
        if row["responders"] is not None:
            pct = row["responder_pct"]
            cells["responders"] = f"{row['responders']}" + ("" if pct is None else f" ({pct:.0f}%)")
    return cells


def _form(request: HttpRequest) -> CohortFilterForm:
    return CohortFilterForm(request.GET)


def _frame(form: CohortFilterForm) -> pd.DataFrame:
    return deidentified_cohort_frame(**form.filters())


def _nonempty_frame(form: CohortFilterForm) -> pd.DataFrame | HttpResponse:
    """The filtered frame, or the plain-text 400 (bad filter) / 404 (no data) to answer with."""
    if not form.is_valid():
        return _bad(form)
    frame = _frame(form)
    if len(frame) == 0:
        return HttpResponse(
            "no follow-up data for these filters\n", status=404, content_type="text/plain"
        )
    return frame


def _json_filters(form: CohortFilterForm) -> dict[str, Any]:
    return {k: str(v) for k, v in form.filters().items()}


def _bad(form: CohortFilterForm) -> HttpResponse:
    text = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    return HttpResponse(f"bad filter: {text}\n", status=400, content_type="text/plain")


@require_http_methods(["GET"])
@requires(Action.VIEW_DEIDENTIFIED)
def index(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    context: dict[str, Any] = {"form": form, "query": request.GET.urlencode()}
    if not form.is_valid():
        return render(request, "web/cohort/index.html", context, status=400)
    from spinewatch.registry.services import cohort_attrition
    from spinewatch.web.cohort.cache import cached_table

    context["out_of_window"] = bool(form.cleaned_data.get("include_out_of_window"))
    context["attrition"] = cohort_attrition(**form.selection())
    table = cached_table(form.filters(), form.test_name())
    context["n_rows"] = 0
    if isinstance(table, str):
        context["problem"] = table
        context["n_rows"] = len(_frame(form))
    elif table is not None:
        context["n_rows"] = table["n_rows"]
        context["table"] = table
        context["rows"] = [display_row(r) for r in table["timepoints"]]
        context["sd_footnote"] = any(r["sd_missing"] for r in context["rows"])
        context["test_label"] = TEST_LABELS.get(table["test"], table["test"])
    context["results"] = _results_display(form)
    return render(request, "web/cohort/index.html", context)


#: Columns of each results table shown on the page (the CSV files have them all).
_SHOWN: dict[str, tuple[str, ...]] = {
    "table1_baseline": ("characteristic", "category", "summary", "statistic"),
    "leakage": ("group_by", "group", "outcome", "events", "n", "pct", "ci95_lo", "ci95_hi"),
    "complications": ("group_by", "group", "outcome", "events", "n", "pct", "ci95_lo", "ci95_hi"),
    "cement_volume": ("group", "n", "mean_ml", "sd_ml", "median_ml", "q1_ml", "q3_ml"),
    "analgesics": (
        "label",
        "n",
        "none_pct",
        "non_opioid_pct",
        "weak_opioid_pct",
        "strong_opioid_pct",
        "opioid_pct",
        "opioid_ci95_lo",
        "opioid_ci95_hi",
    ),
    "survival": (
        "endpoint",
        "day",
        "at_risk",
        "events_so_far",
        "estimate_pct",
        "ci95_lo_pct",
        "ci95_hi_pct",
    ),
}


def _results_display(form: CohortFilterForm) -> list[dict[str, Any]]:
    """The results tables as header + cells for the template (cached with the data's state)."""
    from spinewatch.web.cohort.cache import RESULT_FIGURES, cached_results

    out = []
    for name, table in cached_results(form.selection()).items():
        columns = [c for c in _SHOWN.get(name, tuple(table["columns"])) if c in table["columns"]]
        out.append(
            {
                "name": name,
                "title": table["title"],
                "columns": [c.replace("_", " ") for c in columns],
                "rows": [
                    [_DASH if r.get(c) is None else r[c] for c in columns] for r in table["rows"]
                ],
                "notes": table["notes"],
                "figure": name if name in RESULT_FIGURES else None,
            }
        )
    return out


@require_http_methods(["GET"])
@requires(Action.VIEW_DEIDENTIFIED)
def results_figure(request: HttpRequest, name: str, fmt: str) -> HttpResponse:
    """A results plot of the filtered cohort as PNG or SVG."""
    from spinewatch.web.cohort.cache import FIGURE_TYPES, RESULT_FIGURES, cached_figure

    form = _form(request)
    if not form.is_valid():
        return _bad(form)
    if name not in RESULT_FIGURES or fmt not in FIGURE_TYPES:
        return HttpResponse("no such figure\n", status=404, content_type="text/plain")
    data = cached_figure(form.selection(), name, fmt)
    if data is None:
        return HttpResponse(
            "no data for this figure and these filters\n", status=404, content_type="text/plain"
        )
    return HttpResponse(data, content_type=FIGURE_TYPES[fmt])


@require_http_methods(["GET"])
@requires(Action.VIEW_DEIDENTIFIED)
def plot_png(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    if not form.is_valid():
        return _bad(form)
    from django.core.cache import cache

    from spinewatch.web.cohort.cache import TIMEOUT_S, cache_key

    key = cache_key(form.filters(), "plot")
    png = cache.get(key)
    if png is None:
        frame = _nonempty_frame(form)
        if isinstance(frame, HttpResponse):
            return frame
        from spinewatch.outcomes import trajectory_figure

        try:
            fig = trajectory_figure(frame)
        except InputError as exc:
            return HttpResponse(f"{exc}\n", status=422, content_type="text/plain")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": "SpineWatch"})
        png = buffer.getvalue()
        cache.set(key, png, TIMEOUT_S)
    return HttpResponse(png, content_type="image/png")


def _export(request: HttpRequest, form: CohortFilterForm, what: str, rows: int) -> None:
    record(
        actor=None,
        action="export",
        object_type="registry.followup",
        object_id=None,
        detail={"export": what, "filters": _json_filters(form), "rows": rows, "deidentified": True},
    )


def _csv_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_http_methods(["GET"])
@requires(Action.EXPORT_DEIDENTIFIED)
def table_csv(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    frame = _nonempty_frame(form)
    if isinstance(frame, HttpResponse):
        return frame
    from spinewatch.outcomes import outcome_table

    try:
        table = outcome_table(frame, test=form.test_name())
    except InputError as exc:
        return HttpResponse(f"{exc}\n", status=422, content_type="text/plain")
    _export(request, form, "cohort outcome table", len(table.rows))
    return _csv_response(table.to_csv(), "spinewatch-outcome-table.csv")


@require_http_methods(["GET"])
@requires(Action.EXPORT_DEIDENTIFIED)
def data_csv(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    if not form.is_valid():
        return _bad(form)
    frame = _frame(form)[list(DATA_COLUMNS)]
    _export(request, form, "cohort de-identified data", len(frame))
    rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    return _csv_response(csv_text(list(frame.columns), rows), "spinewatch-cohort-data.csv")
