"""Drift metrics against scipy, hand-worked examples and published null distributions."""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelrollout.stats.drift import (
    BinnedFeature,
    DriftThresholds,
    Method,
    chi_square_homogeneity,
    evaluate_binned,
    evaluate_categorical,
    evaluate_many,
    evaluate_samples,
    ks_binned,
    psi,
    psi_counts,
    wasserstein_binned,
)
from modelrollout.stats.histograms import HistogramError, from_cumulative_buckets, from_cumulative_matrix
from modelrollout.stats.results import DriftVerdict

# A 10-bin score distribution in the style of the scorecard-monitoring literature
# (Siddiqi, "Credit Risk Scorecards", ch. 8): development (expected) vs recent (actual) shares.
EXPECTED = np.array([0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10])
ACTUAL = np.array([0.08, 0.09, 0.11, 0.12, 0.10, 0.09, 0.11, 0.10, 0.11, 0.09])


def test_psi_matches_the_hand_worked_sum() -> None:
    """PSI = sum((A - E) * ln(A / E)), term by term as in the textbook table."""
    by_hand = sum((a - e) * math.log(a / e) for a, e in zip(ACTUAL, EXPECTED, strict=True))
    assert psi(EXPECTED, ACTUAL) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(0.01413, abs=5e-6)


def test_psi_of_a_large_shift_crosses_the_drift_threshold() -> None:
    """Shares moving from uniform to a skew: each term is positive and the sum is 0.2349..."""
    shifted = np.array([0.02, 0.03, 0.05, 0.07, 0.10, 0.12, 0.13, 0.14, 0.16, 0.18])
    by_hand = sum((a - 0.1) * math.log(a / 0.1) for a in shifted)
    assert psi(EXPECTED, shifted) == pytest.approx(by_hand)
    report = evaluate_binned(EXPECTED[np.newaxis] * 1000, shifted[np.newaxis] * 1000, methods=[Method.PSI])
    # From counts, PSI is smoothed with half an observation per bin: (20 + 0.5) / (1000 + 5) for 2%.
    smoothed = sum(((a * 1000 + 0.5) / 1005 - 100.5 / 1005) * math.log((a * 1000 + 0.5) / 100.5) for a in shifted)
    assert report.statistics[Method.PSI][0] == pytest.approx(smoothed)
    assert by_hand > smoothed > 0.2
    assert report.verdict(0) is DriftVerdict.DRIFT


def test_psi_from_proportions_renormalises_its_epsilon() -> None:
    """An empty bin gets 1e-4 and the row is renormalised, so it stays a distribution."""
    reference = np.array([0.5, 0.5, 0.0])
    current = np.array([0.4, 0.4, 0.2])
    r = (reference + 1e-4) / (1 + 3e-4)
    expected = sum((c - a) * math.log(c / a) for a, c in zip(r, current, strict=True))
    assert psi(reference, current) == pytest.approx(expected)
    assert psi(np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.5, 0.0])) == 0.0  # empty in both: skipped


def test_one_observation_cannot_swing_smoothed_psi() -> None:
    """Issue 13: one empty decile with the rest at 1/9 gave PSI 0.70 with an unrenormalised 1e-4,
    and 0.205 once a single observation landed there. Smoothed counts move by far less."""
    reference = np.full(10, 1000.0)
    empty = np.r_[0.0, np.full(9, 100.0)]
    single = np.r_[1.0, np.full(9, 100.0)]
    old_empty = psi(reference / reference.sum(), empty / empty.sum(), epsilon=0.0 + 1e-4)
    assert old_empty > 0.2
    before, after = psi_counts(reference, empty), psi_counts(reference, single)
    assert before > after > 0.2  # an emptied decile at 900 observations is drift either way
    assert before - after < 0.12  # ln(1.5 / 0.5) * 0.1 at most, instead of 0.5
    assert before == pytest.approx(psi((reference + 0.5) / (reference.sum() + 5), (empty + 0.5) / (empty.sum() + 5)))


@pytest.mark.parametrize("bins", [5, 10, 20])
def test_psi_under_no_drift_follows_yurdakul_chi_square_law(bins: int) -> None:
    """Yurdakul (2018, "Statistical properties of the population stability index", Western
    Michigan University) shows that with fixed bins and no drift, PSI ~ (1/n + 1/m) chi2(B - 1).
    We check the mean and the 95th percentile over 4,000 simulated windows."""
    rng = np.random.default_rng(2018)
    n, m, replicates = 2000, 1000, 4000
    shares = np.full(bins, 1.0 / bins)
    reference = rng.multinomial(n, shares, size=replicates)
    current = rng.multinomial(m, shares, size=replicates)
    scores = evaluate_binned(reference, current, methods=[Method.PSI]).statistics[Method.PSI]
    scale = 1 / n + 1 / m
    assert scores.mean() == pytest.approx((bins - 1) * scale, rel=0.05)
    assert np.quantile(scores, 0.95) == pytest.approx(stats.chi2.ppf(0.95, bins - 1) * scale, rel=0.08)


def test_chi_square_matches_scipy_contingency_after_dropping_empty_bins() -> None:
    reference = np.array([[30.0, 0, 50, 20, 0], [5, 5, 5, 5, 5]])
    current = np.array([[10.0, 0, 70, 25, 3], [6, 4, 5, 7, 3]])
    statistic, p_value, cramers_v = chi_square_homogeneity(reference, current)
    for row in range(2):
        table = np.stack([reference[row], current[row]])
        table = table[:, table.sum(axis=0) > 0]
        expected = stats.chi2_contingency(table, correction=False)
        assert statistic[row] == pytest.approx(expected.statistic)
        assert p_value[row] == pytest.approx(expected.pvalue)
        v = stats.contingency.association(table.astype(int), method="cramer", correction=False)
        assert cramers_v[row] == pytest.approx(v)
    # The verdicts use the same test after merging bins that expect fewer than 5 observations:
    report = evaluate_binned(reference, current, methods=[Method.CHI_SQUARE])
    merged = stats.chi2_contingency([[30.0, 50, 20], [10, 70, 28]], correction=False)
    assert report.statistics[Method.CHI_SQUARE][0] == pytest.approx(merged.statistic)
    assert report.p_values[Method.CHI_SQUARE][0] == pytest.approx(merged.pvalue)


def test_chi_square_with_one_occupied_bin_has_no_evidence() -> None:
    report = evaluate_binned([[500.0, 0, 0]], [[300.0, 0, 0]], methods=[Method.CHI_SQUARE])
    assert report.p_values[Method.CHI_SQUARE][0] == 1.0
    assert report.statistics[Method.CHI_SQUARE][0] == 0.0


def test_jensen_shannon_is_scipys_base_2_distance() -> None:
    rng = np.random.default_rng(7)
    reference = rng.integers(0, 100, size=(20, 12)).astype(float) + 1
    current = rng.integers(0, 100, size=(20, 12)).astype(float)
    report = evaluate_binned(reference, current, methods=[Method.JENSEN_SHANNON])
    for row in range(20):
        expected = jensenshannon(reference[row], current[row], base=2)
        assert report.statistics[Method.JENSEN_SHANNON][row] == pytest.approx(expected, abs=1e-12)
    disjoint = evaluate_binned([[10.0, 0]], [[0.0, 10]], methods=[Method.JENSEN_SHANNON])
    assert disjoint.statistics[Method.JENSEN_SHANNON][0] == pytest.approx(1.0)


def test_hellinger_matches_its_definition() -> None:
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.1, 0.6, 0.3])
    expected = math.sqrt(1 - sum(math.sqrt(a * b) for a, b in zip(p, q, strict=True)))
    report = evaluate_binned([p * 1000], [q * 1000], methods=[Method.HELLINGER])
    assert report.statistics[Method.HELLINGER][0] == pytest.approx(expected)


def test_ks_from_bins_equals_the_raw_statistic_when_bins_separate_all_values() -> None:
    """For integer data binned one bin per value the grouped CDFs are the exact CDFs."""
    rng = np.random.default_rng(3)
    reference = rng.poisson(4.0, 3000)
    current = rng.poisson(4.4, 2000)
    edges = np.arange(-0.5, 30.5)
    counts_ref = np.histogram(reference, edges)[0][np.newaxis].astype(float)
    counts_cur = np.histogram(current, edges)[0][np.newaxis].astype(float)
    report = evaluate_binned(counts_ref, counts_cur, methods=[Method.KS])
    assert report.statistics[Method.KS][0] == pytest.approx(stats.ks_2samp(reference, current).statistic)


def test_ks_p_value_is_the_asymptotic_kolmogorov_law_at_effective_n() -> None:
    statistic, p_value = ks_binned(np.array([[0.5, 0.5]]), np.array([[0.4, 0.6]]), np.array([400.0]), np.array([600.0]))
    assert statistic[0] == pytest.approx(0.1)
    assert p_value[0] == pytest.approx(stats.kstwobign.sf(math.sqrt(400 * 600 / 1000) * 0.1))


def test_binned_ks_is_conservative_for_grouped_data_under_no_drift() -> None:
    """Grouping can only shrink the statistic, so the false positive rate stays below alpha."""
    rng = np.random.default_rng(11)
    replicates = 4000
    shares = stats.norm.pdf(np.linspace(-2, 2, 8))
    shares /= shares.sum()
    reference = rng.multinomial(500, shares, size=replicates)
    current = rng.multinomial(400, shares, size=replicates)
    p_values = evaluate_binned(reference, current, methods=[Method.KS]).p_values[Method.KS]
    rate = np.mean(p_values < 0.05)
    assert rate <= 0.05
    assert rate > 0.005  # conservative, not useless


def test_ks_needs_a_minimum_effect_so_huge_samples_ignore_trivial_shifts() -> None:
    rng = np.random.default_rng(5)
    reference = rng.normal(0.0, 1.0, 200_000)
    current = rng.normal(0.05, 1.0, 200_000)
    result = evaluate_samples(reference, current, methods=[Method.KS])
    ks = result.score("ks")
    assert ks.p_value is not None
    assert ks.p_value < 1e-10
    assert ks.statistic < 0.1
    assert result.verdict is DriftVerdict.NO_DRIFT


def test_raw_sample_methods_are_scipys() -> None:
    rng = np.random.default_rng(9)
    reference = rng.lognormal(0, 0.5, 700)
    current = rng.lognormal(0.3, 0.5, 500)
    result = evaluate_samples(reference, current, methods=[Method.KS, Method.WASSERSTEIN])
    exact = stats.ks_2samp(reference, current)
    assert result.score("ks").statistic == pytest.approx(exact.statistic)
    assert result.score("ks").p_value == pytest.approx(exact.pvalue)
    assert result.score("wasserstein").statistic == pytest.approx(
        stats.wasserstein_distance(reference, current) / np.std(reference)
    )
    assert result.verdict is DriftVerdict.DRIFT


def test_binned_wasserstein_is_exact_for_piecewise_uniform_densities() -> None:
    """Compare with scipy on a fine discretisation of the two uniform-within-bin densities."""
    edges = np.array([0.0, 1.0, 3.0, 4.0, 7.0])
    p = np.array([0.1, 0.4, 0.3, 0.2])
    q = np.array([0.3, 0.1, 0.2, 0.4])
    points, u_weights, v_weights = [], [], []
    for low, high, a, b in zip(edges[:-1], edges[1:], p, q, strict=True):
        grid = np.linspace(low, high, 4001)
        middles = (grid[1:] + grid[:-1]) / 2
        points.append(middles)
        u_weights.append(np.full(middles.size, a / middles.size))
        v_weights.append(np.full(middles.size, b / middles.size))
    values = np.concatenate(points)
    expected = stats.wasserstein_distance(values, values, np.concatenate(u_weights), np.concatenate(v_weights))
    assert wasserstein_binned(p, q, edges) == pytest.approx(expected, rel=1e-5)


def test_binned_wasserstein_of_a_one_bin_shift_is_the_bin_width() -> None:
    edges = np.arange(0.0, 11.0) * 2.5
    p = np.r_[np.ones(5), np.zeros(5)] / 5
    q = np.r_[0, np.ones(5), np.zeros(4)] / 5
    assert wasserstein_binned(p, q, edges) == pytest.approx(2.5)


def test_too_few_observations_is_never_no_drift() -> None:
    report = evaluate_binned([[20.0, 30, 10]], [[20.0, 30, 10]], [0, 1, 2, 3])
    assert report.verdict(0) is DriftVerdict.INSUFFICIENT_DATA
    assert all(score.verdict is DriftVerdict.INSUFFICIENT_DATA for score in report.feature(0).scores)
    # Above min_samples, 60 observations still cannot resolve PSI 0.2 or KS 0.05 from noise:
    loose = evaluate_binned(
        [[20.0, 30, 10]], [[20.0, 30, 10]], [0, 1, 2, 3], thresholds=DriftThresholds(min_samples=50)
    )
    assert loose.verdict(0) is DriftVerdict.INSUFFICIENT_DATA
    assert all(s.noise_floor is not None and s.noise_floor > 0.05 for s in loose.feature(0).scores)
    plenty = evaluate_binned([[2000.0, 3000, 1000]], [[2000.0, 3000, 1000]], [0, 1, 2, 3])
    assert plenty.verdict(0) is DriftVerdict.NO_DRIFT


def test_psi_between_warning_and_drift_is_a_warning() -> None:
    reference = np.array([[500.0, 500.0]])
    current = np.array([[650.0, 350.0]])  # PSI = 0.0917...
    lower = evaluate_binned(reference, current, methods=[Method.PSI], thresholds=DriftThresholds(psi_warning=0.05))
    assert lower.verdict(0) is DriftVerdict.WARNING


def test_categories_seen_only_in_the_current_window_are_drift() -> None:
    result = evaluate_categorical({"eu": 600, "us": 400}, {"eu": 500, "us": 300, "apac": 200}, name="region")
    assert result.drifted
    assert result.score("chi_square").p_value == pytest.approx(
        stats.chi2_contingency([[600, 400, 0], [500, 300, 200]], correction=False).pvalue
    )
    assert result.score("psi").statistic > 0.2


def test_categorical_features_refuse_ordered_methods() -> None:
    with pytest.raises(ValueError, match="ordered"):
        evaluate_categorical({"a": 1}, {"a": 1}, methods=["ks"])


def test_features_with_different_bin_counts_are_scored_in_input_order() -> None:
    rng = np.random.default_rng(1)
    features = []
    for index, bins in enumerate([5, 8, 5, 3, 8]):
        edges = np.linspace(0, 1, bins + 1)
        features.append(
            BinnedFeature(
                name=f"f{index}",
                reference=rng.integers(50, 100, bins).astype(float),
                current=rng.integers(50, 100, bins).astype(float),
                edges=edges,
            )
        )
    features.append(BinnedFeature("colour", np.array([100.0, 200.0]), np.array([300.0, 10.0])))
    results = evaluate_many(features)
    assert [r.name for r in results] == [f.name for f in features]
    assert results[-1].kind == "categorical"
    assert {s.method for s in results[-1].scores} == {"psi", "jensen_shannon", "chi_square", "hellinger"}
    single = evaluate_binned(features[1].reference[np.newaxis], features[1].current[np.newaxis], features[1].edges)
    assert results[1] == single.feature(0, "f1")


def test_wasserstein_needs_edges_and_counts_need_matching_shapes() -> None:
    with pytest.raises(ValueError, match="Wasserstein needs bin edges"):
        evaluate_binned([[1.0, 2.0]], [[1.0, 2.0]], methods=["wasserstein"])
    with pytest.raises(ValueError, match="differ"):
        evaluate_binned([[1.0, 2.0]], [[1.0, 2.0, 3.0]])


def test_cumulative_buckets_of_many_features_convert_like_one_at_a_time() -> None:
    """DriftMonitor converts a family's features in one pass; it must agree with the per-feature conversion."""
    rng = np.random.default_rng(5)
    bounds = ["1", "0.5", "+Inf", "2"]  # any order, as a Prometheus answer may give them
    per_bin = rng.integers(0, 50, size=(30, 4)).astype(float)
    cumulative = np.cumsum(per_bin, axis=1)[:, [1, 0, 3, 2]]
    edges, counts = from_cumulative_matrix(bounds, cumulative)
    for row in range(30):
        one = from_cumulative_buckets(bounds, cumulative[row].tolist())
        assert np.array_equal(one.edges, edges)
        assert np.array_equal(one.counts, counts[row])
    broken = cumulative.copy()
    broken[7] = [40.0, 50.0, 10.0, 60.0]  # decreasing in bound order
    with pytest.raises(HistogramError):
        from_cumulative_matrix(bounds, broken)
