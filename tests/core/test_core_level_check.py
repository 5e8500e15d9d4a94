"""The level check's renaming rules (spinewatch.core.level_check)."""

from __future__ import annotations

import re

import pytest

from spinewatch.core.level_check import LevelCheckError, renamed_levels
from spinewatch.core.levels import VertebralLevel as V


def _names(mapping):
    return {str(k): str(v) for k, v in mapping.items()}


def test_shift_down_and_up() -> None:
    assert _names(renamed_levels([V.T12, V.L1, V.L2], shift=1, variant="")) == {
        "T12": "L1",
        "L1": "L2",
        "L2": "L3",
    }
    assert _names(renamed_levels(["T12", "L1"], shift=-1, variant="")) == {
        "T12": "T11",
        "L1": "T12",
    }


def test_t13_renames_the_lumbar_labels_up_and_keeps_the_sacrum() -> None:
    got = _names(renamed_levels([V.T12, V.L1, V.L2, V.L5, V.S1], shift=0, variant="T13"))
    assert got == {"T12": "T12", "L1": "T13", "L2": "L1", "L5": "L4", "S1": "S1"}


def test_l6_is_a_lumbarised_s1_and_can_combine_with_a_shift() -> None:
    assert _names(renamed_levels([V.L5, V.S1], shift=0, variant="L6")) == {"L5": "L5", "S1": "L6"}
    # with T13 present, shifting one level up walks through T13
    assert _names(renamed_levels([V.T13, V.L1], shift=-1, variant="")) == {
        "T13": "T12",
        "L1": "T13",
    }


@pytest.mark.parametrize(
    ("levels", "shift", "variant", "message"),
    [
        ([V.C1, V.C2], -1, "", "cranial to C1"),
        ([V.L5, V.S1], 1, "", "caudal to S1"),
        ([V.L1], 2, "", "expected -1, 0 or +1"),
        ([V.L1], True, "", "expected -1, 0 or +1"),
        ([V.L1], 0, "T14", "expected none, T13 or L6"),
        ([V.T13, V.L1], 0, "T13", "two vertebrae the name T13"),
    ],
)
def test_impossible_corrections_are_refused(levels, shift, variant, message) -> None:
    with pytest.raises(LevelCheckError, match=re.escape(message)):
        renamed_levels(levels, shift=shift, variant=variant)
