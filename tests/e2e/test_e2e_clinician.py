"""A clinician's day in real Chromium: sign in, find a patient, upload and analyse a scan,
record a two-level procedure and see its follow-up schedule."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from _e2e_support import (
    ANALYSIS_WAIT_MS,
    TWO_LEVELS,
    E2EServer,
    field_label,
    record_two_level_procedure,
    sign_in,
    sw_date,
)
from playwright.sync_api import Page, expect

from spinewatch.core.protocol import DEFAULT_PROTOCOL

pytestmark = pytest.mark.slow

Shot = Callable[[Page, str], Path]


def test_clinician_signs_in_searches_and_opens_a_patient(
    staff_page: Page, e2e_server: E2EServer, shot: Shot
) -> None:
    page = staff_page
    patient = e2e_server.patient_for("search")
    others = [p for p in e2e_server.patients if p.study_id != patient.study_id]

    page.goto("/")  # not signed in: sent to the login form
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/"))
    shot(page, "login")
    sign_in(page, e2e_server, "clinician")

    page.goto("/")
    expect(page.get_by_role("heading", name="Patients", exact=True)).to_be_visible()
    results = page.locator("#patient-results")
    rows = results.locator("tbody tr")
    expect(rows).to_have_count(len(e2e_server.patients))
    expect(page.get_by_text(f"{len(e2e_server.patients)} patients")).to_be_visible()
    shot(page, "patient-list")

    # Search by family name: htmx swaps the results as one types (and the button still works).
    page.get_by_label("Search patients").fill(patient.family_name)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(patient.study_id)
    expect(rows.first).to_contain_text(patient.hospital_number)
    for other in others:
        expect(results).not_to_contain_text(other.study_id)
    shot(page, "search-result")

    # A search that matches nobody says so.
    page.get_by_label("Search patients").fill("zz-nobody-zz")
    expect(results).to_contain_text("No patient matches")
    expect(rows).to_have_count(0)

    # Search by hospital number, then open the patient page from the result.
    page.get_by_label("Search patients").fill(patient.hospital_number)
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/patients/{patient.study_id}/$"))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(patient.family_name.upper())
    expect(heading).to_contain_text(patient.given_name)
    expect(page.locator("main")).to_contain_text(patient.hospital_number)
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(page.get_by_role("heading", name="Follow-up schedule")).to_be_visible()
    shot(page, "patient-page")

    # A small screen: the patient list still fits (no horizontal scrolling of the page).
    page.set_viewport_size({"width": 360, "height": 780})
    page.goto("/")
    expect(rows).to_have_count(len(e2e_server.patients))
    width = page.evaluate("document.documentElement.scrollWidth")
    shot(page, "patient-list-360px")
    assert width <= 360, f"the patient list is {width} px wide on a 360 px screen"


def test_clinician_uploads_a_scan_and_sees_its_analysis(
    staff_page: Page, e2e_server: E2EServer, shot: Shot, tmp_path: Path
) -> None:
    from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom, write_phantom

    levels = ("T12", "L1", "L2")
    phantom = make_spine_phantom(PhantomSpec(levels=levels, spacing_mm=(1.5, 1.5, 1.5)))
    ct_path, labels_path, _truth = write_phantom(phantom, tmp_path / "phantom")
    patient = e2e_server.patient_for("upload")
    study_date = e2e_server.today() - dt.timedelta(days=1)

    page = staff_page
    sign_in(page, e2e_server, "clinician")
    page.goto("/scans/")
    page.get_by_role("link", name="Upload a scan").first.click()
    expect(page.get_by_role("heading", name="Upload a scan")).to_be_visible()
    page.get_by_label(field_label("CT")).set_input_files(ct_path)
    page.get_by_label("Vertebra label map").set_input_files(labels_path)
    page.get_by_label("Labels convention").select_option("totalsegmentator")
    page.get_by_label("Patient study id").fill(patient.study_id)
    page.get_by_label("Study date").fill(study_date.isoformat())
    page.get_by_label("Description").fill("CT thoraco-lumbar spine, e2e phantom")
    shot(page, "upload-form")
    page.get_by_role("button", name="Upload and analyse").click()

    # The scan page: the job's status and progress are shown and polled (htmx, every 1.5 s);
    # when the job ends the page reloads itself with the analysis -- no reload by the test.
    expect(page).to_have_url(re.compile(r"/scans/\d+/$"))
    scan_url = page.url
    status = page.locator("#scan-status")
    expect(status).to_be_visible()
    first_status = status.inner_text()
    shot(page, "scan-status-first")
    if re.search(r"Queued|Analysing", first_status):
        expect(status.locator("progress")).to_be_attached()
        with page.expect_request(re.compile(r"/scans/\d+/status/$"), timeout=ANALYSIS_WAIT_MS):
            pass
    else:  # the worker was quicker than the browser: already analysed
        assert "Analysed" in first_status, first_status
    table = page.locator(".levels-table")
    expect(table).to_be_visible(timeout=ANALYSIS_WAIT_MS)
    expect(status).to_contain_text("Analysed")
    expect(status.locator("progress")).to_have_count(0)
    level_cells = table.locator("tbody tr th")
    expect(level_cells).to_have_count(len(levels))
    expect(level_cells).to_have_text([re.compile(rf"^{lv}\b") for lv in levels])
    picture = page.locator("img.scan-picture")
    expect(picture).to_be_visible()
    natural = picture.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert natural[0] and natural[1] > 50 and natural[2] > 50, f"picture not loaded: {natural}"
    expect(page.locator("main")).to_contain_text(sw_date(study_date))
    shot(page, "scan-analysed")

    # The picture is a real PNG served to the signed-in clinician.
    response = page.request.get(picture.get_attribute("src") or "")
    assert response.status == 200
    assert response.headers["content-type"] == "image/png"
    assert response.body()[:8] == b"\x89PNG\r\n\x1a\n"

    # The patient page now shows this scan in its timeline and as the latest analysis.
    page.goto(f"/patients/{patient.study_id}/")
    expect(page.locator("#analysis")).to_contain_text(sw_date(study_date))
    findings = page.locator("#findings tbody tr")
    expect(findings).to_have_count(len(levels))
    scan_path = scan_url.removeprefix(e2e_server.base_url)
    expect(page.locator(f'#analysis a[href="{scan_path}"]')).to_be_visible()
    shot(page, "patient-page-with-analysis")


def test_clinician_records_a_two_level_procedure_and_sees_the_schedule(
    staff_page: Page, e2e_server: E2EServer, shot: Shot
) -> None:
    page = staff_page
    patient = e2e_server.patient_for("procedure")
    performed_on = e2e_server.today() - dt.timedelta(days=10)
    sign_in(page, e2e_server, "clinician")

    # An incomplete form is refused with the error next to the field; nothing is saved.
    page.goto(f"/patients/{patient.study_id}/procedures/new/")
    page.get_by_role("button", name="Save procedure").click()
    expect(page.get_by_text("Nothing was saved.")).to_be_visible()
    session = page.get_by_role("group", name="Session", exact=True)
    expect(session.locator(".field.has-error").first).to_be_visible()
    shot(page, "procedure-form-errors")

    record_two_level_procedure(page, patient.study_id, performed_on)
    shot(page, "patient-page-after-procedure")

    # The timeline shows the session with both levels, their approach and cement volumes.
    procedure = page.locator(".timeline-item.kind-procedure").filter(has_text="Dr E2E Operator")
    expect(procedure).to_have_count(1)
    expect(procedure).to_contain_text(sw_date(performed_on))
    level_rows = procedure.locator("table tbody tr").filter(has_text="Transpedicular")
    expect(level_rows).to_have_count(len(TWO_LEVELS))
    for (level, gauge, cement_ml), row in zip(TWO_LEVELS, level_rows.all(), strict=True):
        expect(row).to_contain_text(level)
        expect(row).to_contain_text(f"{gauge} G")
        expect(row).to_contain_text(f"{cement_ml:.1f} ml")
    total = sum(cement for _level, _gauge, cement in TWO_LEVELS)
    expect(procedure).to_contain_text(f"Total cement {total:g} ml")

    # The follow-up schedule: every visit of the protocol (the pre-operative baseline included),
    # due dates counted here from the procedure date; none is done yet, so all are open.
    schedule = page.locator("#schedule")
    for tp in DEFAULT_PROTOCOL.timepoints:
        due = performed_on + dt.timedelta(days=tp.offset_days)
        item = schedule.locator("li").filter(has_text=tp.label).filter(has_text=sw_date(due))
        expect(item).to_have_count(1)
    # 10 days after the procedure the 3-day visit (window to day 7) is overdue, the others not.
    three_days = (
        schedule.locator("li")
        .filter(has_text="3 days")
        .filter(has_text=sw_date(performed_on + dt.timedelta(days=3)))
    )
    expect(three_days).to_contain_text("Overdue", ignore_case=True)
    shot(page, "follow-up-schedule")
