"""Holm-Bonferroni and Benjamini-Hochberg."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from modelrollout.stats.multiple import benjamini_hochberg, holm

p_value_lists = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=40)


def test_holm_worked_example() -> None:
    """Holm (1979) step-down, the textbook four-hypothesis example at alpha 0.05: p = 0.01, 0.04,
    0.03, 0.005. Sorted 0.005 < 0.05/4, 0.01 < 0.05/3, then 0.03 > 0.05/2 stops: two rejections.
    Adjusted p-values: 4 * 0.005 = 0.02, 3 * 0.01 = 0.03, 2 * 0.03 = 0.06, max(0.06, 0.04) = 0.06."""
    result = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(result.adjusted, [0.03, 0.06, 0.06, 0.02])
    assert result.rejected.tolist() == [True, False, False, True]


def test_benjamini_hochberg_is_scipys() -> None:
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205]
    result = benjamini_hochberg(p)
    np.testing.assert_allclose(result.adjusted, stats.false_discovery_control(p))
    assert result.rejected.sum() == 2


def test_invalid_p_values_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.5, 1.5])


@given(p_value_lists, st.sampled_from([0.01, 0.05, 0.1]))
def test_holm_never_rejects_more_than_unadjusted_tests(p_values: list[float], alpha: float) -> None:
    result = holm(p_values, alpha)
    unadjusted = np.asarray(p_values) <= alpha
    assert not (result.rejected & ~unadjusted).any()
    assert (result.adjusted >= np.asarray(p_values) - 1e-15).all()
    assert (result.adjusted <= 1).all()


@given(p_value_lists, st.sampled_from([0.01, 0.05, 0.1]))
def test_benjamini_hochberg_rejects_everything_holm_rejects(p_values: list[float], alpha: float) -> None:
    assert not (holm(p_values, alpha).rejected & ~benjamini_hochberg(p_values, alpha).rejected).any()
