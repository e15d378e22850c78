"""Coverage of ``ratio_of_means`` by seeded simulation, and the shape of Fieller's interval (issue 13).

The full table is ``bench/bench_ratio_coverage.py`` (docs/benchmarks.md, "Ratio of means
coverage (issue 13)"); these cells are small enough for the unit suite. With 1,500
replications a coverage's Monte-Carlo standard error is about 0.56 points, so the bounds
below sit at least three of those from the simulated value.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from modelrollout.stats.comparisons import SummaryStats, ratio_of_means

TRUE_RATIO = 1.1
REPLICATIONS = 1500
Sampler = Callable[[np.random.Generator, tuple[int, int]], NDArray[np.float64]]


def _coverage(draw: Sampler, n: int, seed: int) -> tuple[float, float]:
    """(``ratio_of_means`` coverage, coverage of the delta-method log interval it replaced) on the same samples."""
    rng = np.random.default_rng(seed)
    a = draw(rng, (REPLICATIONS, n))
    b = TRUE_RATIO * draw(rng, (REPLICATIONS, n))
    mean_a, mean_b = a.mean(axis=1), b.mean(axis=1)
    var_a, var_b = a.var(axis=1, ddof=1), b.var(axis=1, ddof=1)
    se = np.sqrt(var_a / (n * mean_a**2) + var_b / (n * mean_b**2))
    delta = float(np.mean(np.abs(np.log(mean_b / mean_a) - math.log(TRUE_RATIO)) <= stats.norm.ppf(0.975) * se))
    hits = sum(
        ratio_of_means(SummaryStats(n, float(ma), float(va)), SummaryStats(n, float(mb), float(vb))).interval.contains(
            TRUE_RATIO
        )
        for ma, va, mb, vb in zip(mean_a, var_a, mean_b, var_b, strict=True)
    )
    return hits / REPLICATIONS, delta


def test_heavy_tails_keep_their_coverage() -> None:
    """Lognormal sigma 1.5 at n = 100 per arm: the delta method covered about 91.5%, Fieller about 96%."""
    fieller, delta = _coverage(lambda rng, size: rng.lognormal(0.0, 1.5, size), 100, seed=1301)
    assert fieller >= 0.945
    assert delta <= 0.935


def test_light_tails_are_not_made_conservative() -> None:
    """Normal data at n = 30 per arm: Fieller with a Welch t quantile is close to exact."""
    fieller, _ = _coverage(lambda rng, size: rng.normal(10.0, 3.0, size), 30, seed=1302)
    assert fieller == pytest.approx(0.95, abs=0.017)


def test_endpoints_solve_fiellers_equation() -> None:
    champion, challenger = SummaryStats(50, 100.0, 40.0**2), SummaryStats(40, 120.0, 60.0**2)
    estimate = ratio_of_means(champion, challenger)
    var_a, var_b = champion.variance / champion.count, challenger.variance / challenger.count
    scaled_a = 1.2**2 * var_a
    dof = (var_b + scaled_a) ** 2 / (var_b**2 / 39 + scaled_a**2 / 49)
    t = stats.t.ppf(0.975, dof)
    assert estimate.method == "Fieller (Welch t)"
    assert estimate.ratio == pytest.approx(1.2)
    for r in (estimate.interval.low, estimate.interval.high):
        assert (120.0 - r * 100.0) ** 2 == pytest.approx(t**2 * (var_b + r**2 * var_a))
    assert estimate.interval.low < 1.2 < estimate.interval.high


def test_large_samples_agree_with_the_delta_method() -> None:
    champion, challenger = SummaryStats(100_000, 50.0, 30.0**2), SummaryStats(100_000, 52.0, 31.0**2)
    interval = ratio_of_means(champion, challenger).interval
    se = math.sqrt(30.0**2 / (100_000 * 50.0**2) + 31.0**2 / (100_000 * 52.0**2))
    assert interval.low == pytest.approx(1.04 * math.exp(-1.96 * se), rel=1e-4)
    assert interval.high == pytest.approx(1.04 * math.exp(1.96 * se), rel=1e-4)


def test_a_champion_mean_indistinguishable_from_zero_leaves_no_upper_limit() -> None:
    """Champion mean 1 with standard error 1: any large ratio is consistent with the data."""
    estimate = ratio_of_means(SummaryStats(100, 1.0, 100.0), SummaryStats(100, 5.0, 4.0))
    assert math.isinf(estimate.interval.high)
    assert 0 < estimate.interval.low < 5.0


def test_a_challenger_mean_indistinguishable_from_zero_clips_the_lower_limit_at_zero() -> None:
    estimate = ratio_of_means(SummaryStats(100, 5.0, 4.0), SummaryStats(100, 1.0, 100.0))
    assert estimate.interval.low == 0.0
    assert 0.2 < estimate.interval.high < math.inf


def test_no_variance_gives_the_point_ratio() -> None:
    estimate = ratio_of_means(SummaryStats(10, 2.0, 0.0), SummaryStats(10, 3.0, 0.0))
    assert (estimate.interval.low, estimate.interval.high) == (1.5, 1.5)
