"""The unit's day in real Chromium: each role lands on its work, the worklists become cards at
390 px and sort, a procedure is planned then recorded as performed, a record entered in error is
voided, the printed patient page keeps every column on A4, and the patient summary PDF downloads.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from _e2e_support import E2EServer, field_label, sign_in
from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.slow

Shot = Callable[[Page, str], Path]

#: A4 portrait at 96 px per inch: 210 mm = 794 px; the print CSS keeps 12 mm margins each side.
A4_CONTENT_PX = 794 - 2 * round(12 / 25.4 * 96)


def test_roles_land_on_their_work(staff_page: Page, e2e_server: E2EServer, shot: Shot) -> None:
    page = staff_page
    sign_in(page, e2e_server, "clinician")
    expect(page).to_have_url(re.compile(r"/worklists/$"))
    # the clinician's lists first: vertebrae waiting for a decision above the follow-ups
    high = page.locator("#high-risk").bounding_box()
    follow = page.locator("#follow-ups").bounding_box()
    assert high is not None and follow is not None and high["y"] < follow["y"]
    shot(page, "clinician-landing")


def test_case_manager_worklist_cards_sort_at_390px(
    new_context: Callable[..., BrowserContext], e2e_server: E2EServer, shot: Shot
) -> None:
    page = new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    sign_in(page, e2e_server, "case_manager")
    expect(page).to_have_url(re.compile(r"/worklists/$"))
    page.goto("/worklists/follow-ups/?who=all")
    rows = page.locator("#worklist tbody tr")
    expect(rows.first).to_be_visible()
    # cards: each row a block with its labels, nothing wider than the phone
    assert rows.first.evaluate("tr => getComputedStyle(tr).display") == "block"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "follow-ups-cards-390")
    # the column headings are hidden on a phone: the "Sort by" choice sorts
    page.get_by_label("Sort by").select_option("due")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"sort=due"))
    dues = page.locator('#worklist td[data-label="Due"]').all_inner_texts()
    page.get_by_label("Sort by").select_option("-due")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"sort=-due"))
    assert page.locator('#worklist td[data-label="Due"]').all_inner_texts() == dues[::-1] or len(
        set(dues)
    ) < len(dues)
    shot(page, "follow-ups-sorted")


def test_plan_then_perform_a_procedure_and_void_it(
    staff_page: Page, e2e_server: E2EServer, shot: Shot
) -> None:
    page = staff_page
    patient = e2e_server.patient_for("plan")
    today = e2e_server.today()
    sign_in(page, e2e_server, "clinician")
    page.goto(f"/patients/{patient.study_id}/")
    page.get_by_role("link", name="Plan procedure").click()
    page.get_by_label(field_label("Planned date")).fill(today.isoformat())
    page.get_by_label(field_label("Procedure")).select_option("vertebroplasty")
    page.get_by_label(field_label("Planned levels")).select_option(["T11"])
    page.get_by_role("button", name="Plan").click()
    expect(page.get_by_text("Procedure planned")).to_be_visible()
    page.get_by_role("link", name="Record as performed").click()
    expect(page.get_by_role("heading", name="Record a procedure")).to_be_visible()
    row = page.get_by_role("group", name="Level", exact=True).first
    expect(row.get_by_label(field_label("Level"))).to_have_value("T11")
    session = page.get_by_role("group", name="Session", exact=True)
    session.get_by_label(field_label("Guidance")).select_option("fluoroscopy")
    session.get_by_label(field_label("Anaesthesia")).select_option("local")
    session.get_by_label(field_label("Yes")).check()
    session.get_by_label(field_label("Cement")).select_option("pmma")
    session.get_by_label(field_label("Fluoroscopy time (s)")).fill("95")
    row.get_by_label(field_label("Approach")).select_option("transpedicular")
    row.get_by_label(field_label("Needle (G)")).fill("11")
    row.get_by_label(field_label("Cement (ml)")).fill("30")  # a typing slip: refused, in words
    page.get_by_role("button", name="Save procedure").click()
    errors = page.locator(".errors").all_inner_texts()
    assert any("cement volume" in e for e in errors), errors
    assert not any("cement_volume_ml" in e for e in errors), errors
    row = page.get_by_role("group", name="Level", exact=True).first
    row.get_by_label(field_label("Cement (ml)")).fill("9.5")  # unusual at T11: to confirm
    page.get_by_role("button", name="Save procedure").click()
    expect(page.locator("#procedure-warnings")).to_contain_text("9.5 ml of cement at T11")
    shot(page, "procedure-warning")
    page.get_by_label("I have checked the values above: save anyway").check()
    page.get_by_role("button", name="Save procedure").click()
    expect(page).to_have_url(re.compile(rf"/patients/{patient.study_id}/"))
    item = page.locator("li.kind-procedure").filter(has_text="T11").first
    expect(item).to_contain_text("fluoroscopy 95 s")
    item.get_by_role("link", name=re.compile(r"^Void")).click()
    page.get_by_label("Why is this record void?").fill("entered for the wrong patient")
    page.get_by_role("button", name="Void").click()
    voided = page.locator("li.kind-procedure.is-voided").first
    expect(voided).to_contain_text("entered for the wrong patient")
    shot(page, "voided-procedure")


def test_printed_patient_page_keeps_every_column_on_a4(
    new_context: Callable[..., BrowserContext], e2e_server: E2EServer, shot: Shot, tmp_path: Path
) -> None:
    analysed = next(p for p in e2e_server.patients if p.imaging_studies)
    page = new_context(viewport={"width": A4_CONTENT_PX, "height": 1123}).new_page()
    sign_in(page, e2e_server, "clinician")
    page.goto(f"/patients/{analysed.study_id}/")
    page.emulate_media(media="print")
    table = page.locator("#findings")
    expect(table).to_be_attached()
    for header in ("Collapse risk", "SINS", "Decision"):
        box = table.locator("th", has_text=header).first.bounding_box()
        assert box is not None and box["x"] + box["width"] <= A4_CONTENT_PX + 1, (header, box)
    shot(page, "patient-print-a4")
    with page.expect_download() as info:
        page.emulate_media(media="screen")
        page.get_by_role("link", name="Summary (PDF)").click()
    pdf = tmp_path / "summary.pdf"
    info.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    if Path("/usr/bin/pdftoppm").exists():  # a picture of page 1 beside the screenshots
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                "60",
                "-f",
                "1",
                "-l",
                "1",
                str(pdf),
                str(shot(page, "after-pdf").with_suffix("")),
            ],
            check=True,
        )
