"""Namespaces only one test's own operator watches, and what tests that kill it check of its Events.

Other sessions' test operators on the shared cluster watch ``mr-*``; a test that kills its operator
and counts what happens (Events, steps, takeovers) must not have another operator act in its place.
Its namespaces therefore take a prefix outside ``mr-*`` and its operator watches only that prefix.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes import client

from e2e.dataplane import GOLDEN_INPUTS
from e2e.harness.scenario import Namespace
from modelrollout.engine.writing import SEQUENCE_ANNOTATION


@contextmanager
def own_namespace(api: client.ApiClient, prefix: str) -> Iterator[Namespace]:
    """A fresh namespace ``<prefix><random>`` with the golden inputs the smoke tests read (the caller deletes
    it while its operator still runs: ``tests/integration/cleanup.py``)."""
    name = f"{prefix}{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(
        name, {"metadata": {"name": "golden"}, "data": {"golden.json": GOLDEN_INPUTS.read_text()}}
    )
    yield Namespace(api, name)


def events_by_number(ns: Namespace, name: str) -> dict[int, list[str]]:
    """The outbox's Events on one resource by their number (``engine/writing.py``), in the reasons found."""
    found: dict[int, list[str]] = {}
    for event in ns.events(name):
        number = (event.metadata.annotations or {}).get(SEQUENCE_ANNOTATION)
        if number is not None:
            found.setdefault(int(number), []).append(event.reason)
    return found


def exactly_once(ns: Namespace, name: str) -> dict[int, str]:
    """Every Event number status handed out has exactly one Event: none lost, none doubled."""
    recorded = int(ns.status(name).get("eventsRecorded") or 0)
    found = events_by_number(ns, name)
    lost = set(range(1, recorded + 1)) - set(found)
    assert not lost, f"{name}: Events lost: {sorted(lost)} of {recorded}"
    assert sorted(found) == list(range(1, recorded + 1)), f"{name}: unexpected numbers {sorted(found)}"
    doubled = {n: reasons for n, reasons in found.items() if len(reasons) != 1}
    assert not doubled, f"{name}: Events duplicated: {doubled}"
    return {n: reasons[0] for n, reasons in sorted(found.items())}
