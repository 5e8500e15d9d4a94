"""Template tags of the level check and the viewer, for pages owned by other areas.

- ``{% level_check_panel study %}`` (scan page): the level check state, the way to check the
  levels (clinicians) and to the CT viewer;
- ``{% level_check_worklist %}`` (worklists): analysed scans whose levels nobody has checked;
- ``study|levels_unconfirmed``: True while a scan's levels are not confirmed (or a shift is
  still being re-analysed) -- its findings do not count yet.
"""

from __future__ import annotations

from typing import Any

from django import template

from spinewatch.accounts.permissions import Action, can
from spinewatch.registry.models import ImagingStudy, LevelCheck

register = template.Library()


def _check(study: ImagingStudy) -> LevelCheck | None:
    return LevelCheck.objects.filter(study=study).select_related("checked_by").first()


@register.inclusion_tag("web/viewer/_scan_links.html", takes_context=True)
def level_check_panel(context: Any, study: ImagingStudy) -> dict[str, Any]:
    from spinewatch.web.viewer.volumes import latest_done_job

    request = context.get("request")
    user = getattr(request, "user", None)
    return {
        "study": study,
        "check": _check(study),
        "can_check": user is not None and can(user, Action.EDIT_CLINICAL, study),
        "has_viewer": latest_done_job(study) is not None,
    }


@register.filter
def levels_unconfirmed(study: ImagingStudy) -> bool:
    check = _check(study)
    return check is None or check.pending


@register.inclusion_tag("web/viewer/_worklist_level_checks.html")
def level_check_worklist() -> dict[str, Any]:
    studies = list(
        ImagingStudy.objects.filter(report__isnull=False, analysed_at__isnull=False)
        .exclude(level_check__pending=False)
        .select_related("patient", "patient__identity")
        .order_by("study_date", "pk")[:200]
    )
    from spinewatch.registry.models import ReceivedStudy

    unmatched = ReceivedStudy.objects.filter(status="unmatched").count()
    return {"studies": studies, "unmatched": unmatched}
