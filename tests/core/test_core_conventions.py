"""Label conventions: the tables for every level, names, detection (synthetic and real maps)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from spinewatch.core.conventions import (
    ConventionError,
    LabelConvention,
    detect_convention,
    label_for_level,
    level_for_label,
    level_from_totalsegmentator_name,
    totalsegmentator_name,
    vertebra_labels,
)
from spinewatch.core.levels import ALL_LEVELS, VertebralLevel

TS = LabelConvention.TOTALSEGMENTATOR
VERSE = LabelConvention.VERSE

# The tables of the brief / ../shared/data/README.md, written out by hand.
TS_TABLE = {
    26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1",
    32: "T12", 33: "T11", 34: "T10", 35: "T9", 36: "T8", 37: "T7", 38: "T6", 39: "T5",
    40: "T4", 41: "T3", 42: "T2", 43: "T1",
    44: "C7", 45: "C6", 46: "C5", 47: "C4", 48: "C3", 49: "C2", 50: "C1",
}  # fmt: skip
VERSE_TABLE = {
    1: "C1", 2: "C2", 3: "C3", 4: "C4", 5: "C5", 6: "C6", 7: "C7",
    8: "T1", 9: "T2", 10: "T3", 11: "T4", 12: "T5", 13: "T6", 14: "T7", 15: "T8",
    16: "T9", 17: "T10", 18: "T11", 19: "T12",
    20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5", 25: "L6",
    26: "S1", 28: "T13",
}  # fmt: skip


@pytest.mark.parametrize(("label", "name"), sorted(TS_TABLE.items()))
def test_totalsegmentator_table(label: int, name: str) -> None:
    level = VertebralLevel.parse(name)
    assert level_for_label(label, TS) is level
    assert level_for_label(label, "totalsegmentator") is level
    assert label_for_level(level, TS) == label
    assert label_for_level(name, "TotalSegmentator") == label
    assert totalsegmentator_name(level) == f"vertebrae_{name}"
    assert level_from_totalsegmentator_name(f"vertebrae_{name}") is level


@pytest.mark.parametrize(("label", "name"), sorted(VERSE_TABLE.items()))
def test_verse_table(label: int, name: str) -> None:
    level = VertebralLevel.parse(name)
    assert level_for_label(label, VERSE) is level
    assert label_for_level(level, VERSE) == label


def test_every_level_round_trips_or_is_refused() -> None:
    for level in ALL_LEVELS:
        assert level_for_label(label_for_level(level, VERSE), VERSE) is level
        if level.is_variant:
            with pytest.raises(ConventionError, match=str(level)):
                label_for_level(level, TS)
        else:
            assert level_for_label(label_for_level(level, TS), TS) is level


@pytest.mark.parametrize(
    ("label", "convention"),
    [
        *[(label, TS) for label in (0, 25, 1, 24, 51, 92, 117, 500, -3)],
        *[(label, VERSE) for label in (0, 27, 29, 31, 100, -1)],
    ],
)
def test_non_vertebra_labels_map_to_none(label: int, convention: LabelConvention) -> None:
    assert level_for_label(label, convention) is None


def test_level_for_label_tolerates_numpy_like_and_rejects_non_integral() -> None:
    assert level_for_label(31.0, TS) is VertebralLevel.L1  # type: ignore[arg-type]
    assert level_for_label(31.5, TS) is None  # type: ignore[arg-type]
    assert level_for_label(True, VERSE) is None


@pytest.mark.parametrize("name", ["vertebrae_T13", "vertebrae_L6"])
def test_ts_cannot_express_variants(name: str) -> None:
    level = VertebralLevel.parse(name)
    with pytest.raises(ConventionError, match=f"{level}.*TotalSegmentator"):
        totalsegmentator_name(level)
    with pytest.raises(ConventionError, match=repr(name)):
        level_from_totalsegmentator_name(name)


@pytest.mark.parametrize("name", ["sacrum", "liver", "L1", "vertebrae_X1", "vertebrae_", ""])
def test_level_from_totalsegmentator_name_rejects(name: str) -> None:
    with pytest.raises(ConventionError) as info:
        level_from_totalsegmentator_name(name)
    assert repr(name) in str(info.value)
    assert "vertebrae_L1" in str(info.value)


def test_convention_parse() -> None:
    assert LabelConvention.parse(" VerSe ") is VERSE
    assert LabelConvention.parse("TOTALSEGMENTATOR") is TS
    assert LabelConvention.parse(TS) is TS
    with pytest.raises(ConventionError, match=r"'auto'.*'totalsegmentator', 'verse'"):
        LabelConvention.parse("auto")
    with pytest.raises(ConventionError, match="'nnunet'"):
        level_for_label(3, "nnunet")


def test_vertebra_labels_subset_in_level_order() -> None:
    labels = [0, 1, 5, 25, 26, 27, 31, 32, 33, 52, 117, 31]
    assert vertebra_labels(labels, TS) == {
        33: VertebralLevel.T11,
        32: VertebralLevel.T12,
        31: VertebralLevel.L1,
        27: VertebralLevel.L5,
        26: VertebralLevel.S1,
    }
    assert list(vertebra_labels(labels, TS).values()) == sorted(
        vertebra_labels(labels, TS).values()
    )
    verse = vertebra_labels([19, 28, 20, 27, 26, 0], VERSE)
    assert list(verse.items()) == [
        (19, VertebralLevel.T12),
        (28, VertebralLevel.T13),
        (20, VertebralLevel.L1),
        (26, VertebralLevel.S1),
    ]
    assert vertebra_labels([], VERSE) == {}


# -- detect_convention ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({30, 31, 32, 33}, TS),  # the TotalSegmentator example's vertebrae
        ({0, 1, 2, 5, 30, 31, 32, 33, 52, 92, 117}, TS),  # with organs, heart, ribs
        ({29}, TS),
        ({51, 52}, TS),  # no vertebra, but only TotalSegmentator uses > 28
        (set(range(16, 25)), VERSE),  # VerSe004: T9..L5
        ({0, *range(16, 25)}, VERSE),
        ({20}, VERSE),
        (set(range(1, 26)), VERSE),
    ],
)
def test_detect_decides(labels: set[int], expected: LabelConvention) -> None:
    assert detect_convention(labels) is expected


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        (set(), "no label other than background"),
        ({0}, "no label other than background"),
        ({26, 27, 28}, "26..28"),
        ({28}, "26..28"),
        ({19, 28, 20, 21}, "26..28"),  # VerSe with T13, or TS organs + L4
        ({18, 20, 21, 22, 25, 26, 27, 28}, "26..28"),  # a pelvic TotalSegmentator map
        ({20, 21, 22, 23, 24, 26}, "26..28"),  # VerSe with sacrum
        ({1, 2, 3, 5}, "not consecutive"),  # spleen, kidneys, liver?
        ({16, 18}, "not consecutive"),
        ({30, 200}, "200"),
    ],
)
def test_detect_refuses_ambiguous(labels: set[int], reason: str) -> None:
    with pytest.raises(ConventionError) as info:
        detect_convention(labels)
    message = str(info.value)
    assert reason in message
    assert "--labels-convention" in message


@pytest.mark.parametrize("bad", [[-1, 20], [20, 2.5], [20, "21"], [True, 20]])
def test_detect_rejects_non_labels(bad: list[object]) -> None:
    with pytest.raises(ConventionError, match="label"):
        detect_convention(bad)  # type: ignore[arg-type]


def test_detect_accepts_any_iterable_once() -> None:
    assert detect_convention(iter([31, 32])) is TS
    assert detect_convention(x for x in (16.0, 17.0)) is VERSE  # type: ignore[misc]


def _unique_labels(path: Path) -> list[int]:
    nib = pytest.importorskip("nibabel")
    np = pytest.importorskip("numpy")
    data = np.asarray(nib.load(str(path)).dataobj)
    return list(np.unique(data))  # numpy scalars, as callers will pass them


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "relative",
    ["ct/totalseg-example/example_seg.nii.gz", "ct/totalseg-example/example_seg_dicom.nii.gz"],
)
def test_detect_real_totalsegmentator_maps(
    shared_file: Callable[[str], Path], relative: str
) -> None:
    labels = _unique_labels(shared_file(relative))
    assert detect_convention(labels) is TS
    levels = vertebra_labels(labels, TS)
    assert {VertebralLevel.T11, VertebralLevel.T12} <= set(levels.values())
    if relative.endswith("example_seg.nii.gz"):
        assert levels == {
            33: VertebralLevel.T11,
            32: VertebralLevel.T12,
            31: VertebralLevel.L1,
            30: VertebralLevel.L2,
        }


@pytest.mark.shared_data
def test_detect_real_verse_mask(shared_file: Callable[[str], Path]) -> None:
    labels = _unique_labels(shared_file("ct/verse004/sub-verse004_seg-vert_msk.nii.gz"))
    assert detect_convention(labels) is VERSE
    levels = vertebra_labels(labels, VERSE)
    assert [str(lv) for lv in levels.values()] == [
        "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5",
    ]  # fmt: skip
    assert levels[20] is VertebralLevel.L1
