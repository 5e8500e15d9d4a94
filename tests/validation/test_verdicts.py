"""The judgements the validation sections make, on hand-made reports: a wrong reading, a
refusal of a readable map and an unmeasured "low" are each caught."""

from __future__ import annotations

from typing import Any

import pytest

from spinewatch.imaging.report import SpineReport
from spinewatch.validation.datasets import RealDataset, by_name
from spinewatch.validation.runs import RunOutcome
from spinewatch.validation.sections.modality_labels import reading_verdict
from spinewatch.validation.sections.risk_confidence import unmeasured


def _run(d: RealDataset, report: dict[str, Any] | None, *, user: bool = False) -> RunOutcome:
    refusal = None if report is not None else "refused: why"
    stage = None if report is not None else "labels"
    read = None if report is None else SpineReport.from_json_dict(report)
    return RunOutcome(d, user, read, refusal, stage, None, 0.1, None)


def _report(convention: str, levels: list[str], rejected=()) -> dict[str, Any]:
    return {
        "scan": {"labels_convention": convention, "rejected_labels": list(rejected)},
        "vertebrae": [{"level": lv} for lv in levels],
    }


def test_reading_verdicts() -> None:
    ts = by_name("ts-example-3mm")
    levels = ["T11", "T12", "L1", "L2"]
    assert reading_verdict(ts, _run(ts, _report("totalsegmentator", levels))) == "right"
    assert reading_verdict(ts, _run(ts, _report("verse", levels))).startswith("WRONG: read as")
    assert reading_verdict(ts, _run(ts, _report("totalsegmentator", levels[:3]))).startswith(
        "WRONG: levels"
    )
    # a label rejected for its geometry is not analysed, but not read wrong either
    rejected = [{"label": 30, "level": "L2", "reason": "too small"}]
    got = reading_verdict(ts, _run(ts, _report("totalsegmentator", levels[:3], rejected)))
    assert got == "right"
    assert reading_verdict(ts, _run(ts, None)) == "refused a readable map"


def test_maps_that_must_be_refused() -> None:
    sub = by_name("tptbox-ct-subreg")
    assert reading_verdict(sub, _run(sub, None)) == "right (refused)"
    assert reading_verdict(sub, _run(sub, _report("verse", ["L2"]))).startswith("WRONG")


def test_user_runs_with_undocumented_levels_check_the_convention_only() -> None:
    mri = by_name("tptbox-mri")
    run = _run(mri, _report("tptbox", ["L1", "L2", "L3"]), user=True)
    assert reading_verdict(mri, run) == "right"
    run = _run(mri, _report("verse", ["L1", "L2", "L3"]), user=True)
    assert reading_verdict(mri, run).startswith("WRONG")
    cta = by_name("cta")
    assert reading_verdict(cta, _run(cta, _report("binary", ["T11"]), user=True)).startswith(
        "WRONG: levels"
    )


@pytest.mark.parametrize(
    ("vertebra", "lacking"),
    [
        ({"height_posterior_mm": 25.0, "trabecular_hu_median": 150.0}, []),
        ({"height_posterior_mm": None, "trabecular_hu_median": 150.0}, ["heights"]),
        ({"height_posterior_mm": 25.0, "trabecular_hu_median": None}, ["density"]),
        ({}, ["heights", "density"]),
    ],
)
def test_unmeasured(vertebra: dict[str, Any], lacking: list[str]) -> None:
    report = SpineReport.from_json_dict({"scan": {}, "vertebrae": [{"level": "L1", **vertebra}]})
    assert unmeasured(report.vertebrae[0]) == lacking


def test_every_dataset_says_what_a_right_reading_is() -> None:
    from spinewatch.validation.datasets import DATASETS

    for d in DATASETS:
        assert d.labels is not None
        assert d.modality in ("CT", "MR")
        if d.has_user_option:
            assert not d.readings and d.user_readings and d.user_note, d.name
        assert not set(d.healthy_levels) & set(d.known_fractures), d.name
