"""Corrections for testing several metrics or arms at once.

Holm-Bonferroni controls the family-wise error rate (the chance of any false
positive) and is uniformly more powerful than Bonferroni; use it for guardrails
where any false alarm costs a rollback. Benjamini-Hochberg controls the false
discovery rate (the expected share of false positives among rejections), for
exploratory metrics. Both accept always-valid p-values as well as fixed-horizon
ones: they only need each p-value to be valid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats


@dataclass(frozen=True, slots=True)
class AdjustedPValues:
    """Adjusted p-values (compare with ``alpha`` directly) and which hypotheses are rejected."""

    adjusted: NDArray[np.float64]
    rejected: NDArray[np.bool_]
    alpha: float


def holm(p_values: ArrayLike, alpha: float = 0.05) -> AdjustedPValues:
    """Holm's step-down adjustment: ``max_{j <= i} (m - j + 1) * p_(j)``, capped at 1."""
    p = _validated(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return AdjustedPValues(adjusted=adjusted, rejected=adjusted <= alpha, alpha=alpha)


def benjamini_hochberg(p_values: ArrayLike, alpha: float = 0.05) -> AdjustedPValues:
    """Benjamini-Hochberg adjusted p-values (scipy's ``false_discovery_control``)."""
    p = _validated(p_values)
    if p.size == 0:
        return AdjustedPValues(adjusted=p, rejected=np.zeros(0, dtype=np.bool_), alpha=alpha)
    adjusted = np.asarray(stats.false_discovery_control(p, method="bh"), dtype=np.float64)
    return AdjustedPValues(adjusted=adjusted, rejected=adjusted <= alpha, alpha=alpha)


def _validated(p_values: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must lie in [0, 1]")
    return p
