"""A vertebra label map from a DICOM SEG (e.g. written by a segmentation node into the study).

A PACS-side segmenter (TotalSegmentator's DICOM output, or SpineWatch's own
:func:`~.seg.build_vertebra_seg`) stores the vertebrae as a SEG whose segments are typed by the
level's SNOMED CT code. :func:`labels_from_seg` turns such a SEG back into a label map on the CT
analysis grid, in the **VerSe** convention (the one that can name T13 and L6): a segment's level
comes from its SegmentedPropertyTypeCodeSequence (:func:`~.codes.level_code`, read backwards)
or, for the generic "Vertebra" code, from a segment label such as ``"T13 vertebra"``. Segments
that are not vertebrae (organs, lesions) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom import Dataset

from spinewatch.core.conventions import LabelConvention, label_for_level
from spinewatch.core.errors import InputError
from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.dicom_export.codes import VERTEBRA, level_code
from spinewatch.imaging.dicom_export.source import slice_index_of
from spinewatch.imaging.volume import Grid, LabelVolume

__all__ = ["SegReadError", "labels_from_seg", "vertebra_levels_of_seg"]

_LEVEL_IN_LABEL = re.compile(r"\b([CTLS]\d{1,2})\b", re.IGNORECASE)


class SegReadError(InputError):
    """A SEG that cannot be used as a vertebra label map (no vertebra, other images)."""


def _code_to_level() -> dict[tuple[str, str], VertebralLevel]:
    out: dict[tuple[str, str], VertebralLevel] = {}
    for level in VertebralLevel:
        code = level_code(level).code
        if code != VERTEBRA:
            out[(code.scheme_designator, code.value)] = level
    return out


def _segment_level(description: Any) -> VertebralLevel | None:
    kind = description.segmented_property_type
    found = _code_to_level().get((kind.scheme_designator, kind.value))
    if found is not None:
        return found
    if (kind.scheme_designator, kind.value) != (VERTEBRA.scheme_designator, VERTEBRA.value):
        return None
    match = _LEVEL_IN_LABEL.search(str(description.segment_label))
    if match is None:
        return None
    try:
        return VertebralLevel.parse(match.group(1))
    except InputError:
        return None


def vertebra_levels_of_seg(seg: Dataset) -> dict[int, VertebralLevel]:
    """Segment number -> level, for the vertebra segments of a SEG dataset."""
    parsed = seg if isinstance(seg, hd.seg.Segmentation) else hd.seg.Segmentation.from_dataset(seg)
    out: dict[int, VertebralLevel] = {}
    for number in parsed.segment_numbers:
        level = _segment_level(parsed.get_segment_description(number))
        if level is not None:
            out[int(number)] = level
    return out


def labels_from_seg(seg_path: Path | str, grid: Grid, ct_headers: Sequence[Dataset]) -> LabelVolume:
    """The vertebrae of the SEG at ``seg_path`` as a VerSe label map on ``grid`` (the CT's).

    ``ct_headers``: the CT images the SEG was made on (it must reference them). Raises
    :class:`SegReadError` when the SEG holds no vertebra or references none of these images.
    """
    path = Path(seg_path)
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:  # highdicom/pydicom raise many types for a bad file
        raise SegReadError(
            f"{path}: not a readable DICOM SEG ({type(exc).__name__}: {exc})"
        ) from exc
    levels = vertebra_levels_of_seg(seg)
    if not levels:
        raise SegReadError(f"{path}: the SEG holds no vertebra segment (levels by SNOMED CT code)")
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    headers = [h for h in ct_headers if str(h.SOPInstanceUID) in referenced]
    if not headers:
        raise SegReadError(
            f"{path}: the SEG references none of the {len(ct_headers)} CT images of the series"
        )
    out: npt.NDArray[Any] = np.zeros(grid.shape, dtype=np.uint8)
    uids = [str(h.SOPInstanceUID) for h in headers]
    slices = [slice_index_of(h, grid) for h in headers]
    for number, level in sorted(levels.items(), key=lambda kv: kv[1].rank):
        value = label_for_level(level, LabelConvention.VERSE)
        pixels = seg.get_pixels_by_source_instance(
            uids,
            segment_numbers=[number],
            combine_segments=False,
            assert_missing_frames_are_empty=True,
        )
        for frame, k in zip(pixels[..., 0], slices, strict=True):
            if frame.any():
                out[:, :, k][frame.T > 0] = value
    return LabelVolume(labels=out, grid=grid, source=str(path))
