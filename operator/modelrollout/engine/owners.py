"""Changes to what a ModelDeployment owns that it must act on, told apart from the ones it need not.

A ModelDeployment's Deployments, Services, ControllerRevisions and smoke Jobs are watched so that a
change the operator did not make (a Deployment deleted, its pods becoming ready, a smoke Job
finishing) reconciles the owner at once. But most events on those objects are echoes of the
operator's own writes, or bookkeeping nobody acts on (a Deployment's ``status.conditions``
timestamps, a new ReplicaSet's counters): reconciling the owner in full for each of them cost a
thousand-object fleet several minutes of API requests after it came to rest.

So each kind of owned object has a **fingerprint**: the few fields a decision reads
(``kube/owned.py``, ``kube/converge.py``). An event pokes the owner only when the object
appears, disappears, or its fingerprint changes; the last fingerprint of each object is kept,
a few dozen bytes each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from modelrollout.engine.controller import Controller

Fingerprint = Callable[[Mapping[str, Any]], tuple[Any, ...]]


def deployment(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """Replicas asked for and available (readiness gates traffic), and the pod template's identity."""
    spec, status = body.get("spec") or {}, body.get("status") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return (spec.get("replicas"), status.get("availableReplicas"), tuple(sorted(labels.items())))


def service(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """Where it sends traffic."""
    spec = body.get("spec") or {}
    return (tuple(sorted((spec.get("selector") or {}).items())), str(spec.get("ports")))


def controller_revision(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """Its number (history and undo read it)."""
    return (body.get("revision"),)


def job(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """Whether its pod runs, and whether and how it finished (the smoke test's verdict)."""
    status = body.get("status") or {}
    finished = tuple(sorted(c.get("type", "") for c in status.get("conditions") or [] if c.get("status") == "True"))
    return (status.get("active"), status.get("ready"), status.get("succeeded"), status.get("failed"), finished)


OWNED: tuple[tuple[str, str, Fingerprint], ...] = (
    ("apps/v1", "deployments", deployment),
    ("v1", "services", service),
    ("apps/v1", "controllerrevisions", controller_revision),
    ("batch/v1", "jobs", job),
)
"""What a ModelDeployment owns, labelled with its name, and what of each its decisions read."""


class Fingerprints:
    """The last fingerprint of each owned object, to tell a change that matters from an echo."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        self._lock = threading.Lock()

    def changed(self, key: tuple[str, str, str], print_: tuple[Any, ...] | None) -> bool:
        """Record ``print_`` (None: the object is gone); True when it differs from the last one."""
        with self._lock:
            if print_ is None:
                return self._last.pop(key, None) is not None
            before = self._last.get(key)
            self._last[key] = print_
            return before != print_


def watch_owned(controller: Controller, owner_label: str) -> None:
    """Poke the owner when an object it owns appears, goes, or changes in a way its decisions read."""
    fingerprints = Fingerprints()
    for api_version, plural, fingerprint in OWNED:
        _watch(controller, owner_label, fingerprints, (api_version, plural, fingerprint))


def _watch(
    controller: Controller,
    owner_label: str,
    fingerprints: Fingerprints,
    owned: tuple[str, str, Fingerprint],
) -> None:
    api_version, plural, fingerprint = owned
    group, _, version = api_version.rpartition("/")

    @kopf.on.event(group=group, version=version, plural=plural, labels={owner_label: kopf.PRESENT})
    def owned_changed(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        owner = (body.metadata.labels or {}).get(owner_label)
        namespace = body.metadata.namespace or ""
        gone = event.get("type") == "DELETED"
        key = (plural, namespace, body.metadata.name or "")
        if owner and fingerprints.changed(key, None if gone else fingerprint(body)):
            controller.poke(namespace, owner)
