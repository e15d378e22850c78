"""The server's side of the metric contract (see ``docs/metrics-contract.md``).

Per-feature histograms use each feature's own reference edges, which
prometheus-client's ``Histogram`` cannot do inside one family, so they are
exported by a custom collector. Bucket semantics are Prometheus's: bucket
``le=e`` counts values ``<= e``; the first reference edge therefore also
collects everything below the training range, and ``+Inf`` everything above.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics_core import HistogramMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from model_server.model import FloatArray
from model_server.reference import ServingReference

REQUEST_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_CODES = ("200", "400", "500", "503")
"""Every status /predict answers with; each counter series exists from the start."""

# Unknown categories share one label value so a misbehaving client cannot
# explode the series count; the DriftMonitor sees them as a new category.
OTHER_CATEGORY = "__other__"

disable_created_metrics()


class EdgeHistogram:
    """Counts for one histogram series on fixed edges, updated a batch at a time."""

    def __init__(self, edges: FloatArray) -> None:
        self.edges = edges
        self._buckets = np.zeros(edges.size + 1, dtype=np.int64)
        self._sum = 0.0
        self._les = [floatToGoString(edge) for edge in edges] + ["+Inf"]

    def observe(self, values: FloatArray) -> None:
        # side="left" puts x in the first bucket whose edge is >= x, i.e. Prometheus's le.
        index = np.searchsorted(self.edges, values, side="left")
        self._buckets += np.bincount(index, minlength=self._buckets.size)
        self._sum += float(np.sum(values))

    def add_to(self, family: HistogramMetricFamily, labels: Mapping[str, str] | None = None) -> None:
        """Append this series to ``family``; ``labels`` in the family's label order."""
        labels = labels or {}
        cumulative = np.cumsum(self._buckets)
        buckets = [(le, float(n)) for le, n in zip(self._les, cumulative, strict=True)]
        family.add_metric(list(labels.values()), buckets, self._sum)
        if self.edges[0] < 0:
            # prometheus-client drops _sum and _count when a bucket bound is negative (an OpenMetrics
            # rule); the contract needs them for every feature, and Prometheus's text format allows them.
            family.samples.append(Sample(f"{family.name}_count", dict(labels), float(cumulative[-1])))
            family.samples.append(Sample(f"{family.name}_sum", dict(labels), self._sum))


class ModelMetrics(Collector):
    """Everything the server exports, in its own registry (no process/platform noise)."""

    def __init__(self, reference: ServingReference, *, name: str, version: str) -> None:
        self.reference = reference
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._features = {spec.name: EdgeHistogram(spec.edges) for spec in reference.numeric}
        self._prediction = EdgeHistogram(reference.prediction_edges)
        self._abs_error = EdgeHistogram(reference.abs_error_edges)
        self._squared_error_sum = 0.0
        self._squared_error_count = 0

        registry = self.registry
        self.requests = Counter("model_requests", "Predict requests by HTTP status.", ["code"], registry=registry)
        self.duration = Histogram(
            "model_request_duration_seconds",
            "Predict request latency, including injected latency.",
            buckets=REQUEST_DURATION_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter("model_predictions", "Instances predicted.", registry=registry)
        self.categories = Counter(
            "model_feature_category", "Categorical feature values seen.", ["feature", "category"], registry=registry
        )
        self.observations = Counter(
            "model_feature_observations", "Feature values received, missing or not.", ["feature"], registry=registry
        )
        self.missing = Counter(
            "model_feature_missing", "Feature values missing, null, NaN or invalid.", ["feature"], registry=registry
        )
        self.out_of_range = Counter(
            "model_feature_out_of_range",
            "Feature values outside the reference range (or unknown categories).",
            ["feature"],
            registry=registry,
        )
        self.outliers = Counter(
            "model_feature_outliers",
            "Feature values with |z| > 4 against the reference.",
            ["feature"],
            registry=registry,
        )
        self.feedback = Counter("model_feedback", "Realised outcomes received.", registry=registry)
        self.direction_correct = Counter(
            "model_direction_correct", "Outcomes whose sign the prediction got right.", registry=registry
        )
        info = Gauge("model_info", "Identity of the served model.", ["name", "version"], registry=registry)
        info.labels(name=name, version=version).set(1)
        registry.register(self)

        # Absent series break rate() and ratios in PromQL, so every known series starts at zero. This
        # matters most for failures: increase() reads a series' first sample as its baseline, so the
        # failures before a "500" series' first scrape would otherwise never be counted.
        for code in REQUEST_CODES:
            self.requests.labels(code=code)
        for spec_name in [s.name for s in reference.numeric] + [s.name for s in reference.categorical]:
            for counter in (self.observations, self.missing, self.out_of_range, self.outliers):
                counter.labels(feature=spec_name)
        for categorical in reference.categorical:
            for category in sorted(categorical.categories):
                self.categories.labels(feature=categorical.name, category=category)

    def record_inputs(self, numeric: Mapping[str, FloatArray], categorical: Mapping[str, Sequence[str | None]]) -> None:
        """Record one request's inputs; NaN in ``numeric`` and None in ``categorical`` mean missing."""
        for spec in self.reference.numeric:
            values = numeric[spec.name]
            present = values[np.isfinite(values)]
            self.observations.labels(feature=spec.name).inc(values.size)
            self.missing.labels(feature=spec.name).inc(values.size - present.size)
            self.out_of_range.labels(feature=spec.name).inc(spec.out_of_range(present))
            self.outliers.labels(feature=spec.name).inc(spec.outliers(present))
            with self._lock:
                self._features[spec.name].observe(present)
        for categorical_spec in self.reference.categorical:
            seen = categorical[categorical_spec.name]
            self.observations.labels(feature=categorical_spec.name).inc(len(seen))
            known = [value for value in seen if value is not None]
            self.missing.labels(feature=categorical_spec.name).inc(len(seen) - len(known))
            labelled = Tally(value if value in categorical_spec.categories else OTHER_CATEGORY for value in known)
            for category, count in labelled.items():
                self.categories.labels(feature=categorical_spec.name, category=category).inc(count)
            self.out_of_range.labels(feature=categorical_spec.name).inc(labelled[OTHER_CATEGORY])

    def record_predictions(self, predictions: FloatArray) -> None:
        self.predictions.inc(predictions.size)
        with self._lock:
            self._prediction.observe(predictions[np.isfinite(predictions)])

    def record_feedback(self, predictions: FloatArray, actuals: FloatArray) -> None:
        errors = np.abs(predictions - actuals)
        self.feedback.inc(errors.size)
        self.direction_correct.inc(int(np.count_nonzero(predictions * actuals > 0)))
        with self._lock:
            self._abs_error.observe(errors)
            self._squared_error_sum += float(np.sum(errors**2))
            self._squared_error_count += errors.size

    def describe(self) -> Iterator[Metric]:
        # Describing nothing keeps the registry from calling collect() at registration time.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            features = HistogramMetricFamily(
                "model_feature_value",
                "Numeric feature values, each feature on its own reference edges.",
                labels=["feature"],
            )
            for name, histogram in self._features.items():
                histogram.add_to(features, {"feature": name})
            prediction = HistogramMetricFamily(
                "model_prediction_value", "Predicted values on the reference prediction edges.", labels=[]
            )
            self._prediction.add_to(prediction)
            abs_error = HistogramMetricFamily(
                "model_abs_error", "Absolute error of predictions against realised outcomes.", labels=[]
            )
            self._abs_error.add_to(abs_error)
            squared = SummaryMetricFamily(
                "model_abs_error_squared",
                "Squared absolute errors, for per-arm variances (Welch tests).",
                count_value=self._squared_error_count,
                sum_value=self._squared_error_sum,
            )
        yield features
        yield prediction
        yield abs_error
        yield squared
