"""The DriftMonitor's decisions: what to ask Prometheus, what the answers mean, and who to tell.

Everything here is pure and takes ``now`` as an argument, as in :mod:`modelrollout.core.rollout`.
The engine runs one evaluation as: :func:`evaluation_due` -> read the reference and the target
-> :func:`plan_queries` -> run them -> :func:`evaluate` -> :func:`decide`, writes the status it
gets back, and only then delivers what the status says is pending (an alert, an action on the
target), reporting the outcome through :func:`alert_delivered` / :func:`alert_failed` and
:func:`action_done` / :func:`action_failed`. Keeping delivery state in status makes every side
effect happen once per drift episode, survives restarts, and lets a failing webhook back off
without ever holding up the next evaluation.

Statistics come from :mod:`modelrollout.stats`; this module only aligns Prometheus buckets with
the reference and turns verdicts into conditions.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import ValidationError

from modelrollout.api.base import duration_seconds
from modelrollout.api.conditions import ConditionStatus, find_condition, set_condition
from modelrollout.api.driftmonitor import (
    AlertStatus,
    DriftMethodName,
    DriftMonitorSpec,
    DriftMonitorStatus,
    DriftState,
    EvaluationSummary,
    FeatureResult,
    PerformanceResult,
    QualityResult,
    TargetActionStatus,
)
from modelrollout.core.decisions import Event
from modelrollout.references import PREDICTION_NAME, CategoricalFeature, NumericFeature, Reference
from modelrollout.stats.drift import BinnedFeature, DriftThresholds, Method, align_categories, evaluate_many
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
from modelrollout.stats.results import DriftVerdict, FeatureDrift

# --- series names of docs/metrics-contract.md that the spec does not rename ---------------------------------------

FEEDBACK_TOTAL = "model_feedback_total"
DIRECTION_CORRECT_TOTAL = "model_direction_correct_total"
ABS_ERROR = "model_abs_error"

PERFORMANCE_ENTRY = "performance"
"""The fingerprint entry of degraded performance, next to drifted feature names."""

RETRY_BASE_SECONDS = 10.0
RETRY_CAP_SECONDS = 600.0
"""Webhook retries wait 10 s, 20 s, 40 s, ... up to 10 minutes between attempts."""

DEFAULT_HISTORY_LIMIT = DriftMonitorSpec.model_fields["history_limit"].default
"""History kept when the spec cannot be read, so it does not tell how much to keep."""

_METHODS: dict[DriftMethodName, Method] = {
    "psi": Method.PSI,
    "ks": Method.KS,
    "jensenShannon": Method.JENSEN_SHANNON,
    "chiSquare": Method.CHI_SQUARE,
    "wasserstein": Method.WASSERSTEIN,
    "hellinger": Method.HELLINGER,
}
_SPEC_NAMES = {method: name for name, method in _METHODS.items()}

QueryName = Literal[
    "numeric",
    "categorical",
    "prediction",
    "observations",
    "missing",
    "outOfRange",
    "outliers",
    "feedback",
    "directionCorrect",
    "absErrorSum",
    "absErrorCount",
]
_QUALITY_COUNTERS: dict[QueryName, str] = {
    "observations": "observations",
    "missing": "missing",
    "outOfRange": "out_of_range",
    "outliers": "outliers",
}
_PERFORMANCE_SERIES: dict[QueryName, str] = {
    "feedback": FEEDBACK_TOTAL,
    "directionCorrect": DIRECTION_CORRECT_TOTAL,
    "absErrorSum": ABS_ERROR + "_sum",
    "absErrorCount": ABS_ERROR + "_count",
}


class Series(Protocol):
    """One series of an instant vector (``modelrollout.metrics.Sample`` is one)."""

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def value(self) -> float: ...


Answers = Mapping[QueryName, Sequence[Series]]


@dataclass(frozen=True, slots=True)
class Failure:
    """Why there is no evaluation this time; ``reason`` becomes the Ready condition's reason."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class DriftQuery:
    """A PromQL template and its variables; the engine renders it (escaping every value) and runs it."""

    name: QueryName
    template: str
    variables: Mapping[str, str]


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


@dataclass(frozen=True, slots=True)
class Decision:
    status: DriftMonitorStatus
    events: tuple[Event, ...] = ()


# --- scheduling and inputs -----------------------------------------------------------------------------------------


def evaluation_due(spec: DriftMonitorSpec, status: DriftMonitorStatus, generation: int, now: datetime) -> bool:
    """Due an interval after the last attempt, and at once after a spec change."""
    if status.observed_generation != generation or status.last_attempt_time is None:
        return True
    return (now - status.last_attempt_time).total_seconds() >= duration_seconds(spec.interval)


def parse_reference(source: str | bytes | Mapping[str, Any]) -> Reference | Failure:
    """The reference, or ReferenceInvalid with pydantic's account of what is wrong (first three errors)."""
    try:
        if isinstance(source, Mapping):
            return Reference.model_validate(dict(source))
        return Reference.model_validate_json(source)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in e['loc']) or 'reference'}: {e['msg']}" for e in error.errors()[:3]
        ]
        more = f" (and {error.error_count() - 3} more)" if error.error_count() > 3 else ""
        return Failure("ReferenceInvalid", "; ".join(problems) + more)


def revision_label(spec: DriftMonitorSpec, target_status: Mapping[str, Any]) -> str | Failure | None:
    """The revision label value whose traffic is judged; None means every revision ("all")."""
    if spec.series.revision == "all":
        return None
    field = "stableRevision" if spec.series.revision == "stable" else "currentRevision"
    revision = target_status.get(field)
    if not isinstance(revision, Mapping) or not revision.get("hash"):
        return Failure(
            "RevisionUnknown",
            f"ModelDeployment {spec.target_ref} has no status.{field} yet, so its {spec.series.revision} "
            "revision's traffic cannot be selected",
        )
    return str(revision["hash"])


def watched_features(spec: DriftMonitorSpec, reference: Reference) -> list[str]:
    """The spec's features in its order, or every feature of the reference."""
    return list(spec.features) if spec.features else [f.name for f in reference.features]


# --- queries ------------------------------------------------------------------------------------------------------


def plan_queries(
    spec: DriftMonitorSpec, reference: Reference, *, namespace: str, revision: str | None
) -> list[DriftQuery]:
    """One query per metric family, each grouped by feature (and bucket or category).

    A family with nothing to judge is not queried: no categorical features, no prediction
    histogram in the reference, data quality or performance turned off.
    """
    selector, variables = _selector(spec, namespace, revision)
    variables["window"] = spec.window
    series = spec.series
    watched = set(watched_features(spec, reference))
    kinds = {f.type for f in reference.features if f.name in watched}

    def increase(name: QueryName, by: str, family: str, suffix: str) -> DriftQuery:
        aggregate = f"sum by ({by})" if by else "sum"
        template = f"{aggregate} (increase({{{{family}}}}{suffix}{selector}[{{{{window}}}}]))"
        return DriftQuery(name, template, {**variables, "family": family})

    queries: list[DriftQuery] = []
    if "numeric" in kinds:
        queries.append(increase("numeric", "feature, le", series.feature_histogram, "_bucket"))
    if "categorical" in kinds:
        queries.append(increase("categorical", "feature, category", series.feature_categories, ""))
    if spec.prediction and reference.prediction is not None:
        queries.append(increase("prediction", "le", series.prediction_histogram, "_bucket"))
    if spec.data_quality is not None:
        for name, counter in _QUALITY_COUNTERS.items():
            queries.append(increase(name, "feature", series.quality_prefix, f"_{counter}_total"))
    if spec.performance is not None:
        for name, metric in _PERFORMANCE_SERIES.items():
            queries.append(increase(name, "", metric, ""))
    return queries


def _selector(spec: DriftMonitorSpec, namespace: str, revision: str | None) -> tuple[str, dict[str, str]]:
    """Label matchers as a template: names stand outside quotes (render() lets only identifiers through)."""
    matchers = ['namespace="{{namespace}}"']
    variables = {"namespace": namespace}
    if revision is not None:
        matchers.append('revision="{{revision}}"')
        variables["revision"] = revision
    for index, (label, value) in enumerate(sorted(spec.series.matchers.items())):
        matchers.append(f'{{{{label_{index}}}}}="{{{{value_{index}}}}}"')
        variables[f"label_{index}"] = label
        variables[f"value_{index}"] = value
    return "{" + ", ".join(matchers) + "}", variables


# --- turning answers into results ---------------------------------------------------------------------------------


def thresholds_of(spec: DriftMonitorSpec) -> DriftThresholds:
    """The stats package's thresholds with the spec's overrides; unset values keep the documented defaults.

    ``alpha`` is the whole evaluation's budget; :func:`evaluate` splits it across the distributions.
    """
    changes: dict[str, float] = {"min_samples": float(spec.min_samples), "alpha": spec.alpha}
    for method in spec.methods:
        threshold, warning, p_value = method.threshold, method.warning, method.p_value
        if method.name == "psi":
            changes |= _set(psi_drift=threshold, psi_warning=warning)
        elif method.name == "ks":
            changes |= _set(ks_min_statistic=threshold, ks_alpha=p_value)
        elif method.name == "jensenShannon":
            changes |= _set(jensen_shannon_drift=threshold, jensen_shannon_warning=warning)
        elif method.name == "chiSquare":
            changes |= _set(chi_square_min_cramers_v=threshold, chi_square_alpha=p_value)
        elif method.name == "wasserstein":
            changes |= _set(wasserstein_drift_sd=threshold, wasserstein_warning_sd=warning)
        else:
            changes |= _set(hellinger_drift=threshold, hellinger_warning=warning)
    return dataclasses.replace(DriftThresholds(), **changes)


def _set(**values: float | None) -> dict[str, float]:
    return {name: value for name, value in values.items() if value is not None}


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
            binned.append(_bin_categorical(feature, categories.get(name, {})))
    _bin_numerics(numeric_features, binned, unscored)
    prediction_requested = spec.prediction and reference.prediction is not None
    if prediction_requested and reference.prediction is not None:
        prediction_buckets = [
            (s.labels["le"], float(s.value)) for s in answers.get("prediction", ()) if "le" in s.labels
        ]
        _bin_numeric(reference.prediction, prediction_buckets, binned, unscored, name=PREDICTION_NAME)

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


def _bin_numerics(
    features: Sequence[tuple[NumericFeature, Sequence[tuple[str, float]]]],
    binned: list[BinnedFeature],
    unscored: dict[str, FeatureResult],
) -> None:
    """:func:`_bin_numeric` for many features, converting those that share ``le`` labels and reference edges
    (usually all of them) in one vectorised pass; a group with any invalid histogram is redone one feature at
    a time, so each problem is reported on its own feature."""
    groups: dict[tuple[tuple[str, ...], bytes], list[tuple[NumericFeature, Histogram, Sequence[float]]]]
    groups = defaultdict(list)
    for feature, buckets in features:
        reference = _open_reference(feature)
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
                _bin_numeric(feature, list(zip(labels, cumulative, strict=True)), binned, unscored)
            continue
        for (feature, reference, _), row in zip(members, counts, strict=True):
            binned.append(BinnedFeature(feature.name, reference.counts, row, edges=edges))


def _bin_numeric(
    feature: NumericFeature,
    buckets: Sequence[tuple[str, float]],
    binned: list[BinnedFeature],
    unscored: dict[str, FeatureResult],
    name: str | None = None,
) -> None:
    name = name or feature.name
    reference = _open_reference(feature)
    if not buckets:
        current = np.zeros_like(reference.counts)
    else:
        try:
            current = live_counts(buckets, reference.edges)
        except HistogramError as error:
            unscored[name] = FeatureResult(name=name, message=f"buckets do not match the reference's edges: {error}")
            return
    binned.append(BinnedFeature(name, reference.counts, current, edges=reference.edges))


_OPEN_REFERENCES: dict[int, tuple[NumericFeature, Histogram]] = {}
_OPEN_REFERENCES_LIMIT = 20_000


def _open_reference(feature: NumericFeature) -> Histogram:
    """The feature's reference on open-ended edges, built once per parsed reference.

    Validating and padding a small histogram costs about as much as scoring it, and a parsed
    reference is reused from one evaluation to the next, so this halves the compute time of an
    evaluation. The entry holds the feature itself, so its id cannot be reused while cached.
    """
    cached = _OPEN_REFERENCES.get(id(feature))
    if cached is not None and cached[0] is feature:
        return cached[1]
    if len(_OPEN_REFERENCES) >= _OPEN_REFERENCES_LIMIT:
        _OPEN_REFERENCES.clear()
    histogram = open_ended(make_histogram(feature.edges, feature.counts))
    _OPEN_REFERENCES[id(feature)] = (feature, histogram)
    return histogram


def _bin_categorical(feature: CategoricalFeature, live: Mapping[str, float]) -> BinnedFeature:
    trained = dict(zip(feature.categories, map(float, feature.counts), strict=True))
    categories = align_categories(trained, live)
    return BinnedFeature(
        feature.name,
        np.array([trained.get(c, 0.0) for c in categories]),
        np.array([live.get(c, 0.0) for c in categories]),
        categories=categories,
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
        name: {s.labels.get("feature", ""): float(s.value) for s in answers.get(name, ())} for name in _QUALITY_COUNTERS
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
    total = {name: sum(float(s.value) for s in answers.get(name, ())) for name in _PERFORMANCE_SERIES}
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


# --- the decision ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Draft:
    status: DriftMonitorStatus
    now: datetime
    generation: int
    events: list[Event] = dataclasses.field(default_factory=list)

    def update(self, **changes: object) -> None:
        self.status = self.status.model_copy(update=changes)

    def condition(self, type_: str, value: ConditionStatus, reason: str, message: str = "") -> None:
        conditions = set_condition(
            self.status.conditions,
            type_,
            value,
            reason=reason,
            message=message[:1000],
            now=self.now,
            generation=self.generation,
        )
        self.update(conditions=conditions)

    def emit(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))


def decide(
    spec: DriftMonitorSpec,
    status: DriftMonitorStatus,
    outcome: Evaluation | Failure,
    *,
    now: datetime,
    generation: int,
    revision: str | None = None,
) -> Decision:
    """The status after one evaluation attempt, and the Events it calls for.

    A failure changes only Ready, the state (Error) and the history: the last good scores,
    conditions and alert state stay as they were, so an outage neither resolves nor raises an alert.
    """
    draft = _Draft(status=status, now=now, generation=generation)
    draft.update(observed_generation=generation, last_attempt_time=now)
    if isinstance(outcome, Failure):
        _failed(draft, outcome, spec.history_limit)
    else:
        _evaluated(spec, draft, outcome, revision)
    return Decision(status=draft.status, events=tuple(draft.events))


def invalid_spec(status: DriftMonitorStatus, message: str, *, now: datetime, generation: int) -> Decision:
    """A spec the schema let through but the rules reject: Ready False until it is fixed."""
    return decide_failure(status, Failure("InvalidSpec", message), now=now, generation=generation)


def decide_failure(status: DriftMonitorStatus, failure: Failure, *, now: datetime, generation: int) -> Decision:
    """:func:`decide` for a failure that happened before the spec could be read."""
    draft = _Draft(status=status, now=now, generation=generation)
    draft.update(observed_generation=generation, last_attempt_time=now)
    _failed(draft, failure, DEFAULT_HISTORY_LIMIT)
    return Decision(status=draft.status, events=tuple(draft.events))


def _failed(draft: _Draft, failure: Failure, history_limit: int) -> None:
    ready = find_condition(draft.status.conditions, "Ready")
    if ready is None or ready.status != "False" or ready.reason != failure.reason:
        draft.emit("Warning", failure.reason, failure.message)
    draft.condition("Ready", "False", failure.reason, failure.message)
    summary = EvaluationSummary(time=draft.now, state="Error")
    draft.update(state="Error", history=_bounded([summary, *draft.status.history], history_limit))


def _evaluated(spec: DriftMonitorSpec, draft: _Draft, evaluation: Evaluation, revision: str | None) -> None:
    state = evaluation.state
    previous_quality = find_condition(draft.status.conditions, "DataQualityDegraded")
    draft.update(
        state=state,
        last_evaluation_time=draft.now,
        revision=revision,
        drifted_features=evaluation.drifted,
        features=list(evaluation.features),
        prediction=evaluation.prediction,
        performance=evaluation.performance,
        data_quality=[q for q in evaluation.quality if q.degraded],
    )
    _drift_conditions(spec, draft, evaluation)
    if draft.status.data_quality and (previous_quality is None or previous_quality.status != "True"):
        draft.emit("Warning", "DataQualityDegraded", _quality_message(draft.status.data_quality))
    draft.condition("Ready", "True", "Evaluated", f"evaluated {len(evaluation.features)} features over {spec.window}")
    _alert(spec, draft, evaluation)
    psi = [f.scores["psi"] for f in evaluation.features if "psi" in f.scores]
    summary = EvaluationSummary(
        time=draft.now, state=state, drifted=list(evaluation.fingerprint), max_psi=max(psi) if psi else None
    )
    draft.update(history=_bounded([summary, *draft.status.history], spec.history_limit))


def _drift_conditions(spec: DriftMonitorSpec, draft: _Draft, evaluation: Evaluation) -> None:
    performance = evaluation.performance
    if evaluation.drifted:
        draft.condition("Drifted", "True", "FeaturesDrifted", drift_summary(evaluation.features, evaluation.prediction))
    elif performance is not None and performance.degraded:
        draft.condition("Drifted", "True", "PerformanceDegraded", performance.message or "")
    elif evaluation.insufficient:
        draft.condition("Drifted", "Unknown", "InsufficientData", "too few observations to rule drift out")
    else:
        draft.condition("Drifted", "False", "NoDrift", "")

    if evaluation.insufficient:
        names = evaluation.insufficient
        message = (
            f"{len(names)} of {len(evaluation.features) + (evaluation.prediction is not None)} distributions "
            f"have too few observations in {spec.window} (minSamples {spec.min_samples}, or noise floors above "
            f"the thresholds): {_listing(names)}"
        )
        draft.condition("InsufficientData", "True", "TooFewSamples", message)
    else:
        draft.condition("InsufficientData", "False", "EnoughSamples")

    if spec.data_quality is None:
        draft.condition("DataQualityDegraded", "False", "NotMonitored")
    elif draft.status.data_quality:
        draft.condition("DataQualityDegraded", "True", "LimitsExceeded", _quality_message(draft.status.data_quality))
    else:
        draft.condition("DataQualityDegraded", "False", "WithinLimits")

    if performance is None:
        draft.condition("PerformanceDegraded", "False", "NotMonitored")
    elif performance.degraded:
        draft.condition("PerformanceDegraded", "True", "BelowBaseline", performance.message or "")
    elif performance.feedback < (spec.performance.min_feedback if spec.performance else 0):
        draft.condition("PerformanceDegraded", "Unknown", "InsufficientFeedback", performance.message or "")
    elif performance.message and performance.message.startswith("no baseline"):
        draft.condition("PerformanceDegraded", "Unknown", "NoBaseline", performance.message)
    else:
        draft.condition("PerformanceDegraded", "False", "WithinBaseline", performance.message or "")


def drift_summary(features: Sequence[FeatureResult], prediction: FeatureResult | None = None) -> str:
    """``return_1d (psi 0.41, ks 0.22), prediction (psi 0.3)``: drifted distributions with their scores."""
    drifted = [f for f in [*features, *([prediction] if prediction else [])] if f.verdict == "Drift"]
    parts = [f"{f.name} ({', '.join(f'{m} {s:.3g}' for m, s in f.scores.items())})" for f in drifted[:10]]
    more = f" and {len(drifted) - 10} more" if len(drifted) > 10 else ""
    return "drift in " + ", ".join(parts) + more


def _quality_message(results: Sequence[QualityResult]) -> str:
    parts = []
    for result in results[:10]:
        rates = [
            f"{label} {rate:.1%}"
            for label, rate in (
                ("missing", result.missing_rate),
                ("out of range", result.out_of_range_rate),
                ("outliers", result.outlier_rate),
            )
            if rate is not None
        ]
        parts.append(f"{result.name} ({', '.join(rates)})")
    return "data quality limits exceeded: " + ", ".join(parts) + (" ..." if len(results) > 10 else "")


def _listing(names: Sequence[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _bounded(history: list[EvaluationSummary], limit: int) -> list[EvaluationSummary]:
    return history[:limit]


# --- alerts and actions ---------------------------------------------------------------------------------------------


def _alert(spec: DriftMonitorSpec, draft: _Draft, evaluation: Evaluation) -> None:
    """One alert per drift episode or change of what drifted, reminders, and one resolution.

    Only a verdict resolves an alert: too little data (or an outage, see :func:`decide`) keeps
    an open alert open, because "we cannot tell" is not "drift is over".
    """
    alert = draft.status.alert
    fingerprint = ",".join(evaluation.fingerprint) or None
    webhook = spec.alerting.webhook is not None
    summary = _alert_summary(evaluation)
    if fingerprint is not None and not alert.firing:
        draft.emit("Warning", "DriftDetected", summary)
        alert = _open(alert, fingerprint, "Firing" if webhook else None, draft.now)
        _request_action(spec, draft, summary)
    elif fingerprint is not None and fingerprint != alert.fingerprint:
        draft.emit("Warning", "DriftChanged", summary)
        alert = _open(alert, fingerprint, "Firing" if webhook else None, draft.now)
    elif fingerprint is not None:
        remind = spec.alerting.remind_after
        since = alert.last_sent_at
        due = remind is not None and since is not None and draft.now - since >= _seconds(duration_seconds(remind))
        if webhook and due and alert.pending is None:
            alert = alert.model_copy(update={"pending": "Reminder", "next_attempt_at": draft.now})
    elif alert.firing and evaluation.state != "InsufficientData":
        draft.emit("Normal", "DriftResolved", f"no drift in {spec.window} of traffic ({evaluation.state})")
        never_sent = alert.pending == "Firing"
        resolved = webhook and spec.alerting.send_resolved and not never_sent
        alert = alert.model_copy(
            update={
                "firing": False,
                "fingerprint": None,
                "pending": "Resolved" if resolved else None,
                "failures": 0,
                "next_attempt_at": draft.now if resolved else None,
                "last_error": None,
            }
        )
    draft.update(alert=alert)


def _open(alert: AlertStatus, fingerprint: str, pending: Literal["Firing"] | None, now: datetime) -> AlertStatus:
    return alert.model_copy(
        update={
            "firing": True,
            "fingerprint": fingerprint,
            "pending": pending,
            "failures": 0,
            "next_attempt_at": now if pending else None,
            "last_error": None,
        }
    )


def _alert_summary(evaluation: Evaluation) -> str:
    parts = []
    if evaluation.drifted:
        parts.append(drift_summary(evaluation.features, evaluation.prediction))
    if evaluation.performance is not None and evaluation.performance.degraded:
        parts.append(f"performance degraded: {evaluation.performance.message}")
    return "; ".join(parts)


def _request_action(spec: DriftMonitorSpec, draft: _Draft, summary: str) -> None:
    if spec.action == "None":
        return
    stamp = draft.now.strftime("%Y%m%dT%H%M%SZ")
    action = TargetActionStatus(
        name=spec.action,
        id=f"drift-{stamp}-g{draft.generation}",
        requested_at=draft.now,
        message=summary[:500],
    )
    draft.update(action=action)


def action_pending(status: DriftMonitorStatus, now: datetime) -> TargetActionStatus | None:
    """The action still to take; due from when drift asked for it, like a pending alert."""
    action = status.action
    return action if action is not None and action.state == "Pending" and action.requested_at <= now else None


def action_done(status: DriftMonitorStatus, *, target: str, now: datetime) -> Decision:
    """The target was patched: record it on the monitor (status and an Event)."""
    action = status.action
    assert action is not None
    verb = "paused the rollout of" if action.name == "Pause" else "asked to roll back the canary of"
    text = f"{verb} ModelDeployment {target} at {now.isoformat()}: {action.message}"
    updated = action.model_copy(update={"state": "Taken", "taken_at": now})
    event = Event("Warning", "TargetPaused" if action.name == "Pause" else "RollbackRequested", text)
    return Decision(status=status.model_copy(update={"action": updated, "action_taken": text[:1000]}), events=(event,))


def action_failed(status: DriftMonitorStatus, error: str, *, permanent: bool) -> Decision:
    """A failed patch is retried at the next tick unless it cannot succeed (the target is gone)."""
    action = status.action
    assert action is not None
    updated = action.model_copy(update={"state": "Failed" if permanent else "Pending", "message": error[:500]})
    events = (Event("Warning", "ActionFailed", f"{action.name} of the target failed: {error}"),) if permanent else ()
    return Decision(status=status.model_copy(update={"action": updated}), events=events)


def target_event(action: TargetActionStatus, monitor: str) -> Event:
    """The Event on the ModelDeployment, so its owners see why it was paused or rolled back."""
    what = "paused" if action.name == "Pause" else "rollback requested"
    return Event("Warning", "DriftDetected", f"{what} by DriftMonitor {monitor}: {action.message}")


def delivery_due(status: DriftMonitorStatus, now: datetime) -> bool:
    alert = status.alert
    return alert.pending is not None and (alert.next_attempt_at is None or alert.next_attempt_at <= now)


def alert_delivered(status: DriftMonitorStatus, now: datetime) -> DriftMonitorStatus:
    alert = status.alert.model_copy(
        update={"pending": None, "failures": 0, "next_attempt_at": None, "last_error": None, "last_sent_at": now}
    )
    return status.model_copy(update={"alert": alert})


def alert_failed(status: DriftMonitorStatus, error: str, now: datetime) -> DriftMonitorStatus:
    """Back off exponentially; evaluation carries on meanwhile and a newer message replaces this one."""
    failures = status.alert.failures + 1
    wait = min(RETRY_BASE_SECONDS * 2 ** (failures - 1), RETRY_CAP_SECONDS)
    alert = status.alert.model_copy(
        update={"failures": failures, "next_attempt_at": now + _seconds(wait), "last_error": error[:500]}
    )
    return status.model_copy(update={"alert": alert})


def alert_payload(namespace: str, name: str, spec: DriftMonitorSpec, status: DriftMonitorStatus) -> dict[str, Any]:
    """A Slack-compatible message (``text`` plus ``blocks``) with a machine-readable ``modelrollout`` field."""
    kind = status.alert.pending or "Firing"
    monitor = f"{namespace}/{name}"
    drifted = [
        f for f in [*status.features, *([status.prediction] if status.prediction else [])] if f.verdict == "Drift"
    ]
    performance = status.performance
    if kind == "Resolved":
        text = f":white_check_mark: DriftMonitor {monitor}: drift on ModelDeployment {spec.target_ref} resolved"
    else:
        prefix = ":warning: Reminder: drift persists" if kind == "Reminder" else ":warning: Drift detected"
        details = []
        if drifted:
            details.append(drift_summary(status.features, status.prediction))
        if performance is not None and performance.degraded:
            details.append(f"performance degraded: {performance.message}")
        text = f"{prefix} on ModelDeployment {spec.target_ref} (DriftMonitor {monitor}): {'; '.join(details)}"
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "modelrollout": {
            "kind": kind,
            "monitor": name,
            "namespace": namespace,
            "target": spec.target_ref,
            "state": status.state,
            "revision": status.revision,
            "evaluatedAt": status.last_evaluation_time.isoformat() if status.last_evaluation_time else None,
            "driftedFeatures": [f.name for f in drifted] if kind != "Resolved" else [],
            "scores": {f.name: dict(f.scores) for f in drifted} if kind != "Resolved" else {},
            "performance": (
                performance.model_dump(mode="json", by_alias=True, exclude_none=True) if performance else None
            ),
            "fingerprint": status.alert.fingerprint,
        },
    }


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def alert_cancelled(status: DriftMonitorStatus) -> DriftMonitorStatus:
    """The webhook was removed from the spec while a message waited: nobody is left to tell."""
    alert = status.alert.model_copy(update={"pending": None, "failures": 0, "next_attempt_at": None})
    return status.model_copy(update={"alert": alert})
