"""Pain scores and responders."""

from __future__ import annotations

import math
import random

import pytest

from spinewatch.core.pain import PainScore, PainScoreError, is_responder, pain_change


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("0", 0.0),
        ("10", 10.0),
        ("7.5", 7.5),
        (" 7.5 ", 7.5),
        ("7.", 7.0),
        (".5", 0.5),
        ("+3", 3.0),
        ("-0", 0.0),
        ("10.0", 10.0),
        (3, 3.0),
        (9.9, 9.9),
        (0, 0.0),
    ],
)
def test_parse_accepts(raw: str | float, value: float) -> None:
    score = PainScore.parse(raw)
    assert score.value == value and isinstance(score.value, float)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("", "not a number"),
        ("   ", "not a number"),
        ("abc", "not a number"),
        ("nan", "not a number"),
        ("inf", "not a number"),
        ("1e1", "not a number"),
        ("7,5", "not a number"),
        ("7.5.1", "not a number"),
        ("11", "out of range"),
        ("10.01", "out of range"),
        ("-1", "out of range"),
        ("-0.1", "out of range"),
        (True, "not a number"),
        (False, "not a number"),
        (math.nan, "out of range"),
        (math.inf, "out of range"),
        (11, "out of range"),
        (None, "not a number"),
    ],
)
def test_parse_rejects_naming_value(raw: object, kind: str) -> None:
    with pytest.raises(PainScoreError) as info:
        PainScore.parse(raw)  # type: ignore[arg-type]
    message = str(info.value)
    assert repr(raw) in message and kind in message
    assert "expected a number from 0 to 10" in message


def test_constructor_validates_and_orders() -> None:
    with pytest.raises(PainScoreError, match="12"):
        PainScore(12)
    scores = [PainScore.parse(v) for v in ("7", "2.5", "10", "0")]
    assert [s.value for s in sorted(scores)] == [0.0, 2.5, 7.0, 10.0]
    assert PainScore(3) == PainScore(3.0)
    assert float(PainScore(4.5)) == 4.5 and str(PainScore(4.0)) == "4"
    assert PainScore.parse(PainScore(2)) == PainScore(2)
    with pytest.raises(AttributeError):
        PainScore(2).value = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("baseline", "followup", "responder"),
    [
        (8, 6, True),  # exactly 2 points
        (7.6, 5.6, True),  # exactly 2 points despite float noise
        (8, 6.1, False),  # 1.9 points, 23.75 %
        (3, 2.1, True),  # 0.9 points = 30 %
        (3, 2.2, False),  # 26.7 %
        (5, 3.5, True),  # 30 % exactly
        (1, 0.7, True),  # 30 % of a low baseline
        (0, 0, False),
        (0, 2, False),  # worse
        (6, 8, False),
        (10, 0, True),
    ],
)
def test_is_responder(baseline: float, followup: float, responder: bool) -> None:
    assert is_responder(baseline, followup) is responder
    assert is_responder(PainScore(baseline), PainScore(followup)) is responder


def test_is_responder_thresholds() -> None:
    assert is_responder(8, 7, min_points=1.0, min_pct=100.0)
    assert not is_responder(8, 7, min_points=2.0, min_pct=50.0)
    assert is_responder(8, 4, min_points=5.0, min_pct=50.0)


def test_is_responder_matches_definition_on_grid() -> None:
    rng = random.Random(2001)
    for _ in range(3000):
        b = round(rng.uniform(0, 10), 1)
        f = round(rng.uniform(0, 10), 1)
        improvement_tenths = round(b * 10) - round(f * 10)  # exact integer arithmetic
        expected = improvement_tenths >= 20 or (
            b > 0 and improvement_tenths * 10 >= 3 * round(b * 10)
        )
        assert is_responder(b, f) is expected, (b, f)


@pytest.mark.parametrize(("baseline", "followup"), [(11, 5), (5, -1), (math.nan, 3), ("7", 3)])
def test_is_responder_validates(baseline: object, followup: object) -> None:
    with pytest.raises(PainScoreError, match=r"^(baseline|followup): pain score"):
        is_responder(baseline, followup)  # type: ignore[arg-type]


def test_pain_change() -> None:
    assert pain_change(7.6, 5.6) == -2.0
    assert pain_change(2, 5) == 3.0


def test_numpy_scalars_are_numbers_but_numpy_bool_is_not() -> None:
    np = pytest.importorskip("numpy")
    assert PainScore.parse(np.int64(3)).value == 3.0
    assert PainScore(np.float32(2.5)).value == 2.5
    assert is_responder(np.int64(8), np.float64(6.0))
    with pytest.raises(PainScoreError, match="not a number"):
        PainScore.parse(np.bool_(True))
