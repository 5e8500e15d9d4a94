"""Collapse risk of a vertebra and the imaging part of SINS, with the reasons for the verdict.

The verdict (low / moderate / high) is the highest that any rule reaches; every rule that fires
adds a human-readable reason, so a radiologist can see why. Rules:

* **Lytic involvement** (Taneichi et al., Spine 1997, thresholds as usually quoted -- check the
  source before relying on them): impending collapse when the lytic fraction of the body reaches
  the region's threshold (:data:`THRESHOLDS`), or the lower threshold when the posterior elements
  (pedicles; posterior wall, as the nearest imaging proxy) are destroyed. SpineWatch takes the
  *lower* bound of each quoted range (conservative): T1-T9 50% (25% with costovertebral joint
  destruction, for which pedicle involvement is the proxy: the rib head articulates at the
  pedicle-body junction), T10-L5 35% (20% with pedicle/posterior element destruction). T10 is in
  both quoted ranges; the thoracolumbar (lower) figures are used. Cervical levels have no
  published equivalent: the thoracolumbar figures are used (no rib cage, mobile segment --
  a documented conservative choice), as for S1 and the variants T13/L6. Half the threshold (or
  any posterior wall involvement) is *moderate*.
* **Existing deformity** (Genant): grade >= 2, or a crush deformity of any grade, is *high* (the
  vertebra has already collapsed: still reported, as it may progress or need treatment); grade 1 is
  *moderate*.
* **Trabecular attenuation** (Pickhardt 2013, L1-validated): median <= 110 HU is *moderate*
  (osteoporosis, > 90% specific); <= 145 HU is mentioned (fracture-risk threshold) without
  raising the verdict.
* **Diffuse infiltration** (:mod:`spinewatch.imaging.infiltration`: the body's trabecular
  background far below the patient's own other vertebrae, the myeloma pattern without a focal
  lesion) is *moderate*.
* **Cement present** (a treated level): reported and the verdict lowered by one step -- the
  cemented body is mechanically reinforced; a collapsed cemented level is still at least moderate.

SINS imaging part (Fisher 2010): location from the level; bone lesion *lytic* when the lytic
fraction is >= :data:`SINS_MIN_LESION_FRACTION`, *mixed* when focal blastic bone of at least that
fraction is present too, *blastic* when only blastic bone is; with no focal lesion at all the
component is scored 0 (as "blastic") and a reason says no lesion was found; collapse from
:func:`spinewatch.core.sins.sins_collapse_from` (height loss, lytic fraction); posterolateral
from pedicle involvement (bilateral / unilateral / none).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from spinewatch.core.genant import DeformityType, GenantAssessment, GenantGrade
from spinewatch.core.levels import Region, VertebralLevel
from spinewatch.core.sins import (
    SinsBoneLesion,
    SinsCollapse,
    SinsImagingPart,
    SinsPosterolateral,
    sins_collapse_from,
)
from spinewatch.imaging.cement import CementFindings
from spinewatch.imaging.density import TrabecularDensity
from spinewatch.imaging.infiltration import InfiltrationFinding
from spinewatch.imaging.lesions import LyticFindings

__all__ = [
    "DENSITY_MENTION_HU",
    "DENSITY_MODERATE_HU",
    "MODERATE_FRACTION_OF_THRESHOLD",
    "SINS_MIN_LESION_FRACTION",
    "THRESHOLDS",
    "CollapseRisk",
    "InvolvementThreshold",
    "RiskAssessment",
    "assess_collapse_risk",
    "involvement_threshold",
]


class CollapseRisk(enum.Enum):
    """Risk that the vertebral body collapses (or has collapsed)."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """0 low, 1 moderate, 2 high."""
        return {"low": 0, "moderate": 1, "high": 2}[self.value]

    @classmethod
    def from_rank(cls, rank: int) -> CollapseRisk:
        """The risk of a rank, clipped to 0..2."""
        return (cls.LOW, cls.MODERATE, cls.HIGH)[max(0, min(2, rank))]


@dataclass(frozen=True)
class InvolvementThreshold:
    """Lytic fraction of the body (0..1) for impending collapse in a spinal region.

    ``fraction``: alone; ``fraction_with_posterior``: with posterior element (pedicle,
    costovertebral joint) destruction; ``label``: the levels and the source, for reasons.
    """

    fraction: float
    fraction_with_posterior: float
    label: str


#: Taneichi 1997 as usually quoted, lower bound of each range (see the module docstring).
THRESHOLDS: dict[str, InvolvementThreshold] = {
    "upper_thoracic": InvolvementThreshold(0.50, 0.25, "T1-T9, Taneichi 1997: 50-60%"),
    "thoracolumbar": InvolvementThreshold(0.35, 0.20, "T10-L5, Taneichi 1997: 35-40%"),
    "cervical": InvolvementThreshold(
        0.35, 0.20, "cervical: T10-L5 figures used (conservative; no published threshold)"
    ),
    "sacral": InvolvementThreshold(0.35, 0.20, "S1: T10-L5 figures used (conservative)"),
}
#: A lytic fraction of at least this share of the region's threshold is moderate risk.
MODERATE_FRACTION_OF_THRESHOLD = 0.5
#: Trabecular median at or below this is moderate risk (Pickhardt 2013: > 90% specific for
#: osteoporosis at L1).
DENSITY_MODERATE_HU = 110.0
#: ... and at or below this is mentioned (97% of patients with moderate/severe fractures).
DENSITY_MENTION_HU = 145.0
#: SINS lesion quality: a lytic (or blastic) fraction of the body from this on counts (1% of a
#: lumbar body is ~0.3 ml, three times the smallest lesion SpineWatch reports).
SINS_MIN_LESION_FRACTION = 0.01


@dataclass(frozen=True)
class RiskAssessment:
    """The verdict, its human-readable reasons (in rule order) and the SINS imaging part."""

    risk: CollapseRisk
    reasons: tuple[str, ...]
    sins_imaging: SinsImagingPart


def involvement_threshold(level: VertebralLevel | str) -> InvolvementThreshold:
    """The Taneichi-style involvement threshold for ``level`` (see :data:`THRESHOLDS`)."""
    lvl = VertebralLevel.parse(level)
    if lvl.region is Region.CERVICAL:
        return THRESHOLDS["cervical"]
    if lvl.region is Region.SACRAL:
        return THRESHOLDS["sacral"]
    if lvl.region is Region.THORACIC and lvl < VertebralLevel.T10:
        return THRESHOLDS["upper_thoracic"]
    return THRESHOLDS["thoracolumbar"]


def _pct(fraction: float) -> str:
    return f"{100.0 * fraction:.0f}%"


def _sins_part(
    level: VertebralLevel, genant: GenantAssessment | None, lytic: LyticFindings | None
) -> tuple[SinsImagingPart, str | None]:
    note = None
    lytic_on = lytic is not None and lytic.fraction >= SINS_MIN_LESION_FRACTION
    blastic_on = lytic is not None and lytic.blastic_fraction >= SINS_MIN_LESION_FRACTION
    if lytic_on and blastic_on:
        lesion = SinsBoneLesion.MIXED
    elif lytic_on:
        lesion = SinsBoneLesion.LYTIC
    else:
        lesion = SinsBoneLesion.BLASTIC
        if not blastic_on:
            note = "SINS lesion quality scored 0: no focal lesion found" + (
                "" if lytic is not None else " (no CT)"
            )
    if lytic is None:
        posterolateral = SinsPosterolateral.NONE
    elif lytic.pedicle_left_involved and lytic.pedicle_right_involved:
        posterolateral = SinsPosterolateral.BILATERAL
    elif lytic.pedicle_left_involved or lytic.pedicle_right_involved:
        posterolateral = SinsPosterolateral.UNILATERAL
    else:
        posterolateral = SinsPosterolateral.NONE
    collapse: SinsCollapse = sins_collapse_from(
        genant.height_loss_pct if genant is not None else None,
        min(1.0, max(0.0, lytic.fraction)) if lytic is not None else None,
    )
    part = SinsImagingPart(
        location=level.sins_location,
        bone_lesion=lesion,
        collapse=collapse,
        posterolateral=posterolateral,
    )
    return part, note


def assess_collapse_risk(
    *,
    level: VertebralLevel | str,
    genant: GenantAssessment | None,
    lytic: LyticFindings | None,
    density: TrabecularDensity | None,
    cement: CementFindings | None,
    infiltration: InfiltrationFinding | None = None,
) -> RiskAssessment:
    """Collapse risk of one vertebra from what was measured (None = not measured).

    ``genant``: the height assessment (None when truncated); ``lytic``, ``density``, ``cement``:
    the CT findings (None without a CT); ``infiltration``: the diffuse-infiltration verdict of
    this level against the patient's other levels (None when not assessed). The rules and their
    sources are in the module docstring.
    """
    lvl = VertebralLevel.parse(level)
    rank = 0
    reasons: list[str] = []

    if genant is not None:
        grade = genant.grade
        if genant.is_fracture:
            kind = genant.deformity.value
            text = (
                f"Genant grade {int(grade)} {kind} deformity "
                f"({genant.height_loss_pct:.0f}% height loss)"
            )
            if grade >= GenantGrade.MODERATE or genant.deformity is DeformityType.CRUSH:
                rank = max(rank, 2)
                reasons.append(text + ": already collapsed")
            else:
                rank = max(rank, 1)
                reasons.append(text)
    else:
        reasons.append("heights not measured: no Genant grade")

    if lytic is not None:
        thr = involvement_threshold(lvl)
        sides = (("left", lytic.pedicle_left_involved), ("right", lytic.pedicle_right_involved))
        pedicles = [side for side, on in sides if on]
        posterior_elements = bool(pedicles)
        if lytic.n_lesions > 0:
            frac = lytic.fraction
            if frac >= thr.fraction:
                rank = max(rank, 2)
                reasons.append(f"lytic {_pct(frac)} of body (>= {_pct(thr.fraction)}; {thr.label})")
            elif posterior_elements and frac >= thr.fraction_with_posterior:
                rank = max(rank, 2)
                reasons.append(
                    f"lytic {_pct(frac)} of body with pedicle involvement "
                    f"(>= {_pct(thr.fraction_with_posterior)} with posterior element destruction; "
                    f"{thr.label})"
                )
            elif frac >= MODERATE_FRACTION_OF_THRESHOLD * thr.fraction:
                rank = max(rank, 1)
                reasons.append(
                    f"lytic {_pct(frac)} of body (below the {_pct(thr.fraction)} threshold, "
                    f"above half of it; {thr.label})"
                )
            else:
                n = lytic.n_lesions
                reasons.append(
                    f"lytic {_pct(frac)} of body ({lytic.volume_ml:.1f} ml in {n} "
                    f"lesion{'s' if n > 1 else ''}; below {_pct(thr.fraction)}; {thr.label})"
                )
        if lytic.posterior_wall_involved:
            rank = max(rank, 1)
            reasons.append("posterior wall involved (retropulsion and cement leakage risk)")
        if pedicles:
            rank = max(rank, 1)
            reasons.append(f"pedicle involved: {' and '.join(pedicles)}")
        if lytic.blastic_fraction >= SINS_MIN_LESION_FRACTION:
            reasons.append(f"blastic (sclerotic) focus {lytic.blastic_volume_ml:.1f} ml")
    else:
        reasons.append("no CT: lytic lesions not assessed")

    if density is not None:
        hu = density.median_hu
        if hu <= DENSITY_MODERATE_HU:
            rank = max(rank, 1)
            reasons.append(
                f"trabecular {hu:.0f} HU (<= {DENSITY_MODERATE_HU:.0f} HU: osteoporosis, "
                "Pickhardt 2013, L1-validated)"
            )
        elif hu <= DENSITY_MENTION_HU:
            reasons.append(
                f"trabecular {hu:.0f} HU (<= {DENSITY_MENTION_HU:.0f} HU fracture-risk threshold, "
                "Pickhardt 2013)"
            )

    if infiltration is not None and infiltration.infiltrated:
        rank = max(rank, 1)
        reasons.append(
            f"diffuse infiltration: trabecular bone {infiltration.hu_below_own:.0f} HU below the "
            f"patient's own other vertebrae (expected {infiltration.expected_hu:.0f} HU)"
        )

    if cement is not None and cement.present:
        floor = 1 if genant is not None and genant.grade >= GenantGrade.MODERATE else 0
        lowered = max(floor, rank - 1)
        text = f"cement {cement.volume_ml:.1f} ml present: treated level"
        if lowered < rank:
            text += " (concern lowered one step)"
        reasons.append(text)
        rank = lowered

    sins, note = _sins_part(lvl, genant, lytic)
    if note is not None:
        reasons.append(note)
    no_lesion = lytic is not None and lytic.n_lesions == 0
    no_deformity = genant is not None and genant.grade == GenantGrade.NORMAL
    if no_lesion and no_deformity:
        reasons.insert(0, "no lytic lesion and no deformity found")
    return RiskAssessment(
        risk=CollapseRisk.from_rank(rank), reasons=tuple(reasons), sins_imaging=sins
    )
