"""What Prometheus' answers say about each arm: its metrics' totals and its guardrails' values.

A metric arrives as totals since the start (observations, successes, sums of
values and of their squares), from which a proportion or a mean and variance
follow. Data that is missing or not a finite number is reported with its
cause, never read as zero: a look without every arm's primary metric decides
nothing, and a guardrail without its value is not breached.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from modelrollout.api.experiment import ExperimentMetric, ExperimentSpec, Guardrail, GuardrailResult
from modelrollout.core.experiment.planning import metric_parts, query_key
from modelrollout.core.queries import Answer, Buckets, Missing, QueryKey
from modelrollout.stats.sequential import ArmTotals


@dataclass(frozen=True, slots=True)
class ArmData:
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


def finite(value: float) -> float | None:
    """A number for status, which holds no NaN or infinity: None stands for them."""
    return value if math.isfinite(value) else None


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


def read_metric(
    spec: ExperimentSpec, metric: ExperimentMetric, arm: str, answers: Mapping[QueryKey, Answer]
) -> ArmData | str:
    """The arm's totals of the metric, or why they cannot be read."""
    numbers: dict[str, float] = {}
    for part, _ in metric_parts(metric):
        value = _number(answers.get(query_key(spec, metric.name, arm, part)))
        if isinstance(value, str):
            return f"{arm}: {metric.name} {part}: {value}"
        numbers[part] = max(value, 0.0) if part != "sum" else value
    count = numbers["total"]
    if count <= 0:
        return f"{arm}: no observations of {metric.name} yet"
    if metric.kind == "proportion":
        return ArmData(arm, count, successes=min(numbers["successes"], count))
    mean = numbers["sum"] / count
    variance = max(numbers["squares"] - numbers["sum"] ** 2 / count, 0.0) / (count - 1) if count > 1 else 0.0
    return ArmData(arm, count, mean=mean, variance=variance)


def guardrails(spec: ExperimentSpec, arm: str, answers: Mapping[QueryKey, Answer]) -> list[GuardrailResult]:
    """Every guardrail of the spec, read for one challenger."""
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
