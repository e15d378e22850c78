"""Guardrail analysis: which queries a step needs, and what their answers mean.

Two pure halves around the one piece of I/O: :func:`plan_queries` says what to
ask Prometheus, the engine asks, and :func:`evaluate` turns the answers into
verdicts. Missing data is its own answer (:class:`Missing`), never a number, so
it can only ever make a result Inconclusive: missing metrics never promote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from modelrollout.api.base import format_duration
from modelrollout.api.modeldeployment import (
    GuardrailMetric,
    MetricResult,
    ModelDeploymentSpec,
    ProportionTest,
    Verdict,
)
from modelrollout.stats.results import CheckVerdict
from modelrollout.stats.sequential import ArmTotals, MsprtConfig, SequentialState, msprt_result, msprt_update

MIN_MIXING_SD = 0.05
"""The smallest mixture spread of the proportion test (see :func:`_proportion`)."""

Role = Literal["canary", "stable"]
CANARY: Role = "canary"
STABLE: Role = "stable"


@dataclass(frozen=True, slots=True)
class QueryKey:
    """Names one number: a metric (or one of a proportion test's two queries) for one revision."""

    metric: str
    role: Role
    part: str = "value"


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """A PromQL template and its variables; the engine renders (escaping values) and runs it."""

    key: QueryKey
    template: str
    variables: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Missing:
    """No number: ``NoData`` (the query matched nothing) or ``Error`` (Prometheus failed or is unreachable)."""

    kind: Literal["NoData", "Error"]
    message: str


Answer = float | Missing


@dataclass(frozen=True, slots=True)
class Target:
    """Who is measured: the revisions' label values and where they run."""

    namespace: str
    name: str
    canary_revision: str
    stable_revision: str | None
    elapsed_seconds: float


@dataclass(frozen=True, slots=True)
class AnalysisOutcome:
    """The verdict of one evaluation and the evidence behind it."""

    verdict: Verdict
    metrics: tuple[MetricResult, ...]
    tripped: tuple[MetricResult, ...]
    """Circuit-breaker metrics over their limit: abort at once."""


def _variables(spec: ModelDeploymentSpec, target: Target, revision: str) -> dict[str, str]:
    return {
        "revision": revision,
        "namespace": target.namespace,
        "name": target.name,
        "window": spec.analysis.window,
        "elapsed": format_duration(max(target.elapsed_seconds, 1.0)),
    }


def plan_queries(spec: ModelDeploymentSpec, target: Target, *, guardrails: bool) -> list[QueryRequest]:
    """Every query one evaluation needs; guardrails only when the step asks for analysis."""
    canary = _variables(spec, target, target.canary_revision)
    stable = _variables(spec, target, target.stable_revision) if target.stable_revision else None
    requests = [QueryRequest(QueryKey(m.name, CANARY), m.query, canary) for m in spec.circuit_breaker]
    if not guardrails:
        return requests
    for metric in spec.analysis.metrics:
        if metric.proportion is not None:
            roles = [(CANARY, canary)] + ([(STABLE, stable)] if stable else [])
            for role, variables in roles:
                requests.append(
                    QueryRequest(QueryKey(metric.name, role, "errors"), metric.proportion.errors_query, variables)
                )
                requests.append(
                    QueryRequest(QueryKey(metric.name, role, "total"), metric.proportion.total_query, variables)
                )
            continue
        assert metric.query is not None  # the model's rules guarantee query or proportion
        requests.append(QueryRequest(QueryKey(metric.name, CANARY), metric.query, canary))
        if metric.relative_to_stable is not None and stable is not None:
            requests.append(QueryRequest(QueryKey(metric.name, STABLE), metric.query, stable))
    return requests


def evaluate(
    spec: ModelDeploymentSpec,
    answers: Mapping[QueryKey, Answer],
    previous: Mapping[str, MetricResult],
    *,
    guardrails: bool,
) -> AnalysisOutcome:
    """Turn answers into verdicts. ``previous`` carries each sequential test's running state."""
    tripped = tuple(
        result
        for result in (_critical(m.name, m.max, answers.get(QueryKey(m.name, CANARY))) for m in spec.circuit_breaker)
        if result.verdict == "Fail"
    )
    results: list[MetricResult] = []
    if guardrails:
        for metric in spec.analysis.metrics:
            if metric.proportion is not None:
                results.append(_proportion(metric.name, metric.proportion, answers, previous.get(metric.name)))
            else:
                results.append(_threshold(metric, answers))
    verdicts = {r.verdict for r in results}
    verdict: Verdict = "Fail" if "Fail" in verdicts else "Inconclusive" if "Inconclusive" in verdicts else "Pass"
    if tripped:
        verdict = "Fail"
    return AnalysisOutcome(verdict=verdict, metrics=tuple(results), tripped=tripped)


def _number(name: str, answer: Answer | None, who: str) -> float | MetricResult:
    """The answer as a finite number, or the Inconclusive result that explains why there is none."""
    if answer is None:
        return MetricResult(name=name, verdict="Inconclusive", message=f"{who}: not queried")
    if isinstance(answer, Missing):
        return MetricResult(name=name, verdict="Inconclusive", message=f"{who}: {answer.kind}: {answer.message}")
    if not math.isfinite(answer):
        return MetricResult(name=name, verdict="Inconclusive", message=f"{who}: value is {answer}")
    return float(answer)


def _critical(name: str, limit: float, answer: Answer | None) -> MetricResult:
    value = _number(name, answer, "canary")
    if isinstance(value, MetricResult):
        return value
    verdict: Verdict = "Fail" if value > limit else "Pass"
    return MetricResult(name=name, verdict=verdict, value=value, limit=f"<= {limit:g}")


def _threshold(metric: GuardrailMetric, answers: Mapping[QueryKey, Answer]) -> MetricResult:
    canary = _number(metric.name, answers.get(QueryKey(metric.name, CANARY)), "canary")
    if isinstance(canary, MetricResult):
        return canary
    limits: list[str] = []
    failures: list[str] = []
    if metric.max is not None:
        limits.append(f"<= {metric.max:g}")
        if canary > metric.max:
            failures.append(f"{canary:.4g} > max {metric.max:g}")
    if metric.min is not None:
        limits.append(f">= {metric.min:g}")
        if canary < metric.min:
            failures.append(f"{canary:.4g} < min {metric.min:g}")
    stable_value: float | None = None
    relative = metric.relative_to_stable
    if relative is not None:
        stable = _number(metric.name, answers.get(QueryKey(metric.name, STABLE)), "stable")
        if isinstance(stable, MetricResult):
            return stable.model_copy(update={"value": canary})
        stable_value = stable
        if relative.max_ratio is not None:
            bound = stable * relative.max_ratio
            limits.append(f"<= {relative.max_ratio:g} x stable = {bound:.4g}")
            if canary > bound:
                failures.append(f"{canary:.4g} > {relative.max_ratio:g} x stable {stable:.4g}")
        if relative.min_ratio is not None:
            bound = stable * relative.min_ratio
            limits.append(f">= {relative.min_ratio:g} x stable = {bound:.4g}")
            if canary < bound:
                failures.append(f"{canary:.4g} < {relative.min_ratio:g} x stable {stable:.4g}")
    return MetricResult(
        name=metric.name,
        verdict="Fail" if failures else "Pass",
        value=canary,
        stable_value=stable_value,
        limit=", ".join(limits),
        message="; ".join(failures) or None,
    )


def _proportion(
    name: str, test: ProportionTest, answers: Mapping[QueryKey, Answer], previous: MetricResult | None
) -> MetricResult:
    """Canary against stable failure rates with the always-valid mSPRT (non-inferiority by ``maxIncrease``).

    Fail when the confidence sequence of (canary - stable) lies wholly above
    the margin; Pass once the canary has ``minSamples`` trials, no such
    evidence, and an estimate within the margin; Inconclusive otherwise (too
    few trials, or worse-looking but not yet significant: keep watching). The sequence is intersected across looks, so
    its bounds and the running p-value are carried in status between looks.
    """
    numbers: dict[tuple[Role, str], float] = {}
    for role in (CANARY, STABLE):
        for part in ("errors", "total"):
            value = _number(name, answers.get(QueryKey(name, role, part)), f"{role} {part}")
            if isinstance(value, MetricResult):
                return value
            numbers[role, part] = max(value, 0.0)
    canary_total, stable_total = numbers[CANARY, "total"], numbers[STABLE, "total"]
    canary_errors = min(numbers[CANARY, "errors"], canary_total)
    stable_errors = min(numbers[STABLE, "errors"], stable_total)
    config = MsprtConfig(
        # The mixture is most sensitive to effects near its spread: harmful error-rate increases are
        # points, not fractions of a point, and a spread as small as the margin makes the early,
        # small-sample sequence so wide that a 10% failure rate goes unnoticed for hundreds of requests.
        mixing_sd=max(test.max_increase, MIN_MIXING_SD),
        alpha=test.alpha,
        min_samples=float(test.min_samples),
        higher_is_better=False,
        null_difference=test.max_increase,
    )
    stable_arm = ArmTotals.of_proportion(stable_total, stable_errors)
    canary_arm = ArmTotals.of_proportion(canary_total, canary_errors)
    state = SequentialState()
    if previous is not None and previous.interval is not None and previous.p_value is not None:
        state = SequentialState(p_value=previous.p_value, low=previous.interval[0], high=previous.interval[1])
    state = msprt_update(state, stable_arm, canary_arm, config)
    restarted = state.low > state.high
    if restarted:
        # The sequence contradicts its own past: the canary's failure rate changed (it started failing
        # mid-step). The i.i.d. premise no longer holds, so judge the data afresh rather than report an
        # empty interval, which would read as "no evidence of harm".
        state = msprt_update(SequentialState(), stable_arm, canary_arm, config)
    result = msprt_result(state, config)
    canary_rate = canary_errors / canary_total if canary_total else None
    stable_rate = stable_errors / stable_total if stable_total else None
    limit = f"canary - stable <= {test.max_increase:g} (always-valid, alpha {test.alpha:g})"
    interval = [result.interval.low, result.interval.high] if math.isfinite(result.interval.low) else None
    if result.verdict == CheckVerdict.FAIL:
        verdict: Verdict = "Fail"
        message = f"failure rate {canary_rate:.4g} vs stable {stable_rate:.4g}: worse beyond the margin"
        if restarted:
            message += " (the rate changed during the canary)"
    elif canary_total >= test.min_samples and result.estimate <= test.max_increase:
        verdict, message = "Pass", None
    elif canary_total >= test.min_samples:
        verdict = "Inconclusive"
        message = f"failure rate {canary_rate:.4g} vs stable {stable_rate:.4g}: looks worse, not yet significant"
    else:
        verdict, message = "Inconclusive", f"{canary_total:.0f} of {test.min_samples} canary trials"
    return MetricResult(
        name=name,
        verdict=verdict,
        value=canary_rate,
        stable_value=stable_rate,
        limit=limit,
        p_value=result.p_value if interval is not None else None,
        interval=interval,
        message=message,
    )
