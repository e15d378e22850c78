"""Scenario 3: a new trading model goes 5% -> 25% -> 50% -> 100%, and is rolled back when it degrades.

"The new model is better, just deploy it to 100%" is what the staged canary replaces. Each step
is observed twice: in ModelDeployment status and in the router's own state, which is what a
gateway obeys (HTTPRoute backend weights, or Deployment replica counts behind the root Service).
A canary whose error rate rises mid-rollout is rolled back by the operator on its own, without
touching the spec, and a canary tripping a circuit breaker is aborted on the first evaluation
instead of after the failure limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from e2e.conftest import NAME, Stage, following_traffic
from e2e.gwt import Scenario
from e2e.harness.scenario import ERROR_RATIO_QUERY, model_deployment
from e2e.harness.traffic import Traffic
from tests.support.experiments import directional_accuracy
from tests.support.rollouts import is_stable_on
from tests.support.routes import http_route
from tests.support.settling import settle
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROUTE = "returns"
STEPS = [5, 25, 50, 100]
GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")


def document(version: str, *, pause: str = "3s", **options: Any) -> dict[str, Any]:
    return model_deployment(NAME, version, pause=pause, **options)


def route_canary_weight(stage: Stage) -> int:
    """The canary Service's weight on the route's weighted rule, as the gateway reads it."""
    route = client.CustomObjectsApi(stage.api).get_namespaced_custom_object(
        *GATEWAY[:2], stage.namespace, GATEWAY[2], ROUTE
    )
    refs = route["spec"]["rules"][0].get("backendRefs", [])
    return sum(int(r.get("weight", 1)) for r in refs if r["name"] == f"{NAME}-canary")


def canary_replicas(stage: Stage, revision: str) -> int:
    deployments = client.AppsV1Api(stage.api).list_namespaced_deployment(
        stage.namespace, label_selector=f"modelrollout.dev/revision={revision}"
    )
    return sum(d.spec.replicas or 0 for d in deployments.items)


def changes(seen: list[int], value: int) -> None:
    """Append ``value`` when it differs from the last one: the sequence of distinct values over time."""
    if value and (not seen or seen[-1] != value):
        seen.append(value)


def test_gateway_api_rollout_goes_5_25_50_100_in_status_and_on_the_http_route(stage: Stage) -> None:
    story = Scenario("a healthy v2 is rolled out in four steps on an HTTPRoute")
    router = {"router": "gatewayAPI", "gatewayAPI": {"httpRoute": ROUTE}}
    client.CustomObjectsApi(stage.api).create_namespaced_custom_object(
        *GATEWAY[:2], stage.namespace, GATEWAY[2], http_route(ROUTE, f"{NAME}-stable")
    )
    with following_traffic(stage) as traffic:
        with story.given("v1 serves all traffic through the route"):
            stage.create(document("1.0.0", router=router))
            stage.healthy_on("1.0.0")
            assert route_canary_weight(stage) == 0

        with story.when("v2 is committed"):
            stage.update_spec(document("2.0.0", router=router)["spec"])

        with story.then("status and the route both show 5, 25, 50 and 100 in that order"):
            in_status: list[int] = []
            on_route: list[int] = []
            to_canary: list[float] = []
            recorded = False

            def look(status: dict[str, Any]) -> bool:
                nonlocal recorded
                if status.get("stepStartedAt"):
                    changes(in_status, int(status.get("canaryWeight") or 0))
                changes(on_route, route_canary_weight(stage))
                canary = stage.kubelet.server((status.get("currentRevision") or {}).get("hash", ""))
                shares = stage.weights()
                if canary is not None and canary.url in shares and status.get("phase") == "Progressing":
                    to_canary.append(shares[canary.url] / sum(shares.values()))
                if status.get("phase") == "Progressing" and status.get("canaryWeight") == 25 and not recorded:
                    stage.record("ModelDeployment", NAME, "modeldeployment-progressing.yaml")
                    recorded = True
                return is_stable_on(status, "2.0.0")

            status = stage.settle(look, 150, "v2 to become stable")
            assert in_status == STEPS
            assert on_route == STEPS
            v2 = stage.kubelet.server(status["stableRevision"]["hash"])
            assert v2 is not None
            assert list(stage.weights()) == [v2.url], "once Healthy, whatever the route says reaches v2 only"
            stage.settle(lambda _: route_canary_weight(stage) == 0, 10, "the route to name only the stable Service")
            assert min(to_canary) == pytest.approx(0.05)
            assert max(to_canary) == pytest.approx(1.0)

        with story.and_("each step was announced and guardrails passed"):
            assert len(stage.told("StepStarted", more_than=3)) == 4
            assert stage.told("RolloutCompleted")
            assert status["analysis"]["verdict"] == "Pass"
            assert (stage.condition("RouterReady") or {}).get("status") == "True"
            assert traffic.sent > 0


def test_degradation_at_25_percent_rolls_back_to_stable(stage: Stage) -> None:
    story = Scenario("a canary whose errors rise at 25% is rolled back automatically")
    replicas = 20
    with following_traffic(stage) as traffic:
        with story.given("v1 serves all 20 replicas"):
            stage.create(document("1.0.0", replicas=replicas))
            stable = stage.healthy_on("1.0.0")["stableRevision"]

        with story.when("v2 reaches 25% (5 of 20 replicas) and then starts failing 60% of requests"):
            stage.update_spec(document("2.0.0", replicas=replicas, pause="30s")["spec"])
            seen: list[int] = []

            def at_25(status: dict[str, Any]) -> bool:
                current = (status.get("currentRevision") or {}).get("hash")
                if current and current != stable["hash"] and status.get("stepStartedAt"):
                    changes(seen, canary_replicas(stage, current))
                return status.get("canaryWeight") == 25 and bool(status.get("stepStartedAt"))

            status = stage.settle(at_25, 90, "the 25% step")
            canary = status["currentRevision"]
            assert seen == [1, 5], "5% then 25% of 20 replicas"
            server = stage.kubelet.server(canary["hash"])
            assert server is not None
            server.set_faults(error_rate=0.6)
            failing_since = time.monotonic()

        with story.then("the operator rolls back to v1 on its own"):
            status = stage.settle(lambda s: s.get("phase") == "Degraded", 60, "automatic rollback")
            assert time.monotonic() - failing_since < 30, "well before the 30 s step would have ended"
            assert status["stableRevision"] == stable
            assert status["canaryWeight"] == 0
            assert status["history"][0]["outcome"] == "Degraded"
            failing = [m for m in status["analysis"]["metrics"] if m["verdict"] == "Fail"]
            assert [m["name"] for m in failing] == ["error-rate"]
            assert stage.told("AnalysisFailed")
            assert stage.ns.get(NAME)["spec"]["model"]["version"] == "2.0.0", "the spec is left as Git has it"
            stage.record("ModelDeployment", NAME, "modeldeployment-degraded.yaml")

        with story.and_("all traffic is back on v1"):
            stable_server = stage.kubelet.server(stable["hash"])
            assert stable_server is not None
            stage.settle(
                lambda _: list(stage.weights()) == [stable_server.url], 20, "the router to send everything to v1"
            )
            assert canary_replicas(stage, canary["hash"]) == 0
            assert traffic.sent > 0


def test_circuit_breaker_aborts_at_once(stage: Stage) -> None:
    story = Scenario("a canary with critical errors trips the circuit breaker on its first evaluation")
    breaker = [{"name": "error-storm", "query": ERROR_RATIO_QUERY, "max": 0.5}]
    with following_traffic(stage):
        with story.given("v1 serves all traffic"):
            stage.create(document("1.0.0", replicas=20))
            stable = stage.healthy_on("1.0.0")["stableRevision"]

        with story.when("v2, failing 90% of requests, starts its canary with a circuit breaker"):
            stage.update_spec(
                document(
                    "2.0.0",
                    replicas=20,
                    pause="20s",
                    server_args=["--error-rate", "0.9"],
                    smoke=False,
                    circuit_breaker=breaker,
                )["spec"]
            )
            stage.settle(lambda s: s.get("canaryWeight") == 5 and s.get("stepStartedAt"), 60, "the 5% step")
            started = time.monotonic()

        with story.then("the rollout is aborted at the first step, not after the failure limit"):
            status = stage.settle(lambda s: s.get("phase") == "Degraded", 30, "the circuit breaker")
            assert time.monotonic() - started < 20, "before the first step's pause would have ended"
            assert "circuit breaker" in status["message"]
            assert status["stableRevision"] == stable
            assert status["canaryWeight"] == 0
            assert status["aborted"] is True
            tripped = stage.told("CircuitBreakerTripped")
            assert "error-storm" in tripped[-1].message
            assert not stage.events(reason="AnalysisFailed"), "aborted by the breaker, not by guardrails"
            assert len(stage.events(reason="StepStarted")) == 1, "never left the 5% step"


EXPERIMENT_ROUTE = "returns-experiment"


def experiment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "champion": {"name": "champion", "modelDeployment": "returns-champion", "weight": 50},
            "challengers": [{"name": "challenger", "modelDeployment": "returns-challenger", "weight": 50}],
            "trafficRouting": {"router": "gatewayAPI", "gatewayAPI": {"httpRoute": EXPERIMENT_ROUTE}},
            "primaryMetric": directional_accuracy(),
            "interval": "2s",
            "window": "10s",
            "minDuration": "10s",
            "maxDuration": "90s",
        },
    }


def experiment_route_weights(stage: Stage) -> dict[str, float]:
    """What the gateway does with the experiment's route: server URL -> weight (the weighted rule only)."""
    try:
        route = client.CustomObjectsApi(stage.api).get_namespaced_custom_object(
            *GATEWAY[:2], stage.namespace, GATEWAY[2], EXPERIMENT_ROUTE
        )
    except client.ApiException:
        return {}
    rules = [r for r in route["spec"]["rules"] if not str(r.get("name", "")).startswith("modelrollout-")]
    shares: dict[str, float] = {}
    for ref in rules[0].get("backendRefs", []):
        url = stage.kubelet.service_url(ref["name"])
        if url is not None and int(ref.get("weight", 1)) > 0:
            shares[url] = float(ref.get("weight", 1))
    return shares


def experiment_settles(
    stage: Stage, predicate: Callable[[dict[str, Any]], bool], timeout: float, message: str
) -> dict[str, Any]:
    """Wait for the Experiment's status; on timeout show it rather than only "timed out"."""

    def status() -> dict[str, Any]:
        return dict(stage.get("Experiment", "champion-vs-challenger").get("status") or {})

    settle(status, predicate, timeout, message, explain=lambda: f"Experiment status: {status()}", interval=0.5)
    return status()


def test_an_ab_experiment_finds_the_better_model_with_significance(stage: Stage) -> None:
    story = Scenario("an A/B test of the production model against a challenger decides with a confidence interval")
    route = http_route(EXPERIMENT_ROUTE, "returns-champion-stable")
    with story.given("the production model (noisier predictions) and a challenger, each deployed"):
        for name, version, args in (
            ("returns-champion", "1.0.0", ["--degrade", "2"]),
            ("returns-challenger", "2.0.0", []),
        ):
            stage.create(model_deployment(name, version, server_args=args, smoke=False))
        for name, version in (("returns-champion", "1.0.0"), ("returns-challenger", "2.0.0")):
            stage.healthy_on(version, name=name)
        client.CustomObjectsApi(stage.api).create_namespaced_custom_object(
            *GATEWAY[:2], stage.namespace, GATEWAY[2], route
        )

    with Traffic(lambda: experiment_route_weights(stage), rate=120.0):
        with story.when("an Experiment splits users 50/50 and realised returns are fed back"):
            stage.create(experiment("champion-vs-challenger"))

        with story.then("it runs with both arms on the route"):
            wait_for(lambda: len(experiment_route_weights(stage)) == 2, 30, message="both arms on the route")
            running = experiment_settles(
                stage,
                lambda s: (
                    s.get("phase") == "Running" and bool(s.get("arms")) and all(a.get("samples") for a in s["arms"])
                ),
                30,
                "Running with samples in both arms",
            )
            assert running["design"]["samplesPerArm"] > 0
            stage.record("Experiment", "champion-vs-challenger", "experiment-running.yaml")

        with story.then("it concludes: promote the challenger, with a significant improvement"):
            status = experiment_settles(
                stage, lambda s: s.get("phase") in ("Concluded", "Stopped", "Failed"), 100, "the decision"
            )
            stage.record("Experiment", "champion-vs-challenger", "experiment-concluded.yaml")
            decision = status["decision"]
            assert status["phase"] == "Concluded", f"{status['phase']}: {decision.get('reason')}"
            shown = ("name", "samples", "estimate", "pValue", "interval")
            arms = [{key: arm.get(key) for key in shown} for arm in status["arms"]]
            assert (decision["outcome"], decision.get("winner")) == ("Promote", "challenger"), (decision, arms)
            challenger = next(a for a in status["arms"] if a["name"] == "challenger")
            assert challenger["pValue"] < 0.05
            assert challenger["interval"][0] > 0, "the whole confidence interval is an improvement"
            assert not decision["promoted"], "autoPromote is off: the recommendation goes to Git"

    with story.and_("all traffic is back on the champion"):
        wait_for(lambda: list(experiment_route_weights(stage).values()) == [100.0], 20, message="champion-only route")
