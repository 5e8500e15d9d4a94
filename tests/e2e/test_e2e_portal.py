"""The patient portal in real Chromium: a case manager makes a single-use link for a due visit;
the patient answers on a phone-sized screen without signing in; the link is then dead and the
staff see the pain score on the patient page."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from _e2e_support import E2EServer, record_two_level_procedure, sign_in, sw_date
from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.slow

Shot = Callable[[Page, str], Path]

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
VAS = 7
ANALGESIC = "Mild opioid"


def test_patient_answers_through_a_portal_link_on_a_phone(
    new_context: Callable[..., BrowserContext], e2e_server: E2EServer, shot: Shot
) -> None:
    patient = e2e_server.patient_for("portal")
    today = e2e_server.today()
    performed_on = today - dt.timedelta(days=3)  # the "3 days" visit is due today

    # A clinician records the procedure; saving it creates the visit schedule.
    clinician = new_context().new_page()
    sign_in(clinician, e2e_server, "clinician")
    record_two_level_procedure(clinician, patient.study_id, performed_on)

    # The case manager finds the visit on their worklist and makes a portal link.
    staff = new_context().new_page()
    sign_in(staff, e2e_server, "case_manager")
    staff.goto("/worklists/")
    expect(staff.get_by_label("Case manager")).to_have_value("mine")
    row = (
        staff.locator("#follow-ups tbody tr")
        .filter(has_text=patient.study_id)
        .filter(has=staff.get_by_role("cell", name="3 days", exact=True))
    )
    expect(row).to_have_count(1)
    expect(row).to_contain_text(sw_date(today))
    shot(staff, "worklist")
    row.get_by_role("link", name="Portal link").click()
    expect(staff.get_by_role("heading", name="Send a portal link")).to_be_visible()
    expect(staff.locator("main")).to_contain_text(patient.study_id)
    staff.get_by_role("button", name="Make the link").click()
    expect(staff.get_by_role("heading", name=re.compile(r"^Portal link for"))).to_be_visible()
    expect(staff.locator("figure.qr svg")).to_be_visible()
    url = staff.get_by_label("Copy and send this address").input_value()
    assert re.fullmatch(rf"{re.escape(e2e_server.base_url)}/portal/[^/]+/", url), url
    shot(staff, "link-made")

    # The patient: a phone, no account, no cookies of the staff.
    phone = new_context(**PHONE)
    assert phone.cookies() == []
    page = phone.new_page()
    response = page.goto(url)
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", name="Hello")).to_be_visible()
    body = page.locator("body")
    # Nothing about the patient or the application: no name, no ids, no links anywhere.
    for secret in (patient.family_name, patient.given_name, patient.hospital_number):
        expect(body).not_to_contain_text(secret, ignore_case=True)
    expect(body).not_to_contain_text(patient.study_id)
    expect(page.locator("a[href]")).to_have_count(0)
    shot(page, "phone-question")

    # Sending without an answer is refused next to the question, in plain words.
    page.get_by_role("button", name="Send my answers").tap()
    expect(page.get_by_text("Please choose a number from 0")).to_be_visible()

    page.get_by_label(str(VAS), exact=True).tap()
    page.get_by_text(ANALGESIC).tap()  # the whole label is the touch target
    expect(page.get_by_label(re.compile(ANALGESIC))).to_be_checked()
    expect(page.get_by_label(str(VAS), exact=True)).to_be_checked()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the portal page is {width} px wide on a 390 px phone"
    shot(page, "phone-answered")
    page.get_by_role("button", name="Send my answers").tap()
    expect(page).to_have_url(re.compile(r"/portal/thanks/$"))
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    shot(page, "phone-thanks")

    # Single use: the same link now shows the plain "cannot be used" page (410 Gone).
    again = page.goto(url)
    assert again is not None and again.status == 410
    expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    shot(page, "phone-link-used")
    # ... and a replayed POST (with a valid CSRF token) is refused as well: nothing is saved.
    csrf = next(c["value"] for c in phone.cookies() if c["name"] == "csrftoken")
    posted = phone.request.post(
        url,
        form={"vas": "2", "analgesic_use": "none"},
        headers={"X-CSRFToken": csrf, "Referer": url},
    )
    assert posted.status == 410, posted.status

    # The staff see the patient's answer on the patient page: pain card and timeline.
    staff.goto(f"/patients/{patient.study_id}/")
    expect(staff.locator("main")).to_contain_text(f"latest {VAS}/10 on {sw_date(today)}")
    visit = (
        staff.locator(".timeline-item.kind-follow-up")
        .filter(has_text="3 days")
        .filter(has_text=f"VAS {VAS}/10")
    )
    expect(visit).to_have_count(1)
    expect(visit).to_contain_text("by the patient (portal)")
    expect(visit).to_contain_text("analgesics: weak opioid")  # "Mild opioid" to the patient
    shot(staff, "patient-page-with-portal-answer")
