"""Live Prometheus counts on the reference's bins, ready for :func:`modelrollout.stats.drift.evaluate_many`.

Prometheus answers with cumulative ``le`` buckets in the server's rendering of the edges, and
categorical counters with whatever categories the traffic had; the statistics need both sides of
a comparison on the same bins. Numeric features sharing bins are converted in one vectorised pass:
with hundreds of features, bucket conversion is where an evaluation's compute time goes.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from modelrollout.api.driftmonitor import FeatureResult
from modelrollout.core.drift.planning import Series
from modelrollout.references import CategoricalFeature, NumericFeature
from modelrollout.stats.drift import BinnedFeature, align_categories
from modelrollout.stats.histograms import (
    FloatArray,
    Histogram,
    HistogramError,
    from_cumulative_buckets,
    from_cumulative_matrix,
    open_ended,
    rebin,
)
from modelrollout.stats.histograms import histogram as make_histogram


def buckets_by_feature(samples: Sequence[Series], label: str = "feature") -> dict[str, list[tuple[str, float]]]:
    """``(le, count)`` pairs per value of ``label`` from a ``sum by (label, le)`` answer."""
    grouped: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for sample in samples:
        if "le" in sample.labels:
            grouped[sample.labels.get(label, "")].append((sample.labels["le"], float(sample.value)))
    return dict(grouped)


def live_counts(buckets: Sequence[tuple[str, float]], edges: FloatArray) -> FloatArray:
    """Per-bin counts on ``edges`` (the open-ended reference edges) from cumulative ``le`` buckets.

    ``le`` labels are the server's rendering of the reference edges (``0.1``, ``-3.25e-05``), so they
    are snapped onto the edge they denote before comparing; a server on other edges is merged onto
    the reference's when its edges include them, and refused otherwise (HistogramError).
    """
    live = from_cumulative_buckets([le for le, _ in buckets], [count for _, count in buckets])
    counts: FloatArray = _on_reference_edges(live.edges, live.counts[np.newaxis], edges)[0]
    return counts


def _on_reference_edges(live_edges: FloatArray, counts: FloatArray, edges: FloatArray) -> FloatArray:
    """Rows of ``counts`` on ``live_edges`` re-expressed on the reference ``edges`` (see :func:`live_counts`)."""
    if live_edges.shape == edges.shape and np.array_equal(live_edges, edges):
        return counts
    snapped = live_edges.copy()
    finite = np.isfinite(snapped)
    if finite.any():
        nearest = np.abs(snapped[finite][:, np.newaxis] - edges[np.newaxis, :]).argmin(axis=1)
        candidates = edges[nearest]
        close = np.isclose(snapped[finite], candidates, rtol=1e-9, atol=1e-12)
        snapped[np.flatnonzero(finite)[close]] = candidates[close]
    if np.array_equal(snapped, edges):
        return counts
    return np.stack([rebin(Histogram(edges=snapped, counts=row), edges).counts for row in counts])


def bin_numerics(
    features: Sequence[tuple[NumericFeature, Sequence[tuple[str, float]]]],
    binned: list[BinnedFeature],
    unscored: dict[str, FeatureResult],
) -> None:
    """:func:`bin_numeric` for many features, converting those that share ``le`` labels and reference edges
    (usually all of them) in one vectorised pass; a group with any invalid histogram is redone one feature at
    a time, so each problem is reported on its own feature."""
    groups: dict[tuple[tuple[str, ...], bytes], list[tuple[NumericFeature, Histogram, Sequence[float]]]]
    groups = defaultdict(list)
    for feature, buckets in features:
        reference = open_reference(feature)
        if not buckets:
            binned.append(
                BinnedFeature(feature.name, reference.counts, np.zeros_like(reference.counts), edges=reference.edges)
            )
            continue
        labels = tuple(le for le, _ in buckets)
        groups[(labels, reference.edges.tobytes())].append((feature, reference, [count for _, count in buckets]))
    for (labels, _), members in groups.items():
        edges = members[0][1].edges
        try:
            live_edges, counts = from_cumulative_matrix(labels, [cumulative for _, _, cumulative in members])
            counts = _on_reference_edges(live_edges, counts, edges)
        except HistogramError:
            for feature, _, cumulative in members:
                bin_numeric(feature, list(zip(labels, cumulative, strict=True)), binned, unscored)
            continue
        for (feature, reference, _), row in zip(members, counts, strict=True):
            binned.append(BinnedFeature(feature.name, reference.counts, row, edges=edges))


def bin_numeric(
    feature: NumericFeature,
    buckets: Sequence[tuple[str, float]],
    binned: list[BinnedFeature],
    unscored: dict[str, FeatureResult],
    name: str | None = None,
) -> None:
    """Append the feature's binned counts to ``binned``, or why it cannot be scored to ``unscored``."""
    name = name or feature.name
    reference = open_reference(feature)
    if not buckets:
        current = np.zeros_like(reference.counts)
    else:
        try:
            current = live_counts(buckets, reference.edges)
        except HistogramError as error:
            unscored[name] = FeatureResult(name=name, message=f"buckets do not match the reference's edges: {error}")
            return
    binned.append(BinnedFeature(name, reference.counts, current, edges=reference.edges))


def open_reference(feature: NumericFeature) -> Histogram:
    """The feature's reference on open-ended edges (shared and read-only, see :func:`_open_histogram`)."""
    return _open_histogram(tuple(feature.edges), tuple(feature.counts))


@functools.lru_cache(maxsize=20_000)
def _open_histogram(edges: tuple[float, ...], counts: tuple[int, ...]) -> Histogram:
    """A reference histogram on open-ended edges, built once per distinct content.

    Validating and padding a small histogram costs about as much as scoring it, and every
    evaluation judges the same references, so this cache halves an evaluation's compute time,
    which the DriftMonitor budget (10 ms for 200 features, ``bench/bench_drift.py``) needs.
    Keyed by content, an entry is right for any feature with these bins whatever object holds
    them, and an edited reference is a new entry; the bound caps the memory of stale ones.
    Callers share the arrays, so they are read-only.
    """
    histogram = open_ended(make_histogram(edges, counts))
    histogram.edges.setflags(write=False)
    histogram.counts.setflags(write=False)
    return histogram


def bin_categorical(feature: CategoricalFeature, live: Mapping[str, float]) -> BinnedFeature:
    """Trained and live counts on the reference's categories, then the ones new in the live window."""
    trained = dict(zip(feature.categories, map(float, feature.counts), strict=True))
    categories = align_categories(trained, live)
    return BinnedFeature(
        feature.name,
        np.array([trained.get(c, 0.0) for c in categories]),
        np.array([live.get(c, 0.0) for c in categories]),
        categories=categories,
    )
