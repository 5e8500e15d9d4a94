"""Genant grades on REAL vertebra masks: healthy levels stay grade 0, and fractures built into
real bodies in code (:mod:`spinewatch.validation.fracture_insertion`) are graded -- alone and
next to another fracture, including next to VerSe004's real severe L1 fracture.

The deformities are relative to each real body's own shape; the grade is relative to the
level's normal shape (as a reader grades it), so a body whose own shape is off the population
mean reads a few points higher or lower. Measured (this file):

* healthy: VerSe004 T9-T12 and L2-L5, TPTBox L3, TotalSegmentator example L1 (3 mm): 0 of 10
  graded >= 1 (the rectangle-and-raw-neighbour rule graded 3 of them as mild fractures:
  VerSe004 T9 biconcave, TPTBox L3 biconcave, TotalSegmentator L1 wedge);
* VerSe004 L1 (real severe fracture): grade 3;
* 17 fractures built into real bodies (30-50 % relative to the body's own shape; VerSe004 10,
  TPTBox L3 3, TotalSegmentator L1 4): all graded >= 1 with the right type, except the crush of
  an isolated vertebra (TPTBox L3, both neighbours cut by the crop), which no rule can see
  without a neighbour. One grade low: VerSe004 L2 wedge 35 % -> 22.7 % (its own Ha/Hp, 1.08,
  is 16 % above the normal L2) and TotalSegmentator L1 biconcave 35 % at 3 mm -> 22.0 %. One
  grade high: VerSe004 L5 wedge 35 % -> 42.9 % and TotalSegmentator L1 wedge 35 % -> 42.6 %
  (own ratios 9 % and 16 % below normal).
"""

from __future__ import annotations

import pytest

from spinewatch.imaging.analysis import analyze
from spinewatch.imaging.io import load_labels
from spinewatch.validation.fracture_insertion import deform_body

pytestmark = pytest.mark.shared_data

VERSE = "ct/verse004/sub-verse004_seg-vert_msk.nii.gz"
TPTBOX = "ct/tptbox-ct/sub-ct_seg-vert_label-22_msk.nii.gz"
TOTALSEG = "ct/totalseg-example/example_seg.nii.gz"


def _graded(labels, convention: str) -> dict[str, dict]:
    report = analyze(None, labels, convention=convention).to_json_dict()
    return {v["level"]: v for v in report["vertebrae"]}


def _deformed(shared_file, path: str, convention: str, deformities):
    labels = load_labels(shared_file(path))
    for level, kind, loss in deformities:
        labels, _before = deform_body(labels, convention, level, kind, loss)
    return _graded(labels, convention)


def test_real_healthy_vertebrae_are_grade_0(shared_file) -> None:
    verse = _graded(load_labels(shared_file(VERSE)), "verse")
    healthy = [v for name, v in verse.items() if name != "L1"]
    assert [v["level"] for v in healthy] == ["T9", "T10", "T11", "T12", "L2", "L3", "L4", "L5"]
    for v in healthy:
        assert v["genant_grade"] == 0, v
    assert (verse["L1"]["genant_grade"], verse["L1"]["deformity"]) == (3, "crush")
    assert "L1" not in verse["T12"]["reference_levels"] + verse["L2"]["reference_levels"]
    tptbox = _graded(load_labels(shared_file(TPTBOX)), "verse")
    assert tptbox["L3"]["genant_grade"] == 0
    totalseg = _graded(load_labels(shared_file(TOTALSEG)), "totalsegmentator")
    assert totalseg["L1"]["genant_grade"] == 0


VERSE_CASES = [
    # (deformities, expected (level, grade or None for ">= 1", type))
    pytest.param(
        [("T12", "crush", 0.32)], [("T12", 2, "crush"), ("L1", 3, "crush")], id="T12crush-nextto-L1"
    ),
    pytest.param([("L2", "wedge", 0.35)], [("L2", None, "wedge")], id="L2wedge-nextto-L1"),
    pytest.param(
        [("L3", "biconcave", 0.35), ("L4", "crush", 0.50)],
        [("L3", 2, "biconcave"), ("L4", 3, "crush")],
        id="L3biconcave-L4crush",
    ),
    pytest.param(
        [("T11", "wedge", 0.50), ("T12", "crush", 0.32)],
        [("T11", 3, "wedge"), ("T12", 2, "crush")],
        id="T11wedge-T12crush-L1",
    ),
    pytest.param(
        [("L2", "crush", 0.30), ("L3", "crush", 0.45)],
        [("L2", 2, "crush"), ("L3", 3, "crush")],
        id="L2crush-L3crush",
    ),
    pytest.param([("L5", "wedge", 0.35)], [("L5", None, "wedge")], id="L5wedge"),
    pytest.param([("T10", "biconcave", 0.32)], [("T10", None, "biconcave")], id="T10biconcave"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("deformities", "expected"), VERSE_CASES)
def test_fractures_built_into_verse004_are_graded(shared_file, deformities, expected) -> None:
    got = _deformed(shared_file, VERSE, "verse", deformities)
    deformed = {level for level, _, _ in deformities}
    for level, grade, kind in expected:
        v = got[level]
        assert v["deformity"] == kind, v
        if grade is None:
            assert v["genant_grade"] >= 1, v
        else:
            assert v["genant_grade"] == grade, v
        assert not deformed & set(v["reference_levels"]), v
        assert "L1" not in v["reference_levels"], v
    for level, v in got.items():
        if level not in deformed and level != "L1":
            assert v["genant_grade"] == 0, v


@pytest.mark.parametrize(
    ("path", "convention", "level", "kind", "loss", "grade"),
    [
        (TPTBOX, "verse", "L3", "wedge", 0.35, 2),
        (TPTBOX, "verse", "L3", "biconcave", 0.35, 2),
        (TOTALSEG, "totalsegmentator", "L1", "wedge", 0.50, 3),
        (TOTALSEG, "totalsegmentator", "L1", "biconcave", 0.50, 3),
        (TOTALSEG, "totalsegmentator", "L1", "wedge", 0.35, None),
        (TOTALSEG, "totalsegmentator", "L1", "biconcave", 0.35, None),
    ],
)
def test_fractures_built_into_single_real_vertebrae(
    shared_file, path: str, convention: str, level: str, kind: str, loss: float, grade
) -> None:
    """TPTBox (1.5 mm) and the TotalSegmentator example (3 mm): one measurable vertebra each,
    so only the within-vertebra comparisons apply."""
    v = _deformed(shared_file, path, convention, [(level, kind, loss)])[level]
    assert v["deformity"] == kind, v
    assert v["genant_grade"] >= 1 if grade is None else v["genant_grade"] == grade, v
    assert v["reference_height_mm"] is None


def test_isolated_crush_is_a_known_blind_spot(shared_file) -> None:
    """All three heights of TPTBox L3 lowered alike, with no measured neighbour: nothing to
    compare with, so it stays grade 0 -- documented, not hidden."""
    v = _deformed(shared_file, TPTBOX, "verse", [("L3", "crush", 0.5)])["L3"]
    assert v["reference_height_mm"] is None and v["genant_grade"] == 0
    assert v["height_posterior_mm"] < 0.6 * 27.0
