"""Traffic split by replica counts, for clusters without a mesh or a Gateway.

One Service selects the pods of both revisions by a shared label, so each pod gets about the
same share of requests and a revision's share is its share of the pods. Weights are therefore
approximate, coarse with few replicas, and only as good as the Service's load balancing;
mirroring and header routes cannot be done at all.

Rounding (``split_replicas``): the canary gets ``round(total * weight / 100)`` replicas, half up,
and the stable revision the rest, except that a revision with a positive weight never gets zero
replicas: a 5% canary of 4 replicas runs 1 (really 25% of the traffic) and a 99% canary keeps 1
stable replica. When ``total`` is 1 that takes 2 replicas, one above ``total``: the only way to
send any traffic to both. ``realised`` tells the controller the weight that will really hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from kubernetes.client import AppsV1Api
from kubernetes.client.exceptions import ApiException

from modelrollout.routing.errors import RouterUnavailable, UnsupportedFeature
from modelrollout.routing.router import require
from modelrollout.routing.split import Backend, Feature, TrafficSplit, percentages, round_half_up

MERGE_PATCH = "application/merge-patch+json"
KnownDeployment = Callable[[str], Mapping[str, Any] | None]
"""A Deployment by name as a watch-fed cache holds it; None when the cache does not know it."""


def split_replicas(total: int, canary_weight: int) -> tuple[int, int]:
    """(stable, canary) replica counts approximating ``canary_weight`` percent of ``total``."""
    if total < 1:
        raise ValueError(f"total replicas must be at least 1, not {total}")
    if not 0 <= canary_weight <= 100:
        raise ValueError(f"canary weight {canary_weight} is outside 0..100")
    if canary_weight == 0:
        return total, 0
    if canary_weight == 100:
        return 0, total
    canary = min(max(round_half_up(Decimal(total * canary_weight) / 100), 1), max(total - 1, 1))
    return max(total - canary, 1), canary


def implied_weights(replicas: list[int]) -> list[int] | None:
    """The percentages of traffic replica counts imply; None when nothing runs."""
    return percentages(replicas)


def quantised(split: TrafficSplit, total: int) -> TrafficSplit:
    """The split a replica-count router can realise for ``split`` with ``total`` replicas."""
    counts = replica_counts(split, total)
    weights = implied_weights([counts[b.deployment] for b in split.backends])
    if weights is None:
        raise ValueError("a split always puts some replicas somewhere")
    return TrafficSplit(
        tuple(Backend(b.service, b.deployment, w) for b, w in zip(split.backends, weights, strict=True))
    )


def replica_counts(split: TrafficSplit, total: int) -> dict[str, int]:
    """Deployment -> replicas; the first backend is the stable revision, the second the canary."""
    if len(split.backends) > 2:
        raise UnsupportedFeature("the replicas router splits traffic between at most two Deployments")
    if any(not b.deployment for b in split.backends):
        raise ValueError("the replicas router needs each backend's Deployment")
    if len(split.backends) == 1:
        return {split.backends[0].deployment: total}
    stable, canary = split.backends
    stable_replicas, canary_replicas = split_replicas(total, canary.weight)
    return {stable.deployment: stable_replicas, canary.deployment: canary_replicas}


class ReplicasRouter:
    """Scales a stable and a canary Deployment behind one shared Service.

    Nothing in the cluster says which Deployments make up the split, so the router knows them
    from the last ``apply``: ``observe`` before any ``apply`` returns None. The controller applies
    the desired split (changing nothing when it already holds) and then observes. The first
    ``observe`` after an ``apply`` answers from what the apply read and the API server returned
    for its writes, a moment old, instead of reading every Deployment again; later ones read, from
    ``known`` (the operator's watch-fed cache, which also holds the answers to its writes) when it
    knows the Deployment, else with a GET.
    """

    name = "replicas"

    def __init__(
        self, apps: AppsV1Api, namespace: str, total_replicas: int, *, known: KnownDeployment | None = None
    ) -> None:
        self._apps = apps
        self._known = known
        self._namespace = namespace
        self._total = total_replicas
        self._applied: TrafficSplit | None = None
        self._read_back: dict[str, int] | None = None
        """Replicas by Deployment as the last ``apply`` read or wrote them, until one ``observe`` uses them."""

    def supports(self, features: Feature) -> bool:
        return not features

    def check(self) -> None:
        if self._applied is not None:
            for backend in self._applied.backends:
                self._replicas(backend.deployment)

    def apply(self, split: TrafficSplit) -> None:
        require(self, split)
        wanted = replica_counts(split, self._total)
        current = {deployment: self._replicas(deployment) for deployment in wanted}
        self._read_back = None
        # Grow before shrinking, so capacity never dips below what the traffic needs.
        for deployment in sorted(wanted, key=lambda d: wanted[d] < current[d]):
            if wanted[deployment] != current[deployment]:
                current[deployment] = self._scale(deployment, wanted[deployment])
        self._applied, self._read_back = split, current

    def observe(self) -> TrafficSplit | None:
        if self._applied is None:
            return None
        backends = self._applied.backends
        read_back, self._read_back = self._read_back or {}, None
        counts = [
            read_back[b.deployment] if b.deployment in read_back else self._replicas(b.deployment) for b in backends
        ]
        weights = implied_weights(counts)
        if weights is None:
            return None
        return TrafficSplit(tuple(Backend(b.service, b.deployment, w) for b, w in zip(backends, weights, strict=True)))

    def realised(self, split: TrafficSplit) -> TrafficSplit:
        return quantised(split, self._total)

    def _replicas(self, deployment: str) -> int:
        cached = self._known(deployment) if self._known is not None else None
        if cached is not None:
            return _count((cached.get("spec") or {}).get("replicas"))
        try:
            found = self._apps.read_namespaced_deployment(deployment, self._namespace)
        except ApiException as error:
            if error.status == 404:
                raise RouterUnavailable(
                    "DeploymentNotFound", f"Deployment {self._namespace}/{deployment} does not exist"
                ) from error
            raise
        return _replicas_of(found)

    def _scale(self, deployment: str, replicas: int) -> int:
        """Patch the replicas; returns them as the API server stored them."""
        found = self._apps.patch_namespaced_deployment(
            deployment, self._namespace, deployment_patch(replicas), _content_type=MERGE_PATCH
        )
        return _replicas_of(found)


def _replicas_of(deployment: Any) -> int:
    return _count(deployment.spec.replicas if deployment.spec else None)


def _count(replicas: Any) -> int:
    """A Deployment's ``spec.replicas``: the API server's default, 1, when unset."""
    return 1 if replicas is None else int(replicas)


def deployment_patch(replicas: int) -> dict[str, object]:
    """The merge patch that scales a Deployment; only ``spec.replicas``, nothing else."""
    return {"spec": {"replicas": replicas}}
