"""Which Prometheus queries an Experiment needs, and on which tick.

Two plans, each a list of :class:`~modelrollout.core.queries.QueryRequest`: the
design's (the traffic rate, read once before any traffic moves) and a look's
(guardrails, then the primary and secondary metrics of every arm). The engine
runs a plan when :func:`design_due` or :func:`analysis_due` says so and hands
the answers back in the state machine's observations, keyed by
:func:`query_key`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from modelrollout.api.base import duration_seconds, format_duration
from modelrollout.api.experiment import ExperimentMetric, ExperimentSpec, ExperimentStatus
from modelrollout.core.queries import CANARY, STABLE, QueryKey, QueryRequest

RATE = "traffic-rate"
"""The metric name under which :func:`plan_design` asks for the traffic rate."""


@dataclass(frozen=True, slots=True)
class Target:
    """Who is measured: the experiment and its arms' revision label values."""

    namespace: str
    name: str
    revisions: Mapping[str, str]
    elapsed_seconds: float


def arm_names(spec: ExperimentSpec) -> list[str]:
    """Champion first, then challengers in spec order: the order weights and hashing use."""
    return [spec.champion.name, *(c.name for c in spec.challengers)]


def query_key(spec: ExperimentSpec, metric: str, arm: str, part: str) -> QueryKey:
    """The key of one number; the champion plays the stable role, challengers the canary role."""
    return QueryKey(metric, STABLE if arm == spec.champion.name else CANARY, f"{part}@{arm}")


def metric_parts(metric: ExperimentMetric) -> list[tuple[str, str]]:
    """(part, query template) of every number a metric is computed from: totals, and successes or sums."""
    parts = [("total", metric.total_query)]
    if metric.kind == "proportion":
        parts.append(("successes", metric.success_query))
    else:
        parts += [("sum", metric.sum_query), ("squares", metric.sum_squares_query)]
    return [(part, template) for part, template in parts if template is not None]


def _variables(spec: ExperimentSpec, target: Target, arm: str) -> dict[str, str]:
    return {
        "revision": target.revisions[arm],
        "arm": arm,
        "namespace": target.namespace,
        "name": target.name,
        "elapsed": format_duration(max(target.elapsed_seconds, 1.0)),
        "window": spec.window,
    }


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
            for part, template in metric_parts(metric):
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
