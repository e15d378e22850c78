"""Champion versus challenger: fixed-horizon tests, ratios and relative-to-baseline checks.

Conventions used throughout: differences and ratios are *challenger relative to
champion* (``challenger - champion``, ``challenger / champion``), intervals are
two-sided at ``confidence``, and a check decides from its interval, so that
"not enough data yet" (INCONCLUSIVE) is kept apart from "worse" (FAIL).

These are fixed-horizon methods: their p-values are valid once, at a sample
size chosen in advance. A controller that looks after every batch must use
:mod:`modelrollout.stats.sequential` instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from modelrollout.stats.results import CheckVerdict, Interval, RatioEstimate, RelativeCheck, TestResult

Alternative = Literal["two-sided", "greater", "less"]


@dataclass(frozen=True, slots=True)
class SummaryStats:
    """Count, mean and sample variance (``ddof=1``) of one arm's metric."""

    count: float
    mean: float
    variance: float

    def __post_init__(self) -> None:
        if not (self.count >= 0 and math.isfinite(self.count)):
            raise ValueError(f"count must be a non-negative number, got {self.count}")
        if not math.isfinite(self.mean):
            raise ValueError(f"mean must be finite, got {self.mean}")
        if not (self.variance >= 0 and math.isfinite(self.variance)):
            raise ValueError(f"variance must be a non-negative number, got {self.variance}")

    @classmethod
    def of(cls, samples: ArrayLike) -> SummaryStats:
        values = np.asarray(samples, dtype=np.float64)
        variance = float(np.var(values, ddof=1)) if values.size > 1 else 0.0
        return cls(count=float(values.size), mean=float(np.mean(values)), variance=variance)

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.variance / self.count) if self.count > 0 else math.inf


def two_proportions(
    champion_successes: float,
    champion_total: float,
    challenger_successes: float,
    challenger_total: float,
    *,
    confidence: float = 0.95,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """Two-proportion z-test of ``p_challenger - p_champion``.

    The test uses the pooled standard error (the variance under the null of equal
    proportions; ``z**2`` equals the uncorrected chi-square of the 2x2 table); the
    interval for the difference uses the unpooled (Wald) standard error, the
    variance where the proportions differ. Effect size is Cohen's ``h``.
    """
    _check_proportion(champion_successes, champion_total, "champion")
    _check_proportion(challenger_successes, challenger_total, "challenger")
    p_a = champion_successes / champion_total
    p_b = challenger_successes / challenger_total
    difference = p_b - p_a
    pooled = (champion_successes + challenger_successes) / (champion_total + challenger_total)
    pooled_se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / champion_total + 1.0 / challenger_total))
    wald_se = math.sqrt(p_a * (1.0 - p_a) / champion_total + p_b * (1.0 - p_b) / challenger_total)
    z = difference / pooled_se if pooled_se > 0 else 0.0
    critical = float(stats.norm.ppf(0.5 + confidence / 2.0))
    return TestResult(
        method="two-proportion z-test",
        estimate=difference,
        statistic=z,
        p_value=_normal_p_value(z, alternative),
        interval=Interval(difference - critical * wald_se, difference + critical * wald_se, confidence),
        effect_size=2.0 * math.asin(math.sqrt(p_b)) - 2.0 * math.asin(math.sqrt(p_a)),
        n_champion=champion_total,
        n_challenger=challenger_total,
    )


def welch_t_test(
    champion: SummaryStats,
    challenger: SummaryStats,
    *,
    confidence: float = 0.95,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """Welch's t-test of ``mean_challenger - mean_champion`` from summary statistics.

    scipy's ``ttest_ind_from_stats(equal_var=False)`` gives the test; the interval
    uses the same Welch-Satterthwaite degrees of freedom. Effect size is Cohen's
    ``d`` with the root mean of the two variances as the scale.
    """
    if champion.count < 2 or challenger.count < 2:
        raise ValueError("Welch's t-test needs at least two observations per arm")
    result = stats.ttest_ind_from_stats(
        challenger.mean,
        math.sqrt(challenger.variance),
        challenger.count,
        champion.mean,
        math.sqrt(champion.variance),
        champion.count,
        equal_var=False,
        alternative=alternative,
    )
    difference = challenger.mean - champion.mean
    va, vb = champion.variance / champion.count, challenger.variance / challenger.count
    se = math.sqrt(va + vb)
    if se > 0:
        dof = (va + vb) ** 2 / (va**2 / (champion.count - 1) + vb**2 / (challenger.count - 1))
        half_width = float(stats.t.ppf(0.5 + confidence / 2.0, dof)) * se
    else:
        half_width = 0.0
    scale = math.sqrt((champion.variance + challenger.variance) / 2.0)
    return TestResult(
        method="Welch t-test",
        estimate=difference,
        statistic=float(result.statistic) if se > 0 else 0.0,
        p_value=float(result.pvalue) if se > 0 else 1.0,
        interval=Interval(difference - half_width, difference + half_width, confidence),
        effect_size=difference / scale if scale > 0 else 0.0,
        n_champion=champion.count,
        n_challenger=challenger.count,
    )


def mann_whitney(
    champion_samples: ArrayLike, challenger_samples: ArrayLike, *, alternative: Alternative = "two-sided"
) -> TestResult:
    """scipy's Mann-Whitney U test, for raw samples of skewed metrics such as latency.

    The estimate is the difference of medians (descriptive); the effect size is
    the probability of superiority ``U / (n * m)``, where 0.5 means no shift.
    There is no interval: the Hodges-Lehmann interval needs all ``n * m``
    pairwise differences.
    """
    champion = np.asarray(champion_samples, dtype=np.float64)
    challenger = np.asarray(challenger_samples, dtype=np.float64)
    if champion.size == 0 or challenger.size == 0:
        raise ValueError("Mann-Whitney needs samples in both arms")
    result = stats.mannwhitneyu(challenger, champion, alternative=alternative)
    return TestResult(
        method="Mann-Whitney U",
        estimate=float(np.median(challenger) - np.median(champion)),
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        interval=None,
        effect_size=float(result.statistic) / (champion.size * challenger.size),
        n_champion=float(champion.size),
        n_challenger=float(challenger.size),
    )


def ratio_of_proportions(
    champion_successes: float,
    champion_total: float,
    challenger_successes: float,
    challenger_total: float,
    *,
    confidence: float = 0.95,
) -> RatioEstimate:
    """``p_challenger / p_champion`` with scipy's Katz log interval (``relative_risk``).

    With no successes in an arm the log interval does not exist; then 0.5 is
    added to every cell of the 2x2 table (Haldane-Anscombe), so the interval is
    wide but finite, and the method name says so.
    """
    _check_proportion(champion_successes, champion_total, "champion")
    _check_proportion(challenger_successes, challenger_total, "challenger")
    method = "Katz log interval"
    cells = (challenger_successes, challenger_total, champion_successes, champion_total)
    if champion_successes == 0 or challenger_successes == 0:
        method += " with Haldane-Anscombe correction"
        cells = (challenger_successes + 0.5, challenger_total + 1, champion_successes + 0.5, champion_total + 1)
    ratio = (cells[0] / cells[1]) / (cells[2] / cells[3])
    log_se = math.sqrt(1 / cells[0] - 1 / cells[1] + 1 / cells[2] - 1 / cells[3])
    if all(float(c).is_integer() for c in cells):
        result = stats.contingency.relative_risk(*(int(c) for c in cells))
        ci = result.confidence_interval(confidence_level=confidence)
        low, high = float(ci.low), float(ci.high)
    else:
        critical = float(stats.norm.ppf(0.5 + confidence / 2.0))
        low, high = ratio * math.exp(-critical * log_se), ratio * math.exp(critical * log_se)
    return RatioEstimate(
        method=method,
        ratio=ratio,
        interval=Interval(low, high, confidence),
        n_champion=champion_total,
        n_challenger=challenger_total,
    )


def ratio_of_means(champion: SummaryStats, challenger: SummaryStats, *, confidence: float = 0.95) -> RatioEstimate:
    """``mean_challenger / mean_champion`` with Fieller's interval and a Welch t quantile.

    Fieller's set is every ratio ``r`` that a Welch test of ``mean_b - r * mean_a
    = 0`` does not reject: ``(m_b - r m_a)**2 <= t**2 (v_b + r**2 v_a)``, with
    ``v = s**2 / n`` per arm and ``t`` on the Welch-Satterthwaite degrees of
    freedom of ``v_b + ratio**2 v_a``. Unlike the delta method it divides by no
    estimated mean, so a champion mean drawn low together with its variance
    (the usual sample of a heavy-tailed metric) does not make the interval too
    short, and with arms of one size and shape the two means' skewness cancels
    in ``m_b - r m_a``. Simulated with equal arms and 2,000 replications per cell
    (``bench/bench_ratio_coverage.py``, nominal 95%): the delta-method log
    interval this replaced covered 92.8% for lognormal sigma 1.5 at n = 100 per
    arm, 88.0% for sigma 2 at n = 100 and 92.6% at n = 1,000; Fieller covers
    97.2%, 97.0% and 96.2%, and 94.1-97.8% in every cell (lognormal sigma 0.5
    to 2, gamma, normal; n = 30 to 10,000). For light tails the two agree.

    What (count, mean, variance) cannot repair is skewness that does not
    cancel: with a 90/10 split the small arm's right tail dominates, the misses
    fall on one side, and both methods cover 89.6% for lognormal sigma 1.5 with
    900 champion and 100 challenger observations (94.4% at 9,000 and 1,000).
    Nothing in three summary numbers reveals that tail; the bootstrap on the
    raw samples does no better there (``bootstrap_ratio_of_means``).

    The interval is clipped at 0 (both true means are positive). When the
    champion mean is not distinguishable from zero at this confidence
    (``m_a**2 <= t**2 v_a``, 8% of samples for sigma 1.5 at n = 30), no
    finite upper limit exists and ``high`` is ``inf``: "no upper limit yet"
    rather than a short interval. Both sample means must be positive
    (latency, cost, accuracy are); for means near zero a ratio is the wrong
    question and a difference the better one.
    """
    if champion.count < 2 or challenger.count < 2:
        raise ValueError("a ratio of means needs at least two observations per arm")
    if champion.mean <= 0 or challenger.mean <= 0:
        raise ValueError("a ratio of means needs positive means in both arms")
    ratio = challenger.mean / champion.mean
    var_a = champion.variance / champion.count
    var_b = challenger.variance / challenger.count
    if var_a + var_b == 0:
        low = high = ratio
    else:
        scaled_a = ratio**2 * var_a
        dof = (var_b + scaled_a) ** 2 / (var_b**2 / (challenger.count - 1) + scaled_a**2 / (champion.count - 1))
        t2 = float(stats.t.ppf(0.5 + confidence / 2.0, dof)) ** 2
        # Roots of (m_a**2 - t2 v_a) r**2 - 2 m_a m_b r + (m_b**2 - t2 v_b) = 0. The lower root is
        # written as c / (b + root), which stays finite when the leading coefficient is 0 or negative.
        a = champion.mean**2 - t2 * var_a
        b = champion.mean * challenger.mean
        c = challenger.mean**2 - t2 * var_b
        root = math.sqrt(max(0.0, t2 * (var_a * challenger.mean**2 + var_b * champion.mean**2 - t2 * var_a * var_b)))
        low = max(0.0, c / (b + root))
        high = (b + root) / a if a > 0 else math.inf
    return RatioEstimate(
        method="Fieller (Welch t)",
        ratio=ratio,
        interval=Interval(low, high, confidence),
        n_champion=champion.count,
        n_challenger=challenger.count,
    )


def bootstrap_ratio_of_means(
    champion_samples: ArrayLike,
    challenger_samples: ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
    method: Literal["BCa", "percentile", "basic"] = "BCa",
) -> RatioEstimate:
    """``mean_challenger / mean_champion`` with a seeded ``scipy.stats.bootstrap`` interval.

    Not a cure for heavy tails: on lognormal arms (sigma 1.5 to 2, n = 30 to
    1,000 per arm) BCa covered 84-93% at nominal 95%, where Fieller's interval
    from the same samples' summaries (``ratio_of_means``) covered 93.7-99.0%
    (``bench/bench_ratio_coverage.py``, docs/benchmarks.md). It agrees with
    Fieller's interval on light tails and large samples, which makes it a
    cross-check on raw data rather than the better interval. BCa's jackknife
    costs one statistic per observation, so for tens of thousands of
    observations ``method="percentile"`` is much faster.
    """
    champion = np.asarray(champion_samples, dtype=np.float64)
    challenger = np.asarray(challenger_samples, dtype=np.float64)
    if champion.size < 2 or challenger.size < 2:
        raise ValueError("the bootstrap needs at least two observations per arm")

    def ratio(champion_draw: NDArray[np.float64], challenger_draw: NDArray[np.float64], axis: int) -> object:
        return np.mean(challenger_draw, axis=axis) / np.mean(champion_draw, axis=axis)

    statistic: Callable[..., object] = ratio
    result = stats.bootstrap(
        (champion, challenger),
        statistic,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method=method,
        vectorized=True,
        batch=max(1, 20_000_000 // (champion.size + challenger.size)),
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return RatioEstimate(
        method=f"bootstrap ({method}, {n_resamples} resamples, seed {seed})",
        ratio=float(np.mean(challenger) / np.mean(champion)),
        interval=Interval(float(interval.low), float(interval.high), confidence),
        n_champion=float(champion.size),
        n_challenger=float(challenger.size),
    )


def relative_to_baseline(ratio: RatioEstimate, *, bound: float, higher_is_better: bool) -> RelativeCheck:
    """Decide "challenger / champion is on the right side of ``bound``" from the ratio's interval.

    ``higher_is_better=True`` (accuracy >= 95% of champion: ``bound=0.95``):
    PASS when the whole interval is at or above the bound, FAIL when it is
    entirely below, else INCONCLUSIVE. ``higher_is_better=False`` (latency <=
    110%: ``bound=1.10``) mirrors this. With a two-sided interval at 95% each of
    PASS and FAIL is a one-sided test at 2.5%: this is a non-inferiority test.
    """
    low, high = ratio.interval.low, ratio.interval.high
    if higher_is_better:
        verdict = CheckVerdict.PASS if low >= bound else CheckVerdict.FAIL if high < bound else None
    else:
        verdict = CheckVerdict.PASS if high <= bound else CheckVerdict.FAIL if low > bound else None
    return RelativeCheck(
        ratio=ratio,
        bound=bound,
        higher_is_better=higher_is_better,
        verdict=verdict or CheckVerdict.INCONCLUSIVE,
    )


def _normal_p_value(z: float, alternative: Alternative) -> float:
    if alternative == "greater":
        return float(stats.norm.sf(z))
    if alternative == "less":
        return float(stats.norm.cdf(z))
    return float(2.0 * stats.norm.sf(abs(z)))


def _check_proportion(successes: float, total: float, arm: str) -> None:
    if not (total > 0 and math.isfinite(total)):
        raise ValueError(f"{arm}: total must be positive, got {total}")
    if not 0 <= successes <= total:
        raise ValueError(f"{arm}: successes must be between 0 and the total {total}, got {successes}")
