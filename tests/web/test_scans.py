"""Scan pages end to end through the Django test client, the worker run in-process.

Upload a phantom -> queued job -> ``run_pending_jobs`` -> findings, picture, table, comparison;
broken files -> failed jobs with their message; permissions per role; CSRF; audit; progress.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from test_scans_support import (
    SMALL_PRIOR_SPEC,
    SMALL_SPEC,
    make_patient,
    make_user,
    post_upload,
    truncated_copy,
    write_spec,
)

from spinewatch.accounts.testing import signed_in
from spinewatch.audit.models import AuditEvent
from spinewatch.imaging.analysis import analyze_files
from spinewatch.registry import models as rm
from spinewatch.web.scans import jobs
from spinewatch.web.scans.models import AnalysisJob, JobStatus
from spinewatch.web.scans.worker import GENERIC_FAILURE, run_pending_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.DATA_DIR = tmp_path / "data"


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> tuple[Path, Path]:
    return write_spec(SMALL_SPEC, tmp_path_factory.mktemp("phantom"))


@pytest.fixture(scope="module")
def prior_phantom(tmp_path_factory) -> tuple[Path, Path]:
    return write_spec(SMALL_PRIOR_SPEC, tmp_path_factory.mktemp("prior"))


@pytest.fixture
def patient():
    return make_patient()


@pytest.fixture
def clinician():
    return make_user("clinician", "dr_scan")


@pytest.fixture
def client(clinician) -> Client:
    return signed_in(Client(), clinician)


def _client_for(role: str) -> Client:
    return signed_in(Client(), make_user(role, f"{role}_user"))


def _uploaded(client, phantom, tmp_path, **kwargs) -> rm.ImagingStudy:
    response = post_upload(client, *phantom, tmp_path / "up", **kwargs)
    assert response.status_code == 302, response.content.decode()[:2000]
    study = rm.ImagingStudy.objects.order_by("-pk").first()
    assert response["Location"] == f"/scans/{study.pk}/"
    return study


# -- the happy path ---------------------------------------------------------------------------


def test_upload_queues_a_job_and_the_worker_stores_findings_and_picture(
    client, patient, phantom, tmp_path, settings
):
    study = _uploaded(client, phantom, tmp_path)
    assert study.patient == patient and study.study_date == dt.date(2025, 3, 1)
    assert study.report is None
    job = AnalysisJob.objects.get(study=study)
    assert job.status == JobStatus.QUEUED and job.progress_pct == 0
    stored = Path(settings.DATA_DIR) / "uploads" / job.upload_dir
    assert (stored / "ct.nii.gz").read_bytes() == phantom[0].read_bytes()
    assert (stored / "labels.nii.gz").read_bytes() == phantom[1].read_bytes()
    assert job.ct_name == "patient-ct.nii.gz"

    page = client.get(f"/scans/{study.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Queued" in html and f'hx-get="/scans/{study.pk}/status/"' in html

    assert run_pending_jobs(max_jobs=5) == 1
    job.refresh_from_db()
    study.refresh_from_db()
    assert job.status == JobStatus.DONE, job.message
    assert job.progress_pct == 100 and job.attempts == 1 and job.finished_at is not None
    # the stored report is the analysis of the same files, computed independently here
    expected = analyze_files(*phantom).to_json_dict()
    assert [v["level"] for v in study.report["vertebrae"]] == ["T12", "L1", "L2"]
    for got, want in zip(study.report["vertebrae"], expected["vertebrae"], strict=True):
        assert got["height_anterior_mm"] == want["height_anterior_mm"]
        assert got["genant_grade"] == want["genant_grade"]
    assert study.report["scan"]["study_date"] == "2025-03-01"
    assert study.report["scan"]["ct"] == "patient-ct.nii.gz"  # no server path in the report
    findings = {f.level: f for f in study.findings.all()}
    assert set(findings) == {"T12", "L1", "L2"}
    assert findings["L1"].genant_grade >= 1 and findings["T12"].genant_grade == 0
    png = stored / job.picture_file
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page = client.get(f"/scans/{study.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "hx-get" not in html  # no more polling
    for level in ("T12", "L1", "L2"):
        assert f'<th scope="row">{level}' in html
    assert f'src="/scans/{study.pk}/picture.png"' in html
    assert "Testperson, Ada" in html
    assert "No earlier analysed scan" in html

    picture = client.get(f"/scans/{study.pk}/picture.png")
    assert picture.status_code == 200 and picture["Content-Type"] == "image/png"
    assert picture.content == png.read_bytes()
    assert "no-store" in picture["Cache-Control"]


def test_progress_fragment_polls_while_active_and_refreshes_when_done(
    client, patient, phantom, tmp_path
):
    study = _uploaded(client, phantom, tmp_path)
    job = jobs.claim_next(worker="test-worker")
    assert jobs.set_progress(job, 40, "Measured 1 of 3 vertebrae")
    fragment = client.get(f"/scans/{study.pk}/status/", HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert fragment.status_code == 200 and "HX-Refresh" not in fragment
    assert 'hx-trigger="every 1500ms"' in html
    assert f'<progress id="scan-progress-{study.pk}" max="100" value="40">' in html
    assert "Measured 1 of 3 vertebrae" in html
    assert "no-store" in fragment["Cache-Control"]
    # progress never goes backwards
    assert not jobs.set_progress(job, 30)
    assert jobs.finish(job, status=JobStatus.FAILED, message="stopped for the test")
    fragment = client.get(f"/scans/{study.pk}/status/", HTTP_HX_REQUEST="true")
    assert fragment["HX-Refresh"] == "true"
    assert "hx-get" not in fragment.content.decode()
    # without htmx the fragment is plain HTML (no refresh header)
    plain = client.get(f"/scans/{study.pk}/status/")
    assert "HX-Refresh" not in plain and "stopped for the test" in plain.content.decode()


def test_changes_since_the_prior_scan(client, patient, phantom, prior_phantom, tmp_path):
    prior = _uploaded(client, prior_phantom, tmp_path / "a", study_date=dt.date(2024, 9, 1))
    current = _uploaded(client, phantom, tmp_path / "b", study_date=dt.date(2025, 3, 1))
    assert run_pending_jobs() == 2
    html = client.get(f"/scans/{current.pk}/").content.decode()
    assert "Changes since the prior scan" in html
    assert f'href="/scans/{prior.pk}/"' in html and "181 days earlier" in html
    # L1 broke between the scans: compare_reports flags it; the page says so
    changes = html.split('class="data compact changes-table"', 1)[1]
    l1 = changes.split('<th scope="row">L1</th>', 1)[1].split("</tr>", 1)[0]
    assert "Signal to treat" in l1 and "new fracture: Genant grade 0 → 2" in l1
    t12 = changes.split('<th scope="row">T12</th>', 1)[1].split("</tr>", 1)[0]
    assert "Signal to treat" not in t12 and "No change beyond noise" in t12
    # the prior study has nothing earlier to compare with
    assert "No earlier analysed scan" in client.get(f"/scans/{prior.pk}/").content.decode()


def test_the_worker_stores_the_signal_and_it_raises_the_risk(
    client, patient, phantom, prior_phantom, tmp_path
):
    prior = _uploaded(client, prior_phantom, tmp_path / "a", study_date=dt.date(2024, 9, 1))
    current = _uploaded(client, phantom, tmp_path / "b", study_date=dt.date(2025, 3, 1))
    assert run_pending_jobs() == 2
    prior.refresh_from_db()
    current.refresh_from_db()
    # the prior had nothing earlier: no comparison, no signal
    assert prior.report["scan"]["compared_with"] is None
    assert {f.treat_signal for f in prior.findings.all()} == {None}
    # the current one was compared with it by the worker, and stored so
    scan = current.report["scan"]
    assert scan["compared_with"]["study_date"] == "2024-09-01"
    assert scan["compared_with"]["interval_days"] == 181
    got = {v["level"]: v for v in current.report["vertebrae"]}
    l1 = got["L1"]
    assert l1["treat_signal"] is True and "new_fracture" in l1["change_flags"]
    assert "new fracture: Genant grade 0 → 2" in l1["treat_signal_reasons"]
    # already high by its Genant grade 2: the signal has nothing to raise (apply_comparison's
    # raising is tested in tests/imaging/test_compare.py)
    assert l1["collapse_risk"] == "high"
    assert not any("collapse risk raised" in r for r in l1["reasons"])
    assert got["T12"]["treat_signal"] is False
    findings = {f.level: f for f in current.findings.all()}
    assert findings["L1"].treat_signal is True
    assert findings["L1"].treat_signal_reasons == l1["treat_signal_reasons"]
    assert findings["L1"].confidence in {"high", "medium", "low"}
    assert findings["L1"].confidence_reasons
    # the levels table shows the signal and the confidence; the worklist lists L1 with why
    html = client.get(f"/scans/{current.pk}/").content.decode()
    levels = html.split('class="data compact levels-table"', 1)[1].split("</table>", 1)[0]
    row = levels.split('<th scope="row">L1', 1)[1].split("</tr>", 1)[0]
    assert "Signal to treat" in row and "confidence" in row
    worklist = client.get("/worklists/").content.decode()
    high = worklist.split('id="high-risk"', 1)[1].split('id="not-assessable"', 1)[0]
    assert "<strong>L1</strong>" in high and "Signal to treat" in high
    assert "new fracture: Genant grade 0 → 2" in high


def test_a_prior_that_cannot_be_compared_does_not_lose_the_analysis(
    client, patient, phantom, tmp_path
):
    from spinewatch.registry.services import add_imaging_study

    # an imported prior whose report says it was taken after the new scan
    add_imaging_study(
        patient=patient,
        study_date=dt.date(2024, 9, 1),
        report={"scan": {"study_date": "2026-01-01"}, "vertebrae": [{"level": "L1"}]},
    )
    current = _uploaded(client, phantom, tmp_path, study_date=dt.date(2025, 3, 1))
    assert run_pending_jobs() == 1
    job = AnalysisJob.objects.get(study=current)
    current.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert job.message.startswith("Analysed; not compared with the study of 2024-09-01:")
    assert "are PRIOR and CURRENT swapped?" in job.message
    assert current.report["scan"]["compared_with"] is None
    assert {f.treat_signal for f in current.findings.all()} == {None}


def test_rerun_queues_a_new_job_and_refuses_while_one_is_active(client, patient, phantom, tmp_path):
    study = _uploaded(client, phantom, tmp_path)
    refused = client.post(f"/scans/{study.pk}/rerun/")
    assert refused.status_code == 409
    assert "already queued or running" in refused.content.decode()
    run_pending_jobs()
    version = rm.ImagingStudy.objects.get(pk=study.pk).version
    response = client.post(f"/scans/{study.pk}/rerun/")
    assert response.status_code == 302
    assert AnalysisJob.objects.filter(study=study).count() == 2
    assert run_pending_jobs() == 1
    study.refresh_from_db()
    assert study.version == version + 1 and study.findings.count() == 3


def test_rerun_without_uploaded_files_is_refused(client, patient):
    from spinewatch.registry import services

    study = services.add_imaging_study(patient=patient, study_date=dt.date(2025, 1, 1))
    response = client.post(f"/scans/{study.pk}/rerun/")
    assert response.status_code == 409
    assert "no uploaded files to analyse again" in response.content.decode()


def test_report_download_is_the_stored_report_and_audited(client, patient, phantom, tmp_path):
    study = _uploaded(client, phantom, tmp_path)
    assert client.get(f"/scans/{study.pk}/report.json").status_code == 404  # not analysed yet
    run_pending_jobs()
    study.refresh_from_db()
    before = AuditEvent.objects.filter(action="export").count()
    response = client.get(f"/scans/{study.pk}/report.json")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert json.loads(response.content) == study.report
    event = AuditEvent.objects.filter(action="export").order_by("-seq").first()
    assert AuditEvent.objects.filter(action="export").count() == before + 1
    assert event.object_id == str(study.pk) and event.patient_study_id == "SW-9001"
    assert event.actor_username == "dr_scan"


def test_scan_page_and_list_record_view_events(client, patient, phantom, tmp_path):
    study = _uploaded(client, phantom, tmp_path)
    views = AuditEvent.objects.filter(action="view")
    n = views.count()
    assert client.get(f"/scans/{study.pk}/").status_code == 200
    assert views.count() == n + 1
    event = views.order_by("-seq").first()
    assert event.object_type == "registry.imagingstudy" and event.object_id == str(study.pk)
    assert event.patient_study_id == "SW-9001" and event.actor_username == "dr_scan"
    listing = client.get("/scans/")
    assert listing.status_code == 200 and "Testperson, Ada" in listing.content.decode()
    assert views.count() == n + 2
    # polling the status fragment is not a view of identifiable data
    client.get(f"/scans/{study.pk}/status/")
    assert views.count() == n + 2


def test_registry_writes_of_the_worker_are_audited_as_the_requesting_user(
    client, patient, phantom, tmp_path
):
    study = _uploaded(client, phantom, tmp_path)
    run_pending_jobs()
    update = AuditEvent.objects.filter(
        action="update", object_type="registry.imagingstudy", object_id=str(study.pk)
    ).latest("seq")
    assert update.actor_username == "dr_scan" and update.via == "system"


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ct_name", "ct_bytes", "labels_name", "message"),
    [
        ("scan.pdf", b"%PDF-1.4", "labels.nii.gz", "unsupported file type"),
        ("scan.nii.gz", b"%PDF-1.4 not gzip", "labels.nii.gz", "not gzip-compressed"),
        ("scan.zip", b"PK but not a zip", "labels.nii.gz", "not a readable zip archive"),
        ("scan.nii", b"\x00" * 400, "labels.nii.gz", "not a NIfTI image"),
        ("ct.nii.gz", None, "labels.zip", "label map &#x27;labels.zip&#x27;: unsupported"),
    ],
)
def test_wrong_file_types_are_refused_with_a_clear_message(
    client, patient, phantom, tmp_path, settings, ct_name, ct_bytes, labels_name, message
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    ct = SimpleUploadedFile(ct_name, ct_bytes if ct_bytes is not None else phantom[0].read_bytes())
    labels = SimpleUploadedFile(labels_name, phantom[1].read_bytes())
    response = client.post(
        "/scans/upload/",
        {
            "patient": "SW-9001",
            "ct": ct,
            "labels": labels,
            "convention": "auto",
            "study_date": "2025-03-01",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'class="field has-error' in html  # next to its field
    assert not rm.ImagingStudy.objects.exists() and not AnalysisJob.objects.exists()
    assert not (Path(settings.DATA_DIR) / "uploads").exists() or not any(
        (Path(settings.DATA_DIR) / "uploads").iterdir()
    )


def test_bad_form_values_are_refused(client, patient, phantom, tmp_path):
    future = timezone.localdate() + dt.timedelta(days=3)
    response = post_upload(client, *phantom, tmp_path / "f", study_date=future)
    assert response.status_code == 400 and "is in the future" in response.content.decode()
    response = post_upload(client, *phantom, tmp_path / "g", patient="SW-0404")
    assert response.status_code == 400
    assert "No patient has the study id &#x27;SW-0404&#x27;" in response.content.decode()
    response = post_upload(client, *phantom, tmp_path / "h", convention="nonsense")
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not rm.ImagingStudy.objects.exists()


def test_upload_larger_than_the_limit_is_refused_before_storing(
    client, patient, phantom, tmp_path, settings
):
    settings.SPINEWATCH_UPLOAD_MAX_BYTES = 4096
    response = post_upload(client, *phantom, tmp_path / "big")
    assert response.status_code == 413
    assert "larger than the limit" in response.content.decode()
    assert not rm.ImagingStudy.objects.exists()
    uploads = Path(settings.DATA_DIR) / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_a_broken_file_fails_the_job_with_its_message(client, patient, phantom, tmp_path):
    broken = truncated_copy(phantom[0], tmp_path / "broken-ct.nii.gz")
    study = _uploaded(client, (broken, phantom[1]), tmp_path)
    assert run_pending_jobs() == 1
    job = AnalysisJob.objects.get(study=study)
    assert job.status == JobStatus.FAILED and job.attempts == 1
    assert "patient-ct.nii.gz" in job.message  # the uploaded name, not the server path
    assert "/uploads/" not in job.message
    study.refresh_from_db()
    assert study.report is None and not study.findings.exists()
    html = client.get(f"/scans/{study.pk}/").content.decode()
    assert "The analysis failed" in html
    from django.utils.html import escape

    assert escape(job.message) in html
    assert "Re-run analysis" in html


def test_labels_that_do_not_match_the_ct_fail_with_the_grid_message(
    client, patient, phantom, tmp_path
):
    other = write_spec(
        type(SMALL_SPEC)(levels=("T12", "L1", "L2"), spacing_mm=(2.0, 2.0, 2.0)), tmp_path / "o"
    )
    study = _uploaded(client, (phantom[0], other[1]), tmp_path)
    run_pending_jobs()
    job = AnalysisJob.objects.get(study=study)
    assert job.status == JobStatus.FAILED
    assert "patient-labels.nii.gz" in job.message and "grid" in job.message.lower()


def test_an_unexpected_error_fails_the_job_with_a_generic_message_and_logs_it(
    client, patient, phantom, tmp_path, monkeypatch, caplog
):
    import spinewatch.imaging.analysis as analysis

    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(analysis, "analyze", explode)
    study = _uploaded(client, phantom, tmp_path)
    with caplog.at_level(logging.ERROR, logger="spinewatch.web.scans.worker"):
        run_pending_jobs()
    job = AnalysisJob.objects.get(study=study)
    assert job.status == JobStatus.FAILED
    assert job.message == GENERIC_FAILURE.format(job=job.pk)
    assert "secret internal detail" not in client.get(f"/scans/{study.pk}/").content.decode()
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


# -- recovery ---------------------------------------------------------------------------------


def test_a_job_of_a_dead_worker_is_recovered_and_completes(client, patient, phantom, tmp_path):
    study = _uploaded(client, phantom, tmp_path)
    job = jobs.claim_next(worker="dead-host:1234:abcd")
    assert job is not None and job.status == JobStatus.RUNNING
    jobs.set_progress(job, 40)
    # the worker died 10 minutes ago: no heartbeat since
    AnalysisJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(minutes=10)
    )
    assert run_pending_jobs(stale_after_s=60) == 1
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.attempts == 2
    assert rm.ImagingStudy.objects.get(pk=study.pk).findings.count() == 3
    # the dead worker wakes up: its claim is void, it cannot write progress or a result
    assert not jobs.set_progress(job, 90) and not jobs.beat(job)


def test_a_running_job_with_a_fresh_heartbeat_is_left_alone(client, patient, phantom, tmp_path):
    _uploaded(client, phantom, tmp_path)
    job = jobs.claim_next(worker="alive:1:x")
    assert run_pending_jobs(stale_after_s=60) == 0
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.worker == "alive:1:x"


# -- permissions and CSRF ---------------------------------------------------------------------


@pytest.fixture
def analysed(client, patient, phantom, tmp_path) -> rm.ImagingStudy:
    study = _uploaded(client, phantom, tmp_path)
    run_pending_jobs()
    return study


def _urls(pk: int) -> dict[str, str]:
    return {
        "list": "/scans/",
        "upload": "/scans/upload/?patient=SW-9001",
        "detail": f"/scans/{pk}/",
        "status": f"/scans/{pk}/status/",
        "picture": f"/scans/{pk}/picture.png",
        "report": f"/scans/{pk}/report.json",
    }


def test_researchers_are_refused_everywhere(analysed):
    researcher = _client_for("researcher")
    for name, url in _urls(analysed.pk).items():
        assert researcher.get(url).status_code == 403, name
    assert researcher.post(f"/scans/{analysed.pk}/rerun/").status_code == 403
    assert researcher.post("/scans/upload/", {"patient": "SW-9001"}).status_code == 403


def test_case_managers_see_scans_but_cannot_upload_rerun_or_export(analysed):
    manager = _client_for("case_manager")
    for name in ("list", "detail", "status", "picture"):
        assert manager.get(_urls(analysed.pk)[name]).status_code == 200, name
    html = manager.get(f"/scans/{analysed.pk}/").content.decode()
    assert "Re-run analysis" not in html and "Download report" not in html
    assert manager.get(_urls(analysed.pk)["upload"]).status_code == 403
    assert manager.get(_urls(analysed.pk)["report"]).status_code == 403
    assert manager.post(f"/scans/{analysed.pk}/rerun/").status_code == 403
    assert AnalysisJob.objects.filter(study=analysed).count() == 1


def test_anonymous_visitors_are_sent_to_the_login_page(analysed):
    anonymous = Client()
    for name, url in _urls(analysed.pk).items():
        response = anonymous.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], name


def test_missing_study_is_404(client, patient):
    assert client.get("/scans/999999/").status_code == 404
    assert client.get("/scans/upload/?patient=SW-0404").status_code == 404


def test_posts_need_the_csrf_token(clinician, patient, phantom, tmp_path):
    strict = signed_in(Client(enforce_csrf_checks=True), clinician)
    response = post_upload(strict, *phantom, tmp_path / "c")
    assert response.status_code == 403
    assert not rm.ImagingStudy.objects.exists()
    # with the token from the form it goes through
    page = strict.get("/scans/upload/?patient=SW-9001")
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else None
    token = token or strict.cookies["csrftoken"].value
    response = post_upload(strict, *phantom, tmp_path / "d", csrfmiddlewaretoken=token)
    assert response.status_code == 302
    study = rm.ImagingStudy.objects.get()
    run_pending_jobs()
    assert strict.post(f"/scans/{study.pk}/rerun/").status_code == 403


def test_upload_page_shows_the_patient_and_labelled_fields(client, patient):
    response = client.get("/scans/upload/?patient=SW-9001")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Testperson, Ada" in html and 'value="SW-9001"' in html
    for field in ("ct", "labels", "convention", "study_date", "description", "patient"):
        assert f'<label for="id_{field}">' in html, field
    assert 'enctype="multipart/form-data"' in html


# -- modality and contrast phase ----------------------------------------------------------------


def test_an_upload_as_mri_is_analysed_for_geometry_only_and_the_study_becomes_mr(
    client, patient, phantom, tmp_path
):
    # a TotalSegmentator CT ("total") map on an MRI is what a misread total_mr map looks like:
    # auto refuses that reading for an MRI, so the uploader names the convention
    study = _uploaded(client, phantom, tmp_path, modality="mr", convention="totalsegmentator")
    job = AnalysisJob.objects.get(study=study)
    assert (job.modality, job.contrast_phase) == ("mr", "auto")
    assert study.modality == "mr"  # registered as the uploader said
    run_pending_jobs()
    job.refresh_from_db()
    study.refresh_from_db()
    assert job.status == JobStatus.DONE, job.message
    scan = study.report["scan"]
    assert (scan["modality"], scan["modality_source"]) == ("MR", "user")
    for v in study.report["vertebrae"]:
        assert v["trabecular_hu_median"] is None and v["lytic_volume_ml"] is None
        assert v["not_assessed"] == ["MRI: not assessed"]
    assert all(f.trabecular_hu_median is None for f in study.findings.all())
    html = client.get(f"/scans/{study.pk}/").content.decode()
    assert "MRI: geometry only" in html and "MRI: not assessed" in html
    assert "MRI file" in html
    api = client.get(f"/api/studies/{study.pk}").json()
    assert api["modality"] == "mr" and api["contrast_phase"] is None
    assert api["acquisition"] == "MRI: geometry only"


def test_the_analysis_sets_the_study_modality_and_the_page_shows_the_phase(
    client, patient, phantom, tmp_path
):
    study = _uploaded(client, phantom, tmp_path, contrast_phase="portal-venous")
    assert AnalysisJob.objects.get(study=study).contrast_phase == "portal-venous"
    run_pending_jobs()
    study.refresh_from_db()
    scan = study.report["scan"]
    assert (scan["modality"], scan["modality_source"]) == ("CT", "detected")
    assert (scan["contrast_phase"], scan["contrast_source"]) == ("portal_venous", "user")
    assert study.modality == "ct"
    html = client.get(f"/scans/{study.pk}/").content.decode()
    assert "CT, portal-venous (set by the user)" in html
    assert "raised by 14.75 HU" in html
    api = client.get(f"/api/studies/{study.pk}").json()
    assert api["contrast_phase"] == "portal_venous"
    assert api["acquisition"] == "CT, portal-venous (set by the user)"
    # a re-run keeps what the uploader chose
    assert client.post(f"/scans/{study.pk}/rerun/").status_code == 302
    assert jobs.latest_job(study.pk).contrast_phase == "portal-venous"


def test_a_default_upload_is_detected_as_ct_and_shown_as_native_assumed(
    client, patient, phantom, tmp_path
):
    study = _uploaded(client, phantom, tmp_path, modality="auto")
    assert study.modality == "ct"
    run_pending_jobs()
    study.refresh_from_db()
    assert study.report["scan"]["modality"] == "CT" and study.modality == "ct"
    html = client.get(f"/scans/{study.pk}/").content.decode()
    assert "CT, native (no contrast), assumed" in html


def test_a_contrast_phase_for_an_mri_and_unknown_choices_are_refused(
    client, patient, phantom, tmp_path
):
    response = post_upload(
        client, *phantom, tmp_path / "a", modality="mr", contrast_phase="arterial"
    )
    assert response.status_code == 400
    assert "A contrast phase applies to CT only" in response.content.decode()
    for field, value in (("modality", "pet"), ("contrast_phase", "venous-ish")):
        response = post_upload(client, *phantom, tmp_path / field, **{field: value})
        assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not rm.ImagingStudy.objects.exists()


def test_upload_page_explains_the_modality_and_phase_choices(client, patient):
    html = client.get("/scans/upload/?patient=SW-9001").content.decode()
    for field in ("modality", "contrast_phase"):
        assert f'<label for="id_{field}">' in html, field
    assert "MRI (geometry only)" in html and "Portal-venous" in html
    assert "An MRI gives heights and Genant only" in html


# -- a CT alone (issue 8) -----------------------------------------------------------------------


def test_a_ct_alone_is_segmented_by_the_configured_segmenter(
    client, patient, phantom, tmp_path, settings
):
    import datetime as _dt

    settings.SPINEWATCH_SEGMENTER = "builtin"
    ct_copy = tmp_path / "ct-only.nii.gz"
    ct_copy.write_bytes(phantom[0].read_bytes())
    with ct_copy.open("rb") as ct_fh:
        response = client.post(
            f"/scans/upload/?patient={patient.study_id}",
            {
                "patient": patient.study_id,
                "ct": ct_fh,
                "convention": "auto",
                "study_date": _dt.date(2025, 3, 1).isoformat(),
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    study = rm.ImagingStudy.objects.order_by("-pk").first()
    job = AnalysisJob.objects.get(study=study)
    assert job.labels_file == "" and job.ct_file
    assert run_pending_jobs(max_jobs=5) == 1
    job.refresh_from_db()
    study.refresh_from_db()
    assert job.status == JobStatus.DONE, job.message
    seg = study.report["segmentation"]
    assert seg["segmenter"] == "spinewatch-classical" and seg["version"]
    # the phantom shows no sacrum, C2 or rib: relative names, said so
    assert seg["levels_confirmed"] is False and seg["level_method"] == "relative"
    assert len(study.report["vertebrae"]) == 3
    html = client.get(f"/scans/{study.pk}/").content.decode()
    assert "spinewatch-classical" in html and "unconfirmed" in html
    # the same files can be analysed again (the rerun finds the CT without a label map)
    assert jobs.rerun_analysis(study_id=study.pk).labels_file == ""


def test_an_unknown_segmenter_setting_is_refused(monkeypatch) -> None:
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import spinewatch.web.settings as web_settings

    monkeypatch.setenv("SPINEWATCH_SEGMENTER", "nnunet")
    with pytest.raises(ImproperlyConfigured, match="SPINEWATCH_SEGMENTER='nnunet'"):
        importlib.reload(web_settings)
    monkeypatch.delenv("SPINEWATCH_SEGMENTER")
    importlib.reload(web_settings)
