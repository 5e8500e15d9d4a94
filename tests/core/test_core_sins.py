"""SINS: component points, totals against brute force, category bounds, collapse rule."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from spinewatch.core.levels import SinsLocation, VertebralLevel
from spinewatch.core.sins import (
    SinsAlignment,
    SinsBoneLesion,
    SinsCategory,
    SinsCollapse,
    SinsError,
    SinsImagingPart,
    SinsPain,
    SinsPosterolateral,
    SinsScore,
    sins_collapse_from,
)

# Fisher 2010 points, written out by hand.
POINTS = {
    SinsPain.MECHANICAL: 3,
    SinsPain.OCCASIONAL_NON_MECHANICAL: 1,
    SinsPain.NONE: 0,
    SinsBoneLesion.LYTIC: 2,
    SinsBoneLesion.MIXED: 1,
    SinsBoneLesion.BLASTIC: 0,
    SinsBoneLesion.NONE_FOUND: 0,
    SinsBoneLesion.NOT_ASSESSED: 0,
    SinsAlignment.SUBLUXATION_TRANSLATION: 4,
    SinsAlignment.DE_NOVO_DEFORMITY: 2,
    SinsAlignment.NORMAL: 0,
    SinsCollapse.OVER_50_PCT: 3,
    SinsCollapse.UNDER_50_PCT: 2,
    SinsCollapse.NO_COLLAPSE_OVER_50_PCT_INVOLVED: 1,
    SinsCollapse.NONE: 0,
    SinsCollapse.NOT_ASSESSED: 0,
    SinsPosterolateral.BILATERAL: 3,
    SinsPosterolateral.UNILATERAL: 1,
    SinsPosterolateral.NONE: 0,
    SinsPosterolateral.NOT_ASSESSED: 0,
}
#: What a component not assessed may still score (Fisher 2010: its highest value).
MAX_IF_UNASSESSED = {SinsBoneLesion: 2, SinsCollapse: 3, SinsPosterolateral: 3}


def assessed(enum_cls):  # type: ignore[no-untyped-def]
    return [m for m in enum_cls if getattr(m, "assessed", True)]


ENUMS = (SinsPain, SinsBoneLesion, SinsAlignment, SinsCollapse, SinsPosterolateral)


@pytest.mark.parametrize("member", list(POINTS))
def test_points_and_string_values(member: SinsPain) -> None:
    assert member.points == POINTS[member]
    assert isinstance(member.value, str) and member.value == member.value.lower()
    assert json.loads(json.dumps(member.value)) == member.value
    assert type(member).parse(member.value) is member
    assert type(member).parse(member.name.title()) is member
    assert member.label


def test_every_enum_covered() -> None:
    assert {m for e in ENUMS for m in e} == set(POINTS)


@pytest.mark.parametrize("enum_cls", ENUMS)
def test_parse_rejects_with_choices(enum_cls: type[SinsPain]) -> None:
    with pytest.raises(SinsError) as info:
        enum_cls.parse("sometimes")
    assert "'sometimes'" in str(info.value)
    assert repr(next(iter(enum_cls)).value) in str(info.value)


@pytest.mark.parametrize(
    ("total", "category"),
    [
        (0, SinsCategory.STABLE),
        (6, SinsCategory.STABLE),
        (7, SinsCategory.POTENTIALLY_UNSTABLE),
        (12, SinsCategory.POTENTIALLY_UNSTABLE),
        (13, SinsCategory.UNSTABLE),
        (18, SinsCategory.UNSTABLE),
    ],
)
def test_category_bounds(total: int, category: SinsCategory) -> None:
    assert SinsCategory.from_total(total) is category
    low, high = category.total_range
    assert low <= total <= high


@pytest.mark.parametrize("bad", [-1, 19, 7.0, "7", True, None])
def test_category_rejects(bad: object) -> None:
    with pytest.raises(SinsError, match=f"SINS total {bad!r}.*0 to 18"):
        SinsCategory.from_total(bad)  # type: ignore[arg-type]


def test_all_combinations_total_and_category() -> None:
    seen_totals = set()
    for loc, pain, lesion, align, collapse, post in itertools.product(
        SinsLocation,
        SinsPain,
        assessed(SinsBoneLesion),
        SinsAlignment,
        assessed(SinsCollapse),
        assessed(SinsPosterolateral),
    ):
        score = SinsScore(loc, pain, lesion, align, collapse, post)
        expected = (
            {SinsLocation.JUNCTIONAL: 3, SinsLocation.MOBILE: 2, SinsLocation.SEMI_RIGID: 1}.get(
                loc, 0
            )
            + POINTS[pain]
            + POINTS[lesion]
            + POINTS[align]
            + POINTS[collapse]
            + POINTS[post]
        )
        assert score.total == expected
        assert score.category is (
            SinsCategory.STABLE
            if expected <= 6
            else SinsCategory.POTENTIALLY_UNSTABLE
            if expected <= 12
            else SinsCategory.UNSTABLE
        )
        part = score.imaging_part
        low, high = part.possible_total_range
        assert low <= score.total <= high
        assert score.category in part.possible_categories
        seen_totals.add(expected)
    assert seen_totals == set(range(19))


def test_from_imaging_and_string_coercion() -> None:
    part = SinsImagingPart(
        location=VertebralLevel.L1.sins_location,
        bone_lesion="lytic",  # type: ignore[arg-type]
        collapse=SinsCollapse.UNDER_50_PCT,
        posterolateral="Unilateral",  # type: ignore[arg-type]
    )
    assert part.points == 3 + 2 + 2 + 1
    assert part.possible_total_range == (8, 15)
    assert part.possible_categories == (SinsCategory.POTENTIALLY_UNSTABLE, SinsCategory.UNSTABLE)
    score = SinsScore.from_imaging(part, pain="mechanical", alignment=SinsAlignment.NORMAL)
    assert score.total == 11 and score.category is SinsCategory.POTENTIALLY_UNSTABLE
    assert score.imaging_part == part
    with pytest.raises(SinsError, match="'wobbly'"):
        SinsScore.from_imaging(part, pain="none", alignment="wobbly")
    with pytest.raises(SinsError, match="'spongy'"):
        SinsImagingPart(SinsLocation.MOBILE, "spongy", "none", "none")  # type: ignore[arg-type]


def test_frozen() -> None:
    part = SinsImagingPart(
        SinsLocation.RIGID, SinsBoneLesion.BLASTIC, SinsCollapse.NONE, SinsPosterolateral.NONE
    )
    with pytest.raises(AttributeError):
        part.collapse = SinsCollapse.OVER_50_PCT  # type: ignore[misc]
    assert part.possible_categories == (SinsCategory.STABLE, SinsCategory.POTENTIALLY_UNSTABLE)


@pytest.mark.parametrize(
    ("loss", "involved", "expected"),
    [
        (None, None, SinsCollapse.NONE),
        (0.0, 0.2, SinsCollapse.NONE),
        (19.99, 0.5, SinsCollapse.NONE),
        (19.99, 0.51, SinsCollapse.NO_COLLAPSE_OVER_50_PCT_INVOLVED),
        (None, 0.9, SinsCollapse.NO_COLLAPSE_OVER_50_PCT_INVOLVED),
        (-5.0, 1.0, SinsCollapse.NO_COLLAPSE_OVER_50_PCT_INVOLVED),
        (20.0, None, SinsCollapse.UNDER_50_PCT),
        (35.0, 0.9, SinsCollapse.UNDER_50_PCT),
        (50.0, None, SinsCollapse.UNDER_50_PCT),
        (50.01, None, SinsCollapse.OVER_50_PCT),
        (80.0, 0.1, SinsCollapse.OVER_50_PCT),
    ],
)
def test_collapse_from_measurements(
    loss: float | None, involved: float | None, expected: SinsCollapse
) -> None:
    assert sins_collapse_from(loss, involved) is expected


def test_collapse_threshold_is_configurable() -> None:
    assert sins_collapse_from(10.0, None) is SinsCollapse.NONE
    assert sins_collapse_from(10.0, None, min_collapse_pct=5.0) is SinsCollapse.UNDER_50_PCT


@pytest.mark.parametrize(
    ("loss", "involved", "field"),
    [
        (math.nan, None, "height_loss_pct"),
        (101.0, None, "height_loss_pct"),
        ("30", None, "height_loss_pct"),
        (None, 1.5, "involved_fraction"),
        (None, -0.1, "involved_fraction"),
        (None, math.inf, "involved_fraction"),
        (None, True, "involved_fraction"),
    ],
)
def test_collapse_rejects(loss: object, involved: object, field: str) -> None:
    with pytest.raises(SinsError) as info:
        sins_collapse_from(loss, involved)  # type: ignore[arg-type]
    assert field in str(info.value)
    assert repr(loss if field == "height_loss_pct" else involved) in str(info.value)


def test_category_accepts_integral_numpy() -> None:
    np = pytest.importorskip("numpy")
    assert SinsCategory.from_total(np.int64(13)) is SinsCategory.UNSTABLE


# --- what the imaging could not say ----------------------------------------------------------


def test_none_found_is_zero_points_and_not_blastic() -> None:
    assert SinsBoneLesion.NONE_FOUND.points == 0 and SinsBoneLesion.NONE_FOUND.assessed
    assert SinsBoneLesion.NONE_FOUND is not SinsBoneLesion.BLASTIC
    assert SinsBoneLesion.parse("none found") is SinsBoneLesion.NONE_FOUND
    # a value stored before "none_found" existed still reads as it was written
    assert SinsBoneLesion.parse("blastic") is SinsBoneLesion.BLASTIC


@pytest.mark.parametrize("enum_cls", [SinsBoneLesion, SinsCollapse, SinsPosterolateral])
def test_not_assessed_members(enum_cls) -> None:  # type: ignore[no-untyped-def]
    member = enum_cls.parse("not_assessed")
    assert not member.assessed and member.points == 0
    assert member.max_points == MAX_IF_UNASSESSED[enum_cls]
    assert max(m.points for m in assessed(enum_cls)) == member.max_points
    assert all(m.max_points == m.points for m in assessed(enum_cls))
    assert "Not assessed" in member.label


def test_unassessed_components_widen_the_possible_range_to_every_completion() -> None:
    """The range must hold every total the completed score can reach, and no other."""
    for lesion, collapse, post in itertools.product(
        SinsBoneLesion, SinsCollapse, SinsPosterolateral
    ):
        part = SinsImagingPart(SinsLocation.MOBILE, lesion, collapse, post)
        options = [[m] if m.assessed else assessed(type(m)) for m in (lesion, collapse, post)]
        totals = {
            SinsScore(SinsLocation.MOBILE, pain, le, align, co, po).total
            for le, co, po in itertools.product(*options)
            for pain in SinsPain
            for align in SinsAlignment
        }
        assert part.possible_total_range == (min(totals), max(totals)), part
        names = {"bone_lesion": lesion, "collapse": collapse, "posterolateral": post}
        assert part.unassessed == tuple(n for n, m in names.items() if not m.assessed)


def test_mri_part_range() -> None:
    # L1 junctional 3, nothing else known: 3 now, up to 3 + 2 + 3 + 3 + 3 + 4 = 18
    part = SinsImagingPart(
        SinsLocation.JUNCTIONAL,
        SinsBoneLesion.NOT_ASSESSED,
        SinsCollapse.NONE,
        SinsPosterolateral.NOT_ASSESSED,
    )
    assert part.points == 3
    assert part.possible_total_range == (3, 3 + 2 + 3 + 3 + 4)
    assert part.possible_categories == tuple(SinsCategory)


def test_complete_score_refuses_unassessed_and_takes_the_clinicians_reading() -> None:
    part = SinsImagingPart(
        SinsLocation.MOBILE,
        "not_assessed",
        "under_50_pct",
        "not_assessed",  # type: ignore[arg-type]
    )
    with pytest.raises(SinsError, match="bone_lesion, posterolateral 'not_assessed'"):
        SinsScore.from_imaging(part, pain="none", alignment="normal")
    score = SinsScore.from_imaging(
        part, pain="none", alignment="normal", bone_lesion="lytic", posterolateral="unilateral"
    )
    assert score.total == 2 + 2 + 2 + 1
    # a component the imaging assessed is never overwritten
    with pytest.raises(SinsError, match="collapse 'none': the imaging assessed it"):
        SinsScore.from_imaging(
            part,
            pain="none",
            alignment="normal",
            bone_lesion="lytic",
            posterolateral="none",
            collapse="none",
        )
