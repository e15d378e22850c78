"""A tick's writes: the versions they produce are remembered, and the outbox's clearing rides on the next write."""

from __future__ import annotations

from modelrollout.engine.freshness import WatchFreshness
from modelrollout.engine.tickwrites import TickWrites
from tests.support.kubernetes import InMemoryResources

A = ("stubs", "ns", "a")
CLEARED = {"status": {"pendingEvents": []}}


def writes() -> tuple[InMemoryResources, WatchFreshness, TickWrites]:
    server = InMemoryResources()
    server.add("stubs", {"metadata": {"namespace": "ns", "name": "a"}, "spec": {}, "status": {"pendingEvents": []}})
    freshness = WatchFreshness()
    return server, freshness, TickWrites(server, freshness)


def test_writes_report_the_version_the_api_server_answered_with() -> None:
    server, freshness, tick = writes()
    written = tick.patch_status("stubs", "ns", "a", {"status": {"observedGeneration": 1}})
    freshness.delivered(A, written["metadata"]["resourceVersion"])
    assert freshness.trusted(A)
    patched = tick.patch("stubs", "ns", "a", {"metadata": {"annotations": {"x": "y"}}})
    assert not freshness.trusted(A)
    freshness.delivered(A, patched["metadata"]["resourceVersion"])
    assert freshness.trusted(A)
    assert server.journal == ["status ['observedGeneration']", "patch stubs/a"]


def test_the_outbox_clearing_rides_on_the_next_status_write_or_goes_at_the_end() -> None:
    server, _, tick = writes()
    assert tick.patch_status("stubs", "ns", "a", CLEARED) == {}, "held: nothing patched yet"
    tick.patch_status("stubs", "ns", "a", {"status": {"phase": "Progressing"}})
    assert server.journal == ["status ['pendingEvents', 'phase']"]

    tick.patch_status("stubs", "ns", "a", CLEARED)
    tick.flush()
    tick.flush()
    assert server.journal[1:] == ["status ['pendingEvents']"], "sent once, at the end"


def test_a_newer_outbox_wins_over_a_held_clearing_and_a_fresh_read_sees_the_outbox_as_meant() -> None:
    server, _, tick = writes()
    tick.patch_status("stubs", "ns", "a", CLEARED)
    newer = {"pendingEvents": [{"sequence": 2}], "eventsRecorded": 2}
    tick.patch_status("stubs", "ns", "a", {"status": newer})
    assert server.stored("stubs", "ns", "a")["status"]["pendingEvents"] == [{"sequence": 2}]

    tick.patch_status("stubs", "ns", "a", CLEARED)
    assert tick.get("stubs", "ns", "a")["status"]["pendingEvents"] == []
    tick.flush()
    assert server.journal[-2:] == ["status ['pendingEvents']", "get stubs/a"], "nothing left to send"
