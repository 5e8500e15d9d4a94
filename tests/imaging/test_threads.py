"""spinewatch.imaging.threads: vertebrae in parallel, results in order, reports independent of
the thread count."""

from __future__ import annotations

import threading
import time

import pytest

from spinewatch.core.conventions import LabelConvention
from spinewatch.imaging.analysis import analyze
from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom
from spinewatch.imaging.threads import (
    ThreadSettingError,
    analysis_threads,
    ordered_imap,
    ordered_map,
)


def test_results_keep_the_input_order_whatever_finishes_first() -> None:
    def slow_first(x: int) -> tuple[int, str]:
        time.sleep(0.05 if x == 0 else 0.0)
        return x, threading.current_thread().name

    got = ordered_map(slow_first, list(range(6)), threads=3)
    assert [x for x, _ in got] == list(range(6))
    assert len({name for _, name in got}) > 1  # really on several threads
    assert ordered_map(lambda x: x + 1, [5], threads=4) == [6]
    assert ordered_map(lambda x: x + 1, [], threads=4) == []


def test_an_error_comes_out_at_its_item() -> None:
    def boom(x: int) -> int:
        if x == 2:
            raise ValueError(f"item {x}")
        return x

    seen = []
    with pytest.raises(ValueError, match="item 2"):
        for value in ordered_imap(boom, [0, 1, 2, 3], threads=2):
            seen.append(value)
    assert seen == [0, 1]


def test_the_thread_count_setting() -> None:
    assert analysis_threads(3) == 3
    assert analysis_threads(None, {"SPINEWATCH_ANALYSIS_THREADS": " 2 "}) == 2
    assert 1 <= analysis_threads(None, {}) <= 4
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(ThreadSettingError, match="SPINEWATCH_ANALYSIS_THREADS"):
            analysis_threads(None, {"SPINEWATCH_ANALYSIS_THREADS": bad})
    with pytest.raises(ThreadSettingError, match="expected a whole number"):
        analysis_threads(0)


def test_the_report_does_not_depend_on_the_thread_count() -> None:
    spec = PhantomSpec(
        levels=("T12", "L1", "L2", "L3"),
        spacing_mm=(1.2, 1.2, 1.5),
        deformities={"L1": ("wedge", 30.0)},
        lesions={"L2": (LesionSpec(radius_mm=7.0, offset_mm=(0.0, 3.0, 0.0), hu=20.0),)},
        cement=("L3",),
        noise_hu_sd=12.0,
        seed=5,
    )
    ph = make_spine_phantom(spec)
    reports = []
    for threads in (1, 3):
        report = analyze(
            ph.ct, ph.labels, convention=LabelConvention.TOTALSEGMENTATOR, threads=threads
        ).to_json_dict()
        report["scan"].pop("analysed_at")
        reports.append(report)
    assert reports[0] == reports[1]
    assert [v["level"] for v in reports[0]["vertebrae"]] == ["T12", "L1", "L2", "L3"]
