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
a few dozen bytes each. The version each of the operator's own creates and patches produced is
noted from the API server's answer (:func:`modelrollout.kube.client.on_write`), so the event
that echoes it is not news either: the tick that wrote it decided knowing what it wrote, and a
rollout in progress still looks again after ``tick_seconds``. Before this, each new canary was
reconciled once more in full for the echoes of the revision, Deployment and Service it had just
written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import kopf

from modelrollout.engine.controller import Controller
from modelrollout.kube.client import on_write

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


class OwnedKind(NamedTuple):
    kind: str
    api_version: str
    plural: str
    fingerprint: Fingerprint


OWNED = (
    OwnedKind("Deployment", "apps/v1", "deployments", deployment),
    OwnedKind("Service", "v1", "services", service),
    OwnedKind("ControllerRevision", "apps/v1", "controllerrevisions", controller_revision),
    OwnedKind("Job", "batch/v1", "jobs", job),
)
"""What a ModelDeployment owns, labelled with its name, and what of each its decisions read."""
_BY_KIND = {owned.kind: owned for owned in OWNED}


class Fingerprints:
    """The last fingerprint of each owned object, to tell a change that matters from an echo; and the
    version each of our own writes produced, whose event is no news whatever its fingerprint."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        self._ours: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()

    def changed(self, key: tuple[str, str, str], print_: tuple[Any, ...] | None, version: str = "") -> bool:
        """Record ``print_`` of ``version`` (None: the object is gone); True when it is news: a version we
        did not write whose fingerprint differs from the last one."""
        with self._lock:
            if print_ is None:
                self._ours.pop(key, None)
                return self._last.pop(key, None) is not None
            before = self._last.get(key)
            self._last[key] = print_
            if version and self._ours.get(key) == version:
                del self._ours[key]
                return False
            return before != print_

    def wrote(self, key: tuple[str, str, str], version: str) -> None:
        """We wrote ``version`` of the object: its event is an echo. Versions are compared for equality only,
        so a later change by someone else is news however its fingerprint compares."""
        with self._lock:
            self._ours[key] = version


def own_write(fingerprints: Fingerprints, owner_label: str, written: Mapping[str, Any]) -> None:
    """Note the version of an owned object the operator wrote, as the API server answered, so its echo is no news."""
    owned = _BY_KIND.get(str(written.get("kind")))
    meta = written.get("metadata") or {}
    if owned is None or owner_label not in (meta.get("labels") or {}) or not meta.get("resourceVersion"):
        return
    fingerprints.wrote((owned.plural, str(meta.get("namespace")), str(meta.get("name"))), str(meta["resourceVersion"]))


def watch_owned(controller: Controller, owner_label: str) -> None:
    """Poke the owner when an object it owns appears, goes, or changes in a way its decisions read."""
    fingerprints = Fingerprints()
    on_write(lambda written: own_write(fingerprints, owner_label, written))
    for owned in OWNED:
        _watch(controller, owner_label, fingerprints, owned)


def _watch(controller: Controller, owner_label: str, fingerprints: Fingerprints, owned: OwnedKind) -> None:
    plural, fingerprint = owned.plural, owned.fingerprint
    group, _, version = owned.api_version.rpartition("/")

    @kopf.on.event(group=group, version=version, plural=plural, labels={owner_label: kopf.PRESENT})
    async def owned_changed(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:  # on the loop: no thread hop
        owner = (body.metadata.labels or {}).get(owner_label)
        namespace = body.metadata.namespace or ""
        gone = event.get("type") == "DELETED"
        key = (plural, namespace, body.metadata.name or "")
        version = str(body.metadata.get("resourceVersion") or "")
        if owner and fingerprints.changed(key, None if gone else fingerprint(body), version):
            controller.poke(namespace, owner)
