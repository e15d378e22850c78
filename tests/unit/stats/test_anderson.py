"""The two-sample Anderson-Darling test: scipy's statistic, and p-values that hold on tied data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.stats._morestats import _anderson_ksamp_midrank

from modelrollout.stats.anderson import PERMUTATIONS, anderson_darling, asymptotic_p_value, midrank_statistic
from modelrollout.stats.drift import Method, evaluate_binned, evaluate_samples


def _tables(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = np.unique(np.concatenate([reference, current]))
    return (
        values,
        np.array([np.count_nonzero(reference == v) for v in values]),
        np.array([np.count_nonzero(current == v) for v in values]),
    )


@pytest.mark.parametrize("tied", [True, False])
def test_the_statistic_from_count_tables_is_scipys(tied: bool) -> None:
    rng = np.random.default_rng(7)
    if tied:
        reference, current = rng.poisson(3, 60).astype(float), rng.poisson(3.4, 80).astype(float)
    else:
        reference, current = rng.normal(size=40), rng.normal(0.3, 1.2, size=50)
    values, reference_counts, current_counts = _tables(reference, current)
    pooled = np.sort(np.concatenate([reference, current]))
    expected = _anderson_ksamp_midrank(
        [reference, current], pooled, values, 2, np.array([reference.size, current.size]), pooled.size
    )
    assert midrank_statistic(reference_counts, current_counts)[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("n", "m", "tied"), [(5, 4, False), (60, 80, True), (1000, 700, False)])
def test_the_standardised_statistic_is_scipys(n: int, m: int, tied: bool) -> None:
    """Computed once, from the count table, with Scholz and Stephens' variance: the number scipy reports."""
    rng = np.random.default_rng(n + m)
    draw = (lambda size: rng.poisson(3, size).astype(float)) if tied else (lambda size: rng.normal(size=size))
    reference, current = draw(n), draw(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy's note that it capped its own p-value
        expected = scipy_stats.anderson_ksamp([reference, current], variant="midrank").statistic
    assert anderson_darling(reference, current).statistic == pytest.approx(expected, rel=1e-9)


def test_continuous_data_get_the_asymptotic_p_value_and_tied_data_permutations() -> None:
    rng = np.random.default_rng(3)
    continuous = anderson_darling(rng.normal(size=200), rng.normal(size=200))
    assert continuous.method == "asymptotic"
    counts = rng.poisson(2, 200).astype(float), rng.poisson(2, 200).astype(float)
    tied = anderson_darling(*counts, seed=5)
    assert tied.method == "permutation"
    assert tied == anderson_darling(*counts, seed=5), "the same data and seed give the same p-value"
    assert tied.p_value * (PERMUTATIONS + 1) == pytest.approx(round(tied.p_value * (PERMUTATIONS + 1)))


def test_tied_data_stay_calibrated_where_the_asymptotic_p_value_runs_hot() -> None:
    """Zero-inflated counts, no drift: scipy's asymptotic p-value flagged about 8.5% at level 3.2% (n = 1,000)."""
    rng = np.random.default_rng(11)
    pairs = 400

    def zero_inflated(size: int) -> np.ndarray:
        return np.where(rng.random(size) < 0.6, 0, rng.poisson(4, size)).astype(float)

    flagged = sum(anderson_darling(zero_inflated(300), zero_inflated(300), seed=i).p_value < 0.05 for i in range(pairs))
    # Binomial(400, 0.05): mean 20, sd 4.4; 35 is more than three sd above.
    assert flagged <= 35


def test_a_clear_shift_is_found_and_leads_the_raw_sample_verdict() -> None:
    rng = np.random.default_rng(2)
    result = evaluate_samples(rng.normal(size=1000), rng.normal(0.3, 1.0, size=1000))
    score = result.score("anderson_darling")
    assert result.drifted
    assert score.verdict.value == "Drift"
    assert score.effect_size is not None
    assert score.effect_size >= 0.05, "its practical size is the KS statistic"
    levels = {s.method: s.alpha for s in result.scores}
    assert levels["anderson_darling"] == max(levels.values()), "the lead test gets the largest share of alpha"


def test_histograms_cannot_ask_for_it() -> None:
    with pytest.raises(ValueError, match="raw samples"):
        evaluate_binned([[5.0, 5.0]], [[4.0, 6.0]], [0.0, 1.0, 2.0], methods=[Method.ANDERSON_DARLING])


@pytest.mark.filterwarnings("ignore:p-value")
def test_the_asymptotic_tail_agrees_with_scipys_table_and_goes_below_its_floor() -> None:
    rng = np.random.default_rng(8)
    for shift in (0.0, 0.1, 0.2):
        reference, current = rng.normal(size=300), rng.normal(shift, 1.0, size=300)
        result = scipy_stats.anderson_ksamp([reference, current], variant="midrank")
        if 0.001 < result.pvalue < 0.25:
            assert asymptotic_p_value(float(result.statistic)) == pytest.approx(result.pvalue, rel=0.05)
    far = anderson_darling(rng.normal(size=1000), rng.normal(0.5, 1.0, size=1000))
    assert far.p_value < 1e-6, "the CLI tests at levels far below scipy's clip at 0.001"


def test_tied_data_get_enough_permutations_to_reject_at_a_small_level() -> None:
    rng = np.random.default_rng(9)
    reference, current = rng.poisson(3.0, 2000).astype(float), rng.poisson(3.4, 2000).astype(float)
    assert anderson_darling(reference, current, level=1e-4).p_value < 1e-4
