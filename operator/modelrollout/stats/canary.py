"""Canary against stable: exact, always-valid verdicts on rates of bad events.

A canary guardrail asks two different questions, and each gets its own test
with its own error rate, valid however often the controller looks:

* **Harm** (Fail): does the canary produce bad events (failed requests, slow
  requests) more often than tolerated? The harm test is a mixture of
  likelihood ratios, a nonnegative supermartingale under "no harm", so by
  Ville's inequality it crosses ``1 / alpha`` with probability at most
  ``alpha`` over the whole rollout: a healthy canary is rolled back at most
  that often, at every traffic level and look frequency.
* **Safety** (Pass): is the canary's rate shown to lie below the margin? Each
  arm's rate gets a confidence sequence from a beta-binomial mixture (exact for
  Bernoulli trials, valid at every look, and meaningful at zero failures), and
  the canary passes only when its upper bound lies below the margin computed
  from stable's lower bound. A canary worse than the margin passes with
  probability at most ``alpha``.

Neither test needs a minimum sample size or a variance estimate, so neither
breaks at the boundaries (no failures on either side, every request failing):
the plug-in normal approximation that did is gone. Until one of the tests is
decided the answer is "not enough evidence yet", which holds the step.

Two-sample harm test. Conditional on the number ``K`` of failures seen between
two looks, and on the requests each arm served meanwhile (canary share ``q``),
the canary's share of those failures is hypergeometric under equal failure
rates, which is dominated in convex order by ``Binomial(K, q)``
(Hoeffding, 1963). If the canary fails ``rho`` times as often per request, a
failure is the canary's with probability ``pi(rho) = rho q / (rho q + 1 - q)``.
The per-look likelihood ratio of ``rho`` against the tolerated ratio
``rho0`` is therefore a supermartingale factor under ``rho <= rho0``. The
conditioning makes the test exact whatever the stable failure rate is (zero
included), and robust to rates that drift over the day, since each look is
compared within itself.

A canary can also start failing after a long healthy stretch, during which a
plain product of ratios sinks far below one and would need as long again to
recover. So the e-value mixes products that start at different looks:
``S_t = LR_t (S_{t-1} + w_t)`` per alternative and ``E_t = mean(S_t) + U_t``,
``U_t`` the weight of products not started yet. Half the weight starts at the
canary's first look (a bad version is bad from the start); a quarter is spread
over the first looks of later steps, ``1 / (4 j (j + 1))`` for the j-th (more
traffic is when load-dependent failures appear); a quarter over every look,
``1 / (4 (s - 1) s)`` for look ``s``. The weights are fixed before the data of
their look is seen, and a weighted mixture of supermartingales is one, so
Ville's bound still holds; a change at a step start costs ``log(4 j (j + 1))``
of evidence and one at look ``s`` about ``log(4 s^2)``, instead of the whole
healthy past.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

HARM_MULTIPLES: tuple[float, ...] = (1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0)
"""Alternatives of the harm mixture, as multiples of the tolerated ratio; equal weights."""

PRIOR_STRENGTH = 1000.0
"""Pseudo-trials of the canary's beta prior: it centres the confidence sequence near stable's rate."""

MIN_PRIOR_RATE, MAX_PRIOR_RATE = 1e-3, 0.5
BASELINE_TRIALS = 100.0
"""Stable trials seen before the canary's prior is frozen (and a Pass becomes possible)."""

CANARY_ALPHA_SHARE = 0.8
"""Of the Pass test's alpha, the share spent on the canary's bound (stable has far more data)."""

RateVerdict = Literal["Pass", "Fail", "Waiting"]

EXTREME_LOG = 700.0
"""Bounds beyond ``exp(-700)`` of 0 or 1 are reported as 0 or 1 (``exp`` overflows soon after)."""


@dataclass(frozen=True, slots=True)
class RateCounts:
    """Cumulative bad events and trials of both arms since the canary started (Prometheus counters)."""

    canary_bad: float
    canary_trials: float
    stable_bad: float
    stable_trials: float

    def clamped(self) -> RateCounts:
        """Counts as a test can use them: nonnegative, and never more bad events than trials."""
        canary_trials, stable_trials = max(self.canary_trials, 0.0), max(self.stable_trials, 0.0)
        return RateCounts(
            canary_bad=min(max(self.canary_bad, 0.0), canary_trials),
            canary_trials=canary_trials,
            stable_bad=min(max(self.stable_bad, 0.0), stable_trials),
            stable_trials=stable_trials,
        )


@dataclass(frozen=True, slots=True)
class HarmEvidence:
    """What the two-sample harm test remembers between looks."""

    consumed: RateCounts = RateCounts(0.0, 0.0, 0.0, 0.0)
    """Cumulative counts already fed to the test."""
    log_sums: tuple[float, ...] = field(default_factory=lambda: tuple(-math.inf for _ in HARM_MULTIPLES))
    """``log S_t`` per alternative: the weighted sum of likelihood-ratio products started so far."""
    looks: int = 0
    step_starts: int = 0
    """Later steps whose first look has been taken."""
    peak: float = 0.0
    """The largest log e-value seen, for the always-valid p-value ``exp(-peak)``."""

    @property
    def unstarted(self) -> float:
        """The prior weight of products that have not started yet."""
        if self.looks == 0:
            return 1.0
        return 0.25 / self.looks + 0.25 / (self.step_starts + 1)

    @property
    def log_e_value(self) -> float:
        return _log_add(_log_mean_exp(self.log_sums), math.log(self.unstarted))


def update_harm(
    evidence: HarmEvidence, counts: RateCounts, tolerated_ratio: float, *, new_step: bool = False
) -> HarmEvidence:
    """Feed the counts new since the last look into the harm test; ``new_step``: this is a later step's first look.

    Counters read from Prometheus can run ahead of each other (a failure
    counted before its request total). Failures are therefore consumed only
    up to the trials consumed alongside them; the rest waits for the next
    look instead of being read as a failure without a request.
    """
    seen = counts.clamped()
    before = evidence.consumed
    canary_trials = max(seen.canary_trials - before.canary_trials, 0.0)
    stable_trials = max(seen.stable_trials - before.stable_trials, 0.0)
    canary_bad = min(max(seen.canary_bad - before.canary_bad, 0.0), canary_trials)
    stable_bad = min(max(seen.stable_bad - before.stable_bad, 0.0), stable_trials)
    consumed = RateCounts(
        canary_bad=before.canary_bad + canary_bad,
        canary_trials=before.canary_trials + canary_trials,
        stable_bad=before.stable_bad + stable_bad,
        stable_trials=before.stable_trials + stable_trials,
    )
    look = evidence.looks + 1
    step_starts = evidence.step_starts + (1 if new_step and look > 1 else 0)
    weight = 0.5 if look == 1 else 0.25 / ((look - 1) * look)
    if step_starts > evidence.step_starts:
        weight += 0.25 / (step_starts * (step_starts + 1))
    log_weight = math.log(weight)
    log_ratios = [0.0] * len(HARM_MULTIPLES)
    trials = canary_trials + stable_trials
    if trials > 0 and canary_bad + stable_bad > 0 and 0 < canary_trials < trials:
        share = canary_trials / trials
        null = _failure_share(tolerated_ratio, share)
        log_ratios = [
            _binomial_log_ratio(canary_bad, stable_bad, _failure_share(tolerated_ratio * m, share), null)
            for m in HARM_MULTIPLES
        ]
    log_sums = tuple(
        ratio + _log_add(total, log_weight) for total, ratio in zip(evidence.log_sums, log_ratios, strict=True)
    )
    updated = HarmEvidence(consumed, log_sums, look, step_starts, evidence.peak)
    return HarmEvidence(consumed, log_sums, look, step_starts, max(evidence.peak, updated.log_e_value))


def one_sample_log_e_value(bad: float, trials: float, tolerated_rate: float) -> float:
    """Log e-value against "rate <= tolerated_rate" from cumulative counts of one arm.

    With one arm the Bernoulli likelihood ratio depends on the counts alone, so
    no state is carried: the mixture over alternatives (multiples of the
    tolerated rate, capped below one) is computed afresh at every look.
    """
    if trials <= 0 or not 0 < tolerated_rate < 1:
        return 0.0
    good = trials - bad
    alternatives = [min(tolerated_rate * m, 1.0 - (1.0 - tolerated_rate) / (1.0 + m)) for m in HARM_MULTIPLES]
    return _log_mean_exp(
        tuple(
            bad * math.log(r / tolerated_rate) + good * math.log((1.0 - r) / (1.0 - tolerated_rate))
            for r in alternatives
        )
    )


def rate_bound(bad: float, trials: float, *, alpha: float, upper: bool, prior_rate: float | None = None) -> float:
    """One end of the beta-binomial mixture confidence sequence of a Bernoulli rate.

    The set ``{p : M_n(p) < 1 / alpha}`` with ``M_n(p)`` the beta mixture over
    the binomial likelihood ratio against ``p`` holds the true rate at every
    look with probability at least ``1 - alpha`` (Robbins, 1970). With
    ``prior_rate`` the mixture is centred there with :data:`PRIOR_STRENGTH`
    pseudo-trials; without it, Jeffreys' Beta(1/2, 1/2).
    """
    if trials <= 0:
        return 1.0 if upper else 0.0
    if prior_rate is None:
        a = b = 0.5
    else:
        a, b = prior_rate * PRIOR_STRENGTH, (1.0 - prior_rate) * PRIOR_STRENGTH
    good = trials - bad
    level = _log_beta(a + bad, b + good) - _log_beta(a, b) - math.log(1.0 / alpha)
    estimate = bad / trials
    if upper and bad >= trials:
        return 1.0
    if not upper and bad <= 0:
        return 0.0
    return _boundary(bad, good, level, estimate, upper=upper)


def _boundary(bad: float, good: float, level: float, estimate: float, *, upper: bool) -> float:
    """Where the log likelihood ``bad log p + good log(1 - p)`` falls to ``level``, beside the estimate.

    Solved in ``x = -log(1 - p)`` for the upper end and ``x = log p`` for the
    lower one, where the log likelihood stays concave and well scaled however
    close the bound is to 0 or 1; Newton's method from the outside then
    converges monotonically in a few steps.
    """

    def excess(x: float) -> float:
        if upper:
            return (bad * math.log(-math.expm1(-x)) if bad > 0 else 0.0) - good * x - level
        return bad * x + (good * math.log(-math.expm1(x)) if good > 0 else 0.0) - level

    def slope(x: float) -> float:
        if upper:
            return (bad / math.expm1(x) if bad > 0 else 0.0) - good
        return bad - (good / math.expm1(-x) if good > 0 else 0.0)

    if upper:
        centre = -math.log1p(-estimate)
        step = max(centre, 1.0 / (bad + good))
    else:
        centre = math.log(estimate)
        step = 1.0
    point = centre + step if upper else centre - step
    while excess(point) >= 0:
        step *= 2.0
        point = centre + step if upper else centre - step
        if abs(point) > EXTREME_LOG:
            return 1.0 if upper else 0.0
    for _ in range(60):
        moved = point - excess(point) / slope(point)
        if abs(moved - point) <= 1e-12 * max(1.0, abs(point)):
            point = moved
            break
        point = moved
    return -math.expm1(-point) if upper else math.exp(point)


@dataclass(frozen=True, slots=True)
class RateComparison:
    """One look's reading of a rate guardrail."""

    verdict: RateVerdict
    canary_rate: float | None
    stable_rate: float | None
    canary_upper: float
    margin: float | None
    """The largest canary rate tolerated, from stable's lower bound; None until the baseline is known."""
    p_value: float
    """Always-valid p-value of "no harm" (running minimum of 1 / e-value)."""
    interval: tuple[float, float]
    """Always-valid bounds on canary minus stable (each side's bound at its share of alpha)."""
    needed: float | None
    """About how many more canary trials a Pass needs at the current rates; None when it cannot pass there."""


def compare_rates(
    harm: HarmEvidence,
    counts: RateCounts,
    *,
    prior_rate: float | None,
    max_ratio: float,
    max_increase: float,
    alpha: float,
) -> RateComparison:
    """Read both tests at one look: Fail on harm, Pass on shown safety, otherwise Waiting.

    Harm wins over safety: a canary that started failing mid-step still has a
    low cumulative rate for a while, and must not pass on its good past.
    """
    seen = counts.clamped()
    canary_alpha, stable_alpha = alpha * CANARY_ALPHA_SHARE, alpha * (1.0 - CANARY_ALPHA_SHARE)
    canary = (seen.canary_bad, seen.canary_trials)
    canary_upper = rate_bound(*canary, alpha=canary_alpha, upper=True, prior_rate=prior_rate)
    canary_lower = rate_bound(*canary, alpha=canary_alpha, upper=False, prior_rate=prior_rate)
    stable_upper = rate_bound(seen.stable_bad, seen.stable_trials, alpha=stable_alpha, upper=True)
    stable_lower = rate_bound(seen.stable_bad, seen.stable_trials, alpha=stable_alpha, upper=False)
    margin = None if prior_rate is None else max_ratio * stable_lower + max_increase
    canary_rate = seen.canary_bad / seen.canary_trials if seen.canary_trials else None
    stable_rate = seen.stable_bad / seen.stable_trials if seen.stable_trials else None
    verdict: RateVerdict = "Waiting"
    if harm.log_e_value >= math.log(1.0 / alpha):
        verdict = "Fail"
    elif margin is not None and canary_upper < margin:
        verdict = "Pass"
    needed = None
    if verdict == "Waiting" and margin is not None:
        rate = canary_rate if canary_rate is not None else prior_rate or 0.0
        needed = trials_to_pass(rate, seen.canary_trials, margin, canary_alpha, prior_rate)
    return RateComparison(
        verdict=verdict,
        canary_rate=canary_rate,
        stable_rate=stable_rate,
        canary_upper=canary_upper,
        margin=margin,
        p_value=min(1.0, math.exp(-harm.peak)),
        interval=(canary_lower - stable_upper, canary_upper - stable_lower),
        needed=needed,
    )


def trials_to_pass(
    rate: float, trials: float, margin: float, alpha: float, prior_rate: float | None = None
) -> float | None:
    """About how many more trials bring the upper bound below ``margin`` if the rate stays ``rate``.

    Evaluates the very bound the Pass test uses (:func:`rate_bound`) at
    projected counts, so the estimate agrees with the verdict also at few or
    no failures, where the bound is about ``log(1/alpha) / n`` rather than a
    normal radius. None when the rate is at or above the margin (then only
    harm or more time can decide) or the margin is out of reach.
    """
    if rate >= margin:
        return None

    def passes(n: float) -> bool:
        return rate_bound(rate * n, n, alpha=alpha, upper=True, prior_rate=prior_rate) < margin

    low = high = max(trials, 1.0)
    while not passes(high):
        if high > 1e12:
            return None
        low, high = high, high * 2.0
    for _ in range(30):
        if high - low <= max(1.0, 0.01 * low):
            break
        middle = (low + high) / 2.0
        if passes(middle):
            high = middle
        else:
            low = middle
    return max(high - trials, 0.0)


def baseline_rate(stable_bad: float, stable_trials: float) -> float | None:
    """The canary prior's centre, from stable alone, once stable has :data:`BASELINE_TRIALS` trials."""
    if stable_trials < BASELINE_TRIALS:
        return None
    estimate = (stable_bad + 0.5) / (stable_trials + 1.0)
    return min(max(estimate, MIN_PRIOR_RATE), MAX_PRIOR_RATE)


def _failure_share(ratio: float, share: float) -> float:
    """The probability that a failure is the canary's when it fails ``ratio`` times as often per trial."""
    return ratio * share / (ratio * share + 1.0 - share)


def _binomial_log_ratio(canary_bad: float, stable_bad: float, alternative: float, null: float) -> float:
    ratio = canary_bad * math.log(alternative / null) if canary_bad > 0 else 0.0
    if stable_bad > 0:
        ratio += stable_bad * math.log((1.0 - alternative) / (1.0 - null))
    return ratio


def _log_mean_exp(values: tuple[float, ...]) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))


def _log_add(a: float, b: float) -> float:
    """``log(exp(a) + exp(b))`` without overflow."""
    top = max(a, b)
    if top == -math.inf:
        return top
    return top + math.log1p(math.exp(min(a, b) - top))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
