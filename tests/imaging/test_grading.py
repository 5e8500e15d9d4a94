"""Whole-spine Genant grading: reference from unfractured neighbours, level normal shapes, and
the false-positive / detection rates on spines simulated from the normative distributions.

Simulated spines (seeded): posterior heights follow the normal level-to-level steps with the
tabulated SD, each body's Ha/Hp and Hm/walls are drawn from its level's normal distribution
(:mod:`spinewatch.core.vertebral_shape`), and every height gets Gaussian measurement noise.
Figures measured with this file (400 spines):

* healthy T9-L5 (levels with published ratios), 3600 vertebrae graded >= 1: 0.1 % at 0.5 mm
  noise, 1.1 % at 1.0 mm, 5.1 % at 1.5 mm (3 mm slices);
* healthy T4-L5 (T4-T8 use the wider fallback SD), 5600 vertebrae: 0.6 %, 2.5 %, 8.1 %;
* fractures of 25-50 % relative to the body's own normal shape, one or two adjacent: detected
  (grade >= 1) 98.7 % / 97.8 % / 96.7 % at 0.5 / 1.0 / 1.5 mm; the misses are 25-30 % losses
  on bodies whose own shape was on the generous side of normal.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from spinewatch.core.genant import DeformityType, GenantGrade
from spinewatch.core.levels import VertebralLevel
from spinewatch.core.vertebral_shape import COLUMN_FRACTIONS, normal_shape, posterior_scale
from spinewatch.imaging.grading import expected_posterior_mm, grade_spine
from spinewatch.imaging.heights import COLUMN_FRACTIONS as MEASURED_AT

V = VertebralLevel
PUBLISHED = tuple(V[x] for x in ("T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"))
THORACOLUMBAR = tuple(V[f"T{i}"] for i in range(4, 9)) + PUBLISHED


@dataclass(frozen=True)
class H:
    anterior_mm: float
    middle_mm: float
    posterior_mm: float


def normal_heights(level: V, posterior_mm: float) -> H:
    """The mean normal body of ``level`` with this posterior height."""
    shape = normal_shape(level)
    ha = shape.anterior_ratio.mean * posterior_mm
    return H(ha, shape.middle_ratio.mean * (ha + posterior_mm) / 2, posterior_mm)


def normal_spine(levels: Sequence[V], l1_posterior_mm: float = 27.0) -> dict[V, H]:
    return {lv: normal_heights(lv, l1_posterior_mm * posterior_scale("L1", lv)) for lv in levels}


def deform(h: H, kind: str, loss: float) -> H:
    """``h`` with a deformity of ``loss`` (fraction) relative to it (as the phantom draws it)."""
    if kind == "wedge":
        return H(h.anterior_mm * (1 - loss), h.middle_mm * (1 - loss / 2), h.posterior_mm)
    if kind == "biconcave":
        return H(h.anterior_mm, h.middle_mm * (1 - loss), h.posterior_mm)
    return H(h.anterior_mm * (1 - loss), h.middle_mm * (1 - loss), h.posterior_mm * (1 - loss))


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


# -- simulated populations -----------------------------------------------------------------


def _simulated_spine(rng: random.Random, levels: Sequence[V]) -> dict[V, list[float]]:
    base_l1 = rng.gauss(27.0, 2.0)
    out = {}
    for lv in levels:
        shape = normal_shape(lv)
        # independent per-level deviation whose adjacent ratio has the tabulated step SD
        hp = (
            base_l1
            * posterior_scale("L1", lv)
            * (1 + rng.gauss(0, shape.posterior_step.sd / 2**0.5))
        )
        ha = hp * rng.gauss(shape.anterior_ratio.mean, shape.anterior_ratio.sd)
        hm = (ha + hp) / 2 * rng.gauss(shape.middle_ratio.mean, shape.middle_ratio.sd)
        out[lv] = [ha, hm, hp]
    return out


def _measured(rng: random.Random, spine: dict[V, list[float]], noise_mm: float) -> dict[V, H]:
    return {lv: H(*(x + rng.gauss(0, noise_mm) for x in v)) for lv, v in spine.items()}


def _healthy_rate(levels: Sequence[V], noise_mm: float, n_spines: int = 400) -> float:
    rng = random.Random(7)
    n = positives = 0
    for _ in range(n_spines):
        grades = grade_spine(_measured(rng, _simulated_spine(rng, levels), noise_mm))
        n += len(grades)
        positives += sum(g.assessment.is_fracture for g in grades.values())
    return positives / n


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
    assert _healthy_rate(levels, noise_mm) <= limit


@pytest.mark.slow
def test_simulated_fractures_are_detected() -> None:
    """Grade >= 2 deformities (25-50 % relative to the body's own normal shape), alone or next
    to another, with 1 mm measurement noise: >= 96 % graded as fractures, every one from 33 %."""
    rng = random.Random(11)
    total = detected = 0
    for _ in range(400):
        spine = _simulated_spine(rng, PUBLISHED)
        i = rng.randrange(1, len(PUBLISHED) - 2)
        targets = [PUBLISHED[i]] + ([PUBLISHED[i + 1]] if rng.random() < 0.5 else [])
        truth = {}
        for lv in targets:
            kind, loss = rng.choice(["wedge", "biconcave", "crush"]), rng.uniform(0.25, 0.5)
            d = deform(H(*spine[lv]), kind, loss)
            spine[lv] = [d.anterior_mm, d.middle_mm, d.posterior_mm]
            truth[lv] = loss
        grades = grade_spine(_measured(rng, spine, 1.0))
        for lv, loss in truth.items():
            total += 1
            detected += grades[lv].assessment.is_fracture
            if loss >= 0.33:
                assert grades[lv].assessment.grade >= GenantGrade.MILD, (lv, loss)
    assert detected / total >= 0.96
