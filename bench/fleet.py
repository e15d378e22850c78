"""A fleet of one kind of custom resource, 100 per namespace, grown, counted Healthy and deleted.

Shared by ``bench_scale.py``'s ModelDeployments and its peer's Argo Rollouts
(``peers/argo_fleet.py``): both report ``status.phase`` Healthy at rest.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client

PER_NAMESPACE = 100


def wait_until(what: str, check: Callable[[], Any], timeout: float, every: float = 2.0) -> Any:
    """Poll ``check`` (the bench's own reads, outside the controller's flow) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Fleet:
    """``document(name)`` objects of ``group/version/plural``, named ``m<index>`` in ``<prefix>-<index // 100>``."""

    group: str
    version: str
    plural: str

    def __init__(self, api: client.ApiClient, prefix: str) -> None:
        self.api = api
        self.prefix = prefix
        self.names: list[tuple[str, str]] = []
        self.namespaces: list[str] = []
        self.objects = client.CustomObjectsApi(api)

    def document(self, name: str) -> dict[str, Any]:
        """The object to create, at version v1."""
        raise NotImplementedError

    def change(self, item: tuple[str, str], version: str) -> float:
        """Seconds from a new version being accepted to its canary workload existing (polled every 20 ms)."""
        before = self.workloads_of(item)
        self.patch(item, self.version_patch(version))
        accepted = time.monotonic()
        while not self.workloads_of(item) - before:
            if time.monotonic() - accepted > 120:
                return float("inf")
            time.sleep(0.02)
        return time.monotonic() - accepted

    def workloads_of(self, item: tuple[str, str]) -> set[str]:
        """The names of ``item``'s workloads (Deployments or ReplicaSets), read now."""
        raise NotImplementedError

    def burst(self, items: list[tuple[str, str]], victim: tuple[str, str]) -> tuple[float, float]:
        """Change every one of ``items`` at once and abort ``victim``'s canary (in traffic) meanwhile.

        Returns (seconds from the abort until the victim's canary is rolled back, seconds until every changed
        item has its canary workload).
        """
        version = f"v-{uuid.uuid4().hex[:6]}"
        canary = self.start_canary(victim, f"{version}-victim")
        with AddedWatch(self.api, self.workload_path, self.workload_selector, self.owner_of) as added:
            started = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                changes = pool.map(lambda item: self.patch(item, self.version_patch(version)), items)
                self.abort(victim)
                aborted = time.monotonic()
                while not self.rolled_back(victim, canary) and time.monotonic() - aborted < 120:
                    time.sleep(0.05)
                rolled_back = time.monotonic() - aborted
                list(changes)
            if not added.wait_for(set(items), 600):
                raise SystemExit("timed out after 600 s waiting for every changed item's canary")
            return rolled_back, added.last - started

    def version_patch(self, version: str) -> dict[str, Any]:
        """The patch that rolls ``version`` out."""
        raise NotImplementedError

    def start_canary(self, item: tuple[str, str], version: str) -> str:
        """Roll ``version`` out on ``item`` and wait for its canary to be in traffic; returns the canary's name."""
        raise NotImplementedError

    def abort(self, item: tuple[str, str]) -> None:
        raise NotImplementedError

    def rolled_back(self, item: tuple[str, str], canary: str) -> bool:
        raise NotImplementedError

    workload_path: str
    """Where the fleet's workloads are listed (``/apis/apps/v1/deployments``)."""
    workload_selector: str
    """A label every workload of the fleet carries."""

    def owner_of(self, meta: dict[str, Any]) -> tuple[str, str]:
        """The item (namespace, name) a workload belongs to, from its metadata."""
        raise NotImplementedError

    def grow(self, size: int) -> None:
        core = client.CoreV1Api(self.api)
        wanted = [(f"{self.prefix}-{index // PER_NAMESPACE}", f"m{index}") for index in range(len(self.names), size)]
        for namespace in sorted({ns for ns, _ in wanted} - set(self.namespaces)):
            core.create_namespace({"metadata": {"name": namespace}})
            self.namespaces.append(namespace)

        def create(item: tuple[str, str]) -> None:
            namespace, name = item
            self.objects.create_namespaced_custom_object(
                self.group, self.version, namespace, self.plural, self.document(name)
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, wanted))
        self.names.extend(wanted)

    def all_healthy(self, size: int) -> bool:
        return self.healthy() >= size

    def healthy(self) -> int:
        count = 0
        for namespace in self.namespaces:
            listed = self.objects.list_namespaced_custom_object(self.group, self.version, namespace, self.plural)
            count += sum((item.get("status") or {}).get("phase") == "Healthy" for item in listed["items"])
        return count

    def status(self, item: tuple[str, str]) -> dict[str, Any]:
        namespace, name = item
        found = self.objects.get_namespaced_custom_object(self.group, self.version, namespace, self.plural, name)
        return dict(found.get("status") or {})

    def patch(self, item: tuple[str, str], patch: dict[str, Any]) -> None:
        self.objects.patch_namespaced_custom_object(self.group, self.version, item[0], self.plural, item[1], patch)

    def delete(self) -> None:
        core = client.CoreV1Api(self.api)
        for namespace in self.namespaces:
            with contextlib.suppress(client.ApiException):
                core.delete_namespace(namespace)


class AddedWatch:
    """Which items got a new workload since it was opened: one watch of the workloads' metadata.

    Waiting for a burst's canaries this way costs the API server what the burst creates; polling cost it a list
    of every workload of the fleet (11,000 at 10,000) twice a second, on the server being measured. ``last``
    is when the newest of them was seen.
    """

    METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

    def __init__(
        self, api: client.ApiClient, path: str, selector: str, owner_of: Callable[[dict[str, Any]], tuple[str, str]]
    ) -> None:
        self._api, self._path, self._selector, self._owner_of = api, path, selector, owner_of
        self.added: set[tuple[str, str]] = set()
        self.last = time.monotonic()
        self._seen = threading.Condition()
        self._response: Any = None

    def __enter__(self) -> AddedWatch:
        listed = self._get([("labelSelector", self._selector), ("limit", "1")], self.METADATA_LIST, 30)
        version = json.loads(listed.read())["metadata"]["resourceVersion"]
        query = [("labelSelector", self._selector), ("watch", "true"), ("resourceVersion", version)]
        self._response = self._get([*query, ("timeoutSeconds", "900")], self.METADATA, 960).response
        threading.Thread(target=self._read, name="added-watch", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self._response.shutdown()
        self._response.close()

    def wait_for(self, wanted: set[tuple[str, str]], timeout: float) -> bool:
        with self._seen:
            return self._seen.wait_for(lambda: wanted <= self.added, timeout)

    def _read(self) -> None:
        pending = b""
        with contextlib.suppress(Exception):  # closed by __exit__
            for chunk in self._response.stream(64 * 1024, decode_content=False):
                *lines, pending = (pending + chunk).split(b"\n")
                events = [json.loads(line) for line in lines if line.strip()]
                with self._seen:
                    for event in events:
                        if event.get("type") == "ADDED":
                            self.added.add(self._owner_of(event["object"]["metadata"]))
                            self.last = time.monotonic()
                    self._seen.notify_all()

    def _get(self, query: list[tuple[str, str]], accept: str, timeout: float) -> Any:
        method, url, headers, _, _ = self._api.param_serialize(
            "GET", self._path, query_params=query, header_params={"Accept": accept}, auth_settings=["BearerToken"]
        )
        return self._api.call_api(method, url, header_params=headers, _request_timeout=timeout)
