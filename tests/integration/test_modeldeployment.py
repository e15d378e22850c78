"""The ModelDeployment controller on a real API server, with real model servers, Prometheus and smoke checks.

The operator runs as its own process (``modelrollout run``), the local kubelet
serves each owned Deployment with a sample model-server process and runs
built-in smoke Jobs for real, and steady traffic follows the router's state.
Assertions read resource status, Events, router state and Prometheus, never logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from e2e.harness.kubelet import LocalKubelet
from e2e.harness.operator import OperatorProcess
from e2e.harness.promproxy import CuttableProxy
from e2e.harness.scenario import ERROR_RATIO_QUERY, Namespace, model_deployment
from e2e.harness.traffic import Traffic
from tests.support.rollouts import is_stable_on, router_weights
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration
NAME = "returns"


@pytest.fixture(scope="module")
def proxy(prometheus: Any) -> Iterator[CuttableProxy]:
    upstream = urlparse(prometheus.url)
    with CuttableProxy(upstream.hostname or "127.0.0.1", upstream.port or 80) as cuttable:
        yield cuttable


@pytest.fixture(scope="module")
def operator_prometheus_url(proxy: CuttableProxy) -> str:
    """The operator reads Prometheus through a proxy the outage scenario cuts."""
    return proxy.url


@pytest.fixture
def traffic(kubelet: LocalKubelet, ns: Namespace) -> Iterator[Traffic]:
    with Traffic(lambda: router_weights(kubelet, NAME), rate=40.0) as running:
        yield running


def phase(ns: Namespace) -> str | None:
    return ns.status(NAME).get("phase")


def deploy_v1(ns: Namespace) -> dict[str, Any]:
    document = model_deployment(NAME, "1.0.0")
    ns.create(document)
    wait_for(lambda: phase(ns) == "Healthy", 60, message="v1 healthy")
    return document


def roll_out(ns: Namespace, document: dict[str, Any], version: str, **changes: Any) -> dict[str, Any]:
    new = model_deployment(NAME, version, **changes)
    ns.update_spec(NAME, new["spec"])
    return new


def weights_seen(ns: Namespace, until: Any, timeout: float) -> list[int]:
    """Canary weights in the order status showed them, until ``until(status)``."""
    seen: list[int] = []

    def look() -> bool:
        status = ns.status(NAME)
        weight = status.get("canaryWeight", 0)
        if status.get("stepStartedAt") and (not seen or seen[-1] != weight):
            seen.append(weight)
        return bool(until(status))

    wait_for(look, timeout, interval=0.1, message=f"rollout to finish (weights so far {seen})")
    return seen


def test_healthy_v2_goes_5_25_50_100_and_becomes_stable(ns: Namespace, kubelet: LocalKubelet, traffic: Traffic) -> None:
    deploy_v1(ns)
    roll_out(ns, {}, "2.0.0")
    seen = weights_seen(ns, lambda s: is_stable_on(s, "2.0.0"), 150)
    assert seen == [5, 25, 50, 100]
    status = ns.status(NAME)
    assert [h["outcome"] for h in status["history"]][:2] == ["Stable", "Superseded"]
    assert status["stableRevision"]["number"] == 2, "one revision per spec change (no stale-status replays)"
    assert status["analysis"]["verdict"] == "Pass"
    assert {m["name"] for m in status["analysis"]["metrics"]} == {"error-rate", "latency-p99"}
    assert ns.has_event(NAME, "SmokeTestPassed")
    wait_for(lambda: ns.event_reasons(NAME).count("RolloutCompleted") == 2, 15, message="v1 and v2 completed")
    assert ns.event_reasons(NAME).count("StepStarted") == 4
    assert any(run["exitCode"] == 0 for run in kubelet.smoke_runs), "the smoke check really ran"
    assert traffic.sent > 0


def test_smoke_failure_never_gets_traffic(ns: Namespace, kubelet: LocalKubelet, traffic: Traffic) -> None:
    deploy_v1(ns)
    roll_out(ns, {}, "3.0.0", server_args=["--out-of-range"])
    wait_for(lambda: phase(ns) == "Failed", 90, message="v3 failed its smoke tests")
    status = ns.status(NAME)
    assert status["stableRevision"]["modelVersion"] == "1.0.0"
    assert status["canaryWeight"] == 0
    assert status["history"][0]["outcome"] == "SmokeFailed"
    assert "output_range" in status["smokeTest"]["reason"]
    assert ns.has_event(NAME, "SmokeTestFailed")
    assert ns.condition(NAME, "Degraded")["reason"] == "SmokeTestFailed"
    assert all(w.get("weight") != 5 for w in [status]), "never moved traffic"


def test_error_rate_rising_at_25_percent_rolls_back(ns: Namespace, kubelet: LocalKubelet, traffic: Traffic) -> None:
    deploy_v1(ns)
    roll_out(ns, {}, "4.0.0")
    wait_for(
        lambda: ns.status(NAME).get("canaryWeight") == 25 and ns.status(NAME).get("stepStartedAt"), 90, message="25%"
    )
    canary = ns.status(NAME)["currentRevision"]["hash"]
    server = wait_for(lambda: kubelet.server(canary), 10, message="canary server")
    server.set_faults(error_rate=0.6)
    wait_for(lambda: phase(ns) == "Degraded", 60, message="automatic rollback")
    status = ns.status(NAME)
    assert status["stableRevision"]["modelVersion"] == "1.0.0"
    assert status["history"][0]["outcome"] == "Degraded"
    failing = [m for m in status["analysis"]["metrics"] if m["verdict"] == "Fail"]
    assert [m["name"] for m in failing] == ["error-rate"]
    assert failing[0]["pValue"] < failing[0]["alpha"] == 0.05, "a Fail carries its error rate"
    assert failing[0]["value"] > failing[0]["stableValue"]
    assert ns.get(NAME)["spec"]["model"]["version"] == "4.0.0", "automatic rollback never edits the spec"
    wait_for(
        lambda: list(kubelet.weights(NAME)) == [kubelet.server(status["stableRevision"]["hash"]).url],
        20,
        message="all traffic back on stable",
    )
    assert ns.has_event(NAME, "AnalysisFailed")


def test_circuit_breaker_aborts_at_once(ns: Namespace, kubelet: LocalKubelet, traffic: Traffic) -> None:
    deploy_v1(ns)
    breaker = [{"name": "error-storm", "query": ERROR_RATIO_QUERY, "max": 0.5}]
    roll_out(ns, {}, "5.0.0", server_args=["--error-rate", "0.9"], smoke=False, circuit_breaker=breaker)
    wait_for(lambda: phase(ns) == "Degraded", 60, message="circuit breaker")
    status = ns.status(NAME)
    assert "circuit breaker" in status["message"]
    assert ns.has_event(NAME, "CircuitBreakerTripped")
    assert status["canaryWeight"] == 0


def test_prometheus_unreachable_holds_then_follows_the_no_data_policy(
    ns: Namespace, kubelet: LocalKubelet, traffic: Traffic, proxy: CuttableProxy
) -> None:
    deploy_v1(ns)
    document = model_deployment(NAME, "6.0.0")
    document["spec"]["analysis"]["noDataLimit"] = 4
    ns.update_spec(NAME, document["spec"])
    wait_for(lambda: ns.status(NAME).get("stepStartedAt"), 60, message="first step")
    proxy.cut()
    try:
        weight = ns.status(NAME)["canaryWeight"]
        wait_for(lambda: phase(ns) == "Degraded", 60, message="rollback after the no-data limit")
        status = ns.status(NAME)
        assert "without data" in status["message"]
        assert max(h for h in [weight]) <= 25, "held its weight, never promoted on missing data"
        assert ns.has_event(NAME, "AnalysisNoData")
    finally:
        proxy.restore()


def test_operator_killed_mid_rollout_finishes_correctly(
    ns: Namespace, kubelet: LocalKubelet, traffic: Traffic, operator: OperatorProcess
) -> None:
    deploy_v1(ns)
    roll_out(ns, {}, "7.0.0")
    wait_for(lambda: ns.status(NAME).get("canaryWeight") == 25, 90, message="25%")
    operator.kill()
    operator.start()
    seen = weights_seen(ns, lambda s: is_stable_on(s, "7.0.0"), 150)
    assert seen[-1] == 100
    assert set(seen) <= {25, 50, 100}
    wait_for(lambda: ns.event_reasons(NAME).count("RolloutCompleted") == 2, 15, message="v1 and v2 completed")
    reasons = ns.event_reasons(NAME)
    assert reasons.count("StepStarted") == 4, "v1 has no steps; v2 four, none repeated after the restart"


def test_missing_route_is_a_condition_not_a_crash(ns: Namespace, kubelet: LocalKubelet) -> None:
    document = model_deployment(NAME, "1.0.0", router={"router": "gatewayAPI", "gatewayAPI": {"httpRoute": "absent"}})
    ns.create(document)
    condition = wait_for(lambda: ns.condition(NAME, "RouterReady"), 60, message="RouterReady condition")
    wait_for(lambda: ns.condition(NAME, "RouterReady")["status"] == "False", 30, message="router problem reported")
    assert ns.condition(NAME, "RouterReady")["reason"] == "RouteNotFound"
    assert condition is not None


def test_invalid_promql_holds_the_rollout_with_a_condition(
    ns: Namespace, kubelet: LocalKubelet, traffic: Traffic
) -> None:
    deploy_v1(ns)
    document = model_deployment(NAME, "8.0.0")
    document["spec"]["analysis"]["metrics"][1]["query"] = (
        'rate(model_requests_total{revision="{{revision}}"}[{{window}}]'
    )
    ns.update_spec(NAME, document["spec"])
    wait_for(lambda: (ns.condition(NAME, "ConfigurationValid") or {}).get("status") == "False", 30, message="condition")
    condition = ns.condition(NAME, "ConfigurationValid")
    assert condition["reason"] == "InvalidQuery"
    assert "latency-p99" in condition["message"]
    assert ns.has_event(NAME, "InvalidQuery")
    status = ns.status(NAME)
    assert status["currentRevision"]["modelVersion"] == "1.0.0", "no rollout starts on a broken spec"
    assert status["phase"] == "Healthy"


def test_missing_golden_config_map_is_reported(ns: Namespace, kubelet: LocalKubelet) -> None:
    document = model_deployment(NAME, "1.0.0")
    document["spec"]["smokeTest"]["builtin"]["goldenInputs"]["name"] = "no-such-config-map"
    ns.create(document)
    wait_for(lambda: ns.condition(NAME, "ConfigurationValid"), 30, message="condition")
    condition = ns.condition(NAME, "ConfigurationValid")
    assert condition["status"] == "False"
    assert condition["reason"] == "ConfigMapNotFound"
    assert "no-such-config-map" in condition["message"]
