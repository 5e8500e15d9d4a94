"""spinewatch.outcomes: cohort results -- outcome tables, statistical tests, mixed model, plots,
Table 1, procedure outcome rates, Kaplan-Meier, and the REDCap and FHIR formats.

Never imports Django. The heavy libraries (pandas, scipy, statsmodels, matplotlib) load when a
name is first used, so importing the package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BaselineError",
    "CohortFileError",
    "CohortFrameError",
    "FhirBundleError",
    "KaplanMeier",
    "MixedModelResult",
    "OutcomeTable",
    "PlotError",
    "RedcapError",
    "SurvivalError",
    "TimePointRow",
    "baseline_table",
    "complication_table",
    "fit_mixed_model",
    "kaplan_meier",
    "leakage_table",
    "outcome_table",
    "patient_bundle",
    "plot_trajectories",
    "read_cohort_csv",
    "read_pain_bundle",
    "read_records",
    "survival_table",
    "trajectory_figure",
    "validate_cohort_frame",
    "write_project",
]

_WHERE = {
    "BaselineError": "baseline",
    "baseline_table": "baseline",
    "FhirBundleError": "fhir",
    "patient_bundle": "fhir",
    "read_pain_bundle": "fhir",
    "RedcapError": "redcap",
    "read_records": "redcap",
    "write_project": "redcap",
    "KaplanMeier": "survival",
    "SurvivalError": "survival",
    "kaplan_meier": "survival",
    "survival_table": "survival",
    "leakage_table": "procedure_outcomes",
    "complication_table": "procedure_outcomes",
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
