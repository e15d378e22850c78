"""Converging the cluster to a decision's desired state: create what is missing, fix what differs.

Every call here is idempotent, so running it again after a crash, or on every
tick, is harmless; it reads nothing the observation did not already read, and
writes only where the live object differs (tracked by a hash annotation,
because the API server defaults fields and a naive comparison always differs).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from modelrollout.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus, RevisionRef
from modelrollout.core.revisions import RevisionContent
from modelrollout.core.rollout import Desired
from modelrollout.kube import builders, naming
from modelrollout.kube.client import is_status
from modelrollout.kube.owned import Obj, Owned
from modelrollout.routing.errors import RouterUnavailable, RoutingError
from modelrollout.routing.router import TrafficRouter
from modelrollout.routing.split import Backend, TrafficSplit

SPEC_HASH = "modelrollout.dev/spec-hash"
MERGE = "application/merge-patch+json"
CONFLICT_RETRIES = 3
"""Replacing from a stale read gets 409 Conflict; the object is read again and the change re-applied at
once, so a concurrent writer (an HPA, kubectl scale) costs one more round trip, not a tick."""


class ConvergeError(Exception):
    """The API server refused a derived object: says which object, what was being done and why.

    ``condition_reason`` is what the controller's ``Reconciled`` condition shows (a 422 means the
    spec produced an object the API server finds invalid, for example a pod template it cannot take).
    """

    def __init__(self, action: str, kind: str, name: str, error: client.ApiException) -> None:
        detail = _api_message(error)
        super().__init__(f"{action} {kind} {name}: {detail}")
        self.status = error.status
        self.condition_reason = "DerivedObjectInvalid" if error.status == 422 else "ApiError"


def _api_message(error: client.ApiException) -> str:
    try:
        body = json.loads(error.body) if error.body else {}
    except (TypeError, ValueError):
        body = {}
    detail = body.get("message") if isinstance(body, dict) else None
    return f"{error.status} {error.reason}: {detail}" if detail else f"{error.status} {error.reason}"


@dataclass(frozen=True, slots=True)
class RouterState:
    """What the router reported after converging: the canary weight in force, or why it is unknown."""

    canary_weight: int | None
    problem: RouterUnavailable | None = None


def _hash(manifest: dict[str, Any]) -> str:
    parts = {"labels": manifest["metadata"].get("labels"), "spec": manifest["spec"], "replicas": None}
    parts["spec"] = {k: v for k, v in manifest["spec"].items() if k != "replicas"}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


class Converger:
    """Applies one ModelDeployment's desired state with the calls of one reconciliation."""

    def __init__(
        self,
        api: client.ApiClient,
        parent: builders.Parent,
        spec: ModelDeploymentSpec,
        owned: Owned,
        *,
        operator_image: str,
    ) -> None:
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)
        self._batch = client.BatchV1Api(api)
        self._parent = parent
        self._spec = spec
        self._owned = owned
        self._operator_image = operator_image

    def content_of(self, ref: RevisionRef, status: ModelDeploymentStatus) -> RevisionContent | None:
        """The frozen content of a revision: the spec's for the current one, the ControllerRevision's otherwise."""
        if status.current_revision is not None and ref.hash == status.current_revision.hash:
            return RevisionContent.of(self._spec)
        stored = self._owned.revisions.get(naming.revision_name(self._parent.name, ref.hash))
        return RevisionContent.from_data(stored["data"]) if stored and stored.get("data") else None

    def revisions(self, status: ModelDeploymentStatus) -> None:
        refs = {r.hash: r for r in (status.stable_revision, status.current_revision) if r is not None}
        for ref in refs.values():
            content = self.content_of(ref, status)
            name = naming.revision_name(self._parent.name, ref.hash)
            existing = self._owned.revisions.get(name)
            if existing is None and content is not None:
                self._create(
                    self._apps.create_namespaced_controller_revision,
                    builders.controller_revision(self._parent, ref, content),
                )
            elif existing is not None and int(existing.get("revision", 0)) != ref.number:
                self._renumber(name, ref.number)

    def prune_revisions(self, status: ModelDeploymentStatus, keep: int) -> None:
        """Drop the oldest ControllerRevisions beyond the history limit, never the live ones."""
        live = {r.hash for r in (status.stable_revision, status.current_revision) if r is not None}
        ordered = sorted(self._owned.revisions.values(), key=lambda r: int(r.get("revision", 0)), reverse=True)
        for revision in ordered[keep:]:
            if revision["metadata"].get("labels", {}).get(naming.REVISION_LABEL) not in live:
                self._delete(
                    self._apps.delete_namespaced_controller_revision, "ControllerRevision", revision["metadata"]["name"]
                )

    def workloads(self, status: ModelDeploymentStatus, desired: Desired, *, router_scales: bool) -> None:
        """Deployments for stable and canary, Services, and nothing else: stale revisions' Deployments go."""
        wanted: dict[str, dict[str, Any]] = {}
        smoke_phase = desired.smoke_attempt is not None
        for ref, replicas, role in (
            (desired.stable, desired.stable_replicas, "stable"),
            (desired.canary, desired.canary_replicas, "canary"),
        ):
            if ref is None:
                continue
            content = self.content_of(ref, status)
            if content is None:
                continue
            serving = not (role == "canary" and smoke_phase and router_scales)
            manifest = builders.deployment(self._parent, ref, content, replicas=replicas, role=role, serving=serving)
            wanted[manifest["metadata"]["name"]] = manifest
        in_split = {n for n, m in wanted.items() if m["metadata"]["labels"][naming.ROLE_LABEL] == "stable"}
        if desired.canary is not None and desired.canary_weight > 0:
            in_split.add(naming.workload_name(self._parent.name, desired.canary.hash))
        for name, manifest in wanted.items():
            self._ensure_deployment(manifest, own_replicas=not (router_scales and name in in_split))
        for name in set(self._owned.deployments) - set(wanted):
            self._delete(self._apps.delete_namespaced_deployment, "Deployment", name)
        stable_hash = desired.stable.hash if desired.stable else None
        canary_hash = desired.canary.hash if desired.canary else None
        for manifest in builders.services(
            self._parent, self._spec.port, stable_hash=stable_hash, canary_hash=canary_hash
        ):
            self._ensure_service(manifest)

    def smoke_jobs(self, status: ModelDeploymentStatus, desired: Desired) -> list[str]:
        """Create the current attempt's smoke Jobs if missing; returns their names."""
        if desired.smoke_attempt is None or desired.canary is None:
            return []
        jobs = builders.smoke_jobs(
            self._parent, self._spec, desired.canary, attempt=desired.smoke_attempt, operator_image=self._operator_image
        )
        for job in jobs:
            if job["metadata"]["name"] not in self._owned.jobs:
                self._create(self._batch.create_namespaced_job, job)
        return [job["metadata"]["name"] for job in jobs]

    def route(self, router: TrafficRouter, desired: Desired) -> RouterState:
        """Put the weights in force and read them back; the weight counts only once the router confirms it."""
        split = desired_split(self._parent.name, desired, router.name)
        if split is None:
            return RouterState(canary_weight=None)
        try:
            router.apply(split)
            observed = router.observe()
        except RouterUnavailable as problem:
            return RouterState(canary_weight=None, problem=problem)
        except RoutingError as error:
            return RouterState(canary_weight=None, problem=RouterUnavailable("RoutingFailed", str(error)))
        if observed is None:
            return RouterState(canary_weight=None)
        if observed == router.realised(split):
            return RouterState(canary_weight=desired.canary_weight)
        canary = naming.canary_service(self._parent.name)
        weight = observed.weights.get(canary, 0)
        # The canary's share may match while the rest of the split does not (a route emptied by someone
        # else): that is not the desired state, and must not confirm a step or a promotion.
        return RouterState(canary_weight=None if weight == desired.canary_weight else weight)

    def _renumber(self, name: str, number: int) -> None:
        """Rolled out again: renumber the ControllerRevision as Deployments do. A patch is refused (the API
        server re-serialises the immutable ``data`` and calls it a change); a full replace is not."""
        namespace = self._parent.namespace
        for attempt in range(CONFLICT_RETRIES):
            try:
                live = self._apps.read_namespaced_controller_revision(name, namespace)
                live.revision = number
                self._apps.replace_namespaced_controller_revision(name, namespace, live)
                return
            except client.ApiException as error:
                if not is_status(error, 409) or attempt == CONFLICT_RETRIES - 1:
                    raise ConvergeError("renumbering", "ControllerRevision", name, error) from None

    def _ensure_deployment(self, manifest: Obj, *, own_replicas: bool) -> None:
        name = manifest["metadata"]["name"]
        namespace = self._parent.namespace
        digest = _hash(manifest)
        manifest["metadata"].setdefault("annotations", {})[SPEC_HASH] = digest
        existing = self._owned.deployments.get(name)
        if existing is None:
            self._create(self._apps.create_namespaced_deployment, manifest)
            return
        if existing["metadata"].get("annotations", {}).get(SPEC_HASH) == digest:
            if own_replicas and existing["spec"].get("replicas") != manifest["spec"]["replicas"]:
                patch = {"spec": {"replicas": manifest["spec"]["replicas"]}}
                try:
                    self._apps.patch_namespaced_deployment(name, namespace, patch, _content_type=MERGE)
                except client.ApiException as error:
                    raise ConvergeError("scaling", "Deployment", name, error) from None
            return
        for attempt in range(CONFLICT_RETRIES):
            try:
                self._apps.replace_namespaced_deployment(name, namespace, _updated(existing, manifest, own_replicas))
                return
            except client.ApiException as error:
                if not is_status(error, 409) or attempt == CONFLICT_RETRIES - 1:
                    raise ConvergeError("updating", "Deployment", name, error) from None
            # Someone wrote the Deployment since we read it: read it again and re-apply the same change.
            try:
                live = self._apps.read_namespaced_deployment(name, namespace)
            except client.ApiException as error:
                raise ConvergeError("reading", "Deployment", name, error) from None
            existing = self._apps.api_client.sanitize_for_serialization(live)

    def _ensure_service(self, manifest: Obj) -> None:
        name = manifest["metadata"]["name"]
        existing = self._owned.services.get(name)
        if existing is None:
            self._create(self._core.create_namespaced_service, manifest)
        elif existing["spec"].get("selector") != manifest["spec"]["selector"]:
            patch = {"spec": {"selector": manifest["spec"]["selector"]}}
            try:
                self._core.patch_namespaced_service(name, self._parent.namespace, patch, _content_type=MERGE)
            except client.ApiException as error:
                raise ConvergeError("updating", "Service", name, error) from None

    def _create(self, create: Any, manifest: Obj) -> None:
        try:
            create(self._parent.namespace, manifest)
        except client.ApiException as error:
            if not is_status(error, 409):
                raise ConvergeError("creating", manifest["kind"], manifest["metadata"]["name"], error) from None

    def _delete(self, delete: Any, kind: str, name: str) -> None:
        try:
            delete(name, self._parent.namespace, propagation_policy="Background")
        except client.ApiException as error:
            if not is_status(error, 404):
                raise ConvergeError("deleting", kind, name, error) from None


def _updated(existing: Obj, manifest: Obj, own_replicas: bool) -> Obj:
    """The live Deployment with our labels, annotations, template (and replicas, when ours) put in."""
    updated = copy.deepcopy(existing)
    updated["metadata"]["labels"] = manifest["metadata"]["labels"]
    updated["metadata"]["annotations"] = {
        **(updated["metadata"].get("annotations") or {}),
        **manifest["metadata"]["annotations"],
    }
    updated["spec"]["template"] = manifest["spec"]["template"]
    if own_replicas:
        updated["spec"]["replicas"] = manifest["spec"]["replicas"]
    updated.pop("status", None)
    return updated


def desired_split(name: str, desired: Desired, router_name: str) -> TrafficSplit | None:
    """The weights a decision asks for, in router terms; None while nothing is stable (no traffic to move)."""
    if desired.stable is None:
        return None
    stable = Backend(
        naming.stable_service(name), naming.workload_name(name, desired.stable.hash), 100 - desired.canary_weight
    )
    if desired.canary is None or (router_name == "replicas" and desired.canary_weight == 0):
        return TrafficSplit((Backend(stable.service, stable.deployment, 100),))
    canary = Backend(
        naming.canary_service(name), naming.workload_name(name, desired.canary.hash), desired.canary_weight
    )
    return TrafficSplit((stable, canary))
