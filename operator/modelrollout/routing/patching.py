"""The few Kubernetes calls routers make, with the error mapping they share.

Kept apart from the routers so each router module is a pair of pure functions (desired object
from current object and split; split from object) plus a thin read-modify-write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from modelrollout.routing.errors import RouterUnavailable

CONFLICT_ATTEMPTS = 5
"""Read-modify-write attempts before a 409 Conflict propagates (someone else keeps editing)."""

Patch = dict[str, Any]


@dataclass(frozen=True)
class CustomResource:
    """Where a custom object lives, and how to name it in messages."""

    group: str
    version: str
    plural: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def unavailable_from(error: ApiException, what: str) -> RouterUnavailable | None:
    """The ``RouterUnavailable`` an API error means, or None when it means something else.

    A 422 means the changed object broke the resource's validation (too many rules, say), which
    retrying cannot fix. A 404 comes in two kinds: the object is missing (the Status names it in ``details.name``) or
    the resource type is (the CRD is not installed: no details, "the server could not find the
    requested resource").
    """
    if error.status == 403:
        return RouterUnavailable("Forbidden", f"the operator may not read or change {what}: {_message(error)}")
    if error.status == 422:
        return RouterUnavailable("RouteRejected", f"the API server rejected the change to {what}: {_message(error)}")
    if error.status != 404:
        return None
    details = _status_body(error).get("details") or {}
    if details.get("name"):
        return RouterUnavailable("RouteNotFound", f"{what} does not exist")
    return RouterUnavailable("CRDNotInstalled", f"the API server does not serve the resource type of {what}")


def read_custom(objects: CustomObjectsApi, ref: CustomResource) -> dict[str, Any]:
    """GET a custom object; a missing object or type becomes ``RouterUnavailable``."""
    try:
        obj = objects.get_namespaced_custom_object(ref.group, ref.version, ref.namespace, ref.plural, ref.name)
    except ApiException as error:
        raise unavailable_from(error, str(ref)) or error from error
    if not isinstance(obj, dict):
        raise TypeError(f"the API server returned {type(obj).__name__} for {ref}, not an object")
    return obj


def update_custom(
    objects: CustomObjectsApi, ref: CustomResource, desired_patch: Callable[[dict[str, Any]], Patch | None]
) -> None:
    """Read, compute a JSON merge patch from what was read, and send it guarded by resourceVersion.

    The patch carries the resourceVersion it was computed from, so the API server refuses it
    (409) when someone changed the object in between; then we read again and recompute rather
    than overwrite their change. No patch (None) means nothing differs: nothing is sent.
    """
    for attempt in range(CONFLICT_ATTEMPTS):
        current = read_custom(objects, ref)
        patch = desired_patch(current)
        if patch is None:
            return
        patch = {**patch, "metadata": {**patch.get("metadata", {}), "resourceVersion": _resource_version(current)}}
        try:
            objects.patch_namespaced_custom_object(ref.group, ref.version, ref.namespace, ref.plural, ref.name, patch)
        except ApiException as error:
            if error.status == 409 and attempt + 1 < CONFLICT_ATTEMPTS:
                continue
            raise unavailable_from(error, str(ref)) or error from error
        return


def _resource_version(obj: dict[str, Any]) -> str:
    version = obj.get("metadata", {}).get("resourceVersion")
    if not isinstance(version, str):
        raise ValueError("the API server returned an object without metadata.resourceVersion")
    return version


def _status_body(error: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(error.body or "")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(error: ApiException) -> str:
    message = _status_body(error).get("message")
    return str(message) if message else f"{error.status} {error.reason}"
