"""Issue 12: the web worker fails a hostile upload with the command line's message.

The probe found the worker answering "internal error" where the command line had a reason (or a
traceback). A job now fails with :func:`spinewatch.core.errors.user_message` of the error --
the line the CLI prints -- with the server's paths replaced by the uploaded file names.
"""

from __future__ import annotations

import errno
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from django.test import Client
from test_scans_support import make_patient, make_user, post_upload

from _hostile_support import dicom_series, header_bomb_nifti, zip_bomb
from spinewatch.accounts.testing import signed_in
from spinewatch.cli import main
from spinewatch.registry import models as rm
from spinewatch.web.scans.models import AnalysisJob, JobStatus
from spinewatch.web.scans.worker import GENERIC_FAILURE, run_pending_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.DATA_DIR = tmp_path / "data"


@pytest.fixture
def client() -> Client:
    make_patient()
    return signed_in(Client(), make_user("clinician", "dr_hostile"))


def _labels(path: Path) -> Path:
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.uint8), np.eye(4)), str(path))
    return path


def _run(client, ct: Path, labels: Path, tmp_path: Path) -> AnalysisJob:
    response = post_upload(client, ct, labels, tmp_path / "up")
    assert response.status_code == 302, response.content.decode()[:1000]
    study = rm.ImagingStudy.objects.order_by("-pk").first()
    assert run_pending_jobs(max_jobs=1) == 1
    return AnalysisJob.objects.get(study=study)


def _cli_message(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err.removeprefix("spinewatch: error: ").strip()


def test_empty_rows_fails_the_job_with_the_cli_message(client, tmp_path, capsys) -> None:
    series = dicom_series(tmp_path / "series", rows=None)
    ct = tmp_path / "series.zip"
    with zipfile.ZipFile(ct, "w") as zf:
        for f in sorted(series.iterdir()):
            zf.write(f, f.name)
    labels = _labels(tmp_path / "labels.nii.gz")
    job = _run(client, ct, labels, tmp_path)
    assert job.status == JobStatus.FAILED
    assert job.message != GENERIC_FAILURE.format(job=job.pk)
    cli = _cli_message(capsys, ["analyze", str(ct), "--labels", str(labels)])
    # the same sentence, the server path replaced by the uploaded name
    assert cli.replace(str(ct), "patient-ct.zip") == job.message
    assert "Rows (0028,0010) is empty" in job.message
    assert "/uploads/" not in job.message


def test_header_and_zip_bombs_are_refused_on_the_upload_page(client, tmp_path, settings) -> None:
    """Their headers are checked when stored: refused at once, nothing kept, no job queued."""
    ct = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 6), np.int16), np.eye(4)), str(ct))
    bomb = header_bomb_nifti(tmp_path / "labels.nii", (3000, 3000, 3000))
    response = post_upload(client, ct, bomb, tmp_path / "up")
    assert response.status_code == 400
    html = response.content.decode()
    assert "patient-labels.nii: label map of 3000x3000x3000 voxels" in html
    assert "SPINEWATCH_MAX_IMAGE_BYTES" in html and "/uploads/" not in html
    zipped = zip_bomb(tmp_path / "series.zip", 1 << 30)
    labels = _labels(tmp_path / "ok.nii.gz")
    response = post_upload(client, zipped, labels, tmp_path / "up2")
    assert response.status_code == 400 and "patient-ct.zip:image.dcm" in response.content.decode()
    assert not AnalysisJob.objects.exists()
    uploads = settings.DATA_DIR / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_an_os_error_fails_the_job_with_its_reason_not_internal_error(
    client, tmp_path, monkeypatch
) -> None:
    ct = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 6), np.int16), np.eye(4)), str(ct))
    labels = _labels(tmp_path / "labels.nii.gz")

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("spinewatch.imaging.io.load_study", full_disk)
    job = _run(client, ct, labels, tmp_path)
    assert job.status == JobStatus.FAILED
    assert job.message == "no space left on the disk"
