"""The CT viewer and the level check in real headless Chromium against the served application.

The demo patient with the two phantom CTs (prior and current, a lytic lesion in L1): the viewer
loads the CT with the vertebra and lesion overlays (NiiVue, WebGL2 in software), switches views
and windows, and a click on a level moves the cursor to that vertebral body -- checked on the
WebGL canvas's pixels. The level check confirms one scan and shifts the other one level down;
the shifted scan is re-analysed by the server's worker and shows the new names.
"""

from __future__ import annotations

import io
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _e2e_support import ANALYSIS_WAIT_MS, E2EServer, sign_in
from PIL import Image
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

VIEWER_READY_MS = 120_000


def _phantom_scans(server: E2EServer) -> tuple[int, int]:
    """(prior, current) scan ids of the demo patient who has the two phantom CTs -- found by the
    demo's own study descriptions: other tests on the same server add scans to other patients, so
    "the first patient with two scans" can be someone else."""
    conn = sqlite3.connect(f"file:{server.data_dir / 'registry.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT s.id FROM registry_imagingstudy s"
            " WHERE s.description IN (?, ?) ORDER BY s.study_date, s.id",
            tuple(f"Demo phantom CT, {name} scan (synthetic)" for name in ("prior", "current")),
        ).fetchall()
    finally:
        conn.close()
    assert len(rows) == 2, rows
    return int(rows[0][0]), int(rows[1][0])


def _canvas_rgb(page: Page) -> np.ndarray:
    png = page.locator("#sw-viewer-canvas").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _lesion_red(rgb: np.ndarray) -> int:
    """Pixels of the lesion overlay (NiiVue's red colour map over grey)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(((r > 140) & (r > g + 80) & (r > b + 80)).sum())


def test_viewer_views_windows_overlays_and_level_jump(
    e2e_server: E2EServer, staff_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = staff_page
    _, current = _phantom_scans(e2e_server)
    sign_in(page, e2e_server, "clinician")
    page.goto(f"/scans/{current}/")
    expect(page.get_by_text("Levels not confirmed").first).to_be_visible()
    page.get_by_role("link", name="Open the CT viewer").click()
    expect(page).to_have_url(re.compile(rf"/scans/{current}/viewer/$"))
    viewer = page.locator("#sw-viewer")
    expect(viewer).to_have_attribute("data-state", "ready", timeout=VIEWER_READY_MS)
    assert page.evaluate("window.spinewatchViewer.nv.volumes.length") == 3
    assert page.evaluate("window.spinewatchViewer.nv.volumes[0].cal_min") == -500  # bone

    page.get_by_role("button", name="Soft-tissue window").click()
    expect(viewer).to_have_attribute("data-window", "soft")
    assert page.evaluate("window.spinewatchViewer.nv.volumes[0].cal_min") == -160
    assert page.evaluate("window.spinewatchViewer.nv.volumes[0].cal_max") == 240

    page.get_by_role("button", name="Sagittal").click()
    expect(viewer).to_have_attribute("data-view", "sagittal")
    assert page.evaluate("window.spinewatchViewer.nv.opts.sliceType") == 2

    jump = page.locator('.level-jump[data-level="L1"]')
    target = [float(jump.get_attribute(f"data-{axis}")) for axis in "xyz"]
    jump.click()
    expect(viewer).to_have_attribute("data-level", "L1")
    page.wait_for_function("document.getElementById('sw-viewer').dataset.crosshairMm")
    at = [float(v) for v in viewer.get_attribute("data-crosshair-mm").split(",")]
    assert max(abs(a - t) for a, t in zip(at, target, strict=True)) < 2.0, (at, target)
    expect(page.locator("#sw-viewer-status")).to_contain_text("mm")
    time.sleep(0.5)  # one more frame
    with_lesions = _canvas_rgb(page)
    assert with_lesions.mean() > 10  # the CT is drawn, not a black canvas
    red = _lesion_red(with_lesions)
    assert red > 200, red  # the 10 mm lesion of L1, cut through its centre
    shot(page, "viewer-sagittal-L1-soft-tissue")

    page.get_by_label("Lytic lesions").uncheck()
    time.sleep(0.5)
    assert _lesion_red(_canvas_rgb(page)) < red / 10
    page.get_by_label("Lytic lesions").check()
    page.get_by_role("button", name="Bone window").click()
    page.get_by_role("button", name="All three").click()
    expect(viewer).to_have_attribute("data-view", "multiplanar")
    time.sleep(0.5)
    shot(page, "viewer-multiplanar-bone")


def test_level_check_confirm_and_shift_in_the_browser(
    e2e_server: E2EServer, staff_page: Page, shot: Callable[[Page, str], Path]
) -> None:
    page = staff_page
    prior, current = _phantom_scans(e2e_server)
    sign_in(page, e2e_server, "clinician")
    page.goto("/worklists/")
    section = page.locator("#level-checks")
    for scan in (prior, current):  # other tests may add scans of their own to the list
        expect(section.locator(f'a[href="/scans/{scan}/levels/"]')).to_have_count(1)
    section.scroll_into_view_if_needed()
    shot(page, "worklist-level-checks")

    # the current scan: the labels are right
    page.goto(f"/scans/{current}/levels/")
    expect(page.get_by_role("heading", name="Level check")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("Curved sagittal reformat"))).to_be_visible()
    page.get_by_label("The levels are right as labelled").check()
    page.get_by_role("button", name="Save the level check").click()
    expect(page).to_have_url(re.compile(rf"/scans/{current}/$"))
    expect(page.get_by_text(re.compile("Levels confirmed by"))).to_be_visible()

    # the prior scan: every vertebra is one level lower than labelled (T10..L4 -> T11..L5)
    page.goto(f"/scans/{prior}/levels/")
    page.get_by_label(re.compile("one level lower")).check()
    page.get_by_label("Note").fill("Counted from the twelfth rib on the scout")
    shot(page, "level-check-form")
    page.get_by_role("button", name="Save the level check").click()
    expect(page).to_have_url(re.compile(rf"/scans/{prior}/$"))
    table = page.locator("table.levels-table")
    deadline = time.monotonic() + ANALYSIS_WAIT_MS / 1000
    while time.monotonic() < deadline:  # the re-analysis runs in the worker
        headers = table.get_by_role("rowheader")
        shown = headers.first.text_content() if headers.count() else ""
        if page.get_by_text("Levels shifted by").count() and "T11" in (shown or ""):
            break
        time.sleep(1.0)
        page.reload()
    expect(page.get_by_text("Levels shifted by")).to_be_visible()
    expect(table.get_by_role("rowheader").first).to_contain_text("T11")
    expect(table.get_by_role("rowheader").last).to_contain_text("L5")
    shot(page, "scan-after-level-shift")

    page.goto("/worklists/")
    for scan in (prior, current):
        expect(page.locator(f'#level-checks a[href="/scans/{scan}/levels/"]')).to_have_count(0)


def _free_patient(server: E2EServer) -> str:
    """A demo patient no other e2e test works on (see ``E2EServer.patient_for``)."""
    taken = {server.patient_for(p).study_id for p in ("portal", "upload", "search", "procedure")}
    taken |= {p.study_id for p in server.patients if p.imaging_studies}
    return next(p.study_id for p in reversed(server.patients) if p.study_id not in taken)


@pytest.mark.shared_data
def test_real_ct_uploaded_as_dicom_zip_in_the_viewer(
    e2e_server: E2EServer,
    staff_page: Page,
    shot: Callable[[Page, str], Path],
    shared_file: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    """The real Siemens series (JPEG 2000) with its TotalSegmentator map, through the upload
    form, analysed by the server, shown in the viewer; a click on T12 moves to its body."""
    import zipfile

    source = shared_file("ct/totalseg-example/dicom")
    archive = tmp_path / "example-ct.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(source.iterdir()):
            out.write(path, path.name)
    page = staff_page
    sign_in(page, e2e_server, "clinician")
    page.goto(f"/scans/upload/?patient={_free_patient(e2e_server)}")
    page.get_by_label(re.compile(r"^\s*CT\s*\*?\s*$")).set_input_files(archive)
    page.get_by_label("Vertebra label map").set_input_files(
        shared_file("ct/totalseg-example/example_seg_dicom.nii.gz")
    )
    page.get_by_label("Study date").fill(e2e_server.today().isoformat())
    page.get_by_role("button", name="Upload and analyse").click()
    expect(page).to_have_url(re.compile(r"/scans/\d+/$"))
    expect(page.locator(".levels-table")).to_be_visible(timeout=ANALYSIS_WAIT_MS)
    page.get_by_role("link", name="Open the CT viewer").click()
    viewer = page.locator("#sw-viewer")
    expect(viewer).to_have_attribute("data-state", "ready", timeout=VIEWER_READY_MS)
    jump = page.locator('.level-jump[data-level="T12"]')
    target = [float(jump.get_attribute(f"data-{axis}")) for axis in "xyz"]
    jump.click()
    expect(viewer).to_have_attribute("data-level", "T12")
    page.wait_for_function("document.getElementById('sw-viewer').dataset.crosshairMm")
    at = [float(v) for v in viewer.get_attribute("data-crosshair-mm").split(",")]
    assert max(abs(a - t) for a, t in zip(at, target, strict=True)) < 2.5, (at, target)
    expect(page.locator("#sw-viewer-status")).to_contain_text("HU")
    time.sleep(0.5)
    rgb = _canvas_rgb(page)
    assert rgb.mean() > 10 and rgb.std() > 10  # real anatomy drawn, not a flat canvas
    shot(page, "viewer-real-ct-T12")
