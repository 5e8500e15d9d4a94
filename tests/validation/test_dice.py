"""Overlap of a predicted vertebra map with a reference: the figures and the error split."""

from __future__ import annotations

import numpy as np
import pytest

from spinewatch.validation.dice import vertebra_overlap


def _two_blocks() -> np.ndarray:
    ref = np.zeros((10, 4, 4), dtype=np.uint8)
    ref[1:5] = 30
    ref[5:9] = 31
    return ref


def test_identical_maps_score_one() -> None:
    ref = _two_blocks()
    o = vertebra_overlap(ref.copy(), ref, 30)
    assert (o.best_label, o.matched_dice, o.same_id_dice) == (30, 1.0, 1.0)
    assert o.missed == o.given_to_neighbour == o.leaked == 0.0


def test_relative_names_keep_the_shape_score_and_lose_the_id_score() -> None:
    ref = _two_blocks()
    pred = np.where(ref > 0, ref - 2, 0).astype(np.uint8)  # named two levels off
    o = vertebra_overlap(pred, ref, 31)
    assert o.best_label == 29 and o.matched_dice == 1.0 and o.same_id_dice == 0.0


def test_merged_neighbours_show_as_a_leak_into_the_neighbour() -> None:
    ref = _two_blocks()
    pred = np.where(ref > 0, 27, 0).astype(np.uint8)
    o = vertebra_overlap(pred, ref, 30, name_of=lambda x: {31: "L1"}.get(x, "?"))
    assert o.matched_dice == pytest.approx(2 * 64 / (64 + 128))
    assert o.leaked == pytest.approx(0.5) and o.leaked_into == (("L1", 0.5),)


def test_boundary_off_the_disc_moves_voxels_to_the_neighbour() -> None:
    ref = _two_blocks()
    pred = ref.copy()
    pred[4] = 31  # the L2/L1 boundary one slice low
    o = vertebra_overlap(pred, ref, 30)
    assert o.given_to_neighbour == pytest.approx(0.25) and o.missed == 0.0
    assert o.matched_dice == pytest.approx(2 * 48 / (48 + 64))


def test_missed_vertebra_and_background_leak() -> None:
    ref = _two_blocks()
    pred = ref.copy()
    pred[ref == 30] = 0
    pred[9] = 31  # over-segmentation into background
    assert vertebra_overlap(pred, ref, 30).best_label == 0
    assert vertebra_overlap(pred, ref, 30).missed == 1.0
    o = vertebra_overlap(pred, ref, 31)
    assert o.leaked_into == (("background", pytest.approx(0.2)),)


def test_absent_label_and_other_grid_refused() -> None:
    ref = _two_blocks()
    with pytest.raises(ValueError, match="absent"):
        vertebra_overlap(ref, ref, 40)
    with pytest.raises(ValueError, match="one grid"):
        vertebra_overlap(ref[:5], ref, 30)
