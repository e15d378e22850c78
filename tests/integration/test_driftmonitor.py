"""The DriftMonitor controller against the real local control plane and a real Prometheus.

Sample model servers run as local processes, Prometheus scrapes them every second with the
labels a cluster would add (revision, role, model, namespace), and the load generator plays
the clients, shifting one feature on demand. The controller's reconcile function runs in the
test with a real Context; the test's clock advances an interval per call, while every
query reads Prometheus at real time.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from kubernetes import client

from e2e.dataplane import DEFAULT_REFERENCE
from e2e.dataplane.loadgen import LoadConfig, run_load
from e2e.dataplane.servers import ServerHandle, ServerSpec, running_servers
from hack.localcluster.harness import LocalCluster
from hack.localprom.harness import LocalPrometheus
from modelrollout import GROUP, VERSION
from modelrollout.api.conditions import find_condition
from modelrollout.api.driftmonitor import DriftMonitorStatus
from modelrollout.api.modeldeployment import ModelDeploymentSpec
from modelrollout.config import Settings
from modelrollout.core.actions import ACTION_ANNOTATION, ACTION_ID_ANNOTATION
from modelrollout.core.revisions import RevisionContent
from modelrollout.engine.context import Context
from modelrollout.engine.driftmonitors import DriftMonitors, Gauges
from modelrollout.engine.reconciler import Reconciler
from modelrollout.engine.webhooks import Dispatcher
from modelrollout.metrics.prometheus import PrometheusSettings, PrometheusSource
from tests.support.events import told
from tests.support.scrapes import wait_for_scrapes
from tests.support.waiting import pace

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SHIFTED_FEATURE = "return_1d"
WINDOW_SECONDS = 20
SETTLE_SECONDS = 3.0


class Receiver(HTTPServer):
    bodies: list[dict[str, Any]]


class _Hook(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        self.server.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@dataclass
class Stack:
    api: client.ApiClient
    namespace: str
    context: Context
    servers: dict[str, ServerHandle]
    receiver: Receiver
    job: str
    source: PrometheusSource
    gauges: Gauges = field(default_factory=Gauges)
    clock: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(days=1))
    """A day ahead, so an operator another session may run against the same cluster never finds these due."""

    def create_monitor(self, name: str, **spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DriftMonitor",
            "metadata": {"name": name},
            "spec": {
                "targetRef": "returns",
                "interval": "1m",
                "window": f"{WINDOW_SECONDS}s",
                "minSamples": 200,
                "reference": {"configMapRef": {"name": "returns-reference", "key": "reference.json"}},
                "prediction": False,
            }
            | spec,
        }
        client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "driftmonitors", body
        )
        # An operator of another session on this cluster evaluates a new monitor once, at its next tick;
        # let that happen before the test's first evaluation rather than race it. Whether there is such an
        # operator cannot be observed from here, so this is a pause, not a wait for a condition.
        pace(SETTLE_SECONDS)

    def evaluate(self, name: str, context: Context | None = None) -> DriftMonitorStatus:
        """One due tick of the monitor, an interval after the last one on the test's clock."""
        self.clock += timedelta(minutes=1)
        obj = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "driftmonitors", name
        )
        monitors = DriftMonitors(self.gauges, Dispatcher(timeout=self.context.settings.webhook_timeout, workers=0))
        returned = Reconciler(monitors, context or self.context, api=lambda: self.api).tick(obj, now=self.clock)
        stored = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "driftmonitors", name
        )
        status = DriftMonitorStatus.model_validate(stored["status"])
        # The outbox's clearing waits for the monitor's next status write (engine/tickwrites.py).
        assert status.model_copy(update={"pending_events": returned.pending_events}) == returned, (
            "what the controller decided is what the API server stored"
        )
        return status

    def reasons(self, kind: str, name: str) -> list[str]:
        """The reasons of the Events told about ``kind``/``name``, in order."""
        return [reason for _, reason in told(self.api, self.namespace, kind, name)]

    def scraped(self) -> None:
        """Until Prometheus has scraped what the servers counted by now (1 s scrape interval)."""
        wait_for_scrapes(self.source, self.job, len(self.servers))

    def target(self, name: str = "returns") -> dict[str, Any]:
        found: dict[str, Any] = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "modeldeployments", name
        )
        return found


def load(server: ServerHandle, seconds: float, shift: Mapping[str, float] | None = None, rate: float = 100) -> None:
    config = LoadConfig(requests=10**6, rate_per_second=rate, max_seconds=seconds, shift=dict(shift or {}))
    run_load(lambda: {server.url: 1.0}, config)


def conditions(status: DriftMonitorStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def model_deployment_spec(version: str) -> dict[str, Any]:
    return {
        "model": {"name": "next-day-returns", "version": version, "uri": f"s3://models/returns/{version}"},
        "template": {"spec": {"containers": [{"name": "server", "image": "model-server:test"}]}},
    }


def content_hash(spec: dict[str, Any]) -> str:
    """The hash the ModelDeployment controller gives this spec's revision: the status written by hand
    agrees with the one an operator running against the same cluster would write."""
    return RevisionContent.of(ModelDeploymentSpec.model_validate(spec)).hash


TARGETS = {"returns": model_deployment_spec("1.0.0"), "quiet": model_deployment_spec("0.9.0")}
STABLE = content_hash(TARGETS["returns"])
LOW = content_hash(TARGETS["quiet"])


@pytest.fixture(scope="module")
def stack(cluster: LocalCluster, prometheus: LocalPrometheus) -> Iterator[Stack]:
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "crds/driftmonitors.modelrollout.dev.yaml",
        "-f",
        "crds/modeldeployments.modelrollout.dev.yaml",
    )
    cluster.kubectl("wait", "--for=condition=Established", "crd/driftmonitors.modelrollout.dev", "--timeout=30s")
    api = cluster.api_client()
    namespace = f"drift-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    receiver = Receiver(("127.0.0.1", 0), _Hook)
    receiver.bodies = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    specs = [ServerSpec(revision=STABLE, seed=1), ServerSpec(revision=LOW, seed=2)]
    job = f"it-drift-{namespace}"
    source = PrometheusSource(PrometheusSettings(url=prometheus.url, timeout=5))
    try:
        with running_servers(specs) as handles:
            for handle in handles:
                labels = {"revision": handle.revision, "role": "stable", "model": "next-day-returns"}
                prometheus.add_target(job, f"127.0.0.1:{handle.port}", labels | {"namespace": namespace})
            for handle in handles:
                prometheus.wait_for_target(job, f"127.0.0.1:{handle.port}")
            core.create_namespaced_config_map(
                namespace,
                {"metadata": {"name": "returns-reference"}, "data": {"reference.json": DEFAULT_REFERENCE.read_text()}},
            )
            core.create_namespaced_config_map(
                namespace, {"metadata": {"name": "broken-reference"}, "data": {"reference.json": '{"features": ['}}
            )
            hook = f"http://127.0.0.1:{receiver.server_port}/hooks/drift"
            core.create_namespaced_secret(
                namespace,
                {"metadata": {"name": "drift-webhook"}, "data": {"url": base64.b64encode(hook.encode()).decode()}},
            )
            objects = client.CustomObjectsApi(api)
            for name, revision in (("returns", STABLE), ("quiet", LOW)):
                body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": name}}
                objects.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, "modeldeployments", body | {"spec": TARGETS[name]}
                )
                stable = {"number": 1, "versionId": f"1-{revision}", "hash": revision, "modelVersion": "1.0.0"}
                objects.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    namespace,
                    "modeldeployments",
                    name,
                    {"status": {"stableRevision": stable, "currentRevision": stable, "phase": "Healthy"}},
                    _content_type="application/merge-patch+json",
                )
            context = Context(settings=Settings(prometheus_url=prometheus.url, webhook_timeout=2), metrics=source)
            yield Stack(api, namespace, context, {h.revision: h for h in handles}, receiver, job, source)
            for handle in handles:
                prometheus.remove_target(job, f"127.0.0.1:{handle.port}")
    finally:
        source.close()
        receiver.shutdown()
        receiver.server_close()
        core.delete_namespace(namespace)
        api.close()


def test_quiet_then_one_shifted_feature_alerts_once_rolls_back_and_resolves(stack: Stack) -> None:
    webhook = {"webhook": {"urlSecretRef": {"name": "drift-webhook", "key": "url"}}}
    stack.create_monitor("watch", alerting=webhook)
    stack.create_monitor("guard", action="Rollback")
    server = stack.servers[STABLE]

    for _ in range(3):
        load(server, 4)
        stack.scraped()
        status = stack.evaluate("watch")
        assert status.state == "NoDrift", [(f.name, f.verdict, f.scores) for f in status.features]
        assert conditions(status)["Ready"] == ("True", "Evaluated")
        assert status.revision == STABLE
    assert [h.state for h in status.history[:3]] == ["NoDrift"] * 3
    assert stack.receiver.bodies == []
    assert stack.reasons("DriftMonitor", "watch") == []

    load(server, 8, shift={SHIFTED_FEATURE: 0.05})
    stack.scraped()
    status = stack.evaluate("watch")
    assert status.state == "Drift"
    assert status.drifted_features == [SHIFTED_FEATURE]
    assert conditions(status)["Drifted"] == ("True", "FeaturesDrifted")
    assert conditions(status)["DataQualityDegraded"] == ("True", "LimitsExceeded")  # shifted values leave the range
    assert [b["modelrollout"]["kind"] for b in stack.receiver.bodies] == ["Firing"]
    firing = stack.receiver.bodies[0]
    assert firing["modelrollout"]["driftedFeatures"] == [SHIFTED_FEATURE]
    assert firing["modelrollout"]["scores"][SHIFTED_FEATURE]["psi"] > 0.2
    assert SHIFTED_FEATURE in firing["text"]
    assert status.alert.firing
    assert status.alert.pending is None
    assert status.alert.last_sent_at == stack.clock

    guard = stack.evaluate("guard")
    assert guard.action is not None
    assert guard.action.state == "Taken"
    target = stack.target()
    annotations = target["metadata"].get("annotations") or {}
    if ACTION_ANNOTATION in annotations:
        assert annotations[ACTION_ANNOTATION] == "abort"
        assert annotations[ACTION_ID_ANNOTATION] == guard.action.id
    else:  # a ModelDeployment controller running against this cluster consumed it already
        assert target["status"]["lastActionId"] == guard.action.id
    assert guard.action_taken is not None
    assert SHIFTED_FEATURE in guard.action_taken
    assert stack.reasons("ModelDeployment", "returns") == ["DriftDetected"]
    assert stack.reasons("DriftMonitor", "guard") == [
        "DataQualityDegraded",
        "DriftDetected",
        "RollbackRequested",
    ]

    load(server, 2, shift={SHIFTED_FEATURE: 0.05})
    stack.scraped()
    assert stack.evaluate("watch").state == "Drift"
    assert stack.evaluate("guard").action == guard.action, "one action per drift episode"
    assert len(stack.receiver.bodies) == 1, "no second alert while the same drift persists"

    load(server, WINDOW_SECONDS + 4)
    stack.scraped()
    status = stack.evaluate("watch")
    assert status.state == "NoDrift", status.drifted_features
    assert conditions(status)["Drifted"] == ("False", "NoDrift")
    assert [b["modelrollout"]["kind"] for b in stack.receiver.bodies] == ["Firing", "Resolved"]
    assert stack.reasons("DriftMonitor", "watch") == ["DataQualityDegraded", "DriftDetected", "DriftResolved"]
    assert [h.state for h in status.history[:3]] == ["NoDrift", "Drift", "Drift"]


def test_low_traffic_is_insufficient_data(stack: Stack) -> None:
    stack.create_monitor("thin", targetRef="quiet")
    load(stack.servers[LOW], 1, rate=30)
    stack.scraped()
    status = stack.evaluate("thin")
    assert status.state == "InsufficientData"
    assert conditions(status)["InsufficientData"] == ("True", "TooFewSamples")
    assert conditions(status)["Drifted"] == ("Unknown", "InsufficientData")
    assert all(0 < f.samples < 200 for f in status.features)
    assert status.drifted_features == []


def test_unreachable_prometheus_is_a_condition_and_keeps_the_last_results(stack: Stack) -> None:
    stack.create_monitor("outage")
    good = stack.evaluate("outage")
    assert good.last_evaluation_time is not None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    dead = PrometheusSource(PrometheusSettings(url=f"http://127.0.0.1:{closed}", timeout=1))
    try:
        status = stack.evaluate("outage", Context(settings=stack.context.settings, metrics=dead))
    finally:
        dead.close()
    ready = find_condition(status.conditions, "Ready")
    assert ready is not None
    assert (ready.status, ready.reason) == ("False", "PrometheusUnavailable")
    assert "unreachable" in ready.message
    assert status.state == "Error"
    assert status.features == good.features
    assert status.last_evaluation_time == good.last_evaluation_time
    assert stack.reasons("DriftMonitor", "outage") == ["PrometheusUnavailable"]


@pytest.mark.parametrize(
    ("config_map", "reason"), [("no-such-reference", "ReferenceNotFound"), ("broken-reference", "ReferenceInvalid")]
)
def test_reference_problems_are_conditions(stack: Stack, config_map: str, reason: str) -> None:
    name = f"ref-{reason.lower()}"
    stack.create_monitor(name, reference={"configMapRef": {"name": config_map, "key": "reference.json"}})
    status = stack.evaluate(name)
    assert conditions(status)["Ready"] == ("False", reason)
    assert status.state == "Error"
