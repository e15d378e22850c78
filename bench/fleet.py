"""A fleet of one kind of custom resource, 100 per namespace, grown, counted Healthy and deleted.

Shared by ``bench_scale.py``'s ModelDeployments and its peer's Argo Rollouts
(``peers/argo_fleet.py``): both report ``status.phase`` Healthy at rest.
"""

from __future__ import annotations

import contextlib
import json
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
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            changes = pool.map(lambda item: self.patch(item, self.version_patch(version)), items)
            self.abort(victim)
            aborted = time.monotonic()
            while not self.rolled_back(victim, canary) and time.monotonic() - aborted < 120:
                time.sleep(0.05)
            rolled_back = time.monotonic() - aborted
            list(changes)
        wanted = set(items)

        def canaries_created() -> bool:
            per_owner = self.workloads_by_owner()
            return all(per_owner.get(item, 0) >= 2 for item in wanted)

        wait_until("every changed item's canary", canaries_created, 600, every=0.5)
        return rolled_back, time.monotonic() - started

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

    def workloads_by_owner(self) -> dict[tuple[str, str], int]:
        """How many workloads (stable and canary) each item of the fleet has, in one metadata list."""
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


def metadata_list(api: client.ApiClient, path: str, selector: str) -> list[dict[str, Any]]:
    """The metadata of every object at ``path`` with label ``selector``, in one request: polling a burst must not
    load the API server the burst is measured on (full objects, a list per namespace, twice a second)."""
    method, url, headers, _, _ = api.param_serialize(
        "GET",
        path,
        query_params=[("labelSelector", selector)],
        header_params={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"},
        auth_settings=["BearerToken"],
    )
    answer = api.call_api(method, url, header_params=headers, _request_timeout=30)
    return [item["metadata"] for item in json.loads(answer.read())["items"]]
