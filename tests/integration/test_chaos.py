"""Chaos: ten rollouts at once while the operator is killed with SIGKILL at seeded random moments.

Half use the replicas router, half a Gateway API HTTPRoute; some canaries fail 50% of their requests.
The operator is killed and restarted until every rollout is at rest. Then: every healthy canary is
promoted and every degraded one rolled back; no weight outside [0, 100] was ever seen in status or on
a route; each rollout's steps came in order, none skipped or repeated (from its StepStarted Events);
and every Event the status handed a number was posted exactly once.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from kubernetes import client

from e2e.harness.scenario import ERROR_QUERY, TOTAL_QUERY, Namespace, model_deployment
from e2e.harness.traffic import Traffic
from hack.localcluster.harness import LocalCluster
from hack.localprom.harness import LocalPrometheus
from modelrollout.engine.writing import SEQUENCE_ANNOTATION
from tests.integration.isolated import exactly_once
from tests.support.operators import OwnOperator, own_operator
from tests.support.rollouts import is_stable_on, router_weights
from tests.support.routes import http_route
from tests.support.waiting import pace, wait_for

pytestmark = pytest.mark.integration
PREFIX = "mrchaos-"
"""Outside ``mr-*``, which other sessions' test operators watch: only this test's operator acts here."""
SEED = 20261130
ROLLOUTS = 10
DEGRADED = {"r2", "r5", "r8"}
"""Canaries failing half their requests: rolled back."""
GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")
STEPS = [20, 50, 100]
ANALYSIS = {
    "interval": "1s",
    "window": "10s",
    "failureLimit": 2,
    "noDataLimit": 120,
    # A wide margin: a healthy canary passes a step on a few dozen requests, so the test takes minutes.
    "metrics": [
        {
            "name": "error-rate",
            "proportion": {"errorsQuery": ERROR_QUERY, "totalQuery": TOTAL_QUERY, "maxIncrease": 0.2},
        }
    ],
}


def names() -> list[str]:
    return [f"r{i}" for i in range(ROLLOUTS)]


def router(name: str) -> dict[str, Any]:
    if int(name[1:]) % 2:
        return {"router": "gatewayAPI", "gatewayAPI": {"httpRoute": name}}
    return {"router": "replicas"}


def document(name: str, version: str) -> dict[str, Any]:
    faulty = version == "2.0.0" and name in DEGRADED
    made = model_deployment(
        name,
        version,
        pause="2s",
        smoke=False,
        router=router(name),
        analysis=ANALYSIS,
        server_args=["--error-rate", "0.5"] if faulty else None,
    )
    made["spec"]["strategy"]["canary"]["steps"] = [{"weight": w, "pause": {"duration": "2s"}} for w in STEPS]
    return made


class Observer(threading.Thread):
    """Every weight status and routes show, polled with one LIST per kind, for the bounds check."""

    def __init__(self, ns: Namespace) -> None:
        super().__init__(daemon=True)
        self.ns = ns
        self.weights: list[tuple[str, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        objects = client.CustomObjectsApi(self.ns.api)
        while not self.stopping.wait(0.5):
            try:
                listed = objects.list_namespaced_custom_object(
                    "modelrollout.dev", "v1alpha1", self.ns.name, "modeldeployments"
                )
                routes = objects.list_namespaced_custom_object(*GATEWAY[:2], self.ns.name, GATEWAY[2])
            except client.ApiException:
                continue
            for item in listed["items"]:
                self.weights.append((item["metadata"]["name"], int((item.get("status") or {}).get("canaryWeight", 0))))
            for route in routes["items"]:
                for rule in route["spec"].get("rules", []):
                    for ref in rule.get("backendRefs", []):
                        self.weights.append((route["metadata"]["name"], int(ref.get("weight", 1))))


@pytest.fixture
def setting(cluster: LocalCluster, prometheus: LocalPrometheus, crds: None) -> Iterator[OwnOperator]:
    with own_operator(cluster, prometheus, PREFIX) as own:
        yield own


def at_rest(ns: Namespace, name: str) -> bool:
    status = ns.status(name)
    if name in DEGRADED:
        return status.get("phase") == "Degraded"
    return is_stable_on(status, "2.0.0")


def test_ten_rollouts_survive_random_sigkills_with_every_end_state_step_and_event_right(
    setting: OwnOperator,
) -> None:
    ns, operator, kubelet = setting
    rng = random.Random(SEED)
    for name in names():
        if router(name)["router"] == "gatewayAPI":
            ns.objects.create_namespaced_custom_object(
                *GATEWAY[:2], ns.name, GATEWAY[2], http_route(name, f"{name}-stable", path_prefix=None)
            )
    operator.start()
    for name in names():
        ns.create(document(name, "1.0.0"))
    wait_for(lambda: all(ns.status(n).get("phase") == "Healthy" for n in names()), 180, message="every v1 healthy")

    observer = Observer(ns)
    observer.start()
    kills = 0
    started = time.monotonic()
    with ExitStack() as stack:
        for name in names():
            stack.enter_context(Traffic(functools.partial(router_weights, kubelet, name), rate=8.0))
        for name in names():
            ns.update_spec(name, document(name, "2.0.0")["spec"])
        deadline = started + 420
        while not all(at_rest(ns, n) for n in names()) and time.monotonic() < deadline:
            pace(rng.uniform(1.0, 5.0))  # the moment of the next crash (seeded), not a wait for a condition
            if all(at_rest(ns, n) for n in names()):
                break
            operator.kill()
            kills += 1
            operator.start()
        wait_for(lambda: all(at_rest(ns, n) for n in names()), 120, message="every rollout at rest")
    observer.stopping.set()
    observer.join()
    elapsed = time.monotonic() - started
    wait_for(lambda: not any(ns.status(n).get("pendingEvents") for n in names()), 60, message="outboxes empty")

    counts: Counter[str] = Counter()
    for name in names():
        status = ns.status(name)
        by_number = exactly_once(ns, name)
        reasons = Counter(by_number.values())
        counts.update(reasons)
        counts["Events"] += len(by_number)
        steps = [m for _, m in sorted(_messages(ns, name, "StepStarted").items())]
        assert len(steps) == len(set(steps)), f"{name}: a step repeated: {steps}"
        if name in DEGRADED:
            assert status["stableRevision"]["modelVersion"] == "1.0.0"
            assert status["canaryWeight"] == 0
            assert steps == [f"canary at {w}% (step {i + 1})" for i, w in enumerate(STEPS)][: len(steps)]
            assert reasons["RolloutCompleted"] == 1, "only v1 completed"
            assert len(_messages(ns, name, containing="rolled back to")) == 1, f"{name}: one rollback"
        else:
            assert steps == [f"canary at {w}% (step {i + 1})" for i, w in enumerate(STEPS)], f"{name}: {steps}"
            assert reasons["RolloutCompleted"] == 2
        assert reasons["RevisionCreated"] == 2
    out_of_bounds = [(n, w) for n, w in observer.weights if not 0 <= w <= 100]
    print(
        f"{ROLLOUTS} rollouts ({len(DEGRADED)} degraded), {kills} SIGKILLs in {elapsed:.0f}s, "
        f"{len(observer.weights)} weights observed, {counts['Events']} numbered Events, {dict(counts)}"
    )
    assert not out_of_bounds
    assert kills >= 4, "a rollout of this length meets a crash every few seconds"


def _messages(ns: Namespace, name: str, reason: str | None = None, *, containing: str = "") -> dict[int, str]:
    """Messages of the outbox's Events (of one reason, or containing some words), by their number."""
    found: dict[int, str] = {}
    for event in ns.events(name):
        number = (event.metadata.annotations or {}).get(SEQUENCE_ANNOTATION)
        if number is not None and reason in (None, event.reason) and containing in (event.message or ""):
            found[int(number)] = event.message
    return found
