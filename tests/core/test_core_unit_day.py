"""Core vocabularies of the unit's day: hospital numbers, the surveillance interval rule,
visit outcomes, cement and biopsy fields of a treated level and the cement plausibility check."""

from __future__ import annotations

import pytest

from spinewatch.core import (
    DEFAULT_RULE,
    HospitalNumberError,
    IntervalRule,
    ProcedureError,
    RiskState,
    SurveillanceError,
    TreatedLevel,
    VisitOutcome,
    cement_volume_warning,
    hospital_number_key,
    names_match,
    tidy_hospital_number,
)


@pytest.mark.parametrize("typed", ["demo 00002", "demo-00002", "DEMO-00002", " Demo.00002 "])
def test_spellings_of_one_hospital_number_share_one_key(typed: str) -> None:
    assert hospital_number_key(tidy_hospital_number(typed)) == "DEMO00002"


def test_hospital_number_is_tidied_but_keeps_its_separators() -> None:
    assert tidy_hospital_number("  demo   00002 ") == "DEMO 00002"
    assert tidy_hospital_number("demo-00002") == "DEMO-00002"


@pytest.mark.parametrize("bad", ["", "   ", "--", "AB#12", "x" * 65, 12])
def test_unusable_hospital_numbers_are_refused(bad: object) -> None:
    with pytest.raises(HospitalNumberError, match="hospital number"):
        tidy_hospital_number(bad)


def test_names_match_ignores_case_accents_and_hyphens() -> None:
    assert names_match("Müller-Smith", "muller smith")
    assert not names_match("Muller", "Mueller")
    assert not names_match("", "")


def test_interval_rule_by_diagnosis_and_risk() -> None:
    assert DEFAULT_RULE.interval_days(["myeloma"], "low") == 90
    assert DEFAULT_RULE.interval_days(["osteoporotic_fracture", "metastasis"], "high") == 30
    assert DEFAULT_RULE.interval_days(["haemangioma"], "low") == 180
    # a vertebra whose risk could not be assessed is never treated as a low risk
    for kinds in (["myeloma"], []):
        assert DEFAULT_RULE.interval_days(kinds, "not_assessable") <= DEFAULT_RULE.interval_days(
            kinds, "moderate"
        )
        assert DEFAULT_RULE.interval_days(kinds, RiskState.TREAT_SIGNAL) == (
            DEFAULT_RULE.interval_days(kinds, "high")
        )
    assert DEFAULT_RULE.interval_days([], None) == 180


def test_interval_rule_is_configurable_and_validated() -> None:
    table = DEFAULT_RULE.to_dict()
    table["malignant"]["low"] = 120
    assert IntervalRule.from_dict(table).interval_days(["myeloma"], "low") == 120
    table["malignant"]["low"] = 0
    with pytest.raises(SurveillanceError, match=r"malignant\.low 0"):
        IntervalRule.from_dict(table)
    with pytest.raises(SurveillanceError, match="missing"):
        IntervalRule.from_dict({"malignant": {"low": 90}, "other": table["other"]})
    with pytest.raises(SurveillanceError, match="risk state"):
        DEFAULT_RULE.interval_days([], "dreadful")


def test_visit_outcomes() -> None:
    assert VisitOutcome.parse("Lost to follow-up") is VisitOutcome.LOST_TO_FOLLOW_UP
    assert VisitOutcome.DIED.ends_follow_up and not VisitOutcome.DECLINED.ends_follow_up


def test_treated_level_access_and_biopsy() -> None:
    level = TreatedLevel(
        "L1", "transpedicular", 11, 4.0, access="bipedicular", biopsy=True, biopsy_result="myeloma"
    )
    assert level.access.value == "bipedicular" and level.biopsy_result.value == "myeloma"
    with pytest.raises(ProcedureError, match="access 'unipedicular'"):
        TreatedLevel("C2", "anterolateral", 13, 2.0, access="unipedicular")
    with pytest.raises(ProcedureError, match="without a biopsy"):
        TreatedLevel("L1", "transpedicular", 11, 4.0, biopsy_result="benign")


def test_cement_volume_warning_per_region() -> None:
    assert cement_volume_warning("L3", 5.0) is None
    assert "more than the 4 ml" in (cement_volume_warning("C2", 6.0) or "")
    assert "less than" in (cement_volume_warning("L3", 0.3) or "")
    assert cement_volume_warning("T8", 9.5) is not None
