"""The received-studies page (``/pacs/``): reconciliation of a study that matched no patient,
with a phantom CT written as a real DICOM series and its vertebra SEG (the files a modality and a
segmentation node would send), received through :func:`spinewatch.pacs.receive.receive_study`."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from django.test import Client
from test_scans_support import SMALL_SPEC, make_patient, make_user

from spinewatch.accounts.testing import signed_in
from spinewatch.audit.models import AuditEvent
from spinewatch.imaging.dicom_export import (
    SeriesIdentity,
    build_vertebra_seg,
    read_headers,
    write_ct_series,
)
from spinewatch.imaging.io import align_labels, load_ct
from spinewatch.imaging.phantom import make_spine_phantom
from spinewatch.registry import models as rm
from spinewatch.web.scans.worker import run_pending_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.DATA_DIR = tmp_path / "data"


@pytest.fixture(scope="module")
def dicom_study(tmp_path_factory) -> list[Path]:
    """A phantom CT series (PatientID H-LOST) and a vertebra SEG of it, as DICOM files."""
    folder = tmp_path_factory.mktemp("dicom-study")
    phantom = make_spine_phantom(SMALL_SPEC)
    files = write_ct_series(
        phantom.ct, folder / "ct", SeriesIdentity(patient_id="H-LOST", patient_name="LOST^ADA")
    )
    ct = load_ct(folder / "ct")
    labels = align_labels(phantom.labels, ct.grid)
    seg = build_vertebra_seg(
        labels.labels,
        ct.grid,
        read_headers(folder / "ct"),
        convention="totalsegmentator",
        series_uid=hd.UID(),
    )
    seg.save_as(folder / "seg.dcm")
    return [*files, folder / "seg.dcm"]


def _receive(files: list[Path]):
    from spinewatch.pacs.receive import receive_study

    return receive_study(files, via="c_store", calling_ae="CT01").study


def test_unmatched_study_is_listed_and_assigned_then_analysed(dicom_study, settings):
    patient = make_patient("SW-9100", "H-9100")
    received = _receive(dicom_study)
    assert received.status == "unmatched" and rm.Patient.objects.count() == 1
    clinician = signed_in(Client(), make_user("clinician", "dr_pacs"))
    page = clinician.get("/pacs/")
    html = page.content.decode()
    assert page.status_code == 200 and "LOST^ADA" in html and "H-LOST" in html
    assert "no patient has the hospital number &#x27;H-LOST&#x27;" in html
    assert AuditEvent.objects.filter(detail__page="received studies").exists()
    assert (
        "1 study from the PACS matches no patient" in clinician.get("/worklists/").content.decode()
    )

    wrong = clinician.post(
        f"/pacs/{received.pk}/assign/", {"patient": "SW-NOPE", "version": received.version}
    )
    assert wrong.status_code == 302
    received.refresh_from_db()
    assert received.status == "unmatched"

    response = clinician.post(
        f"/pacs/{received.pk}/assign/", {"patient": "SW-9100", "version": received.version}
    )
    assert response.status_code == 302
    received.refresh_from_db()
    assert received.status == "queued" and received.patient == patient
    assert received.labels_source.startswith("SEG ")
    assert run_pending_jobs() == 1
    study = received.imaging_study
    study.refresh_from_db()
    assert [v["level"] for v in study.report["vertebrae"]] == ["T12", "L1", "L2"]
    assert study.findings.get(level="L1").genant_grade >= 1  # the phantom's wedge fracture
    # the viewer reads the stored DICOM series (not a NIfTI upload) and the SEG-made labels
    import gzip

    import nibabel as nib

    body = b"".join(clinician.get(f"/scans/{study.pk}/viewer/labels.nii.gz").streaming_content)
    labels = nib.Nifti1Image.from_bytes(gzip.decompress(body))
    assert {int(v) for v in np.unique(np.asarray(labels.dataobj))} == {0, 19, 20, 21}  # VerSe


def test_dismiss_needs_a_reason_and_researchers_see_nothing(dicom_study):
    received = _receive(dicom_study)
    clinician = signed_in(Client(), make_user("clinician", "dr_pacs2"))
    clinician.post(f"/pacs/{received.pk}/dismiss/", {"reason": "", "version": received.version})
    received.refresh_from_db()
    assert received.status == "unmatched"
    clinician.post(
        f"/pacs/{received.pk}/dismiss/", {"reason": "research phantom", "version": received.version}
    )
    received.refresh_from_db()
    assert received.status == "dismissed" and received.message == "research phantom"
    researcher = signed_in(Client(), make_user("researcher", "res_pacs"))
    assert researcher.get("/pacs/").status_code == 403
    manager = signed_in(Client(), make_user("case_manager", "cm_pacs"))
    assert manager.get("/pacs/").status_code == 200
    assert manager.post(f"/pacs/{received.pk}/assign/", {"patient": "x"}).status_code == 403


def test_a_study_sent_twice_is_merged_before_analysis_and_refused_after(dicom_study, settings):
    from spinewatch.pacs.errors import AlreadyReceivedError
    from spinewatch.pacs.receive import study_files

    settings.SPINEWATCH_PACS_WITHOUT_LABELS = "wait"  # a site whose segmentation node sends SEGs
    make_patient("SW-9200", "H-LOST")
    first = _receive(dicom_study[:-1])  # the CT alone: matched, no label map yet
    assert first.status == "matched" and "no vertebra label map" in first.message
    second = _receive(dicom_study[-1:])  # the SEG arrives in a later association
    assert second.pk == first.pk and second.status == "queued"
    assert len(study_files(second.storage_dir)) == len(dicom_study)
    with pytest.raises(AlreadyReceivedError, match="received before"):
        _receive(dicom_study)


def test_a_ct_received_alone_is_queued_for_the_configured_segmenter(dicom_study, settings):
    from spinewatch.web.scans.models import AnalysisJob
    from spinewatch.web.scans.worker import run_pending_jobs

    make_patient("SW-9250", "H-LOST")
    settings.SPINEWATCH_SEGMENTER = "builtin"
    received = _receive(dicom_study[:-1])  # the CT without its SEG
    assert received.status == "queued", received.message
    assert "no vertebra SEG: the CT is segmented by builtin" in received.message
    job = AnalysisJob.objects.get(study_id=received.imaging_study_id)
    assert job.labels_file == "" and job.series_uid == received.chosen_series_uid
    assert run_pending_jobs() == 1
    received.imaging_study.refresh_from_db()
    report = received.imaging_study.report
    assert report["segmentation"]["segmenter"] == "spinewatch-classical"
    assert len(report["vertebrae"]) == len(SMALL_SPEC.levels)  # one per drawn vertebra
    assert report["segmentation"]["levels_confirmed"] is False


def test_wait_setting_keeps_a_ct_alone_matched(dicom_study, settings):
    settings.SPINEWATCH_PACS_WITHOUT_LABELS = "wait"
    make_patient("SW-9260", "H-LOST")
    received = _receive(dicom_study[:-1])
    assert received.status == "matched" and "no vertebra label map" in received.message
    assert received.imaging_study is None


def test_pacs_import_of_a_folder(dicom_study, tmp_path, capsys):
    import shutil

    from spinewatch.cli import main

    make_patient("SW-9300", "H-LOST")
    folder = tmp_path / "cd"
    folder.mkdir()
    for path in dicom_study:
        shutil.copy(path, folder / f"{path.parent.name}-{path.name}")
    (folder / "README.TXT").write_text("not DICOM")
    assert main(["pacs", "import", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "analysis queued (scan " in out
    assert main(["pacs", "import", str(folder)]) == 2  # the same study again: refused
    assert "received before" in capsys.readouterr().out
    assert main(["pacs", "import", str(tmp_path / "nowhere")]) == 2
