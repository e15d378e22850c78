"""The shipped scrape configuration gives model-server targets the labels guardrails query.

charts/modelrollout/files/model-servers-scrape.yaml (and the chart's ServiceMonitor, which
test_chart.py shows has the same relabelling) must turn the operator's Services and pods into
targets labelled namespace, model, revision, role and job="model-server", and scrape each
pod once. Why this way: the Debian Prometheus is built without Kubernetes discovery, so the
discovery step is reproduced from the real API server: the Services and pods are built by the
operator's own builders and created in the local cluster, whose controller-manager writes the
EndpointSlices; each EndpointSlice endpoint becomes a target with the ``__meta_kubernetes_*``
labels Prometheus' ``endpointslice`` role documents. The relabelling itself then runs in a
real Prometheus (a private instance, through file discovery), exactly as shipped.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client

from hack.localprom.instance import private_prometheus
from modelrollout.kube import builders, naming
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRAPE = REPO / "charts" / "modelrollout" / "files" / "model-servers-scrape.yaml"
NAME = "returns"
MODEL = "next-day-returns"
STABLE, CANARY = "1-aaaaaaaaaa", "2-bbbbbbbbbb"
T = TypeVar("T")


def exactly(count: int, items: list[T]) -> list[T] | None:
    return items if len(items) == count else None


@pytest.fixture
def namespace(cluster: Any) -> Iterator[str]:
    name = f"scrape-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        core.delete_namespace(name)


def meta_name(label: str) -> str:
    """Prometheus' label-name sanitising: every character outside [a-zA-Z0-9_] becomes an underscore."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def discovered_targets(api: Any, namespace: str) -> list[dict[str, str]]:
    """What Prometheus' ``endpointslice`` role discovers in ``namespace``: one target per endpoint and port."""
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    services = {s.metadata.name: s for s in core.list_namespaced_service(namespace).items}
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(namespace).items}
    targets = []
    for endpoint_slice in discovery.list_namespaced_endpoint_slice(namespace).items:
        service = services[endpoint_slice.metadata.labels["kubernetes.io/service-name"]]
        for endpoint in endpoint_slice.endpoints or []:
            pod = pods[endpoint.target_ref.name]
            for port in endpoint_slice.ports or []:
                labels = {
                    "__address__": f"{endpoint.addresses[0]}:{port.port}",
                    "__meta_kubernetes_namespace": namespace,
                    "__meta_kubernetes_endpointslice_name": endpoint_slice.metadata.name,
                    "__meta_kubernetes_endpointslice_port_name": port.name or "",
                    "__meta_kubernetes_service_name": service.metadata.name,
                    "__meta_kubernetes_pod_name": pod.metadata.name,
                }
                for key, value in (service.metadata.labels or {}).items():
                    labels[f"__meta_kubernetes_service_label_{meta_name(key)}"] = value
                for key, value in (pod.metadata.labels or {}).items():
                    labels[f"__meta_kubernetes_pod_label_{meta_name(key)}"] = value
                targets.append(labels)
    return targets


def test_scrape_config_gives_the_labels_guardrails_use(cluster: Any, namespace: str, tmp_path: Path) -> None:
    api = cluster.api_client()
    core = client.CoreV1Api(api)
    parent = builders.Parent(NAME, namespace, uid="00000000-0000-0000-0000-000000000000")
    for service in builders.services(parent, 8080, stable_hash=STABLE, canary_hash=CANARY):
        service["metadata"].pop("ownerReferences", None)  # no such owner: the garbage collector would delete them
        core.create_namespaced_service(namespace, service)
    for revision in (STABLE, CANARY):
        labels = {
            naming.MODEL_DEPLOYMENT_LABEL: NAME,
            naming.REVISION_LABEL: revision,
            naming.POOL_LABEL: naming.POOL_SERVING,
            naming.MODEL_LABEL: MODEL,
        }
        core.create_namespaced_pod(
            namespace,
            {
                "metadata": {"name": f"{NAME}-{revision}", "labels": labels},
                "spec": {
                    "containers": [{"name": "server", "image": "model-server", "ports": [{"containerPort": 8080}]}]
                },
            },
        )
    # root, stable and canary Services over 2 ready pods: 4 endpoints in all.
    targets = wait_for(
        lambda: exactly(4, discovered_targets(api, namespace)),
        90,
        interval=0.25,
        message="EndpointSlices with every ready pod",
    )
    file_sd = tmp_path / "targets.json"
    file_sd.write_text(json.dumps([{"targets": [t.pop("__address__")], "labels": t} for t in targets]))
    job = dict(yaml.safe_load(SCRAPE.read_text())["scrape_configs"][0])
    del job["kubernetes_sd_configs"]
    job["file_sd_configs"] = [{"files": [str(file_sd)], "refresh_interval": "1s"}]
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": [job]}
    with private_prometheus(config) as prometheus:
        active = wait_for(
            lambda: exactly(2, prometheus.api("targets")["activeTargets"]),
            30,
            message="two active targets (root Service dropped)",
        )
        dropped = prometheus.api("targets", state="dropped")["droppedTargets"]
    got = {
        (
            t["labels"]["namespace"],
            t["labels"]["model"],
            t["labels"]["revision"],
            t["labels"]["role"],
            t["labels"]["job"],
        )
        for t in active
    }
    assert got == {
        (namespace, MODEL, STABLE, "stable", "model-server"),
        (namespace, MODEL, CANARY, "canary", "model-server"),
    }
    assert {t["labels"]["pod"] for t in active} == {f"{NAME}-{STABLE}", f"{NAME}-{CANARY}"}, "each pod scraped once"
    assert [d["discoveredLabels"]["__meta_kubernetes_service_name"] for d in dropped] == [NAME] * 2
