"""DICOM Segmentation objects (highdicom, BINARY) of the vertebrae and of the lytic lesions.

Two SEG instances in one series, because a lesion lies inside its vertebra and a binary SEG
built from a label map cannot hold overlapping segments without a (frames x rows x columns x
segments) array -- 4 GB for a 600-slice, 26-vertebra scan. As label maps they stay one byte per
voxel:

- :func:`build_vertebra_seg`: one segment per vertebra, category "Anatomical Structure", type
  the level's SNOMED CT code (:func:`~.codes.level_code`), its TotalSegmentator display colour;
- :func:`build_lesion_seg`: one segment per vertebra with lytic lesions, category
  "Morphologically Altered Structure", type "Lesion", anatomic region the level.

Both reference every CT image (``source_images``: headers suffice) and omit empty frames.
Arrays come on the CT analysis grid ``[column, row, slice]`` (:mod:`.source` cuts them into
frames). Label values are read in the study's label convention.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom import Dataset
from pydicom.sr.codedict import codes

from spinewatch import __version__
from spinewatch.core.conventions import LabelConvention, level_for_label
from spinewatch.core.errors import InputError
from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.dicom_export.codes import (
    ANATOMICAL_STRUCTURE,
    LESION,
    MORPHOLOGICALLY_ALTERED,
    level_code,
)
from spinewatch.imaging.dicom_export.source import frames_on_images
from spinewatch.imaging.volume import Grid

__all__ = ["EmptySegmentationError", "build_lesion_seg", "build_vertebra_seg"]

MANUFACTURER = "SpineWatch"
_LESION_RGB = (255, 0, 200)  # the tumour colour of TotalSegmentator's mapping file


class EmptySegmentationError(InputError):
    """Nothing to segment: no vertebra (or no lesion) in the label map."""


def _algorithm() -> hd.AlgorithmIdentificationSequence:
    return hd.AlgorithmIdentificationSequence(
        name="SpineWatch",
        family=codes.cid7162.MorphologicalOperations,
        version=__version__,
    )


def _levels_present(
    frames: npt.NDArray[Any], convention: LabelConvention
) -> list[tuple[int, VertebralLevel]]:
    """(label value, level) of the vertebra labels present, cranio-caudal."""
    found = []
    for value in np.unique(frames):
        if value == 0:
            continue
        level = level_for_label(int(value), convention)
        if level is not None:
            found.append((int(value), level))
    return sorted(found, key=lambda item: item[1].rank)


def _build(
    frames: npt.NDArray[Any],
    datasets: Sequence[Dataset],
    segments: list[tuple[int, hd.seg.SegmentDescription]],
    *,
    series_uid: str,
    series_number: int,
    instance_number: int,
    label: str,
    description: str,
) -> hd.seg.Segmentation:
    """Renumber label values to segments 1..n and build the SEG."""
    lookup = np.zeros(int(frames.max()) + 1, dtype=np.uint8)
    for number, (value, _) in enumerate(segments, start=1):
        lookup[value] = number
    pixel = lookup[frames]
    return hd.seg.Segmentation(
        source_images=list(datasets),
        pixel_array=pixel,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[d for _, d in segments],
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="SpineWatch",
        software_versions=__version__,
        device_serial_number="0",
        content_label=label,
        content_description=description,
        series_description="SpineWatch segmentation",
    )


def build_vertebra_seg(
    labels: npt.NDArray[Any],
    grid: Grid,
    datasets: Sequence[Dataset],
    *,
    convention: LabelConvention | str,
    series_uid: str,
    series_number: int = 9001,
    instance_number: int = 1,
) -> hd.seg.Segmentation:
    """A SEG with one segment per vertebra of ``labels`` (shape ``grid.shape``, on the CT grid).

    Labels of the convention that are not vertebrae (organs, ribs) are left out. Raises
    :class:`EmptySegmentationError` when no vertebra is present.
    """
    conv = LabelConvention.parse(convention)
    frames = frames_on_images(labels, grid, datasets)
    present = _levels_present(frames, conv)
    if not present:
        raise EmptySegmentationError("the label map holds no vertebra to put in a SEG")
    keep = np.isin(frames, [v for v, _ in present])
    frames = np.where(keep, frames, 0)
    segments = []
    for number, (value, level) in enumerate(present, start=1):
        code = level_code(level)
        segments.append(
            (
                value,
                hd.seg.SegmentDescription(
                    segment_number=number,
                    segment_label=f"{level} vertebra",
                    segmented_property_category=ANATOMICAL_STRUCTURE,
                    segmented_property_type=code.code,
                    algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                    algorithm_identification=_algorithm(),
                    tracking_uid=hd.UID(),
                    tracking_id=f"SpineWatch {level} vertebra",
                    display_color=hd.color.CIELabColor.from_rgb(*code.rgb),
                ),
            )
        )
    return _build(
        frames,
        datasets,
        segments,
        series_uid=series_uid,
        series_number=series_number,
        instance_number=instance_number,
        label="VERTEBRAE",
        description="Vertebrae labelled by level",
    )


def build_lesion_seg(
    lesions: npt.NDArray[Any],
    grid: Grid,
    datasets: Sequence[Dataset],
    *,
    convention: LabelConvention | str,
    series_uid: str,
    series_number: int = 9001,
    instance_number: int = 2,
) -> hd.seg.Segmentation:
    """A SEG with one "lytic lesion" segment per vertebra that has lesion voxels.

    ``lesions``: :func:`spinewatch.imaging.lesion_map.lytic_lesion_map` (vertebra label values
    at lesion voxels, shape ``grid.shape``). Raises :class:`EmptySegmentationError` without
    lesions (there is then nothing to store).
    """
    conv = LabelConvention.parse(convention)
    frames = frames_on_images(lesions, grid, datasets)
    present = _levels_present(frames, conv)
    if not present:
        raise EmptySegmentationError("no lytic lesion voxels: no lesion SEG to build")
    segments = []
    for number, (value, level) in enumerate(present, start=1):
        segments.append(
            (
                value,
                hd.seg.SegmentDescription(
                    segment_number=number,
                    segment_label=f"Lytic lesion {level}",
                    segmented_property_category=MORPHOLOGICALLY_ALTERED,
                    segmented_property_type=LESION,
                    algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                    algorithm_identification=_algorithm(),
                    tracking_uid=hd.UID(),
                    tracking_id=f"SpineWatch lytic lesion {level}",
                    anatomic_regions=[level_code(level).code],
                    display_color=hd.color.CIELabColor.from_rgb(*_LESION_RGB),
                ),
            )
        )
    return _build(
        frames,
        datasets,
        segments,
        series_uid=series_uid,
        series_number=series_number,
        instance_number=instance_number,
        label="LYTIC",
        description="Lytic lesions of the vertebral bodies",
    )
