"""Lytic lesions inserted into real bone -- the hook for the lesion work (issue 7, part 1).

NOT YET MEASURED HERE. This section builder is a placeholder with a fixed place in the document
and the targets it must report; it measures nothing and says so. It is filled when the lesion
work lands (branch ``wt/lesions``), using its insertion toolkit
``spinewatch.validation.lesion_insertion`` (``insert_lesion``, ``LesionSpec``, ``PLACES``,
``SHAPES``, ``with_trabecular_background``) -- not re-implemented here.

What :func:`lesions_section` is to build then (the issue's targets):

* lesions of 0.3-10 ml, shapes sphere / ellipsoid / lobulated, -20 to 70 HU, central / touching
  the posterior wall / reaching a pedicle, in normal and osteoporotic bone, inserted into the real
  CTs of ``spinewatch.validation.datasets`` (TotalSegmentator example 3 mm and its DICOM series,
  TPTBox CT 1.5 mm, the VerSe004 L2 crop 1 mm, the CTA crop); detection rate per size and voxel
  class (target >= 95 % of lesions >= 1 ml at voxels <= 1.5 mm and >= 2 ml at 3 mm), volume
  error (within 25 %), posterior wall / pedicle involvement right (>= 90 %), false lesions
  >= 0.3 ml on the untouched real vertebrae (target 0), time per vertebra;
* diffuse infiltration on real scans, once its report fields exist;
* headlines with these targets; ``ctx.quick`` keeps a small matrix for the smoke test.
"""

from __future__ import annotations

from spinewatch.validation.section import Headline, Section, ValidationContext

__all__ = ["lesions_section"]

_TARGETS = (
    ("lesions >= 1 ml found at voxels <= 1.5 mm", ">= 95 %"),
    ("lesions >= 2 ml found at 3 mm voxels", ">= 95 %"),
    ("found lesions' volume within 25 %", "all"),
    ("posterior wall / pedicle involvement right", ">= 90 %"),
    ("false lesions >= 0.3 ml on untouched real vertebrae", "0"),
)


def lesions_section(ctx: ValidationContext) -> Section:
    """The pending lesion section: its targets, each reported as not yet measured."""
    del ctx  # the filled section will use it
    body = (
        "**Not yet measured.** Lesion insertion into real bone arrives with the lesion work "
        "(`spinewatch.validation.lesion_insertion`); this section then reports detection, "
        "volume and wall/pedicle involvement of lesions inserted into the real CTs, and false "
        "lesions on their untouched vertebrae. The phantom figures in the README are not a "
        "substitute: the lesion detector on main was measured to miss 3-7 ml lesions written "
        "into the real 3 mm CT (issue 7)."
    )
    return Section(
        "Lytic lesions in real bone",
        body,
        [Headline(what, "not yet measured", target, None) for what, target in _TARGETS],
    )
