"""Binned data: edges plus per-bin counts, and conversions into that form.

Drift is computed from histograms because that is what a serving fleet can
afford to export: Prometheus histograms are cumulative ``le`` buckets whose
counters reset when a pod restarts and whose ``rate()`` values are floats.
Everything here turns such data into plain per-bin counts on known edges, and
refuses (with :class:`HistogramError`) rather than guesses when it cannot.

Bin convention, the one Prometheus uses: bin ``k`` is ``(edges[k], edges[k+1]]``
(upper bound inclusive, like ``le``); the first bin also includes its lower edge.
Outer edges may be infinite (``-inf`` for the implicit lowest bucket, ``+inf``
for Prometheus' ``le="+Inf"`` bucket).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

#: Default relative tolerance for float noise in cumulative counts: rates of the
#: individual bucket series are computed independently and may disagree in the
#: last digits, so a bucket may appear a hair smaller than the one below it.
FLOAT_NOISE_TOLERANCE = 1e-6


class HistogramError(ValueError):
    """Binned data that cannot be used as given; the message says what and where."""


@dataclass(frozen=True, slots=True)
class Histogram:
    """Per-bin counts on strictly increasing edges (``len(edges) == len(counts) + 1``).

    Counts are floats: rate-based Prometheus data and weighted samples are not
    integers, and the tests used here only need non-negative masses.
    """

    edges: FloatArray
    counts: FloatArray

    def __post_init__(self) -> None:
        _check_edges(self.edges, "edges")
        if self.counts.ndim != 1 or self.counts.shape[0] != self.edges.shape[0] - 1:
            raise HistogramError(
                f"counts must have one value per bin: {self.edges.shape[0] - 1} bins, "
                f"got {self.counts.shape[0] if self.counts.ndim == 1 else self.counts.shape} counts"
            )
        _check_counts(self.counts, "counts")

    @property
    def total(self) -> float:
        return float(self.counts.sum())

    @property
    def bins(self) -> int:
        return int(self.counts.shape[0])

    def proportions(self) -> FloatArray:
        total = self.total
        if total <= 0:
            raise HistogramError("an empty histogram has no proportions")
        return self.counts / total


def histogram(edges: ArrayLike, counts: ArrayLike) -> Histogram:
    """Build a validated :class:`Histogram` from any array-likes."""
    return Histogram(edges=np.asarray(edges, dtype=np.float64), counts=np.asarray(counts, dtype=np.float64))


def from_cumulative_buckets(
    upper_bounds: Sequence[float | str],
    cumulative_counts: Sequence[float],
    *,
    lower_bound: float = -math.inf,
    tolerance: float = FLOAT_NOISE_TOLERANCE,
) -> Histogram:
    """Convert Prometheus ``le`` buckets (cumulative counts) into per-bin counts.

    ``upper_bounds`` are the ``le`` label values (strings such as ``"+Inf"`` are
    accepted) in any order; the ``+Inf`` bucket is required, since without it the
    total is unknown. ``lower_bound`` is the lower edge of the first bucket:
    ``-inf`` in general, ``0`` for non-negative quantities such as latencies.

    Cumulative counts must not decrease with ``le``. Decreases smaller than
    ``tolerance`` times the largest count are float noise from ``rate()`` and are
    removed with a running maximum (what ``histogram_quantile`` does); larger ones
    are an error, because they mean the series do not belong together.
    """
    if len(upper_bounds) != len(cumulative_counts):
        raise HistogramError(f"got {len(upper_bounds)} bucket bounds but {len(cumulative_counts)} cumulative counts")
    if not upper_bounds:
        raise HistogramError("no buckets")
    bounds = _parsed_bounds(upper_bounds)
    cumulative = np.asarray(cumulative_counts, dtype=np.float64)
    if np.isnan(bounds).any():
        raise HistogramError("a bucket bound is NaN")
    order = np.argsort(bounds, kind="stable")
    bounds, cumulative = bounds[order], cumulative[order]
    if np.any(np.diff(bounds) == 0):
        raise HistogramError(f"duplicate bucket bound {bounds[np.flatnonzero(np.diff(bounds) == 0)[0]]}")
    if bounds[-1] != math.inf:
        raise HistogramError('the "+Inf" bucket is missing, so the total count is unknown')
    if not bounds[0] > lower_bound:
        raise HistogramError(f"lowest bucket bound {bounds[0]} is not above the lower bound {lower_bound}")
    _check_counts(cumulative, "cumulative counts")
    cumulative = _monotone(cumulative, tolerance, bounds)
    counts = np.diff(cumulative, prepend=0.0)
    edges = np.concatenate(([lower_bound], bounds))
    return Histogram(edges=edges, counts=counts)


def from_cumulative_matrix(
    upper_bounds: Sequence[float | str],
    cumulative_counts: ArrayLike,
    *,
    lower_bound: float = -math.inf,
    tolerance: float = FLOAT_NOISE_TOLERANCE,
) -> tuple[FloatArray, FloatArray]:
    """:func:`from_cumulative_buckets` for many histograms sharing one set of ``le`` bounds.

    ``cumulative_counts`` is ``[F, len(upper_bounds)]`` (rows are histograms, e.g. the
    features of one Prometheus family). Returns ``(edges, counts[F, B])``. The bounds are
    parsed, sorted and checked once and the counts in one vectorised pass: a DriftMonitor
    with hundreds of features spent most of its compute converting them one at a time.
    Raises :class:`HistogramError` if any row is invalid (convert that row alone for the
    precise message).
    """
    matrix = np.asarray(cumulative_counts, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(upper_bounds):
        raise HistogramError(f"got {len(upper_bounds)} bucket bounds but cumulative counts of shape {matrix.shape}")
    template = from_cumulative_buckets(upper_bounds, [0.0] * len(upper_bounds), lower_bound=lower_bound)
    order = np.argsort(_parsed_bounds(upper_bounds), kind="stable")
    cumulative = matrix[:, order]
    _check_counts(cumulative, "cumulative counts")
    running = np.maximum.accumulate(cumulative, axis=1)
    slack = tolerance * np.maximum(running[:, -1:], 1.0)
    if ((running - cumulative) > slack).any():
        raise HistogramError("cumulative counts decrease in some histogram; buckets must be cumulative")
    counts = np.diff(running, axis=1, prepend=0.0)
    return template.edges, counts


def _parsed_bounds(upper_bounds: Sequence[float | str]) -> FloatArray:
    bounds = np.empty(len(upper_bounds), dtype=np.float64)
    for position, raw in enumerate(upper_bounds):
        try:
            bounds[position] = float(raw)
        except ValueError:
            raise HistogramError(f"bucket bound {raw!r} (position {position}) is not a number") from None
    return bounds


def bucket_increase(earlier: ArrayLike, later: ArrayLike, *, tolerance: float = FLOAT_NOISE_TOLERANCE) -> FloatArray:
    """Counts observed between two scrapes of the same cumulative bucket counters.

    If any counter went down (beyond float noise), the process restarted between
    the scrapes and every counter restarted from zero, so the increase is the
    later value itself, the same rule as Prometheus' ``increase()``. All buckets of
    one histogram live in one process, so a reset is applied to the whole vector,
    never to single buckets (that would produce impossible, non-monotone counts).
    """
    before = np.asarray(earlier, dtype=np.float64)
    after = np.asarray(later, dtype=np.float64)
    if before.shape != after.shape:
        raise HistogramError(f"scrapes have different bucket counts: {before.shape} and {after.shape}")
    _check_counts(before, "earlier counts")
    _check_counts(after, "later counts")
    slack = tolerance * max(float(before.max(initial=0.0)), 1.0)
    if np.any(after < before - slack):
        return after.copy()
    return np.maximum(after - before, 0.0)


def rebin(source: Histogram, edges: ArrayLike, *, interpolate: bool = False, clip: bool = False) -> Histogram:
    """Re-express ``source`` on ``edges`` (typically a reference histogram's edges).

    Exact when every target edge is also a source edge (merging adjacent bins).
    A target edge inside a source bin needs ``interpolate=True``, which assumes
    mass is spread uniformly within that bin; it is an error inside an infinite
    bin. Mass outside the target range is an error unless ``clip=True``, which
    adds it to the outermost target bins.
    """
    target = np.asarray(edges, dtype=np.float64)
    _check_edges(target, "target edges")
    cumulative = np.concatenate(([0.0], np.cumsum(source.counts)))
    at_target = np.empty_like(target)
    exact = np.isin(target, source.edges)
    at_target[exact] = cumulative[np.searchsorted(source.edges, target[exact])]
    if not exact.all():
        inexact = target[~exact]
        inside = (inexact > source.edges[0]) & (inexact < source.edges[-1])
        below = inexact <= source.edges[0]
        values = np.where(below, 0.0, cumulative[-1])
        if inside.any():
            if not interpolate:
                raise HistogramError(
                    f"edge {inexact[inside][0]} is not an edge of the source histogram; "
                    "pass interpolate=True to split bins assuming uniform mass within them"
                )
            position = np.searchsorted(source.edges, inexact[inside]) - 1
            lower, upper = source.edges[position], source.edges[position + 1]
            if not (np.isfinite(lower).all() and np.isfinite(upper).all()):
                raise HistogramError("cannot split an unbounded bin: the position of its mass is unknown")
            fraction = (inexact[inside] - lower) / (upper - lower)
            values[inside] = cumulative[position] + fraction * source.counts[position]
        at_target[~exact] = values
    outside_low, outside_high = at_target[0], cumulative[-1] - at_target[-1]
    if (outside_low > 0 or outside_high > 0) and not clip:
        raise HistogramError(
            f"{outside_low + outside_high:g} observations lie outside the target range "
            f"[{target[0]}, {target[-1]}]; pass clip=True to count them in the outer bins"
        )
    counts = np.diff(at_target)
    counts[0] += outside_low
    counts[-1] += outside_high
    return Histogram(edges=target, counts=np.maximum(counts, 0.0))


def open_ended(source: Histogram) -> Histogram:
    """``source`` with empty unbounded bins added below and above, where its outer edges are finite.

    Reference histograms cover the training range on finite edges, while live
    Prometheus histograms also count values below the first edge and above the
    last (``le="e0"`` and ``le="+Inf"``). Padding the reference with empty
    outer bins puts both on the same edges, so out-of-range traffic shows up as
    drift and as out-of-range share instead of being dropped or folded in.
    """
    edges, counts = source.edges, source.counts
    if math.isfinite(edges[0]):
        edges, counts = np.concatenate(([-math.inf], edges)), np.concatenate(([0.0], counts))
    if math.isfinite(edges[-1]):
        edges, counts = np.concatenate((edges, [math.inf])), np.concatenate((counts, [0.0]))
    return Histogram(edges=edges, counts=counts)


def from_samples(samples: ArrayLike, edges: ArrayLike) -> Histogram:
    """Count finite samples into ``edges`` (bin ``k`` is ``(edges[k], edges[k+1]]``)."""
    values = np.asarray(samples, dtype=np.float64)
    bin_edges = np.asarray(edges, dtype=np.float64)
    _check_edges(bin_edges, "edges")
    if not np.isfinite(values).all():
        raise HistogramError("samples must be finite; remove missing values first")
    position = np.searchsorted(bin_edges, values, side="left") - 1
    position[values == bin_edges[0]] = 0
    bins = bin_edges.shape[0] - 1
    if position.size and (position.min() < 0 or position.max() >= bins):
        raise HistogramError(f"samples lie outside [{bin_edges[0]}, {bin_edges[-1]}]")
    counts = np.bincount(position, minlength=bins).astype(np.float64)
    return Histogram(edges=bin_edges, counts=counts)


def quantile_edges(reference: ArrayLike, bins: int) -> FloatArray:
    """Edges at the reference's quantiles, open-ended so that any current value fits.

    Quantile (equal-frequency) bins are the usual choice for PSI: every reference
    bin holds about the same mass, so no bin is nearly empty by construction.
    Repeated quantiles (few distinct values) are merged, so fewer bins may result.
    """
    if bins < 1:
        raise HistogramError(f"bins must be at least 1, got {bins}")
    values = np.asarray(reference, dtype=np.float64)
    if values.size == 0:
        raise HistogramError("cannot derive bins from an empty reference")
    inner = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    return np.concatenate(([-math.inf], inner, [math.inf]))


def finite_edges(edges: FloatArray) -> FloatArray:
    """Edges with unbounded outer bins collapsed onto their finite edge (zero width)."""
    finite = np.array(edges, dtype=np.float64, copy=True)
    if finite.shape[-1] < 3 and not np.isfinite(finite).all():
        raise HistogramError("Wasserstein needs at least one finite bin edge inside an unbounded histogram")
    finite[..., 0] = np.where(np.isfinite(finite[..., 0]), finite[..., 0], finite[..., 1])
    finite[..., -1] = np.where(np.isfinite(finite[..., -1]), finite[..., -1], finite[..., -2])
    if not np.isfinite(finite).all():
        raise HistogramError("only the outer edges may be infinite")
    return finite


def count_matrix(counts: ArrayLike, what: str) -> FloatArray:
    """A validated ``[features, bins]`` float matrix of non-negative counts."""
    matrix = np.asarray(counts, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 1:
        raise HistogramError(f"{what} must be a [features, bins] matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise HistogramError(f"{what} must be finite and non-negative")
    return matrix


def row_proportions(counts: FloatArray, totals: FloatArray) -> FloatArray:
    """Each row divided by its total; all-zero rows stay zero."""
    column = totals[:, np.newaxis]
    return np.divide(counts, column, out=np.zeros_like(counts), where=column > 0)


def _check_edges(edges: FloatArray, what: str) -> None:
    if edges.ndim != 1 or edges.shape[0] < 2:
        raise HistogramError(f"{what} must be a 1-d sequence of at least two values")
    if np.isnan(edges).any():
        raise HistogramError(f"{what} contain NaN")
    if not np.all(np.diff(edges) > 0):
        position = int(np.flatnonzero(np.diff(edges) <= 0)[0])
        raise HistogramError(f"{what} must increase strictly: {edges[position]} is followed by {edges[position + 1]}")


def _check_counts(counts: FloatArray, what: str) -> None:
    if not np.isfinite(counts).all():
        raise HistogramError(f"{what} must be finite")
    if (counts < 0).any():
        raise HistogramError(f"{what} must not be negative (found {counts[counts < 0][0]:g})")


def _monotone(cumulative: FloatArray, tolerance: float, bounds: FloatArray) -> FloatArray:
    running = np.maximum.accumulate(cumulative)
    shortfall = running - cumulative
    slack = tolerance * max(float(running[-1]), 1.0)
    if (shortfall > slack).any():
        position = int(np.flatnonzero(shortfall > slack)[0])
        raise HistogramError(
            f"cumulative count decreases at le={bounds[position]} "
            f"({cumulative[position]:g} after {running[position]:g}); buckets must be cumulative"
        )
    return running
