"""Everything the ModelDeployments own, in memory, kept current by list-and-watch: a tick reads it for free.

Without it each full tick LISTs its resource's ControllerRevisions, Deployments and Services (and
smoke Jobs), and the replicas router GETs the Deployments it scales: five or six requests, which in
a burst of a thousand changes were a third of what the API server had to answer. The store holds
each owned object once (without ``managedFields``), indexed by its owner's label, and is fed by
:mod:`modelrollout.kube.informer` (a list replaces a kind's contents; each watch event changes one
object) and by the API server's answers to the operator's own writes
(:func:`modelrollout.kube.client.on_write`), so the tick after a create sees what it created even
before the watch delivers it.

Two feeds can arrive out of order: a write's answer, then a watch event older than it. Where both
versions are integers, as every API server backed by etcd gives them, the newer is kept; a
deletion leaves a tombstone, so a write answered before it does not bring the object back. Until
every kind has been listed once, a read falls back to LISTs (:func:`~modelrollout.kube.owned.read_owned`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kubernetes import client

from modelrollout.kube.owned import Obj, Owned, read_owned, without_managed_fields

Key = tuple[str, str]
"""An object's namespace and name."""
Changed = Callable[[str, Obj, bool], None]
"""Told ``(plural, object, gone)`` after the store has taken in a change, to reconcile its owner."""


class OwnedStore:
    """The owned objects of every ModelDeployment, by kind and by owner; also an informer's sink."""

    def __init__(
        self,
        owner_label: str,
        kept: Mapping[str, Callable[[Obj], Obj]],
        on_change: Changed,
        *,
        scopes: Iterable[str | None] = (None,),
        keeps: Callable[[str], bool] = lambda namespace: True,
    ) -> None:
        """``kept`` names the kinds kept by plural, each with what of an object is kept; ``scopes`` are the
        namespaces listed one by one (None: all at once); of what they list, only the namespaces ``keeps``
        are kept."""
        self._owner_label = owner_label
        self._on_change = on_change
        self._keeps = keeps
        self._kept = dict(kept)
        self._objects: dict[str, dict[Key, Obj]] = {plural: {} for plural in self._kept}
        self._by_owner: dict[tuple[str, str, str], set[str]] = {}
        self._tombstones: dict[tuple[str, str, str], str] = {}
        self._unlisted = {(plural, scope) for plural in self._objects for scope in scopes}
        self._lock = threading.Lock()

    def synced(self) -> bool:
        """Whether every kind has been listed in every scope: only then does an owner with nothing in the store
        really own nothing."""
        with self._lock:
            return not self._unlisted

    def owned(self, api: client.ApiClient, namespace: str, name: str, *, with_jobs: bool) -> Owned:
        """What ``name`` owns, from memory once synced (by LISTs before)."""
        if not self.synced():
            return read_owned(api, namespace, name, with_jobs=with_jobs)
        with self._lock:
            return Owned(
                revisions=self._of("controllerrevisions", namespace, name),
                deployments=self._of("deployments", namespace, name),
                services=self._of("services", namespace, name),
                jobs=self._of("jobs", namespace, name) if with_jobs else {},
            )

    def deployment(self, namespace: str, name: str) -> Obj | None:
        """The Deployment as last listed, watched or written; None when not known here (read it instead)."""
        if not self.synced():
            return None
        with self._lock:
            return self._objects["deployments"].get((namespace, name))

    def replaced(self, plural: str, namespace: str | None, items: list[Obj], version: str) -> None:
        """A list: its items are the kind's whole contents (in ``namespace``; None: in all), save what this
        process wrote after it."""
        listed = {_key(item): self._stored(plural, item) for item in items if self._keeps(_key(item)[0])}

        def in_scope(key: Key) -> bool:
            return namespace is None or key[0] == namespace

        with self._lock:
            kind = self._objects[plural]
            for key, current in kind.items():
                if not in_scope(key):
                    continue
                newer = key not in listed and _newer(_version(current), version)
                if newer or (key in listed and _newer(_version(current), _version(listed[key]))):
                    listed[key] = current
            gone = [kind.pop(key) for key in [k for k in kind if in_scope(k) and k not in listed]]
            for obj in gone:
                self._unindex(plural, obj)
            for key, obj in listed.items():
                previous = kind.get(key)
                if previous is not None:
                    self._unindex(plural, previous)
                kind[key] = obj
                self._index(plural, obj)
            self._tombstones = {k: v for k, v in self._tombstones.items() if k[0] != plural or not in_scope(k[1:])}
            self._unlisted.discard((plural, namespace))
        for obj in gone:
            self._on_change(plural, obj, True)
        for obj in listed.values():
            self._on_change(plural, obj, False)

    def changed(self, plural: str, event: str, obj: Obj) -> None:
        """A watch event, in the order the API server sent it."""
        key = _key(obj)
        if not self._keeps(key[0]):
            return
        with self._lock:
            if event == "DELETED":
                self._tombstones[(plural, *key)] = _version(obj)
                removed = self._objects[plural].pop(key, None)
                if removed is not None:
                    self._unindex(plural, removed)
            else:
                self._tombstones.pop((plural, *key), None)
                self._put(plural, key, self._stored(plural, obj))
        self._on_change(plural, obj, event == "DELETED")

    def wrote(self, plural: str, written: Obj) -> None:
        """The API server's answer to one of the operator's writes of a ``plural``: the object as it now stands."""
        key = _key(written)
        if plural not in self._objects or self._owner(written) is None or not self._keeps(key[0]):
            return
        with self._lock:
            tombstone = self._tombstones.get((plural, *key))
            if tombstone is not None and not _newer(_version(written), tombstone):
                return
            self._put(plural, key, self._stored(plural, written))

    def _stored(self, plural: str, obj: Obj) -> Obj:
        """What is kept of ``obj``: what its kind keeps, without the server-side-apply bookkeeping."""
        return self._kept[plural](without_managed_fields(obj))

    def _put(self, plural: str, key: Key, obj: Obj) -> None:
        current = self._objects[plural].get(key)
        if current is not None:
            if _newer(_version(current), _version(obj)):
                return
            self._unindex(plural, current)
        self._objects[plural][key] = obj
        self._index(plural, obj)

    def _of(self, plural: str, namespace: str, owner: str) -> dict[str, Obj]:
        objects = self._objects[plural]
        names = self._by_owner.get((plural, namespace, owner), ())
        return {name: objects[(namespace, name)] for name in names}

    def _index(self, plural: str, obj: Obj) -> None:
        owner = self._owner(obj)
        if owner is not None:
            self._by_owner.setdefault((plural, obj["metadata"]["namespace"], owner), set()).add(obj["metadata"]["name"])

    def _unindex(self, plural: str, obj: Obj) -> None:
        owner = self._owner(obj)
        if owner is None:
            return
        index = (plural, obj["metadata"]["namespace"], owner)
        names = self._by_owner.get(index)
        if names is not None:
            names.discard(obj["metadata"]["name"])
            if not names:
                del self._by_owner[index]

    def _owner(self, obj: Obj) -> str | None:
        owner = ((obj.get("metadata") or {}).get("labels") or {}).get(self._owner_label)
        return str(owner) if owner else None


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return str(meta.get("namespace") or ""), str(meta["name"])


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _newer(version: str, than: str) -> bool:
    """Whether ``version`` is known to be later than ``than``: only when both are integers (etcd's
    revisions); otherwise nothing is known, and what arrived last wins."""
    return version.isdigit() and than.isdigit() and int(version) > int(than)
