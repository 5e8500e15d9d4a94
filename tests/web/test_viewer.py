"""The CT viewer's pages and volumes, and the level check (confirm; shift -> relabel ->
re-analysis with decisions following their vertebra), through the Django test client."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
from django.test import Client
from test_scans_support import SMALL_SPEC, make_patient, make_user, post_upload, write_spec

from spinewatch.accounts.testing import signed_in
from spinewatch.audit.models import AuditEvent
from spinewatch.registry import models as rm
from spinewatch.registry import services
from spinewatch.web.scans.models import AnalysisJob
from spinewatch.web.scans.worker import run_pending_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.DATA_DIR = tmp_path / "data"


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    return write_spec(SMALL_SPEC, tmp_path_factory.mktemp("phantom"))


@pytest.fixture
def clinician():
    return make_user("clinician", "dr_levels")


@pytest.fixture
def client(clinician) -> Client:
    return signed_in(Client(), clinician)


@pytest.fixture
def analysed(client, phantom, tmp_path):
    make_patient()
    response = post_upload(client, *phantom, tmp_path / "up")
    assert response.status_code == 302
    assert run_pending_jobs() == 1
    return rm.ImagingStudy.objects.get()


def _nifti(response) -> nib.Nifti1Image:
    body = b"".join(response.streaming_content)
    return nib.Nifti1Image.from_bytes(gzip.decompress(body))


def test_viewer_page_and_its_volumes(client, analysed, phantom):
    page = client.get(f"/scans/{analysed.pk}/viewer/")
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert "web/viewer.bundle.js" in html and "cdn" not in html.lower()
    assert 'id="sw-viewer-config"' in html  # JSON island, no inline script
    for level in ("T12", "L1", "L2"):
        assert f'data-level="{level}"' in html
    assert AuditEvent.objects.filter(detail__page="CT viewer").exists()

    ct = _nifti(client.get(f"/scans/{analysed.pk}/viewer/ct.nii.gz"))
    labels = _nifti(client.get(f"/scans/{analysed.pk}/viewer/labels.nii.gz"))
    lesions = _nifti(client.get(f"/scans/{analysed.pk}/viewer/lesions.nii.gz"))
    source_ct = nib.load(str(phantom[0]))
    np.testing.assert_allclose(ct.affine, source_ct.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(ct.dataobj), np.asarray(source_ct.dataobj))
    np.testing.assert_array_equal(
        np.asarray(labels.dataobj), np.asarray(nib.load(str(phantom[1])).dataobj)
    )
    assert lesions.shape == ct.shape
    assert client.get(f"/scans/{analysed.pk}/viewer/other.nii.gz").status_code == 404


def test_viewer_permissions(analysed):
    researcher = signed_in(Client(), make_user("researcher", "res"))
    assert researcher.get(f"/scans/{analysed.pk}/viewer/").status_code == 403
    assert researcher.get(f"/scans/{analysed.pk}/viewer/ct.nii.gz").status_code == 403
    anonymous = Client()
    assert anonymous.get(f"/scans/{analysed.pk}/viewer/ct.nii.gz").status_code in (302, 403)
    manager = signed_in(Client(), make_user("case_manager", "cm"))
    assert manager.get(f"/scans/{analysed.pk}/viewer/").status_code == 200
    page = manager.get(f"/scans/{analysed.pk}/levels/")
    assert page.status_code == 200 and "Only clinicians check the levels" in page.content.decode()
    assert manager.post(f"/scans/{analysed.pk}/levels/", {"decision": "confirm"}).status_code == 403
    assert not rm.LevelCheck.objects.exists()


def test_confirm_levels_marks_the_scan_and_leaves_the_worklist(client, analysed):
    worklist = client.get("/worklists/").content.decode()
    assert (
        "Scans awaiting the level check" in worklist and f"/scans/{analysed.pk}/levels/" in worklist
    )
    detail = client.get(f"/scans/{analysed.pk}/").content.decode()
    assert "Levels not confirmed" in detail and "Open the CT viewer" in detail
    response = client.post(f"/scans/{analysed.pk}/levels/", {"decision": "confirm", "note": "ok"})
    assert response.status_code == 302
    check = rm.LevelCheck.objects.get(study=analysed)
    assert check.outcome == "confirmed" and check.checked_by.username == "dr_levels"
    assert "Levels confirmed by" in client.get(f"/scans/{analysed.pk}/").content.decode()
    assert f"/scans/{analysed.pk}/levels/" not in client.get("/worklists/").content.decode()
    assert AuditEvent.objects.filter(object_type="registry.levelcheck", action="create").exists()


def test_shift_relabels_reanalyses_and_decisions_follow_their_vertebra(client, analysed):
    l1 = analysed.findings.get(level="L1")  # the wedge fracture of the phantom
    services.set_finding_decision(finding=l1, expected_version=l1.version, decision="treat")
    response = client.post(f"/scans/{analysed.pk}/levels/", {"decision": "down"})
    assert response.status_code == 302
    check = rm.LevelCheck.objects.get(study=analysed)
    assert check.pending and check.renamed == {"T12": "L1", "L1": "L2", "L2": "L3"}
    job = AnalysisJob.objects.filter(study=analysed).order_by("-pk").first()
    assert job.status == "queued" and job.convention == "verse"
    assert "re-analysing" in client.get(f"/scans/{analysed.pk}/").content.decode()
    assert run_pending_jobs() == 1
    analysed.refresh_from_db()
    assert [v["level"] for v in analysed.report["vertebrae"]] == ["L1", "L2", "L3"]
    # the fractured vertebra (labelled L1, now L2) keeps the team's decision
    assert analysed.findings.get(level="L2").decision == "treat"
    assert analysed.findings.get(level="L2").genant_grade >= 1
    assert analysed.findings.get(level="L1").decision == "none"
    check.refresh_from_db()
    assert not check.pending
    page = client.get(f"/scans/{analysed.pk}/").content.decode()
    assert "Levels shifted" in page


def test_impossible_shift_is_a_clear_400_and_changes_nothing(client, analysed):
    response = client.post(f"/scans/{analysed.pk}/levels/", {"decision": "l6"})
    assert response.status_code == 400
    assert "changes no level" in response.content.decode()  # no S1 in the phantom
    assert not rm.LevelCheck.objects.exists()
    assert AnalysisJob.objects.filter(study=analysed).count() == 1


def test_lesion_overlay_holds_the_phantom_lesion(client, tmp_path, settings):
    from spinewatch.imaging.phantom import LesionSpec, PhantomSpec

    spec = PhantomSpec(
        levels=("T12", "L1", "L2"),
        spacing_mm=(1.0, 1.0, 1.0),
        lesions={"L1": (LesionSpec(7.0),)},
    )
    ct, labels = write_spec(spec, tmp_path / "lesion")
    make_patient("SW-9002", "H-9002")
    assert post_upload(client, ct, labels, tmp_path / "up2", patient="SW-9002").status_code == 302
    assert run_pending_jobs() == 1
    study = rm.ImagingStudy.objects.get(patient__study_id="SW-9002")
    lesions = np.asarray(_nifti(client.get(f"/scans/{study.pk}/viewer/lesions.nii.gz")).dataobj)
    volume_ml = int((lesions > 0).sum()) * 0.001
    assert volume_ml == pytest.approx(4 / 3 * np.pi * 7.0**3 / 1000, rel=0.15)
    assert set(np.unique(lesions)) == {0, 31}  # TotalSegmentator's L1
