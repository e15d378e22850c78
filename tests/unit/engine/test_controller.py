"""A kind's controller: watch events feed the store and the queue; after a tick, a wake-up only if needed.

The loop is the real one (a stub kind, the in-memory API server); worker threads are real, and the
tests wait on the ticks they count, never on the clock.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from pydantic import BaseModel

from modelrollout.api.status import ResourceStatus
from modelrollout.config import Settings
from modelrollout.core.decisions import Event
from modelrollout.engine.context import Context
from modelrollout.engine.controller import Controller
from modelrollout.engine.queue import Priority
from modelrollout.engine.reconciler import Reconciler, Tick
from modelrollout.engine.writing import enqueue_events
from modelrollout.metrics.fake import FakeMetricSource
from tests.support.kubernetes import InMemoryResources
from tests.support.waiting import wait_for

PLURAL = "stubs"
WAIT = 10.0
NOW = datetime(2026, 12, 1, tzinfo=UTC)


class StubSpec(BaseModel):
    replicas: int = 1


@dataclasses.dataclass
class Stub:
    """A kind that is at rest or active as the test says, and counts its reconciliations."""

    is_active: bool = False
    watched: bool = True
    writes: bool = False
    """Each tick writes the resource's status, as a tick that records a transition does."""
    ran: list[str] = dataclasses.field(default_factory=list)
    done: threading.Semaphore = dataclasses.field(default_factory=lambda: threading.Semaphore(0))
    name = "stub"
    plural = PLURAL
    spec_model = StubSpec
    status_model = ResourceStatus

    def at_rest(self, spec: Mapping[str, Any], status: ResourceStatus, now: datetime) -> bool:
        del spec, status, now
        return not self.is_active

    def active(self, spec: Mapping[str, Any], status: ResourceStatus) -> bool:
        del spec, status
        return self.is_active

    def resyncs(self, spec: Mapping[str, Any], status: ResourceStatus) -> bool:
        del spec, status
        return not self.watched

    def priority(self, body: Mapping[str, Any]) -> Priority:
        del body
        return Priority.NORMAL

    def reconcile(self, tick: Tick, spec: StubSpec, status: ResourceStatus) -> ResourceStatus:
        del spec
        self.ran.append(tick.name)
        if self.writes:
            tick.resources.patch_status(PLURAL, tick.namespace, tick.name, {"status": {"observedGeneration": 1}})
        return status


class CountingReconciler(Reconciler[StubSpec, ResourceStatus]):
    """The real loop, releasing a semaphore after each tick so the test can wait for it."""

    ticks: threading.Semaphore
    broken: bool = False
    """Raise out of the tick, as a bug past the loop's own guard would."""

    def tick(
        self, body: Mapping[str, Any], *, now: datetime | None = None, force: bool = False, fresh: bool = False
    ) -> Any:
        try:
            if self.broken:
                raise RuntimeError("a bug")
            return super().tick(body, now=now, force=force, fresh=fresh)
        finally:
            self.ticks.release()


@pytest.fixture
def world() -> Iterator[tuple[InMemoryResources, Stub, Controller, CountingReconciler]]:
    server = InMemoryResources()
    kind = Stub()
    context = Context(settings=Settings(tick_seconds=3600.0, resync_seconds=7200.0), metrics=FakeMetricSource())
    reconciler = CountingReconciler(kind, context, api=client.ApiClient, resources=lambda _: server)
    reconciler.ticks = threading.Semaphore(0)
    controller = Controller(reconciler, workers=2)
    controller.queue.start()
    try:
        yield server, kind, controller, reconciler
    finally:
        controller.queue.stop()


def settled(controller: Controller) -> None:
    """Until no key is being processed: a tick is over once its wake-up is scheduled, after the tick."""
    wait_for(lambda: not controller.queue._processing, WAIT, message="the worker to finish")


def resource(server: InMemoryResources, name: str, **status: Any) -> dict[str, Any]:
    body = {"kind": "Stub", "metadata": {"namespace": "ns", "name": name}, "spec": {}, "status": status}
    return server.add(PLURAL, body)


def test_a_new_resource_is_reconciled_and_one_at_rest_asks_for_no_wake_up(world: Any) -> None:
    server, kind, controller, reconciler = world
    controller.seen(resource(server, "a"))
    assert reconciler.ticks.acquire(timeout=WAIT)
    settled(controller)
    assert kind.ran == ["a"]
    assert controller.queue._due == {}, "at rest and watched: nothing scheduled"


@pytest.mark.parametrize(
    ("active", "watched"),
    [(True, True), (False, False)],
    ids=["active: looked at again a tick later", "at rest, not watched: re-verified after the resync period"],
)
def test_a_resource_asks_for_a_wake_up_when_time_or_no_watch_must_tell(world: Any, active: bool, watched: bool) -> None:
    server, kind, controller, reconciler = world
    kind.is_active, kind.watched = active, watched
    controller.seen(resource(server, "a"))
    assert reconciler.ticks.acquire(timeout=WAIT)
    settled(controller)
    assert set(controller.queue._due) == {("ns", "a")}


def test_a_resource_at_rest_with_a_held_clearing_asks_for_a_wake_up_behind_all_other_work(world: Any) -> None:
    server, _, controller, reconciler = world
    waiting = enqueue_events(ResourceStatus(), [Event("Normal", "Promoted", "v2")], NOW)
    controller.seen(resource(server, "a", **waiting.model_dump(mode="json", by_alias=True, exclude_none=True)))
    assert reconciler.ticks.acquire(timeout=WAIT)
    settled(controller)
    assert server.reasons() == ["Promoted"]
    (_, _, key, priority), *_ = controller.queue._delayed
    assert (key, priority) == (("ns", "a"), Priority.IDLE)


def test_an_active_resource_whose_tick_raised_still_asks_for_its_next_look(world: Any) -> None:
    server, kind, controller, reconciler = world
    kind.is_active, reconciler.broken = True, True
    controller.seen(resource(server, "a"))
    assert reconciler.ticks.acquire(timeout=WAIT)
    settled(controller)
    assert set(controller.queue._due) == {("ns", "a")}, "not left waiting for a watch event"


def test_a_change_to_what_it_owns_reconciles_a_quiet_resource_in_full(world: Any) -> None:
    server, kind, controller, reconciler = world
    body = resource(server, "a", observedGeneration=1)
    controller.reconciler.context.synced(kind.name, "ns", "a")
    controller.seen(body)
    assert reconciler.ticks.acquire(timeout=WAIT)
    assert kind.ran == [], "quiet: not reconciled"
    assert server.journal == [], "not even read"

    controller.poke("ns", "a")
    assert reconciler.ticks.acquire(timeout=WAIT)
    assert kind.ran == ["a"]
    assert server.journal == ["get stubs/a"]


def test_a_deleted_resource_is_forgotten_and_poking_it_does_nothing(world: Any) -> None:
    server, kind, controller, reconciler = world
    controller.seen(resource(server, "a"))
    assert reconciler.ticks.acquire(timeout=WAIT)
    controller.gone("ns", "a")
    controller.poke("ns", "a")
    assert len(controller) == 0
    assert len(controller.queue) == 0
    assert kind.ran == ["a"]


def test_the_store_drops_managed_fields(world: Any) -> None:
    server, _, controller, reconciler = world
    body = resource(server, "a")
    body["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    controller.seen(body)
    assert reconciler.ticks.acquire(timeout=WAIT)
    assert "managedFields" not in controller._store["ns", "a"]["metadata"]


def test_a_tick_reads_afresh_until_the_watch_has_delivered_our_own_last_write(world: Any) -> None:
    server, kind, controller, reconciler = world
    kind.writes = True
    controller.seen(resource(server, "a"))
    assert reconciler.ticks.acquire(timeout=WAIT)
    assert server.journal == ["get stubs/a", "status ['observedGeneration']"], "nothing written yet: read"

    controller.poke("ns", "a")
    assert reconciler.ticks.acquire(timeout=WAIT)
    assert server.journal[2:] == ["get stubs/a", "status ['observedGeneration']"], "our write not delivered: read"

    controller.seen(server.stored(PLURAL, "ns", "a"))  # the watch delivers it; at rest, so quiet
    assert reconciler.ticks.acquire(timeout=WAIT)
    controller.poke("ns", "a")
    assert reconciler.ticks.acquire(timeout=WAIT)
    assert server.journal[4:] == ["status ['observedGeneration']"], "the watch's copy holds our write: not read"

    controller.poke("ns", "a")
    assert reconciler.ticks.acquire(timeout=WAIT)
    assert server.journal[5:] == ["get stubs/a", "status ['observedGeneration']"], "a newer write not delivered"
