"""Scenario 4: model health is structured metrics in Prometheus and alerts in Alertmanager, not log lines.

"We have logs, that's monitoring" is answered with the real pipeline: Prometheus scrapes the
model server (labelled by namespace, model, revision and role, as a ServiceMonitor would) and
the operator's own /metrics. Latency percentiles, throughput, error rate, missing data and range
violations are read back with PromQL, the chart's recording rules compute their series, and the
chart's alert rules, loaded into the running Prometheus, fire in the real Alertmanager and reach
its webhook receiver when the error rate spikes and when latency rises.

The rule file is the chart's own; only the ``for:`` durations are shortened here, in the test,
so an alert fires within seconds instead of minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.conftest import NAME, OPERATOR_JOB, Stage, following_traffic
from e2e.dataplane import REPO_ROOT
from e2e.gwt import Scenario
from e2e.harness.scenario import model_deployment
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RULES = REPO_ROOT / "charts" / "modelrollout" / "files" / "prometheus-rules.yaml"
ALERT_FOR = "3s"
MISSING_RATE = 0.1
OUT_OF_RANGE_FEATURE = "volume_zscore"
WINDOW = "20s"


def chart_rules_for_tests() -> str:
    """The chart's rule file with every alert's ``for:`` shortened; expressions and labels unchanged."""
    document: dict[str, Any] = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = ALERT_FOR
    return yaml.safe_dump(document, sort_keys=False)


@pytest.fixture
def chart_rules(stage: Stage) -> Iterator[None]:
    name = f"e2e-chart-rules-{stage.namespace}"
    stage.prometheus.add_rules(name, chart_rules_for_tests())
    try:
        yield
    finally:
        stage.prometheus.remove_rules(name)


@pytest.fixture
def operator_scraped(stage: Stage) -> Iterator[None]:
    stage.prometheus.add_target(OPERATOR_JOB, stage.operator.metrics_target)
    try:
        yield
    finally:
        stage.prometheus.remove_target(OPERATOR_JOB, stage.operator.metrics_target)


def received(stage: Stage, alertname: str) -> list[dict[str, Any]]:
    """Firing alerts of this namespace that reached the Alertmanager webhook receiver."""
    return [
        a
        for a in stage.prometheus.alerts_received()
        if a["labels"].get("alertname") == alertname
        and a["labels"].get("namespace") == stage.namespace
        and a["status"] == "firing"
    ]


def eventually(stage: Stage, promql: str, accept: Any, timeout: float = 30) -> float:
    """The query's value once ``accept(value)`` holds (Prometheus scrapes every second)."""
    value = wait_for(
        lambda: (v := stage.query(promql)) is not None and accept(v) and (v,), timeout, interval=0.5, message=promql
    )
    result: float = value[0]
    return result


def test_model_and_operator_metrics_are_queryable_and_chart_alerts_reach_the_webhook(
    stage: Stage, chart_rules: None, operator_scraped: None
) -> None:
    story = Scenario("structured metrics and alerts for a model in production")
    ns = f'namespace="{stage.namespace}"'
    with following_traffic(stage, missing_rate=MISSING_RATE, shift={OUT_OF_RANGE_FEATURE: 6.0}) as traffic:
        with story.given("v1 in production; clients leave 10% of features out and send volume_zscore off-scale"):
            stage.create(model_deployment(NAME, "1.0.0", smoke=False))
            status = stage.healthy_on("1.0.0")
            revision = status["stableRevision"]["hash"]
            server = wait_for(lambda: stage.kubelet.server(revision), 10, message="v1's server")

        with story.then("the operator's own metrics are in Prometheus"):
            stage.prometheus.wait_for_target(OPERATOR_JOB, stage.operator.metrics_target)
            selector = f'{ns},name="{NAME}",job="{OPERATOR_JOB}"'
            eventually(stage, f'modelrollout_rollout_phase{{{selector},phase="Healthy"}}', lambda v: v == 1)
            assert stage.query(f'modelrollout_rollout_phase{{{selector},phase="Degraded"}}') == 0
            assert stage.query(f"modelrollout_canary_weight{{{selector}}}") == 0
            assert (stage.query(f'sum(modelrollout_kube_requests_total{{job="{OPERATOR_JOB}"}})') or 0) > 0
            reconciles = f'sum(modelrollout_reconcile_duration_seconds_count{{job="{OPERATOR_JOB}"}})'
            assert (stage.query(reconciles) or 0) > 0

        with story.and_("latency p50, p95 and p99 of the model server come from its histogram"):
            buckets = f"sum by (le) (rate(model_request_duration_seconds_bucket{{{ns}}}[{WINDOW}]))"
            p50 = eventually(stage, f"histogram_quantile(0.50, {buckets})", lambda v: v > 0)
            p95 = eventually(stage, f"histogram_quantile(0.95, {buckets})", lambda v: v > 0)
            p99 = eventually(stage, f"histogram_quantile(0.99, {buckets})", lambda v: v > 0)
            assert p50 <= p95 <= p99 < 0.5, (p50, p95, p99)

        with story.and_("throughput matches what the clients send"):
            throughput = eventually(stage, f"sum(rate(model_predictions_total{{{ns}}}[{WINDOW}]))", lambda v: v > 10)
            assert throughput < 60, throughput
            recorded = f'model:predictions:rate5m{{{ns},revision="{revision}",role="stable"}}'
            eventually(stage, recorded, lambda v: v > 0)

        with story.and_("missing data and range violations are counted per feature"):
            missing = stage.query_all(
                f"sum by (feature) (increase(model_feature_missing_total{{{ns}}}[{WINDOW}]))"
                f" / sum by (feature) (increase(model_feature_observations_total{{{ns}}}[{WINDOW}]))",
                by="feature",
            )
            numeric = {f: r for f, r in missing.items() if f != "sector"}
            assert len(numeric) >= 5, missing
            assert all(0.04 < r < 0.2 for r in numeric.values()), numeric
            out_of_range = stage.query_all(
                f"sum by (feature) (increase(model_feature_out_of_range_total{{{ns}}}[{WINDOW}]))"
                f" / sum by (feature) (increase(model_feature_observations_total{{{ns}}}[{WINDOW}]))",
                by="feature",
            )
            assert out_of_range[OUT_OF_RANGE_FEATURE] > 0.5, out_of_range
            assert all(r < 0.05 for f, r in out_of_range.items() if f != OUT_OF_RANGE_FEATURE), out_of_range
            assert traffic.errors == 0, "missing values are answered, not failed"

        with story.and_("no alert fires for a healthy model"):
            errors = f'sum(rate(model_requests_total{{{ns},code=~"5.."}}[{WINDOW}])) or vector(0)'
            assert stage.query(errors) == 0
            assert received(stage, "ModelLatencyP99High") == []
            assert received(stage, "ModelErrorRateHigh") == []

        with story.when("the model server starts failing 20% of requests"):
            server.set_faults(error_rate=0.2)

        with story.then("the error rate shows in Prometheus and ModelErrorRateHigh reaches the webhook"):
            ratio = (
                f'sum(rate(model_requests_total{{{ns},code=~"5.."}}[{WINDOW}]))'
                f" / sum(rate(model_requests_total{{{ns}}}[{WINDOW}]))"
            )
            eventually(stage, ratio, lambda v: v > 0.05)
            alerts = wait_for(lambda: received(stage, "ModelErrorRateHigh"), 45, message="ModelErrorRateHigh")
            assert alerts[0]["labels"]["revision"] == revision
            assert alerts[0]["labels"]["severity"] == "warning"
            assert received(stage, "ModelLatencyP99High") == [], "errors alone do not page for latency"

        with story.when("its latency rises to 700 ms"):
            server.set_faults(error_rate=0.0, latency_ms=700)

        with story.then("p99 latency rises over 500 ms and ModelLatencyP99High reaches the webhook"):
            eventually(stage, f"histogram_quantile(0.99, {buckets})", lambda v: v > 0.5)
            alerts = wait_for(lambda: received(stage, "ModelLatencyP99High"), 45, message="ModelLatencyP99High")
            alert = alerts[0]
            assert (alert["labels"]["model"], alert["labels"]["revision"]) == ("next-day-returns", revision)
            assert alert["labels"]["role"] == "stable"
            assert "p99 latency of next-day-returns" in alert["annotations"]["summary"]
