"""From the PACS to the decision and back, against a REAL Orthanc (DICOMweb plugin) fed by dcmtk's
storescu: pull (QIDO + WADO), analysis, push (STOW) of SR + SEG + secondary capture into the
same study, read back from the PACS with highdicom and dcmtk; the watch; reconciliation; faults.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from pathlib import Path

import highdicom as hd
import pytest
from _pacs_support import free_port, tool
from pydicom import dcmread
from pydicom.sr.codedict import codes
from pydicom.uid import MRImageStorage

from _dicom_support import EXAMPLE_DICOM, EXAMPLE_LABELS, example_series_with_uids
from spinewatch.cli import main

pytestmark = [pytest.mark.django_db, pytest.mark.pacs, pytest.mark.slow]

HN = "H-9001"


def _patient(study_id: str = "SW-9001", hospital_number: str = HN):
    from spinewatch.registry import services

    return services.create_patient(
        study_id=study_id,
        identity=services.IdentityData(
            family_name="Testperson", given_name="Ada", hospital_number=hospital_number
        ),
    )


@pytest.fixture
def example_in_pacs(orthanc, shared_file, tmp_path):
    """The real example series (JPEG 2000, UIDs added) sent into Orthanc by storescu -xv."""

    def send(patient_id: str = HN):
        series = example_series_with_uids(
            shared_file(EXAMPLE_DICOM), tmp_path / f"ct-{patient_id}", patient_id=patient_id
        )
        result = orthanc.storescu(*series.files, extra=("-xv",))
        assert result.returncode == 0, result.stderr
        return series

    return send


def _last_word(text: str) -> str:
    return text.split()[-1]


def _uploads(settings) -> list[Path]:
    root = Path(settings.DATA_DIR) / "uploads"
    return sorted(root.iterdir()) if root.is_dir() else []


def test_round_trip_storescu_pull_analysis_push_sr_and_seg_in_the_same_study(
    pacs_settings, orthanc, example_in_pacs, shared_file, capsys, tmp_path
):
    from spinewatch.registry.models import ImagingStudy, ReceivedStudy

    patient = _patient()
    series = example_in_pacs()
    labels = shared_file(EXAMPLE_LABELS)
    code = main(
        [
            "pacs",
            "pull",
            series.study_uid,
            "--patient",
            "SW-9001",
            "--labels",
            str(labels),
            "--wait",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    scan_id = int(_last_word(out))
    study = ImagingStudy.objects.get(pk=scan_id)
    assert study.patient == patient
    assert study.study_instance_uid == series.study_uid
    assert study.series_instance_uid == series.series_uid
    assert [v["level"] for v in study.report["vertebrae"]] == ["T11", "T12"]
    received = ReceivedStudy.objects.get(study_instance_uid=series.study_uid)
    assert received.status == "queued" and received.received_via == "dicomweb"
    assert [s["chosen"] for s in received.series] == [True]

    assert main(["pacs", "push", str(scan_id)]) == 0
    out, err = capsys.readouterr()
    assert "SR" in out and "SEG" in out and "SC" in out, out
    assert "preliminary" in out  # levels not confirmed yet

    modalities = sorted(s["00080060"]["Value"][0] for s in orthanc.series_of(series.study_uid))
    assert modalities == ["CT", "OT", "SEG", "SR"] or modalities == ["CT", "SC", "SEG", "SR"]

    # read the SR and SEG back FROM THE PACS (WADO) and check them with highdicom and dcmtk
    from spinewatch.pacs.dicomweb import client_from_settings

    client = client_from_settings()
    objects = {}
    for item in orthanc.series_of(series.study_uid):
        modality = item["00080060"]["Value"][0]
        if modality in ("SR", "SEG"):
            (ds,) = client.retrieve_series(series.study_uid, item["0020000E"]["Value"][0])
            path = tmp_path / f"{modality}.dcm"
            ds.save_as(path, enforce_file_format=True)
            objects[modality] = path
    sr = hd.sr.srread(objects["SR"])
    assert sr.StudyInstanceUID == series.study_uid
    groups = {g.tracking_identifier: g for g in sr.content.get_image_measurement_groups()}
    assert set(groups) == {"SpineWatch T11", "SpineWatch T12"}
    assert groups["SpineWatch T12"].finding_sites[0].value == codes.SCT.T12Vertebra
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.SeriesInstanceUID == series.series_uid
    dump = subprocess.run(
        [tool("dsrdump"), str(objects["SR"])], capture_output=True, text=True, check=True
    ).stdout
    assert '(23215003,SCT,"T12 vertebra")' in dump
    assert "Hounsfield unit" in dump
    seg = hd.seg.segread(objects["SEG"])
    assert seg.StudyInstanceUID == series.study_uid
    labels_in_seg = [seg.get_segment_description(n).segment_label for n in seg.segment_numbers]
    assert labels_in_seg == ["T11 vertebra", "T12 vertebra"]
    dcm = subprocess.run(
        [tool("dcmdump"), str(objects["SEG"])], capture_output=True, text=True, check=True
    ).stdout
    assert "=SegmentationStorage" in dcm and "[23215003]" in dcm
    received.refresh_from_db()
    assert received.pushed_at is not None and len(received.pushed[0]["objects"]) == 3
    assert sr.VerificationFlag == "UNVERIFIED" and sr.PreliminaryFlag == "PRELIMINARY"

    # the radiologist confirms the levels: the next push is final and verified by them
    from django.contrib.auth import get_user_model

    from spinewatch.registry import services

    radiologist = get_user_model().objects.create_user(
        username="rad", first_name="Rita", last_name="Ray"
    )
    services.confirm_levels(study=study, checked_by=radiologist)
    assert main(["pacs", "push", str(scan_id)]) == 0
    assert "final, verified" in capsys.readouterr().out
    srs = [s for s in orthanc.series_of(series.study_uid) if s["00080060"]["Value"][0] == "SR"]
    assert len(srs) == 2
    verified = [client.retrieve_series(series.study_uid, s["0020000E"]["Value"][0])[0] for s in srs]
    final = [ds for ds in verified if ds.VerificationFlag == "VERIFIED"]
    assert len(final) == 1 and final[0].PreliminaryFlag == "FINAL"
    assert str(final[0].VerifyingObserverSequence[0].VerifyingObserverName) == "Ray^Rita"


def test_pull_with_a_vertebra_seg_in_the_study_needs_no_label_file(
    pacs_settings, orthanc, example_in_pacs, shared_file, tmp_path, capsys
):
    """A segmentation node put a vertebra SEG into the study: it becomes the label map."""
    from spinewatch.imaging.dicom_export import build_vertebra_seg, read_headers
    from spinewatch.imaging.io import align_labels, load_ct, load_labels
    from spinewatch.registry.models import ImagingStudy

    _patient()
    series = example_in_pacs()
    ct = load_ct(series.directory)
    labels = align_labels(load_labels(shared_file(EXAMPLE_LABELS)), ct.grid)
    seg = build_vertebra_seg(
        labels.labels,
        ct.grid,
        read_headers(series.directory),
        convention="totalsegmentator",
        series_uid=hd.UID(),
    )
    seg.save_as(tmp_path / "seg.dcm")
    assert orthanc.storescu(tmp_path / "seg.dcm").returncode == 0
    assert main(["pacs", "pull", series.study_uid, "--patient", "SW-9001", "--wait"]) == 0
    out = capsys.readouterr().out
    study = ImagingStudy.objects.get(pk=int(_last_word(out)))
    assert study.report["scan"]["labels_convention"] == "verse"
    assert [v["level"] for v in study.report["vertebrae"]] == ["T11", "T12"]
    assert study.received_from_pacs.labels_source.startswith("SEG ")


def test_poll_pulls_the_new_ct_of_a_due_patient(
    pacs_settings, orthanc, example_in_pacs, shared_file, tmp_path, capsys
):
    import datetime as dt

    from spinewatch.registry import services
    from spinewatch.registry.models import ReceivedStudy

    patient = _patient()
    services.set_surveillance_plan(
        patient=patient, interval_days=90, next_scan_due=dt.date(2026, 1, 1)
    )
    other = _patient("SW-9002", "H-9002")
    services.set_surveillance_plan(
        patient=other, interval_days=90, next_scan_due=dt.date(2099, 1, 1)
    )  # not due
    mine = example_in_pacs(HN)
    example_in_pacs("H-9002")
    assert main(["pacs", "poll"]) == 0
    out = capsys.readouterr().out
    assert "1 due patient(s) searched; 1 new study(ies) pulled" in out
    (received,) = ReceivedStudy.objects.all()
    assert received.study_instance_uid == mine.study_uid
    # no label map anywhere: queued, the worker segments the CT with the configured segmenter
    assert received.status == "queued", received.message
    assert "no vertebra SEG: the CT is segmented by builtin" in received.message
    assert received.labels_source == "none received: segmented from the CT (builtin)"
    assert main(["pacs", "poll"]) == 0  # a second pass pulls nothing again
    assert "0 new study(ies) pulled" in capsys.readouterr().out


def test_unmatched_study_waits_for_reconciliation_and_no_patient_is_created(
    pacs_settings, orthanc, example_in_pacs, shared_file, capsys
):
    from spinewatch.pacs.dicomweb import client_from_settings
    from spinewatch.pacs.pull import pull_study
    from spinewatch.registry.models import ImagingStudy, Patient, ReceivedStudy

    patient = _patient()
    series = example_in_pacs("H-UNKNOWN")
    # pulled for a named patient: refused, nothing stored
    code = main(["pacs", "pull", series.study_uid, "--patient", "SW-9001"])
    assert code == 2
    err = capsys.readouterr().err
    assert "'H-UNKNOWN'" in err and "SW-9001" in err and "nothing was stored" in err
    assert not ReceivedStudy.objects.exists() and not _uploads(pacs_settings)
    # received without a patient (as the SCP or a watch would): reconciliation list
    received = pull_study(client_from_settings(), series.study_uid).study
    assert received.status == "unmatched"
    assert "no patient has the hospital number 'H-UNKNOWN'" in received.message
    assert Patient.objects.count() == 1
    assert main(["pacs", "unmatched"]) == 0
    assert series.study_uid in capsys.readouterr().out
    code = main(
        [
            "pacs",
            "assign",
            series.study_uid,
            "--patient",
            "SW-9001",
            "--labels",
            str(shared_file(EXAMPLE_LABELS)),
        ]
    )
    assert code == 0
    scan_id = int(_last_word(capsys.readouterr().out))
    assert ImagingStudy.objects.get(pk=scan_id).patient == patient


def test_issuer_of_another_hospital_is_not_matched(pacs_settings, orthanc, shared_file, tmp_path):
    from spinewatch.pacs.dicomweb import client_from_settings
    from spinewatch.pacs.pull import pull_study

    pacs_settings.SPINEWATCH_PATIENT_ID_ISSUER = "OUR-HOSPITAL"
    _patient()
    series = example_series_with_uids(
        shared_file(EXAMPLE_DICOM), tmp_path / "ct", patient_id=HN, issuer="OTHER-HOSPITAL"
    )
    assert orthanc.storescu(*series.files, extra=("-xv",)).returncode == 0
    received = pull_study(client_from_settings(), series.study_uid).study
    assert received.status == "unmatched"
    assert "issued by 'OTHER-HOSPITAL'" in received.message


def test_a_non_ct_study_is_refused_and_nothing_is_stored(
    pacs_settings, orthanc, shared_file, tmp_path, capsys
):
    from spinewatch.registry.models import ReceivedStudy

    _patient()
    series = example_series_with_uids(shared_file(EXAMPLE_DICOM), tmp_path / "mr", patient_id=HN)
    for path in series.files:  # the same pixels declared as an MR study
        ds = dcmread(path)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.Modality = "MR"
        ds.save_as(path, enforce_file_format=True)
    assert orthanc.storescu(*series.files, extra=("-xv",)).returncode == 0
    code = main(["pacs", "pull", series.study_uid, "--patient", "SW-9001"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no CT series in the PACS (modalities: MR)" in err
    assert not ReceivedStudy.objects.exists() and not _uploads(pacs_settings)


def test_unknown_study_and_wrong_password_are_clear_errors(pacs_settings, capsys):
    _patient()
    assert main(["pacs", "pull", "1.2.3.4.5.6.7", "--patient", "SW-9001"]) == 2
    assert "study 1.2.3.4.5.6.7 not found" in capsys.readouterr().err
    pacs_settings.SPINEWATCH_DICOMWEB = {**pacs_settings.SPINEWATCH_DICOMWEB, "PASSWORD": "wrong"}
    assert main(["pacs", "pull", "1.2.3.4.5.6.7", "--patient", "SW-9001"]) == 2
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "SPINEWATCH_DICOMWEB_USER" in err and "wrong" not in err


def test_pacs_down_is_retried_with_backoff_then_reported(pacs_settings, capsys, caplog):
    _patient()
    url = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens there
    pacs_settings.SPINEWATCH_DICOMWEB = {**pacs_settings.SPINEWATCH_DICOMWEB, "URL": url}
    assert main(["pacs", "pull", "1.2.3", "--patient", "SW-9001"]) == 2
    err = capsys.readouterr().err
    assert "ConnectionError after 3 attempts" in err and "Nothing was stored" in err
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert [r.getMessage().split("retrying in ")[1] for r in retries] == ["0.1 s", "0.1 s"] or len(
        retries
    ) == 2
    assert not _uploads(pacs_settings)


class _Flaky(http.server.BaseHTTPRequestHandler):
    """A real HTTP server that answers 503 twice, then forwards nothing useful (404)."""

    calls = 0

    def do_GET(self) -> None:
        type(self).calls += 1
        self.send_response(503 if type(self).calls <= 2 else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def test_5xx_is_retried_and_4xx_is_not(pacs_settings, capsys):
    _patient()
    _Flaky.calls = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
        pacs_settings.SPINEWATCH_DICOMWEB = {**pacs_settings.SPINEWATCH_DICOMWEB, "URL": url}
        assert main(["pacs", "pull", "1.2.3", "--patient", "SW-9001"]) == 2
        assert _Flaky.calls == 3  # 503, 503, then the 404 that is not retried
        assert "not found (HTTP 404)" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()


def test_push_of_an_uploaded_scan_is_refused(pacs_settings, capsys):
    import datetime as dt

    from spinewatch.registry import services

    patient = _patient()
    study = services.add_imaging_study(patient=patient, study_date=dt.date(2026, 1, 5))
    assert main(["pacs", "push", str(study.pk)]) == 2
    assert "did not come from the PACS" in capsys.readouterr().err
    assert main(["pacs", "push", "999999"]) == 2
    assert "no such scan" in capsys.readouterr().err


def test_no_pacs_configured(settings, tmp_path, capsys, db):
    settings.DATA_DIR = tmp_path / "data"
    settings.SPINEWATCH_DICOMWEB = {"URL": ""}
    _patient()
    assert main(["pacs", "poll"]) == 2
    assert "set SPINEWATCH_DICOMWEB_URL" in capsys.readouterr().err
