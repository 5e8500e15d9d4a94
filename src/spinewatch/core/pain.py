"""Pain on the 0-10 scale (VAS/NRS), and the clinically important improvement.

Decimals are allowed (a visual analogue scale is read to 0.1). The clinically important
improvement is about 2 points or 30 % of the baseline (Farrar et al., Pain 2001; Salaffi et al.,
Eur J Pain 2004).

>>> PainScore.parse(" 7.5 ")
PainScore(value=7.5)
>>> is_responder(7.6, 5.6)
True
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

from spinewatch.core.errors import InputError

__all__ = ["PAIN_MAX", "PAIN_MIN", "PainScore", "PainScoreError", "is_responder", "pain_change"]

PAIN_MIN = 0.0
PAIN_MAX = 10.0
_EXPECTED = "expected a number from 0 to 10"
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_ROUND = 9  # decimals kept in differences, so that 7.6 - 5.6 is exactly 2.0


class PainScoreError(InputError):
    """A pain score that is not a number from 0 to 10."""


def _check(value: object, shown: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PainScoreError(f"pain score {shown!r} is not a number; {_EXPECTED}")
    result = float(value)
    if not math.isfinite(result) or not PAIN_MIN <= result <= PAIN_MAX:
        raise PainScoreError(f"pain score {shown!r} is out of range; {_EXPECTED}")
    return result


@dataclass(frozen=True, order=True)
class PainScore:
    """A pain score 0 <= value <= 10 (float; ints are converted). Ordered by value."""

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _check(self.value, self.value))

    def __float__(self) -> float:
        return self.value

    def __str__(self) -> str:
        return f"{self.value:g}"

    @classmethod
    def parse(cls, raw: str | int | float | PainScore) -> PainScore:
        """Strictly parse a score from text or a number.

        Text must be a plain decimal number (``"7"``, ``"7.5"``, ``" 7.5 "``); ``""``, ``"abc"``,
        ``"nan"``, ``"inf"``, exponents, decimal commas, ``bool`` and values outside 0..10 raise
        :class:`PainScoreError` naming the value.
        """
        if isinstance(raw, PainScore):
            return raw
        if isinstance(raw, str):
            text = raw.strip()
            if not _DECIMAL.fullmatch(text):
                raise PainScoreError(f"pain score {raw!r} is not a number; {_EXPECTED}")
            return cls(_check(float(text), raw))
        return cls(_check(raw, raw))


def _score(value: float | PainScore, field: str) -> float:
    if isinstance(value, PainScore):
        return value.value
    try:
        return _check(value, value)
    except PainScoreError as exc:
        raise PainScoreError(f"{field}: {exc}") from None


def pain_change(baseline: float | PainScore, followup: float | PainScore) -> float:
    """Follow-up minus baseline in points (negative = improvement), rounded to 9 decimals."""
    return round(_score(followup, "followup") - _score(baseline, "baseline"), _ROUND)


def is_responder(
    baseline: float | PainScore,
    followup: float | PainScore,
    *,
    min_points: float = 2.0,
    min_pct: float = 30.0,
) -> bool:
    """True when pain improved by at least ``min_points`` OR at least ``min_pct`` % of baseline.

    With a baseline of 0 the percentage is undefined, so only ``min_points`` counts. Both scores
    must be valid 0-10 scores (:class:`PainScoreError`). Differences are rounded to 9 decimals,
    so 7.6 -> 5.6 is an improvement of exactly 2 points.
    """
    base = _score(baseline, "baseline")
    follow = _score(followup, "followup")
    improvement = round(base - follow, _ROUND)
    if improvement >= min_points:
        return True
    return base > 0.0 and round(100.0 * (base - follow) / base, _ROUND) >= min_pct
