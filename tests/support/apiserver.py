"""An in-memory API server under the official client, for engine tests of what the typed clients do.

:mod:`tests.support.kubernetes` fakes the engine's own seam (custom objects, Events). A
ModelDeployment's tick does more: it lists what it owns, creates and replaces Deployments,
Services, ControllerRevisions and smoke Jobs, scales Deployments (the replicas router) and
rewrites an HTTPRoute (the Gateway API router), through ``AppsV1Api``, ``CoreV1Api``,
``BatchV1Api`` and ``CustomObjectsApi``. This server answers those clients at their REST layer
(:meth:`InMemoryApiServer.api_client`), so the engine, the converger and the routers run unchanged
and the test reads the journal of requests in order, as Argo Rollouts' controller tests read
their fake clientsets' actions.

What it does, it does as the API server: ``uid``, ``resourceVersion``, ``generation`` (bumped when
the spec changes), 404 and 409 with a ``Status`` body, the ``resourceVersion`` precondition of a
merge patch or a replace, the status subresource, equality label and field selectors. What it
does not: no defaulting, no validation, no watches, no garbage collection (deleting an owner
leaves what it owns), and strategic merge patches are applied as merge patches. Nothing runs pods:
:meth:`InMemoryApiServer.run_workloads` plays the kubelet and the Deployment and Job controllers.
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubernetes import client
from kubernetes.client import rest

from tests.support.kubernetes import apply_merge_patch, json_patch

Key = tuple[str, str, str, str]
"""An object's API group ("" for the core group), plural, namespace and name."""


@dataclass(frozen=True)
class Request:
    """One request, parsed from the client's URL."""

    method: str
    group: str
    plural: str
    namespace: str
    name: str | None
    subresource: str | None
    query: dict[str, str]

    @property
    def label(self) -> str:
        """How the journal names it: ``create deployments``, ``patch deployments/x/status``, ``list jobs``."""
        verb = {"GET": "get" if self.name else "list", "POST": "create", "PUT": "replace"}.get(
            self.method, self.method.lower()
        )
        target = "/".join(part for part in (self.plural, self.name, self.subresource) if part)
        return f"{verb} {target}"


class InMemoryApiServer:
    """Namespaced objects of any group in memory, served to the official client; a journal of requests."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.journal: list[str] = []
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)

    def api_client(self) -> client.ApiClient:
        """A client whose every request this server answers (no connection is opened)."""
        api = client.ApiClient(client.Configuration(host="http://in-memory"))
        api.rest_client.request = self._request
        return api

    # --- set-up and inspection ------------------------------------------------------------------------------------

    def add(self, group: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store ``body`` as created by someone else (a platform team's HTTPRoute, a ConfigMap); not journaled."""
        return copy.deepcopy(self._create((group, plural, body["metadata"]["namespace"]), body))

    def stored(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.objects[group, plural, namespace, name])

    def named(self, group: str, plural: str, namespace: str) -> list[str]:
        """Names of the stored objects of one kind in one namespace, sorted."""
        return sorted(k[3] for k in self.objects if k[:3] == (group, plural, namespace))

    def run_workloads(self, *, jobs_succeed: bool = True) -> None:
        """The kubelet and the built-in controllers in one step: every Deployment's replicas available,
        every Job finished (Complete, or Failed when ``jobs_succeed`` is false)."""
        for (group, plural, _, _), stored in self.objects.items():
            if (group, plural) == ("apps", "deployments"):
                replicas = int(stored["spec"].get("replicas", 1))
                stored["status"] = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
            elif (group, plural) == ("batch", "jobs") and not (stored.get("status") or {}).get("conditions"):
                outcome = "Complete" if jobs_succeed else "Failed"
                counts = {"succeeded": 1} if jobs_succeed else {"failed": 1}
                stored["status"] = {**counts, "conditions": [{"type": outcome, "status": "True"}]}
            else:
                continue
            stored["metadata"]["resourceVersion"] = self._version()

    # --- the REST layer -------------------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> rest.RESTResponse:
        del post_params, _request_timeout
        request = _parse(method, url)
        self.journal.append(request.label)
        content_type = (headers or {}).get("Content-Type", "application/json")
        try:
            status, answer = self._serve(request, body, content_type)
        except _AnswerError as refused:
            status, answer = refused.status, refused.body
        response = SimpleNamespace(
            status=status,
            reason="OK" if status < 300 else answer.get("reason", ""),
            data=json.dumps(answer).encode(),
            headers={"content-type": "application/json"},
        )
        return rest.RESTResponse(response)

    def _serve(self, request: Request, body: Any, content_type: str) -> tuple[int, dict[str, Any]]:
        collection = (request.group, request.plural, request.namespace)
        if request.name is None:
            if request.method == "GET":
                return 200, self._list(collection, request.query)
            if request.method == "POST":
                return 201, copy.deepcopy(self._create(collection, body))
            raise _AnswerError.method(request)
        key = (*collection, request.name)
        if request.method == "GET":
            return 200, copy.deepcopy(self._found(key, request))
        if request.method == "DELETE":
            self._found(key, request)
            del self.objects[key]
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        if request.method == "PUT":
            return 200, copy.deepcopy(self._replace(key, request, body))
        if request.method == "PATCH":
            return 200, copy.deepcopy(self._patch(key, request, body, content_type))
        raise _AnswerError.method(request)

    def _list(self, collection: tuple[str, str, str], query: dict[str, str]) -> dict[str, Any]:
        labels = _selector(query.get("labelSelector", ""))
        fields = _selector(query.get("fieldSelector", ""))
        items = [
            copy.deepcopy(stored)
            for key, stored in sorted(self.objects.items())
            if key[:3] == collection
            and all(stored["metadata"].get("labels", {}).get(k) == v for k, v in labels)
            and all(_field(stored, k) == v for k, v in fields)
        ]
        return {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": self._version()}, "items": items}

    def _create(self, collection: tuple[str, str, str], body: dict[str, Any]) -> dict[str, Any]:
        created = copy.deepcopy(body)
        meta = created.setdefault("metadata", {})
        if "name" not in meta:
            meta["name"] = f"{meta['generateName']}{next(self._uids)}"
        key = (*collection, meta["name"])
        if key in self.objects:
            raise _AnswerError(409, "AlreadyExists", f'{collection[1]} "{meta["name"]}" already exists', meta["name"])
        meta.update(
            namespace=collection[2],
            uid=f"uid-{next(self._uids)}",
            generation=1,
            resourceVersion=self._version(),
            creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        self.objects[key] = created
        return created

    def _replace(self, key: Key, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        stored = self._found(key, request)
        self._precondition(stored, body, request)
        replaced = copy.deepcopy(body)
        if request.subresource == "status":
            replaced = {**copy.deepcopy(stored), "status": replaced.get("status")}
        else:
            replaced["status"] = copy.deepcopy(stored.get("status"))
        return self._store(key, stored, replaced)

    def _patch(self, key: Key, request: Request, body: Any, content_type: str) -> dict[str, Any]:
        stored = self._found(key, request)
        if content_type == "application/json-patch+json":
            patched = copy.deepcopy(stored)
            for operation in body:
                json_patch(patched, operation)
        else:
            self._precondition(stored, body, request)
            patched = apply_merge_patch(stored, body)
        if request.subresource == "status":
            patched = {**copy.deepcopy(stored), "status": patched.get("status")}
        else:
            patched["status"] = copy.deepcopy(stored.get("status"))
        return self._store(key, stored, patched)

    def _store(self, key: Key, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        meta = after["metadata"]
        for kept in ("uid", "creationTimestamp", "namespace", "name"):
            meta[kept] = before["metadata"][kept]
        generation = int(before["metadata"].get("generation", 1))
        meta["generation"] = generation + 1 if after.get("spec") != before.get("spec") else generation
        meta["resourceVersion"] = self._version()
        self.objects[key] = after
        return after

    @staticmethod
    def _precondition(stored: dict[str, Any], body: Any, request: Request) -> None:
        expected = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        if expected is not None and expected != stored["metadata"]["resourceVersion"]:
            message = f"the object has been modified; please apply your changes to the latest version ({request.name})"
            raise _AnswerError(409, "Conflict", message, request.name)

    def _found(self, key: Key, request: Request) -> dict[str, Any]:
        try:
            return self.objects[key]
        except KeyError:
            raise _AnswerError(404, "NotFound", f'{request.plural} "{request.name}" not found', request.name) from None

    def _version(self) -> str:
        return str(next(self._versions))


class _AnswerError(Exception):
    """An answer other than 2xx, with the ``Status`` body the API server sends."""

    def __init__(self, status: int, reason: str, message: str, name: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": {"name": name} if name else {},
            "code": status,
        }

    @classmethod
    def method(cls, request: Request) -> _AnswerError:
        return cls(405, "MethodNotAllowed", f"{request.method} is not served on {request.label}", request.name)


def _parse(method: str, url: str) -> Request:
    """``/api/v1/namespaces/{ns}/{plural}[/{name}[/{sub}]]`` or ``/apis/{group}/{version}/namespaces/...``."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if segments[0] == "api":
        group, rest_of_path = "", segments[2:]
    else:
        group, rest_of_path = segments[1], segments[3:]
    if len(rest_of_path) < 3 or rest_of_path[0] != "namespaces":
        raise AssertionError(f"only namespaced objects are served here, not {parts.path}")
    namespace, plural, *named = rest_of_path[1:]
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return Request(
        method=method.upper(),
        group=group,
        plural=plural,
        namespace=namespace,
        name=named[0] if named else None,
        subresource=named[1] if len(named) > 1 else None,
        query=query,
    )


def _selector(text: str) -> list[tuple[str, str]]:
    """Equality terms (``k=v``, ``k==v``) of a label or field selector: what the operator sends."""
    terms = []
    for term in filter(None, text.split(",")):
        key, _, value = term.partition("=")
        terms.append((key, value.lstrip("=")))
    return terms


def _field(stored: dict[str, Any], path: str) -> Any:
    node: Any = stored
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
