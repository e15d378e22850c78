"""Experiment: champion against challengers on live traffic, with a statistically sound decision."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from modelrollout.api.base import ApiModel, Duration, Name, Rule, StatusModel
from modelrollout.api.common import TrafficRouting
from modelrollout.api.conditions import Condition
from modelrollout.api.status import ResourceStatus

KIND = "Experiment"
PLURAL = "experiments"

ArmName = str
QUERY_MAX_LENGTH = 4096
"""PromQL templates are short; a bound keeps a spec (and the status messages quoting it) small."""
HEADER_PATTERN = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$"
"""An HTTP header name (RFC 7230 token), as HTTPRoute header matches require."""
MIN_STANDARDISED_EFFECT = 1e-6
"""The smallest minimum detectable effect, in standard deviations of one observation: below it the sample
size (about 16 / effect**2 per arm) no longer fits a 64-bit integer, and no experiment could reach it."""


class Arm(ApiModel):
    """One model in the experiment: the stable revision of a ModelDeployment."""

    name: ArmName = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """The arm's name, used in status, headers and metrics."""
    model_deployment: Name
    """The ModelDeployment, in the same namespace, whose stable revision serves this arm."""
    weight: int = Field(default=50, ge=0, le=100)
    """The share of traffic (weights of all arms are normalised)."""


class Assignment(ApiModel):
    """Consistent assignment: a user always reaches the same arm."""

    header: str = Field(default="x-user-id", min_length=1, max_length=256, pattern=HEADER_PATTERN)
    """The request header carrying the assignment key (a user id)."""
    arm_header: str = Field(default="x-modelrollout-arm", min_length=1, max_length=256, pattern=HEADER_PATTERN)
    """The header clients set to the arm's name, computed with ``modelrollout.stats.hashing.assign_arm`` from the
    user id, the arms' weights (champion first, then challengers in order) and the salt; the router sends such
    requests to that arm, and requests without it are split by weight."""
    salt: str | None = Field(default=None, max_length=253)
    """Salt of the hash; the experiment's namespace/name when unset, so experiments are independent."""


MetricKind = Literal["proportion", "mean"]


class ExperimentMetric(ApiModel):
    """A metric measured per arm from Prometheus. Placeholders: {{revision}}, {{arm}}, {{namespace}}, {{name}},
    {{elapsed}} (time since the split started: totals since the start) and {{window}}."""

    __rules__: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "self.kind != 'proportion' || (has(self.successQuery) && has(self.totalQuery))",
            "a proportion metric needs successQuery and totalQuery",
            lambda s: s.kind != "proportion" or (s.success_query is not None and s.total_query is not None),
        ),
        Rule(
            "self.kind != 'mean' || (has(self.sumQuery) && has(self.sumSquaresQuery) && has(self.totalQuery))",
            "a mean metric needs sumQuery, sumSquaresQuery and totalQuery",
            lambda s: s.kind != "mean" or None not in (s.sum_query, s.sum_squares_query, s.total_query),
        ),
    )

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z][a-zA-Z0-9_-]*$")
    """A short name."""
    kind: MetricKind
    """proportion (successes out of trials) or mean (from count, sum and sum of squares)."""
    success_query: str | None = Field(default=None, min_length=1, max_length=QUERY_MAX_LENGTH)
    """PromQL template: successes of one arm since the start."""
    total_query: str | None = Field(default=None, min_length=1, max_length=QUERY_MAX_LENGTH)
    """PromQL template: trials (or observations) of one arm since the start."""
    sum_query: str | None = Field(default=None, min_length=1, max_length=QUERY_MAX_LENGTH)
    """PromQL template: sum of the observed values of one arm."""
    sum_squares_query: str | None = Field(default=None, min_length=1, max_length=QUERY_MAX_LENGTH)
    """PromQL template: sum of squared observed values of one arm."""
    higher_is_better: bool = True
    """Whether a larger value is an improvement."""


class PrimaryMetric(ExperimentMetric):
    """The metric the decision rests on, with what the design needs."""

    __rules__ = (
        *ExperimentMetric.__rules__,
        Rule(
            "self.kind != 'mean' || has(self.baselineStd)",
            "a mean primary metric needs baselineStd for the sample size",
            lambda s: s.kind != "mean" or s.baseline_std is not None,
        ),
        Rule(
            "self.kind != 'proportion' || (self.higherIsBetter"
            " ? self.baseline * (1.0 + self.minimumDetectableEffect) < 1.0 : self.minimumDetectableEffect < 1.0)",
            "a proportion's baseline, and the baseline improved by the minimum detectable effect, must lie in (0, 1)",
            lambda s: (
                s.kind != "proportion"
                or (
                    s.baseline * (1.0 + s.minimum_detectable_effect) < 1.0
                    if s.higher_is_better
                    else s.minimum_detectable_effect < 1.0
                )
            ),
        ),
        Rule(
            "self.kind != 'proportion' || self.baseline < 1.0",
            "a proportion's baseline must lie in (0, 1)",
            lambda s: s.kind != "proportion" or s.baseline < 1.0,
            ".baseline",
        ),
        Rule(
            "self.kind != 'proportion' || self.baseline >= 1.0 || (self.baseline * self.minimumDetectableEffect)"
            f" * (self.baseline * self.minimumDetectableEffect) >= {MIN_STANDARDISED_EFFECT**2!r}"
            " * self.baseline * (1.0 - self.baseline)",
            f"minimumDetectableEffect: too small to ever detect (under {MIN_STANDARDISED_EFFECT:g} standard deviations "
            "of the baseline rate; the sample size would not fit a 64-bit integer)",
            lambda s: (
                s.kind != "proportion"
                or s.baseline >= 1.0
                or (s.baseline * s.minimum_detectable_effect) ** 2
                >= MIN_STANDARDISED_EFFECT**2 * s.baseline * (1.0 - s.baseline)
            ),
            ".minimumDetectableEffect",
        ),
        Rule(
            "self.kind != 'mean' || !has(self.baselineStd)"
            f" || self.baseline * self.minimumDetectableEffect >= {MIN_STANDARDISED_EFFECT!r} * self.baselineStd",
            f"minimumDetectableEffect: too small to ever detect (under {MIN_STANDARDISED_EFFECT:g} x baselineStd; "
            "the sample size would not fit a 64-bit integer)",
            lambda s: (
                s.kind != "mean"
                or s.baseline_std is None
                or s.baseline * s.minimum_detectable_effect >= MIN_STANDARDISED_EFFECT * s.baseline_std
            ),
            ".minimumDetectableEffect",
        ),
    )

    baseline: float = Field(gt=0, le=1e15)
    """The champion's expected rate (proportion) or mean, for the sample size."""
    baseline_std: float | None = Field(default=None, gt=0, le=1e15)
    """The standard deviation of one observation (mean metrics)."""
    minimum_detectable_effect: float = Field(gt=0, le=10)
    """The smallest relative improvement worth detecting (0.02 = 2% of baseline)."""


class Guardrail(ApiModel):
    """A limit a challenger must respect; a breach stops the experiment at once."""

    __rules__ = (
        Rule(
            "has(self.max) || has(self.maxRatioToChampion) || has(self.minRatioToChampion)",
            "a guardrail needs max, maxRatioToChampion or minRatioToChampion",
            lambda s: any(v is not None for v in (s.max, s.max_ratio_to_champion, s.min_ratio_to_champion)),
        ),
    )

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z][a-zA-Z0-9_-]*$")
    """A short name."""
    query: str = Field(min_length=1, max_length=QUERY_MAX_LENGTH)
    """PromQL template for one arm (same placeholders as metrics, plus {{window}})."""
    max: float | None = None
    """Absolute upper limit."""
    max_ratio_to_champion: float | None = Field(default=None, gt=0)
    """Upper limit relative to the champion (1.1 = latency at most 110%)."""
    min_ratio_to_champion: float | None = Field(default=None, gt=0)
    """Lower limit relative to the champion (0.95 = quality at least 95%)."""


class DecisionSpec(ApiModel):
    """What to do with the result."""

    auto_promote: bool = False
    """Promote the winner by a staged rollout on the champion's ModelDeployment (this edits that spec:
    keep it off where Git owns the spec and apply the recommendation by pull request)."""


Mode = Literal["Split", "Shadow"]
Correction = Literal["holm", "benjaminiHochberg"]


class ExperimentSpec(ApiModel):
    """Champion against challengers, designed before traffic moves."""

    __rules__ = (
        Rule(
            "self.challengers.all(c, c.name != self.champion.name)"
            " && self.challengers.all(a, self.challengers.exists_one(b, b.name == a.name))",
            "arm names must be unique (champion and challengers)",
            lambda s: len({a.name for a in (s.champion, *s.challengers)}) == 1 + len(s.challengers),
            ".challengers",
        ),
        Rule(
            "self.challengers.all(c, c.modelDeployment != self.champion.modelDeployment)"
            " && self.challengers.all(a, self.challengers.exists_one(b, b.modelDeployment == a.modelDeployment))",
            "every arm needs its own ModelDeployment (an A/A test uses two with the same model)",
            lambda s: len({a.model_deployment for a in (s.champion, *s.challengers)}) == 1 + len(s.challengers),
            ".challengers",
        ),
        Rule(
            "self.mode != 'Shadow' || size(self.challengers) == 1",
            "shadow mode mirrors to exactly one challenger",
            lambda s: s.mode != "Shadow" or len(s.challengers) == 1,
            ".challengers",
        ),
        Rule(
            "self.mode == 'Shadow' || (self.champion.weight > 0 && self.challengers.all(c, c.weight > 0))",
            "in Split mode every arm needs a positive weight",
            lambda s: s.mode == "Shadow" or all(a.weight > 0 for a in (s.champion, *s.challengers)),
            ".challengers",
        ),
        Rule(
            "self.trafficRouting.router != 'replicas'",
            "experiments need the gatewayAPI or istio router: the replicas router cannot give sticky "
            "assignment or mirroring",
            lambda s: s.traffic_routing.router != "replicas",
            ".trafficRouting.router",
        ),
    )

    champion: Arm
    """The model in production."""
    challengers: list[Arm] = Field(min_length=1, max_length=8)
    """The candidates."""
    mode: Mode = "Split"
    """Split: arms serve their share of users. Shadow: the challenger receives a mirror of champion traffic and
    its answers are discarded; it can be judged on guardrails and on labels that arrive later."""
    traffic_routing: TrafficRouting
    """The router (gatewayAPI or istio)."""
    assignment: Assignment = Field(default_factory=Assignment)
    """Consistent assignment by header."""
    primary_metric: PrimaryMetric
    """The metric the decision rests on."""
    secondary_metrics: list[ExperimentMetric] = Field(default_factory=list, max_length=16)
    """Reported with multiple-testing correction; they do not decide."""
    guardrails: list[Guardrail] = Field(default_factory=list, max_length=16)
    """Limits that stop the experiment at once when a challenger breaches them."""
    alpha: float = Field(default=0.05, ge=0.0001, lt=0.5)
    """The false positive rate (two-sided)."""
    power: float = Field(default=0.8, gt=0.5, le=0.9999)
    """The chance to detect the minimum detectable effect."""
    sequential: bool = True
    """Always-valid sequential testing (look any time); a fixed-horizon test at the planned size when false."""
    correction: Correction = "holm"
    """The multiple-testing correction of the reported p-values of secondary metrics (across challengers and
    metrics). The decision on the primary metric always controls the family-wise error: Holm (fixed horizon)
    or Bonferroni (sequential, which keeps the confidence sequences simultaneously valid)."""
    srm_p_value: float = Field(default=0.001, gt=0, lt=1)
    """Sample ratio mismatch is flagged below this p-value."""
    min_samples: int = Field(default=100, ge=1)
    """No verdict on the primary metric before every arm has this many observations."""
    traffic_rate_query: str | None = Field(default=None, min_length=1, max_length=QUERY_MAX_LENGTH)
    """PromQL template: observations per second of one arm, for the planned duration. When unset, the primary
    metric's total query over the last {{window}} divided by the window."""
    window: Duration = "1m"
    """The range of rate windows ({{window}}) in guardrails and the traffic rate."""
    interval: Duration = "1m"
    """How often to analyse."""
    scrape_interval: Duration | None = None
    """How often Prometheus scrapes the arms' servers (default: ``interval``). A count read at a look trails the
    traffic by up to one scrape, differently per arm, so the sample ratio check allows each arm this much of its
    traffic: set the real scrape interval for a sharper check."""
    min_duration: Duration = "0s"
    """No decision before this (to cover weekly cycles, for example)."""
    max_duration: Duration = "7d"
    """Decide Inconclusive when no verdict by then."""
    decision: DecisionSpec = Field(default_factory=DecisionSpec)
    """What to do with the result."""


Outcome = Literal["Promote", "KeepChampion", "Inconclusive", "Invalid"]
ExperimentPhase = Literal["Pending", "Running", "Concluded", "Stopped", "Failed"]


class ArmPlan(StatusModel):
    """What one arm needs."""

    name: str
    """The arm."""
    share: float
    """Its share of the traffic that enters the experiment (1 for a shadow: it gets a copy of everything)."""
    samples: int
    """Observations it needs."""


class Design(StatusModel):
    """The experiment's plan, computed before traffic moves."""

    samples_per_arm: int
    """Observations the most demanding arm needs to detect the minimum detectable effect with the given power."""
    method: str | None = None
    """The test the plan is for: mSPRT (always valid) or a fixed-horizon test."""
    minimum_effect: float | None = None
    """The minimum detectable effect as an absolute difference of the primary metric."""
    alpha_per_comparison: float | None = None
    """The false positive rate of each challenger's test (alpha over the number of challengers)."""
    arms: list[ArmPlan] = Field(default_factory=list)
    """Per-arm shares and sample sizes."""
    traffic_rate: float | None = None
    """Observed requests per second entering the experiment."""
    expected_duration_seconds: float | None = None
    """How long reaching the sample size takes at that rate."""


class SequentialStatus(StatusModel):
    """The mSPRT's memory between looks: running p-value and confidence sequence (uncorrected)."""

    p_value: float = 1.0
    """The always-valid p-value so far (running minimum)."""
    low: float | None = None
    """Lower end of the confidence sequence, intersected over looks (None: unbounded)."""
    high: float | None = None
    """Upper end of the confidence sequence, intersected over looks (None: unbounded)."""
    looks: int = 0
    """Looks taken."""


class GuardrailResult(StatusModel):
    """A guardrail's last reading for one challenger."""

    name: str
    """The guardrail."""
    value: float | None = None
    """The challenger's value."""
    champion_value: float | None = None
    """The champion's value (relative limits)."""
    limit: str | None = None
    """The limits in force."""
    breached: bool = False
    """Whether a limit was breached."""
    message: str | None = None
    """What was wrong, or why there is no value."""


class ArmResult(StatusModel):
    """One arm's numbers on the primary metric."""

    name: str
    """The arm."""
    revision: str | None = None
    """The stable revision of its ModelDeployment when the experiment started (the metrics' revision label)."""
    samples: int = 0
    """Observations."""
    counted_from: float | None = None
    """Its observations at the first look that measured every arm. The sample ratio check counts from there:
    traffic before an arm's first scrape (a target discovered late, a counter born mid-experiment) is lost
    unevenly between the arms and would look like a mismatch."""
    estimate: float | None = None
    """The rate or mean."""
    difference: float | None = None
    """Challenger minus champion."""
    interval: list[float] | None = None
    """Confidence interval (or sequence) of the difference."""
    relative_interval: list[float] | None = None
    """Confidence interval of the ratio to the champion, minus one."""
    p_value: float | None = None
    """The (always-valid, when sequential) p-value, corrected for multiple testing."""
    verdict: str | None = None
    """Pass (significantly better), Fail (significantly worse) or Inconclusive."""
    sequential: SequentialStatus | None = None
    """The sequential test's state (sequential experiments)."""
    guardrails: list[GuardrailResult] = Field(default_factory=list)
    """The guardrails' last readings."""
    guardrails_breached: list[str] = Field(default_factory=list)
    """Guardrails this arm breached."""


class SecondaryResult(StatusModel):
    """A secondary metric's comparison of one challenger with the champion."""

    metric: str
    """The metric."""
    arm: str
    """The challenger."""
    difference: float | None = None
    """Challenger minus champion."""
    interval: list[float] | None = None
    """Confidence interval (or sequence) of the difference, uncorrected."""
    p_value: float | None = None
    """Corrected p-value."""
    significant: bool = False
    """Significant after correction."""
    sequential: SequentialStatus | None = None
    """The sequential test's state (sequential experiments)."""


class SeriesPoint(StatusModel):
    """One look at one challenger: the effect estimate and its confidence sequence, for the report's plot."""

    at: datetime
    """When."""
    arm: str
    """The challenger."""
    estimate: float
    """Challenger minus champion."""
    low: float | None = None
    """Lower end of the interval (None: unbounded)."""
    high: float | None = None
    """Upper end of the interval (None: unbounded)."""


class DecisionStatus(StatusModel):
    """The verdict."""

    outcome: Outcome
    """Promote, KeepChampion, Inconclusive or Invalid."""
    winner: str | None = None
    """The arm to promote."""
    reason: str
    """Why, with numbers."""
    decided_at: datetime
    """When."""
    promoted: bool = False
    """Whether the promotion was started."""
    recommendation: str | None = None
    """What to do next, when the operator does not do it itself."""


SERIES_LIMIT = 200
"""Looks kept per challenger in ``status.series``: enough for the plot, small enough for etcd."""


class ExperimentStatus(ResourceStatus):
    """Progress and results."""

    observed_generation: int | None = None
    """The spec generation last acted on."""
    phase: ExperimentPhase = "Pending"
    """Pending, Running, Concluded, Stopped or Failed."""
    started_at: datetime | None = None
    """When the split was verified in force: elapsed time and durations count from here."""
    design: Design | None = None
    """The plan."""
    arms: list[ArmResult] = Field(default_factory=list)
    """Per-arm numbers."""
    secondary: list[SecondaryResult] = Field(default_factory=list)
    """Secondary metrics."""
    srm_p_value: float | None = None
    """Sample ratio mismatch p-value of the arm counts."""
    srm_mismatches: int = 0
    """Consecutive looks whose arm counts mismatched the allocation (three make the result Invalid)."""
    decision: DecisionStatus | None = None
    """The verdict, once reached."""
    last_analysis_at: datetime | None = None
    """When results were last computed."""
    looks: int = 0
    """Analyses with data from every arm."""
    series: list[SeriesPoint] = Field(default_factory=list)
    """The effect estimate and its interval per look and challenger (the last 200 looks of each)."""
    message: str | None = None
    """A sentence on the current state."""
    conditions: list[Condition] = Field(default_factory=list)
    """Designed, Underpowered, ArmsReady, TrafficSplit, MetricsAvailable, SampleRatioMismatch, GuardrailBreached,
    Concluded, InvalidSpec, and Reconciled (False while a reconciliation fails, with the reason)."""


PRINTER_COLUMNS = [
    {"name": "Champion", "type": "string", "jsonPath": ".spec.champion.name"},
    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Decision", "type": "string", "jsonPath": ".status.decision.outcome"},
    {"name": "Winner", "type": "string", "jsonPath": ".status.decision.winner"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
