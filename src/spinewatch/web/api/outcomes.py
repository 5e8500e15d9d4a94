"""``/api/outcomes``: the cohort's VAS outcome table, filtered like the cohort page.

Computed from the de-identified cohort (:func:`spinewatch.registry.deid.deidentified_cohort_frame`):
the table is aggregate and needs no identity, so every role holding ``view_deidentified``
(researchers too) gets the same answer, and no identifiable data is read.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router

from spinewatch.accounts.permissions import Action
from spinewatch.web.api import schemas as s
from spinewatch.web.api._access import allow, plain, responses

__all__ = ["router"]

router = Router(tags=["outcomes"])


@router.get(
    "",
    response=responses({200: s.OutcomeTableOut}, 400, 401, 403, 422),
    summary="The cohort's VAS outcome table (per time point, change from baseline, tests)",
)
def outcomes(request: HttpRequest, filters: Query[s.OutcomeFiltersIn]) -> dict[str, Any]:
    from spinewatch.outcomes.table import outcome_table
    from spinewatch.registry.deid import deidentified_cohort_frame

    allow(request, Action.VIEW_DEIDENTIFIED)
    chosen = {
        name: plain(getattr(filters, name))
        for name in ("diagnosis", "level", "approach", "procedure_type", "date_from", "date_to")
        if getattr(filters, name) is not None
    }
    frame = deidentified_cohort_frame(**chosen)
    if len(frame) == 0:
        return {
            "timepoints": [],
            "test": filters.test,
            "n_patients": 0,
            "n_series": 0,
            "protocol": "",
            "mixed_model": {
                "fitted": False,
                "note": "no completed follow-up with a VAS matches the filters",
            },
        }
    return outcome_table(frame, test=filters.test, mixed_model=filters.mixed_model).to_json_dict()
