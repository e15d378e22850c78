"""A tick's writes: the versions they produce are remembered, and the outbox's clearing rides on the resource's next
status write, in this tick or a later one, or goes on its own once it has waited."""

from __future__ import annotations

from datetime import UTC, datetime

from modelrollout.api.events import PendingEvent
from modelrollout.api.status import ResourceStatus
from modelrollout.engine.freshness import WatchFreshness
from modelrollout.engine.tickwrites import HOLD_SECONDS, HeldClearings, TickWrites
from tests.support.kubernetes import InMemoryResources

A = ("stubs", "ns", "a")
BODY = {"metadata": {"namespace": "ns", "name": "a", "uid": "u1"}}
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def told(*sequences: int) -> list[PendingEvent]:
    return [PendingEvent(sequence=n, type="Normal", reason=f"E{n}", time=NOW) for n in sequences]


class World:
    def __init__(self) -> None:
        self.server = InMemoryResources()
        outbox = [p.model_dump(mode="json", by_alias=True) for p in told(1, 2)]
        self.server.add("stubs", {**BODY, "spec": {}, "status": {"pendingEvents": outbox}})
        self.freshness = WatchFreshness()
        self.clock = [100.0]
        self.clearings = HeldClearings(clock=lambda: self.clock[0])

    def tick(self) -> TickWrites:
        return TickWrites(self.server, self.freshness, self.clearings)

    def outbox(self) -> list[int]:
        return [p["sequence"] for p in self.server.stored(*A)["status"]["pendingEvents"]]


def test_writes_report_the_version_the_api_server_answered_with() -> None:
    world = World()
    tick = world.tick()
    written = tick.patch_status("stubs", "ns", "a", {"status": {"observedGeneration": 1}})
    world.freshness.delivered(A, written["metadata"]["resourceVersion"])
    assert world.freshness.trusted(A)
    patched = tick.patch("stubs", "ns", "a", {"metadata": {"annotations": {"x": "y"}}})
    assert not world.freshness.trusted(A)
    world.freshness.delivered(A, patched["metadata"]["resourceVersion"])
    assert world.freshness.trusted(A)
    assert world.server.journal == ["status ['observedGeneration']", "patch stubs/a"]


def test_the_clearing_rides_on_the_next_status_write_even_a_later_ticks() -> None:
    world = World()
    world.tick().clear_outbox("stubs", "ns", "a", uid="u1", through=2, remaining=[])
    assert world.server.journal == [], "held"

    world.tick().patch_status("stubs", "ns", "a", {"status": {"phase": "Progressing"}})
    assert world.server.journal == ["status ['pendingEvents', 'phase']"]
    assert world.outbox() == []

    world.tick().patch_status("stubs", "ns", "a", {"status": {"phase": "Healthy"}})
    assert world.server.journal[1:] == ["status ['phase']"], "sent once"


def test_a_newer_outbox_wins_over_a_held_clearing() -> None:
    world = World()
    tick = world.tick()
    tick.clear_outbox("stubs", "ns", "a", uid="u1", through=2, remaining=[])
    newer = [p.model_dump(mode="json", by_alias=True) for p in told(3)]
    tick.patch_status("stubs", "ns", "a", {"status": {"pendingEvents": newer, "eventsRecorded": 3}})
    assert world.outbox() == [3]


def test_a_tick_drops_the_events_it_knows_posted_from_the_outbox_it_reads() -> None:
    world = World()
    status = ResourceStatus(events_recorded=3, pending_events=told(1, 2, 3))
    assert world.tick().unposted("stubs", BODY, status) == status, "nothing known posted"

    world.tick().clear_outbox("stubs", "ns", "a", uid="u1", through=2, remaining=told(3))
    assert [p.sequence for p in world.tick().unposted("stubs", BODY, status).pending_events] == [3]

    recreated = {"metadata": {**BODY["metadata"], "uid": "u2"}}
    assert world.tick().unposted("stubs", recreated, status) == status, "another object under the same name"


def test_a_clearing_goes_on_its_own_only_once_it_has_waited() -> None:
    world = World()
    world.tick().clear_outbox("stubs", "ns", "a", uid="u1", through=2, remaining=[])
    world.tick().send_due("stubs", "ns", "a")
    assert world.server.journal == []
    assert world.clearings.due_in(A) == HOLD_SECONDS

    world.clock[0] += HOLD_SECONDS / 2
    world.tick().clear_outbox("stubs", "ns", "a", uid="u1", through=2, remaining=[])
    assert world.clearings.due_in(A) == HOLD_SECONDS / 2, "a later clearing waits no longer than the first"

    world.clock[0] += HOLD_SECONDS / 2
    world.tick().send_due("stubs", "ns", "a")
    world.tick().send_due("stubs", "ns", "a")
    assert world.server.journal == ["status ['pendingEvents']"]
    assert world.outbox() == []
    assert world.clearings.due_in(A) is None


def test_a_deleted_resource_or_one_another_replica_may_have_written_holds_nothing() -> None:
    world = World()
    world.tick().clear_outbox("stubs", "ns", "a", uid="u1", through=2, remaining=[])
    world.clearings.forget(A)
    assert world.clearings.due_in(A) is None

    world.tick().clear_outbox("stubs", "ns", "a", uid="u1", through=2, remaining=[])
    world.clearings.doubt(lambda namespace: namespace == "other")
    assert world.clearings.due_in(A) is not None
    world.clearings.doubt(lambda namespace: namespace == "ns")
    assert world.clearings.take(A) is None
