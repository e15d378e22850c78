"""Always-valid inference for continuously monitored experiments: the mixture SPRT.

A controller looks at an experiment after every metrics scrape. A fixed-horizon
p-value read that often is wrong: with enough looks it eventually dips below
any alpha under no difference at all. The mixture sequential probability ratio
test (mSPRT) of Johari, Koomen, Pekelis and Walsh ("Always valid inference:
continuous monitoring of A/B tests", Operations Research 70(3), 2022) gives
p-values and confidence sequences that stay valid at *every* look, so stopping
whenever they cross is sound.

For an estimate ``theta_hat`` of the difference ``challenger - champion`` with
variance ``v`` (``var_a / n_a + var_b / n_b``) and a normal mixing distribution
``N(theta_0, tau**2)`` over alternatives, the mixture likelihood ratio is::

    Lambda = sqrt(v / (v + tau**2)) * exp(tau**2 * (theta_hat - theta_0)**2 / (2 * v * (v + tau**2)))

which with balanced arms (``v = 2 * sigma**2 / n``) is equation (11) of the paper.
The always-valid p-value is the running minimum of ``1 / Lambda``; the
confidence sequence is ``theta_hat +- r`` with
``r**2 = v * (v + tau**2) / tau**2 * (2 * log(1 / alpha) + log((v + tau**2) / v))``,
intersected over looks. Variances are plug-in estimates (Bernoulli ``p(1-p)``
for proportions, floored by the pooled variance so that rates of exactly 0 or 1
are still tested), valid asymptotically as in the paper; ``min_samples`` per arm
keeps the earliest, noisiest looks out. ``tau`` is the mixing standard
deviation on the scale of the difference: the size of effect the test should be
most sensitive to (the minimum detectable effect is a good default).

The state is a small frozen object updated per batch in O(1) with plain floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

from modelrollout.stats.results import CheckVerdict, Interval


@dataclass(frozen=True, slots=True)
class ArmTotals:
    """Running count, mean and sum of squared deviations of one arm, mergeable per batch."""

    count: float = 0.0
    mean: float = 0.0
    m2: float = 0.0
    bernoulli: bool = False
    """Every outcome is 0 or 1, so a zero sample variance does not mean a zero variance (see ``_variance``)."""

    @classmethod
    def of_proportion(cls, trials: float, successes: float) -> ArmTotals:
        """A batch of Bernoulli outcomes."""
        if trials < 0 or not 0 <= successes <= trials:
            raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
        if trials == 0:
            return cls(bernoulli=True)
        p = successes / trials
        return cls(count=trials, mean=p, m2=trials * p * (1.0 - p), bernoulli=True)

    @classmethod
    def of_summary(cls, count: float, mean: float, variance: float) -> ArmTotals:
        """A batch summarised by count, mean and sample variance (``ddof=1``)."""
        if count < 0 or variance < 0 or not math.isfinite(mean):
            raise ValueError(f"invalid batch summary: count={count}, mean={mean}, variance={variance}")
        return cls(count=count, mean=mean if count else 0.0, m2=variance * max(count - 1.0, 0.0))

    def merge(self, batch: ArmTotals) -> ArmTotals:
        """Combine with another batch (Chan, Golub and LeVeque's parallel update, stable for large counts)."""
        if batch.count == 0:
            return self
        if self.count == 0:
            return batch
        count = self.count + batch.count
        delta = batch.mean - self.mean
        return ArmTotals(
            count=count,
            mean=self.mean + delta * batch.count / count,
            m2=self.m2 + batch.m2 + delta * delta * self.count * batch.count / count,
            bernoulli=self.bernoulli and batch.bernoulli,
        )

    @property
    def variance(self) -> float:
        return self.m2 / (self.count - 1.0) if self.count > 1 else 0.0


@dataclass(frozen=True, slots=True)
class MsprtConfig:
    """How the mSPRT is run; ``mixing_sd`` is ``tau`` on the scale of the difference."""

    mixing_sd: float
    alpha: float = 0.05
    min_samples: float = 100.0
    higher_is_better: bool = True
    null_difference: float = 0.0

    def __post_init__(self) -> None:
        if not self.mixing_sd > 0:
            raise ValueError(f"mixing_sd must be positive, got {self.mixing_sd}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")


@dataclass(frozen=True, slots=True)
class SequentialState:
    """Everything the test remembers between looks: arm totals, running p-value and interval."""

    champion: ArmTotals = ArmTotals()
    challenger: ArmTotals = ArmTotals()
    p_value: float = 1.0
    low: float = -math.inf
    high: float = math.inf
    looks: int = 0


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """The always-valid reading of a state: estimate, p-value, confidence sequence, verdict."""

    estimate: float
    p_value: float
    interval: Interval
    verdict: CheckVerdict
    n_champion: float
    n_challenger: float
    looks: int


def msprt_update(
    state: SequentialState, champion_batch: ArmTotals, challenger_batch: ArmTotals, config: MsprtConfig
) -> SequentialState:
    """Add one batch per arm and take a look; returns the new state (the old one is unchanged)."""
    return msprt_look(state, state.champion.merge(champion_batch), state.challenger.merge(challenger_batch), config)


def msprt_look(
    state: SequentialState, champion: ArmTotals, challenger: ArmTotals, config: MsprtConfig
) -> SequentialState:
    """Take a look at new cumulative totals (e.g. read from counters since the start).

    The test only needs the cumulative estimate at each look, so a controller
    that reads cumulative counters passes them here instead of batches.
    """
    p_value, low, high = state.p_value, state.low, state.high
    variance = _estimate_variance(champion, challenger)
    if min(champion.count, challenger.count) >= config.min_samples and variance > 0:
        estimate = challenger.mean - champion.mean
        mixing_variance = config.mixing_sd**2
        log_ratio = 0.5 * math.log(variance / (variance + mixing_variance)) + mixing_variance * (
            estimate - config.null_difference
        ) ** 2 / (2.0 * variance * (variance + mixing_variance))
        p_value = min(p_value, math.exp(-log_ratio) if log_ratio > 0 else 1.0)
        radius = math.sqrt(
            variance
            * (variance + mixing_variance)
            / mixing_variance
            * (2.0 * math.log(1.0 / config.alpha) + math.log1p(mixing_variance / variance))
        )
        low, high = max(low, estimate - radius), min(high, estimate + radius)
    return SequentialState(
        champion=champion, challenger=challenger, p_value=p_value, low=low, high=high, looks=state.looks + 1
    )


def msprt_result(state: SequentialState, config: MsprtConfig) -> SequentialResult:
    """Read the state: PASS when the sequence lies wholly on the better side of the null.

    FAIL when it lies wholly on the worse side, INCONCLUSIVE otherwise. Because
    the sequence is intersected over looks, it can become empty when the data
    contradict earlier looks (rare under the model; a sign of non-stationary
    traffic): then the verdict is INCONCLUSIVE and the interval is reported as is.
    """
    estimate = state.challenger.mean - state.champion.mean
    null = config.null_difference
    low, high = state.low, state.high
    verdict = CheckVerdict.INCONCLUSIVE
    if low <= high:
        above, below = low > null, high < null
        if above or below:
            better = above if config.higher_is_better else below
            verdict = CheckVerdict.PASS if better else CheckVerdict.FAIL
    return SequentialResult(
        estimate=estimate,
        p_value=state.p_value,
        interval=Interval(low, high, 1.0 - config.alpha),
        verdict=verdict,
        n_champion=state.champion.count,
        n_challenger=state.challenger.count,
        looks=state.looks,
    )


def log_mixture_likelihood_ratio(
    estimate: ArrayLike, variance: ArrayLike, mixing_sd: float, null_difference: float = 0.0
) -> NDArray[np.float64]:
    """``log Lambda`` for arrays of estimates and their variances (simulations, batch re-analysis)."""
    theta = np.asarray(estimate, dtype=np.float64) - null_difference
    v = np.asarray(variance, dtype=np.float64)
    tau2 = mixing_sd**2
    result: NDArray[np.float64] = 0.5 * np.log(v / (v + tau2)) + tau2 * theta**2 / (2.0 * v * (v + tau2))
    return result


def confidence_radius(variance: ArrayLike, mixing_sd: float, alpha: float) -> NDArray[np.float64]:
    """Half-width of the (un-intersected) confidence sequence at estimate variance ``variance``."""
    v = np.asarray(variance, dtype=np.float64)
    tau2 = mixing_sd**2
    result: NDArray[np.float64] = np.sqrt(v * (v + tau2) / tau2 * (2.0 * np.log(1.0 / alpha) + np.log1p(tau2 / v)))
    return result


def msprt_sample_size(
    effect: float,
    champion_variance: float,
    challenger_variance: float,
    *,
    mixing_sd: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> float:
    """Champion-arm sample size at which the mSPRT reaches ``power`` for a true ``effect``.

    Conservative: it asks for power at the final look alone (``|theta_hat| >
    r(n)``), while the test may also stop earlier, so the real power at this size
    is at least ``power`` (the simulation tests check this). The challenger arm
    needs ``ratio`` times as many.
    """
    if effect == 0:
        raise ValueError("a zero effect cannot be detected")

    def shortfall(log_n: float) -> float:
        n = math.exp(log_n)
        variance = champion_variance / n + challenger_variance / (ratio * n)
        radius = float(confidence_radius(variance, mixing_sd, alpha))
        return float(stats.norm.cdf((abs(effect) - radius) / math.sqrt(variance))) - power

    return math.ceil(math.exp(optimize.brentq(shortfall, 0.0, 60.0)))


def _estimate_variance(champion: ArmTotals, challenger: ArmTotals) -> float:
    """The plug-in variance of the difference; for proportions at least the pooled one.

    With proportions at the boundary (no failures on one side, all on the
    other) the plug-in variance is 0 and the look would be skipped forever:
    a challenger failing every request against a perfect champion was never
    flagged. The variance under "no difference", from the pooled rate, is
    positive there and is what a two-proportion test uses.
    """
    if champion.count == 0 or challenger.count == 0:
        return 0.0
    plug_in = champion.variance / champion.count + challenger.variance / challenger.count
    if not (champion.bernoulli and challenger.bernoulli):
        return plug_in
    pooled = (champion.mean * champion.count + challenger.mean * challenger.count) / (champion.count + challenger.count)
    return max(plug_in, pooled * (1.0 - pooled) * (1.0 / champion.count + 1.0 / challenger.count))
