"""The statistics helpers against scipy: the signed-rank p-value and paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from spinewatch.core.errors import InputError
from spinewatch.outcomes.stats import describe, holm_adjust, paired_comparison, signed_rank_p


def _samples(seed: int, count: int, max_n: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(2, max_n + 1))
        d = np.round(rng.choice(np.arange(-12, 5) * 0.5, size=n), 9)  # coarse: ties and zeros
        if np.any(d != 0):
            yield d


@pytest.mark.parametrize("d", list(_samples(1, 24, 9)), ids=lambda d: f"n{d.size}")
def test_signed_rank_p_equals_scipy_with_ties_and_zeros(d):
    assert signed_rank_p(d) == pytest.approx(stats.wilcoxon(d).pvalue, rel=1e-12, abs=1e-15)


def test_signed_rank_p_at_scipys_threshold_of_13():
    d = np.array([-5.5, -5.5, -6.0, -4.0, -3.0, -7.0, -2.0, -5.5, -1.0, 0.0, -6.5, 1.0, -5.0])
    assert signed_rank_p(d) == pytest.approx(stats.wilcoxon(d).pvalue, rel=1e-12)


@pytest.mark.parametrize(
    "d",
    [
        np.array([-3.1, -2.2, 1.3, -4.4, -0.5, -6.6, -2.7]),  # no ties: scipy's exact path
        np.round(np.random.default_rng(5).normal(-2, 2, 20).round(0), 9),  # n > 13: asymptotic
    ],
)
def test_signed_rank_p_other_paths_are_scipys(d):
    assert signed_rank_p(d) == pytest.approx(stats.wilcoxon(d).pvalue, rel=1e-12)


def test_signed_rank_p_all_zero_is_one_without_warning():
    assert signed_rank_p([0.0, 0.0, 0.0]) == 1.0


def test_float_noise_differences_count_as_ties():
    """7.6 -> 5.6 and 5.0 -> 3.0 are both -2 points: a tie, not -2.0000000000000004 vs -2.0."""
    baseline = np.array([7.6, 5.0, 8.0, 6.0, 9.0])
    followup = np.array([5.6, 3.0, 2.0, 5.0, 3.5])
    result = paired_comparison(baseline, followup, test="wilcoxon")
    d = np.round(followup - baseline, 9)
    assert np.unique(np.abs(d)).size == 4
    assert result.p_value == pytest.approx(stats.wilcoxon(d).pvalue)


def test_describe_matches_numpy_and_handles_small_inputs():
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    s = describe(x)
    assert (s.n, s.mean, s.median) == (8, pytest.approx(x.mean()), pytest.approx(np.median(x)))
    assert s.sd == pytest.approx(np.std(x, ddof=1))
    assert (s.q1, s.q3) == tuple(pytest.approx(v) for v in np.percentile(x, [25, 75]))
    one = describe([4.0])
    assert (one.n, one.mean, one.sd, one.median, one.q1, one.q3) == (1, 4.0, None, 4.0, 4.0, 4.0)
    assert describe([]).mean is None


def test_paired_comparison_refuses_unequal_lengths_and_unknown_tests():
    with pytest.raises(InputError, match="baseline has 2 values and follow-up 3"):
        paired_comparison([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="unknown test 'sign'"):
        paired_comparison([1.0, 2.0], [1.0, 2.0], test="sign")


def test_holm_keeps_order_and_skips_missing():
    assert holm_adjust([]) == []
    assert holm_adjust([None, None]) == [None, None]
    assert holm_adjust([0.01, None, 0.04, 0.03]) == [
        pytest.approx(0.03),
        None,
        pytest.approx(0.06),
        pytest.approx(0.06),
    ]
