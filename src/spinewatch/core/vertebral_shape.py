"""The normal shape of a vertebral body, per level: published ratios, their sources, and fallbacks.

Genant's semi-quantitative grade (Genant 1993) is a height *reduction against what the height
should be*. What it should be depends on the level: a healthy mid-thoracic body is a little lower
in front than behind (the kyphosis is partly built into the bodies), a healthy L5 is clearly
taller in front (the lordosis), and a healthy endplate is concave, so the middle of a body is
lower than its walls. Grading every level against a rectangle calls a normal L5 a "crush" and a
normal mid-thoracic body a "wedge". This module holds the normal shape of each level, with the
figure as published, where it was published, and how it was converted to what SpineWatch measures.

Three quantities, for the heights of :mod:`spinewatch.imaging.heights` (anterior ``Ha``,
middle ``Hm`` and posterior ``Hp`` height of the body, measured along the vertebra's superior
axis on the mid-sagittal line at :data:`COLUMN_FRACTIONS` of the body's antero-posterior depth):

* **anterior ratio** ``Ha / Hp`` -- the wedge shape. The studies publish the ratio of the
  *corner* heights (at the anterior and posterior edges); our columns sit at 15 % and 85 % of
  the depth, so with a height that varies linearly across the depth the column ratio is
  ``(1 + 0.85 (r - 1)) / (1 + 0.15 (r - 1))`` for a corner ratio ``r`` (0.90 -> 0.929;
  1.15 -> 1.10), and its SD is scaled by the same function's slope (:func:`column_ratio`).
* **middle ratio** ``Hm / ((Ha + Hp) / 2)`` -- the endplate concavity. Wang, Battie & Videman
  (Eur Spine J 2012;21(11):2316-23; 591 lumbar endplates of 76 men, laser-scanned) found a mean
  concavity depth of 1.5 mm for the endplate cranial to a disc (the inferior endplate of the
  vertebra above) and 0.7 mm for the caudal one (the superior endplate of the vertebra below):
  2.2 mm per body. Against the mean corner height of a lumbar body (L5: (30.3 + 26.3) / 2 =
  28.3 mm, Cook & Baker 2021, below) that is a middle ratio of 1 - 2.2 / 28.3 = 0.922. No SD
  of the per-body depth was retrieved: the SD used (0.05, 0.06 outside the lumbar spine) is an
  engineering choice. Outside the lumbar spine no published depth was found; the lumbar ratio
  is used with the wider SD.
* **posterior step** ``Hp(level) / Hp(level above)`` -- how the posterior height grows from one
  level to the next, used to scale a neighbour's posterior height to the height expected here.
  Palm et al. (Sci Rep 2025, doi:10.1038/s41598-025-05091-0; CT of 262 adults, 3117
  vertebrae) report the strongest level-to-level height increase from T9 to L1: 6.63 % per level
  in women, 6.48 % in men; the mean, 1.0655, is used for the steps T9->T10 ... T12->L1. For the
  other steps no per-level figure was found: 1.0 (no growth) with SD 0.06 is used, an
  engineering fallback that treats neighbours as equally tall; the analysis interpolates
  between a cranial and a caudal neighbour when it has both, which removes a linear growth.
  The SD of the published steps was not retrieved either; 0.05 is assumed (engineering choice).

Sources of the anterior (corner) ratio, as published:

* T10-L2: "Wedging of vertebral bodies at the thoracolumbar junction in asymptomatic healthy
  subjects on magnetic resonance imaging", Surg Radiol Anat 2011;33(3):223-228
  (doi:10.1007/s00276-010-0746-x, PMID 21104252; authors not retrieved here): 115 adults
  without back pain, T2-weighted sagittal MRI, APR = anterior / posterior vertical height:
  T10 0.92 +/- 0.08, T11 0.92 +/- 0.08, T12 0.90 +/- 0.06, L1 0.89 +/- 0.06, L2 0.90 +/- 0.07.
  (Zhang, Wu & Wu, Chin J Tissue Eng Res 2014;18(22):3532-6, 120 volunteers, MRI, agree:
  T11 0.91 +/- 0.05, T12 0.91 +/- 0.05, L1 0.88 +/- 0.08, L2 0.91 +/- 0.08.)
* L5: Cook WH, Baker JF, "Comparative analysis of lumbar spine vertebral morphology between
  Maori and New Zealand Europeans: a computed tomography study", Int J Spine Surg
  2021;15(6):1072-1081, Table 6 (196 patients, CT): anterior body height 30.3 +/- 1.9 mm,
  posterior 26.3 +/- 1.9 mm, superior length (depth) 35.7 mm. Ratio of the means 1.152; its SD
  (0.110) is propagated from the two SDs as if the heights were independent (an upper bound;
  the paper gives no SD of the ratio).
* T9, L3, L4: Eur Spine J 2010;19(5):768-773 (doi:10.1007/s00586-009-1256-6, PMC2899959,
  Table 1; 120 women and 120 men, 20-80 years): vertebral body sagittal wedging, degrees
  (positive ventral): T9 2.8 (women) / 4.8 (men), L3 -1.1 / 1.3, L4 -3.1 / -0.7, L5 -7.8 /
  -4.6. The mean of the sexes is converted to a corner ratio with ``r = 1 - (D / Hp) tan(angle)``
  and the depth-to-height ratio of Cook & Baker's L5 (35.7 / 26.3 = 1.357): L5 gives 1.147,
  against 1.152 measured directly by Cook & Baker, which supports the conversion. The table's
  "+/- 0.04" spreads are not plausible population SDs of a wedge angle, so the SD is taken from
  the nearest level with a published SD (T10 for T9, L2 for L3 and L4).

Levels without a published figure (engineering fallbacks, marked ``published=False``):

* T1-T8: the T9 ratio with SD 0.10 (wider than any published SD);
* T13 (variant): T12's figures; L6 (variant): L5's figures; S1: L5's ratio with SD 0.15;
* C1-C7: a rectangular body (ratio 1.0), SD 0.10. (C1 has no body; it is graded only if a
  label map gives it heights.)

>>> round(normal_shape("L5").anterior_ratio.mean, 3)
1.104
>>> normal_shape("T7").anterior_ratio.published
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from spinewatch.core.levels import Region, VertebralLevel

__all__ = [
    "COLUMN_FRACTIONS",
    "SOURCES",
    "LevelShape",
    "NormalRatio",
    "column_ratio",
    "normal_shape",
    "posterior_scale",
    "posterior_step",
]

#: Where the anterior and posterior heights are measured, as fractions of the antero-posterior
#: depth from the anterior edge (must equal ``spinewatch.imaging.heights.COLUMN_FRACTIONS``
#: [0] and [2]; a test checks it).
COLUMN_FRACTIONS: tuple[float, float] = (0.15, 0.85)

SOURCES: dict[str, str] = {
    "SRA2011": (
        "Surg Radiol Anat 2011;33(3):223-228, doi:10.1007/s00276-010-0746-x (PMID 21104252): "
        "MRI, 115 asymptomatic adults, anterior/posterior height ratio T10-L2"
    ),
    "COOK2021": (
        "Cook WH, Baker JF. Int J Spine Surg 2021;15(6):1072-1081, Table 6: CT, 196 patients, "
        "L5 anterior 30.3 +/- 1.9 mm, posterior 26.3 +/- 1.9 mm, superior length 35.7 mm"
    ),
    "ESJ2010": (
        "Eur Spine J 2010;19(5):768-773, doi:10.1007/s00586-009-1256-6 (PMC2899959), Table 1: "
        "vertebral body sagittal wedging T9-L5, 120 women and 120 men"
    ),
    "WANG2012": (
        "Wang Y, Battie MC, Videman T. Eur Spine J 2012;21(11):2316-23: lumbar endplate "
        "concavity depth 1.5 mm (cranial endplate of a disc) and 0.7 mm (caudal endplate)"
    ),
    "PALM2025": (
        "Palm V et al. Sci Rep 2025, doi:10.1038/s41598-025-05091-0: CT of 262 adults, 3117 "
        "vertebrae; height increase T9 to L1 of 6.63 % (women) and 6.48 % (men) per level"
    ),
}


@dataclass(frozen=True)
class NormalRatio:
    """A normal height ratio: ``mean`` and ``sd`` (dimensionless), the sample size ``n`` (None
    when not applicable), where it comes from (``source``: a :data:`SOURCES` key and how it was
    derived) and whether it rests on a published figure for this level (``published``)."""

    mean: float
    sd: float
    n: int | None
    source: str
    published: bool


@dataclass(frozen=True)
class LevelShape:
    """The normal shape of one level's body, as SpineWatch measures it.

    ``anterior_ratio``: ``Ha / Hp`` at the measuring columns (converted from ``corner_ratio``,
    the published anterior/posterior corner-height ratio); ``middle_ratio``:
    ``Hm / ((Ha + Hp) / 2)``; ``posterior_step``: ``Hp(level) / Hp(next cranial level)``.
    """

    level: VertebralLevel
    corner_ratio: NormalRatio
    anterior_ratio: NormalRatio
    middle_ratio: NormalRatio
    posterior_step: NormalRatio


def column_ratio(corner_ratio: float) -> float:
    """The ``Ha / Hp`` ratio at the measuring columns of a body whose corner ratio is
    ``corner_ratio``, for a height varying linearly across the depth (dimensionless)."""
    a, p = COLUMN_FRACTIONS
    delta = corner_ratio - 1.0
    return (1.0 + (1.0 - a) * delta) / (1.0 + (1.0 - p) * delta)


def _column(ratio: NormalRatio) -> NormalRatio:
    h = 1e-6
    slope = (column_ratio(ratio.mean + h) - column_ratio(ratio.mean - h)) / (2 * h)
    return NormalRatio(
        mean=column_ratio(ratio.mean),
        sd=abs(slope) * ratio.sd,
        n=ratio.n,
        source=f"{ratio.source}; converted from corner to 15 %/85 % column heights",
        published=ratio.published,
    )


def _from_wedge_angle(women_deg: float, men_deg: float) -> float:
    depth_to_height = 35.7 / 26.3  # Cook & Baker 2021, L5: superior length / posterior height
    angle = math.radians((women_deg + men_deg) / 2.0)
    return 1.0 - depth_to_height * math.tan(angle)


_L5_RATIO = 30.3 / 26.3
_L5_SD = _L5_RATIO * math.hypot(1.9 / 30.3, 1.9 / 26.3)

# level -> corner ratio (as published, or derived from a published figure)
_CORNER: dict[str, NormalRatio] = {
    "T9": NormalRatio(
        _from_wedge_angle(2.8, 4.8),
        0.08,
        240,
        "ESJ2010 wedge angle via Cook & Baker's depth/height; SD of SRA2011 T10",
        True,
    ),
    "T10": NormalRatio(0.92, 0.08, 115, "SRA2011", True),
    "T11": NormalRatio(0.92, 0.08, 115, "SRA2011", True),
    "T12": NormalRatio(0.90, 0.06, 115, "SRA2011", True),
    "L1": NormalRatio(0.89, 0.06, 115, "SRA2011", True),
    "L2": NormalRatio(0.90, 0.07, 115, "SRA2011", True),
    "L3": NormalRatio(
        _from_wedge_angle(-1.1, 1.3),
        0.07,
        240,
        "ESJ2010 wedge angle via Cook & Baker's depth/height; SD of SRA2011 L2",
        True,
    ),
    "L4": NormalRatio(
        _from_wedge_angle(-3.1, -0.7),
        0.07,
        240,
        "ESJ2010 wedge angle via Cook & Baker's depth/height; SD of SRA2011 L2",
        True,
    ),
    "L5": NormalRatio(
        _L5_RATIO, _L5_SD, 196, "COOK2021 ratio of means, SD propagated as independent", True
    ),
}

_CONCAVITY_MM = 1.5 + 0.7  # WANG2012, per body: inferior (1.5 mm) + superior (0.7 mm) endplate
_LUMBAR_MIDDLE = 1.0 - _CONCAVITY_MM / ((30.3 + 26.3) / 2.0)
_PALM_STEP = 1.0 + (6.63 + 6.48) / 2.0 / 100.0
_PALM_LEVELS = frozenset({"T10", "T11", "T12", "L1"})  # steps T9->T10 ... T12->L1


def _corner_ratio(level: VertebralLevel) -> NormalRatio:
    name = level.value
    if name in _CORNER:
        return _CORNER[name]
    if level is VertebralLevel.T13:
        return _CORNER["T12"]
    if level is VertebralLevel.L6:
        return _CORNER["L5"]
    if level is VertebralLevel.S1:
        l5 = _CORNER["L5"]
        return NormalRatio(l5.mean, 0.15, None, "no published figure: L5's ratio, SD 0.15", False)
    if level.region is Region.THORACIC:  # T1-T8
        t9 = _CORNER["T9"]
        return NormalRatio(t9.mean, 0.10, None, "no published figure: T9's ratio, SD 0.10", False)
    return NormalRatio(1.0, 0.10, None, "no published figure: rectangular body, SD 0.10", False)


def _middle_ratio(level: VertebralLevel) -> NormalRatio:
    if level.region is Region.LUMBAR:
        return NormalRatio(
            _LUMBAR_MIDDLE, 0.05, 76, "WANG2012 concavity over COOK2021 L5 mean height", True
        )
    return NormalRatio(
        _LUMBAR_MIDDLE, 0.06, None, "no published figure: the lumbar concavity, SD 0.06", False
    )


def _posterior_step(level: VertebralLevel) -> NormalRatio:
    if level.value in _PALM_LEVELS:
        return NormalRatio(_PALM_STEP, 0.05, 262, "PALM2025 (SD: engineering choice)", True)
    return NormalRatio(1.0, 0.06, None, "no published figure: equal heights, SD 0.06", False)


def normal_shape(level: VertebralLevel | str) -> LevelShape:
    """The normal body shape of ``level`` (a level or its name; :class:`LevelError` otherwise)."""
    lv = VertebralLevel.parse(level)
    corner = _corner_ratio(lv)
    return LevelShape(
        level=lv,
        corner_ratio=corner,
        anterior_ratio=_column(corner),
        middle_ratio=_middle_ratio(lv),
        posterior_step=_posterior_step(lv),
    )


def posterior_step(level: VertebralLevel | str) -> NormalRatio:
    """``Hp(level) / Hp(next cranial level)`` in a normal spine (see the module docstring)."""
    return normal_shape(level).posterior_step


def posterior_scale(from_level: VertebralLevel | str, to_level: VertebralLevel | str) -> float:
    """Factor that turns the normal posterior height of ``from_level`` into that of ``to_level``
    (the product of the :func:`posterior_step` between them; 1.0 for the same level).

    Variants (T13, L6) count as levels only when one of the two is the variant itself.
    """
    a, b = VertebralLevel.parse(from_level), VertebralLevel.parse(to_level)
    if a is b:
        return 1.0
    lo, hi = (a, b) if a < b else (b, a)
    factor = 1.0
    for lv in VertebralLevel:
        if lo < lv <= hi and (not lv.is_variant or lv in (a, b)):
            factor *= _posterior_step(lv).mean
    return factor if a < b else 1.0 / factor
