"""The mixture SPRT: formula, state updates, and its error rates under continuous monitoring."""

import math
import time

import numpy as np
import pytest
from scipy import stats

from modelrollout.stats.results import CheckVerdict
from modelrollout.stats.sequential import (
    ArmTotals,
    MsprtConfig,
    SequentialState,
    confidence_radius,
    log_mixture_likelihood_ratio,
    msprt_look,
    msprt_result,
    msprt_sample_size,
    msprt_update,
)

ALPHA = 0.05


def test_balanced_case_is_equation_11_of_johari_et_al() -> None:
    """Johari, Koomen, Pekelis, Walsh (2022), normal mixture over theta ~ N(0, tau^2), n per arm:
    Lambda_n = sqrt(2 s2 / (2 s2 + n tau2)) * exp(n^2 tau2 d^2 / (4 s2 (2 s2 + n tau2)))."""
    sigma2, tau, n, difference = 3.0, 0.4, 500, 0.21
    paper = math.sqrt(2 * sigma2 / (2 * sigma2 + n * tau**2)) * math.exp(
        n**2 * tau**2 * difference**2 / (4 * sigma2 * (2 * sigma2 + n * tau**2))
    )
    ours = float(log_mixture_likelihood_ratio(difference, 2 * sigma2 / n, tau))
    assert ours == pytest.approx(math.log(paper))


def test_confidence_sequence_is_where_the_ratio_stays_below_one_over_alpha() -> None:
    variance, tau = 0.002, 0.05
    radius = float(confidence_radius(variance, tau, ALPHA))
    at_edge = float(log_mixture_likelihood_ratio(radius, variance, tau))
    assert at_edge == pytest.approx(math.log(1 / ALPHA))


def test_merging_batches_gives_the_pooled_mean_and_variance() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(5, 2, size) for size in (10, 1, 250, 33)]
    totals = ArmTotals()
    for batch in batches:
        variance = float(np.var(batch, ddof=1)) if batch.size > 1 else 0.0
        totals = totals.merge(ArmTotals.of_summary(batch.size, float(batch.mean()), variance))
    everything = np.concatenate(batches)
    assert totals.count == everything.size
    assert totals.mean == pytest.approx(everything.mean())
    assert totals.variance == pytest.approx(np.var(everything, ddof=1))


def test_state_update_matches_the_vectorised_formula() -> None:
    rng = np.random.default_rng(1)
    config = MsprtConfig(mixing_sd=0.02, min_samples=100)
    state = SequentialState()
    successes = np.zeros(2)
    trials = np.zeros(2)
    for _ in range(30):
        batch = rng.binomial(60, [0.10, 0.13])
        successes += batch
        trials += 60
        state = msprt_update(
            state, ArmTotals.of_proportion(60, batch[0]), ArmTotals.of_proportion(60, batch[1]), config
        )
    p = successes / trials
    variance = p[0] * (1 - p[0]) / trials[0] * trials[0] / (trials[0] - 1) + p[1] * (1 - p[1]) / trials[1] * (
        trials[1] / (trials[1] - 1)
    )
    log_ratio = float(log_mixture_likelihood_ratio(p[1] - p[0], variance, 0.02))
    assert state.p_value <= math.exp(-log_ratio) + 1e-12
    assert state.looks == 30
    assert state.champion.count == trials[0]


def test_update_is_constant_time_and_fast() -> None:
    config = MsprtConfig(mixing_sd=0.02)
    state = SequentialState()
    batch_a, batch_b = ArmTotals.of_proportion(100, 10), ArmTotals.of_proportion(100, 12)
    start = time.perf_counter()
    for _ in range(2000):
        state = msprt_update(state, batch_a, batch_b, config)
    per_update = (time.perf_counter() - start) / 2000
    assert per_update < 1e-3


def test_no_verdict_before_the_burn_in() -> None:
    config = MsprtConfig(mixing_sd=0.1, min_samples=100)
    state = msprt_update(SequentialState(), ArmTotals.of_proportion(50, 0), ArmTotals.of_proportion(50, 50), config)
    result = msprt_result(state, config)
    assert result.p_value == 1.0
    assert result.verdict is CheckVerdict.INCONCLUSIVE
    assert math.isinf(result.interval.low)


def test_direction_of_the_verdict_follows_higher_is_better() -> None:
    batch_a, batch_b = ArmTotals.of_summary(5000, 100.0, 400.0), ArmTotals.of_summary(5000, 110.0, 400.0)
    faster_is_better = MsprtConfig(mixing_sd=5.0, higher_is_better=False)
    state = msprt_update(SequentialState(), batch_a, batch_b, faster_is_better)
    assert msprt_result(state, faster_is_better).verdict is CheckVerdict.FAIL
    more_is_better = MsprtConfig(mixing_sd=5.0)
    state = msprt_update(SequentialState(), batch_a, batch_b, more_is_better)
    assert msprt_result(state, more_is_better).verdict is CheckVerdict.PASS


def test_cumulative_looks_equal_batch_updates() -> None:
    config = MsprtConfig(mixing_sd=0.03)
    by_batch = SequentialState()
    by_total = SequentialState()
    cumulative = [(200, 20, 200, 30), (400, 41, 400, 62), (700, 70, 650, 99)]
    previous = (0, 0, 0, 0)
    for row in cumulative:
        batch = [now - before for now, before in zip(row, previous, strict=True)]
        by_batch = msprt_update(
            by_batch, ArmTotals.of_proportion(batch[0], batch[1]), ArmTotals.of_proportion(batch[2], batch[3]), config
        )
        by_total = msprt_look(
            by_total, ArmTotals.of_proportion(row[0], row[1]), ArmTotals.of_proportion(row[2], row[3]), config
        )
        previous = row
    assert by_batch.p_value == pytest.approx(by_total.p_value)
    assert by_batch.low == pytest.approx(by_total.low)


def _monitor_proportions(
    rng: np.random.Generator, p_champion: float, p_challenger: float, *, replicates: int, looks: int, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``replicates`` experiments looked at after every batch; returns, per replicate,
    whether the mSPRT and whether a naive fixed-horizon z-test rejected at any look."""
    champion = rng.binomial(batch, p_champion, size=(replicates, looks)).cumsum(axis=1)
    challenger = rng.binomial(batch, p_challenger, size=(replicates, looks)).cumsum(axis=1)
    n = batch * np.arange(1, looks + 1)
    pa, pb = champion / n, challenger / n
    variance = (pa * (1 - pa) + pb * (1 - pb)) / (n - 1)
    burned_in = n >= 100
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = log_mixture_likelihood_ratio(pb - pa, variance, mixing_sd=0.02)
        pooled = (champion + challenger) / (2 * n)
        z = (pb - pa) / np.sqrt(pooled * (1 - pooled) * 2 / n)
    sequential = ((log_ratio >= math.log(1 / ALPHA)) & burned_in & (variance > 0)).any(axis=1)
    naive = ((np.abs(z) >= stats.norm.isf(ALPHA / 2)) & burned_in & (variance > 0)).any(axis=1)
    return np.asarray(sequential), np.asarray(naive)


@pytest.mark.slow
def test_continuous_monitoring_keeps_the_false_positive_rate_below_alpha() -> None:
    """No difference, a look after every batch of 50 per arm, 300 looks, 4,000 replicates.
    The mSPRT stays below alpha (plus 3 Monte-Carlo standard errors); the naive z-test does not."""
    rng = np.random.default_rng(2017)
    sequential, naive = _monitor_proportions(rng, 0.10, 0.10, replicates=4000, looks=300, batch=50)
    tolerance = 3 * math.sqrt(ALPHA * (1 - ALPHA) / 4000)
    assert sequential.mean() <= ALPHA + tolerance
    assert naive.mean() > 3 * ALPHA


@pytest.mark.slow
def test_power_under_a_true_effect_reaches_the_planned_power() -> None:
    """p 0.10 -> 0.12: monitored up to the horizon from msprt_sample_size for 80% power."""
    horizon = msprt_sample_size(0.02, 0.09, 0.1056, mixing_sd=0.02, alpha=ALPHA, power=0.8)
    batch = 100
    looks = math.ceil(horizon / batch)
    rng = np.random.default_rng(2022)
    sequential, _ = _monitor_proportions(rng, 0.10, 0.12, replicates=2000, looks=looks, batch=batch)
    tolerance = 3 * math.sqrt(0.8 * 0.2 / 2000)
    assert sequential.mean() >= 0.8 - tolerance


@pytest.mark.slow
def test_state_object_agrees_with_the_simulation_kernel() -> None:
    """The per-batch state object and the vectorised kernel make the same decisions."""
    config = MsprtConfig(mixing_sd=0.02, alpha=ALPHA, min_samples=100)
    rng = np.random.default_rng(99)
    replicates, looks, batch = 40, 120, 50
    decisions = []
    draws = rng.binomial(batch, 0.1, size=(2, replicates, looks))
    for r in range(replicates):
        state = SequentialState()
        for k in range(looks):
            state = msprt_update(
                state,
                ArmTotals.of_proportion(batch, draws[0, r, k]),
                ArmTotals.of_proportion(batch, draws[1, r, k]),
                config,
            )
        decisions.append(state.p_value < ALPHA)
    champion = draws[0].cumsum(axis=1)
    challenger = draws[1].cumsum(axis=1)
    n = batch * np.arange(1, looks + 1)
    pa, pb = champion / n, challenger / n
    variance = (pa * (1 - pa) + pb * (1 - pb)) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = log_mixture_likelihood_ratio(pb - pa, variance, 0.02)
    kernel = ((log_ratio > math.log(1 / ALPHA)) & (n >= 100) & (variance > 0)).any(axis=1)
    assert decisions == kernel.tolist()


@pytest.mark.slow
def test_means_under_continuous_monitoring_stay_below_alpha() -> None:
    """Skewed (exponential) latencies, no difference, plug-in variances, 2,000 replicates x 200 looks."""
    rng = np.random.default_rng(5)
    replicates, looks, batch = 2000, 200, 40
    draws = rng.exponential(100.0, size=(2, replicates, looks, batch))
    sums = draws.sum(axis=3).cumsum(axis=2)
    squares = (draws**2).sum(axis=3).cumsum(axis=2)
    n = batch * np.arange(1, looks + 1)
    means = sums / n
    variances = (squares - n * means**2) / (n - 1)
    variance = variances[0] / n + variances[1] / n
    log_ratio = log_mixture_likelihood_ratio(means[1] - means[0], variance, mixing_sd=5.0)
    rejected = ((log_ratio >= math.log(1 / ALPHA)) & (n >= 100)).any(axis=1)
    assert rejected.mean() <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / replicates)


def test_a_challenger_failing_every_trial_against_a_perfect_champion_is_flagged() -> None:
    """Regression: the plug-in variance is 0 at 0/n against n/n, and the look used to be skipped forever."""
    config = MsprtConfig(mixing_sd=0.05, min_samples=100, higher_is_better=False)
    state = msprt_look(
        SequentialState(), ArmTotals.of_proportion(47_500, 0), ArmTotals.of_proportion(2500, 2500), config
    )
    assert msprt_result(state, config).verdict == CheckVerdict.FAIL
