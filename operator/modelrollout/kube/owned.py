"""Reading what a ModelDeployment owns: from memory (:mod:`.ownedstore`), or one LIST per kind, by label."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes import client

from modelrollout.core.revisions import KnownRevision
from modelrollout.core.rollout import SmokeObservation
from modelrollout.kube import naming

Obj = dict[str, Any]


@dataclass(frozen=True)
class Owned:
    """The owned objects of one ModelDeployment, as plain dicts keyed by name."""

    revisions: dict[str, Obj] = field(default_factory=dict)
    deployments: dict[str, Obj] = field(default_factory=dict)
    services: dict[str, Obj] = field(default_factory=dict)
    jobs: dict[str, Obj] = field(default_factory=dict)

    def known_revisions(self) -> tuple[KnownRevision, ...]:
        known = []
        for revision in self.revisions.values():
            labels = revision["metadata"].get("labels", {})
            annotations = revision["metadata"].get("annotations", {})
            known.append(
                KnownRevision(
                    number=int(revision.get("revision", 0)),
                    hash=labels.get(naming.REVISION_LABEL, ""),
                    model_version=annotations.get("modelrollout.dev/model-version", ""),
                )
            )
        return tuple(sorted(known, key=lambda r: r.number))

    def deployment_of(self, name: str, revision_hash: str) -> Obj | None:
        return self.deployments.get(naming.workload_name(name, revision_hash))

    def ready(self, name: str, revision_hash: str | None) -> bool:
        if revision_hash is None:
            return False
        found = self.deployment_of(name, revision_hash)
        if found is None:
            return False
        return int((found.get("status") or {}).get("availableReplicas") or 0) > 0


def without_managed_fields(obj: Obj) -> Obj:
    """The object without its server-side-apply bookkeeping, which is most of its size and read by no one."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    return {**obj, "metadata": {key: value for key, value in metadata.items() if key != "managedFields"}}


def _items(response: Any) -> dict[str, Obj]:
    """A list's items by name, read as JSON: the client's typed models, turned back into dicts, cost
    the operator about fifteen times the CPU for the same objects."""
    listed = json.loads(response.data)
    return {item["metadata"]["name"]: item for item in listed.get("items") or []}


def read_owned(api: client.ApiClient, namespace: str, name: str, *, with_jobs: bool) -> Owned:
    listing = {"label_selector": naming.owned_selector(name), "_preload_content": False}
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    jobs: dict[str, Obj] = {}
    if with_jobs:
        jobs = _items(client.BatchV1Api(api).list_namespaced_job(namespace, **listing))
    return Owned(
        revisions=_items(apps.list_namespaced_controller_revision(namespace, **listing)),
        deployments=_items(apps.list_namespaced_deployment(namespace, **listing)),
        services=_items(core.list_namespaced_service(namespace, **listing)),
        jobs=jobs,
    )


class OwnedReader(Protocol):
    """Where a tick reads what its resource owns."""

    def owned(self, api: client.ApiClient, namespace: str, name: str, *, with_jobs: bool) -> Owned:
        """What ``name`` owns."""

    def deployment(self, namespace: str, name: str) -> Obj | None:
        """A Deployment as known without a request; None when it must be read."""


class Listing:
    """LISTs what a resource owns at every tick: where no store is kept (a kind built without one, as the
    unit tests build it to count a tick's requests)."""

    def owned(self, api: client.ApiClient, namespace: str, name: str, *, with_jobs: bool) -> Owned:
        return read_owned(api, namespace, name, with_jobs=with_jobs)

    def deployment(self, namespace: str, name: str) -> Obj | None:
        del namespace, name
        return None


def smoke_outcome(
    api: client.ApiClient, owned: Owned, namespace: str, expected_jobs: list[str]
) -> SmokeObservation | None:
    """Passed when every expected Job completed; Failed with the pod's own words when one failed."""
    found = [owned.jobs[n] for n in expected_jobs if n in owned.jobs]
    if not found:
        return None
    for job in found:
        failed = _condition(job, "Failed")
        if failed is not None:
            return SmokeObservation("Failed", _failure_reason(api, namespace, job, failed))
    for job in found:
        refused = _refused_pod(api, namespace, job)
        if refused is not None:
            return SmokeObservation("Failed", refused)
    if len(found) == len(expected_jobs) and all(_condition(job, "Complete") for job in found):
        return SmokeObservation("Passed")
    return SmokeObservation("Running")


REFUSALS = ("forbidden", "is invalid")
"""Words of a FailedCreate that will not go away by retrying: Pod Security, quota, an invalid pod. A
timeout or an internal error is left to the Job controller's own retries."""


def _refused_pod(api: client.ApiClient, namespace: str, job: Obj) -> str | None:
    """Why the Job controller cannot create the Job's pod (its FailedCreate Event), while the Job has none.

    Without this a pod refused by Pod Security leaves the Job silently empty until the smoke timeout,
    and the ModelDeployment would say "timed out" instead of the cause.
    """
    job_status = job.get("status") or {}
    if any(job_status.get(key) for key in ("active", "succeeded", "failed", "ready")) or _condition(job, "Complete"):
        return None
    name = job["metadata"]["name"]
    selector = f"involvedObject.kind=Job,involvedObject.name={name},reason=FailedCreate"
    events = client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=selector)
    newest_first = sorted(
        events.items, key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp, reverse=True
    )
    for event in newest_first:
        message = (event.message or "").strip()
        if any(word in message for word in REFUSALS):
            return f"{name}: cannot create its pod: {message}"[:900]
    return None


def _condition(job: Obj, type_: str) -> Obj | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_ and condition.get("status") == "True":
            return dict(condition)
    return None


def _failure_reason(api: client.ApiClient, namespace: str, job: Obj, condition: Obj) -> str:
    """The smoke check's own verdict from the pod's termination message, else the Job's condition."""
    name = job["metadata"]["name"]
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"job-name={name}")
    for pod in pods.items:
        for status in (pod.status.container_statuses or []) if pod.status else []:
            terminated = status.state.terminated if status.state else None
            if terminated is not None and terminated.exit_code != 0:
                message = (terminated.message or "").strip()
                return f"{name}: {message}" if message else f"{name}: exit code {terminated.exit_code}"
    detail = condition.get("message") or condition.get("reason") or "failed"
    return f"{name}: {detail}"
