"""Sample size, power and duration for a fixed-horizon two-arm comparison.

Normal-approximation formulas (Chow, Shao and Wang, "Sample Size Calculations in
Clinical Research", sections 3.2 and 4.2) with an allocation ratio
``k = n_challenger / n_champion``:

* two means, difference ``delta``:
  ``n_champion = (z_a + z_b)**2 * (sd_a**2 + sd_b**2 / k) / delta**2``
* two proportions ``p1 -> p2``:
  ``n_champion = (z_a * sqrt(pbar * (1 - pbar) * (1 + 1 / k)) + z_b * sqrt(p1 * q1 + p2 * q2 / k))**2 / delta**2``
  with ``pbar = (p1 + k * p2) / (1 + k)`` (the pooled proportion the z-test
  uses). ``null_variance="baseline"`` uses ``p1`` instead, which is what Evan
  Miller's widely used online calculator does (equal arms only).

``z_a`` is ``z_{1 - alpha / 2}`` (two-sided) or ``z_{1 - alpha}`` (one-sided) and
``z_b`` is ``z_{power}``. A relative MDE is a fraction of the baseline.
For the mSPRT (the Experiment's always-valid test) use
:func:`modelrollout.stats.sequential.msprt_sample_size`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from scipy import stats

Sides = Literal["two-sided", "one-sided"]


@dataclass(frozen=True, slots=True)
class SampleSize:
    """Observations needed per arm (rounded up)."""

    champion: int
    challenger: int

    @property
    def total(self) -> int:
        return self.champion + self.challenger


def sample_size_two_proportions(
    baseline: float,
    mde: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    sides: Sides = "two-sided",
    null_variance: Literal["pooled", "baseline"] = "pooled",
) -> SampleSize:
    """Per-arm sample size to detect ``baseline -> baseline + mde`` (or ``* (1 + mde)`` if relative)."""
    p1, p2 = _proportion_pair(baseline, mde, relative)
    z_alpha, z_beta = _quantiles(alpha, power, sides)
    pbar = (p1 + ratio * p2) / (1.0 + ratio) if null_variance == "pooled" else p1
    null_sd = math.sqrt(pbar * (1.0 - pbar) * (1.0 + 1.0 / ratio))
    alternative_sd = math.sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2) / ratio)
    n = (z_alpha * null_sd + z_beta * alternative_sd) ** 2 / (p2 - p1) ** 2
    return _rounded(n, ratio)


def sample_size_two_means(
    sd: float,
    mde: float,
    *,
    relative: bool = False,
    baseline_mean: float | None = None,
    challenger_sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    sides: Sides = "two-sided",
) -> SampleSize:
    """Per-arm sample size to detect a difference of means ``mde`` (relative needs ``baseline_mean``)."""
    delta = _mean_difference(mde, relative, baseline_mean)
    sd_b = sd if challenger_sd is None else challenger_sd
    z_alpha, z_beta = _quantiles(alpha, power, sides)
    n = (z_alpha + z_beta) ** 2 * (sd**2 + sd_b**2 / ratio) / delta**2
    return _rounded(n, ratio)


def power_two_proportions(
    baseline: float,
    mde: float,
    champion_count: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    ratio: float = 1.0,
    sides: Sides = "two-sided",
) -> float:
    """Power of the pooled two-proportion z-test (the inverse of :func:`sample_size_two_proportions`)."""
    p1, p2 = _proportion_pair(baseline, mde, relative)
    z_alpha, _ = _quantiles(alpha, 0.5, sides)
    pbar = (p1 + ratio * p2) / (1.0 + ratio)
    null_se = math.sqrt(pbar * (1.0 - pbar) * (1.0 / champion_count + 1.0 / (ratio * champion_count)))
    alternative_se = math.sqrt(p1 * (1.0 - p1) / champion_count + p2 * (1.0 - p2) / (ratio * champion_count))
    return float(stats.norm.cdf((abs(p2 - p1) - z_alpha * null_se) / alternative_se))


def power_two_means(
    sd: float,
    mde: float,
    champion_count: float,
    *,
    relative: bool = False,
    baseline_mean: float | None = None,
    challenger_sd: float | None = None,
    alpha: float = 0.05,
    ratio: float = 1.0,
    sides: Sides = "two-sided",
) -> float:
    """Power of the (large-sample) two-mean test with ``champion_count`` and ``ratio * champion_count``."""
    delta = _mean_difference(mde, relative, baseline_mean)
    sd_b = sd if challenger_sd is None else challenger_sd
    z_alpha, _ = _quantiles(alpha, 0.5, sides)
    se = math.sqrt(sd**2 / champion_count + sd_b**2 / (ratio * champion_count))
    return float(stats.norm.cdf(abs(delta) / se - z_alpha))


def duration_seconds(size: SampleSize, traffic_rate: float, allocation: Sequence[float]) -> float:
    """Time until both arms reach ``size`` at ``traffic_rate`` requests per second.

    ``allocation`` is (champion share, challenger share) of that traffic, e.g.
    ``(0.9, 0.1)`` for a 10% canary; the slower-filling arm sets the duration.
    Requests are assumed to be independent observations (a per-user metric
    needs the rate of new users instead).
    """
    if traffic_rate <= 0:
        raise ValueError(f"traffic rate must be positive, got {traffic_rate}")
    champion_share, challenger_share = allocation
    if champion_share <= 0 or challenger_share <= 0:
        raise ValueError(f"both arms need a positive share of traffic, got {tuple(allocation)}")
    return max(size.champion / champion_share, size.challenger / challenger_share) / traffic_rate


def _proportion_pair(baseline: float, mde: float, relative: bool) -> tuple[float, float]:
    p2 = baseline * (1.0 + mde) if relative else baseline + mde
    if not (0 < baseline < 1 and 0 < p2 < 1):
        raise ValueError(f"proportions must lie in (0, 1): baseline {baseline}, with effect {p2}")
    if mde == 0:
        raise ValueError("the minimum detectable effect must not be zero")
    return baseline, p2


def _mean_difference(mde: float, relative: bool, baseline_mean: float | None) -> float:
    if relative:
        if baseline_mean is None:
            raise ValueError("a relative MDE needs the baseline mean")
        mde = mde * baseline_mean
    if mde == 0:
        raise ValueError("the minimum detectable effect must not be zero")
    return mde


def _quantiles(alpha: float, power: float, sides: Sides) -> tuple[float, float]:
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must lie in (0, 1), got {alpha} and {power}")
    z_alpha = float(stats.norm.isf(alpha / 2.0 if sides == "two-sided" else alpha))
    return z_alpha, float(stats.norm.ppf(power))


def _rounded(champion: float, ratio: float) -> SampleSize:
    if not ratio > 0:
        raise ValueError(f"allocation ratio must be positive, got {ratio}")
    return SampleSize(champion=math.ceil(champion - 1e-9), challenger=math.ceil(champion * ratio - 1e-9))
