"""The cohort table, computed once per state of the registry and filter.

The outcome table's linear mixed model takes seconds (statsmodels' REML fit with its fall-back
optimisers), and the table changes only when the registry does. :func:`cached_table` keys the
computed table by the filters, the paired test and :func:`data_stamp` -- counts, largest ids and
summed versions of the rows the table reads, and the sequence number of the audit trail's last
write event (every registry write records one) -- so any create, update, void, merge or delete
changes the key and a stale table is never served. The cache is Django's (``CACHES``: a file
cache in the data directory when one is configured, shared by the web workers and the analysis
worker; memory otherwise). The analysis worker warms the unfiltered table after every change
(:func:`warm`), so the page people open first is ready.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Sum

from spinewatch.registry import models as rm

__all__ = [
    "TIMEOUT_S",
    "cache_key",
    "cached_figure",
    "cached_results",
    "cached_table",
    "data_stamp",
    "warm",
]

log = logging.getLogger(__name__)

#: Seconds a computed table is kept (a table not asked for in a day is dropped).
TIMEOUT_S = 24 * 3600


def data_stamp() -> list[Any]:
    """What the cohort table depends on, in six small queries."""
    stamp: list[Any] = []
    for model, versioned in (
        (rm.FollowUp, True),
        (rm.Procedure, True),
        (rm.Patient, True),
        (rm.Diagnosis, False),
        (rm.TreatedLevel, False),
    ):
        aggregates: dict[str, Any] = {"n": Count("pk"), "top": Max("pk")}
        if versioned:
            aggregates["versions"] = Sum("version")
        row = model.objects.aggregate(**aggregates)
        stamp.append([row.get("n"), row.get("top"), row.get("versions")])
    from spinewatch.audit.models import AuditEvent

    last_write = (
        AuditEvent.objects.filter(action__in=("create", "update", "delete"))
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    stamp.append(last_write)
    return stamp


def cache_key(filters: dict[str, Any], test: str) -> str:
    """The cache key of a table (or, with ``test="plot"``, of the plot) for the data now."""
    text = json.dumps(
        {
            "filters": {k: str(v) for k, v in sorted(filters.items())},
            "test": test,
            "stamp": data_stamp(),
        },
        sort_keys=True,
    )
    return "cohort-table:" + hashlib.sha256(text.encode()).hexdigest()


def cached_table(filters: dict[str, Any], test: str) -> dict[str, Any] | str | None:
    """``OutcomeTable.to_json_dict()`` of the filtered de-identified cohort (None: no rows; a
    string: why the table cannot be made), from the cache when the registry has not changed."""
    key = cache_key(filters, test)
    found = cache.get(key)
    if found is not None:
        return found["value"]  # type: ignore[no-any-return]
    value = _compute(filters, test)
    cache.set(key, {"value": value}, TIMEOUT_S)
    return value


def _compute(filters: dict[str, Any], test: str) -> dict[str, Any] | str | None:
    from spinewatch.core.errors import InputError
    from spinewatch.outcomes import outcome_table
    from spinewatch.registry.deid import deidentified_cohort_frame

    frame = deidentified_cohort_frame(**filters)
    if len(frame) == 0:
        return None
    try:
        table = outcome_table(frame, test=test).to_json_dict()
    except InputError as exc:
        return str(exc)
    table["n_rows"] = len(frame)
    return table


def warm() -> bool:
    """Compute the unfiltered table (paired t-test) and results section if they are not
    cached; True when something was computed."""
    computed = False
    key = cache_key({}, "paired-t")
    if cache.get(key) is None:
        cache.set(key, {"value": _compute({}, "paired-t")}, TIMEOUT_S)
        computed = True
    results_key = cache_key({}, "results")
    if cache.get(results_key) is None:
        cache.set(results_key, {"value": _compute_results({})}, TIMEOUT_S)
        computed = True
    return computed


#: Tables of the results section shown on the page, and their figures.
RESULT_FIGURES = ("survival", "leakage", "complications", "cement_volume", "analgesics")
FIGURE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def cached_results(selection: dict[str, Any]) -> dict[str, Any]:
    """The results section's tables (:func:`spinewatch.registry.results.results_report`) of the
    selected procedures as ``{name: ResultsTable.to_json_dict() + columns}``."""
    key = cache_key(selection, "results")
    found = cache.get(key)
    if found is not None:
        return found["value"]  # type: ignore[no-any-return]
    value = _compute_results(selection)
    cache.set(key, {"value": value}, TIMEOUT_S)
    return value


def _compute_results(selection: dict[str, Any]) -> dict[str, Any]:
    from spinewatch.registry.results import results_report

    report = results_report(None, figures=(), **selection)
    return {
        name: {**table.to_json_dict(), "columns": list(table.columns)}
        for name, table in report["tables"].items()
    }


def cached_figure(selection: dict[str, Any], name: str, fmt: str) -> bytes | None:
    """One results figure (PNG or SVG bytes), drawn alone when not cached (a figure takes about
    a second); None when the selection has no such figure."""
    import io

    from spinewatch.registry.results import results_report

    key = cache_key(selection, f"results:{name}:{fmt}")
    found = cache.get(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    fig = results_report(None, figures=(name,), **selection)["figures"].get(name)
    if fig is None:
        return None
    buffer = io.BytesIO()
    metadata = {"Software": "SpineWatch"} if fmt == "png" else {"Date": None}
    fig.savefig(buffer, format=fmt, metadata=metadata)
    cache.set(key, buffer.getvalue(), TIMEOUT_S)
    return buffer.getvalue()
