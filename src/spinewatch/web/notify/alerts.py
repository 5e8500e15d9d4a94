"""What is sent, to whom and when: portal links, visit reminders and staff alerts.

Patients receive messages only by the channel they agreed to (``PatientIdentity.contact_by``:
e-mail or SMS; "none" by default). Staff alerts go by e-mail to the users' addresses and carry
no name: the study id and the page to open (e-mail is not a safe place for identifiable data).

- **Portal link** (:func:`send_portal_link`): on a person's request, for one open visit.
- **Reminder** (:func:`queue_reminders`): once per visit, when its window is open and it has no
  value, no outcome, and the patient agreed to be contacted; it carries a portal link.
- **New high-risk finding** (:func:`alert_new_high_risk`): after an analysis is stored, for each
  vertebra now at high risk or with the signal to treat that was not so before on that scan --
  to every active clinician.
- **Overdue visit** (:func:`queue_overdue_alerts`): once per visit, when its window has closed
  without a value or outcome -- to the patient's case manager (all case managers when none).
- **Portal answer** (:func:`alert_portal_answer`): a VAS >= ``SPINEWATCH_ALERT_VAS`` (7) or
  worse than the procedure's pre-operative value -- to the case manager and the clinicians.

Every function queues rows in the caller's transaction (:func:`spinewatch.web.notify.outbox.
queue`); the sender sends them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from spinewatch.accounts.roles import Role
from spinewatch.registry import models as rm
from spinewatch.registry.choices import ContactBy
from spinewatch.web.followup_status import VisitStatus, visit_label, visit_status
from spinewatch.web.notify.models import Channel, MessageKind
from spinewatch.web.notify.outbox import queue

__all__ = [
    "alert_new_high_risk",
    "alert_portal_answer",
    "high_levels",
    "queue_overdue_alerts",
    "queue_reminders",
    "send_portal_link",
    "staff_emails",
]

log = logging.getLogger(__name__)


def staff_emails(role: Role) -> list[str]:
    """E-mail addresses of the active users holding ``role``."""
    return sorted(
        set(
            get_user_model()
            .objects.filter(is_active=True, groups__name=role.value)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    )


def _managers_of(patient: rm.Patient) -> list[str]:
    manager = patient.case_manager
    if manager is not None and manager.is_active and manager.email:
        return [manager.email]
    return staff_emails(Role.CASE_MANAGER)


def _page(base_url: str, path: str) -> str:
    return f"{(base_url or settings.SPINEWATCH_BASE_URL).rstrip('/')}{path}"


def _to_staff(
    emails: Iterable[str], *, kind: str, subject: str, body: str, study_id: str, key: str
) -> int:
    n = 0
    for email in emails:
        if queue(
            channel=Channel.EMAIL,
            kind=kind,
            to=email,
            subject=subject,
            body=body,
            patient_study_id=study_id,
            dedupe_key=f"{key}:{email}"[:120],
        ):
            n += 1
    return n


def _patient_text(follow_up: rm.FollowUp) -> tuple[str, str]:
    label = visit_label(follow_up)
    subject = "Your pain follow-up"
    body = (
        f"Hello,\n\nit is time for your {label} pain follow-up after your spine treatment. "
        "Please answer two short questions here:\n\n{link}\n\n"
        f"The link works once and until {follow_up.window_end:%d %B %Y}. "
        "If you did not expect this message, please call your nurse.\n"
    )
    return subject, body


def send_portal_link(*, follow_up: rm.FollowUp, channel: str, base_url: str) -> Any:
    """Queue a portal link for ``follow_up`` to the patient's e-mail or phone (``channel``).

    Raises ValueError (an InputError) when the patient has no such address.
    """
    from spinewatch.web.notify.sms import SmsError

    identity = getattr(follow_up.procedure.patient, "identity", None)
    to = (
        "" if identity is None else (identity.email if channel == Channel.EMAIL else identity.phone)
    )
    if not to:
        what = "e-mail address" if channel == Channel.EMAIL else "phone number"
        raise SmsError(f"the patient has no {what}: add it on the patient's details first")
    subject, body = _patient_text(follow_up)
    return queue(
        channel=channel,
        kind=MessageKind.PORTAL_LINK,
        to=to,
        subject=subject,
        body=body if channel == Channel.EMAIL else body.replace("Hello,\n\n", ""),
        follow_up=follow_up,
        patient_study_id=follow_up.procedure.patient.study_id,
        base_url=base_url,
    )


def queue_reminders(*, today: dt.date | None = None, base_url: str = "") -> int:
    """One reminder per open visit whose window is open, to patients who agreed to it."""
    day = today or timezone.localdate()
    visits = rm.FollowUp.objects.filter(
        completed_on__isnull=True,
        outcome__isnull=True,
        voided_at__isnull=True,
        window_start__lte=day,
        window_end__gte=day,
        procedure__voided_at__isnull=True,
        procedure__patient__voided_at__isnull=True,
        procedure__patient__identity__contact_by__in=[ContactBy.EMAIL, ContactBy.SMS],
    ).select_related("procedure__patient__identity")
    n = 0
    for fu in visits:
        identity = fu.procedure.patient.identity
        channel = Channel.EMAIL if identity.contact_by == ContactBy.EMAIL else Channel.SMS
        to = identity.email if channel == Channel.EMAIL else identity.phone
        if not to:
            continue
        subject, body = _patient_text(fu)
        try:
            made = queue(
                channel=channel,
                kind=MessageKind.REMINDER,
                to=to,
                subject=subject,
                body=body,
                follow_up=fu,
                patient_study_id=fu.procedure.patient.study_id,
                base_url=base_url,
                dedupe_key=f"reminder:{fu.pk}",
            )
        except ValueError as exc:  # a phone number no SMS can go to
            log.warning("no reminder for follow-up %s: %s", fu.pk, exc)
            continue
        n += made is not None
    return n


def queue_overdue_alerts(*, today: dt.date | None = None, base_url: str = "") -> int:
    """One alert per visit whose window closed without a value or an outcome."""
    day = today or timezone.localdate()
    visits = rm.FollowUp.objects.filter(
        completed_on__isnull=True,
        outcome__isnull=True,
        voided_at__isnull=True,
        window_end__lt=day,
        window_end__gte=day - dt.timedelta(days=30),  # a backlog is the worklist's job
        procedure__voided_at__isnull=True,
        procedure__patient__voided_at__isnull=True,
    ).select_related("procedure__patient__case_manager")
    n = 0
    for fu in visits:
        if visit_status(fu, day) is not VisitStatus.OVERDUE:
            continue  # a baseline that can no longer be taken is not chased
        patient = fu.procedure.patient
        n += _to_staff(
            _managers_of(patient),
            kind=MessageKind.ALERT_OVERDUE,
            subject=f"Overdue follow-up: {patient.study_id}, {visit_label(fu)}",
            body=(
                f"The {visit_label(fu)} visit of patient {patient.study_id} is overdue: its window "
                f"closed on {fu.window_end:%d %b %Y} without a pain score.\n\n"
                f"Worklist: {_page(base_url, reverse('worklists:index'))}\n"
            ),
            study_id=patient.study_id,
            key=f"overdue:{fu.pk}",
        )
    return n


def high_levels(study: rm.ImagingStudy) -> set[str]:
    """Levels of ``study`` at high risk or with the signal to treat, not decided "treated"."""
    return set(
        study.findings.filter(collapse_risk="high")
        .exclude(decision="treated")
        .values_list("level", flat=True)
    ) | set(
        study.findings.filter(treat_signal=True)
        .exclude(decision="treated")
        .values_list("level", flat=True)
    )


def alert_new_high_risk(study: rm.ImagingStudy, before: set[str], *, base_url: str = "") -> int:
    """Alert the clinicians of levels high now that were not in ``before`` (the same study's
    high levels before this analysis was stored)."""
    if study.voided_at is not None:
        return 0
    new = sorted(high_levels(study) - before)
    if not new:
        return 0
    patient = study.patient
    return _to_staff(
        staff_emails(Role.CLINICIAN),
        kind=MessageKind.ALERT_HIGH_RISK,
        subject=f"New high-risk vertebra: {patient.study_id} ({', '.join(new)})",
        body=(
            f"The analysis of the scan of {study.study_date:%d %b %Y} of patient "
            f"{patient.study_id} found {', '.join(new)} at high collapse risk (or with the "
            "signal to treat before collapse). A decision is needed.\n\n"
            f"Patient: {_page(base_url, reverse('pages:patient', args=[patient.study_id]))}\n"
        ),
        study_id=patient.study_id,
        key=f"high:{study.pk}:{','.join(new)}:{study.version}",
    )


def alert_portal_answer(follow_up: rm.FollowUp, *, base_url: str = "") -> int:
    """Alert when a portal answer is VAS >= the threshold or worse than the baseline."""
    if follow_up.vas is None:
        return 0
    reasons = []
    if follow_up.vas >= settings.SPINEWATCH_ALERT_VAS:
        reasons.append(f"pain {follow_up.vas:g}/10")
    baseline = (
        rm.FollowUp.objects.filter(
            procedure_id=follow_up.procedure_id,
            completed_on__isnull=False,
            vas__isnull=False,
            voided_at__isnull=True,
        )
        .exclude(pk=follow_up.pk)
        .order_by("due_date")
        .first()
    )
    from spinewatch.web.followup_status import is_baseline

    if baseline is not None and is_baseline(baseline) and follow_up.vas > baseline.vas:
        reasons.append(f"worse than before the procedure ({baseline.vas:g}/10)")
    if not reasons:
        return 0
    patient = follow_up.procedure.patient
    emails = set(_managers_of(patient)) | set(staff_emails(Role.CLINICIAN))
    return _to_staff(
        sorted(emails),
        kind=MessageKind.ALERT_PAIN,
        subject=f"Portal answer needs a call: {patient.study_id}",
        body=(
            f"Patient {patient.study_id} answered the {visit_label(follow_up)} follow-up through "
            f"the portal: {'; '.join(reasons)}.\n\n"
            f"Patient: {_page(base_url, reverse('pages:patient', args=[patient.study_id]))}\n"
        ),
        study_id=patient.study_id,
        key=f"pain:{follow_up.pk}:{follow_up.version}",
    )
