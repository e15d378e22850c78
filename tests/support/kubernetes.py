"""An in-memory API server behind the engine's seam (:class:`modelrollout.engine.resources.Resources`).

It keeps objects by plural, namespace and name, applies merge patches (RFC 7386, with the
``resourceVersion`` precondition the API server enforces) and the JSON-patch ``add`` and
``replace`` operations, keeps Events by name (a second create is refused with 409, as
AlreadyExists), and records a journal of the calls in order, so a test asserts which status write
came before which Event, as Argo Rollouts' controller tests do with their fake clientsets.
``crash_at`` makes the n-th call raise :class:`Crash` (the operator dies there); ``refuse`` makes
creating an Event with a given reason fail with an HTTP status.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes.client import ApiException

from modelrollout.api.events import PendingEvent, outbox_fields
from modelrollout.engine.resources import PatchType
from modelrollout.engine.writing import SEQUENCE_ANNOTATION

Key = tuple[str, str, str]


class Crash(BaseException):
    """The operator dies here (a BaseException, so no handler of the code under test catches it)."""


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, section 2, as the API server applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


class InMemoryResources:
    """:class:`~modelrollout.engine.resources.Resources` in memory, with a journal of every call."""

    def __init__(self, *, crash_at: int | None = None, refuse: Mapping[str, int] | None = None) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.config_maps: dict[tuple[str, str], dict[str, str]] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.journal: list[str] = []
        self.crash_at = crash_at
        self.refuse: dict[str, int] = dict(refuse or {})
        """Event reason -> the HTTP status its creation is refused with."""
        self._versions = itertools.count(1)
        self._generated = itertools.count(1)

    # --- set-up and inspection ------------------------------------------------------------------------------------

    def add(self, plural: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object as the API server would: with a uid, a generation and a resourceVersion."""
        stored = copy.deepcopy(dict(body))
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[plural, meta["namespace"], meta["name"]] = stored
        return copy.deepcopy(stored)

    def stored(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.objects[plural, namespace, name])

    def reasons(self, name: str | None = None) -> list[str]:
        """Reasons of the Events posted (about ``name`` only, if given), outbox Events by their number."""
        about = [e for e in self.events.values() if name is None or e["involvedObject"]["name"] == name]
        numbered = sorted(
            (e for e in about if SEQUENCE_ANNOTATION in (e["metadata"].get("annotations") or {})),
            key=lambda e: int(e["metadata"]["annotations"][SEQUENCE_ANNOTATION]),
        )
        others = [e for e in about if e not in numbered]
        return [e["reason"] for e in [*numbered, *others]]

    # --- the seam -------------------------------------------------------------------------------------------------

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        self._call(f"get {plural}/{name}")
        return copy.deepcopy(self._object(plural, namespace, name))

    def patch(
        self, plural: str, namespace: str, name: str, patch: Any, *, patch_type: PatchType = "merge"
    ) -> dict[str, Any]:
        self._call(f"patch {plural}/{name}")
        stored = self._object(plural, namespace, name)
        if patch_type == "json":
            updated = copy.deepcopy(stored)
            for operation in patch:
                json_patch(updated, operation)
        else:
            expected = (patch.get("metadata") or {}).get("resourceVersion")
            if expected is not None and expected != stored["metadata"]["resourceVersion"]:
                raise ApiException(status=409, reason="Conflict")
            updated = apply_merge_patch(stored, patch)
        if updated.get("spec") != stored.get("spec"):
            updated["metadata"]["generation"] = stored["metadata"]["generation"] + 1
        updated["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[plural, namespace, name] = updated
        return copy.deepcopy(updated)

    def patch_status(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        self._call(f"status {sorted(patch['status'])}")
        stored = self._object(plural, namespace, name)
        stored["status"] = apply_merge_patch(stored.get("status"), patch["status"])
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(stored)

    def clear_outbox(
        self, plural: str, namespace: str, name: str, *, uid: str, through: int, remaining: Sequence[PendingEvent]
    ) -> None:
        del uid, through
        self.patch_status(plural, namespace, name, {"status": outbox_fields(remaining)})

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        code = self.refuse.get(event["reason"])
        if code is not None:
            self.journal.append(f"refused {event['reason']}")
            raise ApiException(status=code, reason="Refused")
        self._call(f"event {event['reason']}")
        created = copy.deepcopy(dict(event))
        meta = created["metadata"]
        name = meta.get("name") or f"{meta['generateName']}{next(self._generated)}"
        if name in self.events:
            raise ApiException(status=409, reason="AlreadyExists")
        assert meta["namespace"] == namespace
        self.events[name] = created

    def config_map_data(self, namespace: str, name: str) -> dict[str, str]:
        self._call(f"get configmaps/{name}")
        return dict(self._found(self.config_maps, namespace, name))

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        self._call(f"get secrets/{name}")
        return dict(self._found(self.secrets, namespace, name))

    # --- internals ------------------------------------------------------------------------------------------------

    def _call(self, what: str) -> None:
        if self.crash_at is not None and len(self.journal) == self.crash_at:
            raise Crash(what)
        self.journal.append(what)

    def _object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return self._found(self.objects, plural, namespace, name)

    @staticmethod
    def _found(table: Mapping[Any, Any], *key: str) -> Any:
        try:
            return table[key]
        except KeyError:
            raise ApiException(status=404, reason="Not Found") from None


def json_patch(document: dict[str, Any], operation: Mapping[str, Any]) -> None:
    """The ``add`` and ``replace`` operations of RFC 6902 on object members (what the engine sends)."""
    assert operation["op"] in ("add", "replace"), operation
    *parents, last = operation["path"].lstrip("/").split("/")
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = copy.deepcopy(operation["value"])
