"""The peer's side of ``bench/bench_scale.py --peer argo``: a fleet of Argo Rollouts like our ModelDeployments.

Each Rollout is what ``served_model`` is for us: one replica, a replica canary (no mesh: Argo's
basic canary scales ReplicaSets, as our replicas router scales Deployments), steps 5, 25, 50, 100
with a 30 s pause after each but the last, no analysis. A spec change makes a new ReplicaSet (the
canary), which is what the bench times; ``abort`` is ``kubectl argo rollouts abort``
(``status.abort``), and a canary is rolled back when its ReplicaSet is at 0 replicas.

Argo Rollouts v1.10.2's controller (``bench/peers/argo.py``'s ``ArgoController`` with no namespace)
runs cluster-wide, one watch per kind as ours, with its own ServiceAccount token, so the API server
counts its requests in its own flow (:data:`FLOW_SCHEMA`) exactly as it counts ours.
"""

from __future__ import annotations

from typing import Any

from bench.fleet import Fleet, wait_until
from kubernetes import client

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "rollouts"
FLEET_LABEL = "mrscale.bench/fleet"
"""On every Rollout's pod template, so its ReplicaSets can be listed in one request."""
FLOW_SCHEMA = "mrscale-argo-rollouts"


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
                "spec": {"containers": [_container(version)]},
            },
            "strategy": {"canary": {"steps": steps}},
        },
    }


def _container(version: str) -> dict[str, Any]:
    return {
        "name": "server",
        "image": "ghcr.io/modelrollout/model-server:0.1.0",
        "env": [{"name": "MODEL_VERSION", "value": version}],
    }


def _version_patch(version: str) -> dict[str, Any]:
    """The whole container: a JSON merge patch replaces a list, so a container without its image is invalid."""
    return {"spec": {"template": {"spec": {"containers": [_container(version)]}}}}


class ArgoFleet(Fleet):
    """The bench's Rollouts, 100 per namespace."""

    group, version, plural = GROUP, VERSION, PLURAL

    def document(self, name: str) -> dict[str, Any]:
        return rollout(name, "v1")

    def version_patch(self, version: str) -> dict[str, Any]:
        return _version_patch(version)

    def start_canary(self, item: tuple[str, str], version: str) -> str:
        before = self.workloads_of(item)
        self.patch(item, _version_patch(version))

        def canary_in_traffic() -> str | None:
            new = self.workloads_of(item) - before
            return next(iter(new)) if new and int(self.status(item).get("currentStepIndex") or 0) >= 1 else None

        return str(wait_until("the victim's canary in traffic", canary_in_traffic, 300, every=0.2))

    def abort(self, item: tuple[str, str]) -> None:
        """``kubectl argo rollouts abort``."""
        self.objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, item[0], PLURAL, item[1], {"status": {"abort": True}}
        )

    def rolled_back(self, item: tuple[str, str], canary: str) -> bool:
        """The canary ReplicaSet at 0 replicas (a basic canary has no weight apart from its replicas)."""
        return (client.AppsV1Api(self.api).read_namespaced_replica_set(canary, item[0]).spec.replicas or 0) == 0

    workload_path, workload_selector = "/apis/apps/v1/replicasets", FLEET_LABEL

    def owner_of(self, meta: dict[str, Any]) -> tuple[str, str]:
        owners = meta.get("ownerReferences") or [{}]
        return meta["namespace"], str(owners[0].get("name", ""))

    def workloads_of(self, item: tuple[str, str]) -> set[str]:
        namespace, name = item
        found = client.AppsV1Api(self.api).list_namespaced_replica_set(namespace, label_selector=f"app={name}")
        return {rs.metadata.name for rs in found.items}
