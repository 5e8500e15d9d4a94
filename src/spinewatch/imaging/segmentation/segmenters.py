"""The :class:`Segmenter` interface and its two implementations.

Both return a :class:`~.result.SegmentationResult` whose label map is on the CT's own grid in
TotalSegmentator v2 "total" ids, so the analysis does not care which one ran:

* ``builtin`` -- :class:`BuiltinSegmenter`, classical image analysis on the CPU (:mod:`.builtin`);
* ``totalsegmentator`` -- :class:`TotalSegmentatorSegmenter`, the TotalSegmentator model run as
  its command-line program (:mod:`spinewatch.imaging.segmenters`); more accurate, needs its
  weights installed and minutes on a CPU.

:func:`get_segmenter` chooses by name; the web worker reads the name from the
``SPINEWATCH_SEGMENTER`` setting.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np

from spinewatch.core.conventions import LabelConvention, level_for_label
from spinewatch.core.errors import InputError
from spinewatch.imaging.segmentation.builtin import BUILTIN_NAME, segment_ct
from spinewatch.imaging.segmentation.result import SegmentationResult, VertebraEvidence
from spinewatch.imaging.volume import CtVolume

__all__ = [
    "SEGMENTER_NAMES",
    "BuiltinSegmenter",
    "Segmenter",
    "TotalSegmentatorSegmenter",
    "get_segmenter",
]

SEGMENTER_NAMES = ("builtin", "totalsegmentator")


class Segmenter(Protocol):
    """Makes a vertebra label map (TotalSegmentator v2 "total" ids, CT grid) from a CT."""

    name: str

    def segment(self, ct: CtVolume, *, ct_path: Path | str | None = None) -> SegmentationResult:
        """Segment ``ct``; ``ct_path`` is the file it was read from (some segmenters need it)."""
        ...


class BuiltinSegmenter:
    """The classical CPU segmenter (:func:`.builtin.segment_ct`)."""

    name = "builtin"

    def segment(self, ct: CtVolume, *, ct_path: Path | str | None = None) -> SegmentationResult:
        return segment_ct(ct)


class TotalSegmentatorSegmenter:
    """TotalSegmentator v2 run as a program on the CT file (levels as its model names them)."""

    name = "totalsegmentator"

    def __init__(self, *, fast: bool = False, device: str = "cpu") -> None:
        self.fast = fast
        self.device = device

    def segment(self, ct: CtVolume, *, ct_path: Path | str | None = None) -> SegmentationResult:
        from spinewatch.imaging.io import align_labels
        from spinewatch.imaging.segmenters import (
            read_totalsegmentator_output,
            run_totalsegmentator,
        )

        if ct_path is None:
            raise InputError("segmenter 'totalsegmentator' needs the CT's file path")
        with tempfile.TemporaryDirectory(prefix="spinewatch-ts-") as work:
            out = run_totalsegmentator(ct_path, Path(work), fast=self.fast, device=self.device)
            labels = align_labels(read_totalsegmentator_output(out), ct.grid)
        counts = np.bincount(np.asarray(labels.labels).ravel())
        vox_ml = ct.grid.voxel_volume_ml
        vertebrae = []
        for lab in range(25, min(51, counts.size)):
            if counts[lab] == 0:
                continue
            level = level_for_label(lab, LabelConvention.TOTALSEGMENTATOR)
            name = "sacrum" if level is None else str(level)
            vertebrae.append(
                VertebraEvidence(name, lab, True, float(counts[lab] * vox_ml), None, False)
            )
        return SegmentationResult(
            labels=labels,
            segmenter="totalsegmentator",
            version="v2",
            level_method="model",
            levels_confirmed=True,
            level_evidence=("levels named by the TotalSegmentator model",),
            vertebrae=tuple(reversed(vertebrae)),
        )


def get_segmenter(name: str) -> Segmenter:
    """The segmenter called ``name`` (``builtin`` or ``totalsegmentator``)."""
    key = name.strip().lower()
    if key in ("builtin", BUILTIN_NAME):
        return BuiltinSegmenter()
    if key == "totalsegmentator":
        return TotalSegmentatorSegmenter()
    raise InputError(f"segmenter {name!r}: expected one of {', '.join(SEGMENTER_NAMES)}")
