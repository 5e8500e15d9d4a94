"""Patient portal: the case manager makes a link; the patient answers two questions through it.

``/portal/links/new/?follow_up=<id>`` (staff, ``manage_portal_links`` on that patient): GET
shows what the link is for, POST makes it and shows it ONCE as a URL and a QR code.
``/portal/<token>/`` (anonymous): today's pain 0-10 and pain medicine; nothing else about the
patient, no navigation, no link into the application. An unknown token is a 404, a used, expired
or revoked one (or a visit already completed) a 410 -- the same plain page either way. A link
opened before its visit's window opens records nothing and says from which day to come back.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from spinewatch.accounts.permissions import Action, requires
from spinewatch.accounts.totp import qr_svg
from spinewatch.audit.trail import record
from spinewatch.registry import models as rm
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services import LinkState, create_link, find_link, link_days
from spinewatch.web.portal.forms import PortalAnswerForm
from spinewatch.web.portal.links import submit

__all__ = ["answer", "new_link", "thanks"]


def _follow_up(request: HttpRequest, *args: Any, **kwargs: Any) -> rm.FollowUp:
    from django.http import Http404

    raw = request.GET.get("follow_up", "")
    if not raw.isdigit():
        raise Http404("follow_up: expected the id of a follow-up visit")
    found = (
        rm.FollowUp.objects.select_related("procedure__patient__identity")
        .filter(pk=int(raw))
        .first()
    )
    if found is None:
        raise Http404(f"follow-up {raw} does not exist")
    return found


@require_http_methods(["GET", "POST"])
@requires(Action.VIEW_IDENTIFIABLE, Action.MANAGE_PORTAL_LINKS, get_object=_follow_up)
def new_link(request: HttpRequest) -> HttpResponse:
    follow_up: rm.FollowUp = request.permission_object  # type: ignore[attr-defined]
    patient = follow_up.procedure.patient
    identity = getattr(patient, "identity", None)  # RelatedObjectDoesNotExist is an AttributeError
    context: dict[str, Any] = {
        "follow_up": follow_up,
        "patient": patient,
        "identity": identity,
        "days": link_days(),
    }
    record(
        actor=None,
        action="view",
        object_type=patient,
        object_id=patient.pk,
        patient_study_id=patient.study_id,
        detail={"page": "portal link", "follow_up": follow_up.pk},
    )
    if request.method == "POST":
        try:
            made = create_link(follow_up=follow_up, created_by=request.user)
        except RegistryError as exc:
            context["error"] = str(exc)
            return render(request, "web/portal/new_link.html", context, status=400)
        url = request.build_absolute_uri(reverse("portal:answer", args=[made.token]))
        context.update(link=made.link, url=url, qr_svg=qr_svg(url))
        return render(request, "web/portal/link_made.html", context)
    if follow_up.completed_on is not None:
        context["error"] = (
            f"This visit was completed on {follow_up.completed_on:%d %b %Y}; "
            "a portal link is only for a visit still to do."
        )
    return render(request, "web/portal/new_link.html", context)


def _gone(request: HttpRequest, state: LinkState) -> HttpResponse:
    status = 404 if state is LinkState.UNKNOWN else 410
    return render(request, "web/portal/gone.html", {}, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def answer(request: HttpRequest, token: str) -> HttpResponse:
    state, link = find_link(token)
    if state is not LinkState.VALID or link is None:
        return _gone(request, state)
    opens = link.follow_up.window_start
    if opens > timezone.localdate():
        # Too early: a value taken now would not belong to this visit. Nothing is recorded.
        return render(request, "web/portal/not_yet.html", {"opens": opens}, status=200)
    form = PortalAnswerForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            try:
                state, _result = submit(
                    token=token,
                    vas=float(form.cleaned_data["vas"]),
                    analgesic_use=form.cleaned_data["analgesic_use"],
                    base_url=request.build_absolute_uri("/").rstrip("/"),
                )
            except RegistryError:
                form.add_error(None, "Your answer could not be saved. Please contact your nurse.")
            else:
                if state is not LinkState.VALID:
                    return _gone(request, state)
                return redirect("portal:thanks")
        return render(request, "web/portal/answer.html", _answer_context(form), status=400)
    return render(request, "web/portal/answer.html", _answer_context(form))


def _answer_context(form: PortalAnswerForm) -> dict[str, Any]:
    return {"form": form, "scale": [str(n) for n in range(11)]}


@never_cache
def thanks(request: HttpRequest) -> HttpResponse:
    return render(request, "web/portal/thanks.html")
