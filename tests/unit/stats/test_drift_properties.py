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
        assert np.isfinite(report.statistics[method]).all() or method is Method.WASSERSTEIN
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
@given(counts, st.floats(min_value=0.01, max_value=1000))
def test_proportion_scores_ignore_the_scale_of_counts(reference: np.ndarray, scale: float) -> None:
    shifted = np.roll(reference, 1, axis=1)
    base = evaluate_binned(reference, shifted, methods=[Method.PSI, Method.JENSEN_SHANNON])
    scaled = evaluate_binned(reference * scale, shifted * scale, methods=[Method.PSI, Method.JENSEN_SHANNON])
    for method in (Method.PSI, Method.JENSEN_SHANNON):
        np.testing.assert_allclose(base.statistics[method], scaled.statistics[method], rtol=1e-6, atol=1e-9)
