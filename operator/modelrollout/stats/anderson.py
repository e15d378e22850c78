"""The two-sample Anderson-Darling test, with a p-value that holds for tied (discrete) data too.

Why it leads the raw-sample drift verdict: KS looks only at the largest gap
between the two empirical CDFs; Anderson-Darling sums the squared gaps over
the whole range, weighted towards the tails. At 1,000 observations per side
and the share of the false-alarm budget the primary test gets (3.2%), it finds
a 0.1 sd shift of a normal 53% of the time against KS's 40% (KS at a full 5%,
Evidently's default: 49%), and a 1.3x scale change of a t(2) 96% against 80%
(see docs/statistics.md).

P-values. scipy interpolates Scholz and Stephens' (1987) table and clips the
result to [0.001, 0.25], but the offline CLI splits its budget across features
and tests at levels far below 0.001. Continuous data therefore get the tail of
the limiting law itself, ``sum_j Z_j**2 / (j (j + 1))`` (two samples, no ties),
by Marsaglia and Marsaglia's (2004) approximation, applied to the
standardised statistic mapped back to that law's mean 1 and variance
``2 (pi**2 - 9) / 3``. Simulated on normal pairs (20,000 per size) it rejects
0.09%/0.08% at level 0.1% and 0.04%/0.03% at 0.05% (n = 100/1,000 per side).

The asymptotic law assumes continuous data. With ties it runs hot: at level
3.2% scipy's p-value flagged 5.9% of same-distribution pairs of Poisson counts
(n = 100) and 8.5% of zero-inflated ones (n = 1,000). Tied data therefore get a
permutation p-value, computed on the table of distinct values: relabelling the
pooled data is a multivariate hypergeometric draw of the current sample's count
at each distinct value, so a permutation costs one pass over the distinct
values, not a sort of the data, and enough of them to resolve the level asked
for are affordable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

PERMUTATIONS = 300
"""The fewest relabellings for tied data; more when the level asked for needs a finer p-value."""
PERMUTATION_ELEMENTS = 20_000_000
"""Budget of permutation work (relabellings x distinct values) for one test."""
_CHUNK_ELEMENTS = 2_000_000
_LIMIT_SD = math.sqrt(2.0 * (math.pi**2 - 9.0) / 3.0)
"""Standard deviation of the limiting law (mean 1), to map scipy's standardised statistic back onto it."""


@dataclass(frozen=True, slots=True)
class AndersonDarling:
    """The standardised statistic (as scipy's ``anderson_ksamp`` reports it) and a p-value valid for the data."""

    statistic: float
    p_value: float
    method: Literal["asymptotic", "permutation", "untestable"]


def anderson_darling(
    reference: FloatArray, current: FloatArray, *, level: float = 0.05, seed: int = 0
) -> AndersonDarling:
    """Test "same distribution" on two raw samples; ``seed`` fixes the permutations (reproducible verdicts).

    Continuous data (no ties) get the asymptotic p-value. Tied data get a
    Monte-Carlo permutation p-value ``(1 + #{null >= observed}) / (1 + draws)``
    with at least ``10 / level`` draws where the work budget allows, so that a
    test at ``level`` can reject.
    """
    pooled = np.concatenate([reference, current])
    values, pooled_counts = np.unique(pooled, return_counts=True)
    if values.size < 2 or pooled.size < 4:
        # One value on both sides, or too few for the statistic's variance: nothing to tell apart.
        return AndersonDarling(0.0, 1.0, "untestable")
    current_counts = np.zeros(values.size, dtype=np.int64)
    found, counts = np.unique(current, return_counts=True)
    current_counts[np.searchsorted(values, found)] = counts
    observed = midrank_statistic(pooled_counts - current_counts, current_counts)[0]
    standardised = (observed - 1.0) / math.sqrt(null_variance(reference.size, current.size))
    if values.size == pooled.size:
        return AndersonDarling(standardised, asymptotic_p_value(standardised), "asymptotic")
    wanted = max(PERMUTATIONS, math.ceil(10.0 / max(level, 1e-12)))
    permutations = max(PERMUTATIONS, min(wanted, PERMUTATION_ELEMENTS // values.size))
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // values.size)
    above = 0
    for start in range(0, permutations, chunk):
        drawn = rng.multivariate_hypergeometric(pooled_counts, current.size, size=min(chunk, permutations - start))
        null = midrank_statistic(pooled_counts[np.newaxis, :] - drawn, drawn)
        # A relative tolerance, so a relabelling that ties the observed table is not lost to rounding.
        above += int(np.count_nonzero(null >= observed * (1.0 - 1e-12)))
    return AndersonDarling(standardised, (1.0 + above) / (1.0 + permutations), "permutation")


def null_variance(n: int, m: int) -> float:
    """Variance of the two-sample statistic under no difference, exact for sizes ``n`` and ``m``.

    Scholz and Stephens' (1987) formula for ``k = 2``, as scipy's ``anderson_ksamp`` standardises; computed
    here so the statistic is computed once, from the table of distinct values the permutations use too.
    """
    k, total = 2, n + m
    spread = 1.0 / n + 1.0 / m
    inverse = 1.0 / np.arange(1, total, dtype=np.float64)
    harmonic = np.cumsum(inverse)
    h = float(harmonic[-1])
    rest = np.arange(1, total - 1, dtype=np.float64)
    g = float(np.sum((harmonic[-1] - harmonic[: total - 2]) / (total - rest)))
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * spread
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * spread - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * spread + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    return (a * total**3 + b * total**2 + c * total + d) / ((total - 1.0) * (total - 2.0) * (total - 3.0))


def asymptotic_p_value(standardised: float) -> float:
    """Upper tail of the two-sample limiting law at scipy's standardised statistic (Marsaglia and Marsaglia, 2004).

    Their two-piece approximation of the limiting CDF is accurate to about 1e-6;
    the upper piece is written as ``-expm1(-exp(...))`` so that the tail keeps its
    relative precision far beyond 0.001.
    """
    z = 1.0 + standardised * _LIMIT_SD
    if z <= 0.0:
        return 1.0
    if z < 2.0:
        polynomial = 2.00012 + (0.247105 - (0.0649821 - (0.0347962 - (0.011672 - 0.00168691 * z) * z) * z) * z) * z
        return min(1.0, max(0.0, 1.0 - math.exp(-1.2337141 / z) / math.sqrt(z) * polynomial))
    exponent = 1.0776 - (2.30695 - (0.43424 - (0.082433 - (0.008056 - 0.0003146 * z) * z) * z) * z) * z
    return -math.expm1(-math.exp(exponent))


def midrank_statistic(reference_counts: NDArray[np.int64], current_counts: NDArray[np.int64]) -> FloatArray:
    """Scholz and Stephens' ``A2akN`` (unstandardised) for rows of counts at shared, sorted distinct values.

    With ``l`` the pooled count at each value, ``B`` the pooled count below it
    plus half its own and ``M`` the same for the reference sample,
    ``A2 = (N - 1) / N**2 * (1/n + 1/m) * sum(l * (N M - n B)**2 / (B (N - B) - N l / 4))``;
    for two samples both terms of the k-sample sum are equal up to their ``1/n_i``.
    """
    reference = np.atleast_2d(reference_counts).astype(np.float64)
    current = np.atleast_2d(current_counts).astype(np.float64)
    pooled = reference + current
    n, m = reference.sum(axis=1, keepdims=True), current.sum(axis=1, keepdims=True)
    total = n + m
    below = np.cumsum(pooled, axis=1) - pooled / 2.0
    reference_below = np.cumsum(reference, axis=1) - reference / 2.0
    denominator = below * (total - below) - total * pooled / 4.0
    terms = np.divide(
        pooled * (total * reference_below - n * below) ** 2,
        denominator,
        out=np.zeros_like(pooled),
        where=denominator > 0,
    )
    statistic: FloatArray = ((total - 1.0) / total**2 * (1.0 / n + 1.0 / m) * terms.sum(axis=1, keepdims=True))[:, 0]
    return statistic
