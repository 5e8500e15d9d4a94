"""Helpers of the PACS tests: the Orthanc handle, dcmtk tools, free ports (no fixtures here)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ORTHANC = Path(os.environ.get("SPINEWATCH_ORTHANC", "/usr/sbin/Orthanc"))
PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))
USER, PASSWORD = "spinewatch", "pacs-test-password"


def _require_pacs() -> bool:
    return os.environ.get("SPINEWATCH_REQUIRE_PACS", "") == "1"


def missing(what: str) -> None:
    """Skip, or fail under SPINEWATCH_REQUIRE_PACS=1."""
    msg = f"{what} (apt-get install orthanc orthanc-dicomweb dcmtk)"
    if _require_pacs():
        pytest.fail(msg)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"dcmtk's {name} is not installed")
    return str(path)


def _plugin() -> Path:
    for folder in PLUGIN_DIRS:
        for candidate in sorted(folder.glob("libOrthancDicomWeb.so*")):
            return candidate
    missing("the Orthanc DICOMweb plugin (libOrthancDicomWeb.so) is not installed")
    raise AssertionError("unreachable")


@dataclass
class Orthanc:
    """A running Orthanc: its DICOMweb root, HTTP root, DICOM port and AE title."""

    http_url: str
    dicom_port: int
    aet: str
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def dicomweb_url(self) -> str:
        return f"{self.http_url}/dicom-web"

    def get(self, path: str) -> object:
        request = urllib.request.Request(self.http_url + path)
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def storescu(
        self, *files: Path, extra: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        """Send ``files`` with dcmtk's storescu (calling AE MODALITY)."""
        return subprocess.run(
            [
                tool("storescu"),
                "-R",  # propose exactly the SOP classes of the files (SEG is not a default one)
                "-aet",
                "MODALITY",
                "-aec",
                self.aet,
                *extra,
                "127.0.0.1",
                str(self.dicom_port),
                *map(str, files),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def reset(self) -> None:
        """Delete every study (tests share one Orthanc per module, not its content)."""
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        for orthanc_id in self.get("/studies"):  # type: ignore[union-attr]
            request = urllib.request.Request(
                f"{self.http_url}/studies/{orthanc_id}", method="DELETE"
            )
            request.add_header("Authorization", f"Basic {token}")
            with urllib.request.urlopen(request, timeout=10):
                pass

    def series_of(self, study_uid: str) -> list[dict[str, object]]:
        found = self.get(f"/dicom-web/studies/{study_uid}/series")
        return found if isinstance(found, list) else []

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""
