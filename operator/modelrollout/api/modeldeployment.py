"""ModelDeployment: a model version served by a pod template, rolled out as a gated canary."""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from modelrollout.api.base import ApiModel, Duration, Rule, StatusModel, cel
from modelrollout.api.common import ConfigMapKeyRef, TrafficRouting
from modelrollout.api.conditions import Condition
from modelrollout.api.k8s import JOB_TEMPLATE_SPEC, POD_TEMPLATE_SPEC
from modelrollout.api.status import ResourceStatus

KIND = "ModelDeployment"
PLURAL = "modeldeployments"

EMBEDDED_OBJECT: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
"""Free-form JSON the operator validates itself (a drift reference)."""

NAME_MAX_LENGTH = 56
"""The longest ModelDeployment name whose derived names are all valid: ``<name>-stable`` and ``<name>-canary``
are Service names (DNS-1035 labels, at most 63 characters), and the name is the value of every owned
object's ``modelrollout.dev/model-deployment`` label."""
SERVICE_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
"""DNS-1035: what a Service name must be (a letter first, no dots)."""
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
)
"""A qualified label key: an optional DNS-subdomain prefix and a slash, then a name (no backslash escapes, so
the same text is a valid CEL string)."""


def _labels_valid(template: dict[str, Any]) -> bool:
    """The template's label keys (their values and the types are the schema's business)."""
    metadata = template.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return not isinstance(labels, dict) or all(_label_key_valid(k) for k in labels)


def _label_key_valid(key: object) -> bool:
    if not isinstance(key, str) or not re.fullmatch(LABEL_KEY_PATTERN, key):
        return False
    prefix, _, name = key.rpartition("/")
    return len(prefix) <= 253 and len(name) <= 63


NAME_RULES: tuple[dict[str, str], ...] = (
    cel(
        f"size(self.metadata.name) <= {NAME_MAX_LENGTH}",
        f"metadata.name: at most {NAME_MAX_LENGTH} characters, so that <name>-stable and <name>-canary are valid "
        "Service names",
    ),
    cel(
        f"self.metadata.name.matches('{SERVICE_NAME_PATTERN}')",
        "metadata.name: lowercase letters, digits and '-', starting with a letter (no dots): it names Services",
    ),
)
"""Rules on the object's own name, checked at the CRD's root (the only place CEL sees metadata.name)."""


class Lineage(ApiModel):
    """Where the model came from, recorded in every revision so history answers "what is serving"."""

    __rules__ = (
        Rule(
            "self.params.all(k, size(k) <= 128) && self.metrics.all(k, size(k) <= 128)",
            "model.lineage: parameter and metric names must be at most 128 characters",
            lambda s: all(len(k) <= 128 for k in (*s.params, *s.metrics)),
        ),
    )

    data: str | None = Field(default=None, max_length=2048)
    """The training data reference (a dataset URI, table snapshot or DVC hash)."""
    params: dict[str, Annotated[str, Field(max_length=1024)]] = Field(default_factory=dict, max_length=64)
    """Hyperparameters, as strings."""
    code: str | None = Field(default=None, max_length=256)
    """The code revision that trained the model (a git commit)."""
    metrics: dict[str, float] = Field(default_factory=dict, max_length=64)
    """Offline training and validation metrics."""


class ModelIdentity(ApiModel):
    """The model version this resource serves."""

    name: str = Field(min_length=1, max_length=253)
    """The model's name, shared by all its versions."""
    version: str = Field(min_length=1, max_length=128)
    """The model version (free-form, shown in history and status)."""
    uri: str = Field(min_length=1, max_length=2048)
    """Where the artifact lives (s3://, gs://, hf://, oci://, pvc://...). Passed to the pod as MODEL_URI."""
    digest: str | None = Field(default=None, pattern=r"^[a-z0-9]+:[a-fA-F0-9]{16,128}$")
    """The artifact's content digest (sha256:...), so a version id names exactly one artifact."""
    framework: str | None = Field(default=None, max_length=63)
    """The serving framework (sklearn, xgboost, pytorch, onnx, custom...)."""
    lineage: Lineage = Field(default_factory=Lineage)
    """Training data, parameters, code and metrics of this version."""


class OutputRange(ApiModel):
    """Bounds every prediction must respect."""

    __rules__ = (Rule("self.min < self.max", "outputRange.min must be below outputRange.max", lambda s: s.min < s.max),)

    min: float
    """The smallest valid prediction."""
    max: float
    """The largest valid prediction."""


class BuiltinSmokeChecks(ApiModel):
    """The operator's own checks, run by ``modelrollout smoke`` in a Job against the canary Service."""

    golden_inputs: ConfigMapKeyRef | None = None
    """A ConfigMap key holding golden inputs as JSON ({"instances": [...], "expected": [...]})."""
    expected_shape: int | None = Field(default=None, ge=1)
    """How many values each prediction must have; one per instance when unset."""
    output_range: OutputRange | None = None
    """Bounds every prediction must respect."""
    latency_budget_ms: int | None = Field(default=None, ge=1)
    """The p95 latency the golden requests must stay within."""
    predict_path: str = Field(default="/predict", max_length=1024, pattern=r"^/[^\s]*$")
    """The inference endpoint on the model server."""
    health_path: str = Field(default="/healthz", max_length=1024, pattern=r"^/[^\s]*$")
    """The readiness endpoint on the model server."""
    image: str | None = Field(default=None, min_length=1, max_length=4096, pattern=r"^\S+$")
    """The image that runs the checks; the operator's own image when unset."""


class SmokeTestSpec(ApiModel):
    """Checks a canary must pass before it receives any traffic."""

    __rules__ = (
        Rule(
            "has(self.builtin) || has(self.jobTemplate)",
            "smokeTest needs builtin checks, a jobTemplate or both",
            lambda s: s.builtin is not None or s.job_template is not None,
        ),
    )

    builtin: BuiltinSmokeChecks | None = None
    """Built-in ML checks: loads, inference on golden inputs, output shape and range, latency."""
    job_template: dict[str, Any] | None = Field(default=None, json_schema_extra=JOB_TEMPLATE_SPEC)
    """A batch/v1 JobTemplateSpec of your own; it gets CANARY_URL and MODEL_* in its environment."""
    timeout: Duration = "5m"
    """How long the smoke tests may take before they count as failed."""


class PauseSpec(ApiModel):
    """How long a step holds before it moves on."""

    duration: Duration | None = None
    """Hold for this long (and until analysis passes); forever (a manual gate) when unset."""


class CanaryStep(ApiModel):
    """One traffic stage of the canary."""

    weight: int = Field(ge=1, le=100)
    """The percentage of traffic the canary receives during this step."""
    pause: PauseSpec = Field(default_factory=lambda: PauseSpec(duration="30s"))
    """How long to hold; an empty pause ({}) waits for ``modelrollout promote``."""
    analysis: bool = True
    """Whether guardrails must pass before leaving this step."""


def _default_steps() -> list[CanaryStep]:
    return [CanaryStep(weight=w) for w in (5, 25, 50, 100)]


class CanaryStrategy(ApiModel):
    """The traffic stages of a rollout."""

    __rules__ = (
        Rule(
            "self.steps.map(s, s.weight).isSorted()"
            " && self.steps.all(a, self.steps.exists_one(b, b.weight == a.weight))",
            "strategy.canary.steps: weights must be strictly increasing",
            lambda s: all(a.weight < b.weight for a, b in itertools.pairwise(s.steps)),
            ".steps",
        ),
    )

    steps: list[CanaryStep] = Field(default_factory=_default_steps, min_length=1, max_length=20)
    """Traffic stages in order; weights strictly increasing within 1..100. Default 5, 25, 50, 100."""


class Strategy(ApiModel):
    """How a new revision replaces the stable one."""

    canary: CanaryStrategy = Field(default_factory=CanaryStrategy)
    """Staged traffic shifting with analysis between stages."""


class RelativeLimit(ApiModel):
    """A limit on the canary's value relative to the stable revision's, measured over the same window."""

    __rules__ = (
        Rule(
            "has(self.maxRatio) || has(self.minRatio)",
            "relativeToStable needs maxRatio or minRatio",
            lambda s: s.max_ratio is not None or s.min_ratio is not None,
        ),
        Rule(
            "!has(self.maxRatio) || !has(self.minRatio) || self.minRatio <= self.maxRatio",
            "relativeToStable.minRatio must not exceed maxRatio",
            lambda s: s.max_ratio is None or s.min_ratio is None or s.min_ratio <= s.max_ratio,
        ),
    )

    max_ratio: float | None = Field(default=None, gt=0)
    """The canary fails when its value exceeds stable x maxRatio (1.1 = at most 10% worse for latency)."""
    min_ratio: float | None = Field(default=None, gt=0)
    """The canary fails when its value falls below stable x minRatio (0.95 = keep 95% of stable accuracy)."""


class FailureFloor(ApiModel):
    """A hard limit checked before any statistics: obvious breakage fails at once."""

    min_failures: int = Field(default=10, ge=1)
    """Canary failures needed before the floor applies (raise it to switch the floor off)."""
    max_rate: float = Field(default=0.5, gt=0, le=1)
    """The canary fails at once when at least minFailures of its trials failed at this rate or more."""


class ProportionTest(ApiModel):
    """Canary against stable failure rates, with exact tests valid however often the controller looks.

    Fail: evidence that the canary fails more than ``maxRatio`` times as often as stable. Pass: its failure
    rate is shown to be at most ``maxRatio`` x stable + ``maxIncrease``. Each is wrong with probability at
    most ``alpha``; until one is shown the step waits. See docs/statistics.md.
    """

    errors_query: str = Field(min_length=1, max_length=4096)
    """PromQL template counting failures (for example 5xx responses) of one revision since the canary started.
    An empty result counts as zero failures when the total query has data."""
    total_query: str = Field(min_length=1, max_length=4096)
    """PromQL template counting all trials of one revision since the canary started."""
    max_ratio: float = Field(default=1.5, ge=1, le=100)
    """The tolerated relative increase: the canary may fail at most this many times as often as stable."""
    max_increase: float = Field(default=0.002, ge=0, le=1)
    """An absolute allowance on top of the ratio (0.002 = 0.2 points), so near-zero stable rates can pass."""
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    """The error rate of each verdict: a healthy canary is failed, and one beyond the margin passed, with
    probability at most alpha."""
    floor: FailureFloor = Field(default_factory=FailureFloor)
    """Fail at once, without statistics, on obvious breakage (by default 10 failures at a rate of 50%)."""


class QuantileTest(ApiModel):
    """A quantile of the canary (latency, for example) against stable's, from Prometheus histogram buckets.

    Pass: the canary's quantile is shown to be at most ``maxRatio`` x stable's + ``maxIncrease``; Fail:
    evidence that it is above that. Both are exact tests on the share of canary observations above that
    limit, valid under continuous looks, each wrong with probability at most ``alpha``.
    """

    buckets_query: str = Field(min_length=1, max_length=4096)
    """PromQL template returning one revision's cumulative bucket counts since the canary started, one sample
    per ``le``, e.g. ``sum by (le) (increase(model_request_duration_seconds_bucket{revision="{{revision}}"}
    [{{elapsed}}]))``."""
    quantile: float = Field(default=0.99, gt=0, lt=1)
    """The quantile compared (0.99 = p99)."""
    max_ratio: float = Field(default=1.2, ge=1, le=100)
    """The canary's quantile may be at most this many times stable's."""
    max_increase: float = Field(default=0.0, ge=0)
    """An absolute allowance on top of the ratio, in the metric's unit."""
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    """The error rate of each verdict."""


class GuardrailMetric(ApiModel):
    """A metric the canary must keep within limits for a step to pass."""

    __rules__ = (
        Rule(
            "[has(self.query), has(self.proportion), has(self.quantile)].filter(x, x).size() == 1",
            "a guardrail metric needs exactly one of query, proportion or quantile",
            lambda s: [s.query, s.proportion, s.quantile].count(None) == 2,
        ),
        Rule(
            "!has(self.query) || has(self.max) || has(self.min) || has(self.relativeToStable)",
            "a query guardrail needs max, min or relativeToStable",
            lambda s: s.query is None or s.max is not None or s.min is not None or s.relative_to_stable is not None,
        ),
        Rule(
            "!has(self.max) || !has(self.min) || self.min <= self.max",
            "guardrail min must not exceed max",
            lambda s: s.max is None or s.min is None or s.min <= s.max,
        ),
    )

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z][a-zA-Z0-9_-]*$")
    """A short name shown in status and metrics."""
    query: str | None = Field(default=None, max_length=4096)
    """PromQL template returning one number for one revision. Placeholders: {{revision}}, {{namespace}},
    {{name}}, {{window}} (the analysis window), {{elapsed}} (time since the canary started)."""
    max: float | None = None
    """Absolute upper limit on the canary's value."""
    min: float | None = None
    """Absolute lower limit on the canary's value."""
    relative_to_stable: RelativeLimit | None = None
    """Limits relative to the stable revision's value over the same window."""
    proportion: ProportionTest | None = None
    """A statistical comparison of failure proportions with stable, instead of a threshold."""
    quantile: QuantileTest | None = None
    """A statistical comparison of a histogram quantile (latency) with stable, instead of a threshold."""


class CriticalMetric(ApiModel):
    """A metric whose breach aborts the rollout at once, without waiting for the failure limit."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z][a-zA-Z0-9_-]*$")
    """A short name shown in status and Events."""
    query: str = Field(min_length=1, max_length=4096)
    """PromQL template for one revision (same placeholders as guardrails)."""
    max: float
    """The canary is aborted as soon as the value exceeds this."""


PolicyAction = Literal["Rollback", "Hold"]

DEFAULT_TRAFFIC_QUERY = 'sum(increase(model_requests_total{revision="{{revision}}"}[{{elapsed}}]))'


class AnalysisSpec(ApiModel):
    """Guardrails checked between traffic stages."""

    interval: Duration = "30s"
    """How often guardrails are evaluated while a step holds."""
    window: Duration = "1m"
    """The range used for rates in PromQL ({{window}})."""
    failure_limit: int = Field(default=2, ge=1)
    """Consecutive failed evaluations of threshold guardrails that roll the canary back (a single blip is
    tolerated). A statistical Fail (proportion, quantile) already accounts for noise and rolls back at once."""
    no_data_limit: int = Field(default=5, ge=1)
    """Consecutive evaluations without data (an empty or NaN result, Prometheus down or refusing) before
    onNoData applies. A canary that simply has no requests yet while stable has traffic is Waiting, not
    without data, and does not count."""
    on_no_data: PolicyAction = "Rollback"
    """What happens after noDataLimit: Rollback, or Hold at the current weight until data returns.
    Missing data never promotes."""
    max_step_duration: Duration | None = "1h"
    """How long a step with analysis may wait for its guardrails to pass; then onStepTimeout applies.
    A step whose decision is not expected within it at the observed traffic is marked Underpowered."""
    on_step_timeout: PolicyAction = "Hold"
    """After maxStepDuration: Hold (keep the weight and keep gathering evidence; the step still ends only
    on a Pass) or Rollback. A step never moves on without a Pass."""
    traffic_query: str = Field(default=DEFAULT_TRAFFIC_QUERY, min_length=1, max_length=4096)
    """PromQL template counting one revision's requests since the canary started: it tells a canary without
    requests yet (Waiting) from missing data, and gives the request rates behind each step's ETA."""
    metrics: list[GuardrailMetric] = Field(default_factory=list, max_length=32)
    """The guardrails; a step with analysis and no guardrails passes on its pause alone."""


class ModelDeploymentSpec(ApiModel):
    """The desired model version and how to roll it out."""

    __rules__ = (
        Rule(
            "!has(self.template.metadata) || !has(self.template.metadata.labels)"
            f" || self.template.metadata.labels.all(k, size(k) <= 317 && k.matches('{LABEL_KEY_PATTERN}'))",
            "template.metadata.labels: every key must be a qualified name (an optional DNS prefix and '/', then "
            "at most 63 letters, digits, '-', '_' or '.')",
            lambda s: _labels_valid(s.template),
            ".template.metadata.labels",
        ),
    )

    model: ModelIdentity
    """The model version to serve."""
    template: dict[str, Any] = Field(json_schema_extra=POD_TEMPLATE_SPEC)
    """The pod template (core/v1 PodTemplateSpec) of the model server."""
    replicas: int = Field(default=1, ge=1, le=1000)
    """Replicas of the stable revision (the canary is sized by its weight with the replicas router)."""
    port: int = Field(default=8080, ge=1, le=65535)
    """The container port the model server listens on; the Services expose it as port 80 named http."""
    smoke_test: SmokeTestSpec | None = None
    """Checks a new revision must pass before it gets traffic; none when unset."""
    strategy: Strategy = Field(default_factory=Strategy)
    """The traffic stages."""
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    """Guardrails between stages."""
    circuit_breaker: list[CriticalMetric] = Field(default_factory=list, max_length=16)
    """Metrics that abort the rollout at once when breached."""
    traffic_routing: TrafficRouting = Field(default_factory=TrafficRouting)
    """How traffic is split between stable and canary."""
    revision_history_limit: int = Field(default=10, ge=1, le=100)
    """How many old revisions (ControllerRevisions) to keep for history and undo."""
    paused: bool = False
    """Hold the rollout where it is; traffic does not move until unpaused."""


Phase = Literal["Pending", "SmokeTesting", "Progressing", "Paused", "Healthy", "Degraded", "Failed"]
Outcome = Literal["Pending", "Stable", "Superseded", "Degraded", "SmokeFailed", "Aborted"]
Verdict = Literal["Pass", "Fail", "Waiting", "NoData"]
"""Pass and Fail are shown with evidence; Waiting: not enough evidence yet (holds the step); NoData: the
queries returned nothing usable (empty, NaN, or Prometheus failed)."""


class RevisionRef(StatusModel):
    """A revision as status names it."""

    number: int
    """The revision number (ControllerRevision.revision)."""
    version_id: str
    """The version id: revision number and content hash, for example 3-5f1c2a9e."""
    hash: str
    """The content hash of model identity and pod template."""
    model_version: str
    """spec.model.version of this revision."""


class SmokeTestStatus(StatusModel):
    """The smoke-test Job of the current revision."""

    jobs: list[str] = Field(default_factory=list)
    """The Jobs running the smoke tests (built-in checks and your own template)."""
    attempt: int = 1
    """Which try of this revision's smoke tests (retry starts another)."""
    state: Literal["Pending", "Running", "Passed", "Failed"] = "Pending"
    """Where the smoke tests are."""
    started_at: datetime | None = None
    """When the Job was created."""
    finished_at: datetime | None = None
    """When the outcome was read."""
    reason: str | None = None
    """Why the tests failed, from the Job's pod when it said."""


class SequentialEvidence(StatusModel):
    """The running state of a guardrail's sequential tests, kept in status so a restart resumes them."""

    consumed: list[float] = Field(default_factory=list)
    """Cumulative counts already fed to the harm test: canary bad, canary trials, stable bad, stable trials."""
    log_sums: list[float | None] = Field(default_factory=list)
    """The harm test's log evidence per alternative (null: none yet)."""
    looks: int = 0
    """Looks the harm test has taken."""
    step: int | None = None
    """The step index of the last look."""
    step_starts: int = 0
    """Later steps whose first look the harm test has taken."""
    peak: float = 0.0
    """The largest log e-value seen (the always-valid p-value is exp(-peak))."""
    baseline: float | None = None
    """Stable's rate (proportion) or quantile (quantile test), frozen once stable has enough data."""
    limit: float | None = None
    """The quantile test's frozen limit: the bucket edge the canary's quantile is compared with."""


class MetricResult(StatusModel):
    """One guardrail's latest evaluation, with the numbers behind it."""

    name: str
    """The guardrail."""
    verdict: Verdict
    """Pass, Fail, Waiting (not enough evidence yet) or NoData."""
    value: float | None = None
    """The canary's value."""
    stable_value: float | None = None
    """The stable revision's value over the same window, when the guardrail is relative."""
    limit: str | None = None
    """The limit applied, in words (for example "<= 1.10 x stable = 0.231")."""
    p_value: float | None = None
    """The always-valid p-value of "no harm" of a statistical guardrail."""
    interval: list[float] | None = None
    """Always-valid bounds on canary minus stable (failure rates), or on the canary's share of observations
    above the quantile limit."""
    alpha: float | None = None
    """The error rate the verdict carries, for a statistical guardrail."""
    canary_samples: float | None = None
    """Canary trials (requests, observations) seen since the canary started."""
    stable_samples: float | None = None
    """Stable trials seen over the same time."""
    needed_samples: float | None = None
    """About how many more canary trials a Pass needs at the current rates (Waiting only)."""
    evidence: SequentialEvidence | None = None
    """What the sequential tests carry from look to look."""
    message: str | None = None
    """Why it failed, waits or has no data."""


class AnalysisStatus(StatusModel):
    """The latest analysis of the current step."""

    last_run_at: datetime | None = None
    """When guardrails were last evaluated."""
    verdict: Verdict | None = None
    """The combined verdict of that evaluation."""
    consecutive_failures: int = 0
    """Failed evaluations in a row."""
    consecutive_no_data: int = 0
    """Evaluations without data in a row."""
    passes: int = 0
    """Passed evaluations in the current step."""
    metrics: list[MetricResult] = Field(default_factory=list)
    """Per-guardrail results of the last evaluation."""
    canary_request_rate: float | None = None
    """Canary requests per second at the current weight, as observed."""
    needed_samples: float | None = None
    """About how many more canary requests the slowest guardrail needs to pass."""
    eta_seconds: float | None = None
    """About how long that takes at the observed canary request rate."""
    timed_out: bool = False
    """The step ran past maxStepDuration without a Pass (and is held, by onStepTimeout: Hold)."""


class RevisionRecord(StatusModel):
    """One entry of the revision history summary."""

    number: int
    """The revision number."""
    version_id: str
    """The version id."""
    model_version: str
    """The model version."""
    digest: str | None = None
    """The artifact digest."""
    created_at: datetime
    """When the revision was created."""
    outcome: Outcome
    """What became of it."""
    reason: str | None = None
    """Why, when it was degraded, aborted or failed."""


class ModelDeploymentStatus(ResourceStatus):
    """What the operator observed and did. All rollout progress lives here, so a restart resumes."""

    observed_generation: int | None = None
    """The spec generation last acted on."""
    phase: Phase = "Pending"
    """Pending, SmokeTesting, Progressing, Paused, Healthy, Degraded or Failed."""
    message: str | None = None
    """A sentence on the current state."""
    current_revision: RevisionRef | None = None
    """The revision the spec asks for."""
    stable_revision: RevisionRef | None = None
    """The revision serving the rest of the traffic."""
    canary_weight: int = 0
    """The share of traffic on the current revision while it is a canary."""
    current_step_index: int | None = None
    """The index into strategy.canary.steps of the step in progress."""
    step_started_at: datetime | None = None
    """When the current step's weight was verified in place."""
    canary_started_at: datetime | None = None
    """When the canary first received traffic."""
    smoke_test: SmokeTestStatus | None = None
    """The current revision's smoke tests."""
    analysis: AnalysisStatus = Field(default_factory=AnalysisStatus)
    """The latest guardrail evaluation."""
    aborted: bool = False
    """The current revision was aborted (by a person or automatically) and gets no traffic until retried."""
    history: list[RevisionRecord] = Field(default_factory=list)
    """The revision history, newest first."""
    last_action_id: str | None = None
    """The id of the last one-off action consumed, so each is applied exactly once."""
    conditions: list[Condition] = Field(default_factory=list)
    """Available, Progressing, Degraded, SmokeTestPassed, AnalysisPassing, Paused, InvalidSpec, and Reconciled
    (False while a reconciliation fails: the reason, and the object and field the API server refused)."""


PRINTER_COLUMNS = [
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
    {"name": "Version", "type": "string", "jsonPath": ".spec.model.version"},
    {"name": "Revision", "type": "string", "jsonPath": ".status.currentRevision.versionId"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stableRevision.versionId"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
