"""Worklists: follow-ups to chase, surveillance scans due, high-risk vertebrae without a decision
(high collapse risk or the signal to treat before collapse), then the vertebrae whose risk could
not be assessed.

``/worklists/`` shows the first rows of each list with its counts, and ``/worklists/<list>/`` one
list a page at a time, filtered, sorted and paged in the database (identifiable: names; each
recorded in the audit trail as one view event listing the study ids shown on that page).
``/worklists/follow-ups/<id>/record/`` is the "record follow-up" form (VAS 0-10 with decimals,
analgesic use, completed date), saved through
:func:`spinewatch.registry.services.record_follow_up` with the version the form was read at.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from spinewatch.accounts.permissions import Action, can, requires
from spinewatch.accounts.roles import Role, role_or_none
from spinewatch.audit.trail import record
from spinewatch.registry import models as rm
from spinewatch.registry.errors import RegistryError, StaleEditError
from spinewatch.registry.services import record_follow_up, record_visit_outcome
from spinewatch.web.followup_status import visit_label
from spinewatch.web.pages.forms import case_manager_queryset
from spinewatch.web.pages.links import patient_url
from spinewatch.web.pages.stale import handle_stale_edits
from spinewatch.web.plain_errors import attach_input_error, plain_message
from spinewatch.web.worklists.forms import RecordFollowUpForm, VisitOutcomeForm
from spinewatch.web.worklists.queries import (
    HIGH_RISK,
    NOT_ASSESSABLE,
    follow_up_rows,
    open_follow_ups,
    scan_rows,
    scans_due,
    undecided_findings,
)
from spinewatch.web.worklists.table import LISTS, PAGE_SIZE, build, worklist_csv

__all__ = ["index", "one_list", "record_follow_up_view", "visit_outcome_view"]


def _manager_filter(request: HttpRequest, managers: list[Any]) -> tuple[str, Any]:
    """The ``who`` parameter: mine / all / none / a case manager's id (default mine for a CM)."""
    default = "mine" if role_or_none(request.user) is Role.CASE_MANAGER else "all"
    who = request.GET.get("who", default) or default
    if who == "mine":
        return who, request.user
    if who in ("all", "none"):
        return who, who
    for user in managers:
        if str(user.pk) == who:
            return who, user
    raise Http404(f"who {who!r}: expected mine, all, none or the id of a case manager")


#: Rows of each list on the worklists page (each list links to its own paged page).
INDEX_ROWS = 25


def _int_param(request: HttpRequest, name: str, default: int) -> int:
    text = request.GET.get(name, "")
    try:
        return int(text) if text else default
    except ValueError:
        raise Http404(f"{name} {text[:20]!r}: expected a whole number") from None


@require_http_methods(["GET"])
@requires(Action.VIEW_IDENTIFIABLE)
def index(request: HttpRequest) -> HttpResponse:
    """The first :data:`INDEX_ROWS` rows of each list with its counts (a fixed number of
    queries whatever the registry's size); the audit event lists the study ids shown."""
    managers = list(case_manager_queryset())
    who, manager = _manager_filter(request, managers)
    day = timezone.localdate()
    open_visits = open_follow_ups(manager=manager, today=day)
    visit_counts = open_visits.aggregate(
        total=Count("pk"), overdue=Count("pk", filter=Q(status_rank=0))
    )
    plans = scans_due(today=day)
    scan_counts = plans.aggregate(
        total=Count("pk"), overdue=Count("pk", filter=Q(next_scan_due__lt=day))
    )
    high = undecided_findings(HIGH_RISK)
    unknown = undecided_findings(NOT_ASSESSABLE)
    follow_ups = follow_up_rows(open_visits[:INDEX_ROWS], day)
    scans = scan_rows(plans[:INDEX_ROWS], day)
    risks = list(high[:INDEX_ROWS])
    unassessed = list(unknown[:INDEX_ROWS])
    shown = sorted(
        {r.patient.study_id for r in follow_ups}
        | {r.patient.study_id for r in scans}
        | {f.study.patient.study_id for f in risks}
        | {f.study.patient.study_id for f in unassessed}
    )
    record(
        actor=None,
        action="view",
        object_type="registry.patient",
        object_id=None,
        detail={"page": "worklists", "who": who, "study_ids": shown},
    )
    user = request.user
    can_record = can(user, Action.RECORD_FOLLOW_UP)
    can_link = can(user, Action.MANAGE_PORTAL_LINKS)
    rows = [
        {
            "row": r,
            "patient_url": patient_url(r.patient),
            "can_record": can_record and can(user, Action.RECORD_FOLLOW_UP, r.patient),
            "can_link": can_link and can(user, Action.MANAGE_PORTAL_LINKS, r.patient),
        }
        for r in follow_ups
    ]
    context = {
        "who": who,
        "managers": managers,
        "follow_ups": rows,
        "follow_ups_total": visit_counts["total"],
        "overdue_count": visit_counts["overdue"],
        "scans": [{"row": r, "patient_url": patient_url(r.patient)} for r in scans],
        "scans_total": scan_counts["total"],
        "scans_overdue_count": scan_counts["overdue"],
        "risks": [{"finding": f, "patient_url": patient_url(f.study.patient)} for f in risks],
        "risks_total": high.count() if len(risks) == INDEX_ROWS else len(risks),
        "unassessed": [
            {"finding": f, "patient_url": patient_url(f.study.patient)} for f in unassessed
        ],
        "unassessed_total": unknown.count() if len(unassessed) == INDEX_ROWS else len(unassessed),
        "index_rows": INDEX_ROWS,
    }
    context["clinician_first"] = role_or_none(request.user) is Role.CLINICIAN
    return render(request, "web/worklists/index.html", context)


@require_http_methods(["GET"])
@requires(Action.VIEW_IDENTIFIABLE)
def one_list(request: HttpRequest, name: str, export: str = "") -> HttpResponse:
    """One worklist, a page at a time (``page``, ``page_size`` up to
    :data:`~spinewatch.web.worklists.table.MAX_PAGE_SIZE`): sort (``sort``), filter (``q``,
    ``status``, ``diagnosis``, ``who``) and export (``.csv``, every row: clinicians, whose role
    may export identifiable data; audited). The view's audit event lists the page's study ids."""
    if name not in LISTS:
        raise Http404(f"worklist {name!r}: expected one of {', '.join(LISTS)}")
    managers = list(case_manager_queryset())
    who, manager = _manager_filter(request, managers)
    get = request.GET
    filters = {
        "sort": get.get("sort", ""),
        "q": get.get("q", "")[:100],
        "status": get.get("status", ""),
        "diagnosis": get.get("diagnosis", "")[:40],
    }
    can_export = can(request.user, Action.EXPORT_IDENTIFIABLE)
    if export:
        from spinewatch.accounts.permissions import require

        require(request.user, Action.EXPORT_IDENTIFIABLE)
        table = build(name, today=timezone.localdate(), manager=manager, page_size=None, **filters)
        record(
            actor=None,
            action="export",
            object_type="registry.patient",
            object_id=None,
            detail={
                "export": f"worklist {name}",
                "filters": dict(get.items()),
                "rows": len(table.rows),
                "study_ids": sorted({r.cells["study_id"] for r in table.rows}),
            },
        )
        return worklist_csv(table, f"spinewatch-worklist-{name}.csv")
    table = build(
        name,
        today=timezone.localdate(),
        manager=manager,
        page=_int_param(request, "page", 1),
        page_size=_int_param(request, "page_size", PAGE_SIZE),
        **filters,
    )
    study_ids = sorted({r.cells["study_id"] for r in table.rows})
    record(
        actor=None,
        action="view",
        object_type="registry.patient",
        object_id=None,
        detail={
            "page": f"worklist {name}",
            "who": who,
            "page_number": table.page,
            "study_ids": study_ids,
        },
    )
    query = get.copy()
    query.pop("sort", None)
    query.pop("page", None)
    paging = get.copy()
    paging.pop("page", None)
    context = {
        "table": table,
        "managers": managers,
        "who": who,
        **filters,
        "base_query": query.urlencode(),
        "page_query": paging.urlencode(),
        "export_query": get.urlencode(),
        "can_export": can_export,
        "lists": [(key, LISTS[key].title) for key in LISTS],
    }
    return render(request, "web/worklists/one_list.html", context)


def _follow_up(request: HttpRequest, pk: int) -> rm.FollowUp:
    found = rm.FollowUp.objects.select_related("procedure__patient__identity").filter(pk=pk).first()
    if found is None:
        raise Http404(f"follow-up {pk} does not exist")
    return found


def _current(request: HttpRequest, pk: int) -> dict[str, Any]:
    fu = rm.FollowUp.objects.get(pk=pk)
    return {
        "vas": fu.vas,
        "analgesic_use": fu.get_analgesic_use_display() if fu.analgesic_use else None,
        "completed_on": fu.completed_on,
    }


@require_http_methods(["GET", "POST"])
@requires(Action.VIEW_IDENTIFIABLE, Action.RECORD_FOLLOW_UP, get_object=_follow_up)
@handle_stale_edits(current=_current)
def record_follow_up_view(request: HttpRequest, pk: int) -> HttpResponse:
    follow_up: rm.FollowUp = request.permission_object  # type: ignore[attr-defined]
    patient = follow_up.procedure.patient
    record(
        actor=None,
        action="view",
        object_type=follow_up,
        object_id=follow_up.pk,
        patient_study_id=patient.study_id,
        detail={"page": "record follow-up"},
    )
    status = 200
    if request.method == "POST":
        form = RecordFollowUpForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                result = record_follow_up(
                    follow_up=follow_up,
                    expected_version=data["expected_version"],
                    completed_on=data["completed_on"],
                    vas=None if data["vas"] is None else float(data["vas"]),
                    analgesic_use=data["analgesic_use"] or None,
                    entered_by=request.user,
                    entered_via="staff",
                )
            except StaleEditError:
                raise
            except RegistryError as exc:
                attach_input_error(form, exc)
            else:
                messages.success(
                    request, f"Follow-up {visit_label(follow_up)} of {patient.study_id} recorded."
                )
                for warning in result.warnings:
                    messages.warning(request, warning)
                return redirect("worklists:index")
        status = 400
    else:
        form = RecordFollowUpForm(
            initial={
                "expected_version": follow_up.version,
                "vas": follow_up.vas,
                "analgesic_use": follow_up.analgesic_use or "",
                "completed_on": follow_up.completed_on or timezone.localdate(),
            }
        )
    context = {
        "form": form,
        "outcome_form": VisitOutcomeForm(
            initial={"expected_version": follow_up.version, "outcome_on": timezone.localdate()}
        ),
        "follow_up": follow_up,
        "patient": patient,
        "identity": getattr(patient, "identity", None),
        "patient_url": patient_url(patient),
    }
    return render(request, "web/worklists/record_follow_up.html", context, status=status)


@require_http_methods(["POST"])
@requires(Action.VIEW_IDENTIFIABLE, Action.RECORD_FOLLOW_UP, get_object=_follow_up)
@handle_stale_edits(current=_current)
def visit_outcome_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Record why the visit has no value (died, lost to follow-up, withdrew, declined)."""
    follow_up: rm.FollowUp = request.permission_object  # type: ignore[attr-defined]
    patient = follow_up.procedure.patient
    outcome_form = VisitOutcomeForm(request.POST)
    if outcome_form.is_valid():
        data = outcome_form.cleaned_data
        try:
            changed = record_visit_outcome(
                follow_up=follow_up,
                expected_version=data["expected_version"],
                outcome=data["outcome"],
                outcome_on=data["outcome_on"],
                entered_by=request.user,
            )
        except StaleEditError:
            raise
        except RegistryError as exc:
            outcome_form.add_error(None, plain_message(str(exc)))
        else:
            label = changed[0].get_outcome_display()
            extra = f" and {len(changed) - 1} later visit(s)" if len(changed) > 1 else ""
            messages.success(
                request, f"{visit_label(follow_up)} of {patient.study_id}: {label}{extra}."
            )
            return redirect("worklists:index")
    context = {
        "form": RecordFollowUpForm(initial={"expected_version": follow_up.version}),
        "outcome_form": outcome_form,
        "follow_up": follow_up,
        "patient": patient,
        "identity": getattr(patient, "identity", None),
        "patient_url": patient_url(patient),
    }
    return render(request, "web/worklists/record_follow_up.html", context, status=400)
