"""DriftMonitor: live feature, prediction and performance distributions against a training reference."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from modelrollout.api.base import ApiModel, Duration, Name, Rule, StatusModel
from modelrollout.api.common import ConfigMapKeyRef, SecretKeyRef
from modelrollout.api.conditions import Condition
from modelrollout.api.modeldeployment import EMBEDDED_OBJECT
from modelrollout.api.status import ResourceStatus

KIND = "DriftMonitor"
PLURAL = "driftmonitors"

METRIC_NAME_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
"""A Prometheus metric name: the series families stand in queries as names, never as quoted strings."""
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
"""A Prometheus label name."""
FeatureName = Annotated[str, Field(min_length=1, max_length=253)]
"""A feature's name as the model server labels its series (and as status reports it)."""

DriftMethodName = Literal["psi", "ks", "jensenShannon", "chiSquare", "wasserstein", "hellinger"]


class DriftMethod(ApiModel):
    """One drift statistic and its thresholds. Unset thresholds take the documented defaults."""

    __rules__ = (
        Rule(
            "!has(self.warning) || !has(self.threshold) || self.warning <= self.threshold",
            "a method's warning level must not exceed its drift threshold",
            lambda s: s.warning is None or s.threshold is None or s.warning <= s.threshold,
        ),
    )

    name: DriftMethodName
    """psi, ks, jensenShannon, chiSquare, wasserstein or hellinger."""
    threshold: float | None = Field(default=None, gt=0)
    """The practical threshold: the score at or above which the feature has drifted, provided the score is
    also above its noise floor at the window's sample size (distances: PSI 0.2, JS 0.1, Hellinger 0.1,
    Wasserstein 0.1 reference standard deviations; tests: the minimum effect size, KS statistic 0.05,
    chi-square Cramér's V 0.05)."""
    warning: float | None = Field(default=None, gt=0)
    """The score at or above which the feature is flagged as a warning (PSI 0.1)."""
    p_value: float | None = Field(default=None, gt=0, lt=1)
    """For tests (ks, chiSquare): an upper limit on the test's significance level; unset, the test gets its
    share of spec.alpha."""


def _default_methods() -> list[DriftMethod]:
    return [DriftMethod(name="psi"), DriftMethod(name="ks")]


class ReferenceSource(ApiModel):
    """The training distribution: bin edges and counts per feature and for the prediction."""

    __rules__ = (
        Rule(
            "has(self.configMapRef) != has(self.inline)",
            "reference needs exactly one of configMapRef or inline",
            lambda s: (s.config_map_ref is None) != (s.inline is None),
        ),
    )

    config_map_ref: ConfigMapKeyRef | None = None
    """A ConfigMap key holding the reference JSON (``modelrollout reference build`` writes one)."""
    inline: dict[str, Any] | None = Field(default=None, json_schema_extra=EMBEDDED_OBJECT)
    """The reference JSON inline (validated by the operator; errors become the ReferenceInvalid condition)."""


class SeriesSelector(ApiModel):
    """Which Prometheus series carry the model server's distributions (see docs/metrics-contract.md)."""

    __rules__ = (
        Rule(
            f"self.matchers.all(k, size(k) <= 128 && k.matches('{LABEL_NAME_PATTERN}'))",
            "series.matchers: keys must be Prometheus label names",
            lambda s: all(len(k) <= 128 and re.fullmatch(LABEL_NAME_PATTERN, k) for k in s.matchers),
            ".matchers",
        ),
    )

    feature_histogram: str = Field(default="model_feature_value", max_length=200, pattern=METRIC_NAME_PATTERN)
    """Histogram family of numeric features, labelled by feature."""
    feature_categories: str = Field(default="model_feature_category_total", max_length=200, pattern=METRIC_NAME_PATTERN)
    """Counter of categorical feature values, labelled by feature and category."""
    prediction_histogram: str = Field(default="model_prediction_value", max_length=200, pattern=METRIC_NAME_PATTERN)
    """Histogram family of predictions."""
    quality_prefix: str = Field(default="model_feature", max_length=200, pattern=METRIC_NAME_PATTERN)
    """Prefix of the data-quality counters (_observations_total, _missing_total, _out_of_range_total,
    _outliers_total)."""
    matchers: dict[str, Annotated[str, Field(max_length=1024)]] = Field(default_factory=dict, max_length=16)
    """Extra label matchers (exact values) added to every query, for example {job: model-server}."""
    revision: Literal["stable", "current", "all"] = "stable"
    """Whose traffic to judge: the stable revision, the current (canary) revision, or all revisions."""


class PerformanceSpec(ApiModel):
    """Quality from delayed labels (realised outcomes fed back to the model server)."""

    min_feedback: int = Field(default=100, ge=1)
    """Labelled predictions needed in the window before performance is judged."""
    baseline_directional_accuracy: float | None = Field(default=None, ge=0, le=1)
    """The accuracy to compare with; the reference's performance section when unset."""
    max_accuracy_drop: float = Field(default=0.05, ge=0, le=1)
    """Drift when accuracy falls more than this below the baseline (absolute)."""
    baseline_mean_abs_error: float | None = Field(default=None, ge=0)
    """The mean absolute error to compare with; the reference's when unset."""
    max_error_increase_ratio: float = Field(default=1.2, ge=1)
    """Drift when the mean absolute error exceeds baseline x this."""


class DataQualitySpec(ApiModel):
    """Limits on missing, out-of-range and outlying inputs."""

    max_missing_rate: float = Field(default=0.05, ge=0, le=1)
    """The share of missing values per feature tolerated."""
    max_out_of_range_rate: float = Field(default=0.05, ge=0, le=1)
    """The share of values outside the reference's range tolerated."""
    max_outlier_rate: float = Field(default=0.01, ge=0, le=1)
    """The share of outliers tolerated."""


class WebhookSpec(ApiModel):
    """A Slack-compatible webhook that receives drift alerts."""

    url_secret_ref: SecretKeyRef
    """The Secret key holding the URL, so it never appears in the resource."""


class AlertingSpec(ApiModel):
    """How people hear about drift. Events and metrics are always emitted."""

    webhook: WebhookSpec | None = None
    """Where to POST alerts."""
    remind_after: Duration | None = None
    """Send a reminder while drift persists this long after the last alert; never when unset."""
    send_resolved: bool = True
    """Send a message when drift clears."""


DriftAction = Literal["None", "Pause", "Rollback"]


class DriftMonitorSpec(ApiModel):
    """Watch one ModelDeployment for drift."""

    target_ref: Name = Field(alias="targetRef")
    """The ModelDeployment, in the same namespace, whose traffic is watched."""
    interval: Duration = "1m"
    """How often to evaluate."""
    window: Duration = "1h"
    """The range of live data compared with the reference."""
    reference: ReferenceSource
    """The training distribution."""
    series: SeriesSelector = Field(default_factory=SeriesSelector)
    """Which Prometheus series to read."""
    features: list[FeatureName] = Field(default_factory=list, max_length=2000)
    """The features to watch; all of the reference's when empty."""
    methods: list[DriftMethod] = Field(default_factory=_default_methods, min_length=1, max_length=6)
    """The statistics to compute; a feature drifts when any method says so. Default psi and ks."""
    min_samples: int = Field(default=100, ge=1)
    """Observations needed in the window; fewer is InsufficientData, never "no drift". Above it a score
    still counts only when it clears its noise floor, so a small window cannot raise a false alarm; 100
    expects 10 observations per reference decile."""
    alpha: float = Field(default=0.04, gt=0, lt=1)
    """False-alarm budget of one evaluation: with no drift, an evaluation reports drift at most this often,
    split across the watched distributions and their methods."""
    prediction: bool = True
    """Also judge the prediction distribution."""
    performance: PerformanceSpec | None = None
    """Also judge quality from delayed labels."""
    data_quality: DataQualitySpec | None = Field(default_factory=DataQualitySpec)
    """Data-quality limits; off when null."""
    alerting: AlertingSpec = Field(default_factory=AlertingSpec)
    """Webhooks and reminders."""
    action: DriftAction = "None"
    """What to do to the target on drift: None, Pause its rollout, or Rollback its canary."""
    history_limit: int = Field(default=20, ge=0, le=200)
    """Evaluations kept in status.history."""


DriftState = Literal["Pending", "NoDrift", "Warning", "Drift", "InsufficientData", "Error"]


class FeatureResult(StatusModel):
    """One feature's (or the prediction's) scores in the last evaluation."""

    name: str
    """The feature, or "prediction"."""
    samples: int = 0
    """Observations in the window."""
    verdict: Literal["NoDrift", "Warning", "Drift", "InsufficientData"] = "InsufficientData"
    """The worst verdict over the methods."""
    scores: dict[str, float] = Field(default_factory=dict)
    """Method name to score."""
    p_values: dict[str, float] = Field(default_factory=dict)
    """Method name to p-value, for the tests (and Wasserstein's, from its simulated null)."""
    noise_floors: dict[str, float] = Field(default_factory=dict)
    """Method name to noise floor: the score noise alone reaches at this sample size (same unit as scores);
    a score counts as drift only above both its threshold and its floor."""
    message: str | None = None
    """Why there is no verdict (no series, buckets that do not match the reference's edges, ...)."""


class QualityResult(StatusModel):
    """One feature's data quality in the last evaluation."""

    name: str
    """The feature."""
    missing_rate: float | None = None
    """Share of missing values."""
    out_of_range_rate: float | None = None
    """Share of values outside the reference's range."""
    outlier_rate: float | None = None
    """Share of outliers."""
    degraded: bool = False
    """Whether any limit was exceeded."""


class PerformanceResult(StatusModel):
    """Quality from delayed labels in the last evaluation."""

    feedback: int = 0
    """Labelled predictions in the window."""
    directional_accuracy: float | None = None
    """Share of predictions with the right sign."""
    mean_abs_error: float | None = None
    """Mean absolute error."""
    degraded: bool = False
    """Whether quality fell beyond the limits."""
    message: str | None = None
    """The comparison in words."""


class EvaluationSummary(StatusModel):
    """One past evaluation, for the trend."""

    time: datetime
    """When it ran."""
    state: DriftState
    """Its outcome."""
    drifted: list[str] = Field(default_factory=list)
    """Drifted features."""
    max_psi: float | None = None
    """The largest PSI over features."""


class AlertStatus(StatusModel):
    """Alert de-duplication state: one alert per transition, reminders, resolution."""

    firing: bool = False
    """Whether a drift alert is open."""
    fingerprint: str | None = None
    """What the open alert was about (sorted drifted features)."""
    last_sent_at: datetime | None = None
    """When the last message went out."""
    pending: Literal["Firing", "Reminder", "Resolved"] | None = None
    """A message still to deliver (a failed webhook is retried with back-off)."""
    failures: int = 0
    """Delivery failures in a row."""
    next_attempt_at: datetime | None = None
    """When delivery is retried."""
    last_error: str | None = None
    """The last delivery error."""


TargetActionName = Literal["Pause", "Rollback"]


class TargetActionStatus(StatusModel):
    """The action taken on the target for the current drift episode: requested once, retried until done."""

    name: TargetActionName
    """Pause (spec.paused on the ModelDeployment) or Rollback (the abort action annotation)."""
    id: str
    """Unique per drift episode; the action-id annotation of a Rollback, so it is consumed exactly once."""
    state: Literal["Pending", "Taken", "Failed"] = "Pending"
    """Pending until the target was patched; Failed when it cannot be (the target is gone)."""
    requested_at: datetime
    """When drift asked for it."""
    taken_at: datetime | None = None
    """When the target was patched."""
    message: str | None = None
    """Why it was taken, or why it failed."""


class DriftMonitorStatus(ResourceStatus):
    """The last evaluation and its trend."""

    observed_generation: int | None = None
    """The spec generation last acted on."""
    state: DriftState = "Pending"
    """NoDrift, Warning, Drift, InsufficientData or Error."""
    last_evaluation_time: datetime | None = None
    """When the last successful evaluation finished; its results stay in status while later ones fail."""
    last_attempt_time: datetime | None = None
    """When the last evaluation was attempted, successful or not: the next one is due an interval later."""
    revision: str | None = None
    """The revision label value whose traffic was judged (empty with series.revision "all")."""
    drifted_features: list[str] = Field(default_factory=list)
    """Features (and "prediction") that drifted in the last evaluation."""
    features: list[FeatureResult] = Field(default_factory=list)
    """Per-feature scores."""
    prediction: FeatureResult | None = None
    """The prediction distribution's scores."""
    performance: PerformanceResult | None = None
    """Quality from delayed labels."""
    data_quality: list[QualityResult] = Field(default_factory=list)
    """Per-feature data quality (degraded features only, to keep status small)."""
    history: list[EvaluationSummary] = Field(default_factory=list)
    """Past evaluations, newest first."""
    alert: AlertStatus = Field(default_factory=AlertStatus)
    """Alert delivery state."""
    action_taken: str | None = None
    """The last action applied to the target, with its time."""
    action: TargetActionStatus | None = None
    """The action of the current (or last) drift episode and its delivery state."""
    conditions: list[Condition] = Field(default_factory=list)
    """Drifted, DataQualityDegraded, PerformanceDegraded, InsufficientData, Ready, and Reconciled (False while a
    reconciliation fails, with the reason)."""


PRINTER_COLUMNS = [
    {"name": "Target", "type": "string", "jsonPath": ".spec.targetRef"},
    {"name": "State", "type": "string", "jsonPath": ".status.state"},
    {"name": "Drifted", "type": "string", "jsonPath": ".status.driftedFeatures"},
    {"name": "Last", "type": "date", "jsonPath": ".status.lastEvaluationTime"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
