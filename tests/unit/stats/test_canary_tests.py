"""The canary's rate tests: exact bounds, error rates under continuous looks, the boundaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special

from modelrollout.stats.canary import (
    HarmEvidence,
    RateCounts,
    compare_rates,
    one_sample_log_e_value,
    rate_bound,
    trials_to_pass,
    update_harm,
)

ALPHA = 0.05


def reference_bound(bad: float, trials: float, alpha: float, upper: bool, prior: float | None) -> float:
    """The same confidence-sequence end, found independently with scipy's root finder."""
    a, b = (0.5, 0.5) if prior is None else (prior * 1000, (1 - prior) * 1000)
    good = trials - bad
    level = special.betaln(a + bad, b + good) - special.betaln(a, b) - math.log(1 / alpha)

    def excess(p: float) -> float:
        return (bad * math.log(p) if bad else 0.0) + (good * math.log1p(-p) if good else 0.0) - level

    estimate = bad / trials
    if upper:
        return optimize.brentq(excess, max(estimate, 1e-300), 1 - 1e-15, rtol=1e-13)
    return optimize.brentq(excess, 1e-300, estimate, rtol=1e-13)


@pytest.mark.parametrize(
    ("bad", "trials", "prior"),
    [(30, 3000, 0.01), (0, 500, 0.01), (0, 500, None), (499, 500, None), (7.5, 40.2, 0.3), (2e4, 9e4, None)],
)
def test_bounds_match_an_independent_root_finder(bad, trials, prior) -> None:
    for upper in (True, False):
        if (upper and bad >= trials) or (not upper and bad <= 0):
            continue
        expected = reference_bound(bad, trials, 0.04, upper, prior)
        assert rate_bound(bad, trials, alpha=0.04, upper=upper, prior_rate=prior) == pytest.approx(expected, rel=1e-9)


def test_bounds_at_the_boundaries() -> None:
    assert rate_bound(0, 0, alpha=ALPHA, upper=True) == 1.0
    assert rate_bound(0, 1000, alpha=ALPHA, upper=False) == 0.0
    assert rate_bound(1000, 1000, alpha=ALPHA, upper=True) == 1.0
    assert 0 < rate_bound(0, 1000, alpha=ALPHA, upper=True) < 0.01
    assert 0.99 < rate_bound(1000, 1000, alpha=ALPHA, upper=False) < 1


def test_the_confidence_sequence_covers_at_every_look() -> None:
    """Looked at after every batch of 20 trials up to 2,000, the rate escapes in at most alpha of sequences."""
    rng = np.random.default_rng(11)
    rate, sequences, escaped = 0.02, 400, 0
    for _ in range(sequences):
        draws = np.cumsum(rng.random(2000) < rate)
        for n in range(20, 2001, 20):
            bad = float(draws[n - 1])
            low = rate_bound(bad, n, alpha=ALPHA, upper=False, prior_rate=0.01)
            high = rate_bound(bad, n, alpha=ALPHA, upper=True, prior_rate=0.01)
            if not low <= rate <= high:
                escaped += 1
                break
    assert escaped / sequences <= ALPHA


def harm_after(batches: list[tuple[float, float, float, float]], tolerated: float = 1.5) -> HarmEvidence:
    evidence, totals = HarmEvidence(), np.zeros(4)
    for batch in batches:
        totals += batch
        evidence = update_harm(evidence, RateCounts(*totals), tolerated)
    return evidence


def test_harm_false_alarms_stay_below_alpha_under_continuous_looks() -> None:
    """Equal failure rates, 300 looks each, the canary's share of traffic stepping 5 -> 25 -> 50%."""
    rng = np.random.default_rng(5)
    runs, alarms = 600, 0
    share = np.repeat([0.05, 0.25, 0.5], 100)
    for _ in range(runs):
        canary, stable = rng.poisson(100 * share), rng.poisson(100 * (1 - share))
        columns = (rng.binomial(canary, 0.02), canary, rng.binomial(stable, 0.02), stable)
        totals = np.cumsum(np.column_stack(columns), axis=0).tolist()
        evidence = HarmEvidence()
        for row in totals:
            evidence = update_harm(evidence, RateCounts(*row), 1.5)
            if evidence.log_e_value >= math.log(1 / ALPHA):
                alarms += 1
                break
    assert alarms / runs <= ALPHA


def test_a_canary_failing_every_request_is_caught_by_its_second_failure() -> None:
    """At 5% of traffic and a perfect stable: two failures, each 20 times likelier under harm, are enough."""
    evidence = harm_after([(1, 1, 0, 19), (1, 1, 0, 19)])
    assert evidence.log_e_value >= math.log(1 / ALPHA)


def test_a_change_after_a_long_healthy_stretch_is_caught_quickly() -> None:
    """A product of ratios would first have to climb out of the healthy past; the mixture over starts does not."""
    healthy = [(1, 100, 20, 2000)] * 500
    broken = [(50, 100, 20, 2000)] * 3
    assert harm_after(healthy + broken).log_e_value >= math.log(1 / ALPHA)


def test_failures_within_the_tolerated_ratio_are_not_harm() -> None:
    """1.2 x stable's rate, for a long time: below the tolerated 1.5, so the evidence does not grow."""
    rng = np.random.default_rng(2)
    batches = []
    for _ in range(2000):
        batches.append((rng.binomial(500, 0.012), 500, rng.binomial(9500, 0.01), 9500))
    assert harm_after(batches).log_e_value < math.log(1 / ALPHA)


def test_pass_needs_the_upper_bound_under_the_margin() -> None:
    counts = RateCounts(canary_bad=50, canary_trials=10_000, stable_bad=2000, stable_trials=200_000)
    reading = compare_rates(
        harm_after([(50, 10_000, 2000, 200_000)]),
        counts,
        prior_rate=0.01,
        max_ratio=1.5,
        max_increase=0.002,
        alpha=ALPHA,
    )
    assert reading.verdict == "Pass"
    assert reading.canary_upper < reading.margin
    no_baseline = compare_rates(HarmEvidence(), counts, prior_rate=None, max_ratio=1.5, max_increase=0.002, alpha=ALPHA)
    assert no_baseline.verdict == "Waiting"


def test_trials_to_pass_shrinks_as_evidence_grows_and_is_none_beyond_the_margin() -> None:
    first = trials_to_pass(0.01, 100, 0.016, 0.04, 0.01)
    later = trials_to_pass(0.01, 3000, 0.016, 0.04, 0.01)
    assert first is not None
    assert later is not None
    assert later < first
    assert trials_to_pass(0.02, 3000, 0.016, 0.04, 0.01) is None


def test_trials_to_pass_agrees_with_the_pass_rule_at_few_and_no_failures() -> None:
    """Regression: with no failures yet the estimate said 0 while the bound was still above the margin."""
    for rate, trials in ((0.0, 165), (0.004, 500), (0.01, 2000)):
        needed = trials_to_pass(rate, trials, 0.008 if rate < 0.01 else 0.016, 0.04, 0.004)
        assert needed is not None
        margin = 0.008 if rate < 0.01 else 0.016
        total = trials + needed
        assert rate_bound(rate * total, total, alpha=0.04, upper=True, prior_rate=0.004) < margin
        short = trials + 0.9 * needed
        assert rate_bound(rate * short, short, alpha=0.04, upper=True, prior_rate=0.004) >= margin


def test_one_sample_evidence_grows_only_above_the_tolerated_rate() -> None:
    assert one_sample_log_e_value(0, 1000, 0.01) < 0
    assert one_sample_log_e_value(5, 10, 0.01) > math.log(1 / ALPHA)
    assert one_sample_log_e_value(0, 0, 0.01) == 0.0
