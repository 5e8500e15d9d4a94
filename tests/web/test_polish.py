"""The end-to-end review's polish items: error pages, form accessibility, one follow-up status
rule everywhere, the schedule grouped by procedure, labels instead of codes, favicon, the
two-factor set-up page without navigation."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.template.loader import get_template, render_to_string
from django.test import Client, override_settings
from django.urls import path
from django.utils import timezone
from test_worklists_support import complete, make_user, patient_with_procedure

from spinewatch.accounts.testing import signed_in
from spinewatch.core.procedures import TreatedLevel
from spinewatch.registry import services
from spinewatch.registry.services import find_follow_up
from spinewatch.web.followup_status import (
    VisitStatus,
    is_baseline,
    status_label,
    visit_label,
    visit_status,
)
from spinewatch.web.pages.timeline import follow_up_schedule, imaging_title
from spinewatch.web.worklists.queries import follow_ups_due

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
DAY = dt.timedelta(days=1)
STATIC = Path(__file__).resolve().parents[2] / "src/spinewatch/web/static/web"


class _Ids(HTMLParser):
    """Every id in a page and every id an aria-describedby / aria-labelledby points at."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.references: list[tuple[str, str, str]] = []  # (tag, attribute, id)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in ("aria-describedby", "aria-labelledby") and value:
                self.references.extend((tag, name, ref) for ref in value.split())


def _ids(html: str) -> _Ids:
    parser = _Ids()
    parser.feed(html)
    return parser


def _sign_in(role: str, name: str | None = None) -> tuple[Client, object]:
    user = make_user(role, name or f"{role}-user")
    return signed_in(Client(), user), user


# ---------------------------------------------------------------- 1. error pages


def test_error_templates_are_found_by_django():
    for name in ("400.html", "403.html", "403_csrf.html", "404.html", "500.html"):
        origin = get_template(name).origin.name
        assert "spinewatch/web/templates" in origin, (name, origin)


def test_404_page_is_the_product_layout_and_leaks_nothing():
    client, _ = _sign_in("clinician")
    response = client.get("/patients/SW-NO-SUCH-ONE/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html and 'class="site-header"' in html
    assert 'href="/"' in html and "Go to the start page" in html
    assert "SW-NO-SUCH-ONE" not in html  # neither the exception text nor the path
    assert "No Patient matches" not in html and "Traceback" not in html


def test_404_for_an_anonymous_visitor_offers_sign_in():
    response = Client().get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html and "/accounts/login/" in html


def test_403_page_says_plainly_what_happened_without_the_permission_message():
    patient, _ = patient_with_procedure(1, performed_on=TODAY - 10 * DAY)
    client, _ = _sign_in("researcher")
    response = client.get(f"/patients/{patient.study_id}/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "You do not have access to this page" in html and "(researcher)" in html
    assert "you may not" not in html  # the PermissionDenied text stays in the log
    assert patient.study_id not in html
    assert 'class="main-nav"' in html  # the researcher's own navigation, to go on from there


def test_400_page_for_a_bad_host():
    response = Client().get("/", HTTP_HOST="attacker.example")
    assert response.status_code == 400
    html = response.content.decode()
    assert "The request could not be understood" in html
    assert "attacker.example" not in html


def test_csrf_failure_page_is_styled():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form has expired" in html and "CSRF verification failed" not in html


def _boom(request):
    raise RuntimeError("secret-internal-detail-4711")


urlpatterns = [path("boom/", _boom)]


def test_500_page_needs_no_request_context_and_leaks_nothing():
    html = render_to_string("500.html")  # no request, no context processors
    assert "Something went wrong" in html and "/static/web/app.css" in html
    with override_settings(ROOT_URLCONF=__name__):
        client = Client(raise_request_exception=False)
        response = client.get("/boom/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong on our side" in body
    assert "secret-internal-detail-4711" not in body and "RuntimeError" not in body


# ---------------------------------------------------------------- 3. upload form references


def test_every_aria_reference_on_the_upload_page_resolves():
    patient, _ = patient_with_procedure(2, performed_on=TODAY - 10 * DAY)
    client, _ = _sign_in("clinician")
    for url in ("/scans/upload/", f"/scans/upload/?patient={patient.study_id}"):
        html = client.get(url).content.decode()
        page = _ids(html)
        described = [r for r in page.references if r[1] == "aria-describedby"]
        assert len(described) >= 5  # ct, labels, convention, patient, description, series uid
        missing = [r for r in page.references if r[2] not in page.ids]
        assert not missing, missing
        assert 'aria-describedby="id_ct_helptext"' in html and 'id="id_ct_helptext"' in html


def test_upload_errors_sit_next_to_their_field_and_references_still_resolve():
    client, _ = _sign_in("clinician")
    response = client.post("/scans/upload/", {"patient": "SW-NOBODY", "study_date": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "No patient has the study id" in html
    page = _ids(html)
    assert not [r for r in page.references if r[2] not in page.ids]


# ---------------------------------------------------------------- 4. upload from the patient page


def test_patient_page_upload_button_for_clinicians_only():
    patient, _ = patient_with_procedure(3, performed_on=TODAY - 10 * DAY)
    href = f'href="/scans/upload/?patient={patient.study_id}"'
    clinician, _ = _sign_in("clinician")
    assert href in clinician.get(f"/patients/{patient.study_id}/").content.decode()
    manager, _ = _sign_in("case_manager")
    html = manager.get(f"/patients/{patient.study_id}/").content.decode()
    assert "Upload scan" not in html and "/scans/upload/" not in html
    # ... and the upload form the button opens has the patient filled in
    form = clinician.get(f"/scans/upload/?patient={patient.study_id}").content.decode()
    field = re.search(r'<input[^>]*name="patient"[^>]*>', form)
    assert field and f'value="{patient.study_id}"' in field.group(0)


# ---------------------------------------------------------------- 7/8. one status rule


def test_visit_status_boundaries():
    _, proc = patient_with_procedure(4, performed_on=TODAY - 200 * DAY)
    fu = find_follow_up(procedure=proc, timepoint="1m")
    assert visit_status(fu, fu.window_start - DAY) is VisitStatus.UPCOMING
    assert visit_status(fu, fu.window_start) is VisitStatus.IN_WINDOW
    assert visit_status(fu, fu.due_date) is VisitStatus.DUE_TODAY
    assert visit_status(fu, fu.due_date + DAY) is VisitStatus.IN_WINDOW  # not overdue yet
    assert visit_status(fu, fu.window_end) is VisitStatus.IN_WINDOW
    assert visit_status(fu, fu.window_end + DAY) is VisitStatus.OVERDUE
    assert status_label(fu, fu.window_end + 3 * DAY).text == "Overdue 3 d"
    assert status_label(fu, fu.window_start - 3 * DAY).text == "Window opens soon"
    assert status_label(fu, fu.window_start - 30 * DAY).text == "Planned"
    complete(proc, "1m", fu.due_date, 2.0)
    done = find_follow_up(procedure=proc, timepoint="1m")
    assert visit_status(done, fu.window_end + 50 * DAY) is VisitStatus.DONE


def test_a_closed_baseline_is_missed_not_overdue():
    _, proc = patient_with_procedure(5, performed_on=TODAY - 5 * DAY)
    pre = find_follow_up(procedure=proc, timepoint="pre")
    three = find_follow_up(procedure=proc, timepoint="3d")
    assert is_baseline(pre) and not is_baseline(three)
    assert pre.window_end == proc.performed_on
    assert visit_status(pre, proc.performed_on) is VisitStatus.DUE_TODAY  # still recordable
    assert visit_status(pre, proc.performed_on + DAY) is VisitStatus.MISSED
    assert status_label(pre, TODAY).text == "Not recorded"


def test_patient_page_and_worklist_agree_the_day_after_the_due_date():
    # 1m visit: due 30 days after the procedure, window until day 37; today is day 31
    patient, proc = patient_with_procedure(6, performed_on=TODAY - 31 * DAY)
    fu = find_follow_up(procedure=proc, timepoint="1m")
    assert fu.due_date == TODAY - DAY and fu.window_end > TODAY
    client, _ = _sign_in("clinician")
    page = client.get(f"/patients/{patient.study_id}/").content.decode()
    schedule = page[page.index('id="schedule"') :]
    item = re.search(r"<li>(?:(?!</li>).)*1 month(?:(?!</li>).)*</li>", schedule, re.S)
    assert item and "In window" in item.group(0) and "Overdue" not in item.group(0)
    rows = [r for r in follow_ups_due(today=TODAY) if r.follow_up.pk == fu.pk]
    assert [r.status for r in rows] == ["in_window"]
    worklist = client.get("/worklists/?who=all").content.decode()
    rows_html = re.findall(
        r"<tr[^>]*>(?:(?!</tr>).)*Zorblatt6son(?:(?!</tr>).)*</tr>", worklist, re.S
    )
    month = [r for r in rows_html if re.search(r"<td[^>]*>1 month</td>", r)]
    assert len(month) == 1 and "In window" in month[0] and "Overdue" not in month[0]


def test_procedure_recorded_after_the_fact_does_not_fill_the_overdue_worklist():
    patient, proc = patient_with_procedure(7, performed_on=TODAY - 2 * DAY)
    client, _ = _sign_in("clinician")
    rows = [r for r in follow_ups_due(today=TODAY) if r.follow_up.procedure_id == proc.pk]
    assert [(r.follow_up.timepoint, r.status) for r in rows] == [("3d", "in_window")]
    worklist = client.get("/worklists/?who=all").content.decode()
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*Zorblatt7son(?:(?!</tr>).)*</tr>", worklist, re.S)
    assert row and "3 days" in row.group(0) and "Pre-operative" not in worklist
    assert "overdue</span>" not in worklist  # no "N overdue" count in the heading
    page = client.get(f"/patients/{patient.study_id}/").content.decode()
    schedule = page[page.index('id="schedule"') :]
    pre = re.search(r"<li>(?:(?!</li>).)*Pre-operative(?:(?!</li>).)*</li>", schedule, re.S)
    assert pre and "Not recorded" in pre.group(0) and "Overdue" not in pre.group(0)
    # nor is the missed baseline the patient's "next follow-up" on the patient list
    listing = client.get("/", {"q": "Zorblatt7son"}).content.decode()
    assert "Pre-operative" not in listing and "3 days" in listing


# ---------------------------------------------------------------- 6. labels, not codes


def test_timepoint_labels_on_worklist_record_and_portal_pages():
    _, proc = patient_with_procedure(8, performed_on=TODAY - 3 * DAY)
    fu = find_follow_up(procedure=proc, timepoint="3d")
    assert visit_label(fu) == "3 days"
    client, _ = _sign_in("clinician")
    worklist = client.get("/worklists/?who=all").content.decode()
    assert re.search(r"<td[^>]*>3 days</td>", worklist)
    assert not re.search(r"<td[^>]*>3d</td>", worklist)
    record = client.get(f"/worklists/follow-ups/{fu.pk}/record/").content.decode()
    assert "Record follow-up: 3 days" in record
    link_page = client.get(f"/portal/links/new/?follow_up={fu.pk}").content.decode()
    assert "<dd>3 days</dd>" in link_page
    made = client.post(f"/portal/links/new/?follow_up={fu.pk}").content.decode()
    assert "3 days visit" in made and "Visit 3d" not in made


# ---------------------------------------------------------------- 11. portal link: copy


def test_portal_link_page_has_a_readonly_address_and_a_copy_button():
    _, proc = patient_with_procedure(9, performed_on=TODAY - 3 * DAY)
    fu = find_follow_up(procedure=proc, timepoint="3d")
    client, _ = _sign_in("clinician")
    html = client.post(f"/portal/links/new/?follow_up={fu.pk}").content.decode()
    # a read-only text area: the whole address wraps inside it instead of being cut off
    field = re.search(r'<textarea[^>]*id="portal-url"[^>]*>([^<]*)</textarea>', html)
    assert field and "readonly" in field.group(0) and "/portal/" in field.group(1)
    # the Copy button needs JavaScript: hidden until app.js shows it
    button = re.search(r'<button[^>]*data-copy="portal-url"[^>]*>\s*Copy', html)
    assert button and "data-needs-js" in button.group(0) and "hidden" in button.group(0)
    assert 'data-copy-status="portal-url"' in html
    assert "<script>" not in html and "style=" not in html  # CSP: static JS and CSS only
    js = (STATIC / "app.js").read_text()
    assert "data-copy" in js and "navigator.clipboard" in js and ".select()" in js
    assert "data-needs-js" in js


# ---------------------------------------------------------------- 12. two-factor set-up


def test_two_factor_set_up_page_shows_no_navigation():
    admin = make_user("admin", "boss")
    client = Client()
    client.force_login(admin)  # signed in, second factor not done
    response = client.get("/", follow=True)
    html = response.content.decode()
    assert "Set up two-factor sign-in" in html
    assert 'aria-label="Main"' not in html and 'href="/worklists/"' not in html
    assert 'href="/admin/"' not in html and "Sign out" in html
    # once the second factor is done the navigation is back
    done = signed_in(Client(), admin)
    assert 'href="/admin/"' in done.get("/cohort/").content.decode()


# ---------------------------------------------------------------- 13. modality once


def test_imaging_title_names_the_modality_once():
    assert imaging_title("CT", "CT thoraco-lumbar spine") == "CT thoraco-lumbar spine"
    assert imaging_title("CT", "ct whole spine") == "ct whole spine"
    assert imaging_title("CT", "Thoraco-lumbar spine") == "CT Thoraco-lumbar spine"
    assert imaging_title("MR", "") == "MR"
    assert imaging_title("CT", "CTA aorta") == "CT CTA aorta"
    assert imaging_title("CT", "Demo phantom CT, prior scan") == "Demo phantom CT, prior scan"


def test_timeline_scan_entry_shows_the_modality_once():
    patient, _ = patient_with_procedure(10, performed_on=TODAY - 3 * DAY)
    services.add_imaging_study(
        patient=patient, study_date=TODAY - 20 * DAY, description="CT thoraco-lumbar spine"
    )
    client, _ = _sign_in("clinician")
    html = client.get(f"/patients/{patient.study_id}/").content.decode()
    assert "CT thoraco-lumbar spine" in html and "CT CT" not in html


# ---------------------------------------------------------------- 16. favicon


def test_favicon():
    response = Client().get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/web/favicon.svg"
    svg = (STATIC / "favicon.svg").read_text()
    assert svg.startswith("<svg") and "viewBox" in svg
    html = Client().get("/accounts/login/").content.decode()
    assert '<link rel="icon" href="/static/web/favicon.svg"' in html


# ---------------------------------------------------------------- 17. schedule by procedure


def test_schedule_is_grouped_by_procedure():
    patient, first = patient_with_procedure(11, performed_on=TODAY - 40 * DAY, level="L1")
    second = services.record_procedure(
        patient=patient,
        performed_on=TODAY - 2 * DAY,
        procedure_type="kyphoplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        levels=[
            TreatedLevel("L2", "transpedicular", 11, 3.0),
            TreatedLevel("T12", "transpedicular", 11, 3.0),
        ],
        operator="Dr Example",
    )
    groups = follow_up_schedule(patient, TODAY)
    assert {g.procedure.pk for g in groups} == {first.pk, second.pk}
    for g in groups:
        assert {v.procedure_id for v in g.visits} == {g.procedure.pk}
        assert [v.due_date for v in g.visits] == sorted(v.due_date for v in g.visits)
    by_pk = {g.procedure.pk: g for g in groups}
    assert by_pk[second.pk].heading == "Kyphoplasty · T12, L2"  # cranial to caudal
    assert by_pk[first.pk].heading == "Vertebroplasty · L1"
    # the first group holds the most urgent actionable visit (1m of the first: in window)
    assert groups[0].procedure.pk == first.pk
    client, _ = _sign_in("clinician")
    html = client.get(f"/patients/{patient.study_id}/").content.decode()
    schedule = html[html.index('id="schedule"') : html.index('id="timeline-title"')]
    headings = re.findall(r'<h3 class="schedule-heading"[^>]*>(.*?)</h3>', schedule, re.S)
    assert len(headings) == 2
    assert "Vertebroplasty · L1" in headings[0] and "Kyphoplasty · T12, L2" in headings[1]
    lists = re.findall(r'<ul class="schedule"[^>]*>(.*?)</ul>', schedule, re.S)
    assert [lst.count("<li>") for lst in lists] == [len(g.visits) for g in groups]


# ---------------------------------------------------------------- 2 and 5. scan pages


def _study_with_job(patient, status: str, *, report=None, picture: str = ""):
    from spinewatch.web.scans.models import AnalysisJob

    study = services.add_imaging_study(
        patient=patient, study_date=TODAY - 5 * DAY, description="CT spine", report=report
    )
    AnalysisJob.objects.create(
        study=study,
        upload_dir="x" * 8,
        labels_file="labels.nii.gz",
        labels_name="labels.nii.gz",
        status=status,
        picture_file=picture,
    )
    return study


def test_reload_hint_while_queued_is_for_browsers_without_javascript_only():
    patient, _ = patient_with_procedure(12, performed_on=TODAY - 3 * DAY)
    study = _study_with_job(patient, "queued")
    client, _ = _sign_in("clinician")
    html = client.get(f"/scans/{study.pk}/").content.decode()
    hint = re.search(r'<p class="([^"]*)">(?:(?!</p>).)*to see the latest progress', html, re.S)
    assert hint and "no-js-only" in hint.group(1).split()
    css = (STATIC / "app.css").read_text()
    assert re.search(r"\.js \.no-js-only\s*\{\s*display:\s*none", css)
    js = (STATIC / "app.js").read_text()
    assert 'document.documentElement.classList.add("js")' in js


def test_sagittal_picture_opens_full_size_from_the_patient_and_scan_pages():
    vertebra = {"level": "L1", "collapse_risk": "low", "genant_grade": 0}
    report = {"scan": {"labels": "synthetic"}, "vertebrae": [vertebra]}
    patient, _ = patient_with_procedure(13, performed_on=TODAY - 3 * DAY)
    study = _study_with_job(patient, "done", report=report, picture="spine.png")
    client, _ = _sign_in("clinician")
    link = rf'<a class="picture-link" href="/scans/{study.pk}/picture.png"[^>]*><img class="picture'
    scan_page = client.get(f"/scans/{study.pk}/").content.decode()
    assert re.search(link, scan_page)
    page = client.get(f"/patients/{patient.study_id}/").content.decode()
    assert 'id="analysis"' in page and re.search(link, page)


# ---------------------------------------------------------------- 9 and 10. cohort


def _cohort_with_a_second_series_and_a_lone_value():
    start = TODAY - 400 * DAY
    first, proc1 = patient_with_procedure(20, performed_on=start)
    _, proc2 = patient_with_procedure(21, performed_on=start)
    proc3 = services.record_procedure(
        patient=first,
        performed_on=start + 100 * DAY,
        procedure_type="vertebroplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        levels=[TreatedLevel("T11", "transpedicular", 11, 3.0)],
        operator="Dr Example",
    )
    for proc, base in ((proc1, 8.0), (proc2, 7.0), (proc3, 6.0)):
        complete(proc, "pre", proc.performed_on, base)
        complete(proc, "3d", proc.performed_on + 3 * DAY, base - 4)
    complete(proc1, "12m", proc1.performed_on + 365 * DAY, 0.4)  # the only 12-month value


def test_cohort_counts_patients_and_series_alike_in_table_and_plot():
    from spinewatch.outcomes import trajectory_figure
    from spinewatch.registry.deid import deidentified_cohort_frame

    _cohort_with_a_second_series_and_a_lone_value()
    client, _ = _sign_in("researcher")
    html = client.get("/cohort/").content.decode()
    assert "2 patients, 3 treatment series" in html
    assert "(3 series of 2 patients)" in html
    title = trajectory_figure(deidentified_cohort_frame()).axes[0].get_title(loc="left")
    assert title == "Pain after vertebroplasty (2 patients, 3 treatment series)"
    assert client.get("/cohort/plot.png").status_code == 200


def test_cohort_sd_of_a_single_value_is_n_a_with_a_footnote():
    _cohort_with_a_second_series_and_a_lone_value()
    client, _ = _sign_in("researcher")
    html = client.get("/cohort/").content.decode()
    row = re.search(r'<tr[^>]*data-timepoint="12m">(.*?)</tr>', html, re.S)
    assert row
    assert "0.4 ± n/a" in row.group(1) and 'href="#sd-footnote"' in row.group(1)
    assert "± —" not in html
    notes = re.search(r'<p class="table-notes">(.*?)</p>', html, re.S)
    assert notes and 'id="sd-footnote"' in notes.group(1)
    # every note is a sentence: it ends with a full stop
    for line in re.split(r"<br>", notes.group(1)):
        text = re.sub(r"<[^>]+>", "", line).strip()
        assert text.endswith("."), text
