"""spinewatch.validation -- how well the imaging methods do on real scans and phantoms.

``spinewatch validate`` (``make validate``) writes ``docs/validation.md`` from the sections in
:mod:`spinewatch.validation.sections`; the tools here -- synthetic findings inserted into real
scans with their ground truth -- are also used by the tests: lesions
(:mod:`~spinewatch.validation.lesion_insertion`, and the matrix of them in the real vertebrae,
:mod:`~spinewatch.validation.lesion_matrix`), fractures
(:mod:`~spinewatch.validation.fracture_insertion`) and the myeloma pattern
(:mod:`~spinewatch.validation.myeloma`). Nothing here is used by the analysis itself. Imports
only :mod:`spinewatch.core` and :mod:`spinewatch.imaging` (no Django).
"""

from spinewatch.validation.lesion_insertion import (
    LOOK_ALIKE_SHAPES,
    PLACES,
    SHAPES,
    InsertedLesion,
    InsertionError,
    LesionSpec,
    NoiseModel,
    TrabecularShift,
    estimate_noise,
    insert_lesion,
    posterior_distance_mm,
    synthesize_noise,
    with_trabecular_background,
)

__all__ = [
    "LOOK_ALIKE_SHAPES",
    "PLACES",
    "SHAPES",
    "InsertedLesion",
    "InsertionError",
    "LesionSpec",
    "NoiseModel",
    "TrabecularShift",
    "estimate_noise",
    "insert_lesion",
    "posterior_distance_mm",
    "synthesize_noise",
    "with_trabecular_background",
]
