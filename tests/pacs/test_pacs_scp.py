"""SpineWatch's own DICOM storage SCP, fed by dcmtk's storescu (and pynetdicom as an SCU for an
aborted association): a CT arriving by C-STORE is matched and analysed; an unsupported SOP class
is refused at negotiation; an unknown patient waits for reconciliation; nothing half-received is
kept. ``spinewatch dicom-listen`` answers C-ECHO and stops on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import highdicom as hd
import pytest
from _pacs_support import free_port, tool
from pydicom import dcmread
from pydicom.uid import MRImageStorage

from _dicom_support import EXAMPLE_DICOM, EXAMPLE_LABELS, example_series_with_uids

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pacs, pytest.mark.slow]

HN = "H-7001"


@pytest.fixture
def scp(settings, tmp_path):
    from spinewatch.pacs.scp import StorageSCP

    tool("storescu")
    settings.DATA_DIR = tmp_path / "data"
    server = StorageSCP(ae_title="SPINEWATCH", host="127.0.0.1", port=free_port())
    server.start(block=False)
    try:
        yield server
    finally:
        server.stop()


def _patient():
    from spinewatch.registry import services

    return services.create_patient(
        study_id="SW-7001",
        identity=services.IdentityData(family_name="Scp", given_name="Ada", hospital_number=HN),
    )


def _send(scp, *files: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    scp.processed.clear()
    result = subprocess.run(
        [
            tool("storescu"),
            "-R",
            "-aet",
            "SCANNER1",
            "-aec",
            scp.ae_title,
            *extra,
            "127.0.0.1",
            str(scp.port),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode == 0:  # a released association: wait until it was handled
        scp.processed.wait(timeout=60)
    return result


def _vertebra_seg(series, shared_file, path: Path) -> Path:
    from spinewatch.imaging.dicom_export import build_vertebra_seg, read_headers
    from spinewatch.imaging.io import align_labels, load_ct, load_labels

    ct = load_ct(series.directory)
    labels = align_labels(load_labels(shared_file(EXAMPLE_LABELS)), ct.grid)
    build_vertebra_seg(
        labels.labels,
        ct.grid,
        read_headers(series.directory),
        convention="totalsegmentator",
        series_uid=hd.UID(),
    ).save_as(path)
    return path


def test_ct_by_c_store_is_matched_and_analysed(scp, shared_file, tmp_path, settings):
    from spinewatch.registry.models import ReceivedStudy
    from spinewatch.web.scans.worker import run_pending_jobs

    settings.SPINEWATCH_PACS_WITHOUT_LABELS = "wait"  # a site whose segmentation node sends SEGs
    patient = _patient()
    series = example_series_with_uids(shared_file(EXAMPLE_DICOM), tmp_path / "ct", patient_id=HN)
    seg = _vertebra_seg(series, shared_file, tmp_path / "seg.dcm")
    # the scanner sends the CT (JPEG 2000 kept), the segmentation node its SEG later
    result = _send(scp, *series.files, extra=("-xv",))
    assert result.returncode == 0, result.stderr
    received = ReceivedStudy.objects.get(study_instance_uid=series.study_uid)
    assert received.status == "matched" and received.patient == patient
    assert received.received_via == "c_store" and received.calling_ae_title == "SCANNER1"
    assert "no vertebra label map" in received.message
    assert _send(scp, seg).returncode == 0
    received.refresh_from_db()
    assert received.status == "queued", received.message
    assert run_pending_jobs() == 1
    study = received.imaging_study
    study.refresh_from_db()
    assert [v["level"] for v in study.report["vertebrae"]] == ["T11", "T12"]
    assert study.series_instance_uid == series.series_uid
    folder = Path(scp_data(scp)) / "uploads" / received.storage_dir / "dicom"
    stored = {p: dcmread(p, stop_before_pixels=True) for p in folder.rglob("*.dcm")}
    assert len(stored) == len(series.files) + 1
    syntaxes = {
        str(ds.file_meta.TransferSyntaxUID) for ds in stored.values() if ds.Modality == "CT"
    }
    assert syntaxes == {"1.2.840.10008.1.2.4.90"}  # JPEG 2000 lossless, as the scanner sent it


def test_ct_alone_by_c_store_is_segmented_and_analysed(scp, shared_file, tmp_path):
    # the default: no SEG in the study, so the worker segments the CT (SPINEWATCH_SEGMENTER,
    # builtin here) exactly as for a CT uploaded alone, and the report says who made the labels
    from spinewatch.registry.models import ReceivedStudy
    from spinewatch.web.scans.worker import run_pending_jobs

    patient = _patient()
    series = example_series_with_uids(shared_file(EXAMPLE_DICOM), tmp_path / "ct", patient_id=HN)
    result = _send(scp, *series.files, extra=("-xv",))
    assert result.returncode == 0, result.stderr
    received = ReceivedStudy.objects.get(study_instance_uid=series.study_uid)
    assert received.status == "queued" and received.patient == patient, received.message
    assert "the CT is segmented by builtin" in received.message
    assert received.labels_source == "none received: segmented from the CT (builtin)"
    assert run_pending_jobs() == 1
    study = received.imaging_study
    study.refresh_from_db()
    segmentation = study.report["segmentation"]
    assert segmentation["segmenter"] == "spinewatch-classical"
    assert segmentation["levels_confirmed"] is False  # 40 mm of the column: no landmark in view
    assert len(study.report["vertebrae"]) >= 1
    assert study.series_instance_uid == series.series_uid


def scp_data(scp) -> str:
    from django.conf import settings

    return str(settings.DATA_DIR)


def test_unsupported_sop_class_is_refused_and_nothing_stored(scp, shared_file, tmp_path, caplog):
    from spinewatch.registry.models import ReceivedStudy

    _patient()
    series = example_series_with_uids(shared_file(EXAMPLE_DICOM), tmp_path / "mr", patient_id=HN)
    mr = tmp_path / "mr.dcm"
    ds = dcmread(series.files[0])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.Modality = "MR"
    ds.save_as(mr, enforce_file_format=True)
    with caplog.at_level(logging.WARNING, logger="spinewatch.pacs.scp"):
        result = _send(scp, mr, extra=("-xv",))
    assert result.returncode != 0
    assert "No Acceptable Presentation Contexts" in result.stderr
    assert any("MR Image Storage refused" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
    assert not ReceivedStudy.objects.exists()
    uploads = Path(scp_data(scp)) / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_unknown_patient_goes_to_reconciliation(scp, shared_file, tmp_path):
    from spinewatch.registry.models import Patient, ReceivedStudy

    _patient()
    series = example_series_with_uids(
        shared_file(EXAMPLE_DICOM), tmp_path / "ct", patient_id="H-NOBODY"
    )
    assert _send(scp, *series.files, extra=("-xv",)).returncode == 0
    received = ReceivedStudy.objects.get()
    assert received.status == "unmatched" and received.patient is None
    assert "'H-NOBODY'" in received.message
    assert Patient.objects.count() == 1


def test_an_aborted_association_keeps_nothing(scp, shared_file, tmp_path):
    from pydicom.uid import CTImageStorage, JPEG2000Lossless
    from pynetdicom import AE

    from spinewatch.registry.models import ReceivedStudy

    _patient()
    series = example_series_with_uids(shared_file(EXAMPLE_DICOM), tmp_path / "ct", patient_id=HN)
    ae = AE(ae_title="SCANNER2")
    ae.add_requested_context(CTImageStorage, JPEG2000Lossless)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=scp.ae_title)
    assert assoc.is_established
    for path in series.files[:5]:
        assert assoc.send_c_store(dcmread(path)).Status == 0x0000
    assoc.abort()
    deadline = time.monotonic() + 10
    tmp = Path(scp_data(scp)) / "tmp"
    while time.monotonic() < deadline and tmp.exists() and any(tmp.iterdir()):
        time.sleep(0.1)
    assert not tmp.exists() or not any(tmp.iterdir())
    assert not ReceivedStudy.objects.exists()


@pytest.mark.parametrize("command", ["dicom-listen", "serve"])
def test_dicom_listen_and_serve_dicom_answer_echo_and_stop(tmp_path, command):
    """``spinewatch dicom-listen`` and ``spinewatch serve --dicom`` (the SCP as its child)."""
    port = free_port()
    env = dict(os.environ)
    for name in ("DATABASE_URL", "SPINEWATCH_DEBUG", "SPINEWATCH_SECRET_KEY"):
        env.pop(name, None)
    env["SPINEWATCH_DATA_DIR"] = str(tmp_path / "data")
    env["SPINEWATCH_DICOM_AE_TITLE"] = "SWLISTEN"
    env["SPINEWATCH_DICOM_PORT"] = str(port)
    args = (
        ["dicom-listen"]
        if command == "dicom-listen"
        else ["serve", "--port", str(free_port()), "--workers", "1", "--no-worker", "--dicom"]
    )
    log_path = tmp_path / "process.log"  # a file, not a pipe: nothing left unclosed, never full
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "spinewatch.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # serve migrates a fresh database before it starts the SCP: slow on a loaded machine
        deadline = time.monotonic() + 240
        echoed = None
        while time.monotonic() < deadline:
            echoed = subprocess.run(
                [tool("echoscu"), "-aec", "SWLISTEN", "127.0.0.1", str(port)],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            if echoed.returncode == 0:
                break
            time.sleep(0.5)
        assert echoed is not None and echoed.returncode == 0, echoed.stderr if echoed else ""
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        out = log_path.read_bytes()
        assert process.returncode == 0, out[-2000:]
        assert b"listening on 127.0.0.1:" in out
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
