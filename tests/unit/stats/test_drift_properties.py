"""Properties every drift metric must have, whatever the counts."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modelrollout.stats.drift import NUMERIC_METHODS, Method, evaluate_binned

BINS = 6
counts = arrays(np.float64, (3, BINS), elements=st.floats(min_value=0, max_value=1e6, allow_subnormal=False))
edges = np.linspace(0.0, 1.0, BINS + 1)


@settings(max_examples=200, deadline=None)
@given(counts, counts)
def test_every_score_is_finite_and_in_range(reference: np.ndarray, current: np.ndarray) -> None:
    report = evaluate_binned(reference, current, edges, methods=NUMERIC_METHODS)
    for method in NUMERIC_METHODS:
        assert np.isfinite(report.statistics[method]).all(), method  # a floored sd: never +inf
    assert (report.statistics[Method.PSI] >= -1e-12).all()
    for bounded in (Method.JENSEN_SHANNON, Method.HELLINGER, Method.KS):
        assert ((report.statistics[bounded] >= 0) & (report.statistics[bounded] <= 1)).all()
    for method, p_values in report.p_values.items():
        assert ((p_values >= 0) & (p_values <= 1)).all(), method


@settings(max_examples=200, deadline=None)
@given(counts)
def test_identical_windows_score_zero(reference: np.ndarray) -> None:
    report = evaluate_binned(reference, reference, edges, methods=NUMERIC_METHODS)
    for method in (Method.PSI, Method.JENSEN_SHANNON, Method.HELLINGER, Method.KS, Method.WASSERSTEIN):
        np.testing.assert_allclose(report.statistics[method], 0.0, atol=1e-7)
    np.testing.assert_allclose(report.statistics[Method.CHI_SQUARE], 0.0, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(counts, counts)
def test_symmetric_distances_do_not_depend_on_direction(reference: np.ndarray, current: np.ndarray) -> None:
    forward = evaluate_binned(reference, current, methods=[Method.PSI, Method.JENSEN_SHANNON, Method.HELLINGER])
    backward = evaluate_binned(current, reference, methods=[Method.PSI, Method.JENSEN_SHANNON, Method.HELLINGER])
    for method in (Method.JENSEN_SHANNON, Method.HELLINGER):
        np.testing.assert_allclose(forward.statistics[method], backward.statistics[method], atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(counts)
def test_identical_windows_never_drift_and_levels_keep_the_budget(reference: np.ndarray) -> None:
    report = evaluate_binned(reference, reference, edges, methods=NUMERIC_METHODS)
    assert not report.drifted.any()
    # The union bound: the binned family is charged at most its level, so the levels may sum to
    # slightly more than alpha only through a binned family that cannot spend its share.
    assert (report.levels[Method.KS] <= 0.05 + 1e-12).all()
    for method in NUMERIC_METHODS:
        floors = report.noise_floors[method]
        assert (np.isnan(floors) | (floors >= 0)).all()
