"""Fixed-horizon comparisons against scipy, textbook examples and coverage simulations."""

import math

import numpy as np
import pytest
from scipy import stats

from modelrollout.stats.comparisons import (
    SummaryStats,
    bootstrap_ratio_of_means,
    mann_whitney,
    ratio_of_means,
    ratio_of_proportions,
    relative_to_baseline,
    two_proportions,
    welch_t_test,
)
from modelrollout.stats.results import CheckVerdict, Interval, RatioEstimate


def test_two_proportion_z_test_textbook_example() -> None:
    """Classic worked example: 140/200 vs 255/340, pooled p = 395/540 = 0.7315, pooled SE = 0.039494,
    |z| = 1.266, so the two-sided p = 2 * (1 - Phi(1.266)) = 0.2055 and the one-sided p = 0.1028."""
    result = two_proportions(140, 200, 255, 340)
    assert result.estimate == pytest.approx(0.05)
    assert result.statistic == pytest.approx(1.266015, abs=1e-6)
    assert result.p_value == pytest.approx(0.2055, abs=1e-4)
    one_sided = two_proportions(140, 200, 255, 340, alternative="greater")
    assert one_sided.p_value == pytest.approx(0.10275, abs=1e-5)


def test_z_squared_is_the_uncorrected_chi_square_of_the_table() -> None:
    result = two_proportions(480, 10_000, 560, 10_000)
    table = [[480, 10_000 - 480], [560, 10_000 - 560]]
    chi2 = stats.chi2_contingency(table, correction=False)
    assert result.statistic**2 == pytest.approx(chi2.statistic)
    assert result.p_value == pytest.approx(chi2.pvalue)


def test_difference_interval_is_wald() -> None:
    result = two_proportions(30, 100, 45, 100, confidence=0.95)
    se = math.sqrt(0.3 * 0.7 / 100 + 0.45 * 0.55 / 100)
    assert result.interval is not None
    assert result.interval.low == pytest.approx(0.15 - 1.959964 * se, abs=1e-6)
    assert result.interval.high == pytest.approx(0.15 + 1.959964 * se, abs=1e-6)


def test_ratio_of_proportions_is_the_katz_log_interval() -> None:
    result = ratio_of_proportions(44, 487, 27, 122)
    rr = (27 / 122) / (44 / 487)
    se = math.sqrt(1 / 27 - 1 / 122 + 1 / 44 - 1 / 487)
    assert result.ratio == pytest.approx(rr)
    assert result.interval.low == pytest.approx(rr * math.exp(-1.959964 * se), rel=1e-6)
    assert result.interval.high == pytest.approx(rr * math.exp(1.959964 * se), rel=1e-6)


def test_ratio_with_no_successes_is_wide_but_finite() -> None:
    result = ratio_of_proportions(20, 100, 0, 100)
    assert "Haldane" in result.method
    assert 0 < result.interval.low < result.interval.high < 1
    assert math.isfinite(result.interval.high)


def test_welch_matches_scipy_on_raw_samples() -> None:
    rng = np.random.default_rng(42)
    champion = rng.normal(10.0, 2.0, 40)
    challenger = rng.normal(11.0, 4.0, 25)
    result = welch_t_test(SummaryStats.of(champion), SummaryStats.of(challenger))
    expected = stats.ttest_ind(challenger, champion, equal_var=False)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    interval = expected.confidence_interval(0.95)
    assert result.interval is not None
    assert result.interval.low == pytest.approx(interval.low)
    assert result.interval.high == pytest.approx(interval.high)


def test_mann_whitney_is_scipys() -> None:
    rng = np.random.default_rng(1)
    champion, challenger = rng.exponential(1.0, 60), rng.exponential(1.4, 50)
    result = mann_whitney(champion, challenger)
    expected = stats.mannwhitneyu(challenger, champion)
    assert result.statistic == expected.statistic
    assert result.p_value == pytest.approx(expected.pvalue)
    assert 0.5 < result.effect_size < 1  # type: ignore[operator]


def test_ratio_of_means_interval_covers_the_true_ratio_at_its_level() -> None:
    """Coverage of Fieller's interval on lognormal data, 2,000 replicates (heavier tails: test_ratio_coverage)."""
    rng = np.random.default_rng(2022)
    true_ratio = math.exp(0.1)
    covered = 0
    replicates = 2000
    for _ in range(replicates):
        champion = rng.lognormal(0.0, 1.0, 400)
        challenger = rng.lognormal(0.1, 1.0, 400)
        estimate = ratio_of_means(SummaryStats.of(champion), SummaryStats.of(challenger))
        covered += estimate.interval.contains(true_ratio)
    assert covered / replicates == pytest.approx(0.95, abs=0.02)


def test_bootstrap_ratio_is_seeded_and_agrees_with_fiellers_interval() -> None:
    rng = np.random.default_rng(3)
    champion, challenger = rng.gamma(2.0, 50.0, 300), rng.gamma(2.0, 55.0, 300)
    first = bootstrap_ratio_of_means(champion, challenger, n_resamples=2000, seed=7)
    again = bootstrap_ratio_of_means(champion, challenger, n_resamples=2000, seed=7)
    assert first == again
    fieller = ratio_of_means(SummaryStats.of(champion), SummaryStats.of(challenger))
    assert first.ratio == pytest.approx(fieller.ratio)
    assert first.interval.low == pytest.approx(fieller.interval.low, abs=0.03)
    assert first.interval.high == pytest.approx(fieller.interval.high, abs=0.03)


def _ratio(low: float, high: float) -> RatioEstimate:
    return RatioEstimate("test", (low + high) / 2, Interval(low, high, 0.95), 1000, 1000)


@pytest.mark.parametrize(
    ("low", "high", "bound", "higher_is_better", "verdict"),
    [
        # challenger accuracy >= 95% of champion
        (0.96, 1.02, 0.95, True, CheckVerdict.PASS),
        (0.90, 0.94, 0.95, True, CheckVerdict.FAIL),
        (0.93, 0.99, 0.95, True, CheckVerdict.INCONCLUSIVE),
        # latency <= 110% of champion
        (1.00, 1.08, 1.10, False, CheckVerdict.PASS),
        (1.12, 1.30, 1.10, False, CheckVerdict.FAIL),
        (1.05, 1.15, 1.10, False, CheckVerdict.INCONCLUSIVE),
        # cost <= 120%
        (1.10, 1.20, 1.20, False, CheckVerdict.PASS),
    ],
)
def test_relative_to_baseline_decides_from_the_interval(
    low: float, high: float, bound: float, higher_is_better: bool, verdict: CheckVerdict
) -> None:
    check = relative_to_baseline(_ratio(low, high), bound=bound, higher_is_better=higher_is_better)
    assert check.verdict is verdict


def test_latency_guardrail_end_to_end() -> None:
    champion = SummaryStats(count=5000, mean=120.0, variance=40.0**2)
    slower = SummaryStats(count=500, mean=150.0, variance=50.0**2)
    check = relative_to_baseline(ratio_of_means(champion, slower), bound=1.10, higher_is_better=False)
    assert check.verdict is CheckVerdict.FAIL
    similar = SummaryStats(count=500, mean=121.0, variance=40.0**2)
    check = relative_to_baseline(ratio_of_means(champion, similar), bound=1.10, higher_is_better=False)
    assert check.verdict is CheckVerdict.PASS


@pytest.mark.parametrize(
    "call",
    [
        lambda: two_proportions(5, 0, 1, 10),
        lambda: two_proportions(11, 10, 1, 10),
        lambda: ratio_of_means(SummaryStats(10, -1.0, 1.0), SummaryStats(10, 1.0, 1.0)),
        lambda: welch_t_test(SummaryStats(1, 1.0, 0.0), SummaryStats(10, 1.0, 1.0)),
        lambda: SummaryStats(10, 1.0, -1.0),
    ],
)
def test_invalid_inputs_are_refused(call: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        call()  # type: ignore[operator]
