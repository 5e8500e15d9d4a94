"""Synthetic cohorts for the outcomes tests (seeded, so every run sees the same numbers).

Imported by the test modules as ``from outcomes_cohorts import ...`` (a unique module name, so it
never collides with another directory's ``conftest``)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

CODES = ("pre", "3d", "1m", "3m", "6m", "12m")
# The reference study's means (Sun et al. 2013): the shape our synthetic cohorts follow.
REFERENCE_MEANS = (7.6, 2.1, 1.8, 1.7, 0.9, 0.6)


def reference_like_cohort(
    seed: int = 0,
    *,
    n_patients: int = 13,
    reach: Sequence[int] | None = None,
    intercept_sd: float = 0.8,
    noise_sd: float = 1.0,
) -> pd.DataFrame:
    """A long frame like the reference study: 13 patients, fewer reaching 6 and 12 months.

    ``reach[i]`` = how many time points patient ``i`` has (default: 6 reach 12 months, 4 stop
    after 6 months, 3 after 3 months). VAS rounded to 0.1 and clipped to 0-10.
    """
    rng = np.random.default_rng(seed)
    if reach is None:
        reach = [6] * 6 + [5] * 4 + [4] * (n_patients - 10)
    rows = []
    for p in range(n_patients):
        u = rng.normal(0.0, intercept_sd)
        for i, code in enumerate(CODES[: reach[p]]):
            value = float(
                np.clip(np.round(REFERENCE_MEANS[i] + u + rng.normal(0, noise_sd), 1), 0, 10)
            )
            rows.append((f"P{p + 1:02d}", code, value))
    return pd.DataFrame(rows, columns=["patient_id", "timepoint", "vas"])


def write_cohort_csv(path: Path, frame: pd.DataFrame) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(frame.columns))
        for row in frame.itertuples(index=False):
            writer.writerow([f"{v:.1f}" if isinstance(v, float) else v for v in row])
    return path
