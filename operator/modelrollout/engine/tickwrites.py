"""One tick's writes to our own resources: what the API server answered is remembered, and the clearing of
the Events outbox rides on the tick's next status write.

Two things happen to every write of a tick beyond the call itself:

* the version it produced is told to :class:`~modelrollout.engine.freshness.WatchFreshness`, so the next
  tick knows whether the watch's copy holds it;
* a status patch that only clears the outbox (``pendingEvents``, after its Events were posted) is held,
  and sent with the tick's next status write to the same resource, or at the end of the tick. A tick
  that records a transition and then what it read back used to make three status writes, each one also
  an event on every watch of the kind; now two. Holding it is safe: the Events are posted under names
  fixed by their sequence, so a crash before the clear is written only posts them again, and the API
  server refuses the repeats as AlreadyExists (:mod:`modelrollout.engine.writing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelrollout.engine.freshness import Key, WatchFreshness
from modelrollout.engine.resources import PatchType, Resources
from modelrollout.engine.writing import OUTBOX_FIELD


class TickWrites:
    """:class:`~modelrollout.engine.resources.Resources` for one tick; :meth:`flush` at its end."""

    def __init__(self, resources: Resources, freshness: WatchFreshness) -> None:
        self._resources = resources
        self._freshness = freshness
        self._held: dict[Key, dict[str, Any]] = {}

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        self._send_held((plural, namespace, name))  # a fresh read must see the outbox as it is meant to be
        return self._resources.get(plural, namespace, name)

    def patch(
        self, plural: str, namespace: str, name: str, patch: Any, *, patch_type: PatchType = "merge"
    ) -> dict[str, Any]:
        patched = self._resources.patch(plural, namespace, name, patch, patch_type=patch_type)
        self._report(plural, patched)
        return patched

    def patch_status(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Patch the status; a patch of only the outbox is held and ``{}`` returned (nothing patched yet)."""
        key = (plural, namespace, name)
        fields = dict(patch["status"])
        if set(fields) == {OUTBOX_FIELD}:
            self._held[key] = fields
            return {}
        held = self._held.pop(key, {})
        patched = self._resources.patch_status(plural, namespace, name, {"status": {**held, **fields}})
        self._report(plural, patched)
        return patched

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        self._resources.create_event(namespace, event)

    def config_map_data(self, namespace: str, name: str) -> dict[str, str]:
        return self._resources.config_map_data(namespace, name)

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        return self._resources.secret_data(namespace, name)

    def flush(self) -> None:
        """Send what is still held: the tick is over."""
        for key in list(self._held):
            self._send_held(key)

    def _send_held(self, key: Key) -> None:
        held = self._held.pop(key, None)
        if held is not None:
            plural, namespace, name = key
            self._report(plural, self._resources.patch_status(plural, namespace, name, {"status": held}))

    def _report(self, plural: str, patched: Mapping[str, Any]) -> None:
        meta = patched.get("metadata") or {}
        version = meta.get("resourceVersion")
        if version:
            self._freshness.wrote((plural, str(meta.get("namespace")), str(meta.get("name"))), str(version))
