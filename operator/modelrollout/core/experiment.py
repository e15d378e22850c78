"""The Experiment state machine: (spec, status, observations) -> (status, traffic, events, promotion).

Like :mod:`modelrollout.core.rollout`, nothing here performs I/O or reads the
clock. The engine reads the arms' ModelDeployments and runs the queries this
module plans, calls :func:`decide`, writes the returned status and puts the
returned :class:`Traffic` in force. Every number a decision rests on comes from
:mod:`modelrollout.stats`; this module only says when to look, what the looks
mean together, and when to stop.

The life of an experiment:

``Pending``
    Waits until every arm's ModelDeployment has a stable revision, then designs
    the test (sample size per arm, and from the observed traffic rate the
    expected duration) before any traffic moves.
``Running``
    Traffic is split (or mirrored, in shadow mode); ``startedAt`` is set only once
    the router reads back the split. Every ``interval`` one look: guardrails,
    sample ratio mismatch, the primary comparison (mSPRT state carried in status
    across looks, or a fixed-horizon test at the planned size), secondary metrics.
``Concluded`` / ``Stopped`` / ``Failed``
    Terminal: traffic back to 100% champion. Concluded carries Promote,
    KeepChampion or Inconclusive; Stopped is a guardrail breach (KeepChampion);
    Failed is Invalid (sample ratio mismatch, missing data, an arm that changed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from modelrollout.api.base import duration_seconds, format_duration
from modelrollout.api.conditions import ConditionStatus, set_condition
from modelrollout.api.experiment import (
    SERIES_LIMIT,
    ArmPlan,
    ArmResult,
    DecisionStatus,
    Design,
    ExperimentMetric,
    ExperimentPhase,
    ExperimentSpec,
    ExperimentStatus,
    Guardrail,
    GuardrailResult,
    Outcome,
    SecondaryResult,
    SequentialStatus,
    SeriesPoint,
)
from modelrollout.core.decisions import Event, EventType
from modelrollout.core.queries import CANARY, STABLE, Answer, Buckets, Missing, QueryKey, QueryRequest
from modelrollout.stats import power
from modelrollout.stats.comparisons import (
    SummaryStats,
    ratio_of_means,
    ratio_of_proportions,
    two_proportions,
    welch_t_test,
)
from modelrollout.stats.experiment import MeanArm, ProportionArm, analyze_fixed
from modelrollout.stats.multiple import benjamini_hochberg, holm
from modelrollout.stats.power import SampleSize, sample_size_two_means, sample_size_two_proportions
from modelrollout.stats.results import CheckVerdict, Interval, RatioEstimate
from modelrollout.stats.sequential import (
    ArmTotals,
    MsprtConfig,
    SequentialResult,
    SequentialState,
    msprt_look,
    msprt_result,
    msprt_sample_size,
)
from modelrollout.stats.srm import SrmResult, sample_ratio_mismatch

TERMINAL: tuple[ExperimentPhase, ...] = ("Concluded", "Stopped", "Failed")
SRM_LOOKS = 3
"""Consecutive mismatching looks that make a result Invalid.

Counts read from Prometheus at one instant are off by up to a scrape interval's
worth of traffic, differently per target (scrape phases differ), which early on
can look like a mismatch; a real one persists and grows, a timing artefact fades."""
SEQUENTIAL_METHOD = "mSPRT (always valid)"


# --- what goes in and out ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observations:
    """What the engine saw this tick.

    ``answers`` holds the answers to whichever plan the engine ran this tick: the
    design's (:func:`plan_design`, while there is no design) or a look's
    (:func:`plan_analysis`, when :func:`analysis_due`); None when it ran none.
    """

    now: datetime
    generation: int
    revisions: Mapping[str, str | None]
    """Arm -> its ModelDeployment's stable revision hash; None when there is none (yet)."""
    answers: Mapping[QueryKey, Answer] | None = None
    router_verified: bool | None = None
    """Whether the router reads back the split asked for; None when the engine did not check."""
    router_problem: tuple[str, str] | None = None
    """(reason, message) when the router could not be used."""


@dataclass(frozen=True, slots=True)
class Traffic:
    """The split the engine puts in force, in arm names; the engine maps arms to Services.

    ``weights`` are the spec's relative weights (the engine turns them into percentages);
    ``pinned`` asks for one header route per arm, ``assignment.armHeader: <arm>``.
    """

    weights: tuple[tuple[str, int], ...]
    mirror: str | None = None
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    status: ExperimentStatus
    traffic: Traffic | None
    """None: leave the router alone (nothing was split yet)."""
    events: tuple[Event, ...] = ()
    promote: str | None = None
    """The winning arm whose ModelDeployment spec the engine copies onto the champion's (autoPromote)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Who is measured: the experiment and its arms' revision label values."""

    namespace: str
    name: str
    revisions: Mapping[str, str]
    elapsed_seconds: float


# --- planning queries -------------------------------------------------------------------------------------------


def arm_names(spec: ExperimentSpec) -> list[str]:
    """Champion first, then challengers in spec order: the order weights and hashing use."""
    return [spec.champion.name, *(c.name for c in spec.challengers)]


def query_key(spec: ExperimentSpec, metric: str, arm: str, part: str) -> QueryKey:
    """The key of one number; the champion plays the stable role, challengers the canary role."""
    return QueryKey(metric, STABLE if arm == spec.champion.name else CANARY, f"{part}@{arm}")


def _variables(spec: ExperimentSpec, target: Target, arm: str) -> dict[str, str]:
    return {
        "revision": target.revisions[arm],
        "arm": arm,
        "namespace": target.namespace,
        "name": target.name,
        "elapsed": format_duration(max(target.elapsed_seconds, 1.0)),
        "window": spec.window,
    }


RATE = "traffic-rate"


def plan_design(spec: ExperimentSpec, target: Target) -> list[QueryRequest]:
    """The traffic rate of every arm with a revision, before any traffic moves.

    Without ``trafficRateQuery`` the primary metric's total query is read with
    ``{{elapsed}}`` set to the window: observations in the last window.
    """
    requests = []
    for arm in arm_names(spec):
        if arm not in target.revisions:
            continue
        variables = _variables(spec, target, arm)
        if spec.traffic_rate_query is not None:
            template = spec.traffic_rate_query
        else:
            assert spec.primary_metric.total_query is not None  # the metric's rules guarantee it
            template = spec.primary_metric.total_query
            variables["elapsed"] = spec.window
        requests.append(QueryRequest(query_key(spec, RATE, arm, "value"), template, variables))
    return requests


def _metric_parts(metric: ExperimentMetric) -> list[tuple[str, str]]:
    parts = [("total", metric.total_query)]
    if metric.kind == "proportion":
        parts.append(("successes", metric.success_query))
    else:
        parts += [("sum", metric.sum_query), ("squares", metric.sum_squares_query)]
    return [(part, template) for part, template in parts if template is not None]


def plan_analysis(spec: ExperimentSpec, target: Target) -> list[QueryRequest]:
    """Every query one look needs: guardrails first (safety), then the primary and secondary metrics."""
    requests: list[QueryRequest] = []
    for guardrail in spec.guardrails:
        relative = guardrail.max_ratio_to_champion is not None or guardrail.min_ratio_to_champion is not None
        for arm in arm_names(spec):
            if arm != spec.champion.name or relative:
                variables = _variables(spec, target, arm)
                requests.append(QueryRequest(query_key(spec, guardrail.name, arm, "value"), guardrail.query, variables))
    for metric in (spec.primary_metric, *spec.secondary_metrics):
        for arm in arm_names(spec):
            variables = _variables(spec, target, arm)
            for part, template in _metric_parts(metric):
                requests.append(QueryRequest(query_key(spec, metric.name, arm, part), template, variables))
    return requests


def analysis_due(spec: ExperimentSpec, status: ExperimentStatus, now: datetime) -> bool:
    """Whether the engine should run :func:`plan_analysis` this tick."""
    if status.phase != "Running" or status.started_at is None:
        return False
    last = status.last_analysis_at
    return last is None or (now - last).total_seconds() >= duration_seconds(spec.interval)


def design_due(status: ExperimentStatus) -> bool:
    """Whether the engine should run :func:`plan_design` this tick."""
    return status.phase == "Pending" and status.design is None


# --- design -----------------------------------------------------------------------------------------------------


def shares(spec: ExperimentSpec) -> dict[str, float]:
    """Each arm's share of the traffic entering the experiment; a shadow sees all of it, as the champion does."""
    if spec.mode == "Shadow":
        return dict.fromkeys(arm_names(spec), 1.0)
    arms = (spec.champion, *spec.challengers)
    total = sum(arm.weight for arm in arms)
    return {arm.name: arm.weight / total for arm in arms}


def minimum_effect(spec: ExperimentSpec) -> float:
    """The relative MDE as an absolute difference, signed in the direction of an improvement."""
    metric = spec.primary_metric
    size = metric.baseline * metric.minimum_detectable_effect
    return size if metric.higher_is_better else -size


def comparison_alpha(spec: ExperimentSpec) -> float:
    """Each challenger's test runs at alpha / challengers (Bonferroni), as :mod:`modelrollout.stats.experiment`."""
    return spec.alpha / len(spec.challengers)


def design(spec: ExperimentSpec, traffic_rate: float | None) -> Design:
    """Sample size per arm for the primary metric's MDE at alpha and power, and how long it takes."""
    metric = spec.primary_metric
    effect = minimum_effect(spec)
    alpha = comparison_alpha(spec)
    share = shares(spec)
    champion = spec.champion.name
    if metric.kind == "proportion":
        variances = (
            metric.baseline * (1 - metric.baseline),
            (metric.baseline + effect) * (1 - metric.baseline - effect),
        )
    else:
        assert metric.baseline_std is not None  # the metric's rules guarantee it
        variances = (metric.baseline_std**2, metric.baseline_std**2)
    needed: dict[str, int] = {}
    durations: list[float] = []
    for challenger in spec.challengers:
        ratio = share[challenger.name] / share[champion]
        if spec.sequential:
            n = msprt_sample_size(effect, *variances, mixing_sd=abs(effect), alpha=alpha, power=spec.power, ratio=ratio)
            size = SampleSize(champion=math.ceil(n), challenger=math.ceil(n * ratio))
        elif metric.kind == "proportion":
            size = sample_size_two_proportions(metric.baseline, effect, alpha=alpha, power=spec.power, ratio=ratio)
        else:
            assert metric.baseline_std is not None
            size = sample_size_two_means(metric.baseline_std, effect, alpha=alpha, power=spec.power, ratio=ratio)
        needed[champion] = max(needed.get(champion, 0), size.champion)
        needed[challenger.name] = size.challenger
        if traffic_rate:
            durations.append(power.duration_seconds(size, traffic_rate, (share[champion], share[challenger.name])))
    method = SEQUENTIAL_METHOD
    if not spec.sequential:
        method = "two-proportion z-test" if metric.kind == "proportion" else "Welch t-test"
    return Design(
        samples_per_arm=max(needed.values()),
        method=method,
        minimum_effect=effect,
        alpha_per_comparison=alpha,
        arms=[ArmPlan(name=arm, share=share[arm], samples=needed[arm]) for arm in arm_names(spec)],
        traffic_rate=traffic_rate,
        expected_duration_seconds=max(durations) if durations else None,
    )


# --- the state machine ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Draft:
    status: ExperimentStatus
    now: datetime
    generation: int
    events: list[Event] = field(default_factory=list)
    promote: str | None = None

    def update(self, **changes: object) -> None:
        self.status = self.status.model_copy(update=changes)

    def emit(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def condition(self, type_: str, value: ConditionStatus, reason: str, message: str = "") -> None:
        conditions = set_condition(
            self.status.conditions,
            type_,
            value,
            reason=reason,
            message=message,
            now=self.now,
            generation=self.generation,
        )
        self.update(conditions=conditions)


def decide(spec: ExperimentSpec, status: ExperimentStatus, obs: Observations) -> Decision:
    draft = _Draft(status=status, now=obs.now, generation=obs.generation)
    if status.phase == "Pending":
        _pending(spec, draft, obs)
    elif status.phase == "Running":
        _running(spec, draft, obs)
    if draft.status.phase in TERMINAL:
        _after_conclusion(spec, draft, obs)
    draft.update(observed_generation=obs.generation)
    return Decision(
        status=draft.status,
        traffic=desired_traffic(spec, draft.status),
        events=tuple(draft.events),
        promote=draft.promote,
    )


def promoted(status: ExperimentStatus) -> ExperimentStatus:
    """The status once the engine has started the winner's rollout."""
    if status.decision is None:
        return status
    decision = status.decision.model_copy(update={"promoted": True, "recommendation": None})
    return status.model_copy(update={"decision": decision})


def desired_traffic(spec: ExperimentSpec, status: ExperimentStatus) -> Traffic | None:
    if status.phase == "Pending":
        return None
    champion = spec.champion.name
    if status.phase in TERMINAL:
        return Traffic(weights=((champion, 100),))
    if spec.mode == "Shadow":
        return Traffic(weights=((champion, 100),), mirror=spec.challengers[0].name)
    return Traffic(weights=tuple((arm.name, arm.weight) for arm in (spec.champion, *spec.challengers)), pinned=True)


def _pending(spec: ExperimentSpec, draft: _Draft, obs: Observations) -> None:
    missing = [arm for arm in arm_names(spec) if not obs.revisions.get(arm)]
    if missing:
        deployments = {a.name: a.model_deployment for a in (spec.champion, *spec.challengers)}
        named = ", ".join(f"{arm} ({deployments[arm]})" for arm in missing)
        message = f"waiting for a stable revision of every arm's ModelDeployment: {named}"
        draft.condition("ArmsReady", "False", "NoStableRevision", message)
        draft.update(message=message)
        return
    draft.condition("ArmsReady", "True", "StableRevisions")
    if draft.status.design is None:
        if obs.answers is None:
            return
        _design(spec, draft, obs)
    revisions = {arm: obs.revisions[arm] for arm in arm_names(spec)}
    draft.update(
        phase="Running",
        arms=[ArmResult(name=arm, revision=revision) for arm, revision in revisions.items()],
        message="moving traffic: " + _describe_traffic(spec),
    )


def _design(spec: ExperimentSpec, draft: _Draft, obs: Observations) -> None:
    assert obs.answers is not None
    rates = [obs.answers.get(query_key(spec, RATE, arm, "value")) for arm in arm_names(spec)]
    numbers = [max(rate, 0.0) for rate in rates if isinstance(rate, float) and math.isfinite(rate)]
    traffic = sum(numbers) if numbers else 0.0
    if spec.traffic_rate_query is None:
        traffic /= duration_seconds(spec.window)
    plan = design(spec, traffic if traffic > 0 else None)
    draft.update(design=plan)
    expected = plan.expected_duration_seconds
    summary = f"{plan.samples_per_arm} samples per arm ({plan.method}, MDE {plan.minimum_effect:+.4g})"
    if expected is None:
        summary += "; no traffic observed yet, so the duration is unknown"
    else:
        summary += f"; about {_human(expected)} at {traffic:.4g}/s"
    draft.condition("Designed", "True", "SampleSizeComputed", summary)
    draft.emit("Normal", "Designed", summary)
    limit = duration_seconds(spec.max_duration)
    if expected is None:
        draft.condition("Underpowered", "Unknown", "NoTraffic", "no traffic rate observed")
    elif expected > limit:
        message = (
            f"reaching {plan.samples_per_arm} samples per arm takes about {_human(expected)}, longer than "
            f"maxDuration {spec.max_duration}: raise the challengers' share, accept a larger MDE or allow longer"
        )
        draft.condition("Underpowered", "True", "SampleSizeOutOfReach", message)
        draft.emit("Warning", "Underpowered", message)
    else:
        draft.condition("Underpowered", "False", "SampleSizeReachable")


def _running(spec: ExperimentSpec, draft: _Draft, obs: Observations) -> None:
    changed = _changed_arm(spec, draft.status, obs)
    if changed is not None:
        _conclude(spec, draft, "Invalid", changed)
        return
    if obs.router_problem is not None:
        reason, message = obs.router_problem
        draft.condition("TrafficSplit", "False", reason, message)
        draft.update(message=f"the router cannot split traffic: {message}")
    elif obs.router_verified is not None:
        if obs.router_verified:
            draft.condition("TrafficSplit", "True", "InForce", _describe_traffic(spec))
        else:
            draft.condition(
                "TrafficSplit",
                "False",
                "NotYetInForce",
                "the router does not read back the split yet",
            )
    if draft.status.started_at is None:
        if obs.router_verified:
            draft.update(started_at=obs.now, message="traffic in force: " + _describe_traffic(spec))
            draft.emit("Normal", "Started", _describe_traffic(spec))
        return
    if analysis_due(spec, draft.status, obs.now) and obs.answers is not None:
        _look(spec, draft, obs)
    if draft.status.phase == "Running":
        _check_max_duration(spec, draft, obs)


def _changed_arm(spec: ExperimentSpec, status: ExperimentStatus, obs: Observations) -> str | None:
    for arm in status.arms:
        now = obs.revisions.get(arm.name)
        if arm.revision is not None and now and now != arm.revision:
            return (
                f"arm {arm.name} changed its stable revision from {arm.revision} to {now} during the experiment: "
                "its samples mix two models"
            )
    return None


def _elapsed(status: ExperimentStatus, now: datetime) -> float:
    return (now - status.started_at).total_seconds() if status.started_at else 0.0


def _check_max_duration(spec: ExperimentSpec, draft: _Draft, obs: Observations) -> None:
    if _elapsed(draft.status, obs.now) < duration_seconds(spec.max_duration):
        return
    if draft.status.looks == 0:
        _conclude(spec, draft, "Invalid", f"no data from every arm by maxDuration {spec.max_duration}")
        return
    samples = min(arm.samples for arm in draft.status.arms) if draft.status.arms else 0
    planned = draft.status.design.samples_per_arm if draft.status.design else 0
    reason = f"no verdict by maxDuration {spec.max_duration} ({samples} of {planned} samples per arm)"
    _conclude(spec, draft, "Inconclusive", reason)


# --- one look ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ArmData:
    """One arm's primary (or secondary) metric: a proportion or a mean, from Prometheus' totals."""

    name: str
    count: float
    successes: float = 0.0
    mean: float = 0.0
    variance: float = 0.0

    @property
    def estimate(self) -> float:
        return self.successes / self.count if self.count else 0.0

    def totals(self, kind: str) -> ArmTotals:
        if kind == "proportion":
            return ArmTotals.of_proportion(self.count, self.successes)
        return ArmTotals.of_summary(self.count, self.mean, self.variance)

    def value(self, kind: str) -> float:
        return self.estimate if kind == "proportion" else self.mean


def _number(answer: Answer | None) -> float | str:
    """A finite number, or why there is none."""
    if answer is None:
        return "not queried"
    if isinstance(answer, Missing):
        return f"{answer.kind}: {answer.message}"
    if isinstance(answer, Buckets):
        return "a histogram where a number was expected"
    if not math.isfinite(answer):
        return f"value is {answer}"
    return float(answer)


def _read_metric(
    spec: ExperimentSpec, metric: ExperimentMetric, arm: str, answers: Mapping[QueryKey, Answer]
) -> _ArmData | str:
    numbers: dict[str, float] = {}
    for part, _ in _metric_parts(metric):
        value = _number(answers.get(query_key(spec, metric.name, arm, part)))
        if isinstance(value, str):
            return f"{arm}: {metric.name} {part}: {value}"
        numbers[part] = max(value, 0.0) if part != "sum" else value
    count = numbers["total"]
    if count <= 0:
        return f"{arm}: no observations of {metric.name} yet"
    if metric.kind == "proportion":
        return _ArmData(arm, count, successes=min(numbers["successes"], count))
    mean = numbers["sum"] / count
    variance = max(numbers["squares"] - numbers["sum"] ** 2 / count, 0.0) / (count - 1) if count > 1 else 0.0
    return _ArmData(arm, count, mean=mean, variance=variance)


def _look(spec: ExperimentSpec, draft: _Draft, obs: Observations) -> None:
    answers = obs.answers
    assert answers is not None
    draft.update(last_analysis_at=obs.now)
    guardrails = {c.name: _guardrails(spec, c.name, answers) for c in spec.challengers}
    data = [_read_metric(spec, spec.primary_metric, arm, answers) for arm in arm_names(spec)]
    gaps = [d for d in data if isinstance(d, str)]
    if gaps:
        draft.condition("MetricsAvailable", "False", "NoData", "; ".join(gaps)[:1000])
        draft.update(
            arms=[arm.model_copy(update={"guardrails": guardrails.get(arm.name, [])}) for arm in draft.status.arms],
            message="waiting for data: " + gaps[0],
        )
        _stop_on_breach(spec, draft, obs, guardrails)
        return
    draft.condition("MetricsAvailable", "True", "AllArmsMeasured")
    arms = [d for d in data if isinstance(d, _ArmData)]
    srm = _srm(spec, arms)
    comparisons = _compare(spec, draft.status, arms)
    draft.update(
        looks=draft.status.looks + 1,
        srm_p_value=srm.p_value if srm else None,
        arms=_arm_results(spec, draft.status, arms, comparisons, guardrails),
        secondary=_secondary(spec, draft.status, answers),
        series=_series(draft.status.series, obs.now, comparisons),
        message=_progress(spec, draft.status, arms),
    )
    if _stop_on_breach(spec, draft, obs, guardrails):
        return
    if srm is not None and _sample_ratio_mismatch(spec, draft, srm, arms):
        return
    if _elapsed(draft.status, obs.now) < duration_seconds(spec.min_duration):
        return
    verdict = _verdict(spec, draft.status, arms, comparisons)
    if verdict is not None:
        outcome, winner, reason = verdict
        _conclude(spec, draft, outcome, reason, winner=winner)


def _sample_ratio_mismatch(spec: ExperimentSpec, draft: _Draft, srm: SrmResult, arms: Sequence[_ArmData]) -> bool:
    """Record the check; True when the counts mismatch, so nothing is decided on them.

    The result is Invalid once the mismatch held for SRM_LOOKS looks in a row.
    """
    if not srm.mismatch:
        draft.update(srm_mismatches=0)
        draft.condition("SampleRatioMismatch", "False", "AsAllocated", f"p = {srm.p_value:.3g}")
        return False
    strikes = draft.status.srm_mismatches + 1
    observed = ", ".join(f"{a.name} {a.count:.0f}" for a in arms)
    weights = ", ".join(f"{a.name} {a.weight}" for a in (spec.champion, *spec.challengers))
    reason = (
        f"sample ratio mismatch: observed {observed} against weights {weights} "
        f"(chi-square p = {srm.p_value:.3g} < {spec.srm_p_value:g}"
    )
    draft.update(srm_mismatches=strikes)
    if strikes < SRM_LOOKS:
        draft.condition("SampleRatioMismatch", "Unknown", "Suspected", f"{reason}, look {strikes} of {SRM_LOOKS})")
        return True
    reason += f" on {strikes} looks in a row): check assignment and logging"
    draft.condition("SampleRatioMismatch", "True", "Mismatch", reason)
    draft.emit("Warning", "SampleRatioMismatch", reason)
    _conclude(spec, draft, "Invalid", reason)
    return True


@dataclass(frozen=True, slots=True)
class _Comparison:
    """One challenger against the champion on the primary metric, as :mod:`modelrollout.stats` read it."""

    arm: str
    estimate: float
    interval: Interval | None
    p_value: float | None
    adjusted_p_value: float | None
    verdict: CheckVerdict
    ratio: RatioEstimate | None
    state: SequentialState | None = None


def _compare(spec: ExperimentSpec, status: ExperimentStatus, arms: Sequence[_ArmData]) -> list[_Comparison]:
    if spec.sequential:
        return _compare_sequential(spec, status, arms)
    return _compare_fixed(spec, status, arms)


def _config(spec: ExperimentSpec, mixing_sd: float) -> MsprtConfig:
    return MsprtConfig(
        mixing_sd=mixing_sd,
        alpha=comparison_alpha(spec),
        min_samples=float(spec.min_samples),
        higher_is_better=spec.primary_metric.higher_is_better,
    )


def _state(carried: SequentialStatus | None) -> SequentialState:
    if carried is None:
        return SequentialState()
    return SequentialState(
        p_value=carried.p_value,
        low=-math.inf if carried.low is None else carried.low,
        high=math.inf if carried.high is None else carried.high,
        looks=carried.looks,
    )


def _carried(state: SequentialState) -> SequentialStatus:
    return SequentialStatus(
        p_value=state.p_value,
        low=state.low if math.isfinite(state.low) else None,
        high=state.high if math.isfinite(state.high) else None,
        looks=state.looks,
    )


def _finite_interval(interval: Interval) -> Interval | None:
    return interval if math.isfinite(interval.low) and math.isfinite(interval.high) else None


def _compare_sequential(spec: ExperimentSpec, status: ExperimentStatus, arms: Sequence[_ArmData]) -> list[_Comparison]:
    kind = spec.primary_metric.kind
    config = _config(spec, abs(minimum_effect(spec)))
    champion, challengers = arms[0], arms[1:]
    carried = {arm.name: arm.sequential for arm in status.arms}
    comparisons = []
    for arm in challengers:
        state = msprt_look(_state(carried.get(arm.name)), champion.totals(kind), arm.totals(kind), config)
        result: SequentialResult = msprt_result(state, config)
        measured = state.looks > 0 and math.isfinite(result.interval.low)
        comparisons.append(
            _Comparison(
                arm=arm.name,
                estimate=result.estimate,
                interval=_finite_interval(result.interval),
                p_value=result.p_value if measured else None,
                adjusted_p_value=min(1.0, result.p_value * len(challengers)) if measured else None,
                verdict=result.verdict,
                ratio=_ratio(spec, champion, arm),
                state=state,
            )
        )
    return comparisons


def _planned(status: ExperimentStatus) -> dict[str, int]:
    return {plan.name: plan.samples for plan in status.design.arms} if status.design else {}


def _reached_plan(status: ExperimentStatus, arms: Sequence[_ArmData]) -> bool:
    planned = _planned(status)
    return bool(planned) and all(arm.count >= planned.get(arm.name, 0) for arm in arms)


def _compare_fixed(spec: ExperimentSpec, status: ExperimentStatus, arms: Sequence[_ArmData]) -> list[_Comparison]:
    """Estimates at every look; tests only at the planned size, where their p-values mean what they say."""
    kind = spec.primary_metric.kind
    champion = arms[0]
    if not _reached_plan(status, arms) or min(arm.count for arm in arms) < 2:
        return [
            _Comparison(a.name, a.value(kind) - champion.value(kind), None, None, None, CheckVerdict.INCONCLUSIVE, None)
            for a in arms[1:]
        ]
    analysis = analyze_fixed(
        _stats_arms(spec, arms),
        alpha=spec.alpha,
        higher_is_better=spec.primary_metric.higher_is_better,
        minimum_effect=abs(minimum_effect(spec)),
    )
    by_name = {arm.name: arm for arm in arms}
    return [
        _Comparison(
            arm=c.arm,
            estimate=c.estimate,
            interval=c.interval,
            p_value=c.p_value,
            adjusted_p_value=c.adjusted_p_value,
            verdict=c.verdict,
            ratio=_ratio(spec, champion, by_name[c.arm]),
        )
        for c in analysis.comparisons
    ]


def _stats_arms(spec: ExperimentSpec, arms: Sequence[_ArmData]) -> list[ProportionArm] | list[MeanArm]:
    if spec.primary_metric.kind == "proportion":
        return [ProportionArm(a.name, a.count, a.successes) for a in arms]
    return [MeanArm(a.name, a.count, a.mean, a.variance) for a in arms]


def _ratio(spec: ExperimentSpec, champion: _ArmData, challenger: _ArmData) -> RatioEstimate | None:
    """The challenger/champion ratio with a fixed-horizon interval, reported and never decided on."""
    confidence = 1.0 - comparison_alpha(spec)
    try:
        if spec.primary_metric.kind == "proportion":
            return ratio_of_proportions(
                champion.successes, champion.count, challenger.successes, challenger.count, confidence=confidence
            )
        return ratio_of_means(
            SummaryStats(champion.count, champion.mean, champion.variance),
            SummaryStats(challenger.count, challenger.mean, challenger.variance),
            confidence=confidence,
        )
    except (ValueError, ZeroDivisionError):
        return None


def _srm(spec: ExperimentSpec, arms: Sequence[_ArmData]) -> SrmResult | None:
    """Split mode only: a shadow's counts follow the mirror, not an allocation."""
    if spec.mode == "Shadow":
        return None
    weights = [arm.weight for arm in (spec.champion, *spec.challengers)]
    return sample_ratio_mismatch([arm.count for arm in arms], weights, alpha=spec.srm_p_value)


def _guardrails(spec: ExperimentSpec, arm: str, answers: Mapping[QueryKey, Answer]) -> list[GuardrailResult]:
    return [_guardrail(spec, g, arm, answers) for g in spec.guardrails]


def _guardrail(
    spec: ExperimentSpec, guardrail: Guardrail, arm: str, answers: Mapping[QueryKey, Answer]
) -> GuardrailResult:
    """A point comparison, like a ModelDeployment's guardrails: missing data is reported, never a breach."""
    value = _number(answers.get(query_key(spec, guardrail.name, arm, "value")))
    if isinstance(value, str):
        return GuardrailResult(name=guardrail.name, message=f"{arm}: {value}")
    limits: list[str] = []
    failures: list[str] = []
    if guardrail.max is not None:
        limits.append(f"<= {guardrail.max:g}")
        if value > guardrail.max:
            failures.append(f"{value:.4g} > max {guardrail.max:g}")
    champion_value: float | None = None
    ratios = ((guardrail.max_ratio_to_champion, "<=", 1), (guardrail.min_ratio_to_champion, ">=", -1))
    if any(bound is not None for bound, *_ in ratios):
        reading = _number(answers.get(query_key(spec, guardrail.name, spec.champion.name, "value")))
        if isinstance(reading, str):
            return GuardrailResult(
                name=guardrail.name, value=value, limit=", ".join(limits) or None, message=f"champion: {reading}"
            )
        champion_value = reading
        for bound, relation, sign in ratios:
            if bound is None:
                continue
            limit = champion_value * bound
            limits.append(f"{relation} {bound:g} x champion = {limit:.4g}")
            if sign * (value - limit) > 0:
                ratio = f"{value / champion_value:.3g} x champion" if champion_value else f"{value:.4g}"
                failures.append(f"{ratio} {'>' if sign > 0 else '<'} {bound:g}")
    return GuardrailResult(
        name=guardrail.name,
        value=value,
        champion_value=champion_value,
        limit=", ".join(limits),
        breached=bool(failures),
        message="; ".join(failures) or None,
    )


def _stop_on_breach(
    spec: ExperimentSpec, draft: _Draft, obs: Observations, guardrails: Mapping[str, list[GuardrailResult]]
) -> bool:
    breaches = [(arm, g) for arm, results in guardrails.items() for g in results if g.breached]
    if not breaches:
        if spec.guardrails:
            draft.condition("GuardrailBreached", "False", "WithinLimits")
        return False
    reason = "; ".join(f"{arm} breached guardrail {g.name} ({g.message})" for arm, g in breaches)
    breached: dict[str, list[str]] = {}
    for arm, guardrail in breaches:
        breached.setdefault(arm, []).append(guardrail.name)
    draft.update(
        arms=[arm.model_copy(update={"guardrails_breached": breached.get(arm.name, [])}) for arm in draft.status.arms]
    )
    draft.condition("GuardrailBreached", "True", "Breached", reason)
    draft.emit("Warning", "GuardrailBreached", reason)
    _conclude(spec, draft, "KeepChampion", reason, phase="Stopped")
    return True


def _arm_results(
    spec: ExperimentSpec,
    status: ExperimentStatus,
    arms: Sequence[_ArmData],
    comparisons: Sequence[_Comparison],
    guardrails: Mapping[str, list[GuardrailResult]],
) -> list[ArmResult]:
    kind = spec.primary_metric.kind
    by_arm = {c.arm: c for c in comparisons}
    previous = {arm.name: arm for arm in status.arms}
    results = []
    for arm in arms:
        before = previous.get(arm.name) or ArmResult(name=arm.name)
        update: dict[str, object] = {
            "samples": round(arm.count),
            "estimate": _finite(arm.value(kind)),
            "guardrails": guardrails.get(arm.name, []),
        }
        comparison = by_arm.get(arm.name)
        if comparison is not None:
            interval = comparison.interval
            ratio = comparison.ratio
            update |= {
                "difference": _finite(comparison.estimate),
                "interval": [interval.low, interval.high] if interval else None,
                "relative_interval": [ratio.interval.low - 1, ratio.interval.high - 1]
                if ratio and math.isfinite(ratio.interval.low) and math.isfinite(ratio.interval.high)
                else None,
                "p_value": comparison.adjusted_p_value,
                "verdict": str(comparison.verdict),
                "sequential": _carried(comparison.state) if comparison.state else None,
            }
        results.append(before.model_copy(update=update))
    return results


def _secondary(
    spec: ExperimentSpec, status: ExperimentStatus, answers: Mapping[QueryKey, Answer]
) -> list[SecondaryResult]:
    """Secondary metrics: the same test as the primary, corrected across challengers and metrics by spec.correction.

    Sequential experiments run an mSPRT per metric and challenger whose mixing
    distribution is the primary metric's relative MDE applied to the champion's value.
    """
    previous = {(s.metric, s.arm): s for s in status.secondary}
    results: list[SecondaryResult] = []
    p_values: list[float] = []
    tested: list[int] = []
    for metric in spec.secondary_metrics:
        champion = _read_metric(spec, metric, spec.champion.name, answers)
        for challenger in spec.challengers:
            before = previous.get((metric.name, challenger.name))
            arm = _read_metric(spec, metric, challenger.name, answers)
            if isinstance(champion, str) or isinstance(arm, str):
                results.append(before or SecondaryResult(metric=metric.name, arm=challenger.name))
                continue
            result, p_value = _secondary_test(spec, metric, champion, arm, before)
            if p_value is not None:
                tested.append(len(results))
                p_values.append(p_value)
            results.append(result)
    if p_values:
        correct = holm if spec.correction == "holm" else benjamini_hochberg
        adjusted = correct(p_values, spec.alpha)
        for index, p, rejected in zip(tested, adjusted.adjusted, adjusted.rejected, strict=True):
            results[index] = results[index].model_copy(update={"p_value": float(p), "significant": bool(rejected)})
    return results


def _secondary_test(
    spec: ExperimentSpec, metric: ExperimentMetric, champion: _ArmData, arm: _ArmData, before: SecondaryResult | None
) -> tuple[SecondaryResult, float | None]:
    kind = metric.kind
    difference = arm.value(kind) - champion.value(kind)
    base = SecondaryResult(metric=metric.name, arm=arm.name, difference=_finite(difference))
    if spec.sequential:
        scale = abs(champion.value(kind)) or math.sqrt(champion.totals(kind).variance)
        if not scale > 0:
            return base, None
        config = _config(spec, spec.primary_metric.minimum_detectable_effect * scale)
        config = MsprtConfig(config.mixing_sd, config.alpha, config.min_samples, metric.higher_is_better)
        state = msprt_look(
            _state(before.sequential if before else None), champion.totals(kind), arm.totals(kind), config
        )
        result = msprt_result(state, config)
        interval = _finite_interval(result.interval)
        measured = interval is not None
        return base.model_copy(
            update={
                "interval": [interval.low, interval.high] if interval else None,
                "sequential": _carried(state),
            }
        ), (result.p_value if measured else None)
    if champion.count < 2 or arm.count < 2:
        return base, None
    try:
        if kind == "proportion":
            test = two_proportions(
                champion.successes, champion.count, arm.successes, arm.count, confidence=1 - spec.alpha
            )
        else:
            test = welch_t_test(
                SummaryStats(champion.count, champion.mean, champion.variance),
                SummaryStats(arm.count, arm.mean, arm.variance),
                confidence=1 - spec.alpha,
            )
    except ValueError:
        return base, None
    interval = test.interval
    return base.model_copy(update={"interval": [interval.low, interval.high] if interval else None}), test.p_value


def _series(series: list[SeriesPoint], now: datetime, comparisons: Iterable[_Comparison]) -> list[SeriesPoint]:
    points = list(series)
    for c in comparisons:
        if not math.isfinite(c.estimate):
            continue
        low, high = (c.interval.low, c.interval.high) if c.interval else (None, None)
        points.append(SeriesPoint(at=now, arm=c.arm, estimate=c.estimate, low=low, high=high))
    kept: list[SeriesPoint] = []
    counts: dict[str, int] = {}
    for point in reversed(points):
        counts[point.arm] = counts.get(point.arm, 0) + 1
        if counts[point.arm] <= SERIES_LIMIT:
            kept.append(point)
    return kept[::-1]


def _verdict(
    spec: ExperimentSpec, status: ExperimentStatus, arms: Sequence[_ArmData], comparisons: Sequence[_Comparison]
) -> tuple[Outcome, str | None, str] | None:
    """The stats package's rules (stats.experiment) over this look's comparisons, plus the planned-size stop.

    Promote the best significantly better challenger; KeepChampion when all are
    significantly worse or their intervals rule out the MDE (futility); at the
    planned size, a challenger not shown better keeps the champion. A fixed-horizon
    test says nothing before the planned size.
    """
    metric = spec.primary_metric
    reached = _reached_plan(status, arms)
    if not spec.sequential and not reached:
        return None
    if min(arm.count for arm in arms) < spec.min_samples:
        return None
    sign = 1.0 if metric.higher_is_better else -1.0
    better = [c for c in comparisons if c.verdict is CheckVerdict.PASS]
    if better:
        best = max(better, key=lambda c: sign * c.estimate)
        return "Promote", best.arm, f"significantly better than {spec.champion.name}: " + _effect(spec, arms[0], best)
    if all(c.verdict is CheckVerdict.FAIL for c in comparisons):
        detail = "; ".join(_effect(spec, arms[0], c) for c in comparisons)
        return "KeepChampion", None, f"every challenger is significantly worse than {spec.champion.name}: {detail}"
    mde = abs(minimum_effect(spec))
    if all(_futile(c, metric.higher_is_better, mde) for c in comparisons):
        detail = "; ".join(_effect(spec, arms[0], c) for c in comparisons)
        return "KeepChampion", None, f"the intervals rule out an improvement of {mde:.4g} or more: {detail}"
    if reached:
        detail = "; ".join(_effect(spec, arms[0], c) for c in comparisons)
        planned = status.design.samples_per_arm if status.design else 0
        return "KeepChampion", None, f"no challenger is significantly better at the planned size ({planned}): {detail}"
    return None


def _futile(comparison: _Comparison, higher_is_better: bool, mde: float) -> bool:
    """The interval rules out an improvement of the MDE or more (the rule of stats.experiment)."""
    interval = comparison.interval
    if interval is None:
        return False
    return interval.high < mde if higher_is_better else interval.low > -mde


def _effect(spec: ExperimentSpec, champion: _ArmData, c: _Comparison) -> str:
    """``challenger: metric +0.021 (+3.8%), 97.5% CI [+0.008, +0.034], p = 0.004``."""
    kind = spec.primary_metric.kind
    text = f"{c.arm}: {spec.primary_metric.name} {c.estimate:+.4g}"
    base = champion.value(kind)
    if base:
        text += f" ({c.estimate / base:+.1%})"
    if c.interval is not None:
        text += f", {c.interval.level:.1%} CI [{c.interval.low:+.4g}, {c.interval.high:+.4g}]"
    if c.adjusted_p_value is not None:
        text += f", p = {c.adjusted_p_value:.3g}"
    return text


def _conclude(
    spec: ExperimentSpec,
    draft: _Draft,
    outcome: Outcome,
    reason: str,
    *,
    winner: str | None = None,
    phase: ExperimentPhase | None = None,
) -> None:
    phase = phase or ("Failed" if outcome == "Invalid" else "Concluded")
    recommendation = _recommendation(spec, outcome, winner)
    draft.update(
        phase=phase,
        decision=DecisionStatus(
            outcome=outcome, winner=winner, reason=reason[:2000], decided_at=draft.now, recommendation=recommendation
        ),
        message=f"{outcome}{f' {winner}' if winner else ''}: {reason}"[:1000],
    )
    draft.condition("Concluded", "True", outcome, reason[:1000])
    draft.emit("Warning" if phase != "Concluded" else "Normal", "Concluded", f"{outcome}: {reason}")


def _recommendation(spec: ExperimentSpec, outcome: Outcome, winner: str | None) -> str | None:
    champion = spec.champion.model_deployment
    if outcome == "Promote" and winner is not None:
        source = next(c.model_deployment for c in spec.challengers if c.name == winner)
        if spec.decision.auto_promote:
            return None
        return (
            f"roll {winner} out: set spec.model, spec.template and spec.port of ModelDeployment {champion} "
            f"to those of {source} (in Git, where Git owns the spec)"
        )
    if outcome == "Invalid":
        return "fix the cause, then delete and re-create the Experiment: its data cannot be trusted"
    return f"keep {spec.champion.name} ({champion})"


def _after_conclusion(spec: ExperimentSpec, draft: _Draft, obs: Observations) -> None:
    """A Promote with autoPromote asks the engine for the rollout until status says it started."""
    decision = draft.status.decision
    if decision is not None and decision.outcome == "Promote" and spec.decision.auto_promote and not decision.promoted:
        draft.promote = decision.winner
    if obs.router_verified:
        draft.condition("TrafficSplit", "False", "ChampionOnly", "all traffic on the champion")


# --- wording ----------------------------------------------------------------------------------------------------


def _describe_traffic(spec: ExperimentSpec) -> str:
    if spec.mode == "Shadow":
        return f"{spec.champion.name} serves everything; {spec.challengers[0].name} gets a mirror"
    arms = (spec.champion, *spec.challengers)
    total = sum(arm.weight for arm in arms)
    split = ", ".join(f"{arm.name} {arm.weight / total:.0%}" for arm in arms)
    return f"{split}; header {spec.assignment.arm_header} pins an arm"


def _progress(spec: ExperimentSpec, status: ExperimentStatus, arms: Sequence[_ArmData]) -> str:
    planned = status.design.samples_per_arm if status.design else None
    samples = min(arm.count for arm in arms)
    text = f"{samples:.0f} of {planned} samples per arm" if planned else f"{samples:.0f} samples per arm"
    return text + "; no decision yet"


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


__all__ = [
    "Decision",
    "Observations",
    "Target",
    "Traffic",
    "analysis_due",
    "arm_names",
    "decide",
    "design",
    "design_due",
    "plan_analysis",
    "plan_design",
    "promoted",
    "query_key",
]
