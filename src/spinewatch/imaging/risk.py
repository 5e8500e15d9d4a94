"""Collapse risk of a vertebra and the imaging part of SINS, with the reasons for the verdict.

The verdict is the highest that any rule reaches -- low, moderate, high -- or **not assessable**
when no rule found a risk but something needed to call the vertebra safe could not be measured;
every rule that fires adds a human-readable reason, so a radiologist can see why. Rules:

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
  raising the verdict. On a **contrast CT** both thresholds are raised by the phase's
  :attr:`~spinewatch.core.acquisition.ContrastPhase.density_offset_hu` (arterial +20 HU,
  portal-venous +14.75 HU: the offsets of TotalSegmentator's spine report,
  ``totalsegmentator/bin/totalseg_spine_report.py`` ``ART_HU_ADDON``/``PV_HU_ADDON``,
  wasserth/TotalSegmentator at 0e65a44; delayed and unknown phase as in
  :mod:`spinewatch.core.acquisition`), and the reason says so: ``trabecular 125 HU (<= 130 HU =
  110 + 20 HU arterial contrast: ...)``.
* **Diffuse infiltration** (:mod:`spinewatch.imaging.infiltration`: the body's trabecular
  background far below the patient's own other vertebrae, the myeloma pattern without a focal
  lesion) is *moderate*.
* **Cement present** (a treated level): reported and the verdict lowered by one step -- the
  cemented body is mechanically reinforced; a collapsed cemented level is still at least moderate.

**Not assessable** (:attr:`CollapseRisk.NOT_ASSESSABLE`): "low" is a statement that the body was
measured and nothing was found. When no rule fired but any of these is missing, the verdict is
not assessable and the reasons say why (``"not assessable: heights not measured (vertebra cut
by the scan edge)"``):

* heights (no Genant grade): a vertebra cut by the scan edge, or a body too small/thin for the
  three height columns; or heights measured in a frame flagged ``frame_unreliable``;
* trabecular density: an MRI (:data:`~spinewatch.core.acquisition.MRI_NOT_ASSESSED`), no CT, or
  too few trabecular voxels -- except on a cemented level, where the cement is the finding;
* lytic lesions: an MRI or no CT (or, with a CT, a detection that returned nothing).

Evidence of risk still counts when something else is missing (a 50 % lytic body without heights
is high); the verdict then keeps its level and a reason lists what was not measured, since the
truth may be worse. On an MRI the density, lesion and cement arguments are not used even if
given (its voxel values are not HU).

SINS imaging part (Fisher 2010): location from the level; bone lesion *lytic* when the lytic
fraction is >= :data:`SINS_MIN_LESION_FRACTION`, *mixed* when focal blastic bone of at least that
fraction is present too, *blastic* when only blastic bone is, *none found* (0 points) when the CT
showed no focal lesion, *not assessed* on an MRI or without a CT; collapse from
:func:`spinewatch.core.sins.sins_collapse_from` (height loss, lytic fraction), *not assessed*
without heights; posterolateral from pedicle involvement (bilateral / unilateral / none; not
assessed without a CT). A component not assessed widens
:attr:`~spinewatch.core.sins.SinsImagingPart.possible_total_range`.

The ranking used to sort and colour verdicts is :attr:`CollapseRisk.rank`: low 0 <
not assessable 1 < moderate 2 < high 3 -- an unmeasured vertebra never sorts with the safe ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from spinewatch.core.acquisition import MRI_NOT_ASSESSED, Acquisition, Modality
from spinewatch.core.collapse_risk import CollapseRisk
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
    "density_thresholds_hu",
    "involvement_threshold",
]


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
#: osteoporosis at L1). Native CT; raised by the contrast phase's offset (module docstring).
DENSITY_MODERATE_HU = 110.0
#: ... and at or below this is mentioned (97% of patients with moderate/severe fractures).
DENSITY_MENTION_HU = 145.0
#: SINS lesion quality: a lytic (or blastic) fraction of the body from this on counts (1% of a
#: lumbar body is ~0.3 ml, three times the smallest lesion SpineWatch reports).
SINS_MIN_LESION_FRACTION = 0.01

#: Internal evidence levels (the verdict before "not assessable" is considered).
_EVIDENCE = (CollapseRisk.LOW, CollapseRisk.MODERATE, CollapseRisk.HIGH)


@dataclass(frozen=True)
class RiskAssessment:
    """The verdict, its human-readable reasons (in rule order) and the SINS imaging part.

    ``not_measured``: what could not be measured (short phrases, e.g. ``"heights not measured
    (vertebra cut by the scan edge)"``), empty when everything was; it is why a verdict is
    :attr:`CollapseRisk.NOT_ASSESSABLE`, and why a low-evidence verdict may understate.
    """

    risk: CollapseRisk
    reasons: tuple[str, ...]
    sins_imaging: SinsImagingPart
    not_measured: tuple[str, ...] = ()


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


def density_thresholds_hu(acquisition: Acquisition | None = None) -> tuple[float, float]:
    """``(moderate, mention)`` trabecular thresholds in HU for ``acquisition``'s contrast phase:
    :data:`DENSITY_MODERATE_HU` and :data:`DENSITY_MENTION_HU` plus the phase's
    ``density_offset_hu`` (0 on a native CT or without an acquisition).

    >>> from spinewatch.core.acquisition import Acquisition
    >>> density_thresholds_hu(Acquisition(contrast_phase="arterial"))
    (130.0, 165.0)
    """
    offset = 0.0 if acquisition is None else acquisition.contrast_phase.density_offset_hu
    return DENSITY_MODERATE_HU + offset, DENSITY_MENTION_HU + offset


def _pct(fraction: float) -> str:
    return f"{100.0 * fraction:.0f}%"


def _sins_part(
    level: VertebralLevel, genant: GenantAssessment | None, lytic: LyticFindings | None
) -> tuple[SinsImagingPart, str | None]:
    note = None
    lytic_on = lytic is not None and lytic.fraction >= SINS_MIN_LESION_FRACTION
    blastic_on = lytic is not None and lytic.blastic_fraction >= SINS_MIN_LESION_FRACTION
    if lytic is None:
        lesion = SinsBoneLesion.NOT_ASSESSED
    elif lytic_on and blastic_on:
        lesion = SinsBoneLesion.MIXED
    elif lytic_on:
        lesion = SinsBoneLesion.LYTIC
    elif blastic_on:
        lesion = SinsBoneLesion.BLASTIC
    else:
        lesion = SinsBoneLesion.NONE_FOUND
        note = (
            "SINS lesion quality: no focal lesion found (0 points)"
            if lytic.n_lesions == 0
            else f"SINS lesion quality: no lesion of >= {_pct(SINS_MIN_LESION_FRACTION)} of the "
            "body (0 points)"
        )
    if lytic is None:
        posterolateral = SinsPosterolateral.NOT_ASSESSED
    elif lytic.pedicle_left_involved and lytic.pedicle_right_involved:
        posterolateral = SinsPosterolateral.BILATERAL
    elif lytic.pedicle_left_involved or lytic.pedicle_right_involved:
        posterolateral = SinsPosterolateral.UNILATERAL
    else:
        posterolateral = SinsPosterolateral.NONE
    if genant is None:
        collapse = SinsCollapse.NOT_ASSESSED
    else:
        collapse = sins_collapse_from(
            genant.height_loss_pct,
            min(1.0, max(0.0, lytic.fraction)) if lytic is not None else None,
        )
    part = SinsImagingPart(
        location=level.sins_location,
        bone_lesion=lesion,
        collapse=collapse,
        posterolateral=posterolateral,
    )
    if part.unassessed:
        lo, hi = part.possible_total_range
        missing = ", ".join(name.replace("_", " ") for name in part.unassessed)
        note = (note + "; " if note else "") + (
            f"SINS {missing} not assessed: total {lo}-{hi} possible once completed"
        )
    return part, note


def _genant_rule(genant: GenantAssessment) -> tuple[int, str | None]:
    if not genant.is_fracture:
        return 0, None
    text = (
        f"Genant grade {int(genant.grade)} {genant.deformity.value} deformity "
        f"({genant.height_loss_pct:.0f}% height loss)"
    )
    if genant.grade >= GenantGrade.MODERATE or genant.deformity is DeformityType.CRUSH:
        return 2, text + ": already collapsed"
    return 1, text


def _lytic_rules(lvl: VertebralLevel, lytic: LyticFindings) -> tuple[int, list[str]]:
    rank = 0
    reasons: list[str] = []
    thr = involvement_threshold(lvl)
    sides = (("left", lytic.pedicle_left_involved), ("right", lytic.pedicle_right_involved))
    pedicles = [side for side, on in sides if on]
    if lytic.n_lesions > 0:
        frac = lytic.fraction
        if frac >= thr.fraction:
            rank = 2
            reasons.append(f"lytic {_pct(frac)} of body (>= {_pct(thr.fraction)}; {thr.label})")
        elif pedicles and frac >= thr.fraction_with_posterior:
            rank = 2
            reasons.append(
                f"lytic {_pct(frac)} of body with pedicle involvement "
                f"(>= {_pct(thr.fraction_with_posterior)} with posterior element destruction; "
                f"{thr.label})"
            )
        elif frac >= MODERATE_FRACTION_OF_THRESHOLD * thr.fraction:
            rank = 1
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
    return rank, reasons


def _density_rule(
    density: TrabecularDensity, acquisition: Acquisition | None
) -> tuple[int, str | None]:
    moderate, mention = density_thresholds_hu(acquisition)
    phase = None if acquisition is None else acquisition.contrast_phase
    offset = 0.0 if phase is None else phase.density_offset_hu

    def limit(native: float, shifted: float) -> str:
        if phase is None or offset == 0.0:
            return f"<= {native:.0f} HU"
        name = phase.label if "contrast" in phase.label else f"{phase.label} contrast"
        return f"<= {shifted:g} HU = {native:.0f} + {offset:g} HU {name}"

    hu = density.median_hu
    if hu <= moderate:
        text = (
            f"trabecular {hu:.0f} HU ({limit(DENSITY_MODERATE_HU, moderate)}: osteoporosis, "
            "Pickhardt 2013, L1-validated)"
        )
        return 1, text
    if hu <= mention:
        return 0, (
            f"trabecular {hu:.0f} HU ({limit(DENSITY_MENTION_HU, mention)} fracture-risk "
            "threshold, Pickhardt 2013)"
        )
    return 0, None


def _not_measured(
    *,
    genant: GenantAssessment | None,
    lytic: LyticFindings | None,
    density: TrabecularDensity | None,
    cement: CementFindings | None,
    mri: bool,
    has_ct: bool,
    truncated: bool,
    quality_flags: Sequence[str],
) -> list[str]:
    """What is missing to call the vertebra safe (phrases for the reasons)."""
    out: list[str] = []
    if genant is None:
        out.append(
            "heights not measured (vertebra cut by the scan edge)"
            if truncated
            else "heights not measured (body too small or thin for the three height columns)"
        )
    elif "frame_unreliable" in quality_flags:
        out.append("heights not reliable (the vertebra's frame did not fit its endplates)")
    if mri:
        out.append(f"trabecular density and lytic lesions: {MRI_NOT_ASSESSED}")
    elif not has_ct:
        out.append("trabecular density and lytic lesions not assessed (no CT)")
    else:
        treated = cement is not None and cement.present
        if density is None and not treated:
            out.append("trabecular density not measured (too few trabecular voxels)")
        if lytic is None:
            out.append("lytic lesions not measured")
    return out


def assess_collapse_risk(
    *,
    level: VertebralLevel | str,
    genant: GenantAssessment | None,
    lytic: LyticFindings | None,
    density: TrabecularDensity | None,
    cement: CementFindings | None,
    acquisition: Acquisition | None = None,
    truncated: bool = False,
    quality_flags: Sequence[str] = (),
    has_ct: bool | None = None,
    infiltration: InfiltrationFinding | None = None,
) -> RiskAssessment:
    """Collapse risk of one vertebra from what was measured (None = not measured).

    ``genant``: the height assessment (None when truncated or the body too small);
    ``lytic``, ``density``, ``cement``: the CT findings (None without a CT, or not measurable).
    ``acquisition``: the scan's modality and contrast phase (default native CT): an MRI gives no
    density/lesion/cement; a contrast phase raises the density thresholds. ``truncated`` and
    ``quality_flags`` (the region's) say why heights are missing or unreliable. ``has_ct``:
    whether a CT was analysed (default: inferred -- any CT finding given). ``infiltration``: the
    diffuse-infiltration verdict of this level against the patient's other levels (None when not
    assessed). The rules and their
    sources are in the module docstring.
    """
    lvl = VertebralLevel.parse(level)
    mri = acquisition is not None and acquisition.modality is not Modality.CT
    if mri:
        lytic = density = cement = None
        has_ct = False
    if has_ct is None:
        has_ct = lytic is not None or density is not None or cement is not None
    rank = 0
    reasons: list[str] = []

    if genant is not None:
        found, text = _genant_rule(genant)
        rank = max(rank, found)
        if text is not None:
            reasons.append(text)
    if lytic is not None:
        found, texts = _lytic_rules(lvl, lytic)
        rank = max(rank, found)
        reasons += texts
    if density is not None:
        found, text = _density_rule(density, acquisition)
        rank = max(rank, found)
        if text is not None:
            reasons.append(text)

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

    missing = _not_measured(
        genant=genant,
        lytic=lytic,
        density=density,
        cement=cement,
        mri=mri,
        has_ct=has_ct,
        truncated=truncated,
        quality_flags=quality_flags,
    )
    verdict = _EVIDENCE[rank]
    if missing and verdict is CollapseRisk.LOW:
        verdict = CollapseRisk.NOT_ASSESSABLE
        reasons.insert(0, "not assessable: " + "; ".join(missing))
    elif missing:
        reasons.append("also not measured: " + "; ".join(missing))

    sins, note = _sins_part(lvl, genant, lytic)
    if note is not None:
        reasons.append(note)
    no_lesion = lytic is not None and lytic.n_lesions == 0
    no_deformity = genant is not None and genant.grade == GenantGrade.NORMAL
    if no_lesion and no_deformity:
        # after the "not assessable" line, which must lead
        at = 1 if verdict is CollapseRisk.NOT_ASSESSABLE else 0
        reasons.insert(at, "no lytic lesion and no deformity found")
    return RiskAssessment(
        risk=verdict, reasons=tuple(reasons), sins_imaging=sins, not_measured=tuple(missing)
    )
