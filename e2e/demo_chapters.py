"""The demo's drift and experiment chapters (5 and 6), kept apart from the rollout chapters they build on."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e.dataplane import DEFAULT_REFERENCE
from e2e.harness.kubelet import LocalKubelet
from e2e.harness.scenario import GROUP, VERSION, Namespace, model_deployment
from e2e.harness.traffic import Traffic
from modelrollout.__main__ import main as modelrollout
from tests.support.experiments import directional_accuracy
from tests.support.waiting import wait_for

SHIFTED = "return_1d"
CHALLENGER = "returns-v5"
ROUTE = "returns-ab"


class _Receiver(BaseHTTPRequestHandler):
    """A Slack-compatible webhook endpoint: whatever is posted is kept and shown."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        _Receiver.received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@contextmanager
def webhook_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/drift"
    finally:
        server.shutdown()


def drift(ns: Namespace, traffic: Traffic, target: str) -> None:
    """Chapter 5: a DriftMonitor on the stable revision notices one shifted feature and calls a webhook."""
    core = ns.core
    core.create_namespaced_config_map(
        ns.name, {"metadata": {"name": "returns-reference"}, "data": {"reference.json": DEFAULT_REFERENCE.read_text()}}
    )
    with webhook_receiver() as url:
        core.create_namespaced_secret(
            ns.name,
            {"metadata": {"name": "drift-webhook"}, "data": {"url": base64.b64encode(url.encode()).decode()}},
        )
        monitor = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DriftMonitor",
            "metadata": {"name": "returns-drift"},
            "spec": {
                "targetRef": target,
                "interval": "2s",
                "window": "20s",
                "minSamples": 200,
                "reference": {"configMapRef": {"name": "returns-reference", "key": "reference.json"}},
                "methods": [{"name": "psi"}, {"name": "ks"}, {"name": "jensenShannon"}],
                "prediction": False,
                "alerting": {"webhook": {"urlSecretRef": {"name": "drift-webhook", "key": "url"}}},
            },
        }
        objects = ns.objects
        objects.create_namespaced_custom_object(GROUP, VERSION, ns.name, "driftmonitors", monitor)

        def monitor_status() -> dict[str, Any]:
            found = objects.get_namespaced_custom_object(GROUP, VERSION, ns.name, "driftmonitors", "returns-drift")
            return dict(found.get("status") or {})

        wait_for(lambda: monitor_status().get("state") == "NoDrift", 90, message="a quiet first evaluation")
        print("   live traffic matches the training reference: state NoDrift")
        print(f"   clients start sending {SHIFTED} shifted by +0.08")
        traffic.reconfigure(shift={SHIFTED: 0.08})
        status = wait_for(lambda: (s := monitor_status()).get("state") == "Drift" and s, 120, message="drift detected")
        feature = next(f for f in status["features"] if f["name"] == SHIFTED)
        scores = ", ".join(f"{k} {v:.3f}" for k, v in feature["scores"].items())
        print(f"   Drifted: {status['driftedFeatures']} ({scores})")
        wait_for(lambda: _Receiver.received, 30, message="the webhook")
        print(f"   webhook received: {_Receiver.received[0].get('text', '')[:200]}")
        traffic.reconfigure(shift={})


def experiment(ns: Namespace, kubelet: LocalKubelet, champion: str, report: Path) -> None:
    """Chapter 6: the stable model against a better challenger, decided by an always-valid test."""
    challenger = model_deployment(CHALLENGER, "5.0.0")
    challenger["spec"]["template"]["spec"]["containers"][0]["args"] = []
    ns.create(challenger)
    wait_for(lambda: ns.status(CHALLENGER).get("phase") == "Healthy", 120, message="challenger deployed")
    client.CustomObjectsApi(ns.api).create_namespaced_custom_object(
        "gateway.networking.k8s.io",
        "v1",
        ns.name,
        "httproutes",
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": ROUTE},
            "spec": {
                "parentRefs": [{"name": "gateway"}],
                "rules": [{"backendRefs": [{"name": f"{champion}-stable", "port": 80}]}],
            },
        },
    )
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": "returns-ab"},
        "spec": {
            "champion": {"name": "champion", "modelDeployment": champion, "weight": 50},
            "challengers": [{"name": "challenger", "modelDeployment": CHALLENGER, "weight": 50}],
            "trafficRouting": {"router": "gatewayAPI", "gatewayAPI": {"httpRoute": ROUTE}},
            "primaryMetric": directional_accuracy(minimum_detectable_effect=0.08),
            "interval": "2s",
            "window": "10s",
            "maxDuration": "10m",
        },
    }
    objects = ns.objects
    objects.create_namespaced_custom_object(GROUP, VERSION, ns.name, "experiments", body)

    def experiment_status() -> dict[str, Any]:
        found = objects.get_namespaced_custom_object(GROUP, VERSION, ns.name, "experiments", "returns-ab")
        return dict(found.get("status") or {})

    design = wait_for(lambda: experiment_status().get("design"), 60, message="the design")
    print(f"   design: {design['samplesPerArm']} labelled predictions per arm for a {0.08:.0%} relative lift")
    with Traffic(lambda: kubelet.route_weights(ROUTE), rate=80.0):
        status = wait_for(lambda: (s := experiment_status()).get("decision") and s, 300, message="a decision")
    decision = status["decision"]
    arm = next(a for a in status["arms"] if a["name"] == "challenger")
    low, high = arm["interval"]
    print(f"   decision: {decision['outcome']} {decision.get('winner') or ''}: {decision['reason'][:200]}")
    print(f"   challenger - champion accuracy: {arm['difference']:+.3f}, confidence sequence [{low:+.3f}, {high:+.3f}]")
    kubeconfig = os.environ["KUBECONFIG"]
    html = str(report / "experiment.html")
    modelrollout(["experiment", "report", "returns-ab", "-n", ns.name, "--kubeconfig", kubeconfig, "--html", html])
