"""Write a CT volume as a DICOM CT series (one file per slice): phantoms for PACS tests.

The inverse of :func:`spinewatch.imaging.dicom.load_dicom_series` for a grid without shear:
voxel axis 0 runs along a row (ImageOrientationPatient's first vector, column spacing), axis 1
down a column (second vector, row spacing), axis 2 is the slice stack
(ImagePositionPatient of slice ``k`` = the affine applied to ``(0, 0, k)``, converted from RAS+
to DICOM's LPS). Values are stored as signed 16-bit HU (RescaleSlope 1, RescaleIntercept 0),
Explicit VR Little Endian. Reading the series back gives the same array and affine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from spinewatch import __version__
from spinewatch.core.errors import InputError
from spinewatch.imaging.volume import CtVolume

__all__ = ["SeriesIdentity", "write_ct_series"]

_LPS = np.array([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class SeriesIdentity:
    """Who and what the written series is: patient, study and series attributes."""

    patient_id: str
    patient_name: str = "PHANTOM^SPINE"
    issuer_of_patient_id: str = ""
    study_uid: str = ""
    series_uid: str = ""
    accession_number: str = ""
    study_date: dt.date = dt.date(2026, 1, 1)
    series_number: int = 1
    series_description: str = "Spine phantom"
    slice_thickness_mm: float | None = None


def write_ct_series(ct: CtVolume, directory: Path | str, identity: SeriesIdentity) -> list[Path]:
    """Write ``ct`` as ``CT{k:04d}.dcm`` files in ``directory`` (created); returns the paths.

    Raises :class:`InputError` for a sheared grid (gantry tilt) or values outside int16.
    """
    affine = ct.grid.affine
    axes = affine[:3, :3]
    spacing = np.sqrt((axes**2).sum(axis=0))
    unit = axes / spacing
    if abs(float(unit[:, 0] @ unit[:, 1])) > 1e-4:
        raise InputError(f"{ct.source}: the grid's in-plane axes are not orthogonal")
    hu = np.asarray(ct.hu)
    if hu.size and (hu.min() < -32768 or hu.max() > 32767):
        raise InputError(f"{ct.source}: HU {hu.min()}..{hu.max()} do not fit 16-bit integers")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    study_uid = identity.study_uid or generate_uid()
    series_uid = identity.series_uid or generate_uid()
    frame_uid = generate_uid()
    iop = [*(unit[:, 0] * _LPS).tolist(), *(unit[:, 1] * _LPS).tolist()]
    normal = np.cross(unit[:, 0], unit[:, 1])
    step_mm = float(abs(axes[:, 2] @ normal))
    paths: list[Path] = []
    date = identity.study_date.strftime("%Y%m%d")
    for k in range(ct.grid.shape[2]):
        ds = Dataset()
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.PatientID = identity.patient_id
        ds.PatientName = identity.patient_name
        if identity.issuer_of_patient_id:
            ds.IssuerOfPatientID = identity.issuer_of_patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.StudyID = "1"
        ds.AccessionNumber = identity.accession_number
        ds.ReferringPhysicianName = ""
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.Modality = "CT"
        ds.Manufacturer = "SpineWatch phantom"
        ds.SoftwareVersions = __version__
        ds.SeriesNumber = identity.series_number
        ds.SeriesDescription = identity.series_description
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [round(v, 6) for v in iop]
        ds.ImagePositionPatient = [round(v, 4) for v in (affine[:3, 3] + k * axes[:, 2]) * _LPS]
        ds.SliceLocation = round(float((affine[:3, 3] + k * axes[:, 2]) @ normal), 4)
        ds.PixelSpacing = [round(float(spacing[1]), 6), round(float(spacing[0]), 6)]
        ds.SliceThickness = round(identity.slice_thickness_mm or step_mm, 4)
        ds.KVP = 120
        ds.PositionReferenceIndicator = ""
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = int(ct.grid.shape[1])
        ds.Columns = int(ct.grid.shape[0])
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.PixelData = np.ascontiguousarray(hu[:, :, k].T.astype("<i2")).tobytes()
        path = out / f"CT{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
