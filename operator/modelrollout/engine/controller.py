"""One kind's controller: a watch-fed store of its resources, a work queue, and the reconciliation loop.

This is the informer pattern every Kubernetes controller uses. kopf's watch of the kind
delivers each change; the body goes into an in-memory store (without ``managedFields``) and
the key into the :class:`~modelrollout.engine.queue.WorkQueue`; a worker runs one
:meth:`Reconciler.tick <modelrollout.engine.reconciler.Reconciler.tick>` from the stored body.
After the tick the resource asks to be looked at again only if it needs to:

* an active one (a rollout in its steps, a monitor between evaluations, a running
  experiment) a ``tick_seconds`` later, from the store, so time-driven work (a look, the
  end of a step or a pause) is never missed and costs no API request while nothing is due;
* a failed one after its back-off;
* one at rest never, unless its kind re-verifies what no watch tells of (a Gateway API or
  Istio route someone edited) every ``resync_seconds``.

A change to anything a resource owns that its decisions read (its Deployments, Services,
ControllerRevisions and smoke Jobs: :mod:`modelrollout.engine.owners`) pokes exactly that
resource, with the quiet check skipped. So an idle fleet costs no thread, no timer and no API request, and a change
is acted on as soon as a worker is free.

With sharding (:mod:`modelrollout.engine.sharding`) the store still keeps every body the
watch delivers, but only the namespaces of the shards this replica holds are reconciled; a
shard gained is caught up on from the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from modelrollout import GROUP, VERSION
from modelrollout.engine.context import RETRY_CAP_SECONDS
from modelrollout.engine.queue import Priority, WorkQueue
from modelrollout.engine.reconciler import Reconciler
from modelrollout.engine.sharding import MEMO_KEY, Membership

logger = logging.getLogger(__name__)

Key = tuple[str, str]
"""A resource's namespace and name."""
DROPPED_METADATA = ("managedFields",)
"""What the store does not keep: the server-side-apply bookkeeping is most of an object's size."""


class Controller:
    """The store, the queue and the loop of one kind."""

    def __init__(self, reconciler: Reconciler[Any, Any], *, workers: int) -> None:
        self.reconciler = reconciler
        self.queue = WorkQueue(self._process, workers=workers, name=reconciler.kind.name)
        self._store: dict[Key, dict[str, Any]] = {}
        self._forced: set[Key] = set()
        self._lock = threading.Lock()
        self._shards: Membership | None = None
        self._freshness = reconciler.context.freshness
        self._clearings = reconciler.context.clearings

    def seen(self, body: Mapping[str, Any]) -> None:
        """A watch event: keep the body, and reconcile the resource."""
        meta = body["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]))
        kept = dict(body)
        kept["metadata"] = {k: v for k, v in meta.items() if k not in DROPPED_METADATA}
        with self._lock:
            self._store[key] = kept
        # After the store holds it: a worker that finds the copy trusted then reads this one or a newer one.
        self._freshness.delivered((self.reconciler.kind.plural, *key), str(meta.get("resourceVersion") or ""))
        self.queue.add(key, priority=self.reconciler.kind.priority(kept))

    def gone(self, namespace: str, name: str) -> None:
        with self._lock:
            self._store.pop((namespace, name), None)
            self._forced.discard((namespace, name))
        self._freshness.forget((self.reconciler.kind.plural, namespace, name))
        self._clearings.forget((self.reconciler.kind.plural, namespace, name))

    def poke(self, namespace: str, name: str) -> None:
        """Something the resource owns changed: reconcile it in full, quiet or not."""
        key = (namespace, name)
        with self._lock:
            body = self._store.get(key)
            if body is None:
                return
            self._forced.add(key)
        self.queue.add(key, priority=self.reconciler.kind.priority(body))

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)

    def shard_by(self, membership: Membership) -> None:
        """Reconcile only the namespaces of the shards ``membership`` holds (call before the queue starts)."""
        self._shards = membership
        membership.on_gained(self._catch_up)

    def _catch_up(self, gained: Callable[[str], bool]) -> None:
        """Shards were gained: reconcile their stored resources, as at start-up (another replica had them)."""
        self._freshness.doubt(gained)
        self._clearings.doubt(gained)
        with self._lock:
            keys = [(key, self.reconciler.kind.priority(body)) for key, body in self._store.items() if gained(key[0])]
        for key, priority in keys:
            self.queue.add(key, priority=priority)

    def _process(self, key: Any) -> None:
        if self._shards is not None and not self._shards.holds(key[0]):
            return  # another replica's shard: kept in the store, caught up on if this replica gains it
        fresh = self._freshness.trusted((self.reconciler.kind.plural, *key))  # before the store is read
        with self._lock:
            body = self._store.get(key)
            force = key in self._forced
            self._forced.discard(key)
        if body is None:  # deleted meanwhile
            return
        status = None
        try:
            status = self.reconciler.tick(body, force=force, fresh=fresh)
        finally:
            self._wake_later(key, status)

    def _wake_later(self, key: Any, status: Any) -> None:
        """Ask the queue for the resource's next look, even after a tick that raised: a resource whose
        wake-up was lost would wait for its next watch event, which an active one may never get."""
        with self._lock:
            latest = self._store.get(key)
        if latest is None:
            return
        try:
            current = status if status is not None else self.reconciler.status_of(latest)  # parsed once for both
            wake = self.reconciler.wake_in(latest, current)
            active = self.reconciler.active(latest, current)
        except Exception:  # a status the watch delivered but the model refuses: look again after the cap
            logger.exception("%s/%s: cannot tell when to look again", *key)
            wake, active = RETRY_CAP_SECONDS, False
        # A held outbox clearing (engine/tickwrites.py) is sent by a later tick: an active resource's next one,
        # else one that waits until nothing else is queued, so that in a burst it can still ride on a write.
        clearing = self._clearings.due_in((self.reconciler.kind.plural, *key))
        if clearing is not None and not active and (wake is None or clearing < wake):
            self.queue.add_after(key, clearing, priority=Priority.IDLE)
        elif wake is not None:
            self.queue.add_after(key, wake, priority=self.reconciler.kind.priority(latest))


def register(controller: Controller, *, on_delete: Callable[[str, str, Mapping[str, Any]], None]) -> None:
    """Feed the controller from kopf's watch of its kind, and run its queue while the operator runs.

    ``on_delete`` drops what the kind keeps about a deleted resource. Deletion is optional (no
    finalizer) unless the kind's ``finalizes`` says it must act before the object goes.
    """
    kind = controller.reconciler.kind
    context = controller.reconciler.context

    @kopf.on.startup()
    def start(memo: kopf.Memo, **_: Any) -> None:
        membership = memo.get(MEMO_KEY)
        if isinstance(membership, Membership):
            controller.shard_by(membership)
        controller.queue.start()

    @kopf.on.cleanup()
    def stop(**_: Any) -> None:
        controller.queue.stop()

    # Async: kopf runs a sync handler on its thread pool, a hop per event; this one only stores and queues.
    @kopf.on.event(GROUP, VERSION, kind.plural)
    async def changed(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        if event.get("type") == "DELETED":
            controller.gone(body.metadata.namespace or "", body.metadata.name or "")
        else:
            controller.seen(dict(event["object"]))

    @kopf.on.delete(GROUP, VERSION, kind.plural, optional=not getattr(kind, "finalizes", False))
    def deleted(spec: kopf.Spec, namespace: str | None, name: str, **_: Any) -> None:
        on_delete(namespace or "", name, dict(spec))
        context.forget(kind.name, namespace or "", name)
