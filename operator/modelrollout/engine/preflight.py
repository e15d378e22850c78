"""Checks only the operator can make, run when a spec changes: queries that do not parse, missing ConfigMaps.

The CRD schema and CEL rules catch what can be judged from the resource
alone; these need Prometheus or the API server. A problem holds the rollout
where it is (the stable revision keeps serving) and is reported as the
``ConfigurationValid`` condition and an Event, never as a crash or a rollback.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client

from modelrollout.api.modeldeployment import ModelDeploymentSpec
from modelrollout.kube.client import is_status
from modelrollout.metrics.scoping import ScopeError, scope
from modelrollout.metrics.source import MetricSource, QueryError
from modelrollout.metrics.templates import TemplateError, render

SAMPLE_VARIABLES = {
    "revision": "0123456789",
    "namespace": "default",
    "name": "model",
    "window": "1m",
    "elapsed": "5m",
}


@dataclass(frozen=True, slots=True)
class Problem:
    reason: str
    message: str


def templates(spec: ModelDeploymentSpec) -> list[tuple[str, str]]:
    """Every PromQL template in the spec, with where it stands (for the message)."""
    found: list[tuple[str, str]] = []
    for metric in spec.analysis.metrics:
        if metric.query is not None:
            found.append((f"analysis.metrics[{metric.name}].query", metric.query))
        if metric.proportion is not None:
            found.append((f"analysis.metrics[{metric.name}].proportion.errorsQuery", metric.proportion.errors_query))
            found.append((f"analysis.metrics[{metric.name}].proportion.totalQuery", metric.proportion.total_query))
    found += [(f"circuitBreaker[{m.name}].query", m.query) for m in spec.circuit_breaker]
    return found


def check(
    spec: ModelDeploymentSpec,
    namespace: str,
    api: client.ApiClient,
    metrics: MetricSource,
    *,
    cross_namespace: bool = False,
) -> list[Problem]:
    """Every problem found; a query that reads another namespace is one unless ``cross_namespace``."""
    problems: list[Problem] = []
    for where, template in templates(spec):
        try:
            promql = render(template, {**SAMPLE_VARIABLES, "namespace": namespace})
            if not cross_namespace:
                promql = scope(promql, namespace)
        except TemplateError as error:
            problems.append(Problem("InvalidQueryTemplate", f"{where}: {error}"))
            continue
        except ScopeError as error:
            problems.append(Problem(error.reason, f"{where}: {error}"))
            continue
        try:
            error_text = metrics.validate(promql)
        except QueryError:
            continue  # Prometheus cannot be asked now: that says nothing about the query
        if error_text is not None:
            problems.append(Problem("InvalidQuery", f"{where}: {error_text}"))
    golden = spec.smoke_test.builtin.golden_inputs if spec.smoke_test and spec.smoke_test.builtin else None
    if golden is not None:
        try:
            config_map = client.CoreV1Api(api).read_namespaced_config_map(golden.name, namespace)
        except client.ApiException as error:
            if not is_status(error, 404):
                raise
            problems.append(
                Problem("ConfigMapNotFound", f"smokeTest.builtin.goldenInputs: ConfigMap {golden.name} not found")
            )
        else:
            if golden.key not in (config_map.data or {}):
                problems.append(
                    Problem(
                        "ConfigMapKeyNotFound",
                        f"smokeTest.builtin.goldenInputs: ConfigMap {golden.name} has no key {golden.key}",
                    )
                )
    return problems
