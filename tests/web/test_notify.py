"""Messages and alerts through the persisted outbox, delivered to a REAL SMTP server (aiosmtpd on
loopback) and to the file SMS adapter: portal links, reminders, staff alerts, retries, recovery,
and the portal refusing a visit before its window opens."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from django.test import Client
from django.utils import timezone
from test_worklists_support import make_user, patient_with_procedure

from spinewatch.registry import services
from spinewatch.registry.services import (
    LinkState,
    create_link,
    find_follow_up,
    find_link,
    update_patient_identity,
)
from spinewatch.web.notify import alerts
from spinewatch.web.notify.models import MessageStatus, OutboundMessage
from spinewatch.web.notify.outbox import STALE_SENDING_S, send_due

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
BASE = "https://spine.example"


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], object]] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp(settings):
    """A real SMTP server on 127.0.0.1 (aiosmtpd), Django's SMTP backend pointed at it."""
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.SPINEWATCH_BASE_URL = BASE
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def sms_file(settings, tmp_path):
    path = tmp_path / "sms.jsonl"
    settings.SPINEWATCH_SMS_BACKEND = "spinewatch.web.notify.sms.FileSmsBackend"
    settings.SPINEWATCH_SMS_FILE = str(path)
    return path


@pytest.fixture
def staff():
    cm = make_user("case_manager", "cm-notify", email="cm@unit.example")
    doc = make_user("clinician", "doc-notify", email="doc@unit.example")
    return cm, doc


def _open_visit(n, cm, days_ago=30, timepoint="1m"):
    _patient, proc = patient_with_procedure(
        n, performed_on=TODAY - dt.timedelta(days=days_ago), case_manager=cm
    )
    return find_follow_up(procedure=proc, timepoint=timepoint)


def test_portal_answer_with_high_pain_alerts_staff_by_real_smtp(client: Client, smtp, staff):
    cm, _doc = staff
    visit = _open_visit(1, cm)
    made = create_link(follow_up=visit, created_by=cm)
    response = client.post(f"/portal/{made.token}/", {"vas": "8", "analgesic_use": "none"})
    assert response.status_code == 302
    queued = OutboundMessage.objects.filter(kind="alert_pain")
    assert sorted(queued.values_list("to", flat=True)) == ["cm@unit.example", "doc@unit.example"]
    summary = send_due()
    assert summary.sent == 2 and summary.retried == 0
    recipients = sorted(r for rcpt, _ in smtp.messages for r in rcpt)
    assert recipients == ["cm@unit.example", "doc@unit.example"]
    _, mail = smtp.messages[0]
    assert visit.procedure.patient.study_id in mail["Subject"]
    body = mail.get_payload()
    assert "pain 8/10" in body and "Zorblatt" not in body  # no name in an e-mail
    assert set(queued.values_list("status", flat=True)) == {MessageStatus.SENT}


def test_low_pain_answer_alerts_nobody(client: Client, smtp, staff):
    visit = _open_visit(2, staff[0])
    made = create_link(follow_up=visit, created_by=staff[0])
    client.post(f"/portal/{made.token}/", {"vas": "2", "analgesic_use": "none"})
    assert not OutboundMessage.objects.exists()


def test_smtp_down_is_retried_then_failed_and_nothing_is_lost(settings, staff):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _free_port(), 2
    visit = _open_visit(3, staff[0], days_ago=60)  # the 1-month window has closed
    assert alerts.queue_overdue_alerts() == 1
    assert alerts.queue_overdue_alerts() == 0  # once per visit
    message = OutboundMessage.objects.get()
    now = timezone.now()
    for attempt in range(1, message.max_attempts + 1):
        summary = send_due(now=now)
        message.refresh_from_db()
        assert message.attempts == attempt
        assert "ConnectionRefusedError" in message.last_error
        if attempt < message.max_attempts:
            assert summary.retried == 1 and message.status == MessageStatus.QUEUED
            assert message.next_attempt_at == now + dt.timedelta(minutes=2 ** (attempt - 1))
            assert send_due(now=now).sent == 0  # not due before its next attempt
            now = message.next_attempt_at
    assert message.status == MessageStatus.FAILED
    assert "overdue" in message.subject.lower() and visit.procedure.patient.study_id in message.body


def test_a_sender_that_died_while_sending_is_recovered(smtp, staff):
    visit = _open_visit(4, staff[0], days_ago=60)
    alerts.queue_overdue_alerts()
    stale = timezone.now() - dt.timedelta(seconds=STALE_SENDING_S + 5)
    OutboundMessage.objects.update(status=MessageStatus.SENDING, claimed_at=stale, attempts=1)
    summary = send_due()
    assert summary.recovered == 1 and summary.sent == 1
    assert visit.procedure.patient.study_id in smtp.messages[0][1]["Subject"]


def test_portal_link_by_sms_makes_its_link_when_sent(sms_file, settings, staff):
    settings.SPINEWATCH_BASE_URL = BASE
    visit = _open_visit(5, staff[0])
    alerts.send_portal_link(follow_up=visit, channel="sms", base_url=BASE)
    message = OutboundMessage.objects.get()
    assert message.to == "+447700900005" and "{link}" in message.body
    assert send_due().sent == 1
    line = json.loads(sms_file.read_text().strip())
    token = re.search(r"/portal/([A-Za-z0-9_-]{43})/", line["text"]).group(1)
    assert line["text"].startswith(BASE) or BASE in line["text"]
    assert find_link(token)[0] is LinkState.VALID
    message.refresh_from_db()
    assert token not in message.body and "[portal link]" in message.body


def test_reminders_only_with_consent_and_once(sms_file, settings, staff):
    settings.SPINEWATCH_BASE_URL = BASE
    visit = _open_visit(6, staff[0])
    assert alerts.queue_reminders() == 0  # contact_by "none" by default
    patient = visit.procedure.patient
    update_patient_identity(patient=patient, expected_version=patient.version, contact_by="sms")
    assert alerts.queue_reminders() == 1 and alerts.queue_reminders() == 0
    services.record_follow_up(
        follow_up=visit, expected_version=visit.version, completed_on=TODAY, vas=3
    )
    assert send_due().cancelled == 1  # the visit was completed before the reminder went out
    assert not sms_file.exists()


def test_new_high_risk_finding_alerts_the_clinicians(smtp, staff):
    patient, _proc = patient_with_procedure(7, performed_on=TODAY - dt.timedelta(days=5))
    report = {"scan": {}, "vertebrae": [{"level": "T12", "collapse_risk": "low", "reasons": []}]}
    study = services.add_imaging_study(patient=patient, study_date=TODAY, report=report)
    before = alerts.high_levels(study)
    report["vertebrae"][0]["collapse_risk"] = "high"
    study = services.store_analysis(study=study, expected_version=study.version, report=report)
    assert alerts.alert_new_high_risk(study, before) == 1
    assert alerts.alert_new_high_risk(study, before) == 0
    send_due()
    assert smtp.messages[0][0] == ["doc@unit.example"]
    assert "T12" in smtp.messages[0][1]["Subject"]


def test_the_portal_refuses_a_visit_before_its_window_opens(client: Client, staff):
    visit = _open_visit(8, staff[0], days_ago=5, timepoint="3m")  # window opens at day 77
    made = create_link(follow_up=visit, created_by=staff[0])
    page = client.get(f"/portal/{made.token}/")
    html = page.content.decode()
    assert page.status_code == 200 and "opens on" in html
    assert f"{visit.window_start:%B}" in html and 'name="vas"' not in html
    client.post(f"/portal/{made.token}/", {"vas": "3", "analgesic_use": "none"})
    visit.refresh_from_db()
    assert visit.completed_on is None
    assert find_link(made.token)[0] is LinkState.VALID  # the link still works later
