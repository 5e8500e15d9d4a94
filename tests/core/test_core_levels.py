"""Vertebral levels: order, regions, SINS location, parsing, neighbours."""

from __future__ import annotations

import pickle
import random

import pytest

from spinewatch.core import InputError
from spinewatch.core.levels import (
    ALL_LEVELS,
    STANDARD_LEVELS,
    LevelError,
    Region,
    SinsLocation,
    VertebralLevel,
    neighbours,
    parse_level,
)

L = VertebralLevel

EXPECTED_ORDER = (
    [f"C{i}" for i in range(1, 8)]
    + [f"T{i}" for i in range(1, 14)]
    + [f"L{i}" for i in range(1, 7)]
    + ["S1"]
)


def test_all_levels_in_cranio_caudal_order_with_variants() -> None:
    assert [str(level) for level in ALL_LEVELS] == EXPECTED_ORDER
    assert [level.rank for level in ALL_LEVELS] == list(range(27))
    assert len(STANDARD_LEVELS) == 25
    assert L.T13 not in STANDARD_LEVELS and L.L6 not in STANDARD_LEVELS
    assert [lv for lv in ALL_LEVELS if lv.is_variant] == [L.T13, L.L6]


def test_sorting_and_comparisons_follow_rank() -> None:
    shuffled = list(ALL_LEVELS)
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled) == list(ALL_LEVELS)
    assert L.T12 < L.T13 < L.L1
    assert L.L5 < L.L6 < L.S1
    assert L.C1 <= L.C1 and L.S1 >= L.L6 and L.S1 > L.C1
    assert not L.L1 < L.T12
    assert max(ALL_LEVELS) is L.S1 and min(ALL_LEVELS) is L.C1


def test_comparison_with_other_types_raises_type_error() -> None:
    with pytest.raises(TypeError):
        _ = L.L1 < "L2"  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = L.L1 > 3  # type: ignore[operator]


def test_hashable_and_picklable() -> None:
    assert {L.L1: 1}[L.parse("l1")] == 1
    assert len({L.L1, L.parse("L1"), L.L2}) == 2
    assert pickle.loads(pickle.dumps(L.T13)) is L.T13


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_str_region_number(level: VertebralLevel) -> None:
    name = str(level)
    assert name == level.value == level.name
    expected_region = {"C": Region.CERVICAL, "T": Region.THORACIC, "L": Region.LUMBAR}.get(
        name[0], Region.SACRAL
    )
    assert level.region is expected_region
    assert level.number == int(name[1:])


# Fisher 2010 table, written out level by level.
SINS_TABLE = {
    **dict.fromkeys(["C1", "C2", "C7", "T1", "T2", "T11", "T12", "L1", "L5", "S1"], 3),
    **dict.fromkeys(["C3", "C4", "C5", "C6", "L2", "L3", "L4"], 2),
    **dict.fromkeys([f"T{i}" for i in range(3, 11)], 1),
    "T13": 3,
    "L6": 3,
}


@pytest.mark.parametrize("name", EXPECTED_ORDER)
def test_sins_location_of_every_level(name: str) -> None:
    level = L.parse(name)
    assert level.sins_location.points == SINS_TABLE[name]


def test_sins_location_points_and_parse() -> None:
    assert {loc: loc.points for loc in SinsLocation} == {
        SinsLocation.JUNCTIONAL: 3,
        SinsLocation.MOBILE: 2,
        SinsLocation.SEMI_RIGID: 1,
        SinsLocation.RIGID: 0,
    }
    assert SinsLocation.parse("Semi-rigid") is SinsLocation.SEMI_RIGID
    assert Region.parse("LUMBAR") is Region.LUMBAR
    with pytest.raises(LevelError, match="'flexible'"):
        SinsLocation.parse("flexible")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("L1", L.L1),
        ("l1", L.L1),
        (" L1 ", L.L1),
        ("vertebrae_L1", L.L1),
        ("VERTEBRAE_l1", L.L1),
        ("t13", L.T13),
        ("L6", L.L6),
        ("vertebrae_S1", L.S1),
        ("C7\n", L.C7),
        (L.T4, L.T4),
    ],
)
def test_parse_accepts(raw: str | VertebralLevel, expected: VertebralLevel) -> None:
    assert L.parse(raw) is expected
    assert parse_level(raw) is expected


@pytest.mark.parametrize(
    "raw", ["", "L", "L0", "L7", "T14", "C8", "S2", "X1", "L 1", "1", "vertebrae_", "sacrum", 20]
)
def test_parse_rejects_naming_value_and_choices(raw: object) -> None:
    with pytest.raises(LevelError) as info:
        L.parse(raw)  # type: ignore[arg-type]
    message = str(info.value)
    assert repr(raw) in message
    assert "C1" in message and "T13" in message and "L6" in message and "S1" in message
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)


def test_neighbours_nearest_first_cranial_first_on_ties() -> None:
    present = [L.T10, L.T11, L.T12, L.L1, L.L2, L.L3, L.L4]
    assert neighbours(L.L1, present) == [L.T12, L.L2, L.T11, L.L3]
    assert neighbours("L1", present, max_distance=1) == [L.T12, L.L2]
    assert neighbours(L.L1, present, max_distance=0) == []
    assert neighbours(L.T10, present) == [L.T11, L.T12]


def test_neighbours_skip_absent_variants_and_count_present_ones() -> None:
    without = [L.T11, L.T12, L.L1, L.L2]
    assert neighbours(L.T12, without, max_distance=1) == [L.T11, L.L1]
    with_t13 = [L.T11, L.T12, L.T13, L.L1, L.L2]
    assert neighbours(L.T12, with_t13, max_distance=1) == [L.T11, L.T13]
    assert neighbours(L.L1, with_t13, max_distance=2) == [L.T13, L.L2, L.T12]
    # The variant being asked about occupies its own position.
    assert neighbours(L.L6, [L.L4, L.L5, L.S1], max_distance=1) == [L.L5, L.S1]
    assert neighbours(L.L5, [L.L4, L.S1], max_distance=1) == [L.L4, L.S1]


def test_neighbours_ignore_duplicates_and_accept_names() -> None:
    assert neighbours("L3", ["L2", "l2", "vertebrae_L4", L.L4]) == [L.L2, L.L4]


def test_neighbours_match_brute_force_on_random_spines() -> None:
    rng = random.Random(2024)
    for _ in range(300):
        present = [lv for lv in ALL_LEVELS if rng.random() < 0.5]
        centre = rng.choice(ALL_LEVELS)
        distance = rng.randint(0, 4)
        spine = [lv for lv in ALL_LEVELS if not lv.is_variant or lv in present or lv is centre]
        expected = sorted(
            (lv for lv in present if lv is not centre),
            key=lambda lv: (abs(spine.index(lv) - spine.index(centre)), lv.rank),
        )
        expected = [lv for lv in expected if abs(spine.index(lv) - spine.index(centre)) <= distance]
        assert neighbours(centre, present, max_distance=distance) == expected


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_neighbours_rejects_bad_distance(bad: object) -> None:
    with pytest.raises(LevelError, match="max_distance"):
        neighbours(L.L1, [L.L2], max_distance=bad)  # type: ignore[arg-type]


def test_neighbours_rejects_bad_levels() -> None:
    with pytest.raises(LevelError, match="'Q9'"):
        neighbours(L.L1, ["Q9"])
