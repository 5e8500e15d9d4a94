"""A REAL PACS for the PACS tests: Orthanc (Debian ``orthanc``) with its DICOMweb plugin
(``orthanc-dicomweb``), started per test module on free ports with a generated configuration in a
tmp folder (HTTP basic authentication on, no system service), and dcmtk's ``storescu`` as the
modality. ``SPINEWATCH_REQUIRE_PACS=1`` (CI) turns a missing Orthanc, plugin or dcmtk into a
failure instead of a skip.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pacs_support import ORTHANC, PASSWORD, USER, Orthanc, _plugin, free_port, missing, tool


def _up(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        request = urllib.request.Request(url + "/system")
        request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """Orthanc on free ports, with authentication, the DICOMweb plugin and an empty store."""
    if not ORTHANC.exists():
        missing(f"no Orthanc at {ORTHANC}")
    tool("storescu")
    plugin = _plugin()
    root = tmp_path_factory.mktemp("orthanc")
    process = None
    for _attempt in range(3):  # a free port can be taken between choosing and binding it
        http_port, dicom_port = free_port(), free_port()
        config = {
            "Name": "SpineWatchTestPACS",
            "StorageDirectory": str(root / "db"),
            "IndexDirectory": str(root / "db"),
            "HttpPort": http_port,
            "DicomPort": dicom_port,
            "DicomAet": "TESTPACS",
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "HttpsCACertificates": "",
            "Plugins": [str(plugin)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "StableAge": 1,
            "ConcurrentJobs": 1,
            "HttpThreadsCount": 4,
            "SaveJobs": False,
        }
        (root / "orthanc.json").write_text(json.dumps(config, indent=2))
        log = root / "orthanc.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(ORTHANC), str(root / "orthanc.json")],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{http_port}"
        if _up(url, process, timeout_s=60):
            break
        _stop(process)
        process = None
    if process is None:
        pytest.fail(f"Orthanc did not start:\n{log.read_text(errors='replace')[-3000:]}")
    server = Orthanc(url, dicom_port, "TESTPACS", log, process)
    try:
        yield server
    finally:
        _stop(process)


@pytest.fixture
def pacs_settings(settings, orthanc: Orthanc, tmp_path: Path):
    """Django settings pointing SpineWatch at the test Orthanc (emptied; fast back-off)."""
    orthanc.reset()
    settings.DATA_DIR = tmp_path / "data"
    settings.SPINEWATCH_DICOMWEB = {
        "URL": orthanc.dicomweb_url,
        "USER": USER,
        "PASSWORD": PASSWORD,
        "TOKEN": "",
        "RETRIES": 3,
        "BACKOFF_S": 0.05,
        "TIMEOUT_S": 30.0,
    }
    return settings
