"""Prometheus bucket conversion, counter resets, re-binning and validation."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrollout.stats.histograms import (
    HistogramError,
    bucket_increase,
    from_cumulative_buckets,
    from_samples,
    histogram,
    open_ended,
    quantile_edges,
    rebin,
)


def test_cumulative_buckets_become_per_bin_counts() -> None:
    result = from_cumulative_buckets(["0.1", "0.5", "1", "+Inf"], [10, 30, 45, 50], lower_bound=0.0)
    np.testing.assert_array_equal(result.edges, [0.0, 0.1, 0.5, 1.0, math.inf])
    np.testing.assert_array_equal(result.counts, [10, 20, 15, 5])
    assert result.total == 50


def test_bucket_order_does_not_matter() -> None:
    result = from_cumulative_buckets([math.inf, 1.0, 0.5], [50, 45, 30])
    np.testing.assert_array_equal(result.counts, [30, 15, 5])
    assert result.edges[0] == -math.inf


def test_missing_inf_bucket_is_refused() -> None:
    with pytest.raises(HistogramError, match=r'"\+Inf" bucket is missing'):
        from_cumulative_buckets([0.5, 1.0], [3, 4])


def test_decreasing_cumulative_counts_are_refused_with_the_bucket() -> None:
    with pytest.raises(HistogramError, match=r"decreases at le=1.0 \(20 after 30\)"):
        from_cumulative_buckets([0.5, 1.0, math.inf], [30, 20, 40])


def test_rate_float_noise_is_smoothed_like_histogram_quantile() -> None:
    result = from_cumulative_buckets([0.5, 1.0, math.inf], [0.30000001, 0.3, 0.7])
    assert (result.counts >= 0).all()
    assert result.total == pytest.approx(0.7)


def test_non_numeric_bound_is_named() -> None:
    with pytest.raises(HistogramError, match=r"bucket bound 'fast' \(position 1\) is not a number"):
        from_cumulative_buckets(["0.5", "fast", "+Inf"], [1, 2, 3])


def test_duplicate_bounds_and_length_mismatch_are_refused() -> None:
    with pytest.raises(HistogramError, match=r"duplicate bucket bound 0\.5"):
        from_cumulative_buckets([0.5, 0.5, math.inf], [1, 2, 3])
    with pytest.raises(HistogramError, match="3 bucket bounds but 2 cumulative counts"):
        from_cumulative_buckets([0.5, 1, math.inf], [1, 2])


def test_increase_across_a_counter_reset_is_the_later_value() -> None:
    # The pod restarted between the scrapes: counters start again from zero.
    np.testing.assert_array_equal(bucket_increase([100, 200, 300], [5, 8, 9]), [5, 8, 9])
    np.testing.assert_array_equal(bucket_increase([100, 200, 300], [110, 230, 330]), [10, 30, 30])


def test_increase_needs_matching_scrapes() -> None:
    with pytest.raises(HistogramError, match="different bucket counts"):
        bucket_increase([1, 2], [1, 2, 3])


def test_rebin_merges_exactly_onto_coarser_reference_edges() -> None:
    fine = histogram([0, 1, 2, 3, 4], [1, 2, 3, 4])
    coarse = rebin(fine, [0, 2, 4])
    np.testing.assert_array_equal(coarse.counts, [3, 7])


def test_rebin_needs_permission_to_split_a_bin() -> None:
    source = histogram([0, 2, 4], [4, 8])
    with pytest.raises(HistogramError, match=r"edge 1\.0 is not an edge"):
        rebin(source, [0, 1, 4])
    split = rebin(source, [0, 1, 4], interpolate=True)
    np.testing.assert_allclose(split.counts, [2, 10])


def test_rebin_refuses_to_split_an_unbounded_bin() -> None:
    source = histogram([0, 2, math.inf], [4, 8])
    with pytest.raises(HistogramError, match="unbounded bin"):
        rebin(source, [0, 2, 10, math.inf], interpolate=True)


def test_rebin_reports_mass_outside_the_target_range_unless_clipped() -> None:
    source = histogram([-math.inf, 0, 1, 2, math.inf], [1, 5, 5, 2])
    with pytest.raises(HistogramError, match="3 observations lie outside"):
        rebin(source, [0, 1, 2])
    np.testing.assert_array_equal(rebin(source, [0, 1, 2], clip=True).counts, [6, 7])


def test_samples_use_the_prometheus_le_convention() -> None:
    # Bins are (lo, hi]: a value equal to an upper bound belongs to that bucket.
    result = from_samples([0.0, 0.5, 1.0, 1.5, 2.0], [0, 1, 2])
    np.testing.assert_array_equal(result.counts, [3, 2])
    with pytest.raises(HistogramError, match="outside"):
        from_samples([3.0], [0, 1, 2])


def test_quantile_edges_are_open_ended_and_merge_ties() -> None:
    edges = quantile_edges(np.r_[np.zeros(50), np.arange(50)], 10)
    assert edges[0] == -math.inf
    assert edges[-1] == math.inf
    assert np.all(np.diff(edges) > 0)


@pytest.mark.parametrize(
    ("edges", "counts", "message"),
    [
        ([0, 1, 1], [1, 1], "increase strictly"),
        ([0, 1], [1, 2], "one value per bin"),
        ([0, 1, 2], [1, -1], "must not be negative"),
        ([0, math.inf, 3], [1, 1], "inf is followed by 3.0"),
        ([0, 1, 2], [1, math.nan], "must be finite"),
    ],
)
def test_invalid_histograms_say_what_is_wrong(edges: list[float], counts: list[float], message: str) -> None:
    with pytest.raises(HistogramError, match=message):
        histogram(edges, counts)


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=30))
def test_per_bin_counts_round_trip_through_cumulative_buckets(counts: list[int]) -> None:
    bounds = [*range(1, len(counts)), math.inf]
    cumulative = np.cumsum(counts).tolist()
    result = from_cumulative_buckets(bounds, cumulative)
    np.testing.assert_array_equal(result.counts, counts)
    np.testing.assert_array_equal(np.cumsum(result.counts), cumulative)


@given(
    st.lists(st.integers(min_value=0, max_value=1000), min_size=4, max_size=20),
    st.data(),
)
def test_rebin_onto_a_subset_of_edges_preserves_every_partial_sum(counts: list[int], data: st.DataObject) -> None:
    edges = np.arange(len(counts) + 1, dtype=float)
    inner = data.draw(st.sets(st.integers(min_value=1, max_value=len(counts) - 1)))
    target = np.array([0.0, *sorted(inner), float(len(counts))])
    merged = rebin(histogram(edges, counts), target)
    cumulative = np.concatenate(([0], np.cumsum(counts)))
    np.testing.assert_array_equal(np.cumsum(merged.counts), cumulative[target.astype(int)][1:])


def test_open_ended_pads_a_finite_reference_to_match_live_buckets() -> None:
    reference = open_ended(histogram([0, 1, 2], [3, 4]))
    np.testing.assert_array_equal(reference.edges, [-math.inf, 0, 1, 2, math.inf])
    np.testing.assert_array_equal(reference.counts, [0, 3, 4, 0])
    live = from_cumulative_buckets(["0", "1", "2", "+Inf"], [1, 4, 8, 10])
    np.testing.assert_array_equal(live.edges, reference.edges)
