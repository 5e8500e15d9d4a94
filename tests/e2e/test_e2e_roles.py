"""Roles in real Chromium: a researcher reaches the de-identified cohort and never a name; an
admin must set up two-factor sign-in (TOTP) before reaching the application."""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pyotp
import pytest
from _e2e_support import E2EServer, sign_in
from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.slow

Shot = Callable[[Page, str], Path]

#: Links a crawler must not follow (they end the session or change state).
_NO_FOLLOW = re.compile(r"/accounts/logout/|/static/")
_MAX_PAGES = 80
_LINKS_JS = """() => Array.from(document.querySelectorAll('a[href], [hx-get], img[src]'))
  .map(e => e.getAttribute('href') || e.getAttribute('hx-get') || e.getAttribute('src'))"""


def _crawl(page: Page, start: list[str], base_url: str) -> dict[str, tuple[int, str]]:
    """Follow every same-origin link, ``hx-get`` and image the researcher's pages offer.

    Returns ``{path: (status, text)}``: for HTML pages the text the browser renders plus the
    HTML itself (attributes included), for any other text (CSV, JSON) its body; images and
    other binaries contribute their status only.
    """
    seen: dict[str, tuple[int, str]] = {}
    queue = deque(start)
    request = page.context.request
    while queue and len(seen) < _MAX_PAGES:
        path = queue.popleft()
        if path in seen or _NO_FOLLOW.search(path):
            continue
        response = request.get(base_url + path, max_redirects=0)
        status = response.status
        kind = response.headers.get("content-type", "")
        if 300 <= status < 400:
            seen[path] = (status, "")
            location = response.headers.get("location", "")
            target = urlparse(urljoin(base_url + path, location))
            if target.netloc == urlparse(base_url).netloc:
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
            continue
        if "text/html" in kind and status == 200:
            page.goto(base_url + path)
            page.wait_for_load_state("networkidle")
            text = page.locator("body").inner_text() + "\n" + page.content()
            for link in page.evaluate(_LINKS_JS):
                absolute = urldefrag(urljoin(page.url, link)).url
                parsed = urlparse(absolute)
                if parsed.scheme in ("http", "https") and absolute.startswith(base_url):
                    queue.append(parsed.path + (f"?{parsed.query}" if parsed.query else ""))
        elif kind.startswith(("text/", "application/json")):
            text = response.text()
        else:
            text = ""
        seen[path] = (status, text)
    return seen


def _leaks(texts: dict[str, str], server: E2EServer) -> list[str]:
    found = []
    for patient in server.patients:
        for secret in patient.identifiers():
            pattern = re.compile(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", re.IGNORECASE)
            found += [f"{secret!r} in {where}" for where, t in texts.items() if pattern.search(t)]
    return found


def test_researcher_reaches_the_cohort_and_never_a_name(
    staff_page: Page, e2e_server: E2EServer, shot: Shot, tmp_path: Path
) -> None:
    page = staff_page
    sign_in(page, e2e_server, "researcher")
    shot(page, "after-sign-in")

    # The navigation offers the cohort only.
    nav = page.get_by_role("navigation").first
    expect(nav.get_by_role("link", name="Cohort")).to_be_visible()
    for hidden in ("Patients", "Worklists", "Scans"):
        expect(nav.get_by_role("link", name=hidden, exact=True)).to_have_count(0)

    page.get_by_role("link", name="Cohort").click()
    expect(page.get_by_role("heading", name="Cohort results")).to_be_visible()
    expect(page.locator("#outcome-table tbody tr").first).to_be_visible()
    plot = page.locator(".cohort-plot img")
    expect(plot).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 100", arg=plot.element_handle(), timeout=30_000
    )
    shot(page, "cohort")

    # The de-identified CSV, downloaded as a person would (a click on the export button).
    with page.expect_download() as download_info:
        page.get_by_role("link", name="De-identified data (CSV)").click()
    download = download_info.value
    csv_path = tmp_path / (download.suggested_filename or "data.csv")
    download.save_as(csv_path)
    csv_text = csv_path.read_text(encoding="utf-8")
    header, *lines = csv_text.splitlines()
    assert "study_id" in header.lower(), header
    assert lines, "the de-identified CSV has no rows"
    assert any(p.study_id in csv_text for p in e2e_server.patients), "no study id in the CSV"

    # Every patient page (and its edit / procedure pages) is refused: 403, no name on it.
    texts: dict[str, str] = {"de-identified CSV": csv_text}
    for patient in e2e_server.patients:
        for path in (
            f"/patients/{patient.study_id}/",
            f"/patients/{patient.study_id}/edit/",
            f"/patients/{patient.study_id}/procedures/new/",
        ):
            response = page.goto(path)
            assert response is not None and response.status == 403, (path, response)
            texts[path] = page.content()
    shot(page, "patient-page-refused")
    for path in ("/worklists/", "/scans/", "/scans/1/", "/scans/1/picture.png", "/scans/upload/"):
        response = page.request.get(path, max_redirects=0)
        assert response.status == 403, (path, response.status)
        texts[path] = response.text() if "text" in response.headers.get("content-type", "") else ""

    # Everything reachable by following links from the researcher's pages, and the JSON API
    # with the same session.
    # ("/", the patient list for staff, sends a researcher elsewhere: followed as well.)
    starts = ["/", "/accounts/", "/cohort/", "/api/openapi.json"]
    crawled = _crawl(page, starts, e2e_server.base_url)
    assert crawled["/"][0] in (302, 403), crawled["/"]
    assert crawled.get("/cohort/", (0, ""))[0] == 200
    assert any(status == 200 and "csv" in path for path, (status, _) in crawled.items()), crawled
    texts.update({path: text for path, (_status, text) in crawled.items()})
    for patient in e2e_server.patients:
        for path in (
            f"/api/patients/{patient.study_id}",
            f"/api/patients/{patient.study_id}/procedures",
            f"/api/patients/{patient.study_id}/follow-ups",
            f"/api/deidentified/patients/{patient.study_id}",
        ):
            response = page.request.get(path)
            assert response.status < 500, (path, response.status)
            texts[path] = response.text()
    for path in ("/api/patients", "/api/deidentified/patients", "/api/outcomes"):
        response = page.request.get(path)
        assert response.status < 500, (path, response.status)
        texts[path] = response.text()
    reached = sorted(p for p, (status, _) in crawled.items() if status == 200)
    assert len(reached) >= 3, reached

    leaks = _leaks(texts, e2e_server)
    assert not leaks, "identifiable data reached the researcher:\n" + "\n".join(leaks)


def _fresh_code(totp: pyotp.TOTP, *, steps_ahead: int = 0) -> str:
    """The code of the current 30-s step (or a later one), never one about to expire."""
    remaining = totp.interval - time.time() % totp.interval
    if remaining < 3:
        time.sleep(remaining + 0.1)  # at most 3 s: wait for the next step
    return totp.at(time.time() + steps_ahead * totp.interval)


def test_admin_sets_up_two_factor_before_reaching_the_app(
    new_context: Callable[..., BrowserContext], e2e_server: E2EServer, shot: Shot
) -> None:
    page = new_context().new_page()
    sign_in(page, e2e_server, "admin")
    expect(page).to_have_url(re.compile(r"/accounts/two-factor/set-up/"))
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    expect(page.locator("figure.qr svg")).to_be_visible()
    shot(page, "enrolment")

    # The application stays closed until enrolment is done.
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/accounts/two-factor/set-up/"))

    secret = "".join(page.locator("code.secret").inner_text().split())
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    totp = pyotp.TOTP(secret)
    code_field = page.get_by_label("6-digit code from your authenticator app")

    wrong = f"{(int(_fresh_code(totp)) + 500_000) % 1_000_000:06d}"
    code_field.fill(wrong)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("That code is not valid")).to_be_visible()
    shot(page, "enrolment-wrong-code")

    code = _fresh_code(totp)
    page.get_by_label("6-digit code from your authenticator app").fill(code)
    page.get_by_role("button", name="Confirm").click()
    expect(page).not_to_have_url(re.compile(r"/two-factor/"))
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.get_by_role("heading", name=re.compile("administration", re.I))).to_be_visible()
    page.goto("/cohort/")
    expect(page.get_by_role("heading", name="Cohort results")).to_be_visible()
    shot(page, "admin-in-the-app")

    # Next sign-in (new browser): the code is asked for; a replayed code is refused.
    second = new_context().new_page()
    sign_in(second, e2e_server, "admin")
    expect(second).to_have_url(re.compile(r"/accounts/two-factor/(\?|$)"))
    shot(second, "verify")
    field = second.get_by_label("6-digit code from your authenticator app")
    field.fill(code)
    second.get_by_role("button", name="Verify").click()
    expect(second.locator(".errors, .alert-error, [role=alert]").first).to_be_visible()
    second.get_by_label("6-digit code from your authenticator app").fill(
        _fresh_code(totp, steps_ahead=1)
    )
    second.get_by_role("button", name="Verify").click()
    expect(second).not_to_have_url(re.compile(r"/two-factor/"))
    response = second.goto("/admin/")
    assert response is not None and response.status == 200
