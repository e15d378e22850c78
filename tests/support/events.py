"""The Events the API server holds about one object, in the order they were told.

Every kind tells its transitions through its status' outbox (``engine/writing.py``), each Event
numbered by the sequence annotation; Events about another object (a DriftMonitor's action told on its
target) carry no number and follow in creation order.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from modelrollout.engine.writing import SEQUENCE_ANNOTATION


def told(api: client.ApiClient, namespace: str, kind: str, name: str) -> list[tuple[str, str]]:
    """``(type, reason)`` of each Event about ``kind``/``name``, numbered ones by number, then the others."""
    listed = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind={kind},involvedObject.name={name}"
    )

    def order(event: Any) -> tuple[int, str]:
        number = (event.metadata.annotations or {}).get(SEQUENCE_ANNOTATION)
        created = event.metadata.creation_timestamp
        return (int(number) if number is not None else 1 << 30, created.isoformat() if created else "")

    return [(event.type, event.reason) for event in sorted(listed.items, key=order)]
