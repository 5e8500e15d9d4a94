"""Vertebra segmentation and level naming from a CT alone.

>>> from spinewatch.imaging.segmentation import get_segmenter
>>> get_segmenter("builtin").name
'builtin'
"""

from spinewatch.imaging.segmentation.builtin import BUILTIN_NAME, BUILTIN_VERSION, segment_ct
from spinewatch.imaging.segmentation.result import (
    NoSpineError,
    NotCtError,
    ScoutError,
    SegmentationResult,
    VertebraEvidence,
    write_label_map,
)
from spinewatch.imaging.segmentation.segmenters import (
    SEGMENTER_NAMES,
    BuiltinSegmenter,
    Segmenter,
    TotalSegmentatorSegmenter,
    get_segmenter,
)

__all__ = [
    "BUILTIN_NAME",
    "BUILTIN_VERSION",
    "SEGMENTER_NAMES",
    "BuiltinSegmenter",
    "NoSpineError",
    "NotCtError",
    "ScoutError",
    "SegmentationResult",
    "Segmenter",
    "TotalSegmentatorSegmenter",
    "VertebraEvidence",
    "get_segmenter",
    "segment_ct",
    "write_label_map",
]
