"""Whole-spine Genant grading: reference from unfractured neighbours, level normal shapes, and
the false-positive / detection rates on spines simulated from the normative distributions.

Simulated spines (seeded): posterior heights follow the normal level-to-level steps with the
tabulated SD, each body's Ha/Hp and Hm/walls are drawn from its level's normal distribution
(:mod:`spinewatch.core.vertebral_shape`), and every height gets Gaussian measurement noise --
the generator is :mod:`spinewatch.validation.simulated_spines`, which ``make validate`` uses too.
Figures measured with this file (400 spines):

* healthy T9-L5 (levels with published ratios), 3600 vertebrae graded >= 1: 0.1 % at 0.5 mm
  noise, 1.1 % at 1.0 mm, 5.1 % at 1.5 mm (3 mm slices);
* healthy T4-L5 (T4-T8 use the wider fallback SD), 5600 vertebrae: 0.6 %, 2.5 %, 8.1 %;
* fractures of 25-50 % relative to the body's own normal shape, one or two adjacent: detected
  (grade >= 1) 98.7 % / 97.8 % / 96.7 % at 0.5 / 1.0 / 1.5 mm; the misses are 25-30 % losses
  on bodies whose own shape was on the generous side of normal.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from spinewatch.core.genant import DeformityType, GenantGrade
from spinewatch.core.levels import VertebralLevel
from spinewatch.core.vertebral_shape import COLUMN_FRACTIONS
from spinewatch.imaging.grading import expected_posterior_mm, grade_spine
from spinewatch.imaging.heights import COLUMN_FRACTIONS as MEASURED_AT
from spinewatch.validation.simulated_spines import (
    PUBLISHED,
    THORACOLUMBAR,
    healthy_rate,
    normal_spine,
    simulated_fractures,
)
from spinewatch.validation.simulated_spines import SimHeights as H
from spinewatch.validation.simulated_spines import deform_heights as deform

V = VertebralLevel


def expected_grade(loss_pct: float) -> GenantGrade:
    return GenantGrade.from_height_loss_pct(loss_pct)


def test_measuring_columns_match_the_normative_conversion() -> None:
    assert (MEASURED_AT[0], MEASURED_AT[2]) == COLUMN_FRACTIONS


def test_normal_spine_with_l5_and_mid_thoracic_shapes_is_all_grade_0() -> None:
    spine = normal_spine(THORACOLUMBAR)
    grades = grade_spine(spine)
    assert all(g.assessment.grade is GenantGrade.NORMAL for g in grades.values())
    assert spine[V.L5].anterior_mm > 1.08 * spine[V.L5].posterior_mm
    assert spine[V.T7].anterior_mm < 0.95 * spine[V.T7].posterior_mm


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("crush", 0.30), ("crush", 0.45)),
        (("crush", 0.30), ("wedge", 0.45)),
        (("wedge", 0.32), ("crush", 0.32)),
        (("biconcave", 0.30), ("crush", 0.30)),
        (("crush", 0.45), ("crush", 0.30)),
    ],
)
def test_two_adjacent_fractures_are_both_graded(
    first: tuple[str, float], second: tuple[str, float]
) -> None:
    """A grade-2 fracture next to another fracture: the reference comes from the unfractured
    vertebrae beyond, not from the collapsed neighbour."""
    spine = normal_spine(THORACOLUMBAR)
    for lv, (kind, loss) in ((V.T12, first), (V.L1, second)):
        spine[lv] = deform(spine[lv], kind, loss)
    grades = grade_spine(spine)
    for lv, (kind, loss) in ((V.T12, first), (V.L1, second)):
        a = grades[lv].assessment
        assert a.grade is expected_grade(100 * loss), (lv, a)
        assert a.deformity.value == kind, (lv, a)
        assert a.height_loss_pct == pytest.approx(100 * loss, abs=0.5)
        assert not {V.T12, V.L1} & set(grades[lv].reference_levels)
    for lv in THORACOLUMBAR:
        if lv not in (V.T12, V.L1):
            assert grades[lv].assessment.grade is GenantGrade.NORMAL, lv


def test_three_adjacent_crushes_use_the_levels_beyond() -> None:
    spine = normal_spine(THORACOLUMBAR)
    for lv in (V.T11, V.T12, V.L1):
        spine[lv] = deform(spine[lv], "crush", 0.35)
    grades = grade_spine(spine)
    for lv in (V.T11, V.T12, V.L1):
        a = grades[lv].assessment
        assert (a.grade, a.deformity) == (GenantGrade.MODERATE, DeformityType.CRUSH), lv
        assert a.height_loss_pct == pytest.approx(35.0, abs=0.5)
    # the middle one is predicted from two levels away on both sides
    assert grades[V.T12].reference_levels == (V.T10, V.L2)


def test_expected_posterior_scales_and_interpolates() -> None:
    spine = normal_spine(THORACOLUMBAR)
    post = {lv: h.posterior_mm for lv, h in spine.items()}
    # both sides: the true normal height, whatever the growth between levels
    ref, used = expected_posterior_mm(V.T12, post)
    assert ref == pytest.approx(post[V.T12]) and used == (V.T11, V.L1)
    # one side only (L1 and L2 excluded): T11 and T10 scaled up by the normal steps
    ref, used = expected_posterior_mm(V.T12, post, exclude=frozenset({V.L1, V.L2}))
    assert ref == pytest.approx(post[V.T12]) and used == (V.T11,)
    # distance weighting: T11 at 1, L2 at 2 (L1 excluded)
    post2 = dict(post)
    post2[V.T11] *= 1.03
    ref, _ = expected_posterior_mm(V.T12, post2, exclude=frozenset({V.L1}))
    assert ref == pytest.approx(post[V.T12] * (2 * 1.03 + 1) / 3)
    # disagreeing sides: the robust (taller) reference
    post3 = dict(post)
    post3[V.T11] *= 0.6
    ref, used = expected_posterior_mm(V.T12, post3)
    assert ref == pytest.approx(post[V.T12]) and V.T11 not in used
    # a further, clearly taller neighbour on the same side beats a lower near one
    ref, used = expected_posterior_mm(V.T12, post3, exclude=frozenset({V.L1, V.L2}))
    assert used == (V.T10,) and ref == pytest.approx(post[V.T12])
    assert expected_posterior_mm(V.T12, {V.T12: 20.0}) == (None, ())


def test_truncated_vertebrae_are_skipped() -> None:
    spine: dict[V, H | None] = dict(normal_spine((V.T12, V.L1, V.L2)))
    spine[V.T12] = None
    grades = grade_spine(spine)
    assert set(grades) == {V.L1, V.L2}
    assert grades[V.L1].reference_levels == (V.L2,)


# -- simulated populations (spinewatch.validation.simulated_spines) --------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("levels", "noise_mm", "limit"),
    [
        (PUBLISHED, 0.5, 0.005),
        (PUBLISHED, 1.0, 0.02),
        (THORACOLUMBAR, 0.5, 0.01),
        (THORACOLUMBAR, 1.0, 0.03),
    ],
)
def test_simulated_healthy_spines_are_rarely_graded(
    levels: Sequence[V], noise_mm: float, limit: float
) -> None:
    rate, n = healthy_rate(levels, noise_mm)
    assert n == 400 * len(levels)
    assert rate <= limit


@pytest.mark.slow
def test_simulated_fractures_are_detected() -> None:
    """Grade >= 2 deformities (25-50 % relative to the body's own normal shape), alone or next
    to another, with 1 mm measurement noise: >= 96 % graded as fractures, every one from 33 %."""
    fractures = simulated_fractures(400, 1.0)
    assert any(f.adjacent for f in fractures) and any(not f.adjacent for f in fractures)
    for f in fractures:
        assert f.true_grade >= GenantGrade.MODERATE
        if f.loss >= 0.33:
            assert f.assessment.grade >= GenantGrade.MILD, f
    detected = sum(f.assessment.is_fracture for f in fractures)
    assert detected / len(fractures) >= 0.96
