"""Sample ratio mismatch: is the observed split of traffic the configured one?

A split that deviates from the configured weights (say 50.5/49.5 on a million
users when 50/50 was asked for) means assignment or logging is broken, and then
no comparison between the arms can be trusted. The check is scipy's chi-square
goodness-of-fit test of the arm counts against the configured weights; the
industry default threshold is p < 0.001, strict because the check runs on every
look of every experiment and a false alarm invalidates an experiment.

Counts read from scraped counters at one instant carry an error besides
sampling: each arm's count is as of its targets' last scrape, so two arms
differ by up to a scrape interval of traffic whatever the assignment. That
error is bounded, while a broken assignment's grows with the traffic, so an
``allowance`` per arm absorbs it: only the part of a deviation beyond the
allowance counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

SRM_ALPHA = 0.001


@dataclass(frozen=True, slots=True)
class SrmResult:
    statistic: float
    p_value: float
    observed: tuple[float, ...]
    expected: tuple[float, ...]
    alpha: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.alpha


def sample_ratio_mismatch(
    observed: Sequence[float],
    weights: Sequence[float],
    *,
    alpha: float = SRM_ALPHA,
    allowance: Sequence[float] | None = None,
) -> SrmResult:
    """Chi-square goodness of fit of arm counts ``observed`` to allocation ``weights`` (any scale).

    ``allowance``: per arm, how far its count may be off for reasons other than
    assignment. Each deviation from the expected count shrinks by it (never
    below zero) before it is squared, so the statistic never exceeds Pearson's
    and the test stays conservative when the counts are exact.
    """
    counts = np.asarray(observed, dtype=np.float64)
    shares = np.asarray(weights, dtype=np.float64)
    slack = np.zeros_like(counts) if allowance is None else np.asarray(allowance, dtype=np.float64)
    if counts.shape != shares.shape or counts.ndim != 1 or counts.size < 2:
        raise ValueError(f"need one count and one weight per arm for two or more arms, got {counts} and {shares}")
    if (counts < 0).any() or not np.isfinite(counts).all():
        raise ValueError(f"arm counts must be finite and non-negative, got {counts.tolist()}")
    if (shares <= 0).any() or not np.isfinite(shares).all():
        raise ValueError(f"weights must be positive (an arm with weight 0 is not in the experiment), got {shares}")
    if slack.shape != counts.shape or (slack < 0).any() or not np.isfinite(slack).all():
        raise ValueError(f"need one finite, non-negative allowance per arm, got {slack.tolist()}")
    total = counts.sum()
    expected = total * shares / shares.sum()
    if total == 0:
        return SrmResult(0.0, 1.0, tuple(counts.tolist()), tuple(expected.tolist()), alpha)
    excess = np.maximum(np.abs(counts - expected) - slack, 0.0)
    statistic = float(np.sum(excess**2 / expected))
    return SrmResult(
        statistic=statistic,
        p_value=float(stats.chi2.sf(statistic, counts.size - 1)),
        observed=tuple(counts.tolist()),
        expected=tuple(expected.tolist()),
        alpha=alpha,
    )
