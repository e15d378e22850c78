"""What the answers mean: scores and verdicts per distribution, data quality, and performance.

Statistics come from :mod:`modelrollout.stats`; this module turns the binned answers into the
status' results and splits the evaluation's false-alarm budget across the distributions it judges.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from modelrollout.api.driftmonitor import (
    DriftMethodName,
    DriftMonitorSpec,
    DriftState,
    FeatureResult,
    PerformanceResult,
    QualityResult,
)
from modelrollout.core.drift.binning import bin_categorical, bin_numeric, bin_numerics, buckets_by_feature
from modelrollout.core.drift.planning import (
    PERFORMANCE_SERIES,
    QUALITY_COUNTERS,
    Answers,
    thresholds_of,
    watched_features,
)
from modelrollout.references import PREDICTION_NAME, NumericFeature, Reference
from modelrollout.stats.drift import BinnedFeature, Method, evaluate_many
from modelrollout.stats.results import DriftVerdict, FeatureDrift

PERFORMANCE_ENTRY = "performance"
"""The fingerprint entry of degraded performance, next to drifted feature names."""

_METHODS: dict[DriftMethodName, Method] = {
    "psi": Method.PSI,
    "ks": Method.KS,
    "jensenShannon": Method.JENSEN_SHANNON,
    "chiSquare": Method.CHI_SQUARE,
    "wasserstein": Method.WASSERSTEIN,
    "hellinger": Method.HELLINGER,
}
_SPEC_NAMES = {method: name for name, method in _METHODS.items()}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The evidence of one successful evaluation."""

    features: tuple[FeatureResult, ...]
    prediction: FeatureResult | None
    quality: tuple[QualityResult, ...]
    performance: PerformanceResult | None

    @property
    def drifted(self) -> list[str]:
        """Drifted features and "prediction", in reference order."""
        scored = [*self.features, *([self.prediction] if self.prediction else [])]
        return [f.name for f in scored if f.verdict == "Drift"]

    @property
    def insufficient(self) -> list[str]:
        scored = [*self.features, *([self.prediction] if self.prediction else [])]
        return [f.name for f in scored if f.verdict == "InsufficientData"]

    @property
    def warnings(self) -> list[str]:
        scored = [*self.features, *([self.prediction] if self.prediction else [])]
        return [f.name for f in scored if f.verdict == "Warning"]

    @property
    def fingerprint(self) -> tuple[str, ...]:
        """What an alert is about: sorted drifted features, plus "performance" when it degraded."""
        degraded = self.performance is not None and self.performance.degraded
        return tuple(sorted(self.drifted)) + ((PERFORMANCE_ENTRY,) if degraded else ())

    @property
    def state(self) -> DriftState:
        if self.fingerprint:
            return "Drift"
        if self.warnings or any(q.degraded for q in self.quality):
            return "Warning"
        if self.insufficient:
            return "InsufficientData"
        return "NoDrift"


def evaluate(spec: DriftMonitorSpec, reference: Reference, answers: Answers) -> Evaluation:
    """Scores, verdicts, data quality and performance from the query answers (missing answers count as empty)."""
    thresholds = thresholds_of(spec)
    numeric = buckets_by_feature(answers.get("numeric", ()))
    categories: dict[str, dict[str, float]] = defaultdict(dict)
    for sample in answers.get("categorical", ()):
        owner, category = sample.labels.get("feature", ""), sample.labels.get("category", "")
        categories[owner][category] = categories[owner].get(category, 0.0) + float(sample.value)

    binned: list[BinnedFeature] = []
    unscored: dict[str, FeatureResult] = {}
    names = watched_features(spec, reference)
    by_name = {f.name: f for f in reference.features}
    numeric_features: list[tuple[NumericFeature, Sequence[tuple[str, float]]]] = []
    for name in names:
        feature = by_name.get(name)
        if feature is None:
            unscored[name] = FeatureResult(name=name, message="not a feature of the reference")
        elif isinstance(feature, NumericFeature):
            numeric_features.append((feature, numeric.get(name, [])))
        else:
            binned.append(bin_categorical(feature, categories.get(name, {})))
    bin_numerics(numeric_features, binned, unscored)
    prediction_requested = spec.prediction and reference.prediction is not None
    if prediction_requested and reference.prediction is not None:
        prediction_buckets = [
            (s.labels["le"], float(s.value)) for s in answers.get("prediction", ()) if "le" in s.labels
        ]
        bin_numeric(reference.prediction, prediction_buckets, binned, unscored, name=PREDICTION_NAME)

    methods = [_METHODS[m.name] for m in spec.methods]
    # One evaluation raises one alert whatever drifted, so its false-alarm budget is split across the
    # distributions it judges (Bonferroni): with 200 features at 5% each, noise alone would alert every time.
    per_feature = dataclasses.replace(thresholds, alpha=thresholds.alpha / max(1, len(binned)))
    scored = {r.name: r for r in evaluate_many(binned, methods=methods, thresholds=per_feature)}
    results = {name: _result(drift, spec) for name, drift in scored.items()} | unscored
    return Evaluation(
        features=tuple(results[name] for name in names),
        prediction=results.get(PREDICTION_NAME) if prediction_requested else None,
        quality=_quality(spec, reference, names, answers),
        performance=_performance(spec, reference, answers),
    )


def _result(drift: FeatureDrift, spec: DriftMonitorSpec) -> FeatureResult:
    """Status form of the stats result. A test's score is its effect size (KS statistic, Cramér's V), the
    number its threshold applies to; non-finite numbers are left out (JSON has none)."""
    scores: dict[str, float] = {}
    p_values: dict[str, float] = {}
    floors: dict[str, float] = {}
    for score in drift.scores:
        name = _SPEC_NAMES[Method(score.method)]
        value = score.effect_size if score.effect_size is not None else score.statistic
        if math.isfinite(value):
            scores[name] = value
        if score.p_value is not None and math.isfinite(score.p_value):
            p_values[name] = score.p_value
        if score.noise_floor is not None and math.isfinite(score.noise_floor):
            floors[name] = score.noise_floor
    message = None
    if drift.n_reference < spec.min_samples:
        message = f"the reference has {drift.n_reference:.0f} observations, minSamples is {spec.min_samples}"
    elif drift.n_current < spec.min_samples:
        message = f"{drift.n_current:.0f} observations in {spec.window}, minSamples is {spec.min_samples}"
    elif drift.verdict is DriftVerdict.INSUFFICIENT_DATA:
        message = (
            f"{drift.n_current:.0f} observations in {spec.window} cannot tell drift at the thresholds from noise "
            "(every noise floor is above its threshold)"
        )
    return FeatureResult(
        name=drift.name,
        samples=round(drift.n_current),
        verdict=drift.verdict.value,
        scores=scores,
        p_values=p_values,
        noise_floors=floors,
        message=message,
    )


def _quality(
    spec: DriftMonitorSpec, reference: Reference, names: Sequence[str], answers: Answers
) -> tuple[QualityResult, ...]:
    limits = spec.data_quality
    if limits is None:
        return ()
    counts = {
        name: {s.labels.get("feature", ""): float(s.value) for s in answers.get(name, ())} for name in QUALITY_COUNTERS
    }
    known = {f.name for f in reference.features}
    results: list[QualityResult] = []
    for name in names:
        if name not in known:
            continue
        observed = counts["observations"].get(name, 0.0)
        missing = counts["missing"].get(name, 0.0)
        present = observed - missing
        missing_rate = _ratio(missing, observed)
        out_of_range_rate = _ratio(counts["outOfRange"].get(name, 0.0), present)
        outlier_rate = _ratio(counts["outliers"].get(name, 0.0), present)
        enough = observed >= spec.min_samples
        degraded = enough and (
            _above(missing_rate, limits.max_missing_rate)
            or _above(out_of_range_rate, limits.max_out_of_range_rate)
            or _above(outlier_rate, limits.max_outlier_rate)
        )
        results.append(
            QualityResult(
                name=name,
                missing_rate=missing_rate,
                out_of_range_rate=out_of_range_rate,
                outlier_rate=outlier_rate,
                degraded=degraded,
            )
        )
    return tuple(results)


def _ratio(part: float, whole: float) -> float | None:
    return min(max(part / whole, 0.0), 1.0) if whole > 0 else None


def _above(rate: float | None, limit: float) -> bool:
    return rate is not None and rate > limit


def _performance(spec: DriftMonitorSpec, reference: Reference, answers: Answers) -> PerformanceResult | None:
    """Directional accuracy and mean absolute error from delayed labels, against the baselines."""
    wanted = spec.performance
    if wanted is None:
        return None
    total = {name: sum(float(s.value) for s in answers.get(name, ())) for name in PERFORMANCE_SERIES}
    feedback = total["feedback"]
    accuracy = _ratio(total["directionCorrect"], feedback)
    mean_abs_error = total["absErrorSum"] / total["absErrorCount"] if total["absErrorCount"] > 0 else None
    if feedback < wanted.min_feedback:
        message = f"{feedback:.0f} of {wanted.min_feedback} labelled predictions in {spec.window}"
        return PerformanceResult(
            feedback=round(feedback), directional_accuracy=accuracy, mean_abs_error=mean_abs_error, message=message
        )
    trained = reference.performance
    base_accuracy = wanted.baseline_directional_accuracy
    if base_accuracy is None and trained is not None:
        base_accuracy = trained.baseline_directional_accuracy
    base_error = wanted.baseline_mean_abs_error
    if base_error is None and trained is not None:
        base_error = trained.baseline_mean_abs_error
    problems: list[str] = []
    compared: list[str] = []
    if base_accuracy is not None and accuracy is not None:
        floor = base_accuracy - wanted.max_accuracy_drop
        compared.append(f"directional accuracy {accuracy:.3f} (baseline {base_accuracy:.3f}, floor {floor:.3f})")
        if accuracy < floor:
            problems.append(f"directional accuracy {accuracy:.3f} < {floor:.3f} (baseline {base_accuracy:.3f})")
    if base_error is not None and mean_abs_error is not None:
        ceiling = base_error * wanted.max_error_increase_ratio
        compared.append(f"mean abs error {mean_abs_error:.4g} (baseline {base_error:.4g}, ceiling {ceiling:.4g})")
        if mean_abs_error > ceiling:
            problems.append(f"mean abs error {mean_abs_error:.4g} > {ceiling:.4g} (baseline {base_error:.4g})")
    if not compared:
        message = "no baseline: set spec.performance baselines or the reference's performance section"
    else:
        message = "; ".join(problems or compared)
    return PerformanceResult(
        feedback=round(feedback),
        directional_accuracy=accuracy,
        mean_abs_error=mean_abs_error,
        degraded=bool(problems),
        message=message,
    )


def drift_summary(features: Sequence[FeatureResult], prediction: FeatureResult | None = None) -> str:
    """``return_1d (psi 0.41, ks 0.22), prediction (psi 0.3)``: drifted distributions with their scores."""
    drifted = [f for f in [*features, *([prediction] if prediction else [])] if f.verdict == "Drift"]
    parts = [f"{f.name} ({', '.join(f'{m} {s:.3g}' for m, s in f.scores.items())})" for f in drifted[:10]]
    more = f" and {len(drifted) - 10} more" if len(drifted) > 10 else ""
    return "drift in " + ", ".join(parts) + more
