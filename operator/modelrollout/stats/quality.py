"""Data quality of a feature from what a serving fleet exports: counters and histograms.

Three checks, each vectorised over features like the drift kernels:

* missing rate: ``missing / (missing + observed)``, where the histogram counts
  observed (non-missing) values and a counter counts missing ones;
* out-of-range share: current mass in bins entirely outside the reference's
  support (below its first or above its last non-empty bin);
* outlier share increase: current mass beyond the reference's Tukey fences
  (``Q1 - k * IQR``, ``Q3 + k * IQR``), minus the reference's own share beyond
  them, so that naturally heavy-tailed features do not fail by construction.

Quantiles and shares inside a bin assume mass spread uniformly within it, as
Prometheus' ``histogram_quantile`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelrollout.stats.histograms import FloatArray, HistogramError, count_matrix, finite_edges, row_proportions
from modelrollout.stats.results import CheckVerdict

IntArray = NDArray[np.int8]

_INCONCLUSIVE, _PASS, _FAIL = -1, 0, 1
_VERDICT_BY_CODE: dict[int, CheckVerdict] = {
    _INCONCLUSIVE: CheckVerdict.INCONCLUSIVE,
    _PASS: CheckVerdict.PASS,
    _FAIL: CheckVerdict.FAIL,
}


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """Limits above which a check fails; below ``min_samples`` the verdict is INCONCLUSIVE."""

    max_missing_rate: float = 0.05
    max_out_of_range_share: float = 0.01
    max_outlier_share_increase: float = 0.02
    iqr_multiplier: float = 1.5
    min_samples: float = 100.0


DEFAULT_QUALITY_THRESHOLDS = QualityThresholds()


@dataclass(frozen=True, slots=True)
class QualityReport:
    """Per-feature rates and verdicts (arrays with one entry per feature)."""

    missing_rate: FloatArray
    out_of_range_share: FloatArray
    outlier_share: FloatArray
    reference_outlier_share: FloatArray
    n_current: FloatArray
    missing_codes: IntArray
    out_of_range_codes: IntArray
    outlier_codes: IntArray
    codes: IntArray

    @property
    def failed(self) -> NDArray[np.bool_]:
        failed: NDArray[np.bool_] = np.equal(self.codes, _FAIL)
        return failed

    def verdict(self, index: int) -> CheckVerdict:
        return _VERDICT_BY_CODE[int(self.codes[index])]

    def check_verdicts(self, index: int) -> dict[str, CheckVerdict]:
        return {
            "missing_rate": _VERDICT_BY_CODE[int(self.missing_codes[index])],
            "out_of_range_share": _VERDICT_BY_CODE[int(self.out_of_range_codes[index])],
            "outlier_share": _VERDICT_BY_CODE[int(self.outlier_codes[index])],
        }


def evaluate_quality(
    reference_counts: ArrayLike,
    current_counts: ArrayLike,
    edges: ArrayLike,
    current_missing: ArrayLike | None = None,
    *,
    thresholds: QualityThresholds = DEFAULT_QUALITY_THRESHOLDS,
) -> QualityReport:
    """Evaluate the three checks for ``F`` features from ``[F, B]`` counts on shared edges.

    ``current_missing`` (``[F]``, default zero) counts the current window's
    missing values, which the histograms do not contain.
    """
    reference = count_matrix(reference_counts, "reference counts")
    current = count_matrix(current_counts, "current counts")
    if reference.shape != current.shape:
        raise HistogramError(f"reference counts {reference.shape} and current counts {current.shape} differ")
    bin_edges = np.broadcast_to(np.asarray(edges, dtype=np.float64), (reference.shape[0], reference.shape[1] + 1))
    missing = np.zeros(reference.shape[0]) if current_missing is None else np.asarray(current_missing, np.float64)
    if missing.shape != (reference.shape[0],) or not np.isfinite(missing).all() or (missing < 0).any():
        raise HistogramError(f"missing counts must be {reference.shape[0]} finite non-negative values")

    n_current = current.sum(axis=1)
    seen = n_current + missing
    missing_rate = np.divide(missing, seen, out=np.zeros_like(seen), where=seen > 0)
    p_reference = row_proportions(reference, reference.sum(axis=1))
    p_current = row_proportions(current, n_current)

    out_of_range = _out_of_support_share(p_reference, p_current)
    finite = finite_edges(bin_edges)
    q1, q3 = (_quantile(p_reference, finite, q) for q in (0.25, 0.75))
    spread = thresholds.iqr_multiplier * (q3 - q1)
    low_fence, high_fence = q1 - spread, q3 + spread
    reference_outliers = _share_outside(p_reference, finite, low_fence, high_fence)
    current_outliers = _share_outside(p_current, finite, low_fence, high_fence)

    t = thresholds
    enough = seen >= t.min_samples
    observed = enough & (n_current > 0)
    missing_codes = _codes(enough, missing_rate > t.max_missing_rate)
    range_codes = _codes(observed, out_of_range > t.max_out_of_range_share)
    outlier_codes = _codes(observed, current_outliers - reference_outliers > t.max_outlier_share_increase)
    worst = np.maximum(np.maximum(missing_codes, range_codes), outlier_codes)
    codes = np.where(worst == _FAIL, _FAIL, np.where(enough, worst, _INCONCLUSIVE)).astype(np.int8)
    return QualityReport(
        missing_rate=missing_rate,
        out_of_range_share=out_of_range,
        outlier_share=current_outliers,
        reference_outlier_share=reference_outliers,
        n_current=n_current,
        missing_codes=missing_codes,
        out_of_range_codes=range_codes,
        outlier_codes=outlier_codes,
        codes=codes,
    )


def _codes(enough: NDArray[np.bool_], failing: NDArray[np.bool_]) -> IntArray:
    return np.where(enough, np.where(failing, _FAIL, _PASS), _INCONCLUSIVE).astype(np.int8)


def _out_of_support_share(p_reference: FloatArray, p_current: FloatArray) -> FloatArray:
    occupied = p_reference > 0
    bins = p_reference.shape[1]
    first = np.argmax(occupied, axis=1)
    last = bins - 1 - np.argmax(occupied[:, ::-1], axis=1)
    position = np.arange(bins)
    outside = (position < first[:, np.newaxis]) | (position > last[:, np.newaxis])
    any_occupied: NDArray[np.bool_] = np.any(occupied, axis=1)
    outside &= any_occupied[:, np.newaxis]
    share: FloatArray = np.sum(np.where(outside, p_current, 0.0), axis=1)
    return share


def _quantile(proportions: FloatArray, edges: FloatArray, q: float) -> FloatArray:
    """The ``q``-quantile of each row's uniform-within-bin density."""
    cumulative = np.cumsum(proportions, axis=1)
    position = np.minimum(np.sum(cumulative < q, axis=1), proportions.shape[1] - 1)
    rows = np.arange(proportions.shape[0])
    below = np.where(position > 0, cumulative[rows, position - 1], 0.0)
    mass = proportions[rows, position]
    fraction = np.divide(q - below, mass, out=np.zeros_like(mass), where=mass > 0)
    lower, upper = edges[rows, position], edges[rows, position + 1]
    result: FloatArray = lower + np.clip(fraction, 0.0, 1.0) * (upper - lower)
    return result


def _share_outside(proportions: FloatArray, edges: FloatArray, low: FloatArray, high: FloatArray) -> FloatArray:
    """Mass of each row below ``low`` plus above ``high``, interpolating within bins."""
    return _mass_below(proportions, edges, low) + 1.0 - _mass_below(proportions, edges, high)


def _mass_below(proportions: FloatArray, edges: FloatArray, x: FloatArray) -> FloatArray:
    lower, upper = edges[:, :-1], edges[:, 1:]
    widths = upper - lower
    covered = np.divide(
        np.clip(x[:, np.newaxis] - lower, 0.0, None), widths, out=np.zeros_like(widths), where=widths > 0
    )
    covered = np.where(widths > 0, np.minimum(covered, 1.0), (x[:, np.newaxis] >= upper).astype(np.float64))
    result: FloatArray = np.sum(proportions * covered, axis=1)
    return result
