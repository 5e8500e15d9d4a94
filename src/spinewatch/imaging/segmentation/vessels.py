"""Contrast-enhanced vessels, which read like marrow.

After intravenous contrast the aorta and the vena cava reach 150-400 HU -- the range of
trabecular bone -- and lie against the front of the vertebral bodies, so a marrow-density test
alone merges them with the column. Blood in a large vessel is *homogeneous* (the local standard
deviation is the image noise, ~10-30 HU), while marrow is trabecular (bone and fat at every
scale, and a cortex around it). A region that is marrow-dense, homogeneous and not enclosed by
bone is taken for blood and kept out of the bodies. An enclosed homogeneous region (a uniform
osteoporotic or cemented body inside its cortex) stays bone.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

__all__ = ["VESSEL_HU", "VESSEL_SD_HU", "VESSEL_WINDOW_MM", "enhanced_vessels"]

#: Mean HU of enhanced blood in the window: above unenhanced blood and muscle (30-60 HU), below
#: cortical bone. Engineering choice.
VESSEL_HU = (110.0, 450.0)
#: Largest local standard deviation of blood (image noise), HU. Engineering choice: trabecular
#: bone at 1-3 mm voxels varies by 50-150 HU within a centimetre.
VESSEL_SD_HU = 20.0
#: Side of the axial window the statistics are taken in, mm (inside an aorta of 20-30 mm).
VESSEL_WINDOW_MM = 8.0


def enhanced_vessels(
    hu: npt.NDArray[np.float32], spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.bool_]:
    """Homogeneous marrow-dense voxels (see the module docstring), bool, same shape as ``hu``
    (axes R, A, S). The caller removes those enclosed by bone."""
    size = [max(5, round(VESSEL_WINDOW_MM / s) | 1) for s in spacing_mm[:2]] + [1]
    mean = ndi.uniform_filter(hu, size=size)
    mean_sq = ndi.uniform_filter(hu * hu, size=size)
    sd = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    out = (mean >= VESSEL_HU[0]) & (mean <= VESSEL_HU[1]) & (sd <= VESSEL_SD_HU)
    # the window's edge: the vessel's own rim (partial volume) belongs to it too
    return np.asarray(ndi.binary_dilation(out, structure=np.ones((3, 3, 1), dtype=bool)))
