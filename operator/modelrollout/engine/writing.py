"""Writing our own status and Events: the only state we keep is in the resource itself."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

import kopf
from kubernetes import client

from modelrollout import GROUP, VERSION
from modelrollout.api.base import StatusModel
from modelrollout.api.events import OUTBOX_LIMIT, PendingEvent
from modelrollout.core.actions import ACTION_ANNOTATION, ACTION_ID_ANNOTATION

MERGE = "application/merge-patch+json"
SEQUENCE_ANNOTATION = f"{GROUP}/event-sequence"
"""On each Event from the outbox: its number among the resource's Events, so gaps and repeats can be told."""
logger = logging.getLogger(__name__)


class _Emitted(Protocol):
    """An Event a decision asks for (``core.rollout.Event`` has this shape)."""

    @property
    def type(self) -> Any: ...
    @property
    def reason(self) -> str: ...
    @property
    def message(self) -> str: ...


@runtime_checkable
class OutboxStatus(Protocol):
    """A status that keeps an Events outbox (``api/events.py``)."""

    @property
    def events_recorded(self) -> int: ...
    @property
    def pending_events(self) -> list[PendingEvent]: ...
    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any: ...


OutboxT = TypeVar("OutboxT", bound=OutboxStatus)


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


def enqueue_events(status: OutboxT, events: Iterable[_Emitted], now: datetime) -> OutboxT:
    """``status`` with ``events`` added to its outbox, numbered on from the last Event recorded.

    Written in the same status write as the transition, an Event is durable exactly when the transition
    is. The outbox keeps the newest ``OUTBOX_LIMIT``; older ones are dropped with a log line (only a long
    refusal to post fills it).
    """
    pending = list(status.pending_events)
    number = status.events_recorded
    for event in events:
        number += 1
        pending.append(
            PendingEvent(sequence=number, type=event.type, reason=event.reason, message=event.message[:1000], time=now)
        )
    if number == status.events_recorded:
        return status
    for dropped in pending[:-OUTBOX_LIMIT]:
        logger.warning("outbox full, Event %d dropped: %s %s", dropped.sequence, dropped.reason, dropped.message)
    updated: OutboxT = status.model_copy(update={"events_recorded": number, "pending_events": pending[-OUTBOX_LIMIT:]})
    return updated


def write_told(
    api: client.ApiClient,
    plural: str,
    body: dict[str, Any],
    status: StatusModel,
    *,
    previous: StatusModel,
    event: _Emitted,
    now: datetime,
) -> None:
    """Write ``status`` and tell ``event``: through the outbox when the kind keeps one, else posted by kopf."""
    meta = body["metadata"]
    if isinstance(status, OutboxStatus):
        recorded = enqueue_events(status, [event], now)
        write_status(api, plural, meta["namespace"], meta["name"], recorded, previous=previous)
        post_outbox(api, plural, body, recorded)
        return
    write_status(api, plural, meta["namespace"], meta["name"], status, previous=previous)
    post_event(body, event.type, event.reason, event.message)


def event_name(name: str, uid: str, sequence: int) -> str:
    """The Event's name, the same every time it is posted: a second post is refused as AlreadyExists."""
    digest = hashlib.sha256(f"{uid}/{sequence}".encode()).hexdigest()[:16]
    return f"{name[:200]}.{digest}"


def post_outbox(api: client.ApiClient, plural: str, body: dict[str, Any], status: OutboxT) -> OutboxT:
    """Post the outbox's Events, oldest first, then clear the posted ones from status; returns the status written.

    Each is created under :func:`event_name`, so an Event posted before a crash and posted again after
    it is refused with 409 and counts as posted. An Event the API server cannot accept (422) is dropped;
    one that cannot be posted now (quota, an outage) stays for the next tick, and so do those after it,
    so Events keep their order.
    """
    if not status.pending_events:
        return status
    meta = body["metadata"]
    events = client.CoreV1Api(api)
    remaining = list(status.pending_events)
    while remaining:
        pending = remaining[0]
        try:
            events.create_namespaced_event(meta["namespace"], _event(body, pending))
        except client.ApiException as error:
            if error.status in (400, 422):
                logger.error("%s/%s: Event %s refused: %s", meta["namespace"], meta["name"], pending.reason, error.body)
            elif error.status != 409:  # 409: posted before a crash, and that is the point
                logger.warning("%s/%s: Events held in the outbox: %s", meta["namespace"], meta["name"], error.reason)
                break
        remaining.pop(0)
    if len(remaining) == len(status.pending_events):
        return status
    cleared: OutboxT = status.model_copy(update={"pending_events": remaining})
    objects = client.CustomObjectsApi(api)
    patch = {"status": {"pendingEvents": [p.model_dump(mode="json", by_alias=True) for p in remaining]}}
    objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, meta["namespace"], plural, meta["name"], patch, _content_type=MERGE
    )
    return cleared


def _event(body: dict[str, Any], pending: PendingEvent) -> dict[str, Any]:
    meta = body["metadata"]
    stamp = pending.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {
            "name": event_name(meta["name"], meta["uid"], pending.sequence),
            "namespace": meta["namespace"],
            "annotations": {SEQUENCE_ANNOTATION: str(pending.sequence)},
        },
        "involvedObject": {
            "apiVersion": body.get("apiVersion") or f"{GROUP}/{VERSION}",
            "kind": body.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": pending.type,
        "reason": pending.reason,
        "message": pending.message,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": "modelrollout"},
        "reportingComponent": "modelrollout",
    }


def post_event(body: Any, type_: str, reason: str, message: str) -> None:
    """A Kubernetes Event on the resource (kopf posts it asynchronously, with its own retries).

    For Events that do not record a transition (a condition that says the same); a transition's Events
    go through the outbox (:func:`enqueue_events`, :func:`post_outbox`), which survives a crash.
    """
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
