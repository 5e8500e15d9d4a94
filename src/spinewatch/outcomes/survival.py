"""Kaplan-Meier estimates: freedom from new fracture, from re-treatment, and overall survival.

:func:`kaplan_meier` estimates one endpoint from per-patient ``time_days`` (days from the index
procedure to the event or to censoring) and ``event`` (True = the event happened then, False =
censored: follow-up ended without it -- last contact, lost to follow-up, withdrew, or, for the
fracture and re-treatment endpoints, died). The estimator is statsmodels'
:class:`~statsmodels.duration.survfunc.SurvfuncRight`:

- why statsmodels and not lifelines: statsmodels is already a pinned dependency (the mixed
  model), its product-limit estimate and Greenwood standard errors are the textbook ones
  (checked in the tests against the published Freireich 6-MP table), and lifelines would add a
  dependency (with its own pins) for the same numbers;
- 95% CIs: pointwise, from Greenwood's SE on the log(-log S) scale (R survival's
  ``conf.type = "log-log"``; SurvfuncRight itself offers only simultaneous bands), which stays
  inside [0, 1];
- numbers at risk: counted from the data at the requested days (patients whose time is >= the
  day), as printed under a KM plot.

The registry's endpoints (:func:`spinewatch.registry.results.survival_frame`) are defined there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spinewatch.core.errors import InputError
from spinewatch.outcomes._results_table import ResultsTable

__all__ = [
    "ENDPOINTS",
    "KaplanMeier",
    "SurvivalError",
    "kaplan_meier",
    "survival_table",
]

#: Endpoint key -> label.
ENDPOINTS: dict[str, str] = {
    "new_fracture": "Freedom from new vertebral fracture",
    "retreatment": "Freedom from re-treatment",
    "death": "Overall survival",
}
DEFAULT_DAYS: tuple[int, ...] = (0, 91, 182, 365, 730)


class SurvivalError(InputError):
    """Times or events that cannot be analysed; the message names the row and value."""


@dataclass(frozen=True)
class KaplanMeier:
    """A fitted product-limit estimate of one endpoint.

    ``times`` are the distinct event times (days), ``survival`` the estimate just after each,
    ``se`` Greenwood's standard error, ``ci95`` the log-log 95% band, ``at_risk`` and ``events``
    per event time. ``n`` patients, ``n_events`` events.
    """

    endpoint: str
    label: str
    n: int
    n_events: int
    times: np.ndarray
    survival: np.ndarray
    se: np.ndarray
    ci95_lo: np.ndarray
    ci95_hi: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    durations: np.ndarray  # the input, for numbers at risk at any day

    def at(self, day: float) -> float:
        """The estimate on ``day`` (1.0 before the first event)."""
        index = int(np.searchsorted(self.times, day, side="right")) - 1
        return 1.0 if index < 0 else float(self.survival[index])

    def interval_at(self, day: float) -> tuple[float, float] | tuple[None, None]:
        index = int(np.searchsorted(self.times, day, side="right")) - 1
        if index < 0:
            return None, None
        return float(self.ci95_lo[index]), float(self.ci95_hi[index])

    def number_at_risk(self, day: float) -> int:
        """Patients still followed (time >= ``day``)."""
        return int(np.sum(self.durations >= day))

    def median_days(self) -> float | None:
        """The first time the estimate falls to 0.5 or below; None when it never does."""
        below = np.flatnonzero(self.survival <= 0.5)
        return None if below.size == 0 else float(self.times[below[0]])


def _check(time_days: Sequence[Any], event: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    if len(time_days) != len(event):
        raise SurvivalError(
            f"{len(time_days)} times but {len(event)} event flags; expected one of each per patient"
        )
    times = []
    for i, value in enumerate(time_days):
        try:
            t = float(value)
        except (TypeError, ValueError):
            t = float("nan")
        if isinstance(value, bool) or not np.isfinite(t) or t < 0:
            raise SurvivalError(f"row {i}, time_days: {value!r}; expected days >= 0")
        times.append(t)
    flags = []
    for i, value in enumerate(event):
        if value not in (True, False, 0, 1):
            raise SurvivalError(f"row {i}, event: {value!r}; expected True/False")
        flags.append(bool(value))
    return np.asarray(times, dtype=float), np.asarray(flags, dtype=bool)


def _loglog_ci(s: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise 95% CI on the log(-log S) scale from Greenwood's SE (R survival's
    ``conf.type = "log-log"``); where S is 0 or 1 the band is the point."""
    z = 1.959963984540054
    lo, hi = s.copy(), s.copy()
    inside = (s > 0) & (s < 1)
    log_s = np.log(s[inside])
    half = z * se[inside] / (s[inside] * np.abs(log_s))
    centre = np.log(-log_s)
    lo[inside] = np.exp(-np.exp(centre + half))
    hi[inside] = np.exp(-np.exp(centre - half))
    return lo, hi


def kaplan_meier(
    time_days: Sequence[Any], event: Sequence[Any], *, endpoint: str = "", label: str = ""
) -> KaplanMeier:
    """The Kaplan-Meier estimate of per-patient times (days) and event flags."""
    from statsmodels.duration.survfunc import SurvfuncRight

    durations, flags = _check(time_days, event)
    if durations.size == 0:
        raise SurvivalError(
            f"{label or endpoint or 'endpoint'}: no patients; expected at least one"
        )
    if not flags.any():
        empty = np.asarray([], dtype=float)
        return KaplanMeier(
            endpoint,
            label,
            int(durations.size),
            0,
            empty,
            empty,
            empty,
            empty,
            empty,
            empty.astype(int),
            empty.astype(int),
            durations,
        )
    fit = SurvfuncRight(durations, flags.astype(int))
    lo, hi = _loglog_ci(np.asarray(fit.surv_prob, dtype=float), np.asarray(fit.surv_prob_se))
    return KaplanMeier(
        endpoint=endpoint,
        label=label,
        n=int(durations.size),
        n_events=int(flags.sum()),
        times=np.asarray(fit.surv_times, dtype=float),
        survival=np.asarray(fit.surv_prob, dtype=float),
        se=np.asarray(fit.surv_prob_se, dtype=float),
        ci95_lo=np.asarray(lo, dtype=float),
        ci95_hi=np.asarray(hi, dtype=float),
        at_risk=np.asarray(fit.n_risk, dtype=int),
        events=np.asarray(fit.n_events, dtype=int),
        durations=durations,
    )


SURVIVAL_COLUMNS = (
    "endpoint",
    "day",
    "at_risk",
    "events_so_far",
    "estimate_pct",
    "ci95_lo_pct",
    "ci95_hi_pct",
)


def survival_table(
    fits: Sequence[KaplanMeier], *, days: Sequence[int] = DEFAULT_DAYS
) -> ResultsTable:
    """Each endpoint's estimate (%) with its 95% CI and the numbers at risk at ``days``."""
    rows: list[tuple[Any, ...]] = []
    for km in fits:
        for day in days:
            lo, hi = km.interval_at(day)
            rows.append(
                (
                    km.label or km.endpoint,
                    int(day),
                    km.number_at_risk(day),
                    int(np.sum(km.events[km.times <= day])) if km.times.size else 0,
                    100.0 * km.at(day),
                    None if lo is None else 100.0 * lo,
                    None if hi is None else 100.0 * hi,
                )
            )
    notes: list[str] = []
    for km in fits:
        median = km.median_days()
        notes.append(
            f"{km.label or km.endpoint}: {km.n} patients, {km.n_events} events"
            + ("" if median is None else f", median {median:.0f} days")
        )
    notes.append(
        "Kaplan-Meier (statsmodels SurvfuncRight); Greenwood SE, log-log 95% CI; at risk = "
        "patients followed to that day."
    )
    digits = {"estimate_pct": 1, "ci95_lo_pct": 1, "ci95_hi_pct": 1}
    return ResultsTable(
        "Kaplan-Meier estimates", SURVIVAL_COLUMNS, tuple(rows), digits, tuple(notes)
    )
