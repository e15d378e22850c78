"""List, then watch, one kind of object by label, as client-go's reflector does: the feed of a cache.

A reconciliation that LISTs what its resource owns costs the API server three LISTs a tick; one that
reads a watch-fed cache costs nothing. kopf's watches cannot feed such a cache: when a stream ends
kopf lists again but reports only the objects it finds, not the ones deleted in between, and it never
says when a list is complete. So the objects a ModelDeployment owns are listed and watched here, and
each list *replaces* what its :class:`Sink` holds, exactly as client-go's ``Replace`` does.

One informer is one thread: it lists (as JSON, not through the client's typed models, which cost
about fifteen times the CPU), then watches from the list's version with bookmarks until the API
server ends the stream after ``watch_seconds``, then watches on from the last version it saw. A
``410 Gone`` (the version was compacted away) or any failure lists again, after a back-off when
it failed. Each object loses its ``managedFields`` as it is read, before a list's pages are all in:
a list of a 10,000-object fleet's Services is held whole until the sink takes it, and that
bookkeeping is most of each object. (The store strips them too, for the writes it is told of; for
an object stripped here that is one dictionary lookup.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client

from modelrollout.kube.client import is_status
from modelrollout.kube.owned import without_managed_fields

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Waits before listing again after consecutive failures; the last repeats."""
PAGE = 500
"""Objects per page of a list, as client-go's reflector asks: a fleet's Services are not one huge answer."""
CONNECT_SECONDS = 10.0
GRACE_SECONDS = 60.0
"""How much longer than the server's own timeout the client waits for a watch's next line: a stream that
died silently is noticed then."""


class Sink(Protocol):
    """Where an informer's objects go."""

    def replaced(self, plural: str, namespace: str | None, items: list[Obj], version: str) -> None:
        """A list at ``version``: these are all the objects there are (in ``namespace``; None: in all)."""

    def changed(self, plural: str, event: str, obj: Obj) -> None:
        """A watch event: ``ADDED``, ``MODIFIED`` or ``DELETED``."""


@dataclass(frozen=True)
class WatchedKind:
    """One kind's list calls in the official client, across all namespaces and in one."""

    plural: str
    api: Callable[[client.ApiClient], Any]
    list_all: str
    list_namespaced: str


DEPLOYMENTS = WatchedKind(
    "deployments", client.AppsV1Api, "list_deployment_for_all_namespaces", "list_namespaced_deployment"
)
SERVICES = WatchedKind("services", client.CoreV1Api, "list_service_for_all_namespaces", "list_namespaced_service")
CONTROLLER_REVISIONS = WatchedKind(
    "controllerrevisions",
    client.AppsV1Api,
    "list_controller_revision_for_all_namespaces",
    "list_namespaced_controller_revision",
)
JOBS = WatchedKind("jobs", client.BatchV1Api, "list_job_for_all_namespaces", "list_namespaced_job")


class Informer:
    """Keeps a :class:`Sink` current with one kind's objects that carry ``label_selector``."""

    def __init__(
        self,
        api: client.ApiClient,
        kind: WatchedKind,
        sink: Sink,
        *,
        label_selector: str,
        watch_seconds: int,
        namespace: str | None = None,
    ) -> None:
        self.kind = kind
        self.namespace = namespace
        self._sink = sink
        self._selector = label_selector
        self._watch_seconds = watch_seconds
        api_object = kind.api(api)
        if namespace is None:
            self._call = getattr(api_object, kind.list_all)
        else:
            self._call = _bound_namespace(getattr(api_object, kind.list_namespaced), namespace)
        self._stopping = threading.Event()
        self._response: Any = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"informer-{kind.plural}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the watch now: its connection is closed under it, and the thread ends."""
        self._stopping.set()
        with self._lock:
            response = self._response
        if response is not None:
            _interrupt(response)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        failures = 0
        version: str | None = None
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                failures = 0
            except _GoneError:
                version = None
            except Exception:
                if self._stopping.is_set():
                    return
                wait = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
                failures += 1
                logger.exception("listing or watching %s failed; again in %.0f s", self.kind.plural, wait)
                version = None
                self._stopping.wait(wait)

    def _list(self) -> str:
        """Every object, a page at a time (one snapshot: the pages after the first continue the first's)."""
        items: list[Obj] = []
        token: str | None = None
        while True:
            paging = {"_continue": token} if token else {}
            response = self._call(label_selector=self._selector, limit=PAGE, _preload_content=False, **paging)
            listed = json.loads(response.data)
            items += [without_managed_fields(item) for item in listed.get("items") or []]
            token = listed["metadata"].get("continue")
            if not token:
                break
        version = str(listed["metadata"]["resourceVersion"])
        self._sink.replaced(self.kind.plural, self.namespace, items, version)
        return version

    def _watch(self, version: str) -> str:
        """Watch from ``version`` until the server ends the stream; returns the last version seen."""
        try:
            response = self._call(
                label_selector=self._selector,
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=self._watch_seconds,
                _preload_content=False,
                _request_timeout=(CONNECT_SECONDS, self._watch_seconds + GRACE_SECONDS),
            )
        except client.ApiException as error:
            if is_status(error, 410):  # refused at once rather than as the stream's first event
                raise _GoneError from None
            raise
        with self._lock:
            if self._stopping.is_set():  # stopped while this watch was being opened
                _interrupt(response)
                return version
            self._response = response
        try:
            for line in _lines(response):
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _GoneError
                    raise RuntimeError(f"watch of {self.kind.plural} failed: {obj.get('message')}")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._sink.changed(self.kind.plural, kind, without_managed_fields(obj))
        finally:
            with self._lock:
                self._response = None
            response.release_conn()
        return version


class _GoneError(Exception):
    """The version to watch from is no longer kept: list again."""


def _interrupt(response: Any) -> None:
    """Wake the thread blocked reading ``response`` and end it: closing alone does not wake a blocked read,
    shutting the socket down does (urllib3 2.3 and later)."""
    with contextlib.suppress(ValueError, RuntimeError, OSError, AttributeError):
        response.shutdown()
    response.close()


def _bound_namespace(call: Callable[..., Any], namespace: str) -> Callable[..., Any]:
    def listed(**options: Any) -> Any:
        return call(namespace, **options)

    return listed


def _lines(response: Any) -> Iterator[bytes]:
    """Whole lines of a chunked watch response; a chunk may end anywhere, even inside a character."""
    pending = b""
    for chunk in response.stream(64 * 1024, decode_content=False):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from (line for line in lines if line.strip())
    if pending.strip():
        yield pending
