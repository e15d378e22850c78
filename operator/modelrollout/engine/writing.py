"""Writing our own status and Events: the only state we keep is in the resource itself."""

from __future__ import annotations

from typing import Any

import kopf
from kubernetes import client

from modelrollout import GROUP, VERSION
from modelrollout.api.base import StatusModel
from modelrollout.core.actions import ACTION_ANNOTATION, ACTION_ID_ANNOTATION

MERGE = "application/merge-patch+json"


def write_status(
    api: client.ApiClient,
    plural: str,
    namespace: str,
    name: str,
    status: StatusModel,
    *,
    previous: StatusModel | None = None,
) -> None:
    """Patch the status subresource from ``previous`` (what the resource holds now) to ``status``.

    A JSON merge patch only removes a field when it says ``null`` for it, so a
    field that became unset (a finished step's start time) must be named: pass
    ``previous`` whenever a field can go from set to unset.
    """
    new = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    old = previous.model_dump(mode="json", by_alias=True, exclude_none=True) if previous is not None else {}
    patch = merge_patch(old, new)
    if not patch:
        return
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, plural, name, {"status": patch}, _content_type=MERGE
    )


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch that turns ``old`` into ``new`` (lists are replaced whole)."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif value != before:
            patch[key] = value
    return patch


def post_event(body: Any, type_: str, reason: str, message: str) -> None:
    """A Kubernetes Event on the resource (kopf posts it asynchronously, with its own retries)."""
    kopf.event(body, type=type_, reason=reason, message=message[:1000])


def clear_action(api: client.ApiClient, plural: str, namespace: str, name: str, action_id: str) -> None:
    """Remove a consumed action's annotations, unless a newer action replaced them meanwhile."""
    objects = client.CustomObjectsApi(api)
    live = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    annotations = live.get("metadata", {}).get("annotations") or {}
    if ACTION_ANNOTATION not in annotations:
        return
    if (annotations.get(ACTION_ID_ANNOTATION) or annotations.get(ACTION_ANNOTATION)) != action_id:
        return
    patch = {
        "metadata": {
            "resourceVersion": live["metadata"]["resourceVersion"],
            "annotations": {ACTION_ANNOTATION: None, ACTION_ID_ANNOTATION: None},
        }
    }
    try:
        objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, patch, _content_type=MERGE)
    except client.ApiException as error:
        if error.status != 409:
            raise
