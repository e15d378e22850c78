"""Sample ratio mismatch detection."""

import numpy as np
import pytest
from scipy import stats

from modelrollout.stats.srm import sample_ratio_mismatch


def test_a_half_percent_skew_on_a_million_users_is_flagged() -> None:
    """505,000 / 495,000 against 50/50: chi-square = 2 * 5000^2 / 500000 = 100, p ~ 1.5e-23."""
    result = sample_ratio_mismatch([505_000, 495_000], [50, 50])
    assert result.statistic == pytest.approx(100.0)
    assert result.p_value == pytest.approx(stats.chi2.sf(100.0, 1))
    assert result.mismatch


def test_a_true_fifty_fifty_split_is_not_flagged() -> None:
    rng = np.random.default_rng(0)
    flagged = 0
    for _ in range(200):
        a = rng.binomial(1_000_000, 0.5)
        flagged += sample_ratio_mismatch([a, 1_000_000 - a], [0.5, 0.5]).mismatch
    assert flagged <= 2  # expected 0.2 false alarms at p < 0.001


def test_unequal_allocations_and_three_arms() -> None:
    assert not sample_ratio_mismatch([9_020, 980], [0.9, 0.1]).mismatch
    assert sample_ratio_mismatch([8_800, 1_200], [0.9, 0.1]).mismatch
    result = sample_ratio_mismatch([3300, 3350, 3350], [1, 1, 1])
    assert not result.mismatch
    assert result.expected == pytest.approx((3333.33, 3333.33, 3333.33), abs=0.01)


def test_no_traffic_is_not_a_mismatch() -> None:
    assert not sample_ratio_mismatch([0, 0], [1, 1]).mismatch


@pytest.mark.parametrize(
    ("observed", "weights"),
    [([10, 10], [1, 0]), ([10, -1], [1, 1]), ([10], [1]), ([10, 10], [1, 1, 1])],
)
def test_invalid_inputs(observed: list[float], weights: list[float]) -> None:
    with pytest.raises(ValueError, match=r"."):
        sample_ratio_mismatch(observed, weights)


def test_without_allowance_the_statistic_is_pearsons() -> None:
    exact = stats.chisquare([520, 480, 500], f_exp=[500, 500, 500])
    result = sample_ratio_mismatch([520, 480, 500], [1, 1, 1], allowance=[0, 0, 0])
    assert result.statistic == pytest.approx(exact.statistic)
    assert result.p_value == pytest.approx(exact.pvalue)


def test_a_deviation_within_the_allowance_counts_as_none() -> None:
    """1,100 / 900 against 50/50 is a mismatch (chi-square 20), unless each count may be 100 off."""
    assert sample_ratio_mismatch([1_100, 900], [1, 1]).mismatch
    within = sample_ratio_mismatch([1_100, 900], [1, 1], allowance=[100, 100])
    assert (within.statistic, within.p_value, within.mismatch) == (0.0, 1.0, False)


def test_only_the_excess_over_the_allowance_counts() -> None:
    """Deviations of 200 with 50 allowed: chi-square of 150 per arm over 1,000 expected, 45 in all."""
    result = sample_ratio_mismatch([1_200, 800], [1, 1], allowance=[50, 50])
    assert result.statistic == pytest.approx(2 * 150**2 / 1_000)
    assert result.mismatch


@pytest.mark.parametrize("allowance", [[1.0], [-1.0, 0.0], [float("nan"), 0.0]])
def test_invalid_allowances(allowance: list[float]) -> None:
    with pytest.raises(ValueError, match="allowance"):
        sample_ratio_mismatch([10, 10], [1, 1], allowance=allowance)
