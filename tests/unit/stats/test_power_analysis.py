"""Sample size and power: published calculator values and simulation."""

import math

import numpy as np
import pytest
from scipy import stats

from modelrollout.stats.comparisons import SummaryStats, two_proportions, welch_t_test
from modelrollout.stats.power import (
    SampleSize,
    duration_seconds,
    power_two_means,
    power_two_proportions,
    sample_size_two_means,
    sample_size_two_proportions,
)


def test_evan_millers_calculator_default_example() -> None:
    """Evan Miller's "Sample Size Calculator" (evanmiller.org/ab-testing/sample-size.html): baseline
    20%, MDE 5% absolute, alpha 0.05, power 80% shows 1,030 per variation. His formula uses the
    baseline variance under the null; it gives 1030.3, which he rounds and we round up."""
    size = sample_size_two_proportions(0.20, 0.05, null_variance="baseline")
    assert size == SampleSize(1031, 1031)
    z_a, z_b = stats.norm.isf(0.025), stats.norm.ppf(0.8)
    raw = (z_a * math.sqrt(2 * 0.2 * 0.8) + z_b * math.sqrt(0.2 * 0.8 + 0.25 * 0.75)) ** 2 / 0.05**2
    assert round(raw) == 1030


def test_relative_mde_is_a_fraction_of_the_baseline() -> None:
    assert sample_size_two_proportions(0.10, 0.20, relative=True) == sample_size_two_proportions(0.10, 0.02)


def test_pooled_null_variance_is_the_chow_shao_wang_formula() -> None:
    """Chow, Shao & Wang (2008) eq. 4.2.2 with pbar = (p1 + p2) / 2 for equal arms."""
    p1, p2 = 0.10, 0.12
    pbar = (p1 + p2) / 2
    z_a, z_b = stats.norm.isf(0.025), stats.norm.ppf(0.8)
    expected = (z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (
        p2 - p1
    ) ** 2
    assert sample_size_two_proportions(p1, p2 - p1).champion == math.ceil(expected)


def test_means_formula_and_allocation_ratio() -> None:
    """n = (z_a + z_b)^2 (s1^2 + s2^2 / k) / delta^2; with sd 1 and delta 0.5: 62.79 -> 63 per arm."""
    assert sample_size_two_means(1.0, 0.5) == SampleSize(63, 63)
    unbalanced = sample_size_two_means(1.0, 0.5, ratio=0.25)
    assert unbalanced.challenger == math.ceil(unbalanced.champion * 0.25 - 1e-9)
    assert unbalanced.champion > 63


def test_power_is_the_inverse_of_sample_size() -> None:
    size = sample_size_two_proportions(0.05, 0.01)
    assert power_two_proportions(0.05, 0.01, size.champion) == pytest.approx(0.8, abs=0.001)
    means = sample_size_two_means(20.0, 3.0, ratio=2.0)
    assert power_two_means(20.0, 3.0, means.champion, ratio=2.0) == pytest.approx(0.8, abs=0.002)


def test_duration_is_set_by_the_slower_arm() -> None:
    # 1,000 per arm at 10 requests/s with a 10% canary: the canary needs 1,000 s.
    assert duration_seconds(SampleSize(1000, 1000), 10.0, (0.9, 0.1)) == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="positive share"):
        duration_seconds(SampleSize(1, 1), 10.0, (1.0, 0.0))


@pytest.mark.slow
def test_planned_sample_size_gives_the_planned_power_for_proportions() -> None:
    """10% -> 12%, 80% power: 4,000 simulated experiments at the planned size, pooled z-test at 0.05.
    Tolerance: 3 Monte-Carlo standard errors (0.019)."""
    size = sample_size_two_proportions(0.10, 0.02)
    rng = np.random.default_rng(80)
    replicates = 4000
    champion = rng.binomial(size.champion, 0.10, replicates)
    challenger = rng.binomial(size.challenger, 0.12, replicates)
    rejected = [
        two_proportions(a, size.champion, b, size.challenger).p_value < 0.05
        for a, b in zip(champion, challenger, strict=True)
    ]
    assert np.mean(rejected) == pytest.approx(0.8, abs=3 * math.sqrt(0.16 / replicates))


@pytest.mark.slow
def test_planned_sample_size_gives_the_planned_power_for_means_with_unequal_arms() -> None:
    """sd 10, MDE 2, challenger gets a third of the champion's traffic; Welch test on simulated data."""
    size = sample_size_two_means(10.0, 2.0, ratio=1 / 3)
    rng = np.random.default_rng(81)
    replicates = 3000
    rejected = 0
    for _ in range(replicates):
        a = rng.normal(50.0, 10.0, size.champion)
        b = rng.normal(52.0, 10.0, size.challenger)
        rejected += welch_t_test(SummaryStats.of(a), SummaryStats.of(b)).p_value < 0.05
    assert rejected / replicates == pytest.approx(0.8, abs=3 * math.sqrt(0.16 / replicates))
