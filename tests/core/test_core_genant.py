"""Genant grading: grade boundaries, deformity type, level normal shapes, reference height,
bad input."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from spinewatch.core.genant import (
    NEIGHBOUR_TOLERANCE,
    DeformityType,
    GenantAssessment,
    GenantError,
    GenantGrade,
    assess_vertebra,
    height_loss_pct,
    reference_height_mm,
)
from spinewatch.core.levels import LevelError, VertebralLevel
from spinewatch.core.vertebral_shape import normal_shape

G = GenantGrade
D = DeformityType


@pytest.mark.parametrize(
    ("pct", "grade"),
    [
        (-35.0, G.NORMAL),
        (0.0, G.NORMAL),
        (19.99, G.NORMAL),
        (19.999999, G.NORMAL),
        (20.0, G.MILD),
        (24.99, G.MILD),
        (25.0, G.MODERATE),
        (32.0, G.MODERATE),
        (40.0, G.MODERATE),
        (40.01, G.SEVERE),
        (99.9, G.SEVERE),
        (100.0, G.SEVERE),
        (20, G.MILD),
    ],
)
def test_grade_boundaries(pct: float, grade: GenantGrade) -> None:
    assert GenantGrade.from_height_loss_pct(pct) is grade


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 100.01, "30", None, True])
def test_grade_rejects(bad: object) -> None:
    with pytest.raises(GenantError) as info:
        GenantGrade.from_height_loss_pct(bad)  # type: ignore[arg-type]
    assert "height_loss_pct" in str(info.value) and repr(bad) in str(info.value)


def test_grade_is_int_ordered_and_parses() -> None:
    assert G.SEVERE > G.MODERATE > G.MILD > G.NORMAL
    assert int(G.MODERATE) == 2
    assert G.parse("moderate") is G.MODERATE
    assert G.parse(3) is G.SEVERE
    assert G.parse("1") is G.MILD
    with pytest.raises(GenantError, match="'4'"):
        G.parse("4")
    with pytest.raises(GenantError, match="True"):
        G.parse(True)
    assert D.parse("Wedge") is D.WEDGE
    with pytest.raises(GenantError, match="'flat'"):
        D.parse("flat")


# Posterior 100 mm keeps the arithmetic exact: the anterior height sets the wedge loss.
@pytest.mark.parametrize(
    ("anterior", "grade"),
    [
        (80.01, G.NORMAL),
        (80.0, G.MILD),
        (75.01, G.MILD),
        (75.0, G.MODERATE),
        (60.0, G.MODERATE),
        (59.99, G.SEVERE),
    ],
)
def test_wedge_boundaries_through_heights(anterior: float, grade: GenantGrade) -> None:
    result = assess_vertebra(anterior_mm=anterior, middle_mm=100.0, posterior_mm=100.0)
    assert result.grade is grade
    assert result.deformity is (D.NONE if grade is G.NORMAL else D.WEDGE)
    assert result.wedge_loss_pct == pytest.approx(100.0 - anterior)


@pytest.mark.parametrize(
    ("anterior", "posterior", "loss"),
    [(16.0, 20.0, 20.0), (22.5, 30.0, 25.0), (16.8, 28.0, 40.0), (2.4, 3.0, 20.0)],
)
def test_exact_boundaries_are_not_lost_to_float_noise(
    anterior: float, posterior: float, loss: float
) -> None:
    # 1 - 16/20 is 0.19999999999999996 in floating point; the grade must still be mild.
    result = assess_vertebra(anterior_mm=anterior, middle_mm=posterior, posterior_mm=posterior)
    assert result.height_loss_pct == loss
    assert result.grade is GenantGrade.from_height_loss_pct(loss)


def test_normal_vertebra() -> None:
    result = assess_vertebra(anterior_mm=25.0, middle_mm=24.0, posterior_mm=26.0, reference_mm=26.0)
    # the middle against the mean of the two walls, which agree
    assert result == GenantAssessment(
        grade=G.NORMAL,
        deformity=D.NONE,
        height_loss_pct=pytest.approx(100 * (1 - 24 / 25.5)),  # type: ignore[arg-type]
        wedge_loss_pct=pytest.approx(100 * (1 - 25 / 26)),  # type: ignore[arg-type]
        biconcave_loss_pct=pytest.approx(100 * (1 - 24 / 25.5)),  # type: ignore[arg-type]
        crush_loss_pct=0.0,
        anterior_loss_pct=pytest.approx(100 * (1 - 25 / 26)),  # type: ignore[arg-type]
        middle_loss_pct=pytest.approx(100 * (1 - 24 / 25.5)),  # type: ignore[arg-type]
        posterior_loss_pct=0.0,
        expected_anterior_mm=26.0,
        expected_middle_mm=25.5,
        expected_posterior_mm=26.0,
        level=None,
    )
    assert not result.is_fracture
    assert result.label == "Normal"


def test_biconcave_uses_taller_wall() -> None:
    result = assess_vertebra(anterior_mm=28.0, middle_mm=18.0, posterior_mm=28.0)
    assert (result.grade, result.deformity) == (G.MODERATE, D.BICONCAVE)
    assert result.biconcave_loss_pct == pytest.approx(100 * (1 - 18 / 28))
    # Posterior wall crushed too: Hm/Hp alone (17/20 = 15 %) would hide the central depression;
    # the walls disagree by more than twice the tolerance, so the taller one (less the
    # tolerance) is the reference.
    crushed = assess_vertebra(anterior_mm=28.0, middle_mm=17.0, posterior_mm=20.0)
    assert crushed.biconcave_loss_pct == pytest.approx(100 * (1 - 17 / (0.9 * 28)))
    assert crushed.deformity is D.BICONCAVE
    # walls that agree: their mean (noise averaged, not maximised)
    agree = assess_vertebra(anterior_mm=27.0, middle_mm=18.0, posterior_mm=25.0)
    assert agree.expected_middle_mm == pytest.approx(26.0)


def test_crush_when_all_heights_reduced_against_reference() -> None:
    result = assess_vertebra(anterior_mm=18.0, middle_mm=18.0, posterior_mm=18.0, reference_mm=30.0)
    assert (result.grade, result.deformity) == (G.MODERATE, D.CRUSH)
    assert result.crush_loss_pct == 40.0
    assert result.wedge_loss_pct == 0.0 and result.biconcave_loss_pct == 0.0
    assert result.label == "Moderate crush (40.0 %)"
    # Without the reference the same vertebra looks normal: only neighbours reveal a crush.
    alone = assess_vertebra(anterior_mm=18.0, middle_mm=18.0, posterior_mm=18.0)
    assert (alone.grade, alone.crush_loss_pct) == (G.NORMAL, None)


def test_tie_prefers_crush_then_wedge() -> None:
    # Posterior 30 % short of the neighbours (21 vs 30); the anterior height is then expected
    # from the neighbours less the tolerance (27 mm) and 18.9 mm is 30 % short of it too.
    tie = assess_vertebra(anterior_mm=18.9, middle_mm=24.0, posterior_mm=21.0, reference_mm=30.0)
    assert tie.anterior_loss_pct == pytest.approx(30.0)
    assert tie.posterior_loss_pct == tie.crush_loss_pct == pytest.approx(30.0)
    assert tie.deformity is D.CRUSH
    # wedge vs biconcave tie -> wedge.
    wb = assess_vertebra(anterior_mm=15.0, middle_mm=13.5, posterior_mm=20.0)
    assert wb.wedge_loss_pct == wb.biconcave_loss_pct == 25.0
    assert wb.deformity is D.WEDGE


def test_wedge_beats_smaller_crush() -> None:
    result = assess_vertebra(anterior_mm=13.0, middle_mm=20.0, posterior_mm=27.0, reference_mm=30.0)
    assert (result.grade, result.deformity) == (G.SEVERE, D.WEDGE)
    assert result.crush_loss_pct == pytest.approx(10.0)


def test_posterior_collapse_without_reference_is_crush() -> None:
    result = assess_vertebra(anterior_mm=25.0, middle_mm=24.0, posterior_mm=14.0)
    assert (result.grade, result.deformity) == (G.SEVERE, D.CRUSH)
    assert result.height_loss_pct == pytest.approx(44.0)
    assert result.wedge_loss_pct < 0
    assert result.crush_loss_pct is None


def _walls(a: float, b: float) -> float:
    return max((a + b) / 2, (1 - NEIGHBOUR_TOLERANCE) * max(a, b))


def _independent_rule(
    ha: float, hm: float, hp: float, ref: float | None, r_a: float, r_m: float
) -> tuple[float, DeformityType]:
    """The rule of the module docstring, written out again: each height against its expected
    value; posterior wall taken from the neighbours only beyond the tolerance."""
    p = hp if ref is None else max(hp, (1 - NEIGHBOUR_TOLERANCE) * ref)
    losses = {
        D.CRUSH: (ref - hp) / ref if ref is not None else (ha - hp * r_a) / ha,
        D.WEDGE: (r_a * p - ha) / (r_a * p),
        D.BICONCAVE: 1 - hm / (r_m * (1 + r_a) / 2 * _walls(p, ha / r_a)),
    }
    kind = max(losses, key=lambda k: losses[k])
    if min(losses.values()) >= 0.2:
        kind = D.CRUSH
    return max(0.0, 100 * losses[kind] if kind is not D.CRUSH else 100 * max(losses.values())), kind


@pytest.mark.parametrize("level", [None, "T7", "T12", "L1", "L5", "C4"])
def test_assessment_matches_independent_rule_on_random_heights(level: str | None) -> None:
    rng = random.Random(1993)
    shape = normal_shape(level) if level else None
    r_a = shape.anterior_ratio.mean if shape else 1.0
    r_m = shape.middle_ratio.mean if shape else 1.0
    for _ in range(1500):
        ha, hm, hp = (rng.uniform(5.0, 35.0) for _ in range(3))
        ref = rng.choice([None, rng.uniform(15.0, 35.0)])
        result = assess_vertebra(
            anterior_mm=ha, middle_mm=hm, posterior_mm=hp, reference_mm=ref, level=level
        )
        loss, kind = _independent_rule(ha, hm, hp, ref, r_a, r_m)
        assert result.height_loss_pct == pytest.approx(loss, abs=1e-7)
        expected_grade = (
            G.NORMAL
            if loss < 20
            else G.MILD
            if loss < 25
            else G.MODERATE
            if loss <= 40
            else G.SEVERE
        )
        if min(abs(loss - b) for b in (20, 25, 40)) > 1e-6:
            assert result.grade is expected_grade
            assert result.deformity is (D.NONE if expected_grade is G.NORMAL else kind)
        assert result.height_loss_pct >= 0
        assert (result.crush_loss_pct is None) == (ref is None)
        assert result.wedge_loss_pct == pytest.approx(100 * (1 - ha / (r_a * hp)), abs=1e-7)


def test_normal_l5_is_taller_in_front_and_not_a_crush() -> None:
    """L5 is normally taller in front (Cook & Baker 2021: 30.3 vs 26.3 mm); graded against a
    rectangle that "reverse wedge" reads as a posterior collapse."""
    rect = assess_vertebra(anterior_mm=30.3, middle_mm=26.0, posterior_mm=24.0)
    assert (rect.grade, rect.deformity) == (G.MILD, D.CRUSH)  # 1 - 24 / 30.3 = 20.8 %
    l5 = assess_vertebra(anterior_mm=30.3, middle_mm=26.0, posterior_mm=24.0, level="L5")
    assert l5.grade is G.NORMAL and l5.height_loss_pct < 15
    # a real L5 wedge: anterior 30 % below what an L5 with this posterior wall should have
    r_a = normal_shape("L5").anterior_ratio.mean
    wedge = assess_vertebra(
        anterior_mm=0.7 * r_a * 26.0, middle_mm=25.0, posterior_mm=26.0, level="L5"
    )
    assert (wedge.grade, wedge.deformity) == (G.MODERATE, D.WEDGE)
    assert wedge.anterior_loss_pct == pytest.approx(30.0)
    assert wedge.expected_anterior_mm == pytest.approx(r_a * 26.0)


def test_mid_thoracic_normal_wedge_is_not_a_fracture() -> None:
    """A 0.80 Ha/Hp is a mild wedge against a rectangle but only ~15 % short of the
    mid-thoracic normal shape."""
    rect = assess_vertebra(anterior_mm=16.0, middle_mm=18.0, posterior_mm=20.0)
    assert rect.grade is G.MILD
    t7 = assess_vertebra(anterior_mm=16.0, middle_mm=18.0, posterior_mm=20.0, level="T7")
    assert t7.grade is G.NORMAL
    assert t7.wedge_loss_pct == pytest.approx(
        100 * (1 - 0.8 / normal_shape("T7").anterior_ratio.mean)
    )
    assert t7.level is VertebralLevel.T7


def test_normal_endplate_concavity_is_expected_in_the_middle() -> None:
    # Hm = 0.80 of the walls: 20 % biconcave against flat endplates, ~13 % against the normal
    flat = assess_vertebra(anterior_mm=27.0, middle_mm=21.6, posterior_mm=27.0)
    assert (flat.grade, flat.deformity) == (G.MILD, D.BICONCAVE)
    l3 = assess_vertebra(anterior_mm=27.0, middle_mm=21.6, posterior_mm=27.0, level="L3")
    assert l3.grade is G.NORMAL
    r_a, r_m = (normal_shape("L3").anterior_ratio.mean, normal_shape("L3").middle_ratio.mean)
    assert l3.expected_middle_mm == pytest.approx(r_m * (1 + r_a) / 2 * (27.0 + 27.0 / r_a) / 2)


def test_posterior_wall_within_tolerance_anchors_its_own_vertebra() -> None:
    # posterior 5 % short of the neighbours: still the vertebra's own anchor
    own = assess_vertebra(anterior_mm=15.2, middle_mm=19.0, posterior_mm=19.0, reference_mm=20.0)
    assert own.expected_anterior_mm == 19.0 and own.anterior_loss_pct == pytest.approx(20.0)
    # posterior 25 % short: the neighbours (less the tolerance) set the expected anterior height
    low = assess_vertebra(anterior_mm=12.0, middle_mm=15.0, posterior_mm=15.0, reference_mm=20.0)
    assert low.expected_anterior_mm == pytest.approx((1 - NEIGHBOUR_TOLERANCE) * 20.0)
    assert low.anterior_loss_pct == pytest.approx(100 * (1 - 12 / 18))
    assert low.wedge_loss_pct == pytest.approx(20.0)  # within the vertebra: 12 vs 15
    assert low.crush_loss_pct == pytest.approx(25.0)
    assert (low.grade, low.deformity) == (G.MODERATE, D.WEDGE)


def test_every_height_reduced_is_a_crush_whichever_is_lowest() -> None:
    # all three heights >= 20 % short; the middle the most: compressed as a whole
    r = assess_vertebra(anterior_mm=12.0, middle_mm=10.0, posterior_mm=15.0, reference_mm=26.0)
    assert min(r.anterior_loss_pct, r.middle_loss_pct, r.posterior_loss_pct) >= 20  # type: ignore[type-var]
    assert r.middle_loss_pct == r.height_loss_pct
    assert (r.grade, r.deformity) == (G.SEVERE, D.CRUSH)


def test_unknown_level_is_refused() -> None:
    with pytest.raises(LevelError, match="X9"):
        assess_vertebra(anterior_mm=20.0, middle_mm=20.0, posterior_mm=20.0, level="X9")


@pytest.mark.parametrize("field", ["anterior_mm", "middle_mm", "posterior_mm", "reference_mm"])
@pytest.mark.parametrize("bad", [0.0, -3.0, math.nan, math.inf, "20", True])
def test_bad_heights_name_field_and_value(field: str, bad: object) -> None:
    heights: dict[str, object] = {
        "anterior_mm": 20.0,
        "middle_mm": 20.0,
        "posterior_mm": 20.0,
        "reference_mm": 20.0,
    }
    heights[field] = bad
    with pytest.raises(GenantError) as info:
        assess_vertebra(**heights)  # type: ignore[arg-type]
    assert field in str(info.value) and repr(bad) in str(info.value)


def test_height_loss_pct() -> None:
    assert height_loss_pct(16.0, 20.0) == 20.0
    assert height_loss_pct(30.0, 20.0) == -50.0
    with pytest.raises(GenantError, match="reference_mm"):
        height_loss_pct(10.0, 0.0)


@pytest.mark.parametrize(
    ("heights", "expected"),
    [
        ([], None),
        ([27.0], 27.0),
        ([30.0, 15.0], 30.0),  # one fractured neighbour ignored
        ([15.0, 30.0], 30.0),
        ([28.0, 30.0, 14.0], 29.0),
        ([26.0, 28.0, 30.0, 10.0], 29.0),
        ([20.0, 22.0, 24.0, 26.0, 28.0], 26.0),
        ((25, 27), 27.0),
    ],
)
def test_reference_height(heights: list[float], expected: float | None) -> None:
    assert reference_height_mm(heights) == expected


def test_reference_robust_to_one_fractured_neighbour() -> None:
    healthy = [28.0, 29.0, 30.0, 31.0]
    for n in range(2, 5):
        for subset in itertools.combinations(healthy, n):
            clean = reference_height_mm(subset)
            assert clean is not None
            for i in range(n):
                damaged = list(subset)
                damaged[i] = subset[i] * 0.4  # one neighbour crushed
                ref = reference_height_mm(damaged)
                assert ref is not None
                assert min(subset) <= ref <= max(subset)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, "x"])
def test_reference_rejects_bad_heights(bad: object) -> None:
    with pytest.raises(GenantError, match=r"neighbour_heights_mm\[1\]"):
        reference_height_mm([25.0, bad])  # type: ignore[list-item]
