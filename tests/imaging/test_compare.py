"""compare_reports / load_report: per-level change between a prior and a current spine report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spinewatch.core.errors import InputError
from spinewatch.imaging import compare as cmp
from spinewatch.imaging.compare import (
    ReportFormatError,
    compare_reports,
    format_comparison_text,
    load_report,
)
from spinewatch.imaging.report import SpineReport


def vertebra(level: str, **overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "level": level,
        "label": 31,
        "body_centroid_mm": [0.0, 10.0, -100.0],
        "height_anterior_mm": 25.0,
        "height_middle_mm": 24.0,
        "height_posterior_mm": 26.0,
        "reference_height_mm": 26.0,
        "genant_grade": 0,
        "deformity": "none",
        "height_loss_pct": 4.0,
        "truncated": False,
        "trabecular_hu_median": 180.0,
        "trabecular_hu_mean": 178.0,
        "lytic_volume_ml": 0.0,
        "lytic_fraction": 0.0,
        "cement_volume_ml": 0.0,
        "collapse_risk": "low",
        "reasons": [],
        "quality_flags": [],
    }
    entry.update(overrides)
    return entry


def report_dict(*vertebrae: dict[str, Any], **scan: Any) -> dict[str, Any]:
    return {
        "scan": {"ct": "ct.nii.gz", "labels": "seg.nii.gz", **scan},
        "vertebrae": list(vertebrae),
    }


def report(*vertebrae: dict[str, Any], **scan: Any) -> SpineReport:
    return SpineReport.from_json_dict(report_dict(*vertebrae, **scan))


def level(result: dict[str, Any], name: str) -> dict[str, Any]:
    (entry,) = [e for e in result["levels"] if e["level"] == name]
    return entry


def test_identical_reports_change_nothing() -> None:
    r = report(vertebra("T12"), vertebra("L1"))
    result = compare_reports(r, report(vertebra("T12"), vertebra("L1")))
    assert [e["level"] for e in result["levels"]] == ["T12", "L1"]
    for e in result["levels"]:
        assert e["flags"] == []
        assert e["signal_to_treat"] is False
        assert e["height_anterior_mm"]["change_mm"] == 0.0
        assert e["lytic_volume_ml"]["change_ml"] == 0.0
    assert result["summary"]["signal_to_treat"] == []
    json.dumps(result, allow_nan=False)


def test_changes_match_independent_arithmetic() -> None:
    prior = report(
        vertebra(
            "L2",
            height_anterior_mm=25.0,
            height_middle_mm=24.0,
            trabecular_hu_median=180.0,
            lytic_volume_ml=1.0,
            lytic_fraction=0.05,
        )
    )
    current = report(
        vertebra(
            "L2",
            height_anterior_mm=22.3,
            height_middle_mm=24.4,
            trabecular_hu_median=171.0,
            lytic_volume_ml=1.3,
            lytic_fraction=0.07,
        )
    )
    e = level(compare_reports(prior, current), "L2")
    assert e["height_anterior_mm"] == {
        "prior": 25.0,
        "current": 22.3,
        "change_mm": -2.7,
        "change_pct": round(-2.7 / 25 * 100, 1),
    }
    assert e["height_middle_mm"]["change_mm"] == pytest.approx(0.4)
    assert e["trabecular_hu_median"]["change_hu"] == -9.0
    assert e["lytic_volume_ml"]["change_ml"] == pytest.approx(0.3)
    assert e["lytic_volume_ml"]["change_pct"] == pytest.approx(30.0)
    assert e["lytic_fraction"]["change"] == pytest.approx(0.02)


def test_new_lesion_gives_the_signal_to_treat() -> None:
    prior = report(vertebra("L1", lytic_volume_ml=0.0))
    current = report(vertebra("L1", lytic_volume_ml=1.2, lytic_fraction=0.06))
    e = level(compare_reports(prior, current), "L1")
    assert e["flags"] == ["new_lesion"]
    assert e["signal_to_treat"] is True
    assert any("new lytic lesion" in r for r in e["reasons"])


def test_tiny_lytic_signal_is_not_a_new_lesion() -> None:
    prior = report(vertebra("L1", lytic_volume_ml=0.0))
    current = report(vertebra("L1", lytic_volume_ml=cmp.NEW_LESION_MIN_ML / 2))
    assert level(compare_reports(prior, current), "L1")["flags"] == []


@pytest.mark.parametrize(
    ("before", "after", "grows"),
    [
        (1.0, 1.6, True),  # +0.6 ml, +60 %
        (4.0, 4.6, False),  # +0.6 ml but only +15 %: within the volume error
        (0.5, 0.9, False),  # +80 % but only +0.4 ml
        (2.0, 1.0, False),  # shrinking (treated?)
    ],
)
def test_lesion_growth_needs_both_absolute_and_relative_increase(
    before: float, after: float, grows: bool
) -> None:
    e = level(
        compare_reports(
            report(vertebra("L3", lytic_volume_ml=before)),
            report(vertebra("L3", lytic_volume_ml=after)),
        ),
        "L3",
    )
    assert ("lesion_growth" in e["flags"]) is grows
    assert e["signal_to_treat"] is grows


def test_new_fracture_and_collapse() -> None:
    prior = report(vertebra("T12"), vertebra("L1"))
    current = report(
        vertebra("T12", genant_grade=1, deformity="wedge", height_loss_pct=22.0),
        vertebra("L1", genant_grade=3, deformity="crush", height_loss_pct=45.0),
    )
    result = compare_reports(prior, current)
    t12, l1 = level(result, "T12"), level(result, "L1")
    assert t12["flags"] == ["new_fracture"]
    assert t12["signal_to_treat"] is True
    # Grade 3 is already collapsed: the flag stays, the treat-before-collapse signal does not.
    assert l1["flags"] == ["new_fracture"]
    assert l1["signal_to_treat"] is False
    assert any("collapsed" in r for r in l1["reasons"])
    assert result["summary"]["new_fracture"] == ["T12", "L1"]


def test_worse_fracture_by_grade_and_by_height() -> None:
    prior = report(
        vertebra("L1", genant_grade=1, height_loss_pct=22.0, height_anterior_mm=20.0),
        vertebra("L2", genant_grade=1, height_loss_pct=22.0, height_anterior_mm=20.0),
        vertebra("L3", genant_grade=1, height_loss_pct=22.0, height_anterior_mm=20.0),
    )
    current = report(
        vertebra("L1", genant_grade=2, height_loss_pct=30.0, height_anterior_mm=18.0),
        # Same grade, loss +6 points and anterior height -2.5 mm: progressing.
        vertebra("L2", genant_grade=1, height_loss_pct=28.0, height_anterior_mm=17.5),
        # Loss +6 points but heights within noise (-1 mm): not called worse.
        vertebra("L3", genant_grade=1, height_loss_pct=28.0, height_anterior_mm=19.0),
    )
    result = compare_reports(prior, current)
    assert level(result, "L1")["flags"] == ["worse_fracture"]
    assert level(result, "L2")["flags"] == ["worse_fracture"]
    assert level(result, "L3")["flags"] == []
    assert level(result, "L2")["signal_to_treat"] is True


def test_early_height_loss_without_fracture() -> None:
    prior = report(vertebra("L4", height_posterior_mm=26.0))
    current = report(vertebra("L4", height_posterior_mm=26.0 - cmp.HEIGHT_DROP_MM - 0.5))
    e = level(compare_reports(prior, current), "L4")
    assert e["flags"] == ["height_loss"]
    assert e["signal_to_treat"] is True
    assert any("posterior height -2.5 mm" in r for r in e["reasons"])


@pytest.mark.parametrize(("after", "drops"), [(150.0, True), (170.0, False), (200.0, False)])
def test_density_drop(after: float, drops: bool) -> None:
    e = level(
        compare_reports(
            report(vertebra("L1", trabecular_hu_median=180.0)),
            report(vertebra("L1", trabecular_hu_median=after)),
        ),
        "L1",
    )
    assert ("density_drop" in e["flags"]) is drops


def test_newly_treated_vertebra_has_no_signal() -> None:
    prior = report(vertebra("L1", lytic_volume_ml=0.0))
    current = report(vertebra("L1", lytic_volume_ml=2.0, cement_volume_ml=3.5))
    e = level(compare_reports(prior, current), "L1")
    assert "newly_treated" in e["flags"]
    assert e["signal_to_treat"] is False
    assert any("cemented" in r for r in e["reasons"])


def test_levels_in_one_report_only_are_flagged_in_cranio_caudal_order() -> None:
    prior = report(vertebra("L1"), vertebra("L2"))
    current = report(vertebra("T12", lytic_volume_ml=3.0), vertebra("L1"))
    result = compare_reports(prior, current)
    assert [e["level"] for e in result["levels"]] == ["T12", "L1", "L2"]
    t12 = level(result, "T12")
    assert t12["flags"] == ["level_not_in_prior"]
    assert t12["signal_to_treat"] is False
    assert t12["height_anterior_mm"]["change_mm"] is None
    assert level(result, "L2")["flags"] == ["level_not_in_current"]
    assert result["summary"]["level_not_in_prior"] == ["T12"]


def test_null_measurements_compare_as_unknown() -> None:
    """A labels-only prior (no CT): density and lesion changes are unknown, not zero."""
    prior = report(
        vertebra(
            "L1",
            trabecular_hu_median=None,
            lytic_volume_ml=None,
            lytic_fraction=None,
            cement_volume_ml=None,
        )
    )
    current = report(vertebra("L1", lytic_volume_ml=2.0))
    e = level(compare_reports(prior, current), "L1")
    assert e["lytic_volume_ml"]["change_ml"] is None
    assert e["trabecular_hu_median"]["change_hu"] is None
    assert e["flags"] == []


def test_interval_days_and_annual_density_change() -> None:
    prior = report(vertebra("L1", trabecular_hu_median=180.0), study_date="2024-01-01")
    current = report(vertebra("L1", trabecular_hu_median=170.0), study_date="20240701")
    result = compare_reports(prior, current)
    assert result["interval_days"] == 182
    hu = level(result, "L1")["trabecular_hu_median"]
    assert hu["change_hu_per_year"] == pytest.approx(-10.0 * 365.25 / 182, abs=0.05)
    assert compare_reports(report(vertebra("L1")), report(vertebra("L1")))["interval_days"] is None


def test_swapped_dates_are_refused() -> None:
    prior = report(vertebra("L1"), study_date="2024-07-01")
    current = report(vertebra("L1"), study_date="2024-01-01")
    with pytest.raises(ReportFormatError, match="swapped"):
        compare_reports(prior, current)


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ([1, 2], "not a SpineWatch report"),
        ({"vertebrae": []}, "'scan' missing"),
        ({"scan": {}, "vertebrae": "L1"}, "vertebrae: expected a list"),
        (
            {"scan": {}, "vertebrae": [{"level": "Q7"}]},
            r"vertebrae\[0\]\.level: expected a level name like 'L1', got 'Q7'",
        ),
        ({"scan": {}, "vertebrae": [{"level": 3}]}, r"vertebrae\[0\]\.level"),
        ({"scan": {}, "vertebrae": [vertebra("L1"), vertebra("L1")]}, "appears twice"),
        (
            {"scan": {}, "vertebrae": [vertebra("L1", height_anterior_mm="25")]},
            r"height_anterior_mm: expected a finite number",
        ),
        (
            {"scan": {}, "vertebrae": [vertebra("L1", lytic_volume_ml=float("nan"))]},
            "lytic_volume_ml",
        ),
        ({"scan": {}, "vertebrae": [vertebra("L1", genant_grade=5)]}, "genant_grade"),
        ({"scan": {}, "vertebrae": [vertebra("L1", collapse_risk="severe")]}, "collapse_risk"),
    ],
)
def test_bad_reports_are_refused_naming_source_and_key(broken: Any, message: str) -> None:
    with pytest.raises(ReportFormatError, match=message) as info:
        SpineReport.from_json_dict(broken, source="old.json")
    assert isinstance(info.value, InputError)
    assert "old.json" in str(info.value)


def test_a_study_date_that_is_not_a_date_is_refused_naming_source() -> None:
    broken = SpineReport.from_json_dict({"scan": {"study_date": "last May"}, "vertebrae": []})
    with pytest.raises(ReportFormatError, match="study_date") as info:
        compare_reports(broken, report(vertebra("L1")), prior_source="old.json")
    assert "old.json" in str(info.value) and info.value.field == "scan.study_date"


def test_load_report_round_trip_and_bad_json(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(report_dict(vertebra("L1"))))
    assert load_report(good).to_json_dict() == report_dict(vertebra("L1"))

    bad = tmp_path / "bad.json"
    bad.write_text('{"scan": {},\n  "vertebrae": [\n    {"level": "L1",}\n  ]\n}')
    with pytest.raises(ReportFormatError, match=r"bad\.json: line 3, column 20: invalid JSON"):
        load_report(bad)

    binary = tmp_path / "scan.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ReportFormatError, match="not UTF-8"):
        load_report(binary)

    other = tmp_path / "other.json"
    other.write_text('{"patient": "x"}')
    with pytest.raises(ReportFormatError, match=r"other\.json: not a SpineWatch report"):
        load_report(other)

    with pytest.raises(FileNotFoundError):
        load_report(tmp_path / "missing.json")


def test_text_format_lists_levels_and_signal() -> None:
    prior = report(vertebra("L1"), vertebra("L2"), study_date="2024-01-01")
    current = report(vertebra("L1", lytic_volume_ml=1.0), vertebra("L2"), study_date="2024-04-01")
    text = format_comparison_text(compare_reports(prior, current))
    assert "interval: 91 days" in text
    assert "Signal to treat before collapse: L1" in text
    l1_row = next(line for line in text.splitlines() if line.startswith("L1 "))
    assert "YES" in l1_row and "new_lesion" in l1_row
    l2_row = next(line for line in text.splitlines() if line.startswith("L2 "))
    assert "YES" not in l2_row


def test_reasons_use_one_arrow_and_keys_stay_ascii() -> None:
    prior = report(
        vertebra("T12"),
        vertebra("L1", genant_grade=1, height_loss_pct=22.0, height_anterior_mm=20.0),
        vertebra("L2", genant_grade=1, height_loss_pct=22.0, height_anterior_mm=20.0),
        vertebra("L3", trabecular_hu_median=180.0),
    )
    current = report(
        vertebra("T12", genant_grade=2, deformity="wedge", height_loss_pct=30.0),
        vertebra("L1", genant_grade=2, height_loss_pct=30.0, height_anterior_mm=18.0),
        vertebra("L2", genant_grade=1, height_loss_pct=28.0, height_anterior_mm=17.5),
        vertebra("L3", trabecular_hu_median=150.0),
    )
    result = compare_reports(prior, current)
    reasons = {name: level(result, name)["reasons"] for name in ("T12", "L1", "L2", "L3")}
    assert "new fracture: Genant grade 0 → 2" in reasons["T12"]
    assert "fracture worse: Genant grade 1 → 2" in reasons["L1"]
    assert any(r.startswith("fracture progressing: height loss 22% → 28%") for r in reasons["L2"])
    assert "trabecular attenuation fell 180 → 150 HU" in reasons["L3"]
    every = [r for rs in reasons.values() for r in rs]
    assert every and not any("->" in r for r in every)
    # Only the human-readable text changed: flags and keys are plain ASCII identifiers.
    assert level(result, "T12")["flags"] == ["new_fracture"]
    assert all(k.isascii() for k in result) and all(k.isascii() for k in result["summary"])


def test_cement_threshold_is_the_analysis_own() -> None:
    from spinewatch.imaging import cement, compare

    assert compare.CEMENT_PRESENT_ML == cement.MIN_CEMENT_ML


def test_risk_values_are_the_analysis_own() -> None:
    from spinewatch.imaging import compare, risk

    assert risk.CollapseRisk is compare.CollapseRisk


# --- the comparison acts on the current report ------------------------------------------------


def _applied(prior: SpineReport, current: SpineReport) -> dict[str, Any]:
    return cmp.apply_comparison(current, compare_reports(prior, current)).to_json_dict()


def _v(result: dict[str, Any], name: str) -> dict[str, Any]:
    (entry,) = [v for v in result["vertebrae"] if v["level"] == name]
    return entry


@pytest.mark.parametrize(
    ("before", "after", "flag"),
    [
        ({}, {"lytic_volume_ml": 1.2, "lytic_fraction": 0.05}, "new_lesion"),
        (
            {"lytic_volume_ml": 1.0, "lytic_fraction": 0.04},
            {"lytic_volume_ml": 2.0, "lytic_fraction": 0.08},
            "lesion_growth",
        ),
        ({}, {"genant_grade": 1, "deformity": "wedge", "height_anterior_mm": 19.0}, "new_fracture"),
        (
            {"genant_grade": 1, "deformity": "wedge"},
            {"genant_grade": 2, "deformity": "wedge"},
            "worse_fracture",
        ),
    ],
)
@pytest.mark.parametrize("risk_now", ["low", "not_assessable", "moderate"])
def test_new_or_growing_lesion_or_fracture_raises_the_level_to_high(
    before: dict[str, Any], after: dict[str, Any], flag: str, risk_now: str
) -> None:
    prior = report(vertebra("L1", **before), vertebra("L2"), study_date="2024-01-10")
    current = report(
        vertebra("L1", **after, collapse_risk=risk_now, reasons=["measured reason"]),
        vertebra("L2"),
        study_date="2024-07-10",
    )
    out = _applied(prior, current)
    l1, l2 = _v(out, "L1"), _v(out, "L2")
    assert l1["treat_signal"] is True and flag in l1["change_flags"]
    assert l1["collapse_risk"] == "high"
    assert l1["reasons"][0].startswith("signal to treat before collapse since the prior scan (")
    assert l1["reasons"][0].endswith(
        f"collapse risk raised from {risk_now.replace('_', ' ')} to high"
    )
    assert l1["reasons"][1:] == ["measured reason"]
    assert l1["treat_signal_reasons"] == level(compare_reports(prior, current), "L1")["reasons"]
    # the untouched level carries "no signal", its risk as measured
    assert l2["treat_signal"] is False and l2["collapse_risk"] == "low"
    assert l2["treat_signal_reasons"] == [] and l2["change_flags"] == []
    assert out["scan"]["compared_with"] == {
        "source": "prior report",
        "study_date": "2024-01-10",
        "analysed_at": None,
        "interval_days": 182,
    }
    # the input is not modified, and the comparison is applied only once
    assert "treat_signal" not in current.to_json_dict()["vertebrae"][0]
    applied = SpineReport.from_json_dict(out)
    with pytest.raises(ReportFormatError, match="compared_with is already set"):
        cmp.apply_comparison(applied, compare_reports(prior, applied))


def test_weaker_signals_raise_to_moderate_and_high_stays_high() -> None:
    prior = report(vertebra("L1"), vertebra("L2", collapse_risk="high"))
    current = report(
        vertebra("L1", trabecular_hu_median=150.0),  # density drop of 30 HU
        vertebra("L2", collapse_risk="high", trabecular_hu_median=150.0),
    )
    out = _applied(prior, current)
    assert _v(out, "L1")["collapse_risk"] == "moderate"
    assert _v(out, "L1")["change_flags"] == ["density_drop"]
    assert "raised from low to moderate" in _v(out, "L1")["reasons"][0]
    assert _v(out, "L2")["collapse_risk"] == "high" and _v(out, "L2")["treat_signal"] is True
    assert not any("raised" in r for r in _v(out, "L2")["reasons"])


def test_no_signal_for_cemented_or_new_levels() -> None:
    prior = report(vertebra("L1"))
    current = report(
        vertebra("L1", lytic_volume_ml=2.0, cement_volume_ml=3.0, collapse_risk="low"),
        vertebra("L2", collapse_risk="not_assessable"),
    )
    out = _applied(prior, current)
    l1, l2 = _v(out, "L1"), _v(out, "L2")
    assert l1["treat_signal"] is False and l1["collapse_risk"] == "low"
    assert "already cemented: no further signal" in l1["treat_signal_reasons"]
    assert l2["treat_signal"] is None and l2["collapse_risk"] == "not_assessable"
    assert l2["treat_signal_reasons"] == ["not on the prior scan: no comparison"]
    assert l2["change_flags"] == ["level_not_in_prior"]


def test_not_assessable_reports_compare() -> None:
    prior = report(vertebra("L1", collapse_risk="not_assessable"))
    current = report(vertebra("L1", collapse_risk="not_assessable"))
    entry = level(compare_reports(prior, current), "L1")
    assert entry["collapse_risk"] == {"prior": "not_assessable", "current": "not_assessable"}
