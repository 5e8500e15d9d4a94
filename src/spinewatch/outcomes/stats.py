"""The statistics of a cohort outcome table: descriptive summaries and paired comparisons.

Pure functions on 1-D arrays of VAS pain scores (0-10 points). Nothing here knows about files,
patients or protocols; :mod:`spinewatch.outcomes.table` pairs the values and assembles rows.

Conventions (stated once, used everywhere):

- SD with ``ddof=1`` (sample standard deviation); ``None`` when fewer than 2 values.
- Quartiles by linear interpolation between order statistics (numpy's default, Hyndman & Fan
  type 7, as in R's ``quantile`` default).
- Change = follow-up minus baseline, so a fall in pain is negative. Its 95% CI uses the
  t distribution with ``n - 1`` degrees of freedom.
- Differences are rounded to 9 decimals (as :func:`spinewatch.core.pain.pain_change` does), so
  that 7.6 - 5.6 and 5.0 - 3.0 are the same 2-point change (a tie) and not 2.0000000000000004.
- p-values: paired t-test (:func:`scipy.stats.ttest_rel`) or Wilcoxon signed-rank with
  scipy's defaults (:func:`scipy.stats.wilcoxon`: zero differences dropped; two-sided; exact
  null distribution without ties or zeros; with ties or zeros an exhaustive sign-flip
  permutation test when n <= 13, the tie-corrected normal approximation above). The
  permutation case enumerates 2^n sign patterns in scipy (seconds per call); here its exact
  distribution is counted with a dynamic programme over rank sums instead (:func:`signed_rank_p`),
  which gives the same p-value in microseconds -- the tests check it against scipy.
- Holm's step-down adjustment across the post-operative points via
  :func:`statsmodels.stats.multitest.multipletests`.
- Responder: improvement >= 2 points or >= 30% of baseline
  (:func:`spinewatch.core.pain.is_responder`).

Warnings raised by scipy (nearly constant data, ties...) never escape: they are caught and
reported in the result's ``note``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from spinewatch.core.errors import InputError
from spinewatch.core.pain import is_responder

__all__ = [
    "CONFIDENCE",
    "TESTS",
    "PairedComparison",
    "Summary",
    "describe",
    "holm_adjust",
    "paired_comparison",
    "parse_test",
    "signed_rank_p",
]

TESTS: tuple[str, ...] = ("paired-t", "wilcoxon")
CONFIDENCE = 0.95
_EQUAL_ATOL = 1e-9  # differences closer than this (VAS points) count as equal
_ROUND = 9  # decimals kept in differences
_PERMUTATION_MAX_N = 13  # scipy's threshold for the exhaustive permutation test


def parse_test(test: str) -> str:
    """The test name, checked: ``"paired-t"`` or ``"wilcoxon"``; otherwise :class:`InputError`."""
    if test not in TESTS:
        raise InputError(f"unknown test {test!r}; expected one of {', '.join(TESTS)}")
    return test


@dataclass(frozen=True)
class Summary:
    """Descriptive statistics of one time point's VAS values (points 0-10)."""

    n: int
    mean: float | None
    sd: float | None
    median: float | None
    q1: float | None
    q3: float | None


def describe(values: npt.ArrayLike) -> Summary:
    """n, mean, SD (ddof=1), median and quartiles of a 1-D array; ``None`` where undefined."""
    x = np.asarray(values, dtype=float).ravel()
    n = int(x.size)
    if n == 0:
        return Summary(n=0, mean=None, sd=None, median=None, q1=None, q3=None)
    q1, median, q3 = np.percentile(x, [25.0, 50.0, 75.0])
    sd = float(np.std(x, ddof=1)) if n >= 2 else None
    return Summary(
        n=n,
        mean=float(np.mean(x)),
        sd=sd,
        median=float(median),
        q1=float(q1),
        q3=float(q3),
    )


@dataclass(frozen=True)
class PairedComparison:
    """Change from baseline at one follow-up point, over the patients who have both values.

    ``mean_change`` and ``ci95`` are in VAS points (follow-up minus baseline); ``responder_pct``
    in percent of ``n_paired``. Fields are ``None`` where undefined, and ``note`` says why.
    """

    n_paired: int
    mean_change: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    test: str
    responders: int
    responder_pct: float | None
    note: str | None


def _warning_text(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    seen: list[str] = []
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in seen:
            seen.append(text)
    return seen


def paired_comparison(
    baseline: npt.ArrayLike, followup: npt.ArrayLike, *, test: str = "paired-t"
) -> PairedComparison:
    """Compare paired VAS values (same patients, same order) with the chosen test.

    ``baseline`` and ``followup`` are 1-D arrays of equal length, element ``i`` belonging to the
    same patient. Fewer than 2 pairs: change, CI and p are ``None``. All differences zero: p is
    ``None`` (no test is defined). Paired t with all differences equal (zero variance): p is
    ``None`` as well. The reason is always given in ``note``.
    """
    test = parse_test(test)
    b = np.asarray(baseline, dtype=float).ravel()
    f = np.asarray(followup, dtype=float).ravel()
    if b.shape != f.shape:
        raise InputError(
            f"baseline has {b.size} values and follow-up {f.size}; expected one pair per patient"
        )
    n = int(b.size)
    responders = sum(is_responder(float(bv), float(fv)) for bv, fv in zip(b, f, strict=True))
    responder_pct = 100.0 * responders / n if n else None
    notes: list[str] = []

    if n < 2:
        notes.append(
            f"only {n} patient{'s' if n != 1 else ''} with both baseline and this time point; "
            "change, CI and p need at least 2"
        )
        return PairedComparison(
            n_paired=n,
            mean_change=None,
            ci95=None,
            p_value=None,
            test=test,
            responders=responders,
            responder_pct=responder_pct,
            note="; ".join(notes),
        )

    d = np.round(f - b, _ROUND)
    mean_change = float(np.mean(d))
    sd = float(np.std(d, ddof=1))
    all_equal = bool(np.all(np.abs(d - d[0]) <= _EQUAL_ATOL))
    if all_equal:
        sd = 0.0
    half = float(sps.t.ppf(0.5 + CONFIDENCE / 2.0, n - 1)) * sd / math.sqrt(n)
    ci95 = (mean_change - half, mean_change + half)

    p_value: float | None = None
    if all_equal and abs(d[0]) <= _EQUAL_ATOL:
        notes.append("all differences are zero; no test is defined (p not reported)")
    elif all_equal and test == "paired-t":
        notes.append(
            "all differences are equal (zero variance); the paired t-test is undefined "
            "(p not reported; consider --test wilcoxon)"
        )
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            p = float(sps.ttest_rel(f, b).pvalue) if test == "paired-t" else signed_rank_p(d)
        notes.extend(_warning_text(caught))
        if math.isfinite(p):
            p_value = p
        else:
            notes.append(f"{test} gave no finite p-value")

    return PairedComparison(
        n_paired=n,
        mean_change=mean_change,
        ci95=ci95,
        p_value=p_value,
        test=test,
        responders=responders,
        responder_pct=responder_pct,
        note="; ".join(notes) if notes else None,
    )


def signed_rank_p(differences: npt.ArrayLike) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences, as scipy's default.

    Same decision rule and result as ``scipy.stats.wilcoxon(differences).pvalue``: zeros are
    dropped from the ranking; without ties or zeros (or with more than 13 differences) scipy is
    called directly; otherwise the exact conditional null distribution of the positive-rank
    sum R+ under independent sign flips is counted (midranks are multiples of 1/2, so 2 R+ is an
    integer) and p = min(1, 2 min(P(R+ <= r), P(R+ >= r))), which is what scipy's exhaustive
    permutation test computes.
    """
    d = np.asarray(differences, dtype=float).ravel()
    nonzero = d[d != 0.0]
    has_ties = np.unique(np.abs(nonzero)).size < nonzero.size
    if nonzero.size == 0:
        return 1.0  # no signed ranks at all: scipy's value, without its warning
    if d.size > _PERMUTATION_MAX_N or not (has_ties or nonzero.size < d.size):
        return float(sps.wilcoxon(d).pvalue)
    doubled = np.rint(2.0 * sps.rankdata(np.abs(nonzero))).astype(np.int64)
    counts = np.zeros(int(doubled.sum()) + 1, dtype=np.float64)
    counts[0] = 1.0
    for rank in doubled:  # add one sign: each pattern either includes this rank in R+ or not
        counts[rank:] = counts[rank:] + counts[: counts.size - rank].copy()
    total = float(2**nonzero.size)
    observed = int(doubled[nonzero > 0].sum())
    p_less = counts[: observed + 1].sum() / total
    p_greater = counts[observed:].sum() / total
    return float(min(1.0, 2.0 * min(p_less, p_greater)))


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values over the family of the non-``None`` entries, order kept."""
    present = [i for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    if not present:
        return adjusted
    raw = np.array([p_values[i] for i in present], dtype=float)
    _, corrected, _, _ = multipletests(raw, method="holm")
    for i, value in zip(present, corrected, strict=True):
        adjusted[i] = float(value)
    return adjusted
