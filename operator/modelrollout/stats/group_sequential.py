"""Group-sequential boundaries for a planned number of looks (Lan-DeMets alpha spending).

The alternative to the mSPRT when looks are few and planned (say, one per day
for five days): O'Brien-Fleming-type boundaries spend almost no alpha early and
keep the final boundary close to the fixed-horizon one, so little power is lost.

Spending function (Lan and DeMets 1983), applied to each side of a symmetric
two-sided test with ``a = alpha / 2`` per side, the convention of gsDesign
(``sfLDOF``), ldbounds and rpact (``asOF``):
``a(t) = 2 - 2 * Phi(z_{1 - a / 2} / sqrt(t))`` at information fraction ``t``, so
the two-sided alpha spent by ``t`` is ``alpha(t) = 2 * a(t)``. (Applying the formula to the
total two-sided alpha instead, as some texts do, spends more early: its first
boundary for five equal looks is 4.38 rather than 4.88.)

Boundary ``c_k`` solves
``P(|Z_1| < c_1, ..., |Z_{k-1}| < c_{k-1}, |Z_k| >= c_k) = alpha(t_k) - alpha(t_{k-1})``
where ``Z_k`` are the standardised statistics with ``corr(Z_i, Z_j) = sqrt(t_i / t_j)``.
The probabilities come from the recursive
numerical integration of Armitage, McPherson and Rowe (1969) on the score scale
``S_k = Z_k * sqrt(t_k)`` (a Brownian motion), with Simpson's rule as in Jennison
and Turnbull, "Group Sequential Methods" (2000), chapter 19. With the drift
``theta`` (``E[Z]`` at ``t = 1``) the same recursion gives the power.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

FloatArray = NDArray[np.float64]

#: Simpson nodes per look; 401 gives boundaries accurate to about 1e-5.
GRID_POINTS = 401


@dataclass(frozen=True, slots=True)
class GroupSequentialDesign:
    """Two-sided boundaries on the Z scale for looks at the given information fractions."""

    information_fractions: tuple[float, ...]
    boundaries: tuple[float, ...]
    cumulative_alpha: tuple[float, ...]
    alpha: float

    def nominal_p_values(self) -> tuple[float, ...]:
        """Two-sided fixed-horizon p-value that each boundary corresponds to."""
        return tuple(float(2.0 * stats.norm.sf(b)) for b in self.boundaries)

    def crosses(self, look: int, z: float) -> bool:
        """Whether the statistic ``z`` at look ``look`` (0-based) rejects the null."""
        return abs(z) >= self.boundaries[look]


def obrien_fleming_spending(information_fraction: ArrayLike, alpha: float = 0.05) -> FloatArray:
    """Cumulative two-sided alpha spent by information fraction ``t`` (Lan-DeMets O'Brien-Fleming)."""
    t = np.asarray(information_fraction, dtype=np.float64)
    per_side = alpha / 2.0
    spent: FloatArray = 2.0 * (2.0 * stats.norm.sf(stats.norm.isf(per_side / 2.0) / np.sqrt(t)))
    return spent


def obrien_fleming_design(information_fractions: Sequence[float], alpha: float = 0.05) -> GroupSequentialDesign:
    """Boundaries for looks at ``information_fractions`` (increasing, the last one 1 for the planned end)."""
    fractions = np.asarray(information_fractions, dtype=np.float64)
    if fractions.ndim != 1 or fractions.size == 0:
        raise ValueError("need at least one look")
    if not (np.all(np.diff(fractions) > 0) and fractions[0] > 0 and fractions[-1] <= 1):
        raise ValueError("information fractions must increase strictly within (0, 1]")
    spent = obrien_fleming_spending(fractions, alpha)
    increments = np.diff(spent, prepend=0.0)
    boundaries: list[float] = []
    for k in range(fractions.size):

        def excess(boundary: float, k: int = k) -> float:
            return float(_exit_probabilities(fractions[: k + 1], [*boundaries, boundary], 0.0)[-1] - increments[k])

        boundaries.append(float(optimize.brentq(excess, 0.1, 40.0, xtol=1e-10)))
    return GroupSequentialDesign(
        information_fractions=tuple(float(t) for t in fractions),
        boundaries=tuple(boundaries),
        cumulative_alpha=tuple(float(a) for a in spent),
        alpha=alpha,
    )


def rejection_probability(design: GroupSequentialDesign, drift: float) -> float:
    """Probability of crossing any boundary when ``E[Z]`` at full information is ``drift``."""
    fractions = np.asarray(design.information_fractions)
    return float(np.sum(_exit_probabilities(fractions, list(design.boundaries), drift)))


def inflation_factor(design: GroupSequentialDesign, power: float = 0.8) -> float:
    """Maximum sample size of the design relative to the fixed-horizon test with the same power.

    Multiply a fixed-horizon sample size (:mod:`modelrollout.stats.power`) by this
    to size the group-sequential experiment. Assumes the last look is at ``t = 1``.
    """
    fixed_drift = stats.norm.isf(design.alpha / 2.0) + stats.norm.ppf(power)
    drift: float = optimize.brentq(lambda d: rejection_probability(design, d) - power, 0.0, 3.0 * fixed_drift)
    return float((drift / fixed_drift) ** 2)


def _exit_probabilities(fractions: FloatArray, boundaries: Sequence[float], drift: float) -> FloatArray:
    """Probability of first crossing at each look (either side) under drift ``drift``."""
    exits = np.empty(len(boundaries))
    t_first = fractions[0]
    limit = boundaries[0] * math.sqrt(t_first)
    mean, sd = drift * t_first, math.sqrt(t_first)
    exits[0] = stats.norm.cdf(-limit, mean, sd) + stats.norm.sf(limit, mean, sd)
    nodes, weights = _simpson(-limit, limit)
    density = stats.norm.pdf(nodes, mean, sd)
    for k in range(1, len(boundaries)):
        step = fractions[k] - fractions[k - 1]
        step_sd = math.sqrt(step)
        limit = boundaries[k] * math.sqrt(fractions[k])
        shift = nodes + drift * step
        mass = weights * density
        exits[k] = np.dot(mass, stats.norm.cdf((-limit - shift) / step_sd) + stats.norm.sf((limit - shift) / step_sd))
        if k < len(boundaries) - 1:
            next_nodes, next_weights = _simpson(-limit, limit)
            kernel = stats.norm.pdf((next_nodes[:, np.newaxis] - shift[np.newaxis, :]) / step_sd) / step_sd
            density = kernel @ mass
            nodes, weights = next_nodes, next_weights
    return exits


def _simpson(low: float, high: float) -> tuple[FloatArray, FloatArray]:
    nodes = np.linspace(low, high, GRID_POINTS)
    weights = np.ones(GRID_POINTS)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    weights *= (high - low) / (GRID_POINTS - 1) / 3.0
    return nodes, weights
