"""spinewatch.outcomes: cohort results -- outcome tables, statistical tests, mixed model, plots.

Never imports Django. The heavy libraries (pandas, scipy, statsmodels, matplotlib) load when a
name is first used, so importing the package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CohortFileError",
    "CohortFrameError",
    "MixedModelResult",
    "OutcomeTable",
    "PlotError",
    "TimePointRow",
    "fit_mixed_model",
    "outcome_table",
    "plot_trajectories",
    "read_cohort_csv",
    "trajectory_figure",
    "validate_cohort_frame",
]

_WHERE = {
    "CohortFileError": "cohort_file",
    "read_cohort_csv": "cohort_file",
    "CohortFrameError": "table",
    "OutcomeTable": "table",
    "TimePointRow": "table",
    "outcome_table": "table",
    "validate_cohort_frame": "table",
    "MixedModelResult": "models",
    "fit_mixed_model": "models",
    "PlotError": "plot",
    "plot_trajectories": "plot",
    "trajectory_figure": "plot",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
