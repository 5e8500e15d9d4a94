"""DICOM test material shared by the imaging export tests and the PACS tests.

:func:`example_series_with_uids` copies the real TotalSegmentator example series (20 JPEG 2000
slices without SOP class, SOP instance, study and series UIDs or patient id -- a PACS refuses it
as it is) into a tmp folder with those attributes added; the pixel data stay encapsulated
(JPEG 2000 lossless), byte for byte.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import CTImageStorage, generate_uid

EXAMPLE_DICOM = "ct/totalseg-example/dicom"
EXAMPLE_LABELS = "ct/totalseg-example/example_seg_dicom.nii.gz"


@dataclass(frozen=True)
class ExampleSeries:
    directory: Path
    study_uid: str
    series_uid: str
    patient_id: str
    files: tuple[Path, ...]


def example_series_with_uids(
    source: Path,
    dest: Path,
    *,
    patient_id: str,
    patient_name: str = "EXAMPLE^SPINE",
    study_uid: str | None = None,
    study_date: dt.date = dt.date(2026, 11, 2),
    issuer: str = "",
) -> ExampleSeries:
    """A copy of the example series in ``dest`` with UIDs, patient id and study date added."""
    dest.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    frame_uid = generate_uid()
    written = []
    for n, path in enumerate(sorted(p for p in source.iterdir() if p.is_file()), start=1):
        ds = dcmread(path)
        sop_uid = generate_uid()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.PatientID = patient_id
        ds.PatientName = patient_name
        if issuer:
            ds.IssuerOfPatientID = issuer
        ds.StudyDate = ds.SeriesDate = study_date.strftime("%Y%m%d")
        ds.StudyTime = "101500"
        ds.StudyID = "1"
        ds.AccessionNumber = "ACC" + patient_id[-6:]
        ds.SeriesNumber = 3
        if "InstanceNumber" not in ds:
            ds.InstanceNumber = n
        out = dest / f"{n:03d}.dcm"
        ds.save_as(out, enforce_file_format=True)
        written.append(out)
    return ExampleSeries(dest, study_uid, series_uid, patient_id, tuple(written))
