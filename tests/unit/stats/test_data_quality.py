"""Data quality checks from counters and histograms."""

import math

import numpy as np
import pytest

from modelrollout.stats.histograms import HistogramError
from modelrollout.stats.quality import QualityThresholds, evaluate_quality
from modelrollout.stats.results import CheckVerdict

EDGES = np.array([-math.inf, 0, 1, 2, 3, 4, 5, math.inf])
REFERENCE = np.array([[0.0, 50, 200, 500, 200, 50, 0]])


def test_clean_window_passes() -> None:
    report = evaluate_quality(REFERENCE, REFERENCE * 0.8, EDGES, [4])
    assert report.verdict(0) is CheckVerdict.PASS
    assert report.missing_rate[0] == pytest.approx(4 / 804)
    assert report.out_of_range_share[0] == 0.0


def test_missing_values_above_the_limit_fail() -> None:
    report = evaluate_quality(REFERENCE, REFERENCE, EDGES, [100])
    assert report.missing_rate[0] == pytest.approx(100 / 1100)
    assert report.check_verdicts(0)["missing_rate"] is CheckVerdict.FAIL
    assert report.failed[0]


def test_mass_outside_the_reference_support_fails() -> None:
    current = REFERENCE + np.array([[0.0, 0, 0, 0, 0, 0, 30]])
    report = evaluate_quality(REFERENCE, current, EDGES)
    assert report.out_of_range_share[0] == pytest.approx(30 / 1030)
    assert report.check_verdicts(0)["out_of_range_share"] is CheckVerdict.FAIL


def test_outlier_share_is_measured_beyond_the_reference_tukey_fences() -> None:
    # Reference quartiles by linear interpolation: Q1 = 1 + (250 - 50) / 200 = 2.0 (start of bin [2, 3]),
    # Q3 = 3.0, so the fences are 0.5 and 4.5 and the reference itself has 25 + 25 = 50 beyond them.
    report = evaluate_quality(REFERENCE, REFERENCE, EDGES)
    assert report.reference_outlier_share[0] == pytest.approx(50 / 1000)
    heavy = REFERENCE + np.array([[0.0, 0, 0, 0, 0, 100, 0]])
    report = evaluate_quality(REFERENCE, heavy, EDGES)
    assert report.outlier_share[0] == pytest.approx((25 + (50 + 100) / 2) / 1100)
    assert report.check_verdicts(0)["outlier_share"] is CheckVerdict.FAIL


def test_few_observations_are_inconclusive_unless_something_already_fails() -> None:
    report = evaluate_quality(REFERENCE, REFERENCE / 100, EDGES, [0])
    assert report.verdict(0) is CheckVerdict.INCONCLUSIVE
    custom = evaluate_quality(REFERENCE, REFERENCE / 100, EDGES, [0], thresholds=QualityThresholds(min_samples=5))
    assert custom.verdict(0) is CheckVerdict.PASS


def test_many_features_at_once() -> None:
    reference = np.repeat(REFERENCE, 3, axis=0)
    current = reference.copy()
    current[1, -1] = 100
    report = evaluate_quality(reference, current, EDGES, [0, 0, 500])
    assert [report.verdict(i) for i in range(3)] == [CheckVerdict.PASS, CheckVerdict.FAIL, CheckVerdict.FAIL]


def test_missing_counts_are_validated() -> None:
    with pytest.raises(HistogramError, match="missing counts"):
        evaluate_quality(REFERENCE, REFERENCE, EDGES, [-1])
