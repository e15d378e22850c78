"""Sample ratio mismatch: is the observed split of traffic the configured one?

A split that deviates from the configured weights (say 50.5/49.5 on a million
users when 50/50 was asked for) means assignment or logging is broken, and then
no comparison between the arms can be trusted. The check is scipy's chi-square
goodness-of-fit test of the arm counts against the configured weights; the
industry default threshold is p < 0.001, strict because the check runs on every
look of every experiment and a false alarm invalidates an experiment.
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
    observed: Sequence[float], weights: Sequence[float], *, alpha: float = SRM_ALPHA
) -> SrmResult:
    """Chi-square goodness of fit of arm counts ``observed`` to allocation ``weights`` (any scale)."""
    counts = np.asarray(observed, dtype=np.float64)
    shares = np.asarray(weights, dtype=np.float64)
    if counts.shape != shares.shape or counts.ndim != 1 or counts.size < 2:
        raise ValueError(f"need one count and one weight per arm for two or more arms, got {counts} and {shares}")
    if (counts < 0).any() or not np.isfinite(counts).all():
        raise ValueError(f"arm counts must be finite and non-negative, got {counts.tolist()}")
    if (shares <= 0).any() or not np.isfinite(shares).all():
        raise ValueError(f"weights must be positive (an arm with weight 0 is not in the experiment), got {shares}")
    total = counts.sum()
    expected = total * shares / shares.sum()
    if total == 0:
        return SrmResult(0.0, 1.0, tuple(counts.tolist()), tuple(expected.tolist()), alpha)
    result = stats.chisquare(counts, f_exp=expected)
    return SrmResult(
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        observed=tuple(counts.tolist()),
        expected=tuple(expected.tolist()),
        alpha=alpha,
    )
