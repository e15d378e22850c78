"""Distribution drift between a reference and a current window, calibrated at every sample size.

The core is :func:`evaluate_binned`, which scores many features at once from
per-bin counts (rows are features, columns are bins), because that is what a
drift monitor has: one histogram per feature per window, hundreds of features.
:func:`evaluate_samples` and :func:`evaluate_categorical` cover raw data (the
offline CLI) and categories; they use scipy's exact routines where raw data
allows (``ks_2samp``) and the same binned kernels otherwise, so the numbers
agree across entry points.

A method counts as drift only when its score is above **both** its practical
threshold (PSI 0.2, Wasserstein 0.1 sd, ...) and its **noise floor**: the
``1 - level`` quantile of the score when nothing drifted, at these sample sizes
and bins. A fixed threshold alone cries wolf at small samples, where pure noise
reaches it (PSI of 10 deciles at 100 vs 100 observations averages 0.18). The
levels of a feature's methods share one false-alarm budget ``alpha`` (see
:func:`_levels`), so the feature's verdict, not each method's, is calibrated.
When the noise floor lies above the practical threshold the data cannot tell a
relevant drift from noise, and unless the method found significant drift its
verdict is INSUFFICIENT_DATA rather than NO_DRIFT.

The methods, their null laws and their caveats are documented in
``docs/statistics.md``; the short version is in each kernel's docstring.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from scipy.spatial.distance import jensenshannon as _scipy_jensenshannon

from modelrollout.stats.anderson import anderson_darling
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
    ANDERSON_DARLING = "anderson_darling"


#: Methods for ordered numeric bins, and the subset that makes sense for categories
#: (KS and Wasserstein need an order and a distance between values).
NUMERIC_METHODS: tuple[Method, ...] = (
    Method.PSI,
    Method.KS,
    Method.JENSEN_SHANNON,
    Method.CHI_SQUARE,
    Method.WASSERSTEIN,
    Method.HELLINGER,
)
#: Methods for raw numeric samples: the binned ones plus Anderson-Darling, which needs the
#: observations themselves (a histogram's ties would need its own null law).
SAMPLE_METHODS: tuple[Method, ...] = (*NUMERIC_METHODS, Method.ANDERSON_DARLING)
CATEGORICAL_METHODS: tuple[Method, ...] = (
    Method.PSI,
    Method.JENSEN_SHANNON,
    Method.CHI_SQUARE,
    Method.HELLINGER,
)
#: The binned distances: different summaries of one 2 x B table, sharing its noise model
#: (Pearson's chi-square on the merged bins).
BINNED_METHODS: frozenset[Method] = frozenset(CATEGORICAL_METHODS)

#: Proportion added to every bin of a row that has an empty bin when PSI is computed
#: from proportions alone (then renormalised, so the row still sums to one).
PSI_EPSILON = 1e-4
#: Pseudo-count added to every occupied bin before PSI is computed from counts
#: (Jeffreys' 1/2, Laplace-style smoothing): one observation more or less in a
#: bin moves PSI by a bounded amount, never from 0.2 to 0.7.
PSI_PSEUDO_COUNT = 0.5
#: Share of ``alpha`` that each secondary family of methods may use (see :func:`_levels`).
SECONDARY_SHARE = 0.1
#: The reference standard deviation is floored at this fraction of ``max(1, |mean|)``, so a
#: constant reference gives a large but finite Wasserstein score (Evidently floors at 0.001).
WASSERSTEIN_SD_FLOOR = 1e-3
#: Draws of the Gaussian null of binned Wasserstein (cached per reference histogram) and
#: permutations of the raw-sample null; both use fixed seeds, so verdicts are reproducible.
NULL_DRAWS = 1000
PERMUTATIONS = 300

IntArray = NDArray[np.int8]

# Verdict codes in the vectorised report: -1 is "insufficient data", 0..2 are NoDrift, Warning, Drift.
_INSUFFICIENT, _NO_DRIFT, _WARNING, _DRIFT = -1, 0, 1, 2
_VERDICT_BY_CODE: dict[int, DriftVerdict] = {
    _INSUFFICIENT: DriftVerdict.INSUFFICIENT_DATA,
    _NO_DRIFT: DriftVerdict.NO_DRIFT,
    _WARNING: DriftVerdict.WARNING,
    _DRIFT: DriftVerdict.DRIFT,
}


class _Family(enum.Enum):
    """Methods with one noise model: Anderson-Darling, KS, Wasserstein, and the binned distances."""

    ANDERSON_DARLING = "anderson_darling"
    KS = "ks"
    WASSERSTEIN = "wasserstein"
    BINNED = "binned"


def _family(method: Method) -> _Family:
    if method is Method.ANDERSON_DARLING:
        return _Family.ANDERSON_DARLING
    if method is Method.KS:
        return _Family.KS
    if method is Method.WASSERSTEIN:
        return _Family.WASSERSTEIN
    return _Family.BINNED


@dataclass(frozen=True, slots=True)
class DriftThresholds:
    """When a score is drift: above its practical threshold and above its noise floor.

    ``alpha`` is the false-alarm budget of one feature's verdict, all its
    methods together: with no drift a feature is flagged at most this often,
    whatever the sample sizes and bins. 4% rather than 5%, so that measured
    rates stay at most 5% with room for Monte-Carlo noise (the exact KS test
    at 5% lands on 5% itself). The practical thresholds keep huge
    windows from flagging differences nobody would act on (a million
    observations make a 0.01 sd shift significant). ``ks_alpha`` and
    ``chi_square_alpha`` optionally cap those tests' share of the budget.
    Distances have an optional warning level (``None`` means none).

    Defaults: the thresholds agree on "about a tenth of a standard deviation"
    (a 0.1 sd shift of a normal gives Wasserstein 0.1, KS 0.04, Cramér's V
    0.05 on deciles), except PSI, Jensen-Shannon and Hellinger, which keep
    their conventional, coarser levels. ``min_samples`` 100 with 10 bins
    expects 10 observations per bin, twice the chi-square rule of thumb, so
    sparse-bin merging (``min_expected``) rarely kicks in at the minimum.
    """

    alpha: float = 0.04
    psi_warning: float | None = 0.1
    psi_drift: float = 0.2
    ks_alpha: float | None = None
    ks_min_statistic: float = 0.05
    jensen_shannon_warning: float | None = None
    jensen_shannon_drift: float = 0.1
    chi_square_alpha: float | None = None
    chi_square_min_cramers_v: float = 0.05
    wasserstein_warning_sd: float | None = None
    wasserstein_drift_sd: float = 0.1
    hellinger_warning: float | None = None
    hellinger_drift: float = 0.1
    #: Below this many observations in either window the verdict is
    #: INSUFFICIENT_DATA, never NO_DRIFT: absence of evidence is not evidence.
    min_samples: float = 100.0
    #: Adjacent bins (categories: the rarest ones) are merged until each expects at
    #: least this many observations in the smaller window, as chi-square practice asks.
    min_expected: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")


DEFAULT_THRESHOLDS = DriftThresholds()
DEFAULT_BINS = 10
"""Reference-quantile bins for raw numeric data (deciles, the usual PSI practice)."""


@dataclass(frozen=True, slots=True)
class BinnedDriftReport:
    """Scores for ``F`` features; every array has one entry per feature.

    ``effect_sizes`` holds Cramér's V for chi-square; for KS the statistic is
    its own effect size. ``noise_floors`` are in each method's own unit (the
    score that noise alone exceeds with probability ``levels``). Verdicts are
    kept as int8 codes for speed and turned into :class:`DriftVerdict` on demand.
    """

    methods: tuple[Method, ...]
    n_reference: FloatArray
    n_current: FloatArray
    statistics: Mapping[Method, FloatArray]
    p_values: Mapping[Method, FloatArray]
    effect_sizes: Mapping[Method, FloatArray]
    noise_floors: Mapping[Method, FloatArray]
    levels: Mapping[Method, FloatArray]
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
                noise_floor=_optional(self.noise_floors[method][index]),
                alpha=float(self.levels[method][index]),
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


@dataclass(frozen=True, slots=True)
class _Scored:
    """One method's scores and verdict codes for ``F`` features."""

    statistic: FloatArray
    noise_floor: FloatArray
    codes: IntArray
    p_value: FloatArray | None = None
    effect_size: FloatArray | None = None


@dataclass(frozen=True, slots=True)
class _Table:
    """The binned distances' common ground: the merged 2 x B table and Pearson's test on it."""

    reference: FloatArray
    current: FloatArray
    n_reference: FloatArray
    n_current: FloatArray
    statistic: FloatArray
    p_value: FloatArray
    cramers_v: FloatArray
    dof: NDArray[np.int64]


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
    Counts must be observation counts (``increase()``, not ``rate()``): the
    noise floors and p-values depend on them.
    """
    chosen = tuple(Method(m) for m in methods)
    reference = count_matrix(reference_counts, "reference counts")
    current = count_matrix(current_counts, "current counts")
    if reference.shape != current.shape:
        raise HistogramError(f"reference counts {reference.shape} and current counts {current.shape} differ")
    if not ordered and {Method.KS, Method.WASSERSTEIN} & set(chosen):
        raise ValueError("KS and Wasserstein need ordered numeric bins, not categories")
    if Method.ANDERSON_DARLING in chosen:
        raise ValueError("Anderson-Darling needs raw samples (evaluate_samples), not bin counts")
    if Method.WASSERSTEIN in chosen and edges is None:
        raise ValueError("Wasserstein needs bin edges")

    t = thresholds
    n_reference = reference.sum(axis=1)
    n_current = current.sum(axis=1)
    families = {_family(m) for m in chosen}
    table = _table(reference, current, ordered, t.min_expected) if _Family.BINNED in families else None
    spend = _binned_spend(table, chosen, t) if table is not None else None
    levels = _levels(families, spend, t, reference.shape[0])

    scored: dict[Method, _Scored] = {}
    for method in chosen:
        level = levels[_family(method)]
        if method is Method.KS:
            statistic, p_value = ks_binned(
                row_proportions(reference, n_reference), row_proportions(current, n_current), n_reference, n_current
            )
            scored[method] = _score_ks(statistic, p_value, n_reference, n_current, t=t, level=level)
        elif method is Method.WASSERSTEIN:
            scored[method] = _score_wasserstein_binned(
                reference, current, np.asarray(edges, dtype=np.float64), t, level
            )
        else:
            assert table is not None
            scored[method] = _score_binned(table, method, t, level)
    enough = (n_reference >= t.min_samples) & (n_current >= t.min_samples)
    return _report(
        chosen, n_reference, n_current, scored, levels={m: levels[_family(m)] for m in chosen}, enough=enough
    )


def _report(
    chosen: tuple[Method, ...],
    n_reference: FloatArray,
    n_current: FloatArray,
    scored: Mapping[Method, _Scored],
    *,
    levels: Mapping[Method, FloatArray],
    enough: NDArray[np.bool_],
) -> BinnedDriftReport:
    method_codes = {m: np.where(enough, s.codes, _INSUFFICIENT).astype(np.int8) for m, s in scored.items()}
    if method_codes:
        # Severity order is the code order, and INSUFFICIENT (-1) loses to any verdict: a feature
        # is "not enough data" only when none of its methods could tell.
        worst = np.max(np.stack(list(method_codes.values())), axis=0)
    else:
        worst = np.zeros(n_reference.shape[0], dtype=np.int8)
    return BinnedDriftReport(
        methods=chosen,
        n_reference=n_reference,
        n_current=n_current,
        statistics={m: s.statistic for m, s in scored.items()},
        p_values={m: s.p_value for m, s in scored.items() if s.p_value is not None},
        effect_sizes={m: s.effect_size for m, s in scored.items() if s.effect_size is not None},
        noise_floors={m: s.noise_floor for m, s in scored.items()},
        levels=levels,
        method_codes=method_codes,
        codes=np.where(enough, worst, _INSUFFICIENT).astype(np.int8),
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
    methods: Iterable[Method | str] = SAMPLE_METHODS,
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
    bins: int = DEFAULT_BINS,
) -> FeatureDrift:
    """Score one numeric feature from raw (finite) samples.

    Anderson-Darling (:mod:`modelrollout.stats.anderson`) leads: it is the most
    powerful of the tests here against shifts and scale changes, so it gets
    the largest share of the feature's false-alarm budget; its practical size
    is the KS statistic (the largest CDF gap, at least ``ks_min_statistic``).
    KS is scipy's exact-or-asymptotic ``ks_2samp``; Wasserstein is the exact
    raw-sample distance over the reference's (floored) standard deviation,
    with a seeded permutation null; the binned methods use ``bins``
    reference-quantile bins (deciles by default, the usual PSI practice),
    merged where sparse.
    """
    chosen = tuple(Method(m) for m in methods)
    t = thresholds
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    empty = ref.size == 0 or cur.size == 0
    if empty:
        binned_ref, binned_cur = np.zeros((1, 1)), np.zeros((1, 1))
    else:
        edges = quantile_edges(ref, bins)
        binned_ref = from_samples(ref, edges).counts[np.newaxis, :]
        binned_cur = from_samples(cur, edges).counts[np.newaxis, :]
    families = {_family(m) for m in chosen}
    table = _table(binned_ref, binned_cur, True, t.min_expected) if _Family.BINNED in families else None
    spend = _binned_spend(table, chosen, t) if table is not None else None
    levels = _levels(families, spend, t, 1)
    n_ref, n_cur = np.array([float(ref.size)]), np.array([float(cur.size)])
    # KS's test and its statistic (Anderson-Darling's practical size) come from one ks_2samp.
    ks = ks_samples(ref, cur) if {_Family.KS, _Family.ANDERSON_DARLING} & families else None

    scored: dict[Method, _Scored] = {}
    for method in chosen:
        level = levels[_family(method)]
        if method is Method.KS:
            assert ks is not None
            scored[method] = _score_ks(*ks, n_ref, n_cur, t=t, level=level)
        elif method is Method.ANDERSON_DARLING:
            assert ks is not None
            scored[method] = _score_anderson_darling(ref, cur, ks[0], t, level)
        elif method is Method.WASSERSTEIN:
            scored[method] = _score_wasserstein_samples(ref, cur, t, level)
        else:
            assert table is not None
            scored[method] = _score_binned(table, method, t, level)
    enough = np.array([ref.size >= t.min_samples and cur.size >= t.min_samples and not empty])
    report = _report(chosen, n_ref, n_cur, scored, levels={m: levels[_family(m)] for m in chosen}, enough=enough)
    return report.feature(0, name, "numeric")


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
    is a reference bin with count zero, which is exactly the kind of change a
    drift check must surface. Rare categories are pooled before scoring (see
    :func:`merge_sparse_bins`), so a new category shows as growth of the pool.
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


# --- the false-alarm budget ------------------------------------------------------------------------------------------


def _levels(
    families: set[_Family], binned_spend: FloatArray | None, t: DriftThresholds, features: int
) -> dict[_Family, FloatArray]:
    """Per-family significance levels whose false alarms add up to at most ``alpha`` per feature.

    One family is primary (Anderson-Darling on raw samples when requested, else
    KS, else the binned distances, else Wasserstein) and gets what the others leave. Each secondary
    family may use up to ``SECONDARY_SHARE * alpha``, but is charged only what
    it can spend: a family whose practical threshold lies far above its noise
    (PSI 0.2 with deciles at 1,000 observations: chi-square 100 on 9 degrees of
    freedom) can never fire on noise, and its share goes back to the primary.
    By the union bound the feature's false-alarm rate is at most ``alpha``; the
    charge is computed for the binned family only (its law is known in closed
    form), Wasserstein is charged its full share.
    """
    order = (_Family.ANDERSON_DARLING, _Family.KS, _Family.BINNED, _Family.WASSERSTEIN)
    primary = next(f for f in order if f in families) if families else _Family.KS
    caps = {
        _Family.ANDERSON_DARLING: None,
        _Family.KS: t.ks_alpha,
        _Family.BINNED: t.chi_square_alpha,
        _Family.WASSERSTEIN: None,
    }
    levels: dict[_Family, FloatArray] = {}
    spent = np.zeros(features)
    for family in families - {primary}:
        level = np.full(features, t.alpha * SECONDARY_SHARE)
        cap = caps[family]
        if cap is not None:
            level = np.minimum(level, cap)
        charge = np.minimum(level, binned_spend) if family is _Family.BINNED and binned_spend is not None else level
        levels[family] = level
        spent = spent + charge
    primary_level = np.maximum(t.alpha - spent, 0.0)
    cap = caps[primary]
    levels[primary] = np.minimum(primary_level, cap) if cap is not None else primary_level
    return levels


# --- the binned distances: one merged table, one noise model ---------------------------------------------------------


def merge_sparse_bins(
    reference_counts: FloatArray, current_counts: FloatArray, *, ordered: bool, min_expected: float = 5.0
) -> tuple[FloatArray, FloatArray]:
    """Merge bins until each expects ``min_expected`` observations in the smaller window.

    Expected counts come from the pooled proportions (what both windows share
    under no drift) times the smaller total. Ordered bins are merged with their
    right neighbours, left to right (a short remainder joins the last group);
    categories below the minimum are pooled into one extra column, which joins
    the smallest remaining category if it is still too small. Merged counts
    sit in the group's last column and the others become zero, so the shape
    is kept and every kernel simply skips columns empty in both windows.
    """
    reference, current = reference_counts, current_counts
    n = reference.sum(axis=-1, keepdims=True)
    m = current.sum(axis=-1, keepdims=True)
    pooled_total = n + m
    pooled = np.divide(reference + current, pooled_total, out=np.zeros_like(reference), where=pooled_total > 0)
    expected = pooled * np.minimum(n, m)
    if ordered:
        ends = np.zeros(reference.shape, dtype=bool)
        running = np.zeros(reference.shape[0])
        for column in range(reference.shape[1]):
            running = running + expected[:, column]
            cut = running >= min_expected
            ends[:, column] = cut
            running = np.where(cut, 0.0, running)
        remainder = running > 0
        last = reference.shape[1] - 1 - np.argmax(ends[:, ::-1], axis=1)
        rows = np.flatnonzero(remainder & ends.any(axis=1))
        ends[rows, last[rows]] = False
        ends[:, -1] = True
        return _merged(reference, ends), _merged(current, ends)
    rare = (expected < min_expected) & (pooled > 0)
    rest_ref = np.where(rare, 0.0, reference)
    rest_cur = np.where(rare, 0.0, current)
    pool_ref = np.where(rare, reference, 0.0).sum(axis=-1)
    pool_cur = np.where(rare, current, 0.0).sum(axis=-1)
    pool_expected = np.where(rare, expected, 0.0).sum(axis=-1)
    small_pool = (pool_expected < min_expected) & (pool_expected > 0)
    kept = np.where(rare | (pooled <= 0), np.inf, expected)
    target = np.argmin(kept, axis=-1)
    absorb = np.flatnonzero(small_pool & np.isfinite(kept).any(axis=-1))
    rest_ref[absorb, target[absorb]] += pool_ref[absorb]
    rest_cur[absorb, target[absorb]] += pool_cur[absorb]
    pool_ref[absorb] = 0.0
    pool_cur[absorb] = 0.0
    return np.column_stack([rest_ref, pool_ref]), np.column_stack([rest_cur, pool_cur])


def _merged(counts: FloatArray, ends: NDArray[np.bool_]) -> FloatArray:
    """Counts summed over each group of adjacent bins, placed in the group's last column."""
    cumulative = np.cumsum(counts, axis=-1)
    at_ends = np.where(ends, cumulative, 0.0)
    before = np.concatenate([np.zeros_like(at_ends[:, :1]), np.maximum.accumulate(at_ends, axis=-1)[:, :-1]], axis=-1)
    merged: FloatArray = np.where(ends, cumulative - before, 0.0)
    return np.maximum(merged, 0.0)


def _table(reference: FloatArray, current: FloatArray, ordered: bool, min_expected: float) -> _Table:
    merged_reference, merged_current = merge_sparse_bins(reference, current, ordered=ordered, min_expected=min_expected)
    statistic, p_value, cramers_v = chi_square_homogeneity(merged_reference, merged_current)
    dof = np.maximum(np.count_nonzero(merged_reference + merged_current > 0, axis=-1) - 1, 0)
    return _Table(
        reference=merged_reference,
        current=merged_current,
        n_reference=merged_reference.sum(axis=-1),
        n_current=merged_current.sum(axis=-1),
        statistic=statistic,
        p_value=p_value,
        cramers_v=cramers_v,
        dof=dof,
    )


def _inverse_sizes(n: FloatArray, m: FloatArray) -> FloatArray:
    """``1/n + 1/m``, infinite when a window is empty."""
    with np.errstate(divide="ignore"):
        result: FloatArray = np.where(
            (n > 0) & (m > 0), 1.0 / np.maximum(n, 1e-300) + 1.0 / np.maximum(m, 1e-300), np.inf
        )
    return result


def _to_chi_square(method: Method, value: float, table: _Table) -> FloatArray:
    """The Pearson statistic at which ``method`` reaches ``value`` (small-deviation expansion).

    Under no drift and to second order, ``PSI ~ (1/n + 1/m) X2``,
    ``JS^2 ~ (1/n + 1/m) X2 / (8 ln 2)`` (base 2), ``H^2 ~ (1/n + 1/m) X2 / 8``
    and ``V^2 = X2 / (n + m)``: all four are functions of one table.
    """
    scale = _inverse_sizes(table.n_reference, table.n_current)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method is Method.PSI:
            result = value / scale
        elif method is Method.JENSEN_SHANNON:
            result = value**2 * 8.0 * math.log(2.0) / scale
        elif method is Method.HELLINGER:
            result = value**2 * 8.0 / scale
        else:
            result = value**2 * (table.n_reference + table.n_current)
    converted: FloatArray = np.nan_to_num(np.asarray(result, dtype=np.float64), nan=0.0)
    return converted


def _from_chi_square(method: Method, chi_square: FloatArray, table: _Table) -> FloatArray:
    """Inverse of :func:`_to_chi_square`: the score a Pearson statistic corresponds to."""
    scale = _inverse_sizes(table.n_reference, table.n_current)
    with np.errstate(invalid="ignore"):
        if method is Method.PSI:
            result = chi_square * scale
        elif method is Method.JENSEN_SHANNON:
            result = np.sqrt(chi_square * scale / (8.0 * math.log(2.0)))
        elif method is Method.HELLINGER:
            result = np.sqrt(chi_square * scale / 8.0)
        else:
            total = table.n_reference + table.n_current
            result = np.sqrt(np.divide(chi_square, total, out=np.full_like(chi_square, np.inf), where=total > 0))
    converted: FloatArray = np.asarray(result, dtype=np.float64)
    return converted


def _drift_threshold(method: Method, t: DriftThresholds) -> float:
    return {
        Method.PSI: t.psi_drift,
        Method.KS: t.ks_min_statistic,
        Method.JENSEN_SHANNON: t.jensen_shannon_drift,
        Method.CHI_SQUARE: t.chi_square_min_cramers_v,
        Method.WASSERSTEIN: t.wasserstein_drift_sd,
        Method.HELLINGER: t.hellinger_drift,
    }[method]


def _warning_threshold(method: Method, t: DriftThresholds) -> float | None:
    return {
        Method.PSI: t.psi_warning,
        Method.JENSEN_SHANNON: t.jensen_shannon_warning,
        Method.WASSERSTEIN: t.wasserstein_warning_sd,
        Method.HELLINGER: t.hellinger_warning,
    }.get(method)


def _binned_spend(table: _Table, chosen: Sequence[Method], t: DriftThresholds) -> FloatArray:
    """Probability, under no drift, that any requested binned distance reaches its drift threshold."""
    binned = [m for m in chosen if m in BINNED_METHODS]
    lowest: FloatArray = np.min(np.stack([_to_chi_square(m, _drift_threshold(m, t), table) for m in binned]), axis=0)
    spend: FloatArray = np.zeros_like(lowest)
    valid = table.dof > 0
    spend[valid] = stats.chi2.sf(lowest[valid], table.dof[valid])
    return spend


def _score_binned(table: _Table, method: Method, t: DriftThresholds, level: FloatArray) -> _Scored:
    """A binned distance on the merged table: drift when above its threshold, its floor, and Pearson's test."""
    if method is Method.PSI:
        statistic = psi_counts(table.reference, table.current)
    elif method is Method.CHI_SQUARE:
        statistic = table.statistic
    else:
        p_reference = row_proportions(table.reference, table.n_reference)
        p_current = row_proportions(table.current, table.n_current)
        kernel = jensen_shannon if method is Method.JENSEN_SHANNON else hellinger
        statistic = kernel(p_reference, p_current)
    critical = np.full_like(table.statistic, np.inf)
    valid = table.dof > 0
    critical[valid] = stats.chi2.isf(level[valid], table.dof[valid])
    floor = _from_chi_square(method, critical, table)
    effect = table.cramers_v if method is Method.CHI_SQUARE else statistic
    significant = table.p_value < level
    codes = _codes(effect, floor, significant, _drift_threshold(method, t), _warning_threshold(method, t))
    if method is Method.CHI_SQUARE:
        return _Scored(statistic, floor, codes, p_value=table.p_value, effect_size=table.cramers_v)
    return _Scored(statistic, floor, codes)


def _codes(
    effect: FloatArray,
    floor: FloatArray,
    significant: NDArray[np.bool_],
    drift: float,
    warning: float | None,
) -> IntArray:
    """DRIFT above threshold and floor; WARNING likewise for the warning level; INSUFFICIENT_DATA when the
    floor hides the threshold (noise alone could reach it); NO_DRIFT otherwise."""
    beyond_noise = significant & (effect > floor)
    codes = np.where(beyond_noise & (effect >= drift), _DRIFT, _NO_DRIFT)
    if warning is not None:
        codes = np.where(beyond_noise & (effect >= warning) & (codes == _NO_DRIFT), _WARNING, codes)
    codes = np.where((codes == _NO_DRIFT) & ~(floor < drift), _INSUFFICIENT, codes)
    return codes.astype(np.int8)


# --- KS ----------------------------------------------------------------------------------------------------------


def _score_ks(
    statistic: FloatArray,
    p_value: FloatArray,
    n_reference: FloatArray,
    n_current: FloatArray,
    *,
    t: DriftThresholds,
    level: FloatArray,
) -> _Scored:
    """KS: significant at the family's level and at least ``ks_min_statistic``.

    The floor is the asymptotic critical value ``K_{1-level} / sqrt(n m / (n + m))``
    (the exact small-sample one differs slightly; the verdict uses the p-value).
    """
    effective = np.divide(
        n_reference * n_current,
        n_reference + n_current,
        out=np.zeros_like(n_reference),
        where=(n_reference + n_current) > 0,
    )
    with np.errstate(divide="ignore"):
        floor = np.where(effective > 0, stats.kstwobign.isf(np.clip(level, 1e-300, 1.0)) / np.sqrt(effective), np.inf)
    codes = _codes(statistic, np.minimum(floor, 1.0), p_value < level, t.ks_min_statistic, None)
    return _Scored(statistic, floor, codes, p_value=p_value, effect_size=None)


def _score_anderson_darling(
    ref: FloatArray, cur: FloatArray, gap: FloatArray, t: DriftThresholds, level: FloatArray
) -> _Scored:
    """Anderson-Darling: significant at the family's level, and a KS statistic ``gap`` of at least ``ks_min_statistic``.

    The practical size is KS's because Anderson-Darling's own statistic has no
    unit anyone acts on; a significant Anderson-Darling test nearly always comes
    with a CDF gap above KS's noise, so the pairing costs little power. The noise
    floor reported is KS's, in that unit, for the same reason.
    """
    if ref.size == 0 or cur.size == 0:
        return _Scored(np.zeros(1), np.full(1, np.inf), np.full(1, _INSUFFICIENT, dtype=np.int8), p_value=np.ones(1))
    test = anderson_darling(ref, cur, level=float(level[0]), seed=_data_seed(ref, cur))
    sizes = np.array([float(ref.size)]), np.array([float(cur.size)])
    ks_floor = _score_ks(gap, np.ones(1), *sizes, t=t, level=level).noise_floor
    p_value = np.array([test.p_value])
    codes = np.where((p_value < level) & (gap >= t.ks_min_statistic), _DRIFT, _NO_DRIFT)
    codes = np.where((codes == _NO_DRIFT) & ~(ks_floor < t.ks_min_statistic), _INSUFFICIENT, codes)
    return _Scored(np.array([test.statistic]), ks_floor, codes.astype(np.int8), p_value=p_value, effect_size=gap)


# --- Wasserstein ---------------------------------------------------------------------------------------------------

_STANDARD_NORMALS: dict[int, FloatArray] = {}
#: Elements (features x draws x bins) simulated at once by the binned Wasserstein null.
_NULL_CHUNK = 4_000_000


def _score_wasserstein_binned(
    reference: FloatArray, current: FloatArray, edges: FloatArray, t: DriftThresholds, level: FloatArray
) -> _Scored:
    """Binned Wasserstein over the floored reference sd, against its Gaussian null at the pooled proportions."""
    features = reference.shape[0]
    all_edges = np.broadcast_to(edges, (features, edges.shape[-1]))
    n = reference.sum(axis=1)
    m = current.sum(axis=1)
    p_reference = row_proportions(reference, n)
    statistic = wasserstein_binned_sd(p_reference, row_proportions(current, m), all_edges)
    bounded = finite_edges(all_edges)
    spread = _floored(
        binned_standard_deviation(p_reference, all_edges),
        np.sum(p_reference * (bounded[:, 1:] + bounded[:, :-1]) / 2.0, axis=-1),
    )
    scale = np.sqrt(_inverse_sizes(n, m))
    floor = np.full(features, np.inf)
    p_value = np.ones(features)
    valid = np.flatnonzero((n > 0) & (m > 0))
    if valid.size:
        null = _binned_wasserstein_null(reference[valid] + current[valid], bounded[valid]) / spread[valid, np.newaxis]
        draws = null.shape[1]
        index = np.ceil((1.0 - level[valid]) * (draws + 1)).astype(np.int64) - 1
        quantile = np.take_along_axis(null, np.clip(index, 0, draws - 1)[:, np.newaxis], axis=1)[:, 0]
        floor[valid] = scale[valid] * np.where((index < draws) & (level[valid] > 0), quantile, np.inf)
        above = np.sum(null >= (statistic[valid] / scale[valid])[:, np.newaxis], axis=1)
        p_value[valid] = (1.0 + above) / (draws + 1.0)
    codes = _codes(statistic, floor, p_value < level, t.wasserstein_drift_sd, t.wasserstein_warning_sd)
    return _Scored(statistic, floor, codes, p_value=p_value)


def _binned_wasserstein_null(pooled_counts: FloatArray, bounded_edges: FloatArray) -> FloatArray:
    """Sorted draws of ``W / sqrt(1/n + 1/m)`` under no drift, one row per feature (``[F, NULL_DRAWS]``).

    Under no drift both windows' bin proportions are multinomial around the common ``p``,
    estimated by the pooled proportions (the reference alone would give bins it happens
    not to hit zero variance, and a rare, far bin hit once by the current window
    would then look like drift: 16% false alarms with 50 sparse bins of a Cauchy at
    n = 100). The difference is asymptotically Gaussian with covariance
    ``(1/n + 1/m) (diag(p) - p p^T)``, drawn as ``sqrt(p) z - p (sqrt(p) . z)`` from one
    fixed set of standard normals per bin count (seeded: reproducible verdicts). The
    binned Wasserstein distance is positively homogeneous in that difference, so the
    draws are scaled by ``sqrt(1/n + 1/m)`` afterwards. Vectorised over features in chunks.
    """
    features, bins = pooled_counts.shape
    normals = _STANDARD_NORMALS.get(bins)
    if normals is None:
        normals = np.random.default_rng(20260).standard_normal((NULL_DRAWS, bins))
        _STANDARD_NORMALS[bins] = normals
    p = row_proportions(pooled_counts, pooled_counts.sum(axis=1))
    root = np.sqrt(p)
    null = np.empty((features, NULL_DRAWS))
    chunk = max(1, _NULL_CHUNK // (NULL_DRAWS * bins))
    for start in range(0, features, chunk):
        rows = slice(start, min(features, start + chunk))
        differences = (
            root[rows, np.newaxis, :] * normals[np.newaxis]
            - (normals @ root[rows].T).T[:, :, np.newaxis] * p[rows, np.newaxis, :]
        )
        null[rows] = _wasserstein_from_cdf_gaps(np.cumsum(differences, axis=-1), bounded_edges[rows, np.newaxis, :])
    null.sort(axis=1)
    return null


def _score_wasserstein_samples(ref: FloatArray, cur: FloatArray, t: DriftThresholds, level: FloatArray) -> _Scored:
    """Raw-sample Wasserstein over the floored reference sd, against a seeded permutation null."""
    if ref.size == 0 or cur.size == 0:
        return _Scored(np.zeros(1), np.full(1, np.inf), np.full(1, _INSUFFICIENT, dtype=np.int8), p_value=np.ones(1))
    spread = float(_floored(np.array([np.std(ref)]), float(np.mean(ref)))[0])
    distance = float(stats.wasserstein_distance(ref, cur)) / spread
    statistic = np.array([distance])
    lowest = min(t.wasserstein_drift_sd, t.wasserstein_warning_sd or math.inf)
    if distance < lowest:
        # Below its thresholds the method cannot flag whatever the noise: the permutations
        # are skipped (they cost more than everything else) and the floor is not reported.
        codes = np.array([_NO_DRIFT], dtype=np.int8)
        return _Scored(statistic, np.full(1, np.nan), codes, p_value=np.full(1, np.nan))
    null = wasserstein_permutation_null(ref, cur, seed=_data_seed(ref, cur)) / spread
    floor = np.array([_upper_quantile(null, float(level[0]))])
    p_value = np.array([_tail_share(null, distance)])
    codes = _codes(statistic, floor, p_value < level, t.wasserstein_drift_sd, t.wasserstein_warning_sd)
    return _Scored(statistic, floor, codes, p_value=p_value)


def wasserstein_permutation_null(
    reference: FloatArray, current: FloatArray, *, permutations: int = PERMUTATIONS, seed: int = 0
) -> FloatArray:
    """Sorted Wasserstein-1 distances between random relabellings of the pooled sample.

    Vectorised: the pooled values are sorted once; a relabelling only changes
    which sorted positions belong to the reference, so each distance is
    ``sum |F_ref - F_cur| * gaps`` from a cumulative sum of labels, with no
    further sorting. Seeded, so the same data always give the same verdict.
    """
    n, m = reference.size, current.size
    pooled = np.sort(np.concatenate([reference, current]))
    gaps = np.diff(pooled)
    size = n + m
    counted = np.arange(1, size, dtype=np.float64)
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // size)
    distances = np.empty(permutations)
    for start in range(0, permutations, chunk):
        rows = min(chunk, permutations - start)
        labels = np.empty((rows, size), dtype=bool)
        for row in range(rows):
            labels[row] = rng.permutation(size) < n
        in_reference = np.cumsum(labels[:, :-1], axis=1, dtype=np.int64)
        distances[start : start + rows] = np.abs(in_reference / n - (counted - in_reference) / m) @ gaps
    return np.sort(distances)


def _data_seed(reference: FloatArray, current: FloatArray) -> int:
    """A seed derived from the data: the same data always get the same permutations (reproducible
    verdicts), while different features get independent ones. One fixed permutation set shared by
    every feature would not be valid: its few extreme relabellings would bias all p-values alike."""
    digest = hashlib.blake2b(reference.tobytes(), digest_size=8)
    digest.update(current.tobytes())
    return int.from_bytes(digest.digest(), "little")


def _upper_quantile(null: FloatArray, level: float) -> float:
    """The smallest null draw that at most ``level`` of the draws exceed (``inf`` if none does)."""
    if level <= 0 or null.size == 0:
        return math.inf
    index = math.ceil((1.0 - level) * (null.size + 1)) - 1
    return float(null[index]) if index < null.size else math.inf


def _tail_share(null: FloatArray, value: float) -> float:
    """Monte-Carlo p-value ``(1 + #{null >= value}) / (draws + 1)``: valid for any number of draws."""
    above = null.size - int(np.searchsorted(null, value, side="left"))
    return (1.0 + above) / (null.size + 1.0)


def _floored(spread: FloatArray, mean: float | FloatArray) -> FloatArray:
    floor = WASSERSTEIN_SD_FLOOR * np.maximum(1.0, np.abs(mean))
    result: FloatArray = np.maximum(spread, floor)
    return result


# --- kernels -------------------------------------------------------------------------------------------------------


def psi(p_reference: FloatArray, p_current: FloatArray, epsilon: float = PSI_EPSILON) -> FloatArray:
    """Population Stability Index per row: ``sum((c - r) * ln(c / r))``.

    Bins empty in both rows carry no information and are skipped. A row with an
    empty bin otherwise gets ``epsilon`` added to every remaining bin and is
    renormalised (so it stays a distribution). The result is non-negative and
    zero for identical rows. From counts, prefer :func:`psi_counts`.
    """
    occupied = (p_reference > 0) | (p_current > 0)
    width = np.count_nonzero(occupied, axis=-1)[..., np.newaxis]
    r = _renormalised(p_reference, occupied, width, epsilon)
    c = _renormalised(p_current, occupied, width, epsilon)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(occupied, (c - r) * (np.log(c) - np.log(r)), 0.0)
    result: FloatArray = np.sum(terms, axis=-1)
    return result


def _renormalised(p: FloatArray, occupied: NDArray[np.bool_], width: NDArray[np.intp], epsilon: float) -> FloatArray:
    needs = (occupied & (p <= 0)).any(axis=-1, keepdims=True)
    smoothed = np.where(occupied, p + epsilon, 0.0) / (1.0 + width * epsilon)
    result: FloatArray = np.where(needs, smoothed, p)
    return result


def psi_counts(
    reference_counts: FloatArray, current_counts: FloatArray, pseudo_count: float = PSI_PSEUDO_COUNT
) -> FloatArray:
    """PSI from counts with additive smoothing: ``(count + 1/2) / (total + B/2)`` over occupied bins.

    Laplace-style smoothing keeps every log-ratio finite and moves PSI by a
    bounded amount per observation, whereas a fixed epsilon for empty bins
    makes one observation swing the score (an empty decile: 0.70 with 1e-4,
    0.205 once a single observation lands in it).
    """
    occupied = (reference_counts + current_counts) > 0
    width = np.count_nonzero(occupied, axis=-1)[..., np.newaxis]
    r = np.where(occupied, reference_counts + pseudo_count, 0.0)
    c = np.where(occupied, current_counts + pseudo_count, 0.0)
    r_total = reference_counts.sum(axis=-1, keepdims=True) + width * pseudo_count
    c_total = current_counts.sum(axis=-1, keepdims=True) + width * pseudo_count
    r = np.divide(r, r_total, out=np.zeros_like(r), where=r_total > 0)
    c = np.divide(c, c_total, out=np.zeros_like(c), where=c_total > 0)
    return psi(r, c)


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
    The chi-square approximation wants expected counts of about 5 or more,
    which :func:`merge_sparse_bins` provides before the verdicts use it.
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
    return _wasserstein_from_cdf_gaps(np.cumsum(p_reference - p_current, axis=-1), finite_edges(edges))


def _wasserstein_from_cdf_gaps(differences: FloatArray, bounded: FloatArray) -> FloatArray:
    """``integral |F - G|`` from the CDF differences at the upper edges (the last one is zero)."""
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

    The reference variance is that of the uniform-within-bin density, floored
    at ``WASSERSTEIN_SD_FLOOR * max(1, |mean|)`` so that a reference with no
    spread gives a large finite score instead of infinity.
    """
    distance = wasserstein_binned(p_reference, p_current, edges)
    bounded = finite_edges(edges)
    mean = np.sum(p_reference * (bounded[..., 1:] + bounded[..., :-1]) / 2.0, axis=-1)
    spread = _floored(binned_standard_deviation(p_reference, edges), mean)
    result: FloatArray = distance / spread
    return result


def binned_standard_deviation(proportions: FloatArray, edges: FloatArray) -> FloatArray:
    """Standard deviation of the uniform-within-bin density of each row."""
    bounded = finite_edges(edges)
    middles = (bounded[..., 1:] + bounded[..., :-1]) / 2.0
    widths = np.diff(bounded, axis=-1)
    mean = np.sum(proportions * middles, axis=-1, keepdims=True)
    variance = np.sum(proportions * ((middles - mean) ** 2 + widths**2 / 12.0), axis=-1)
    result: FloatArray = np.sqrt(np.maximum(variance, 0.0))
    return result


def _edges_of(feature: BinnedFeature) -> FloatArray:
    if feature.edges is None:
        raise ValueError(f"feature {feature.name!r} has no edges")
    return feature.edges


def _optional(value: float) -> float | None:
    return float(value) if not math.isnan(value) else None
