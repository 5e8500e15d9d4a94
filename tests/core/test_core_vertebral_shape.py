"""The normal vertebral shapes: published figures as published, conversions, fallbacks."""

from __future__ import annotations

import math

import pytest

from spinewatch.core.levels import ALL_LEVELS, LevelError, VertebralLevel
from spinewatch.core.vertebral_shape import (
    SOURCES,
    column_ratio,
    normal_shape,
    posterior_scale,
    posterior_step,
)


@pytest.mark.parametrize(
    ("level", "mean", "sd"),
    [("T10", 0.92, 0.08), ("T11", 0.92, 0.08), ("T12", 0.90, 0.06), ("L1", 0.89, 0.06),
     ("L2", 0.90, 0.07)],
)  # fmt: skip
def test_thoracolumbar_corner_ratios_are_the_published_ones(level: str, mean: float, sd: float):
    corner = normal_shape(level).corner_ratio
    assert (corner.mean, corner.sd, corner.n) == (mean, sd, 115)
    assert corner.published and corner.source == "SRA2011"


def test_l5_from_cook_and_baker_and_the_wedge_angle_conversion_agrees() -> None:
    corner = normal_shape("L5").corner_ratio
    assert corner.mean == pytest.approx(30.3 / 26.3)
    assert corner.sd == pytest.approx(30.3 / 26.3 * math.hypot(1.9 / 30.3, 1.9 / 26.3))
    # the wedge-angle route used for T9, L3, L4, checked on L5: -6.2 degrees -> 1.147
    via_angle = 1 - 35.7 / 26.3 * math.tan(math.radians((-7.8 - 4.6) / 2))
    assert via_angle == pytest.approx(corner.mean, abs=0.01)
    assert normal_shape("L4").corner_ratio.mean == pytest.approx(
        1 - 35.7 / 26.3 * math.tan(math.radians(-1.9))
    )


def test_column_conversion() -> None:
    assert column_ratio(1.0) == 1.0
    assert column_ratio(0.9) == pytest.approx((1 - 0.085) / (1 - 0.015))
    # the columns at 15/85 % see 70 % of a linear corner-to-corner difference, roughly
    for r in (0.85, 0.92, 1.05, 1.15):
        assert abs(column_ratio(r) - 1) == pytest.approx(0.7 * abs(r - 1), rel=0.12)
    l5 = normal_shape("L5")
    assert l5.anterior_ratio.mean == pytest.approx(column_ratio(l5.corner_ratio.mean))
    assert l5.anterior_ratio.sd < l5.corner_ratio.sd


def test_every_level_has_a_shape_and_fallbacks_say_so() -> None:
    for lv in ALL_LEVELS:
        shape = normal_shape(lv)
        for ratio in (shape.anterior_ratio, shape.middle_ratio, shape.posterior_step):
            assert 0.7 < ratio.mean < 1.3 and 0 < ratio.sd < 0.2
            assert ratio.source
            if ratio.published:
                assert any(key in ratio.source for key in SOURCES), ratio.source
            else:
                assert "no published figure" in ratio.source
    unpublished = {"C1", "C4", "C7", "T1", "T5", "T8", "S1"}
    for name in unpublished:
        assert not normal_shape(name).corner_ratio.published, name
    assert normal_shape("T7").corner_ratio.sd > normal_shape("T9").corner_ratio.sd
    assert normal_shape("T13").corner_ratio == normal_shape("T12").corner_ratio
    assert normal_shape("L6").corner_ratio == normal_shape("L5").corner_ratio


def test_middle_ratio_is_the_published_lumbar_concavity() -> None:
    mid = normal_shape("L3").middle_ratio
    assert mid.mean == pytest.approx(1 - 2.2 / ((30.3 + 26.3) / 2))
    assert mid.published and not normal_shape("T7").middle_ratio.published


def test_posterior_steps_and_scales() -> None:
    palm = 1 + (6.63 + 6.48) / 200
    for name in ("T10", "T11", "T12", "L1"):
        assert posterior_step(name).mean == pytest.approx(palm) and posterior_step(name).published
    assert posterior_step("L3").mean == 1.0 and not posterior_step("L3").published
    assert posterior_scale("T12", "L1") == pytest.approx(palm)
    assert posterior_scale("L1", "T12") == pytest.approx(1 / palm)
    assert posterior_scale("T9", "L2") == pytest.approx(palm**4)
    assert posterior_scale("L2", "L2") == 1.0
    # T13 counts only when it is one of the two levels
    assert posterior_scale("T12", "L1") == posterior_scale(VertebralLevel.T12, "L1")
    assert posterior_scale("T13", "L1") == pytest.approx(palm)


def test_unknown_level_is_refused() -> None:
    with pytest.raises(LevelError, match="X9"):
        normal_shape("X9")
