"""The peer's side of ``bench/bench_scale.py --peer argo``: a fleet of Argo Rollouts like our ModelDeployments.

Each Rollout is what ``served_model`` is for us: one replica, a replica canary (no mesh: Argo's
basic canary scales ReplicaSets, as our replicas router scales Deployments), steps 5, 25, 50, 100
with a 30 s pause after each but the last, no analysis. A spec change makes a new ReplicaSet (the
canary), which is what the bench times; ``abort`` is ``kubectl argo rollouts abort``
(``status.abort``), and a canary is rolled back when its ReplicaSet is at 0 replicas.

Argo Rollouts v1.10.2's controller runs cluster-wide (one watch per kind, as ours) from the build
``bench/peers/argo.py`` makes, with its own ServiceAccount token, so the API server counts its
requests in its own flow (:data:`FLOW_SCHEMA`) exactly as it counts ours.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "rollouts"
FLEET_LABEL = "mrscale.bench/fleet"
"""On every Rollout's pod template, so its ReplicaSets can be listed in one request."""
FLOW_SCHEMA = "mrscale-argo-rollouts"
PER_NAMESPACE = 100


def flow_schema(namespace: str, account: str, priority_level: str) -> dict[str, Any]:
    """Argo's requests in a flow of their own, at ``priority_level``: the one the chart makes for ours."""
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": FLOW_SCHEMA},
        "spec": {
            "priorityLevelConfiguration": {"name": priority_level},
            "matchingPrecedence": 900,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [
                        {"kind": "ServiceAccount", "serviceAccount": {"namespace": namespace, "name": account}}
                    ],
                    "resourceRules": [
                        {
                            "verbs": ["*"],
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "namespaces": ["*"],
                            "clusterScope": True,
                        }
                    ],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }


def rollout(name: str, version: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for weight in (5, 25, 50, 100):
        steps.append({"setWeight": weight})
        if weight < 100:
            steps.append({"pause": {"duration": "30s"}})
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, FLEET_LABEL: "argo"}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "ghcr.io/modelrollout/model-server:0.1.0",
                            "env": [{"name": "MODEL_VERSION", "value": version}],
                        }
                    ]
                },
            },
            "strategy": {"canary": {"steps": steps}},
        },
    }


def _version_patch(version: str) -> dict[str, Any]:
    container = {"name": "server", "env": [{"name": "MODEL_VERSION", "value": version}]}
    return {"spec": {"template": {"spec": {"containers": [container]}}}}


class ArgoFleet:
    """The bench's Rollouts, 100 per namespace, with the interface of ``bench_scale.Fleet``."""

    def __init__(self, api: client.ApiClient, prefix: str) -> None:
        self.api = api
        self.prefix = prefix
        self.names: list[tuple[str, str]] = []
        self.namespaces: list[str] = []
        self.objects = client.CustomObjectsApi(api)

    def grow(self, size: int) -> None:
        core = client.CoreV1Api(self.api)
        wanted = [(f"{self.prefix}-{index // PER_NAMESPACE}", f"m{index}") for index in range(len(self.names), size)]
        for namespace in sorted({ns for ns, _ in wanted} - set(self.namespaces)):
            core.create_namespace({"metadata": {"name": namespace}})
            self.namespaces.append(namespace)

        def create(item: tuple[str, str]) -> None:
            namespace, name = item
            self.objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, rollout(name, "v1"))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, wanted))
        self.names.extend(wanted)

    def all_healthy(self, size: int) -> bool:
        count = 0
        for namespace in self.namespaces:
            for item in self.objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
                count += (item.get("status") or {}).get("phase") == "Healthy"
        return count >= size

    def change(self, item: tuple[str, str], version: str) -> float:
        """Seconds from the patch being accepted to a ReplicaSet of the new revision existing."""
        namespace, name = item
        before = self._replica_sets(namespace, name)
        self._patch(item, _version_patch(version))
        accepted = time.monotonic()
        while not self._replica_sets(namespace, name) - before:
            if time.monotonic() - accepted > 120:
                return float("inf")
            time.sleep(0.02)
        return time.monotonic() - accepted

    def burst(self, items: list[tuple[str, str]], victim: tuple[str, str]) -> tuple[float, float]:
        """As ``bench_scale.Fleet.burst``: (abort -> canary ReplicaSet at 0, every canary ReplicaSet created)."""
        version = f"v-{uuid.uuid4().hex[:6]}"
        before = self._replica_sets(*victim)
        self._patch(victim, _version_patch(f"{version}-victim"))

        def canary_in_traffic() -> str | None:
            status = self._status(victim)
            new = self._replica_sets(*victim) - before
            return next(iter(new)) if new and int(status.get("currentStepIndex") or 0) >= 1 else None

        canary = _wait(canary_in_traffic, 300)
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            changes = pool.map(lambda item: self._patch(item, _version_patch(version)), items)
            self.objects.patch_namespaced_custom_object_status(
                GROUP, VERSION, victim[0], PLURAL, victim[1], {"status": {"abort": True}}
            )
            aborted = time.monotonic()
            apps = client.AppsV1Api(self.api)
            while (apps.read_namespaced_replica_set(canary, victim[0]).spec.replicas or 0) > 0:
                if time.monotonic() - aborted > 120:
                    break
                time.sleep(0.05)
            rolled_back = time.monotonic() - aborted
            list(changes)
        wanted = set(items)

        def canaries_created() -> bool:
            per_owner: dict[tuple[str, str], int] = {}
            for meta in self._fleet_replica_sets():
                owners = meta.get("ownerReferences") or [{}]
                key = (meta["namespace"], owners[0].get("name", ""))
                per_owner[key] = per_owner.get(key, 0) + 1
            return all(per_owner.get(item, 0) >= 2 for item in wanted)

        _wait(canaries_created, 600, every=0.5)
        return rolled_back, time.monotonic() - started

    def delete(self) -> None:
        core = client.CoreV1Api(self.api)
        for namespace in self.namespaces:
            with contextlib.suppress(client.ApiException):
                core.delete_namespace(namespace)

    def _patch(self, item: tuple[str, str], patch: dict[str, Any]) -> None:
        self.objects.patch_namespaced_custom_object(GROUP, VERSION, item[0], PLURAL, item[1], patch)

    def _status(self, item: tuple[str, str]) -> dict[str, Any]:
        found = self.objects.get_namespaced_custom_object(GROUP, VERSION, item[0], PLURAL, item[1])
        return dict(found.get("status") or {})

    def _replica_sets(self, namespace: str, name: str) -> set[str]:
        found = client.AppsV1Api(self.api).list_namespaced_replica_set(namespace, label_selector=f"app={name}")
        return {rs.metadata.name for rs in found.items}

    def _fleet_replica_sets(self) -> list[dict[str, Any]]:
        method, url, headers, _, _ = self.api.param_serialize(
            "GET",
            "/apis/apps/v1/replicasets",
            query_params=[("labelSelector", FLEET_LABEL)],
            header_params={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"},
            auth_settings=["BearerToken"],
        )
        answer = self.api.call_api(method, url, header_params=headers, _request_timeout=30)
        return [item["metadata"] for item in json.loads(answer.read())["items"]]


def _wait(check: Any, timeout: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise TimeoutError(f"{getattr(check, '__name__', 'condition')} not met in {timeout:.0f} s")


@contextlib.contextmanager
def running_argo(
    binary: Path, kubeconfig: Path, metrics_port: int, healthz_port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """rollouts-controller cluster-wide (one watch per kind), no leader election, its log next to the kubeconfig."""
    log = (kubeconfig.parent / "argo-rollouts.log").open("ab")
    argv = [
        str(binary), f"--kubeconfig={kubeconfig}", "--leader-elect=false",
        f"--metricsPort={metrics_port}", f"--healthzPort={healthz_port}", "--loglevel=warning",
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
