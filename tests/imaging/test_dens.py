"""The C2 landmark (dens and atlas ring) and counting the levels downward from C2: naming rules
and phantoms drawn with the atlas, the dens and ribs (no real scan in ../shared/data shows C2)."""

from __future__ import annotations

import numpy as np
import pytest

from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.phantom import PHANTOM_LEVELS, PhantomSpec, make_spine_phantom
from spinewatch.imaging.segmentation import segment_ct
from spinewatch.imaging.segmentation.levels import name_levels
from spinewatch.imaging.volume import CtVolume, Grid
from spinewatch.validation.dice import vertebra_overlap
from spinewatch.validation.sections.segmentation import c2_cases

C1_TO_C6 = PHANTOM_LEVELS[:6]


def _confirmed_wrong(result, pred: np.ndarray, truth: np.ndarray) -> list[tuple[int, int]]:
    """(drawn, predicted) for each drawn structure whose majority label is another one that is
    confirmed."""
    confirmed = {v.label: v.level_confirmed for v in result.vertebrae}
    overlaps = [vertebra_overlap(pred, truth, int(lab)) for lab in np.unique(truth) if lab]
    return [
        (o.reference_label, o.best_label)
        for o in overlaps
        if o.best_label != o.reference_label and confirmed.get(o.best_label, False)
    ]


# -- naming rules ------------------------------------------------------------------------------


def test_count_from_c2_names_the_ring_c1_and_counts_downward() -> None:
    # segments 1..6 (1 = most caudal): 5 = C2 (dens found), 6 = the atlas ring
    naming = name_levels(6, False, {}, c2=5, c2_confirmable=True)
    assert naming.method == "c2" and naming.confirmed
    assert [str(x) for x in naming.levels] == ["C6", "C5", "C4", "C3", "C2", "C1"]


def test_count_from_c2_with_the_first_rib_on_t1_agrees() -> None:
    # C1..T3: 10 segments, C2 = 9; ribs on T1..T3 (segments 1..3), none on C7 (segment 4)
    ribs = {k: k <= 3 for k in range(1, 11)}
    naming = name_levels(10, False, ribs, c2=9, c2_confirmable=True)
    assert naming.method == "c2+ribs" and naming.confirmed
    assert naming.levels[0] is VertebralLevel.T3 and naming.levels[3] is VertebralLevel.C7


def test_a_rib_on_a_vertebra_counted_cervical_unconfirms() -> None:
    # a rib on the vertebra counted as C7: a cervical rib (a variant) or a miscount
    ribs = {k: k <= 4 for k in range(1, 11)}
    naming = name_levels(10, False, ribs, c2=9, c2_confirmable=True)
    assert not naming.confirmed
    assert any("cervical rib" in line for line in naming.evidence)


def test_a_dens_not_whole_in_view_or_a_missed_disc_unconfirms() -> None:
    assert not name_levels(6, False, {}, c2=5, c2_confirmable=False).confirmed
    missed = name_levels(6, False, {}, c2=5, c2_confirmable=True, spacing_problem="gap")
    assert not missed.confirmed and missed.method == "c2"


def test_c2_and_sacrum_agree_on_23_vertebrae_between() -> None:
    # segment 1 sacrum, 2..24 = L5..C2 (23 vertebrae), 25 = C1
    naming = name_levels(25, True, {}, c2=24, c2_confirmable=True)
    assert naming.method == "c2+sacrum" and naming.confirmed
    assert naming.levels[0] is VertebralLevel.L5 and naming.levels[-1] is VertebralLevel.C1


def test_c2_and_sacrum_disagreeing_unconfirm_every_name() -> None:
    # one vertebra too few between C2 and the sacrum (a sacralised L5, 11 thoracic...)
    naming = name_levels(24, True, {}, c2=23, c2_confirmable=True)
    assert not naming.confirmed
    assert any("C2 and sacrum disagree" in line for line in naming.evidence)


def test_more_vertebrae_below_c2_than_c2_to_l5_fall_back_unconfirmed() -> None:
    naming = name_levels(26, False, {}, c2=25, c2_confirmable=True)
    assert not naming.confirmed and naming.method == "relative"


# -- phantoms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", c2_cases(), ids=lambda c: c.name)
def test_c2_phantoms_named_right_and_confirmed_only_with_the_whole_dens(case) -> None:
    phantom = make_spine_phantom(case.spec)
    result = segment_ct(phantom.ct)
    pred = np.asarray(result.labels.labels)
    truth = np.asarray(phantom.labels.labels)
    assert _confirmed_wrong(result, pred, truth) == [], result.level_evidence
    if case.landmark:
        assert result.level_method.startswith("c2") and result.levels_confirmed, (
            result.level_evidence
        )
        assert all(v.level_confirmed for v in result.vertebrae)
        for t in phantom.truth.values():
            assert vertebra_overlap(pred, truth, t.label).best_label == t.label, t.level
        named = [v for v in result.vertebrae if v.level != "sacrum"]  # not a level
        assert len(named) == len(phantom.truth)
    else:
        assert not result.levels_confirmed, result.level_evidence


def test_c1_to_t3_ribs_found_from_t1_down() -> None:
    spec = PhantomSpec(levels=PHANTOM_LEVELS[:10], atlas=True, ribs=True)
    result = segment_ct(make_spine_phantom(spec).ct)
    bearing = {v.level: v.rib_bearing for v in result.vertebrae}
    assert bearing["T1"] and bearing["T2"] and bearing["T3"]
    assert not any(bearing[f"C{i}"] for i in range(2, 8))
    assert result.level_method == "c2+ribs"


@pytest.mark.parametrize("spacing", [1.0, 1.5])
def test_cut_from_above_confirms_only_with_the_dens_tip_in_view(spacing: float) -> None:
    # the C1-C6 phantom cut from the top every ~4 mm, from above the atlas down into C2's body:
    # names from C2 are confirmed only while the dens's tip (the last slice drawn with C2's
    # label) is in view; never confirmed wrong
    phantom = make_spine_phantom(
        PhantomSpec(levels=C1_TO_C6, atlas=True, spacing_mm=(spacing,) * 3, margin_mm=20.0)
    )
    hu_all = np.asarray(phantom.ct.hu)
    truth_all = np.asarray(phantom.labels.labels)
    assert phantom.ct.grid.axis_closest_to(2) == 2  # RAS: the last axis runs to the head
    c2_slices = np.flatnonzero((truth_all == 49).any(axis=(0, 1)))
    tip = int(c2_slices.max())
    step = max(1, round(4.0 / spacing))
    confirmed_tops = []
    for top in range(hu_all.shape[2], int(c2_slices.min()), -step):
        hu = np.ascontiguousarray(hu_all[:, :, :top])
        result = segment_ct(CtVolume(hu, Grid(hu.shape, phantom.ct.grid.affine), f"top {top}"))
        pred = np.asarray(result.labels.labels)
        assert _confirmed_wrong(result, pred, truth_all[:, :, :top]) == [], (top, tip)
        if result.levels_confirmed:
            confirmed_tops.append(top)
            assert top > tip, (top, tip, result.level_evidence)
    # ...and confirmed once the scan reaches a few mm above the tip
    assert confirmed_tops and min(confirmed_tops) <= tip + 1 + step + round(4.0 / spacing)
