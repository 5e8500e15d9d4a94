"""The simulated myeloma pattern on a real CT: one level's trabecular bone lowered far below the
patient's other vertebrae is reported as diffuse infiltration, and only that level."""

from __future__ import annotations

import pytest

from spinewatch.validation import InsertionError
from spinewatch.validation.myeloma import lower_level_density

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def whole_ct(shared_file):  # type: ignore[no-untyped-def]
    from spinewatch.imaging.io import load_ct
    from spinewatch.imaging.segmentation import segment_ct

    ct = load_ct(shared_file("ct/totalseg-example/example_ct.nii.gz"))
    return ct, segment_ct(ct).labels


def _infiltrated(ct, labels) -> dict[str, bool | None]:  # type: ignore[no-untyped-def]
    from spinewatch.imaging.analysis import analyze

    report = analyze(ct, labels, convention="totalsegmentator").to_json_dict()
    return {v["level"]: v["diffuse_infiltration"] for v in report["vertebrae"]}


def test_lowered_level_is_reported_and_no_other(whole_ct) -> None:  # type: ignore[no-untyped-def]
    ct, labels = whole_ct
    before = _infiltrated(ct, labels)
    assert sum(v is not None for v in before.values()) >= 4  # the real spine can be assessed
    assert True not in before.values()  # and is not infiltrated
    moved, shift = lower_level_density(ct, labels, "totalsegmentator", "L3", 70.0)
    assert shift.target_hu == pytest.approx(shift.original_hu - 70.0)
    after = _infiltrated(moved, labels)
    assert after["L3"] is True
    assert [lv for lv, v in after.items() if v and lv != "L3"] == []


def test_bad_requests_are_refused(whole_ct) -> None:  # type: ignore[no-untyped-def]
    ct, labels = whole_ct
    with pytest.raises(InsertionError, match="T3 is not in the label map"):
        lower_level_density(ct, labels, "totalsegmentator", "T3", 50.0)
    with pytest.raises(InsertionError, match="drop_hu=-5"):
        lower_level_density(ct, labels, "totalsegmentator", "L3", -5.0)
