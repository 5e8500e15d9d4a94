"""The lytic lesions of a study as one label map on the CT grid (for DICOM SEG and the viewer).

:func:`spinewatch.imaging.analysis.analyze` reports lesion volumes per vertebra, not voxels. A
SEG object and the viewer's overlay need the voxels, so :func:`lytic_lesion_map` runs the same
per-vertebra steps the analysis runs (:func:`~spinewatch.imaging.anatomy.find_vertebrae`,
:func:`~spinewatch.imaging.density.trabecular_density`,
:func:`~spinewatch.imaging.lesions.detect_lytic_lesions`, at full resolution) and pastes each
vertebra's ``lesion_mask`` crop into a map of the full grid. The lesion voxels carry the label
value of the vertebra they belong to, so a consumer knows the level of every lesion.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.conventions import LabelConvention
from spinewatch.imaging.anatomy import crop_hu, find_vertebrae, label_bounding_boxes
from spinewatch.imaging.density import trabecular_density
from spinewatch.imaging.lesions import detect_lytic_lesions
from spinewatch.imaging.volume import CtVolume, GeometryError, LabelVolume

__all__ = ["lytic_lesion_map"]

log = logging.getLogger(__name__)


def lytic_lesion_map(
    ct: CtVolume, labels: LabelVolume, *, convention: LabelConvention | str
) -> npt.NDArray[Any]:
    """Lytic lesion voxels of every vertebra, on the CT grid (shape ``ct.grid.shape``).

    ``labels`` must be on the CT grid already (:func:`spinewatch.imaging.io.align_labels`);
    ``convention`` is a resolved label convention (not ``"auto"``). Returns an array of the
    label map's dtype: 0 outside lesions, else the label value of the vertebra holding the
    lesion voxel (a voxel counts when its partial-volume lesion fraction is at least 0.5, as in
    :mod:`spinewatch.imaging.lesions`).
    """
    if not ct.grid.same_as(labels.grid):
        raise GeometryError(
            f"{labels.source}: the label map is not on the CT grid ({labels.grid.describe()} vs "
            f"{ct.grid.describe()}); align it first"
        )
    out = np.zeros(labels.grid.shape, dtype=labels.labels.dtype)
    boxes = label_bounding_boxes(labels)
    for region in find_vertebrae(labels, convention, boxes=boxes):
        hu = crop_hu(ct.hu, region)
        density = trabecular_density(hu, region)
        lytic = detect_lytic_lesions(hu, region, density=density)
        region.drop_cached()
        if lytic.lesion_mask.any():
            view = out[region.bbox]
            view[lytic.lesion_mask] = region.label
            log.debug("%s: %d lesion voxels", region.level, int(lytic.lesion_mask.sum()))
    return out
