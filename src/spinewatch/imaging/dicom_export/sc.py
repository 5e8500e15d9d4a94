"""The sagittal picture as a DICOM Secondary Capture image in the CT's study (highdicom).

The picture (:func:`spinewatch.imaging.render.render_sagittal`, a PNG) is an annotated curved
reformat, not a geometric slice: it is stored as an RGB secondary capture with patient and
study taken from a CT image header, in its own series, so a PACS viewer shows it next to the
CT. Patient orientation is given as the picture's own layout (anterior to the screen's left,
feet down), which is how the renderer draws the spine.
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
from PIL import Image
from pydicom import Dataset

from spinewatch.core.errors import InputError
from spinewatch.imaging.dicom_export.seg import MANUFACTURER

__all__ = ["build_secondary_capture"]


def build_secondary_capture(
    picture: Path | str,
    reference: Dataset,
    *,
    series_uid: str,
    series_number: int = 9002,
    instance_number: int = 1,
) -> hd.sc.SCImage:
    """An RGB secondary capture of the PNG ``picture`` in the study of ``reference`` (a CT
    image header). Raises :class:`InputError` when the picture cannot be read."""
    path = Path(picture)
    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the sagittal picture ({exc})") from exc
    return hd.sc.SCImage.from_ref_dataset(
        ref_dataset=reference,
        pixel_array=rgb,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        patient_orientation=("P", "F"),
        series_description="SpineWatch sagittal overview",
    )
