"""The Experiment kind's tick through the one loop, without a server: the calls it makes, in order.

The arms' ModelDeployments and the Experiment live in the in-memory API server behind the engine's
seam (its journal lists every call), Prometheus is the strict fake, and the clock is fixed. The
router is the real Gateway API one: it edits the platform's HTTPRoute through the official client,
which :mod:`tests.support.apiserver` answers in memory, so a test reads the route's rules as a
platform engineer would, and a tick that must move no traffic makes no request there at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout import API_VERSION
from modelrollout.api import experiment as exp
from modelrollout.config import Settings
from modelrollout.engine import experiments
from modelrollout.engine.context import Context
from modelrollout.engine.reconciler import Reconciler
from modelrollout.metrics.fake import FakeMetricSource
from tests.support.apiserver import InMemoryApiServer
from tests.support.experiments import directional_accuracy
from tests.support.kubernetes import InMemoryResources
from tests.support.routes import http_route

GATEWAY = "gateway.networking.k8s.io"
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
NAMESPACE = "ml"
EXPERIMENT = "returns-ab"
ROUTE = "returns-experiment"
CHAMPION, CHALLENGER = "returns-champion", "returns-challenger"
REVISIONS = {CHAMPION: "a1b2c3d4e5", CHALLENGER: "f6a7b8c9d0"}
"""Each arm's ModelDeployment's stable revision hash: the ``revision`` label its metrics carry."""
ARMS_READ = [f"get experiments/{EXPERIMENT}", f"get modeldeployments/{CHAMPION}", f"get modeldeployments/{CHALLENGER}"]
"""What every tick of a running loop reads: the Experiment afresh, then each arm's ModelDeployment."""


def feedback_in_window(revision: str) -> str:
    """The design's traffic-rate query as sent: the primary metric's total over the window, one arm's revision."""
    series = f'model_feedback_total{{namespace="{NAMESPACE}", revision="{revision}"}}[1m]'
    return f"sum(max_over_time({series}) - min_over_time({series}))"


def experiment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "metadata": {"namespace": NAMESPACE, "name": EXPERIMENT},
        "spec": {
            "champion": {"name": "champion", "modelDeployment": CHAMPION, "weight": 50},
            "challengers": [{"name": "challenger", "modelDeployment": CHALLENGER, "weight": 50}],
            "trafficRouting": {"router": "gatewayAPI", "gatewayAPI": {"httpRoute": ROUTE}},
            "primaryMetric": directional_accuracy(),
            "interval": "1m",
            "window": "1m",
            "maxDuration": "7d",
        }
        | spec,
    }


def model_deployment(name: str, *, stable: bool = True) -> dict[str, Any]:
    """An arm's ModelDeployment; ``stable``: with the status its controller writes once a revision is healthy."""
    version = "1.0.0" if name == CHAMPION else "1.1.0"
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "ModelDeployment",
        "metadata": {"namespace": NAMESPACE, "name": name},
        "spec": {
            "model": {"name": "next-day-returns", "version": version, "uri": f"s3://models/returns/{version}"},
            "template": {"spec": {"containers": [{"name": "server", "image": f"model-server:{version}"}]}},
            "port": 8080,
        },
    }
    if stable:
        revision = {"number": 1, "versionId": f"1-{REVISIONS[name]}", "hash": REVISIONS[name], "modelVersion": version}
        body["status"] = {"stableRevision": revision, "currentRevision": revision, "phase": "Healthy"}
    return body


@dataclass
class World:
    """The Experiment, its arms' ModelDeployments, Prometheus' answers, and the loop."""

    server: InMemoryResources
    metrics: FakeMetricSource
    gateway: InMemoryApiServer
    """Where the HTTPRoute lives: the router reaches it through the official client, not the seam."""
    context: Context = field(init=False)
    reconciler: Reconciler[exp.ExperimentSpec, exp.ExperimentStatus] = field(init=False)

    def __post_init__(self) -> None:
        self.context = Context(settings=Settings(), metrics=self.metrics)
        self.reconciler = Reconciler(
            experiments.Experiments(), self.context, api=self.gateway.api_client, resources=lambda _: self.server
        )

    def tick(self, at: datetime = NOW) -> exp.ExperimentStatus | None:
        """One tick from the Experiment as a watch would have delivered it."""
        return self.reconciler.tick(self.server.stored(exp.PLURAL, NAMESPACE, EXPERIMENT), now=at)

    def status(self) -> exp.ExperimentStatus:
        stored = self.server.stored(exp.PLURAL, NAMESPACE, EXPERIMENT)
        return exp.ExperimentStatus.model_validate(stored.get("status") or {})

    def conditions(self) -> dict[str, tuple[str, str]]:
        return {c.type: (c.status, c.reason) for c in self.status().conditions}

    def message(self, type_: str) -> str:
        return next(c.message for c in self.status().conditions if c.type == type_)

    def rules(self) -> list[dict[str, Any]]:
        return list(self.gateway.stored(GATEWAY, "httproutes", NAMESPACE, ROUTE)["spec"]["rules"])

    def weights(self) -> dict[str, int]:
        """The split: the Services of the route's rule that matches on no header, by weight."""
        (split,) = [r for r in self.rules() if not any("headers" in m for m in r.get("matches", []))]
        return {ref["name"]: ref.get("weight", 1) for ref in split["backendRefs"]}

    def pinned(self) -> dict[str, str]:
        """The header rules: which Service a request asking for an arm by name goes to."""
        found = {}
        for rule in self.rules():
            for match in rule.get("matches", []):
                for header in match.get("headers", []):
                    assert header["name"] == "x-modelrollout-arm", header
                    (ref,) = rule["backendRefs"]
                    found[header["value"]] = ref["name"]
        return found


def world(
    *,
    status: Mapping[str, Any] | None = None,
    unstable: tuple[str, ...] = (),
    missing: tuple[str, ...] = (),
    route: bool = True,
    **spec: Any,
) -> World:
    """The arms' ModelDeployments healthy unless ``unstable`` (no stable revision yet) or ``missing``; Prometheus
    answers the design: the champion serves 10 labelled predictions a second, the challenger none yet."""
    server = InMemoryResources()
    body = experiment(**spec)
    if status is not None:
        body["status"] = dict(status)
    server.add(exp.PLURAL, body)
    for name in (CHAMPION, CHALLENGER):
        if name not in missing:
            server.add("modeldeployments", model_deployment(name, stable=name not in unstable))
    metrics = FakeMetricSource(
        {feedback_in_window(REVISIONS[CHAMPION]): 600.0, feedback_in_window(REVISIONS[CHALLENGER]): None}
    )
    gateway = InMemoryApiServer()
    if route:
        gateway.add(GATEWAY, "httproutes", http_route(ROUTE, f"{CHAMPION}-stable", namespace=NAMESPACE))
    return World(server, metrics, gateway)


def test_the_design_tick_reads_the_arms_designs_the_test_then_moves_traffic() -> None:
    """Design before traffic: the arms' revisions are read through the seam, the traffic rate from Prometheus,
    the design is written and told; only then is the split applied, read back, and the start recorded."""
    w = world()
    returned = w.tick()

    assert w.server.journal == [
        *ARMS_READ,
        "status ['arms', 'conditions', 'design', 'eventsRecorded', 'message', 'observedGeneration', "
        "'pendingEvents', 'phase']",
        "event Designed",
        "status ['conditions', 'eventsRecorded', 'message', 'pendingEvents', 'startedAt']",  # Designed's clearing too
        "event Started",
    ]
    assert w.metrics.queries == [feedback_in_window(REVISIONS[CHAMPION]), feedback_in_window(REVISIONS[CHALLENGER])]
    status = w.status()
    assert returned == status.model_copy(update={"pending_events": []}), (
        "the tick returns what the API server stored, with the outbox as it is meant to be: its clearing is held"
    )
    design = status.design
    assert design is not None
    assert design.samples_per_arm > 0
    assert design.method == "mSPRT (always valid)"
    assert [(a.name, a.share) for a in design.arms] == [("champion", 0.5), ("challenger", 0.5)]
    assert design.traffic_rate == pytest.approx(10.0), "600 labelled predictions in the 1m window"
    assert design.expected_duration_seconds == pytest.approx(design.samples_per_arm / (10.0 * 0.5))
    assert w.conditions() == {
        "ArmsReady": ("True", "StableRevisions"),
        "Designed": ("True", "SampleSizeComputed"),
        "Underpowered": ("False", "SampleSizeReachable"),
        "TrafficSplit": ("True", "InForce"),
    }
    assert w.message("Designed").startswith(f"{design.samples_per_arm} samples per arm (mSPRT (always valid)")
    assert status.phase == "Running"
    assert status.started_at == NOW
    assert [(a.name, a.revision) for a in status.arms] == [
        ("champion", REVISIONS[CHAMPION]),
        ("challenger", REVISIONS[CHALLENGER]),
    ]
    assert w.server.reasons(EXPERIMENT) == ["Designed", "Started"]

    assert w.gateway.journal.count(f"patch httproutes/{ROUTE}") == 1, "the split written once, then read back"
    assert w.weights() == {f"{CHAMPION}-stable": 50, f"{CHALLENGER}-stable": 50}
    assert w.pinned() == {"champion": f"{CHAMPION}-stable", "challenger": f"{CHALLENGER}-stable"}


def test_a_router_that_cannot_split_is_a_condition_and_the_experiment_does_not_start() -> None:
    """The design stands; the split is not in force, so no time counts towards the experiment yet."""
    w = world(route=False)
    w.tick()

    assert w.server.journal[len(ARMS_READ) + 2 :] == ["status ['conditions', 'message', 'pendingEvents']"]
    assert not [r for r in w.gateway.journal if not r.startswith("get ")], "nothing written"
    status = w.status()
    assert status.design is not None
    assert (status.phase, status.started_at) == ("Running", None)
    assert w.conditions()["TrafficSplit"] == ("False", "RouteNotFound")
    assert status.message == f"the router cannot split traffic: HTTPRoute {NAMESPACE}/{ROUTE} does not exist"
    assert w.server.reasons(EXPERIMENT) == ["Designed"]
    assert w.conditions().get("Reconciled") is None, "a missing route is the user's to fix, not a failed tick"


@pytest.mark.parametrize(
    ("absent", "unstable"), [((CHALLENGER,), ()), ((), (CHALLENGER,))], ids=["no-model-deployment", "no-stable"]
)
def test_an_arm_without_a_stable_revision_waits_and_says_which(
    absent: tuple[str, ...], unstable: tuple[str, ...]
) -> None:
    """Nothing is designed or routed while one arm cannot be measured; the status names the arm and its
    ModelDeployment, and a later tick designs once it has a stable revision."""
    w = world(missing=absent, unstable=unstable)
    w.tick()

    assert w.server.journal == [*ARMS_READ, "status ['conditions', 'message', 'observedGeneration']"]
    assert w.metrics.calls == [], "no design without every arm's revision"
    assert w.gateway.journal == [], "no traffic moves before the design"
    status = w.status()
    assert (status.phase, status.design) == ("Pending", None)
    assert w.conditions() == {"ArmsReady": ("False", "NoStableRevision")}
    assert status.message == f"waiting for a stable revision of every arm's ModelDeployment: challenger ({CHALLENGER})"
    assert w.server.events == {}

    w.server.add("modeldeployments", model_deployment(CHALLENGER))
    w.server.journal.clear()
    w.tick(NOW + timedelta(seconds=10))
    assert w.conditions()["ArmsReady"] == ("True", "StableRevisions")
    assert w.status().design is not None
    assert w.server.reasons(EXPERIMENT) == ["Designed", "Started"]


def concluded(**decision: Any) -> dict[str, Any]:
    """The status of an experiment that reached its verdict an hour before NOW, traffic back on the champion."""
    return {
        "observedGeneration": 1,
        "phase": "Concluded",
        "startedAt": "2026-11-30T05:00:00Z",
        "arms": [
            {"name": "champion", "revision": REVISIONS[CHAMPION], "samples": 1250},
            {"name": "challenger", "revision": REVISIONS[CHALLENGER], "samples": 1243},
        ],
        "decision": {
            "outcome": "KeepChampion",
            "reason": "challenger is no better",
            "decidedAt": "2026-11-30T07:00:00Z",
        }
        | decision,
        "eventsRecorded": 4,
        "conditions": [
            {
                "type": "TrafficSplit",
                "status": "False",
                "reason": "ChampionOnly",
                "message": "all traffic on the champion",
                "lastTransitionTime": "2026-11-30T07:00:00Z",
                "observedGeneration": 1,
            }
        ],
    }


def test_a_concluded_experiment_at_rest_makes_no_call_until_its_route_is_due_for_a_check() -> None:
    """Concluded is terminal: between resyncs a tick costs nothing; a resync re-applies the champion-only route."""
    w = world(status=concluded())
    w.context.synced(experiments.KIND, NAMESPACE, EXPERIMENT)  # as the tick that concluded it left it

    assert w.tick() is None
    assert w.server.journal == []
    assert w.metrics.calls == []
    assert w.gateway.journal == []

    w.context.forget(experiments.KIND, NAMESPACE, EXPERIMENT)  # a restarted operator: the route is checked once
    w.tick()
    assert w.server.journal == ARMS_READ, "the route still holds: nothing to write"
    assert w.metrics.calls == []
    assert w.gateway.journal[0] == f"get httproutes/{ROUTE}", "the route is read"
    assert w.weights() == {f"{CHAMPION}-stable": 100}
    assert w.pinned() == {}


def test_auto_promote_copies_the_winners_model_onto_the_champion_then_records_and_tells() -> None:
    """A Promote with ``decision.autoPromote`` starts the winner's rollout on the champion's ModelDeployment once:
    the status says so before the Promoted Event, and the next tick is at rest."""
    w = world(
        status=concluded(outcome="Promote", winner="challenger", reason="challenger +8.1% directional accuracy"),
        decision={"autoPromote": True},
    )
    w.context.synced(experiments.KIND, NAMESPACE, EXPERIMENT)
    w.tick()

    assert w.server.journal == [
        *ARMS_READ,
        f"get modeldeployments/{CHALLENGER}",
        f"patch modeldeployments/{CHAMPION}",
        "status ['decision', 'eventsRecorded', 'pendingEvents']",
        "event Promoted",
    ]
    champion = w.server.stored("modeldeployments", NAMESPACE, CHAMPION)
    winner = model_deployment(CHALLENGER)["spec"]
    assert champion["spec"] == winner
    assert champion["metadata"]["generation"] == 2, "a new spec: the champion's controller rolls it out"
    decision = w.status().decision
    assert decision is not None
    assert (decision.promoted, decision.recommendation) == (True, None)
    assert w.server.reasons(EXPERIMENT) == ["Promoted"]
    (told,) = w.server.events.values()
    assert told["message"] == f"ModelDeployment {CHAMPION} now rolls out the model of {CHALLENGER} (1.1.0)"

    w.server.journal.clear()
    assert w.tick() is None
    assert w.server.journal == [], "promoted: at rest"
