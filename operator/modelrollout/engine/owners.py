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

The operator lists and watches the owned kinds itself (:mod:`modelrollout.kube.informer`), by
label, into an :class:`~modelrollout.kube.ownedstore.OwnedStore`, and a tick reads what its
resource owns from there, not with LISTs. An event pokes the owner only after the store holds it,
so the tick it causes reads what caused it. Watching every namespace, or namespaces by pattern,
each kind is watched across all namespaces (with a pattern, only the matching namespaces' objects
are kept); watching namespaces by name, each kind is watched in each of them, which a Role per
namespace allows.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import kopf

from modelrollout.config import Settings
from modelrollout.engine.controller import Controller
from modelrollout.kube import informer
from modelrollout.kube.client import api_client, on_write
from modelrollout.kube.informer import Informer
from modelrollout.kube.owned import Obj
from modelrollout.kube.ownedstore import OwnedStore

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


def kept_service(body: Obj) -> Obj:
    """What of a Service is kept in memory: where it sends traffic (``kube/converge.py`` patches the selector
    with a merge patch, so nothing else is ever written back). Three Services a ModelDeployment made them a
    third of the store."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    return {
        "kind": body.get("kind", "Service"),
        "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "resourceVersion") if k in meta},
        "spec": {k: spec[k] for k in ("selector", "ports") if k in spec},
    }


def kept_deployment(body: Obj) -> Obj:
    """A Deployment without its status conditions, which no decision reads; the rest stays, because a
    Deployment whose template changed is replaced from it (``kube/converge.py``)."""
    status = body.get("status")
    if not isinstance(status, dict) or "conditions" not in status:
        return body
    return {**body, "status": {k: v for k, v in status.items() if k != "conditions"}}


def kept_whole(body: Obj) -> Obj:
    return body


class OwnedKind(NamedTuple):
    kind: str
    watched: informer.WatchedKind
    fingerprint: Fingerprint
    kept: Callable[[Obj], Obj]
    """What of the object the store keeps."""

    @property
    def plural(self) -> str:
        return self.watched.plural


OWNED = (
    OwnedKind("Deployment", informer.DEPLOYMENTS, deployment, kept_deployment),
    OwnedKind("Service", informer.SERVICES, service, kept_service),
    OwnedKind("ControllerRevision", informer.CONTROLLER_REVISIONS, controller_revision, kept_whole),
    OwnedKind("Job", informer.JOBS, job, kept_whole),
)
"""What a ModelDeployment owns, labelled with its name, and what of each its decisions read."""
_BY_KIND = {owned.kind: owned for owned in OWNED}
_BY_PLURAL = {owned.plural: owned for owned in OWNED}


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


def own_write(fingerprints: Fingerprints, owner_label: str, written: Mapping[str, Any]) -> OwnedKind | None:
    """Note the version of an owned object the operator wrote, as the API server answered, so its echo is no
    news; returns its kind, or None when it is not an owned object."""
    owned = _BY_KIND.get(str(written.get("kind")))
    meta = written.get("metadata") or {}
    if owned is None or owner_label not in (meta.get("labels") or {}) or not meta.get("resourceVersion"):
        return None
    fingerprints.wrote((owned.plural, str(meta.get("namespace")), str(meta.get("name"))), str(meta["resourceVersion"]))
    return owned


def watch_owned(controller: Controller, owner_label: str, settings: Settings) -> OwnedStore:
    """Keep what ModelDeployments own in memory, and poke the owner when an object it owns appears, goes, or
    changes in a way its decisions read; returns the store its ticks read."""
    fingerprints = Fingerprints()

    def changed(plural: str, obj: Mapping[str, Any], gone: bool) -> None:
        meta = obj.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(owner_label)
        namespace = str(meta.get("namespace") or "")
        key = (plural, namespace, str(meta.get("name") or ""))
        version = str(meta.get("resourceVersion") or "")
        if owner and fingerprints.changed(key, None if gone else _BY_PLURAL[plural].fingerprint(obj), version):
            controller.poke(namespace, owner)

    scopes, keeps = watch_scopes(settings.namespaces)
    kept = {owned.plural: owned.kept for owned in OWNED}
    store = OwnedStore(owner_label, kept, changed, scopes=scopes, keeps=keeps)

    def wrote(written: Obj) -> None:
        owned = own_write(fingerprints, owner_label, written)
        if owned is not None:
            store.wrote(owned.plural, written)

    on_write(wrote)
    informers = [
        Informer(
            api_client(),
            owned.watched,
            store,
            label_selector=owner_label,
            watch_seconds=settings.watch_seconds,
            namespace=scope,
        )
        for owned in OWNED
        for scope in scopes
    ]

    @kopf.on.startup()
    def start_informers(**_: Any) -> None:
        for one in informers:
            one.start()

    @kopf.on.cleanup()
    def stop_informers(**_: Any) -> None:
        for one in informers:
            one.stop()

    return store


def watch_scopes(namespaces: Sequence[str]) -> tuple[list[str | None], Callable[[str], bool]]:
    """Where to list and watch (None: all namespaces at once) and which namespaces' objects to keep.

    kopf's patterns (``team-*``, ``!kube-*``, comma-separated) cannot be listed one namespace at a time, so
    a pattern watches every namespace and keeps those that match; names are watched one by one.
    """
    if not namespaces:
        return [None], _everywhere
    if not any(char in pattern for pattern in namespaces for char in "*?!,"):
        return list(namespaces), _everywhere
    return [None], lambda namespace: any(matches(namespace, pattern) for pattern in namespaces)


def matches(namespace: str, pattern: str) -> bool:
    """kopf's rule for one pattern: comma-separated globs, left to right. The first inclusive glob decides
    the initial match (a pattern that starts by excluding includes everything first); ``!glob`` excludes; a
    later inclusive glob re-includes only what an exclusion took out."""
    globs = [part.strip() for part in pattern.split(",") if part.strip()]
    state = "in" if globs and globs[0].startswith("!") else "undecided"
    for glob in globs:
        if glob.startswith("!"):
            if state == "in" and fnmatch.fnmatchcase(namespace, glob[1:]):
                state = "excluded"
        elif state == "undecided":
            state = "in" if fnmatch.fnmatchcase(namespace, glob) else "out"
        elif state == "excluded" and fnmatch.fnmatchcase(namespace, glob):
            state = "in"
    return state == "in"


def _everywhere(namespace: str) -> bool:
    del namespace
    return True
