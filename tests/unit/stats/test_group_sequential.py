"""Lan-DeMets O'Brien-Fleming boundaries: published values, an independent check, simulations."""

import math

import numpy as np
import pytest
from scipy import stats

from modelrollout.stats.group_sequential import (
    inflation_factor,
    obrien_fleming_design,
    obrien_fleming_spending,
    rejection_probability,
)
from modelrollout.stats.power import sample_size_two_means

FIVE_LOOKS = [0.2, 0.4, 0.6, 0.8, 1.0]


def test_five_equal_looks_match_published_boundaries() -> None:
    """K = 5 equally spaced looks, two-sided alpha 0.05, Lan-DeMets O'Brien-Fleming spending:
    4.877, 3.357, 2.680, 2.290, 2.031, as printed by gsDesign (sfLDOF), ldbounds and rpact (asOF).
    (The brief's last value, 2.041, does not match any of them; 2.031 is what every tool gives.)"""
    design = obrien_fleming_design(FIVE_LOOKS, alpha=0.05)
    assert design.boundaries == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=6e-4)
    assert design.cumulative_alpha[-1] == pytest.approx(0.05)


def test_one_look_is_the_fixed_horizon_test() -> None:
    assert obrien_fleming_design([1.0]).boundaries[0] == pytest.approx(stats.norm.isf(0.025), abs=1e-8)


def test_spending_function_spends_alpha_by_the_end() -> None:
    spent = obrien_fleming_spending(np.array([0.1, 0.5, 1.0]), 0.05)
    assert np.all(np.diff(spent) > 0)
    assert spent[-1] == pytest.approx(0.05)


def test_boundaries_agree_with_scipys_multivariate_normal() -> None:
    """Independent check: P(|Z_k| < c_k for all k) with corr(Z_i, Z_j) = sqrt(t_i / t_j) is 1 - alpha."""
    design = obrien_fleming_design(FIVE_LOOKS)
    t = np.array(FIVE_LOOKS)
    correlation = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    bounds = np.array(design.boundaries)
    inside = stats.multivariate_normal.cdf(
        bounds,
        mean=np.zeros(5),
        cov=correlation,
        lower_limit=-bounds,
        abseps=1e-6,
        releps=1e-6,
        rng=np.random.default_rng(0),
    )
    assert inside == pytest.approx(0.95, abs=2e-4)


def test_unequal_looks_still_spend_exactly_alpha() -> None:
    design = obrien_fleming_design([0.3, 0.75, 1.0], alpha=0.05)
    assert rejection_probability(design, 0.0) == pytest.approx(0.05, abs=1e-6)
    assert design.crosses(2, 2.1)
    assert not design.crosses(0, 2.1)


def test_inflation_factor_is_small_for_obrien_fleming() -> None:
    """Jennison & Turnbull (2000), table 2.3 / 7.6: about 1.02-1.03 for five looks at 80-90% power."""
    design = obrien_fleming_design(FIVE_LOOKS)
    assert 1.015 < inflation_factor(design, 0.8) < 1.035
    assert 1.015 < inflation_factor(design, 0.9) < 1.035


def _simulate(design_looks: list[float], drift: float, replicates: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    t = np.array(design_looks)
    steps = rng.normal(drift * np.diff(t, prepend=0.0), np.sqrt(np.diff(t, prepend=0.0)), size=(replicates, t.size))
    z = steps.cumsum(axis=1) / np.sqrt(t)
    bounds = np.array(obrien_fleming_design(design_looks).boundaries)
    return float((np.abs(z) >= bounds).any(axis=1).mean())


@pytest.mark.slow
def test_simulated_type_one_error_and_power_match_the_design() -> None:
    """200,000 simulated trials under the null and under the drift sized by the inflation factor."""
    replicates = 200_000
    null_rate = _simulate(FIVE_LOOKS, 0.0, replicates, seed=1)
    assert null_rate == pytest.approx(0.05, abs=3 * math.sqrt(0.05 * 0.95 / replicates))
    design = obrien_fleming_design(FIVE_LOOKS)
    drift = (stats.norm.isf(0.025) + stats.norm.ppf(0.8)) * math.sqrt(inflation_factor(design, 0.8))
    power = _simulate(FIVE_LOOKS, drift, replicates, seed=2)
    assert power >= 0.8 - 3 * math.sqrt(0.8 * 0.2 / replicates)


@pytest.mark.slow
def test_group_sequential_sample_size_reaches_planned_power_with_real_data() -> None:
    """Means, sd 10, MDE 2: fixed-horizon n times the inflation factor, five looks, Welch z at each."""
    design = obrien_fleming_design(FIVE_LOOKS)
    n = sample_size_two_means(10.0, 2.0).champion * inflation_factor(design, 0.8)
    n_max = math.ceil(n)
    rng = np.random.default_rng(8)
    replicates = 4000
    looks = np.ceil(np.array(FIVE_LOOKS) * n_max).astype(int)
    champion = rng.normal(0.0, 10.0, size=(replicates, n_max))
    challenger = rng.normal(2.0, 10.0, size=(replicates, n_max))
    rejected = np.zeros(replicates, dtype=bool)
    for k, n_k in enumerate(looks):
        a, b = champion[:, :n_k], challenger[:, :n_k]
        z = (b.mean(axis=1) - a.mean(axis=1)) / np.sqrt((a.var(axis=1, ddof=1) + b.var(axis=1, ddof=1)) / n_k)
        rejected |= np.abs(z) >= design.boundaries[k]
    assert rejected.mean() >= 0.8 - 3 * math.sqrt(0.16 / replicates)
