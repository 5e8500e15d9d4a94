"""Label conventions: the tables for every level, names, detection from the ids (synthetic and
real maps). Detection with the geometry: tests/imaging/test_label_maps.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from spinewatch.core.acquisition import Modality
from spinewatch.core.conventions import (
    ConventionError,
    LabelConvention,
    Reading,
    candidate_readings,
    detect_convention,
    endplate_of,
    group_labels,
    is_subregion_map,
    label_for_level,
    label_role,
    level_for_label,
    level_from_totalsegmentator_name,
    merge_equivalent,
    subregion_refusal,
    totalsegmentator_name,
    vertebra_labels,
)
from spinewatch.core.levels import ALL_LEVELS, VertebralLevel

TS = LabelConvention.TOTALSEGMENTATOR
TS_MR = LabelConvention.TOTALSEGMENTATOR_MR
TS_VMR = LabelConvention.TOTALSEGMENTATOR_VERTEBRAE_MR
TS_VB = LabelConvention.TOTALSEGMENTATOR_VERTEBRAE_BODY
VERSE = LabelConvention.VERSE
TPTBOX = LabelConvention.TPTBOX
BINARY = LabelConvention.BINARY

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
    assert LabelConvention.parse("totalsegmentator-mr") is TS_MR
    assert LabelConvention.parse("TPTBox") is TPTBOX
    with pytest.raises(ConventionError, match=r"'auto'.*'totalsegmentator', .*'verse', 'tptbox'"):
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


# -- the other conventions (tables from wasserth/TotalSegmentator map_to_binary.py, v2.18.0;
# Hendrik-code/TPTBox vert_constants.py) ----------------------------------------------------

TS_VMR_TABLE = {
    2: "L5", 3: "L4", 4: "L3", 5: "L2", 6: "L1",
    7: "T12", 8: "T11", 9: "T10", 10: "T9", 11: "T8", 12: "T7", 13: "T6", 14: "T5",
    15: "T4", 16: "T3", 17: "T2", 18: "T1",
    19: "C7", 20: "C6", 21: "C5", 22: "C4", 23: "C3", 24: "C2", 25: "C1",
}  # fmt: skip


@pytest.mark.parametrize(("label", "name"), sorted(TS_VMR_TABLE.items()))
def test_vertebrae_mr_table_runs_cranially(label: int, name: str) -> None:
    level = VertebralLevel.parse(name)
    assert level_for_label(label, TS_VMR) is level
    assert label_for_level(level, TS_VMR) == label


def test_vertebrae_mr_has_no_sacrum_level_and_no_variants() -> None:
    assert level_for_label(1, TS_VMR) is None  # 1 = sacrum
    assert label_role(1, TS_VMR) == "sacrum"
    for level in ("T13", "L6", "S1"):
        with pytest.raises(ConventionError, match=level):
            label_for_level(level, TS_VMR)


@pytest.mark.parametrize(("label", "name"), sorted(VERSE_TABLE.items()))
def test_tptbox_vertebrae_are_numbered_as_verse(label: int, name: str) -> None:
    assert level_for_label(label, TPTBOX) is VertebralLevel.parse(name)


def test_tptbox_discs_endplates_ribs_are_not_vertebrae() -> None:
    for label in (105, 106, 205, 206, 207, 27, 29, 33, 40, 51, 53):
        assert level_for_label(label, TPTBOX) is None
    assert endplate_of(205, TPTBOX) == 5 and endplate_of(228, TPTBOX) == 28
    assert endplate_of(105, TPTBOX) is None and endplate_of(227, TPTBOX) is None
    assert endplate_of(205, VERSE) is None
    assert label_role(105, TPTBOX) == "disc below C5"
    assert label_role(207, TPTBOX) == "endplates of disc below C7"
    assert label_role(45, TPTBOX) == "rib"
    assert label_role(6, TPTBOX) == "C6"


@pytest.mark.parametrize(("convention", "group"), [(TS_MR, 19), (TS_VB, 1), (BINARY, 7)])
def test_one_label_conventions_name_no_level(convention: LabelConvention, group: int) -> None:
    assert convention.names_levels is False
    assert vertebra_labels(range(0, 60), convention) == {}
    assert group_labels([0, group, 21 if convention is TS_MR else group], convention) == (group,)
    assert label_role(group, convention) == "all vertebrae"
    with pytest.raises(ConventionError, match="no per-level labels"):
        label_for_level("L1", convention)


def test_total_mr_roles_and_binary_needs_one_label() -> None:
    assert label_role(20, TS_MR) == "intervertebral discs"
    assert label_role(18, TS_MR) == "sacrum"
    assert label_role(46, TS_MR) == "not a vertebra"  # autochthon_left (v2.5.0+)
    assert label_role(57, TS_MR) == "unknown id"
    assert label_role(2, TS_VB) == "intervertebral discs"
    assert group_labels([1, 2], BINARY) == ()


def test_modality_of_conventions() -> None:
    assert TS.modality is Modality.CT
    assert TS_MR.modality is Modality.MR and TS_VMR.modality is Modality.MR
    assert VERSE.modality is None and TPTBOX.modality is None
    assert all(c.label for c in LabelConvention)


# -- candidate readings and detection from the ids ------------------------------------------------


def _possible(labels: set[int], **kw: object) -> dict[str, Reading]:
    return {r.key: r for r in candidate_readings(labels, **kw) if r.possible}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({30, 31, 32, 33}, TS),  # the TotalSegmentator example's vertebrae
        ({0, 1, 2, 5, 30, 31, 32, 33, 52, 92, 117}, TS),  # with organs, heart, ribs
        ({5, 6, 7, 105, 106, 205, 206, 207}, TPTBOX),  # the TPTBox MRI instance map
    ],
)
def test_detect_decides(labels: set[int], expected: LabelConvention) -> None:
    assert detect_convention(labels) is expected


@pytest.mark.parametrize(
    ("labels", "modality", "expected"),
    [
        (set(range(16, 25)), "CT", VERSE),  # VerSe004: vertebrae_mr is an MRI task
        ({0, *range(20, 25)}, Modality.CT, VERSE),
        (set(range(2, 7)), "MR", None),  # L5..L1 in vertebrae_mr, C2..C6 in VerSe: ambiguous
    ],
)
def test_detect_uses_the_modality(
    labels: set[int], modality: object, expected: LabelConvention | None
) -> None:
    if expected is None:
        with pytest.raises(ConventionError, match=r"vertebrae_mr.*VerSe"):
            detect_convention(labels, modality=modality)  # type: ignore[arg-type]
    else:
        assert detect_convention(labels, modality=modality) is expected  # type: ignore[arg-type]
    # without a modality the same ids are ambiguous: vertebrae_mr numbers 1..25 too
    with pytest.raises(ConventionError, match="vertebrae_mr"):
        detect_convention(labels)


def test_modality_rules_out_the_other_modalitys_tasks() -> None:
    mr_map = {1, 5, 19, 20, 21, 46, 47}  # total_mr: liver, vertebrae, discs, cord, autochthon
    assert set(_possible(mr_map)) >= {"totalsegmentator", "totalsegmentator_mr"}
    on_mr = _possible(mr_map, modality="MR")
    assert "totalsegmentator" not in on_mr and "totalsegmentator_mr" in on_mr
    ct = {r.key: r for r in candidate_readings(mr_map, modality="CT")}
    assert not ct["totalsegmentator_mr"].possible
    assert "MRI convention, and this scan is CT" in ct["totalsegmentator_mr"].reason


def test_the_files_own_label_table_decides() -> None:
    """TotalSegmentator writes its class names into the NIfTI header: they rule readings out."""
    ids = {1, 5, 19, 20, 21, 46, 47, 48, 49}
    names = {1: "spleen", 5: "liver", 19: "vertebrae", 20: "intervertebral_discs",
             21: "spinal_cord", 46: "autochthon_left", 47: "autochthon_right",
             48: "iliopsoas_left", 49: "iliopsoas_right"}  # fmt: skip
    readings = {r.key: r for r in candidate_readings(ids, names=names)}
    assert not readings["totalsegmentator"].possible
    assert "19 'vertebrae'" in readings["totalsegmentator"].reason
    assert readings["totalsegmentator_mr"].possible
    assert detect_convention(ids, names=names) is TS_MR
    ts_names = {31: "vertebrae_L1", 32: "vertebrae_T12", 5: "liver"}
    assert detect_convention({5, 31, 32}, names=ts_names) is TS
    with pytest.raises(ConventionError, match="no convention"):
        detect_convention({5, 31, 32}, names={31: "vertebrae_L2", 32: "vertebrae_T12"})


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        (set(), "no label other than background"),
        ({0}, "no label other than background"),
        ({1}, "2 readings are possible"),  # C1 of VerSe, or a one-label mask
        ({29}, "2 readings are possible"),  # L3 of TotalSegmentator, or a one-label mask
        ({26, 27, 28}, "readings are possible"),  # S1/L5/L4 (TS) or sacrum/-/T13 (VerSe)
        ({19, 28, 20, 21}, "readings are possible"),  # VerSe with T13, total_mr, ...
        ({1, 2, 3, 5}, "readings are possible"),  # spleen, kidneys, liver? C1..C5? L5..L2?
        ({51, 52}, "no convention reads these labels as vertebrae"),
        ({30, 300}, "no convention reads these labels as vertebrae"),
        ({1, 2}, "3 readings are possible"),  # bodies+discs? C1, C2? sacrum, L5?
    ],
)
def test_detect_refuses_what_the_ids_cannot_tell(labels: set[int], reason: str) -> None:
    with pytest.raises(ConventionError) as info:
        detect_convention(labels)
    message = str(info.value)
    assert reason in message
    assert "--labels-convention" in message
    if labels:
        assert str(sorted(labels)[0]) in message


def test_subregion_map_is_named_and_refused() -> None:
    ids = {41, 42, 43, 44, 45, 46, 47, 48, 49, 50}
    assert is_subregion_map(ids) and is_subregion_map({*range(41, 50), 60, 61, 62, 100})
    assert not is_subregion_map({5, 6, 7, 105}) and not is_subregion_map({30, 31, 49, 50})
    readings = _possible(ids)
    assert set(readings) == {"totalsegmentator", "tptbox_subregion"}  # the geometry decides
    assert "parts of vertebrae" in subregion_refusal(ids)
    assert "instance map" in subregion_refusal(ids)


def test_readings_list_why_each_is_ruled_out() -> None:
    readings = {r.key: r for r in candidate_readings({5, 6, 7, 105, 106, 205, 206, 207})}
    assert readings["tptbox"].possible
    assert readings["tptbox"].endplates == {205: 5, 206: 6, 207: 7}
    assert readings["tptbox"].summary() == "5=C5, 6=C6, 7=C7"
    assert "ids end at 28" in readings["verse"].reason
    assert "ids end at 117" in readings["totalsegmentator"].reason
    assert "8 labels" in readings["binary"].reason
    plain = {r.key: r for r in candidate_readings({20, 21})}
    assert not plain["tptbox"].possible and "same as VerSe" in plain["tptbox"].reason


def test_equivalent_one_label_readings_count_once() -> None:
    readings = [r for r in candidate_readings({1}) if r.possible]
    assert {r.key for r in readings} == {"totalsegmentator_vertebrae_body", "verse", "binary"}
    merged = merge_equivalent(readings)
    assert [r.key for r in merged] == ["binary", "verse"] or [r.key for r in merged] == [
        "verse",
        "binary",
    ]


@pytest.mark.parametrize("bad", [[-1, 20], [20, 2.5], [20, "21"], [True, 20]])
def test_detect_rejects_non_labels(bad: list[object]) -> None:
    with pytest.raises(ConventionError, match="label"):
        detect_convention(bad)  # type: ignore[arg-type]


def test_detect_accepts_any_iterable_once() -> None:
    assert detect_convention(iter([31, 32])) is TS
    assert detect_convention((x for x in (16.0, 17.0)), modality="CT") is VERSE  # type: ignore[misc]


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
    assert detect_convention(labels, modality="CT") is VERSE
    levels = vertebra_labels(labels, VERSE)
    assert [str(lv) for lv in levels.values()] == [
        "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5",
    ]  # fmt: skip
    assert levels[20] is VertebralLevel.L1
