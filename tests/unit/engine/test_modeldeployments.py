"""The ModelDeployment kind's tick through the one loop, without a server: what it converges, routes and records.

The ModelDeployment, what it owns and the platform's HTTPRoute live in the in-memory API server
(:mod:`tests.support.apiserver`), which answers the official client at its REST layer, so the
engine, the converger and the Gateway API and replicas routers run as they do on a cluster, and
the test reads the requests in order. Prometheus is the fake; the clock is the test's. Between
ticks, :meth:`~tests.support.apiserver.InMemoryApiServer.run_workloads` plays the kubelet.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout import GROUP
from modelrollout.api import modeldeployment as md
from modelrollout.config import Settings
from modelrollout.core.actions import ACTION_ANNOTATION, ACTION_ID_ANNOTATION
from modelrollout.core.revisions import RevisionContent
from modelrollout.engine import owners
from modelrollout.engine.context import Context
from modelrollout.engine.modeldeployments import ModelDeployments
from modelrollout.engine.queue import Priority
from modelrollout.engine.reconciler import Reconciler
from modelrollout.engine.resources import ApiResources
from modelrollout.kube import naming
from modelrollout.kube.ownedstore import OwnedStore
from modelrollout.metrics.fake import FakeMetricSource
from tests.support.apiserver import InMemoryApiServer
from tests.support.routes import http_route

NAMESPACE, NAME = "ns", "returns"
GATEWAY = "gateway.networking.k8s.io"
STEP_SECONDS = 10
LATENCY_LIMIT = 0.5
WATCHED = {owned.plural: owned.kept for owned in owners.OWNED}
"""The owned kinds, each kept as the operator keeps it."""


def document(version: str, *, router: str = "gatewayAPI", guardrail: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"name": "next-day-returns", "version": version, "uri": f"s3://models/returns/{version}"},
        "replicas": 4,
        "port": 8080,
        "template": {"spec": {"containers": [{"name": "server", "image": f"model-server:{version}"}]}},
        "strategy": {
            "canary": {"steps": [{"weight": w, "pause": {"duration": f"{STEP_SECONDS}s"}} for w in (5, 25, 50, 100)]}
        },
        "trafficRouting": {"router": router, "gatewayAPI": {"httpRoute": NAME}}
        if router == "gatewayAPI"
        else {"router": router},
    }
    if guardrail:
        spec["analysis"] = {
            "interval": "1s",
            "window": "10s",
            "failureLimit": 1,
            "metrics": [{"name": "latency-p99", "query": 'latency_p99{revision="{{revision}}"}', "max": LATENCY_LIMIT}],
        }
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"namespace": NAMESPACE, "name": NAME},
        "spec": spec,
    }


@dataclass
class World:
    """The API server, Prometheus' answers, the loop, and the test's clock."""

    server: InMemoryApiServer
    reconciler: Reconciler[Any, Any]
    latency: float = 0.1
    """What the canary's p99 latency query answers."""
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 30, 12, tzinfo=UTC))
    watched: OwnedStore | None = None
    """Where the ticks read what the resource owns, when not by LISTs: listed afresh before each tick, as
    the informers would keep it."""

    def answer(self, promql: str) -> float | None:
        if promql.startswith("latency_p99"):
            return self.latency
        if "model_requests_total" in promql:  # the traffic query: the canary has been receiving requests
            return 1000.0
        return None

    def body(self) -> dict[str, Any]:
        return self.server.stored(GROUP, md.PLURAL, NAMESPACE, NAME)

    def status(self) -> dict[str, Any]:
        return dict(self.body().get("status") or {})

    def tick(self, seconds: float = 1.0, *, kubelet: bool = True) -> list[str]:
        """Let ``seconds`` pass, run one full tick (as a change to what it owns would), then the kubelet
        unless ``kubelet`` is False (pods and Jobs then stay as the tick left them); returns the requests
        the tick made."""
        self.now += timedelta(seconds=seconds)
        if self.watched is not None:
            for plural in WATCHED:
                items = [copy.deepcopy(o) for (_, kind, _, _), o in self.server.objects.items() if kind == plural]
                self.watched.replaced(plural, None, items, str(10**9))
        self.server.journal.clear()
        self.reconciler.tick(self.body(), now=self.now, force=True)
        made = list(self.server.journal)
        if kubelet:
            self.server.run_workloads()
        return made

    def change(self, **spec: Any) -> None:
        """The user applies a new spec (the API server bumps the generation)."""
        stored = self.server.objects[GROUP, md.PLURAL, NAMESPACE, NAME]
        stored["spec"] = {**stored["spec"], **spec}
        stored["metadata"]["generation"] += 1

    def route(self) -> dict[str, int]:
        """The HTTPRoute's weights by Service."""
        rule = self.server.stored(GATEWAY, "httproutes", NAMESPACE, NAME)["spec"]["rules"][0]
        return {ref["name"]: ref.get("weight", 1) for ref in rule["backendRefs"]}

    def on_canary(self) -> int:
        """The canary Service's weight on the route (0 while the route names only stable)."""
        return self.route().get(f"{NAME}-canary", 0)

    def replicas(self) -> dict[str, int]:
        return {
            name: self.server.stored("apps", "deployments", NAMESPACE, name)["spec"]["replicas"]
            for name in self.server.named("apps", "deployments", NAMESPACE)
        }

    def healthy_on(self, version: str) -> None:
        """Tick until ``version`` is stable and Healthy (at most a minute of ticks)."""
        for _ in range(60):
            status = self.status()
            if status.get("phase") == "Healthy" and status["stableRevision"]["modelVersion"] == version:
                return
            self.tick()
        raise AssertionError(f"not Healthy on {version}: {self.status()}")


@pytest.fixture
def world() -> World:
    server = InMemoryApiServer()
    metrics = FakeMetricSource(strict=False)
    context = Context(settings=Settings(), metrics=metrics)
    reconciler = Reconciler(ModelDeployments(), context, api=server.api_client, resources=ApiResources)
    made = World(server, reconciler)
    metrics.handler = made.answer
    server.add(GATEWAY, "httproutes", http_route(NAME, f"{NAME}-stable", path_prefix=None, namespace=NAMESPACE))
    return made


def with_stable(world: World, version: str = "1.0.0", **options: Any) -> World:
    world.server.add(GROUP, md.PLURAL, document(version, **options))
    world.healthy_on(version)
    return world


def test_a_new_model_deployment_is_converged_and_then_stable_once_its_pods_are_ready(world: World) -> None:
    world.server.add(GROUP, md.PLURAL, document("1.0.0"))
    first = world.tick()
    assert first[:2] == ["get modeldeployments/returns", "patch modeldeployments/returns/status"], (
        "read afresh; the preflight's ConfigurationValid recorded"
    )
    created = [request for request in first if request.startswith("create ") and request != "create events"]
    assert created == [
        "create controllerrevisions",
        "create deployments",
        "create services",
        "create services",
        "create services",
    ]
    assert first.index("patch modeldeployments/returns/status") < first.index("create events"), "status, then Events"
    assert world.status()["phase"] == "Progressing", "no stable revision before its pods are ready"
    assert world.route() == {f"{NAME}-stable": 1}, "the route is not touched while nothing is stable"

    world.healthy_on("1.0.0")
    assert world.server.named("apps", "controllerrevisions", NAMESPACE) == [f"{NAME}-{_hash(world, 'stable')}"]
    assert world.route() == {f"{NAME}-stable": 100}


def test_a_new_version_moves_through_the_steps_on_the_route_and_becomes_stable(world: World) -> None:
    with_stable(world)
    world.change(**document("2.0.0")["spec"])
    weights: list[int] = []
    for _ in range(80):
        world.tick()
        canary = world.on_canary()
        if not weights or weights[-1] != canary:
            weights.append(canary)
        assert world.status().get("canaryWeight", 0) in (0, canary), "status says only what the route holds"
        if world.status().get("phase") == "Healthy":
            break
    assert weights == [0, 5, 25, 50, 100, 0], "each step on the route, then all traffic on the new stable"
    status = world.status()
    assert status["stableRevision"]["modelVersion"] == "2.0.0"
    assert world.route() == {f"{NAME}-stable": 100}
    assert world.server.named("apps", "deployments", NAMESPACE) == [f"{NAME}-{status['stableRevision']['hash']}"]
    assert world.body()["spec"]["model"]["version"] == "2.0.0"


def test_no_traffic_moves_to_a_canary_before_its_pods_are_ready(world: World) -> None:
    with_stable(world)
    world.change(**document("2.0.0")["spec"])
    for _ in range(5):
        world.tick(STEP_SECONDS, kubelet=False)  # the canary never gets ready
        assert world.on_canary() == 0
    status = world.status()
    assert status["phase"] == "Progressing"
    assert status.get("canaryWeight", 0) == 0
    assert "ready replicas" in status["message"], status["message"]
    settings = world.reconciler.context.settings
    assert world.reconciler.wake_in(world.body(), None) == settings.resync_seconds, (
        "no clock runs while it waits: the watch of its Deployment says when, a resync in case that is lost"
    )
    world.tick(kubelet=True)
    world.tick(kubelet=False)
    assert world.on_canary() == 5
    assert world.reconciler.wake_in(world.body(), None) == settings.tick_seconds, "in its steps: looked at each tick"


def test_a_guardrail_breach_rolls_back_on_the_route_without_editing_the_spec(world: World) -> None:
    with_stable(world, guardrail=True)
    world.change(**document("2.0.0", guardrail=True)["spec"])
    while world.on_canary() == 0:
        world.tick()
    spec, generation = world.body()["spec"], world.body()["metadata"]["generation"]

    world.latency = 2 * LATENCY_LIMIT
    requests: list[str] = []
    for _ in range(10):
        requests = world.tick()
        if world.status()["phase"] == "Degraded":
            break
    status = world.status()
    assert status["phase"] == "Degraded", status
    assert "latency-p99" in status["message"]
    assert world.route() == {f"{NAME}-stable": 100, f"{NAME}-canary": 0}, "all traffic back on stable"
    assert status["stableRevision"]["modelVersion"] == "1.0.0"
    assert (world.body()["spec"], world.body()["metadata"]["generation"]) == (spec, generation), "spec untouched"
    assert requests.index("patch modeldeployments/returns/status") < requests.index("create events")
    assert requests.index("patch modeldeployments/returns/status") < requests.index("patch httproutes/returns"), (
        "a rollback is recorded before it is acted on, so its reason survives a crash in between"
    )


def test_a_step_forward_is_acted_on_first_and_recorded_once_with_what_the_router_confirmed(world: World) -> None:
    with_stable(world)
    world.change(**document("2.0.0")["spec"])
    requests: list[str] = []
    while world.on_canary() == 0:
        requests = world.tick()
    status_writes = [request for request in requests if request == "patch modeldeployments/returns/status"]
    assert status_writes == ["patch modeldeployments/returns/status"], requests
    assert requests.index("patch httproutes/returns") < requests.index("patch modeldeployments/returns/status")
    status = world.status()
    assert (status["canaryWeight"], status["currentStepIndex"]) == (5, 0)
    assert "stepStartedAt" in status, "the one write says the step started: the router confirmed it"
    told = [event["reason"] for (_, plural, _, _), event in world.server.objects.items() if plural == "events"]
    assert told[-1] == "StepStarted", told


def test_a_rollout_of_four_steps_writes_its_status_seven_times(world: World) -> None:
    """The start, each of the four steps once (acted on first), and the promotion twice: recorded before the
    route moves all traffic to the new stable, then Healthy once the route confirms it. Eleven before steps
    were acted on first; a custom resource's status write is the API server's most expensive request here."""
    with_stable(world)
    world.change(**document("2.0.0")["spec"])
    writes = 0
    for _ in range(80):
        writes += world.tick().count("patch modeldeployments/returns/status")
        if world.status()["phase"] == "Healthy" and world.status()["stableRevision"]["modelVersion"] == "2.0.0":
            break
    assert world.status()["stableRevision"]["modelVersion"] == "2.0.0"
    assert writes == 7


def test_an_abort_is_carried_out_once_and_its_annotation_cleared(world: World) -> None:
    with_stable(world)
    world.change(**document("2.0.0")["spec"])
    while world.on_canary() == 0:
        world.tick()
    annotations = {ACTION_ANNOTATION: "abort", ACTION_ID_ANNOTATION: "abort-1"}
    world.server.objects[GROUP, md.PLURAL, NAMESPACE, NAME]["metadata"]["annotations"] = annotations

    requests = world.tick()
    status = world.status()
    assert status["phase"] == "Degraded"
    assert status["lastActionId"] == "abort-1"
    assert world.route() == {f"{NAME}-stable": 100, f"{NAME}-canary": 0}
    assert ACTION_ANNOTATION not in (world.body()["metadata"].get("annotations") or {})
    assert requests[-1] == "patch modeldeployments/returns", "the annotation cleared last, once the abort is recorded"


def test_the_replicas_router_splits_four_replicas_as_near_the_weights_as_it_can(world: World) -> None:
    with_stable(world, router="replicas")
    world.change(**document("2.0.0", router="replicas")["spec"])
    stable = _hash(world, "stable")
    canary = RevisionContent.of(md.ModelDeploymentSpec.model_validate(world.body()["spec"])).hash
    seen: list[tuple[int, int, int]] = []
    while world.status()["stableRevision"]["hash"] != canary and len(seen) < 80:
        world.tick()
        counts = world.replicas()
        step = (
            world.status().get("canaryWeight") or 0,
            counts.get(f"{NAME}-{canary}", 0),
            counts.get(f"{NAME}-{stable}", 0),
        )
        if not seen or seen[-1] != step:
            seen.append(step)
    assert seen == [
        (0, 1, 4),  # the canary's first replica, before any traffic: the stable keeps all four
        (5, 1, 3),  # one replica of four is the least a canary can have: 5% and 25% look alike
        (25, 1, 3),
        (50, 2, 2),
        (100, 4, 0),
        (0, 4, 0),  # promoted: the new stable keeps all four, the old one's Deployment is gone
    ], seen
    assert world.status()["phase"] == "Healthy"
    assert world.status()["stableRevision"]["modelVersion"] == "2.0.0"


def test_with_what_it_owns_watched_a_rollout_lists_nothing_and_reads_no_deployment(world: World) -> None:
    """The same rollout with the owned objects in memory, as the informers keep them: the steps are the same,
    and no tick LISTs what it owns or GETs a Deployment to scale it."""
    world.watched = OwnedStore(naming.MODEL_DEPLOYMENT_LABEL, WATCHED, lambda *_: None)
    world.reconciler.kind.owned = world.watched
    with_stable(world, router="replicas")
    world.change(**document("2.0.0", router="replicas")["spec"])
    made: list[str] = []
    weights: list[int] = []
    while world.status().get("phase") != "Healthy" or not weights:
        made += world.tick()
        weights.append(int(world.status().get("canaryWeight") or 0))
        assert len(weights) < 80, world.status()
    assert [w for i, w in enumerate(weights) if i == 0 or weights[i - 1] != w] == [0, 5, 25, 50, 100, 0]
    assert world.status()["stableRevision"]["modelVersion"] == "2.0.0"
    assert [r for r in made if r.startswith("list ") or r.startswith("get deployments")] == []
    assert "patch deployments" in " ".join(made), "the router still scales"


def _hash(world: World, which: str) -> str:
    return str(world.status()[f"{which}Revision"]["hash"])


@pytest.mark.parametrize("passes", [True, False], ids=["passed: traffic moves", "failed: no traffic, Failed"])
def test_smoke_jobs_gate_the_canary_before_any_traffic(world: World, passes: bool) -> None:
    golden = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "golden", "namespace": NAMESPACE}}
    world.server.add("", "configmaps", {**golden, "data": {"golden.json": "[]"}})
    smoke = {"timeout": "60s", "builtin": {"goldenInputs": {"name": "golden", "key": "golden.json"}}}
    with_stable(world)
    world.change(**document("2.0.0")["spec"], smokeTest=smoke)

    world.tick(kubelet=False)
    assert world.status()["phase"] == "SmokeTesting"
    assert world.server.named("batch", "jobs", NAMESPACE), "the smoke Job created"
    assert world.on_canary() == 0

    world.server.run_workloads(jobs_succeed=passes)
    for _ in range(5):
        world.tick()
    status = world.status()
    if passes:
        assert status["phase"] == "Progressing"
        assert world.on_canary() == 5
    else:
        assert status["phase"] == "Failed", status
        assert "smoke" in status["message"]
        assert world.on_canary() == 0
        assert status["stableRevision"]["modelVersion"] == "1.0.0"


@pytest.mark.parametrize(
    ("annotations", "status", "priority"),
    [
        ({ACTION_ANNOTATION: "abort"}, {"canaryWeight": 25}, Priority.ROLLBACK),
        ({ACTION_ANNOTATION: "abort"}, {}, Priority.ROLLBACK),
        ({ACTION_ANNOTATION: "promote"}, {"canaryWeight": 5}, Priority.IN_TRAFFIC),
        ({}, {"canaryWeight": 5}, Priority.IN_TRAFFIC),
        ({}, {"canaryWeight": 0, "phase": "Progressing"}, Priority.NORMAL),
        ({}, {}, Priority.NORMAL),
    ],
)
def test_an_abort_goes_first_then_a_canary_in_traffic(
    annotations: dict[str, str], status: dict[str, Any], priority: Priority
) -> None:
    body = {"metadata": {"name": "m", "namespace": "ns", "annotations": annotations}, "status": status}
    assert ModelDeployments().priority(body) == priority
