"""Shared template tags and filters of the SpineWatch pages: ``{% load spinewatch_ui %}``.

Badges always carry their meaning in text (``High risk``), colour only reinforces it (WCAG 1.4.1).

- ``{{ finding.collapse_risk|risk_badge:finding.reasons }}``: low / not assessable / moderate /
  high collapse risk; "not assessable" is grey and says why (from the reasons, when given).
- ``{{ finding.confidence|confidence_badge:finding.confidence_reasons }}``: high / medium / low
  confidence in the vertebra's findings, the reasons in the tooltip.
- ``{% signal_badge finding.treat_signal finding.treat_signal_reasons %}``: "Signal to treat"
  when the comparison with the prior scan says so.
- ``{% visit_badge follow_up %}``: a follow-up visit's status (one rule: web.followup_status).
- ``{{ finding.decision|decision_badge }}``: none / watch / treat / treated.
- ``{{ value|sw_date }}``: ``12 Mar 2025`` (dates and datetimes, local time for datetimes).
- ``{{ value|vas }}``: ``7/10`` for a 0-10 pain score, an em dash when missing.
- ``{% can "edit_clinical" patient as allowed %}``: the permission module's answer for the user.
- ``{% second_factor_pending as pending %}``: the user still owes the second factor (no nav).
- ``{% user_role %}``: the signed-in user's role label ("case manager").
- ``{% nav_current "/worklists/" %}``: ``aria-current="page"`` when the request is in that section.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from spinewatch.accounts.permissions import can as _can
from spinewatch.accounts.roles import role_or_none
from spinewatch.web.followup_status import status_label, visit_label

__all__ = [
    "can",
    "confidence_badge",
    "decision_badge",
    "nav_current",
    "num",
    "person",
    "risk_badge",
    "second_factor_pending",
    "signal_badge",
    "signed",
    "sw_date",
    "sw_datetime",
    "timepoint_label",
    "user_role",
    "vas",
    "visit_badge",
    "yes_no",
]

register = template.Library()

_DASH = "\u2014"

_RISK_LABELS = {
    "low": "Low risk",
    "not_assessable": "Not assessable",
    "moderate": "Moderate risk",
    "high": "High risk",
}
_RISK_TONES = {"low": "low", "not_assessable": "na", "moderate": "moderate", "high": "high"}
_NOT_ASSESSABLE = "not assessable: "
_CONFIDENCE = {
    "high": ("\u25cf\u25cf\u25cf", "High confidence", "neutral"),
    "medium": ("\u25cf\u25cf\u25cb", "Medium confidence", "neutral"),
    "low": ("\u25cf\u25cb\u25cb", "Low confidence", "warn"),
}
_DECISION_LABELS = {
    "none": ("No decision", "neutral"),
    "watch": ("Watch", "info"),
    "treat": ("Treat", "warn"),
    "treated": ("Treated", "ok"),
}


def _value(obj: Any) -> str:
    return str(getattr(obj, "value", obj) or "").strip().lower()


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v]
    return []


def not_assessable_why(reasons: Any) -> str:
    """What could not be measured, from a finding's reasons (the ``not assessable: ...`` one)."""
    for reason in _texts(reasons):
        if reason.startswith(_NOT_ASSESSABLE):
            return reason[len(_NOT_ASSESSABLE) :]
    return ""


@register.filter
def risk_badge(value: Any, reasons: Any = None) -> SafeString | str:
    """A collapse-risk badge (``low``/``not_assessable``/``moderate``/``high``); an em dash when
    unknown. ``reasons`` (the finding's): a not-assessable badge is followed by why."""
    key = _value(value)
    if key not in _RISK_LABELS:
        return _DASH
    if key == "not_assessable":
        why = not_assessable_why(reasons)
        if why:
            return format_html(
                '<span class="badge badge-na" title="{}">{}</span> '
                '<span class="small muted badge-why">{}</span>',
                why,
                _RISK_LABELS[key],
                why,
            )
    return format_html(
        '<span class="badge badge-{}">{}</span>', _RISK_TONES[key], _RISK_LABELS[key]
    )


@register.filter
def confidence_badge(value: Any, reasons: Any = None) -> SafeString | str:
    """``●●○ Medium confidence`` (its reasons as the tooltip); an em dash when unknown."""
    key = _value(value)
    if key not in _CONFIDENCE:
        return _DASH
    marker, label, tone = _CONFIDENCE[key]
    return format_html(
        '<span class="badge badge-plain badge-{} confidence" title="{}">'
        '<span aria-hidden="true">{}</span> {}</span>',
        tone,
        "; ".join(_texts(reasons)),
        marker,
        label,
    )


@register.simple_tag
def signal_badge(signal: Any, reasons: Any = None) -> SafeString | str:
    """``Signal to treat`` (high tone; the comparison's reasons as the tooltip) when ``signal``
    is true; nothing otherwise."""
    if signal is not True:
        return ""
    return format_html(
        '<span class="badge badge-high" title="{}">Signal to treat</span>',
        "; ".join(_texts(reasons)),
    )


@register.filter
def decision_badge(value: Any) -> SafeString | str:
    """A badge for a finding decision (none / watch / treat / treated)."""
    key = _value(value) or "none"
    if key not in _DECISION_LABELS:
        return _DASH
    label, tone = _DECISION_LABELS[key]
    return format_html('<span class="badge badge-{}">{}</span>', tone, label)


@register.simple_tag
def visit_badge(follow_up: Any) -> SafeString | str:
    """``{% visit_badge follow_up %}``: the visit's status badge by THE one rule of
    :mod:`spinewatch.web.followup_status` (done / not recorded / overdue / due today / in window /
    window opens soon / planned); an em dash without a visit."""
    if follow_up is None or not hasattr(follow_up, "window_end"):
        return _DASH
    label = status_label(follow_up)
    return format_html('<span class="badge badge-{}">{}</span>', label.tone, label.text)


@register.filter
def sw_date(value: Any) -> str:
    """``12 Mar 2025`` for a date or datetime (datetimes in local time); em dash for None."""
    if value is None or value == "":
        return _DASH
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        value = value.date()
    if isinstance(value, dt.date):
        return f"{value.day} {value:%b %Y}"
    return str(value)


@register.filter
def sw_datetime(value: Any) -> str:
    """``12 Mar 2025 14:05`` for a datetime (local time); em dash for None."""
    if value is None or value == "":
        return _DASH
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return f"{value.day} {value:%b %Y %H:%M}"
    return sw_date(value)


@register.filter
def vas(value: Any) -> str:
    """A 0-10 pain score as ``7/10``; em dash when missing."""
    if value is None or value == "":
        return _DASH
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = f"{number:g}"
    return f"{text}/10"


@register.simple_tag(takes_context=True)
def can(context: template.Context, action: str, obj: Any = None) -> bool:
    """The permission module's answer for the signed-in user (``{% can "x" obj as ok %}``)."""
    user = context.get("user")
    if user is None:
        request = context.get("request")
        user = getattr(request, "user", None)
    return _can(user, action, obj)


@register.simple_tag(takes_context=True)
def second_factor_pending(context: template.Context) -> bool:
    """True while the signed-in user still owes the second factor (enrolment or code): the
    pages then show no navigation, since every link would lead back to the two-factor step."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "session"):
        return False  # no request (the 500 page), or none with a session (a bare API request)
    from spinewatch.accounts import totp

    return not totp.session_is_verified(request) and totp.requires_second_factor(user)


@register.simple_tag(takes_context=True)
def user_role(context: template.Context) -> str:
    """The role of the signed-in user as words (``case manager``), or ``""``."""
    role = role_or_none(context.get("user"))
    return role.label if role is not None else ""


@register.simple_tag(takes_context=True)
def nav_current(context: template.Context, prefix: str) -> SafeString | str:
    """``aria-current="page"`` when the current path is in the section ``prefix``."""
    request = context.get("request")
    path = getattr(request, "path", "") or ""
    if prefix == "/":
        hit = path == "/" or path.startswith("/patients/") or path.startswith("/procedures/")
    else:
        hit = path.startswith(prefix)
    return format_html('aria-current="{}"', "page") if hit else ""


@register.filter
def timepoint_label(follow_up: Any) -> str:
    """The protocol's label of a follow-up's time point (``3 months``), else its code."""
    return visit_label(follow_up)


@register.filter
def person(user: Any) -> str:
    """A user's full name, else username; em dash for None."""
    if user is None:
        return _DASH
    return str(user.get_full_name() or user.get_username())


@register.filter
def signed(value: Any, digits: int = 1) -> str:
    """``+1.5`` / ``-0.3`` / ``0.0`` for a change; em dash for None."""
    if value is None or value == "":
        return _DASH
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:+.{int(digits)}f}".replace("-", "\u2212")


@register.filter
def num(value: Any, digits: int = 1) -> str:
    """A number with ``digits`` decimals; em dash for None."""
    if value is None or value == "":
        return _DASH
    try:
        return f"{float(value):.{int(digits)}f}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def yes_no(value: Any) -> str:
    """``Yes`` / ``No``; em dash for None."""
    if value is None:
        return _DASH
    return "Yes" if value else "No"


@register.filter
def cells(row: Any, columns: Any) -> list[tuple[Any, str]]:
    """A worklist row's ``(column, text)`` pairs in the order of ``columns``."""
    return list(row.cell_list(columns))
