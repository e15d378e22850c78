"""The reference histograms :mod:`modelrollout.core.drift.binning` caches: keyed by content, shared read-only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelrollout.core.drift.binning import open_reference
from modelrollout.references import NumericFeature

EDGES = [-1.0, 0.0, 1.0]


def feature(name: str, counts: list[int]) -> NumericFeature:
    return NumericFeature(name=name, edges=EDGES, counts=counts, mean=0, std=0.5, min=-1, max=1)


def test_features_with_the_same_bins_share_one_open_ended_histogram() -> None:
    first, second = feature("a", [40, 60]), feature("b", [40, 60])

    histogram = open_reference(first)

    assert open_reference(second) is histogram
    assert histogram.edges.tolist() == [-math.inf, *EDGES, math.inf]
    assert histogram.counts.tolist() == [0.0, 40.0, 60.0, 0.0]


def test_an_edited_reference_gets_its_own_histogram() -> None:
    before, after = feature("a", [40, 60]), feature("a", [70, 30])

    assert open_reference(after).counts.tolist() == [0.0, 70.0, 30.0, 0.0]
    assert open_reference(before).counts.tolist() == [0.0, 40.0, 60.0, 0.0]


def test_shared_histograms_cannot_be_changed_by_a_caller() -> None:
    histogram = open_reference(feature("a", [40, 60]))

    with pytest.raises(ValueError, match="read-only"):
        histogram.counts[1] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        np.add(histogram.edges, 1.0, out=histogram.edges)
