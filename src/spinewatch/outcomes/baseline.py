"""Table 1: the baseline characteristics of the selected cohort.

:func:`baseline_table` takes one row per patient (:data:`BASELINE_COLUMNS`; the registry's
:func:`spinewatch.registry.results.baseline_frame` gives it): age at the index procedure
(years, 90 = 90 or older), sex, diagnosis and primary tumour, levels treated at the index
procedure, baseline VAS (0-10) and analgesics at baseline.

Continuous variables are summarised as mean (SD) when they look normal and as median [IQR]
otherwise -- "as fits": Shapiro-Wilk (scipy) at the 5% level on 8 or more values; fewer values,
or a rejected normality, give the median [IQR] (quartiles by linear interpolation, numpy's
default). Categories are n (%) of the patients with a known value; the unknowns are counted on a
row of their own ("not recorded"), never silently dropped.

>>> import pandas as pd
>>> frame = pd.DataFrame({"patient_id": ["a", "b", "c"], "age_years": [70, 80, 90],
...                       "sex": ["female", "male", "female"]})
>>> table = baseline_table(frame)
>>> [r[:4] for r in table.rows if r[0] == "Sex"][0]
('Sex', 'female', 2, '2 (66.7%)')
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from spinewatch.core.errors import InputError
from spinewatch.outcomes._results_table import ResultsTable

__all__ = ["BASELINE_COLUMNS", "TABLE_COLUMNS", "BaselineError", "baseline_table", "summarise"]

BASELINE_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "age_years",
    "sex",
    "diagnosis",
    "primary_tumour",
    "n_levels",
    "baseline_vas",
    "analgesic_use",
)
TABLE_COLUMNS: tuple[str, ...] = (
    "characteristic",
    "category",
    "n",
    "summary",
    "statistic",
    "value",
    "spread_lo",
    "spread_hi",
)
_NORMALITY_MIN_N = 8
_ALPHA = 0.05

_CONTINUOUS = (
    ("age_years", "Age at index procedure (years)"),
    ("n_levels", "Levels treated at index procedure"),
    ("baseline_vas", "Baseline VAS (0-10)"),
)
_CATEGORICAL = (
    ("sex", "Sex"),
    ("diagnosis", "Diagnosis"),
    ("primary_tumour", "Primary tumour (metastases)"),
    ("analgesic_use", "Analgesics at baseline"),
)


class BaselineError(InputError):
    """A baseline frame that cannot be tabulated; the message names the column and value."""


def summarise(values: np.ndarray) -> tuple[str, float, float | None, float | None]:
    """``(statistic, centre, lo, hi)``: ``("mean (SD)", mean, SD, None)`` or
    ``("median [IQR]", median, q1, q3)`` for finite ``values`` (see the module docstring)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    normal_looking = (
        x.size >= _NORMALITY_MIN_N
        and float(np.ptp(x)) > 0
        and float(stats.shapiro(x).pvalue) >= _ALPHA
    )
    if normal_looking:
        return "mean (SD)", float(x.mean()), float(x.std(ddof=1)), None
    q1, med, q3 = (float(v) for v in np.percentile(x, [25, 50, 75]))
    return "median [IQR]", med, q1, q3


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    out = []
    for position, raw in enumerate(frame[column].tolist()):
        if raw is None or (isinstance(raw, float) and math.isnan(raw)) or raw is pd.NA:
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(raw, bool) or not math.isfinite(value) or value < 0:
            raise BaselineError(
                f"row {position}, column {column}: {raw!r}; expected a number >= 0 or nothing"
            )
        out.append(value)
    return np.asarray(out, dtype=float)


def baseline_table(frame: pd.DataFrame) -> ResultsTable:
    """Table 1 of a per-patient frame (columns :data:`BASELINE_COLUMNS`; absent columns are
    left out of the table; ``patient_id`` is required and must be unique)."""
    if "patient_id" not in frame.columns:
        raise BaselineError(
            "baseline frame lacks column patient_id; columns found: "
            + ", ".join(map(str, frame.columns))
        )
    duplicated = frame["patient_id"][frame["patient_id"].duplicated()]
    if len(duplicated):
        raise BaselineError(
            f"column patient_id: {duplicated.iloc[0]!r} appears twice; expected one row per patient"
        )
    n_total = len(frame)
    rows: list[tuple[Any, ...]] = [
        ("Patients", "", n_total, str(n_total), "n", n_total, None, None)
    ]
    for column, label in _CONTINUOUS:
        if column not in frame.columns:
            continue
        x = _numbers(frame, column)
        if x.size == 0:
            rows.append((label, "", 0, "--", "", None, None, None))
            continue
        statistic, centre, lo, hi = summarise(x)
        if statistic == "mean (SD)":
            text = f"{centre:.1f} ({lo:.1f})"
        else:
            text = f"{centre:.1f} [{lo:.1f}-{hi:.1f}]"
        rows.append((label, "", int(x.size), text, statistic, centre, lo, hi))
        missing = n_total - int(x.size)
        if missing:
            rows.append((label, "not recorded", missing, str(missing), "n", missing, None, None))
    for column, label in _CATEGORICAL:
        if column not in frame.columns:
            continue
        values = [
            "" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in frame[column].tolist()
        ]
        if column == "primary_tumour" and "diagnosis" in frame.columns:
            values = [
                v
                for v, d in zip(values, frame["diagnosis"].tolist(), strict=True)
                if d == "metastasis"
            ]
            if not values:
                continue
        known = [v for v in values if v]
        counts: dict[str, int] = {}
        for v in known:
            counts[v] = counts.get(v, 0) + 1
        for category in sorted(counts, key=lambda c: (-counts[c], c)):
            k = counts[category]
            pct = 100.0 * k / len(known)
            rows.append((label, category, k, f"{k} ({pct:.1f}%)", "n (%)", pct, None, None))
        missing = len(values) - len(known)
        if missing:
            rows.append((label, "not recorded", missing, str(missing), "n", missing, None, None))
    return ResultsTable(
        title=f"Table 1. Baseline characteristics ({n_total} patients)",
        columns=TABLE_COLUMNS,
        rows=tuple(rows),
        digits={"value": 2, "spread_lo": 2, "spread_hi": 2},
        notes=(
            "Continuous: mean (SD) when Shapiro-Wilk does not reject normality (p >= 0.05, "
            "n >= 8), else median [IQR]. Categories: n (% of patients with a recorded value). "
            "Age 90 = 90 or older.",
        ),
    )
