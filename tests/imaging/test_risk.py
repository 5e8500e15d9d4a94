"""Collapse risk rules and boundaries, reasons, and the SINS imaging part."""

from __future__ import annotations

import numpy as np
import pytest

from spinewatch.core.genant import assess_vertebra
from spinewatch.core.levels import LevelError, SinsLocation, VertebralLevel
from spinewatch.core.sins import SinsBoneLesion, SinsCollapse, SinsPosterolateral
from spinewatch.imaging.cement import CementFindings
from spinewatch.imaging.density import TrabecularDensity
from spinewatch.imaging.lesions import LyticFindings
from spinewatch.imaging.risk import (
    THRESHOLDS,
    CollapseRisk,
    assess_collapse_risk,
    involvement_threshold,
)


def lytic(
    fraction: float = 0.0,
    *,
    n: int | None = None,
    wall: bool = False,
    left: bool = False,
    right: bool = False,
    blastic: float = 0.0,
    body_ml: float = 25.0,
) -> LyticFindings:
    n_lesions = (1 if fraction > 0 else 0) if n is None else n
    return LyticFindings(
        volume_ml=fraction * body_ml,
        fraction=fraction,
        n_lesions=n_lesions,
        largest_ml=fraction * body_ml,
        posterior_wall_involved=wall,
        pedicle_left_involved=left,
        pedicle_right_involved=right,
        lesion_mask=np.zeros((2, 2, 2), dtype=bool),
        blastic_volume_ml=blastic * body_ml,
        blastic_fraction=blastic,
        background_hu=200.0,
    )


NORMAL = assess_vertebra(anterior_mm=25.0, middle_mm=25.0, posterior_mm=25.0)
DENSE = TrabecularDensity(median_hu=200.0, mean_hu=201.0, n_voxels=5000, erosion_mm=4.0, flags=())
NO_CEMENT = CementFindings(volume_ml=0.0, present=False, max_hu=900.0)


def risk(level: str = "L2", **kw):  # type: ignore[no-untyped-def]
    args = {"genant": NORMAL, "lytic": lytic(), "density": DENSE, "cement": NO_CEMENT}
    args.update(kw)
    return assess_collapse_risk(level=level, **args)


def test_intact_vertebra_is_low_with_a_reason() -> None:
    r = risk()
    assert r.risk is CollapseRisk.LOW
    assert r.reasons[0] == "no lytic lesion and no deformity found"
    # no lesion is "none found" (0 points), never "blastic" (a finding); said so
    assert r.sins_imaging.bone_lesion is SinsBoneLesion.NONE_FOUND
    assert "SINS lesion quality: no focal lesion found (0 points)" in r.reasons
    assert r.not_measured == ()


@pytest.mark.parametrize(
    ("level", "key"),
    [
        ("C5", "cervical"),
        ("T1", "upper_thoracic"),
        ("T9", "upper_thoracic"),
        ("T10", "thoracolumbar"),
        ("T12", "thoracolumbar"),
        ("T13", "thoracolumbar"),
        ("L5", "thoracolumbar"),
        ("L6", "thoracolumbar"),
        ("S1", "sacral"),
    ],
)
def test_region_thresholds(level: str, key: str) -> None:
    assert involvement_threshold(level) is THRESHOLDS[key]
    assert involvement_threshold(VertebralLevel.parse(level)) is THRESHOLDS[key]


@pytest.mark.parametrize(
    ("level", "fraction", "expected"),
    [
        ("L2", 0.349, CollapseRisk.MODERATE),
        ("L2", 0.35, CollapseRisk.HIGH),
        ("L2", 0.175, CollapseRisk.MODERATE),
        ("L2", 0.174, CollapseRisk.LOW),
        ("T10", 0.35, CollapseRisk.HIGH),
        ("T6", 0.35, CollapseRisk.MODERATE),
        ("T6", 0.499, CollapseRisk.MODERATE),
        ("T6", 0.50, CollapseRisk.HIGH),
        ("T6", 0.249, CollapseRisk.LOW),
        ("C4", 0.35, CollapseRisk.HIGH),
    ],
)
def test_lytic_fraction_boundaries(level: str, fraction: float, expected: CollapseRisk) -> None:
    r = risk(level, lytic=lytic(fraction))
    assert r.risk is expected
    assert any(x.startswith(f"lytic {100 * fraction:.0f}% of body") for x in r.reasons)


def test_high_reason_names_threshold_and_source() -> None:
    r = risk("L1", lytic=lytic(0.42))
    assert r.risk is CollapseRisk.HIGH
    assert "lytic 42% of body (>= 35%; T10-L5, Taneichi 1997: 35-40%)" in r.reasons


@pytest.mark.parametrize(
    ("level", "fraction", "expected"),
    [
        ("L3", 0.20, CollapseRisk.HIGH),
        ("L3", 0.199, CollapseRisk.MODERATE),
        ("T5", 0.25, CollapseRisk.HIGH),
        ("T5", 0.249, CollapseRisk.MODERATE),
    ],
)
def test_lower_threshold_with_pedicle_involvement(
    level: str, fraction: float, expected: CollapseRisk
) -> None:
    r = risk(level, lytic=lytic(fraction, left=True))
    assert r.risk is expected
    assert "pedicle involved: left" in r.reasons


def test_posterior_wall_alone_is_moderate() -> None:
    r = risk(lytic=lytic(0.05, wall=True))
    assert r.risk is CollapseRisk.MODERATE
    assert any(x.startswith("posterior wall involved") for x in r.reasons)
    # the posterior wall alone does not lower the Taneichi threshold (pedicles do)
    assert risk(lytic=lytic(0.25, wall=True)).risk is CollapseRisk.MODERATE


@pytest.mark.parametrize(
    ("anterior", "middle", "posterior", "expected", "text"),
    [
        (25.0, 25.0, 25.0, CollapseRisk.LOW, None),
        (
            19.5,
            25.0,
            25.0,
            CollapseRisk.MODERATE,
            "Genant grade 1 wedge deformity (22% height loss)",
        ),
        (18.0, 25.0, 25.0, CollapseRisk.HIGH, "Genant grade 2 wedge deformity (28% height loss)"),
        (25.0, 14.0, 25.0, CollapseRisk.HIGH, "Genant grade 3 biconcave deformity"),
    ],
)
def test_genant_rules(
    anterior: float, middle: float, posterior: float, expected: CollapseRisk, text: str | None
) -> None:
    g = assess_vertebra(anterior_mm=anterior, middle_mm=middle, posterior_mm=posterior)
    r = risk(genant=g)
    assert r.risk is expected
    if text is not None:
        assert any(x.startswith(text) for x in r.reasons), r.reasons


def test_crush_of_any_grade_is_high() -> None:
    g = assess_vertebra(anterior_mm=20.0, middle_mm=20.0, posterior_mm=20.0, reference_mm=25.0)
    assert g.deformity.value == "crush" and int(g.grade) == 1
    r = risk(genant=g)
    assert r.risk is CollapseRisk.HIGH
    assert any("crush" in x and "already collapsed" in x for x in r.reasons)


@pytest.mark.parametrize(
    ("hu", "expected", "snippet"),
    [
        (111.0, CollapseRisk.LOW, "(<= 145 HU"),
        (110.0, CollapseRisk.MODERATE, "trabecular 110 HU (<= 110 HU"),
        (146.0, CollapseRisk.LOW, None),
    ],
)
def test_density_rules(hu: float, expected: CollapseRisk, snippet: str | None) -> None:
    d = TrabecularDensity(median_hu=hu, mean_hu=hu, n_voxels=100, erosion_mm=4.0, flags=())
    r = risk(density=d)
    assert r.risk is expected
    if snippet is None:
        assert not any("trabecular" in x for x in r.reasons)
    else:
        assert any(snippet in x for x in r.reasons)


def test_cement_lowers_the_concern_one_step() -> None:
    cement = CementFindings(volume_ml=3.2, present=True, max_hu=2600.0)
    r = risk(lytic=lytic(0.42), cement=cement)
    assert r.risk is CollapseRisk.MODERATE
    assert "cement 3.2 ml present: treated level (concern lowered one step)" in r.reasons
    assert risk(lytic=lytic(0.20), cement=cement).risk is CollapseRisk.LOW
    # a collapsed (grade >= 2) treated level stays at least moderate
    g = assess_vertebra(anterior_mm=14.0, middle_mm=25.0, posterior_mm=25.0)
    assert risk(genant=g, cement=cement).risk is CollapseRisk.MODERATE
    absent = CementFindings(volume_ml=0.01, present=False, max_hu=1600.0)
    assert risk(lytic=lytic(0.42), cement=absent).risk is CollapseRisk.HIGH


def test_nothing_measured_is_not_assessable_never_low() -> None:
    r = assess_collapse_risk(level="L1", genant=None, lytic=None, density=None, cement=None)
    assert r.risk is CollapseRisk.NOT_ASSESSABLE
    assert r.reasons[0] == (
        "not assessable: heights not measured (body too small or thin for the three height "
        "columns); trabecular density and lytic lesions not assessed (no CT)"
    )
    assert r.sins_imaging.collapse is SinsCollapse.NOT_ASSESSED
    assert r.sins_imaging.bone_lesion is SinsBoneLesion.NOT_ASSESSED
    assert r.sins_imaging.posterolateral is SinsPosterolateral.NOT_ASSESSED
    # L1 junctional 3 now; up to 3 + 2 + 3 + 3 (lesion, collapse, posterolateral) + 7
    assert r.sins_imaging.possible_total_range == (3, 18)
    note = "SINS bone lesion, collapse, posterolateral not assessed: total 3-18 possible"
    assert any(x.startswith(note) for x in r.reasons), r.reasons


def test_unknown_level_is_refused() -> None:
    with pytest.raises(LevelError, match="X9"):
        risk("X9")


# --- SINS imaging part ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("level", "location"),
    [
        ("L1", SinsLocation.JUNCTIONAL),
        ("L3", SinsLocation.MOBILE),
        ("T6", SinsLocation.SEMI_RIGID),
        ("C1", SinsLocation.JUNCTIONAL),
    ],
)
def test_sins_location(level: str, location: SinsLocation) -> None:
    assert risk(level).sins_imaging.location is location


@pytest.mark.parametrize(
    ("fraction", "blastic", "expected"),
    [
        (0.0, 0.0, SinsBoneLesion.NONE_FOUND),
        (0.0099, 0.0, SinsBoneLesion.NONE_FOUND),
        (0.01, 0.0, SinsBoneLesion.LYTIC),
        (0.2, 0.05, SinsBoneLesion.MIXED),
        (0.0, 0.05, SinsBoneLesion.BLASTIC),
    ],
)
def test_sins_bone_lesion(fraction: float, blastic: float, expected: SinsBoneLesion) -> None:
    r = risk(lytic=lytic(fraction, blastic=blastic))
    assert r.sins_imaging.bone_lesion is expected
    if blastic:
        assert any(x.startswith("blastic (sclerotic) focus") for x in r.reasons)


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (False, False, SinsPosterolateral.NONE),
        (True, False, SinsPosterolateral.UNILATERAL),
        (False, True, SinsPosterolateral.UNILATERAL),
        (True, True, SinsPosterolateral.BILATERAL),
    ],
)
def test_sins_posterolateral(left: bool, right: bool, expected: SinsPosterolateral) -> None:
    r = risk(lytic=lytic(0.1, left=left, right=right))
    assert r.sins_imaging.posterolateral is expected
    if left and right:
        assert "pedicle involved: left and right" in r.reasons


def test_sins_collapse_and_points() -> None:
    # > 50% of the body involved, no collapse -> 1 point; lytic 2; L1 junctional 3; bilateral 3
    r = risk("L1", lytic=lytic(0.6, left=True, right=True))
    part = r.sins_imaging
    assert part.collapse is SinsCollapse.NO_COLLAPSE_OVER_50_PCT_INVOLVED
    assert part.points == 3 + 2 + 1 + 3
    assert part.possible_total_range == (9, 16)
    g = assess_vertebra(anterior_mm=10.0, middle_mm=25.0, posterior_mm=25.0)  # 60% loss
    assert risk(genant=g).sins_imaging.collapse is SinsCollapse.OVER_50_PCT
    g = assess_vertebra(anterior_mm=18.0, middle_mm=25.0, posterior_mm=25.0)  # 28%
    assert risk(genant=g).sins_imaging.collapse is SinsCollapse.UNDER_50_PCT


def test_end_to_end_on_a_synthetic_vertebra() -> None:
    from _lesions_support import Sphere, make_vertebra

    from spinewatch.imaging.cement import detect_cement
    from spinewatch.imaging.density import trabecular_density
    from spinewatch.imaging.lesions import detect_lytic_lesions

    syn = make_vertebra(level="L2", noise_hu_sd=15.0, lesions=(Sphere(11.5, (0, -3, 0)),))
    d = trabecular_density(syn.hu, syn.region)
    f = detect_lytic_lesions(syn.hu, syn.region, density=d)
    c = detect_cement(syn.hu, syn.region)
    r = assess_collapse_risk(level="L2", genant=NORMAL, lytic=f, density=d, cement=c)
    assert f.fraction > 0.2
    assert r.risk in (CollapseRisk.MODERATE, CollapseRisk.HIGH)
    assert r.sins_imaging.bone_lesion is SinsBoneLesion.LYTIC


# --- not assessable: unmeasured is never shown as safe ------------------------------------------


def test_rank_orders_not_assessable_between_low_and_moderate() -> None:
    ordered = sorted(CollapseRisk, key=lambda r: r.rank)
    assert ordered == [
        CollapseRisk.LOW,
        CollapseRisk.NOT_ASSESSABLE,
        CollapseRisk.MODERATE,
        CollapseRisk.HIGH,
    ]
    assert all(CollapseRisk.from_rank(r.rank) is r for r in CollapseRisk)
    assert CollapseRisk.from_rank(9) is CollapseRisk.HIGH
    assert CollapseRisk.NOT_ASSESSABLE.label == "Not assessable"


def test_truncated_vertebra_is_not_assessable_with_why() -> None:
    r = risk(genant=None, truncated=True)
    assert r.risk is CollapseRisk.NOT_ASSESSABLE
    assert r.reasons[0] == "not assessable: heights not measured (vertebra cut by the scan edge)"
    assert r.not_measured == ("heights not measured (vertebra cut by the scan edge)",)
    assert r.sins_imaging.collapse is SinsCollapse.NOT_ASSESSED


def test_unreliable_frame_is_not_assessable_even_with_heights() -> None:
    r = risk(quality_flags=("frame_unreliable",))
    assert r.risk is CollapseRisk.NOT_ASSESSABLE
    assert "heights not reliable" in r.reasons[0]
    assert r.reasons[1] == "no lytic lesion and no deformity found"
    # other quality flags do not hide a measurement (they lower the confidence instead)
    assert risk(quality_flags=("touches_scan_edge", "coarse_slices")).risk is CollapseRisk.LOW


def test_evidence_still_counts_when_something_is_missing() -> None:
    r = risk("L2", genant=None, truncated=True, lytic=lytic(0.5))
    assert r.risk is CollapseRisk.HIGH
    assert "lytic 50% of body (>= 35%; T10-L5, Taneichi 1997: 35-40%)" in r.reasons
    assert "also not measured: heights not measured (vertebra cut by the scan edge)" in r.reasons
    d = TrabecularDensity(median_hu=95.0, mean_hu=95.0, n_voxels=100, erosion_mm=4.0, flags=())
    assert risk(genant=None, truncated=True, density=d).risk is CollapseRisk.MODERATE


def test_density_not_measurable_on_a_ct_is_not_assessable_unless_cemented() -> None:
    r = risk(density=None)
    assert r.risk is CollapseRisk.NOT_ASSESSABLE
    assert "trabecular density not measured (too few trabecular voxels)" in r.reasons[0]
    cement = CementFindings(volume_ml=4.0, present=True, max_hu=2800.0)
    treated = risk(density=None, cement=cement)
    assert treated.risk is CollapseRisk.LOW and treated.not_measured == ()


def test_mri_gives_geometry_only() -> None:
    from spinewatch.core.acquisition import MRI_NOT_ASSESSED, Acquisition

    mri = Acquisition(modality="MR")
    # values measured on MRI signal are not HU: never used, even when a caller passes them
    r = risk(acquisition=mri, density=DENSE, lytic=lytic(0.6))
    assert r.risk is CollapseRisk.NOT_ASSESSABLE
    assert r.reasons[0] == (
        f"not assessable: trabecular density and lytic lesions: {MRI_NOT_ASSESSED}"
    )
    assert r.sins_imaging.bone_lesion is SinsBoneLesion.NOT_ASSESSED
    # a fracture seen on MRI is still high: the geometry is measured
    g = assess_vertebra(anterior_mm=14.0, middle_mm=25.0, posterior_mm=25.0)
    r = risk(acquisition=mri, genant=g, density=None, lytic=None, cement=None)
    assert r.risk is CollapseRisk.HIGH
    assert r.reasons[-2].startswith("also not measured: trabecular density and lytic lesions")


@pytest.mark.parametrize(
    ("phase", "hu", "expected", "snippet"),
    [
        ("native", 125.0, CollapseRisk.LOW, "trabecular 125 HU (<= 145 HU fracture-risk"),
        (
            "arterial",
            125.0,
            CollapseRisk.MODERATE,
            "trabecular 125 HU (<= 130 HU = 110 + 20 HU arterial contrast: osteoporosis",
        ),
        (
            "contrast_unknown_phase",
            130.0,
            CollapseRisk.MODERATE,
            "(<= 130 HU = 110 + 20 HU contrast, phase unknown: osteoporosis",
        ),
        (
            "portal_venous",
            125.0,
            CollapseRisk.LOW,
            "trabecular 125 HU (<= 159.75 HU = 145 + 14.75 HU portal-venous contrast",
        ),
        ("portal_venous", 124.75, CollapseRisk.MODERATE, "(<= 124.75 HU = 110 + 14.75 HU"),
        ("arterial", 166.0, CollapseRisk.LOW, None),
    ],
)
def test_contrast_phase_raises_the_density_thresholds(
    phase: str, hu: float, expected: CollapseRisk, snippet: str | None
) -> None:
    from spinewatch.core.acquisition import Acquisition

    d = TrabecularDensity(median_hu=hu, mean_hu=hu, n_voxels=100, erosion_mm=4.0, flags=())
    r = risk(density=d, acquisition=Acquisition(contrast_phase=phase))
    assert r.risk is expected
    if snippet is None:
        assert not any("trabecular" in x for x in r.reasons)
    else:
        assert any(snippet in x for x in r.reasons), r.reasons
