"""Distribution drift between a reference and a current window.

The core is :func:`evaluate_binned`, which scores many features at once from
per-bin counts (rows are features, columns are bins), because that is what a
drift monitor has: one histogram per feature per window, hundreds of features.
:func:`evaluate_samples` and :func:`evaluate_categorical` cover raw data (the
offline CLI) and categories; they use scipy's exact routines where raw data
allows (``ks_2samp``, ``wasserstein_distance``) and the same binned kernels
otherwise, so the numbers agree across entry points.

The methods, their formulas and their caveats are documented in
``docs/statistics.md``; the short version is in each kernel's docstring.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from scipy.spatial.distance import jensenshannon as _scipy_jensenshannon

from modelrollout.stats.histograms import (
    FloatArray,
    HistogramError,
    count_matrix,
    finite_edges,
    from_samples,
    quantile_edges,
    row_proportions,
)
from modelrollout.stats.results import DriftVerdict, FeatureDrift, MethodScore


class Method(enum.StrEnum):
    PSI = "psi"
    KS = "ks"
    JENSEN_SHANNON = "jensen_shannon"
    CHI_SQUARE = "chi_square"
    WASSERSTEIN = "wasserstein"
    HELLINGER = "hellinger"


#: Methods for ordered numeric bins, and the subset that makes sense for categories
#: (KS and Wasserstein need an order and a distance between values).
NUMERIC_METHODS: tuple[Method, ...] = tuple(Method)
CATEGORICAL_METHODS: tuple[Method, ...] = (
    Method.PSI,
    Method.JENSEN_SHANNON,
    Method.CHI_SQUARE,
    Method.HELLINGER,
)
METHODS_WITH_P_VALUE: frozenset[Method] = frozenset({Method.KS, Method.CHI_SQUARE})

#: Proportion substituted for an empty bin in PSI, whose log-ratio is otherwise
#: infinite. 1e-4 is the convention of Evidently and most PSI write-ups; it caps
#: one empty bin's contribution at about ``p * ln(p / 1e-4)``.
PSI_EPSILON = 1e-4

IntArray = NDArray[np.int8]

# Verdict codes in the vectorised report: -1 is "insufficient data", 0..2 follow DRIFT_SEVERITY.
_INSUFFICIENT, _NO_DRIFT, _WARNING, _DRIFT = -1, 0, 1, 2
_VERDICT_BY_CODE: dict[int, DriftVerdict] = {
    _INSUFFICIENT: DriftVerdict.INSUFFICIENT_DATA,
    _NO_DRIFT: DriftVerdict.NO_DRIFT,
    _WARNING: DriftVerdict.WARNING,
    _DRIFT: DriftVerdict.DRIFT,
}


@dataclass(frozen=True, slots=True)
class DriftThresholds:
    """When a score becomes a warning or drift; defaults follow common practice.

    Significance tests (KS, chi-square) also need a minimum effect size: with a
    million observations a test is significant for differences nobody cares
    about, and a gate that fires on those is switched off by its users.
    Distances have an optional warning level (``None`` means none).
    """

    psi_warning: float | None = 0.1
    psi_drift: float = 0.2
    ks_alpha: float = 0.05
    ks_min_statistic: float = 0.1
    jensen_shannon_warning: float | None = None
    jensen_shannon_drift: float = 0.1
    chi_square_alpha: float = 0.05
    chi_square_min_cramers_v: float = 0.1
    wasserstein_warning_sd: float | None = None
    wasserstein_drift_sd: float = 0.1
    hellinger_warning: float | None = None
    hellinger_drift: float = 0.1
    #: Below this many observations in either window the verdict is
    #: INSUFFICIENT_DATA, never NO_DRIFT: absence of evidence is not evidence.
    min_samples: float = 100.0


DEFAULT_THRESHOLDS = DriftThresholds()


@dataclass(frozen=True, slots=True)
class BinnedDriftReport:
    """Scores for ``F`` features; every array has one entry per feature.

    ``effect_sizes`` holds Cramér's V for chi-square; for KS the statistic is
    its own effect size. Verdicts are kept as int8 codes for speed and turned
    into :class:`DriftVerdict` on demand.
    """

    methods: tuple[Method, ...]
    n_reference: FloatArray
    n_current: FloatArray
    statistics: Mapping[Method, FloatArray]
    p_values: Mapping[Method, FloatArray]
    effect_sizes: Mapping[Method, FloatArray]
    method_codes: Mapping[Method, IntArray]
    codes: IntArray

    @property
    def drifted(self) -> NDArray[np.bool_]:
        drifted: NDArray[np.bool_] = np.equal(self.codes, _DRIFT)
        return drifted

    def verdict(self, index: int) -> DriftVerdict:
        return _VERDICT_BY_CODE[int(self.codes[index])]

    def feature(self, index: int, name: str = "", kind: str = "numeric") -> FeatureDrift:
        scores = tuple(
            MethodScore(
                method=method.value,
                statistic=float(self.statistics[method][index]),
                p_value=float(self.p_values[method][index]) if method in self.p_values else None,
                effect_size=(float(self.effect_sizes[method][index]) if method in self.effect_sizes else None),
                verdict=_VERDICT_BY_CODE[int(self.method_codes[method][index])],
            )
            for method in self.methods
        )
        return FeatureDrift(
            name=name,
            kind=kind,
            n_reference=float(self.n_reference[index]),
            n_current=float(self.n_current[index]),
            scores=scores,
            verdict=self.verdict(index),
        )


@dataclass(frozen=True, slots=True)
class BinnedFeature:
    """One feature's counts on shared bins; ``edges=None`` marks a categorical feature."""

    name: str
    reference: FloatArray
    current: FloatArray
    edges: FloatArray | None = None
    categories: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        return "categorical" if self.edges is None else "numeric"


def evaluate_binned(
    reference_counts: ArrayLike,
    current_counts: ArrayLike,
    edges: ArrayLike | None = None,
    *,
    methods: Iterable[Method | str] = NUMERIC_METHODS,
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
    ordered: bool = True,
) -> BinnedDriftReport:
    """Score every method for ``F`` features at once from ``[F, B]`` count matrices.

    ``edges`` (``[B + 1]`` shared, or ``[F, B + 1]``) is needed only for
    Wasserstein. ``ordered=False`` declares categories (no KS or Wasserstein).
    Counts must be observation counts (``increase()``, not ``rate()``) for the
    p-values to mean anything; the distances only use proportions.
    """
    chosen = tuple(Method(m) for m in methods)
    reference = count_matrix(reference_counts, "reference counts")
    current = count_matrix(current_counts, "current counts")
    if reference.shape != current.shape:
        raise HistogramError(f"reference counts {reference.shape} and current counts {current.shape} differ")
    if not ordered and {Method.KS, Method.WASSERSTEIN} & set(chosen):
        raise ValueError("KS and Wasserstein need ordered numeric bins, not categories")

    n_reference = reference.sum(axis=1)
    n_current = current.sum(axis=1)
    p_reference = row_proportions(reference, n_reference)
    p_current = row_proportions(current, n_current)

    statistics: dict[Method, FloatArray] = {}
    p_values: dict[Method, FloatArray] = {}
    effect_sizes: dict[Method, FloatArray] = {}
    method_codes: dict[Method, IntArray] = {}
    t = thresholds
    for method in chosen:
        if method is Method.PSI:
            score = psi(p_reference, p_current)
            method_codes[method] = _band(score, t.psi_warning, t.psi_drift)
        elif method is Method.KS:
            score, p_value = ks_binned(p_reference, p_current, n_reference, n_current)
            p_values[method] = p_value
            method_codes[method] = _significant(p_value, t.ks_alpha, score, t.ks_min_statistic)
        elif method is Method.JENSEN_SHANNON:
            score = jensen_shannon(p_reference, p_current)
            method_codes[method] = _band(score, t.jensen_shannon_warning, t.jensen_shannon_drift)
        elif method is Method.CHI_SQUARE:
            score, p_value, cramers_v = chi_square_homogeneity(reference, current)
            p_values[method] = p_value
            effect_sizes[method] = cramers_v
            method_codes[method] = _significant(p_value, t.chi_square_alpha, cramers_v, t.chi_square_min_cramers_v)
        elif method is Method.WASSERSTEIN:
            if edges is None:
                raise ValueError("Wasserstein needs bin edges")
            score = wasserstein_binned_sd(p_reference, p_current, np.asarray(edges, dtype=np.float64))
            method_codes[method] = _band(score, t.wasserstein_warning_sd, t.wasserstein_drift_sd)
        else:
            score = hellinger(p_reference, p_current)
            method_codes[method] = _band(score, t.hellinger_warning, t.hellinger_drift)
        statistics[method] = score

    enough = (n_reference >= t.min_samples) & (n_current >= t.min_samples)
    for method, codes in method_codes.items():
        method_codes[method] = np.where(enough, codes, _INSUFFICIENT).astype(np.int8)
    if method_codes:
        worst = np.max(np.stack(list(method_codes.values())), axis=0)
    else:
        worst = np.zeros(reference.shape[0], dtype=np.int8)
    codes = np.where(enough, worst, _INSUFFICIENT).astype(np.int8)
    return BinnedDriftReport(
        methods=chosen,
        n_reference=n_reference,
        n_current=n_current,
        statistics=statistics,
        p_values=p_values,
        effect_sizes=effect_sizes,
        method_codes=method_codes,
        codes=codes,
    )


def evaluate_many(
    features: Sequence[BinnedFeature],
    *,
    methods: Collection[Method | str] = NUMERIC_METHODS,
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
) -> list[FeatureDrift]:
    """Score features with differing bin counts, in input order.

    Features are grouped by (kind, bin count) and each group is one vectorised
    :func:`evaluate_binned` call. Methods that do not apply to a feature's kind
    (KS and Wasserstein for categories) are skipped for it.
    """
    chosen = tuple(Method(m) for m in methods)
    results: list[FeatureDrift | None] = [None] * len(features)

    def group_key(index: int) -> tuple[str, int]:
        return features[index].kind, int(features[index].reference.shape[0])

    for (kind, _), group in itertools.groupby(sorted(range(len(features)), key=group_key), key=group_key):
        indices = list(group)
        applicable = chosen if kind == "numeric" else tuple(m for m in chosen if m in CATEGORICAL_METHODS)
        edges = None
        if kind == "numeric" and Method.WASSERSTEIN in applicable:
            edges = np.stack([_edges_of(features[i]) for i in indices])
        report = evaluate_binned(
            np.stack([features[i].reference for i in indices]),
            np.stack([features[i].current for i in indices]),
            edges,
            methods=applicable,
            thresholds=thresholds,
            ordered=kind == "numeric",
        )
        for row, index in enumerate(indices):
            results[index] = report.feature(row, features[index].name, kind)
    return [result for result in results if result is not None]


def evaluate_samples(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    name: str = "",
    methods: Iterable[Method | str] = NUMERIC_METHODS,
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
    bins: int = 10,
) -> FeatureDrift:
    """Score one numeric feature from raw (finite) samples.

    KS is scipy's exact-or-asymptotic ``ks_2samp`` and Wasserstein is scipy's
    exact ``wasserstein_distance`` divided by the reference standard deviation;
    the binned methods use ``bins`` reference-quantile bins (deciles by default,
    the usual PSI practice).
    """
    chosen = tuple(Method(m) for m in methods)
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.size == 0 or cur.size == 0:
        binned_ref = np.zeros((1, 1))
        binned_cur = np.zeros((1, 1))
    else:
        edges = quantile_edges(ref, bins)
        binned_ref = from_samples(ref, edges).counts[np.newaxis, :]
        binned_cur = from_samples(cur, edges).counts[np.newaxis, :]
    binned_methods = [m for m in chosen if m not in (Method.KS, Method.WASSERSTEIN)]
    report = evaluate_binned(binned_ref, binned_cur, methods=binned_methods, thresholds=thresholds)
    by_method = {score.method: score for score in report.feature(0).scores}
    enough = ref.size >= thresholds.min_samples and cur.size >= thresholds.min_samples
    scores: list[MethodScore] = []
    for method in chosen:
        if method is Method.KS:
            statistic, p_value = ks_samples(ref, cur)
            verdict = _verdict(
                enough, _significant(p_value, thresholds.ks_alpha, statistic, thresholds.ks_min_statistic)
            )
            scores.append(MethodScore(method.value, float(statistic[0]), float(p_value[0]), None, verdict))
        elif method is Method.WASSERSTEIN:
            distance = wasserstein_samples_sd(ref, cur)
            verdict = _verdict(
                enough, _band(distance, thresholds.wasserstein_warning_sd, thresholds.wasserstein_drift_sd)
            )
            scores.append(MethodScore(method.value, float(distance[0]), None, None, verdict))
        else:
            scores.append(by_method[method.value])
    return FeatureDrift(
        name=name,
        kind="numeric",
        n_reference=float(ref.size),
        n_current=float(cur.size),
        scores=tuple(scores),
        verdict=_combine(enough, scores),
    )


def evaluate_categorical(
    reference: Mapping[str, float],
    current: Mapping[str, float],
    *,
    name: str = "",
    methods: Iterable[Method | str] = CATEGORICAL_METHODS,
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
) -> FeatureDrift:
    """Score one categorical feature from per-category counts.

    Categories are aligned on their union: one seen only in the current window
    is a reference bin with count zero (PSI then uses :data:`PSI_EPSILON`, and
    chi-square keeps it because its column total is positive), which is exactly
    the kind of change a drift check must surface.
    """
    chosen = tuple(Method(m) for m in methods)
    if {Method.KS, Method.WASSERSTEIN} & set(chosen):
        raise ValueError("KS and Wasserstein need ordered numeric data, not categories")
    categories = align_categories(reference, current)
    ref = np.array([[reference.get(c, 0.0) for c in categories]], dtype=np.float64)
    cur = np.array([[current.get(c, 0.0) for c in categories]], dtype=np.float64)
    report = evaluate_binned(ref, cur, methods=chosen, thresholds=thresholds, ordered=False)
    return report.feature(0, name, "categorical")


def align_categories(reference: Mapping[str, float], current: Mapping[str, float]) -> tuple[str, ...]:
    """Reference categories in their order, then categories new in the current window, sorted."""
    return (*reference, *sorted(set(current) - set(reference)))


def psi(p_reference: FloatArray, p_current: FloatArray, epsilon: float = PSI_EPSILON) -> FloatArray:
    """Population Stability Index per row: ``sum((c - r) * ln(c / r))``.

    Empty bins get proportion ``epsilon`` (no renormalisation), see :data:`PSI_EPSILON`.
    The result is non-negative and zero for identical rows.
    """
    r = np.where(p_reference > 0, p_reference, epsilon)
    c = np.where(p_current > 0, p_current, epsilon)
    result: FloatArray = np.sum((c - r) * (np.log(c) - np.log(r)), axis=-1)
    return result


def ks_binned(
    p_reference: FloatArray, p_current: FloatArray, n_reference: FloatArray, n_current: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """KS statistic from cumulative proportions at the bin edges, with a conservative p-value.

    The statistic is the largest CDF difference at the edges, which for grouped
    data is all that is known (it never exceeds the raw-data statistic). The
    p-value is the asymptotic Kolmogorov distribution at ``sqrt(ne) * D`` with
    ``ne = n * m / (n + m)``. It is conservative for grouped data (the grouped
    statistic is stochastically smaller than the continuous one under the null)
    and for finite samples (the finite-sample distribution sits below the limit).
    """
    gaps = np.abs(np.cumsum(p_reference, axis=-1) - np.cumsum(p_current, axis=-1))
    statistic = np.clip(np.max(gaps, axis=-1), 0.0, 1.0)
    total = n_reference + n_current
    effective_n = np.divide(n_reference * n_current, total, out=np.zeros_like(total), where=total > 0)
    p_value: FloatArray = stats.kstwobign.sf(np.sqrt(effective_n) * statistic)
    return statistic, p_value


def ks_samples(reference: FloatArray, current: FloatArray) -> tuple[FloatArray, FloatArray]:
    """scipy's two-sample KS on raw samples (exact for small samples, asymptotic for large)."""
    if reference.size == 0 or current.size == 0:
        return np.zeros(1), np.ones(1)
    result = stats.ks_2samp(reference, current)
    return np.array([result.statistic], dtype=np.float64), np.array([result.pvalue], dtype=np.float64)


def jensen_shannon(p_reference: FloatArray, p_current: FloatArray) -> FloatArray:
    """Jensen-Shannon distance in base 2, so it lies in [0, 1] (scipy's ``jensenshannon``).

    Note: Evidently uses natural logarithms, whose range is [0, sqrt(ln 2)]; our
    value is theirs times ``1 / sqrt(ln 2)``, about 1.2.
    """
    empty = (p_reference.sum(axis=-1) <= 0) | (p_current.sum(axis=-1) <= 0)
    safe_reference = np.where(empty[..., np.newaxis], 1.0, p_reference)
    safe_current = np.where(empty[..., np.newaxis], 1.0, p_current)
    with np.errstate(invalid="ignore"):
        distance = _scipy_jensenshannon(safe_reference, safe_current, base=2.0, axis=-1)
    # Rounding can leave the divergence a hair below zero (sqrt gives NaN): that is zero.
    result: FloatArray = np.clip(np.nan_to_num(distance, nan=0.0), 0.0, 1.0)
    return result


def hellinger(p_reference: FloatArray, p_current: FloatArray) -> FloatArray:
    """Hellinger distance ``||sqrt(p) - sqrt(q)||_2 / sqrt(2)``, in [0, 1]."""
    result: FloatArray = np.sqrt(np.sum((np.sqrt(p_reference) - np.sqrt(p_current)) ** 2, axis=-1) / 2.0)
    return np.minimum(result, 1.0)


def chi_square_homogeneity(
    reference_counts: FloatArray, current_counts: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Pearson chi-square test of homogeneity of each row pair, as a 2 x B table.

    Returns (statistic, p-value, Cramér's V). Bins empty in both windows carry
    no information and would make expected counts zero, so they are dropped
    (degrees of freedom = non-empty bins - 1); this is what ``chi2_contingency``
    computes after removing the empty columns. With the 2-row closed form
    ``sum((r * m - c * n)^2 / ((r + c) * n * m))`` no expected table is built.
    The chi-square approximation wants expected counts of about 5 or more;
    with many sparse bins, prefer KS or coarser bins.
    """
    n_reference = reference_counts.sum(axis=-1, keepdims=True)
    n_current = current_counts.sum(axis=-1, keepdims=True)
    column = reference_counts + current_counts
    numerator = (reference_counts * n_current - current_counts * n_reference) ** 2
    denominator = column * n_reference * n_current
    terms = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    statistic = terms.sum(axis=-1)
    dof = np.count_nonzero(column > 0, axis=-1) - 1
    valid = (dof > 0) & (n_reference[..., 0] > 0) & (n_current[..., 0] > 0)
    p_value = np.ones_like(statistic)
    if valid.any():
        p_value[valid] = stats.chi2.sf(statistic[valid], dof[valid])
    statistic = np.where(valid, statistic, 0.0)
    total = (n_reference + n_current)[..., 0]
    cramers_v = np.sqrt(np.divide(statistic, total, out=np.zeros_like(statistic), where=total > 0))
    return statistic, p_value, np.minimum(cramers_v, 1.0)


def wasserstein_binned(p_reference: FloatArray, p_current: FloatArray, edges: FloatArray) -> FloatArray:
    """Exact Wasserstein-1 distance between the two histograms' piecewise-linear CDFs.

    Mass is taken as uniform within each bin (the same assumption as
    ``histogram_quantile``), so the CDF difference is linear within a bin and
    ``integral |F - G| dx`` is computed exactly, including bins where the
    difference changes sign. Unbounded outer bins are collapsed onto their
    finite edge: their mass counts as sitting at the edge, so tail shifts beyond
    the outermost finite bucket bound are not measured.
    """
    bounded = finite_edges(edges)
    differences = np.cumsum(p_reference - p_current, axis=-1)
    d = np.concatenate([np.zeros_like(differences[..., :1]), differences], axis=-1)
    d[..., -1] = 0.0
    left, right = d[..., :-1], d[..., 1:]
    widths = np.diff(bounded, axis=-1)
    magnitude = np.abs(left) + np.abs(right)
    crossing = left * right < 0
    per_width = np.where(crossing, 0.0, magnitude / 2.0)
    per_width += np.divide(left**2 + right**2, 2.0 * magnitude, out=np.zeros_like(magnitude), where=crossing)
    result: FloatArray = np.sum(widths * per_width, axis=-1)
    return result


def wasserstein_binned_sd(p_reference: FloatArray, p_current: FloatArray, edges: FloatArray) -> FloatArray:
    """:func:`wasserstein_binned` in units of the reference standard deviation.

    The reference variance is that of the uniform-within-bin density. A
    reference with no spread gives 0 for identical windows and +inf otherwise.
    """
    distance = wasserstein_binned(p_reference, p_current, edges)
    spread = binned_standard_deviation(p_reference, edges)
    return _scaled(distance, spread)


def binned_standard_deviation(proportions: FloatArray, edges: FloatArray) -> FloatArray:
    """Standard deviation of the uniform-within-bin density of each row."""
    bounded = finite_edges(edges)
    middles = (bounded[..., 1:] + bounded[..., :-1]) / 2.0
    widths = np.diff(bounded, axis=-1)
    mean = np.sum(proportions * middles, axis=-1, keepdims=True)
    variance = np.sum(proportions * ((middles - mean) ** 2 + widths**2 / 12.0), axis=-1)
    result: FloatArray = np.sqrt(np.maximum(variance, 0.0))
    return result


def wasserstein_samples_sd(reference: FloatArray, current: FloatArray) -> FloatArray:
    """scipy's exact Wasserstein-1 on raw samples divided by the reference standard deviation."""
    if reference.size == 0 or current.size == 0:
        return np.zeros(1)
    distance = np.array([stats.wasserstein_distance(reference, current)], dtype=np.float64)
    return _scaled(distance, np.array([np.std(reference)], dtype=np.float64))


def _scaled(distance: FloatArray, spread: FloatArray) -> FloatArray:
    scaled = np.divide(distance, spread, out=np.zeros_like(distance), where=spread > 0)
    return np.where((spread <= 0) & (distance > 0), math.inf, scaled)


def _edges_of(feature: BinnedFeature) -> FloatArray:
    if feature.edges is None:
        raise ValueError(f"feature {feature.name!r} has no edges")
    return feature.edges


def _band(score: FloatArray, warning: float | None, drift: float) -> IntArray:
    codes = np.where(score >= drift, _DRIFT, _NO_DRIFT)
    if warning is not None:
        codes = np.where((score >= warning) & (codes == _NO_DRIFT), _WARNING, codes)
    return codes.astype(np.int8)


def _significant(p_value: FloatArray, alpha: float, effect: FloatArray, min_effect: float) -> IntArray:
    return np.where((p_value < alpha) & (effect >= min_effect), _DRIFT, _NO_DRIFT).astype(np.int8)


def _verdict(enough: bool, codes: IntArray) -> DriftVerdict:
    return _VERDICT_BY_CODE[int(codes[0]) if enough else _INSUFFICIENT]


def _combine(enough: bool, scores: Sequence[MethodScore]) -> DriftVerdict:
    if not enough:
        return DriftVerdict.INSUFFICIENT_DATA
    order = {v: i for i, v in _VERDICT_BY_CODE.items()}
    return _VERDICT_BY_CODE[max((order[s.verdict] for s in scores), default=_NO_DRIFT)]
