"""The admin's audit-trail viewer (``view_audit``): events with filters, and a chain check.

``/audit/`` lists events newest first, 50 a page, filtered by period (UTC dates), user, action,
channel, object (``registry.patient`` or ``auth.user:12``) and patient study id; each row
unfolds its changes and details. ``POST /audit/verify/`` runs the same check as ``spinewatch
audit verify`` (:func:`spinewatch.audit.proof.check_trail`, anchors included) and shows what was
proven and what was not. Viewing the trail -- which holds identifiable values -- is itself
recorded, with the filters used.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from spinewatch.accounts.permissions import Action, requires
from spinewatch.audit.models import Action as AuditAction
from spinewatch.audit.models import AuditEvent, Via
from spinewatch.audit.trail import record

__all__ = ["AuditFilterForm", "events", "verify_chain"]

PAGE_SIZE = 50
_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class AuditFilterForm(forms.Form):
    date_from = forms.DateField(label="From (UTC)", required=False, widget=_DATE)
    date_to = forms.DateField(label="To (UTC)", required=False, widget=_DATE)
    actor = forms.CharField(label="User", max_length=150, required=False)
    action = forms.ChoiceField(
        label="Action", required=False, choices=[("", "any"), *AuditAction.choices]
    )
    via = forms.ChoiceField(label="Channel", required=False, choices=[("", "any"), *Via.choices])
    object = forms.CharField(
        label="Object",
        max_length=170,
        required=False,
        help_text="A type such as registry.patient, or one record: auth.user:12",
    )
    patient = forms.CharField(label="Patient study id", max_length=64, required=False)

    def clean_object(self) -> tuple[str, str] | None:
        text = (self.cleaned_data.get("object") or "").strip()
        if not text:
            return None
        kind, _, pk = text.partition(":")
        if "." not in kind:
            raise forms.ValidationError("Write the type as app.model, e.g. registry.patient.")
        return kind.lower(), pk.strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filters(self) -> dict[str, Any]:
        """The filters used, for the record of this viewing (JSON-safe)."""
        data = self.cleaned_data
        used = {k: v for k, v in data.items() if v not in (None, "")}
        if "object" in used:
            used["object"] = ":".join(part for part in used["object"] if part)
        return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in used.items()}

    def apply(self, events: Any) -> Any:
        data = self.cleaned_data
        if data.get("date_from"):
            events = events.filter(at__date__gte=data["date_from"])
        if data.get("date_to"):
            events = events.filter(at__date__lte=data["date_to"])
        if data.get("actor"):
            events = events.filter(actor_username=data["actor"].strip())
        if data.get("action"):
            events = events.filter(action=data["action"])
        if data.get("via"):
            events = events.filter(via=data["via"])
        if data.get("object"):
            kind, pk = data["object"]
            events = events.filter(object_type=kind)
            if pk:
                events = events.filter(object_id=pk)
        if data.get("patient"):
            events = events.filter(patient_study_id=data["patient"].strip())
        return events


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True) if value else ""


@require_http_methods(["GET", "HEAD"])
@requires(Action.VIEW_AUDIT)
def events(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    rows: Any = AuditEvent.objects.order_by("-seq")
    status = 200
    if form.is_bound and not form.is_valid():
        rows, status = AuditEvent.objects.none(), 400
    elif form.is_bound:
        rows = form.apply(rows)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    shown = [{"event": e, "changes": _pretty(e.changes), "detail": _pretty(e.detail)} for e in page]
    record(
        actor=None,
        action="view",
        object_type="audit.auditevent",
        object_id=None,
        detail={
            "page": "audit trail",
            "filters": form.filters() if form.is_bound and form.is_valid() else {},
            "shown": len(shown),
        },
    )
    context = {"form": form, "page": page, "rows": shown, "query": query.urlencode()}
    return render(request, "audit/events.html", context, status=status)


@require_http_methods(["POST"])
@requires(Action.VIEW_AUDIT)
def verify_chain(request: HttpRequest) -> HttpResponse:
    from spinewatch.audit.proof import check_trail

    proof = check_trail()
    record(
        actor=None,
        action="view",
        object_type="audit.auditevent",
        object_id=None,
        detail={"page": "audit trail check", "ok": proof.ok, "events": proof.n_events},
    )
    return render(request, "audit/verify.html", {"proof": proof})
