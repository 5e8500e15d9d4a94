"""Validation tools: synthetic findings inserted into real scans, with their ground truth.

Nothing here is used by the analysis itself; the tests and ``make validate`` use it to measure the
imaging methods on real backgrounds. Imports only :mod:`spinewatch.core` and
:mod:`spinewatch.imaging` (no Django).
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
