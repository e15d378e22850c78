"""The Experiment controller against the real local control plane and a real Prometheus.

Two sample model servers play the arms (a "worse" model is the sample model with
the ``degrade`` fault), Prometheus scrapes them every second with the labels a
cluster would add, and the load generator plays the gateway: it splits requests
by the weights the controller put on the HTTPRoute (read back through the
router) and mirrors them where the route says, then posts the realised outcome
to ``/feedback``, so directional accuracy is real. The controller's reconcile
runs in the test, on the real clock, once a second.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from e2e.dataplane.loadgen import LoadConfig, LoadReport, run_load
from e2e.dataplane.servers import ServerHandle, ServerSpec, running_servers
from hack.localcluster.harness import LocalCluster
from hack.localprom.harness import LocalPrometheus
from modelrollout import GROUP, VERSION
from modelrollout.api.common import TrafficRouting
from modelrollout.api.experiment import ExperimentStatus
from modelrollout.api.modeldeployment import ModelDeploymentSpec
from modelrollout.config import Settings
from modelrollout.core.revisions import RevisionContent
from modelrollout.engine import experiments
from modelrollout.engine.context import Context
from modelrollout.engine.reconciler import Reconciler
from modelrollout.metrics.prometheus import PrometheusSettings, PrometheusSource
from modelrollout.routing import TrafficRouter, router_for
from tests.support.events import told
from tests.support.experiments import ARM_SELECTOR, directional_accuracy
from tests.support.routes import http_route
from tests.support.scrapes import wait_for_scrapes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")
ROUTE = "returns-experiment"
SELECTOR = ARM_SELECTOR


ACCURACY = directional_accuracy()
ERROR_RATE = {
    "name": "error-rate",
    "query": f'sum(rate(model_requests_total{{{SELECTOR}, code=~"5.."}}[{{{{window}}}}]))'
    f" / sum(rate(model_requests_total{{{SELECTOR}}}[{{{{window}}}}]))",
    "max": 0.05,
}


@dataclass
class Arena:
    """One namespace with two arms, their ModelDeployments, servers, route and a reconcile loop."""

    api: client.ApiClient
    namespace: str
    context: Context
    servers: dict[str, ServerHandle]
    job: str
    source: PrometheusSource
    clock: datetime = field(default_factory=lambda: datetime.now(UTC))

    def create(self, name: str, **spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Experiment",
            "metadata": {"name": name},
            "spec": {
                "champion": {"name": "champion", "modelDeployment": "returns-champion", "weight": 50},
                "challengers": [{"name": "challenger", "modelDeployment": "returns-challenger", "weight": 50}],
                "trafficRouting": {"router": "gatewayAPI", "gatewayAPI": {"httpRoute": ROUTE}},
                "primaryMetric": ACCURACY,
                "interval": "1m",
                "window": "5s",
                "maxDuration": "7d",
            }
            | spec,
        }
        client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "experiments", body
        )

    def events(self, name: str) -> list[tuple[str, str]]:
        """The Events told about experiment ``name``, in order."""
        return told(self.api, self.namespace, "Experiment", name)

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "experiments", name
        )
        return found

    def reconcile(self, name: str) -> ExperimentStatus:
        """One tick, an interval after the last one on the test's clock (queries read Prometheus at real time).

        The test's clock runs ahead of real time, so any operator another test session runs on the same
        cluster finds no look due and cannot look mid-burst.
        """
        self.clock += timedelta(minutes=1)
        body = self.get(name)
        Reconciler(experiments.Experiments(), self.context, api=lambda: self.api).tick(body, now=self.clock)
        return ExperimentStatus.model_validate(self.get(name).get("status") or {})

    def router(self) -> TrafficRouter:
        routing = TrafficRouting.model_validate({"router": "gatewayAPI", "gatewayAPI": {"httpRoute": ROUTE}})
        return router_for(routing, self.namespace, self.api, 1, port=80)

    def urls(self) -> dict[str, str]:
        return {f"returns-{arm}-stable": handle.url for arm, handle in self.servers.items()}

    def route_weights(self) -> dict[str, float]:
        """What the gateway would do: the route's weights, by server URL."""
        split = self.router().observe()
        if split is None:
            return {}
        return {self.urls()[b.service]: b.weight for b in split.backends if b.weight}

    def route_mirror(self) -> str | None:
        split = self.router().observe()
        return self.urls()[split.mirror] if split is not None and split.mirror else None

    def route(self) -> dict[str, Any]:
        found: dict[str, Any] = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            *GATEWAY[:2], self.namespace, GATEWAY[2], ROUTE
        )
        return found

    def run(
        self,
        name: str,
        *,
        until: Callable[[ExperimentStatus], bool],
        weights: Callable[[], Mapping[str, float]] | None = None,
        mirror: bool = False,
        seconds: float = 80.0,
    ) -> tuple[ExperimentStatus, LoadReport]:
        """Bursts of load through the route, each followed by a look once Prometheus scraped it, until ``until``.

        Looking while the counters stand still makes each arm's count exact: both arms are then read at
        their last scrape, whatever the scrape phases (see "Counting exactly" in docs/experiments.md).
        """
        status = self.reconcile(name)
        assert status.phase == "Running", status.message
        stop = time.monotonic() + seconds
        reports: list[LoadReport] = []
        while time.monotonic() < stop:
            # A new seed per burst: the same seed would repeat the same split, which the SRM check rightly flags.
            config = LoadConfig(
                requests=10**6, rate_per_second=120, max_seconds=2.0, concurrency=6, users=10_000, seed=len(reports)
            )
            reports.append(
                run_load(weights or self.route_weights, config, mirror=self.route_mirror if mirror else None)
            )
            wait_for_scrapes(self.source, self.job, len(self.servers))  # the end of the burst, 1 s scrape interval
            status = self.reconcile(name)
            if until(status):
                break
        return status, merged(reports)


def merged(reports: list[LoadReport]) -> LoadReport:
    total = LoadReport()
    for report in reports:
        for url, stats in report.by_backend.items():
            into = total.by_backend.setdefault(url, type(stats)())
            into.requests += stats.requests
            into.statuses.update(stats.statuses)
            into.feedback_items += stats.feedback_items
        total.mirrored.update(report.mirrored)
    return total


def model_deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "next-day-returns", "version": name, "uri": f"s3://models/{name}"},
            "template": {"spec": {"containers": [{"name": "server", "image": f"model-server:{name}"}]}},
            "port": 8080 if name.endswith("champion") else 9090,
        },
    }


def revision_of(name: str) -> str:
    """The hash the ModelDeployment controller gives this spec, so an operator running on the cluster agrees."""
    return RevisionContent.of(ModelDeploymentSpec.model_validate(model_deployment(name)["spec"])).hash


@pytest.fixture(scope="module")
def setup(cluster: LocalCluster, prometheus: LocalPrometheus) -> tuple[LocalCluster, LocalPrometheus]:
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "crds/experiments.modelrollout.dev.yaml",
        "-f",
        "crds/modeldeployments.modelrollout.dev.yaml",
    )
    cluster.kubectl("wait", "--for=condition=Established", "crd/experiments.modelrollout.dev", "--timeout=30s")
    return cluster, prometheus


@contextlib.contextmanager
def make_arena(setup: tuple[LocalCluster, LocalPrometheus], challenger_faults: Mapping[str, Any]) -> Iterator[Arena]:
    """Servers, Prometheus targets, a namespace, two ModelDeployments and the route; all removed afterwards."""
    cluster, prometheus = setup
    with contextlib.ExitStack() as stack:
        api = cluster.api_client()
        stack.callback(api.close)
        namespace = f"exp-{uuid.uuid4().hex[:6]}"
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        stack.callback(core.delete_namespace, namespace)
        specs = [
            ServerSpec(revision=revision_of("returns-champion"), role="champion", seed=1),
            ServerSpec(
                revision=revision_of("returns-challenger"), role="challenger", seed=2, faults=dict(challenger_faults)
            ),
        ]
        handles = stack.enter_context(running_servers(specs))
        job = f"it-exp-{namespace}"
        for handle in handles:
            labels = {"revision": handle.revision, "role": handle.role, "model": "next-day-returns"}
            prometheus.add_target(job, f"127.0.0.1:{handle.port}", labels | {"namespace": namespace})
            stack.callback(prometheus.remove_target, job, f"127.0.0.1:{handle.port}")
        for handle in handles:
            prometheus.wait_for_target(job, f"127.0.0.1:{handle.port}")
        objects = client.CustomObjectsApi(api)
        for arm, handle in zip(("champion", "challenger"), handles, strict=True):
            name = f"returns-{arm}"
            objects.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "modeldeployments", model_deployment(name)
            )
            stable = {"number": 1, "versionId": f"1-{handle.revision}", "hash": handle.revision, "modelVersion": name}
            objects.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                "modeldeployments",
                name,
                {"status": {"stableRevision": stable, "currentRevision": stable, "phase": "Healthy"}},
                _content_type="application/merge-patch+json",
            )
        objects.create_namespaced_custom_object(
            *GATEWAY[:2], namespace, GATEWAY[2], http_route(ROUTE, "returns-champion-stable")
        )
        source = PrometheusSource(PrometheusSettings(url=prometheus.url, timeout=5))
        stack.callback(source.close)
        context = Context(settings=Settings(prometheus_url=prometheus.url), metrics=source)
        arms = dict(zip(("champion", "challenger"), handles, strict=True))
        yield Arena(api, namespace, context, arms, job, source)


def concluded(status: ExperimentStatus) -> bool:
    return status.phase in ("Concluded", "Stopped", "Failed")


def champion_only(arena: Arena, name: str | None) -> None:
    """All traffic on the champion, read back from the route (after a tick at rest of experiment ``name``)."""
    if name is not None:
        arena.context.forget(experiments.KIND, arena.namespace, name)
        arena.reconcile(name)
    split = arena.router().observe()
    assert split is not None
    assert [(b.service, b.weight) for b in split.backends] == [("returns-champion-stable", 100)]
    assert split.mirror is None
    assert split.header_routes == ()


def test_a_a_declares_no_winner(setup: tuple[LocalCluster, LocalPrometheus]) -> None:
    with make_arena(setup, {}) as arena:
        arena.create("a-a")
        status = arena.reconcile("a-a")
        assert status.design is not None
        assert status.design.traffic_rate is None  # no traffic before the experiment: duration unknown
        status, report = arena.run("a-a", until=concluded)
        assert status.decision is not None, status.message
        counts = {u: (s.requests, s.feedback_items) for u, s in report.by_backend.items()}
        assert status.decision.outcome in ("KeepChampion", "Inconclusive"), (status.decision.reason, counts)
        assert status.srm_p_value is not None
        assert status.srm_p_value > 0.001, ([a.samples for a in status.arms], counts)
        assert len(report.by_backend) == 2
        champion_only(arena, "a-a")
        assert ("Normal", "Started") in arena.events("a-a")


def test_a_better_challenger_is_promoted_through_the_champion_deployment(
    setup: tuple[LocalCluster, LocalPrometheus],
) -> None:
    with make_arena(setup, {}) as arena:
        arena.servers["champion"].set_faults(degrade=2)
        arena.create("better", decision={"autoPromote": True})
        # The rules exist only while the test runs, and a strong effect can conclude at the first look:
        # read them once the experiment is routing, not only between looks.
        assert arena.reconcile("better").phase == "Running"
        header_rules: list[str] = [r.get("name", "") for r in arena.route()["spec"]["rules"] if "name" in r]

        def done(status: ExperimentStatus) -> bool:
            header_rules.extend(r.get("name", "") for r in arena.route()["spec"]["rules"] if "name" in r)
            return concluded(status)

        status, _ = arena.run("better", until=done)
        assert {"modelrollout-header-0", "modelrollout-header-1"} <= set(header_rules)
        assert status.decision is not None, status.message
        assert (status.decision.outcome, status.decision.winner) == ("Promote", "challenger"), status.decision
        challenger = status.arms[1]
        assert challenger.interval is not None
        assert challenger.interval[0] > 0
        assert challenger.p_value is not None
        assert challenger.p_value < 0.05
        assert "CI [" in status.decision.reason
        assert status.decision.promoted
        champion = client.CustomObjectsApi(arena.api).get_namespaced_custom_object(
            GROUP, VERSION, arena.namespace, "modeldeployments", "returns-champion"
        )
        assert champion["spec"]["model"]["version"] == "returns-challenger"
        assert champion["spec"]["template"]["spec"]["containers"][0]["image"] == "model-server:returns-challenger"
        assert champion["spec"]["port"] == 9090
        champion_only(arena, "better")


def test_an_induced_sample_ratio_mismatch_is_invalid(setup: tuple[LocalCluster, LocalPrometheus]) -> None:
    with make_arena(setup, {}) as arena:
        arena.create("srm")

        def skewed() -> dict[str, float]:
            return {arena.servers["champion"].url: 0.65, arena.servers["challenger"].url: 0.35}

        status, _ = arena.run("srm", until=concluded, weights=skewed)
        assert (status.phase, status.decision and status.decision.outcome) == ("Failed", "Invalid")
        assert status.decision is not None
        assert "sample ratio mismatch" in status.decision.reason
        assert {c.type: c.status for c in status.conditions}["SampleRatioMismatch"] == "True"
        champion_only(arena, "srm")


def test_a_guardrail_breach_stops_the_test(setup: tuple[LocalCluster, LocalPrometheus]) -> None:
    with make_arena(setup, {"error_rate": 0.3}) as arena:
        arena.create("guarded", guardrails=[ERROR_RATE], minDuration="30d", maxDuration="60d")
        status, _ = arena.run("guarded", until=concluded, seconds=40)
        assert (status.phase, status.decision and status.decision.outcome) == ("Stopped", "KeepChampion")
        assert status.decision is not None
        assert "challenger breached guardrail error-rate" in status.decision.reason
        assert status.arms[1].guardrails_breached == ["error-rate"]
        champion_only(arena, "guarded")


def test_shadow_mirrors_the_challenger_and_users_only_see_the_champion(
    setup: tuple[LocalCluster, LocalPrometheus],
) -> None:
    with make_arena(setup, {}) as arena:
        arena.create("shadow", mode="Shadow", minDuration="30d", maxDuration="60d")
        mirrors: list[dict[str, Any]] = []

        def mirrored(status: ExperimentStatus) -> bool:
            rule = arena.route()["spec"]["rules"][0]
            mirrors.extend(f for f in rule.get("filters", []) if f["type"] == "RequestMirror")
            return status.looks >= 3

        status, report = arena.run("shadow", until=mirrored, mirror=True, seconds=20)
        assert mirrors
        assert mirrors[0]["requestMirror"]["backendRef"]["name"] == "returns-challenger-stable"
        assert list(report.by_backend) == [arena.servers["champion"].url]
        assert report.mirrored[arena.servers["challenger"].url] > 0
        assert status.phase == "Running"
        assert status.srm_p_value is None
        experiments.restore_champion(arena.api, arena.namespace, arena.get("shadow")["spec"])  # as on deletion
        champion_only(arena, None)
