"""Writing our own status and Events: the only state we keep is in the resource itself.

One writer for every kind: :func:`record` writes the decided status with the
decision's Events in its outbox, then posts them, then clears them, so what
was decided is durable before anyone is told about it, and each Event is told
exactly once across crashes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from kubernetes.client import ApiException

from modelrollout import GROUP, VERSION
from modelrollout.api.events import OUTBOX_LIMIT, PendingEvent
from modelrollout.api.status import ResourceStatus
from modelrollout.core.actions import ACTION_ANNOTATION, ACTION_ID_ANNOTATION
from modelrollout.core.decisions import Event
from modelrollout.engine.resources import Resources
from modelrollout.kube.client import is_status

SEQUENCE_ANNOTATION = f"{GROUP}/event-sequence"
"""On each Event from the outbox: its number among the resource's Events, so gaps and repeats can be told."""
MESSAGE_LIMIT = 1000
logger = logging.getLogger(__name__)

StatusT = TypeVar("StatusT", bound=ResourceStatus)


def record(
    resources: Resources,
    plural: str,
    body: Mapping[str, Any],
    before: StatusT,
    status: StatusT,
    *,
    events: Iterable[Event] = (),
    now: datetime,
) -> StatusT:
    """Status first, with the Events in its outbox; then the Events; then the outbox cleared (a tick's
    writes hold the clearing for the resource's next status write, ``engine/tickwrites.py``).

    ``before`` is what the resource holds now (fields that became unset are patched to null from it).
    A crash after the status write leaves the Events in status, and the next tick posts them under the
    same names (a repost is refused as AlreadyExists). Returns the status as it now stands.
    """
    recorded = enqueue_events(status, events, now)
    meta = body["metadata"]
    if recorded != before:
        write_status(resources, plural, meta["namespace"], meta["name"], recorded, previous=before)
    return post_outbox(resources, plural, body, recorded)


def write_status(
    resources: Resources, plural: str, namespace: str, name: str, status: ResourceStatus, *, previous: ResourceStatus
) -> None:
    """Patch the status subresource from ``previous`` (what the resource holds now) to ``status``.

    A JSON merge patch only removes a field when it says ``null`` for it, so a
    field that became unset (a finished step's start time, a delivered alert)
    is named from ``previous``.
    """
    new = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    old = previous.model_dump(mode="json", by_alias=True, exclude_none=True)
    patch = merge_patch(old, new)
    if patch:
        resources.patch_status(plural, namespace, name, {"status": patch})


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


def enqueue_events(status: StatusT, events: Iterable[Event], now: datetime) -> StatusT:
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
            PendingEvent(
                sequence=number, type=event.type, reason=event.reason, message=event.message[:MESSAGE_LIMIT], time=now
            )
        )
    if number == status.events_recorded:
        return status
    for dropped in pending[:-OUTBOX_LIMIT]:
        logger.warning("outbox full, Event %d dropped: %s %s", dropped.sequence, dropped.reason, dropped.message)
    return status.model_copy(update={"events_recorded": number, "pending_events": pending[-OUTBOX_LIMIT:]})


def event_name(name: str, uid: str, sequence: int) -> str:
    """The Event's name, the same every time it is posted: a second post is refused as AlreadyExists."""
    digest = hashlib.sha256(f"{uid}/{sequence}".encode()).hexdigest()[:16]
    return f"{name[:200]}.{digest}"


def post_outbox(resources: Resources, plural: str, body: Mapping[str, Any], status: StatusT) -> StatusT:
    """Post the outbox's Events, oldest first, then clear the posted ones from status; returns the status as
    it is meant to be (a tick's writes hold the clearing for the resource's next status write,
    ``engine/tickwrites.py``).

    Each is created under :func:`event_name`, so an Event posted before a crash and posted again after
    it is refused with 409 and counts as posted. An Event the API server cannot accept (422) is dropped;
    one that cannot be posted now (quota, an outage) stays for the next tick, and so do those after it,
    so Events keep their order.
    """
    if not status.pending_events:
        return status
    meta = body["metadata"]
    remaining = list(status.pending_events)
    while remaining:
        pending = remaining[0]
        try:
            resources.create_event(meta["namespace"], _event(body, pending))
        except ApiException as error:
            if error.status in (400, 422):
                logger.error("%s/%s: Event %s refused: %s", meta["namespace"], meta["name"], pending.reason, error.body)
            elif error.status != 409:  # 409: posted before a crash, and that is the point
                logger.warning("%s/%s: Events held in the outbox: %s", meta["namespace"], meta["name"], error.reason)
                break
        remaining.pop(0)
    if len(remaining) == len(status.pending_events):
        return status
    through = remaining[0].sequence - 1 if remaining else status.pending_events[-1].sequence
    resources.clear_outbox(
        plural, meta["namespace"], meta["name"], uid=str(meta.get("uid")), through=through, remaining=remaining
    )
    return status.model_copy(update={"pending_events": remaining})


def _event(body: Mapping[str, Any], pending: PendingEvent) -> dict[str, Any]:
    meta = body["metadata"]
    stamp = pending.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {
            "name": event_name(meta["name"], meta["uid"], pending.sequence),
            "namespace": meta["namespace"],
            "annotations": {SEQUENCE_ANNOTATION: str(pending.sequence)},
        },
        "involvedObject": _involved(body),
        "type": pending.type,
        "reason": pending.reason,
        "message": pending.message,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": "modelrollout"},
        "reportingComponent": "modelrollout",
    }


def post_event(resources: Resources, about: Mapping[str, Any], event: Event, now: datetime) -> None:
    """An Event on another object (a DriftMonitor's action, told on its target ModelDeployment).

    Not a transition of that object, so not in its outbox: posted once under a generated name, and a
    refusal is only logged (the acting resource's own status already records what was done).
    """
    meta = about["metadata"]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        resources.create_event(
            meta["namespace"],
            {
                "metadata": {"generateName": f"{meta['name'][:200]}.", "namespace": meta["namespace"]},
                "involvedObject": _involved(about),
                "type": event.type,
                "reason": event.reason,
                "message": event.message[:MESSAGE_LIMIT],
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "source": {"component": "modelrollout"},
                "reportingComponent": "modelrollout",
            },
        )
    except ApiException as error:
        logger.warning("%s/%s: Event %s not posted: %s", meta["namespace"], meta["name"], event.reason, error.reason)


def _involved(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion") or f"{GROUP}/{VERSION}",
        "kind": body.get("kind"),
        "name": meta["name"],
        "namespace": meta["namespace"],
        "uid": meta["uid"],
    }


def clear_action(resources: Resources, plural: str, namespace: str, name: str, action_id: str) -> None:
    """Remove a consumed action's annotations, unless a newer action replaced them meanwhile."""
    live = resources.get(plural, namespace, name)
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
        resources.patch(plural, namespace, name, patch)
    except ApiException as error:
        if not is_status(error, 409):
            raise
