"""The analysis results as DICOM objects for the CT's own study (no Django here).

- :func:`build_measurement_report` -- SR TID 1500, one measurement group per vertebra;
- :func:`build_vertebra_seg` / :func:`build_lesion_seg` -- SEG of the vertebrae / lytic lesions;
- :func:`build_secondary_capture` -- the sagittal picture;
- :func:`labels_from_seg` -- a vertebra SEG (from a segmentation node) back into a label map;
- :func:`write_ct_series` -- a CT volume (a phantom) as a DICOM CT series;
- :func:`read_headers`, :func:`frames_on_images` -- the CT series' headers on the analysis grid;
- :func:`level_code` and the other concepts in :mod:`.codes`.
"""

from spinewatch.imaging.dicom_export.codes import LevelCode, level_code
from spinewatch.imaging.dicom_export.ct_series import SeriesIdentity, write_ct_series
from spinewatch.imaging.dicom_export.sc import build_secondary_capture
from spinewatch.imaging.dicom_export.seg import (
    EmptySegmentationError,
    build_lesion_seg,
    build_vertebra_seg,
)
from spinewatch.imaging.dicom_export.seg_read import (
    SegReadError,
    labels_from_seg,
    vertebra_levels_of_seg,
)
from spinewatch.imaging.dicom_export.source import (
    SourceMismatchError,
    frames_on_images,
    read_headers,
    slice_index_of,
)
from spinewatch.imaging.dicom_export.sr import ReportContentError, build_measurement_report

__all__ = [
    "EmptySegmentationError",
    "LevelCode",
    "ReportContentError",
    "SegReadError",
    "SeriesIdentity",
    "SourceMismatchError",
    "build_lesion_seg",
    "build_measurement_report",
    "build_secondary_capture",
    "build_vertebra_seg",
    "frames_on_images",
    "labels_from_seg",
    "level_code",
    "read_headers",
    "slice_index_of",
    "vertebra_levels_of_seg",
    "write_ct_series",
]
