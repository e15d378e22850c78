"""The one reconciliation loop, kind by kind the same: read afresh, Events first, parse, work, report.

A stub kind stands for the three real ones; the API server is the shared in-memory one, whose
journal shows every call in order.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
import pytest
from kubernetes import client
from pydantic import BaseModel, Field

from modelrollout.api.status import ResourceStatus
from modelrollout.config import Settings
from modelrollout.core.actions import ACTION_ANNOTATION
from modelrollout.core.decisions import Event
from modelrollout.engine.context import Context
from modelrollout.engine.queue import Priority
from modelrollout.engine.reconciler import NoDiffBaseStorage, Reconciler, Tick
from modelrollout.engine.tickwrites import HOLD_SECONDS, HeldClearings
from modelrollout.engine.writing import enqueue_events, record
from modelrollout.metrics.fake import FakeMetricSource
from tests.support.kubernetes import InMemoryResources

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
PLURAL = "stubs"


class StubSpec(BaseModel):
    replicas: int = Field(ge=0)


@dataclasses.dataclass
class Stub:
    """A kind whose work is whatever the test says; it records the ticks it was given."""

    work: Callable[[Tick, StubSpec, ResourceStatus], ResourceStatus] | None = None
    rest: bool = True
    ran: list[int] = dataclasses.field(default_factory=list)
    name = "stub"
    plural = PLURAL
    spec_model = StubSpec
    status_model = ResourceStatus

    def at_rest(self, spec: Mapping[str, Any], status: ResourceStatus, now: datetime) -> bool:
        del spec, status, now
        return self.rest

    def active(self, spec: Mapping[str, Any], status: ResourceStatus) -> bool:
        del spec, status
        return not self.rest

    def resyncs(self, spec: Mapping[str, Any], status: ResourceStatus) -> bool:
        del spec, status
        return True

    def priority(self, body: Mapping[str, Any]) -> Priority:
        del body
        return Priority.NORMAL

    def reconcile(self, tick: Tick, spec: StubSpec, status: ResourceStatus) -> ResourceStatus:
        self.ran.append(spec.replicas)
        return self.work(tick, spec, status) if self.work else status


def observe(tick: Tick, spec: StubSpec, status: ResourceStatus) -> ResourceStatus:
    """The kind's work: a new observed generation and an Event, recorded as every kind records."""
    del spec
    decided = status.model_copy(update={"observed_generation": tick.generation})
    told = (Event("Normal", "Observed", "seen"),)
    return record(tick.resources, PLURAL, tick.body, status, decided, events=told, now=tick.now)


def world(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> InMemoryResources:
    server = InMemoryResources()
    server.add(
        PLURAL,
        {
            "kind": "Stub",
            "metadata": {"namespace": "ns", "name": "s"},
            "spec": spec if spec is not None else {"replicas": 1},
            "status": status or {},
        },
    )
    return server


def loop(server: InMemoryResources, kind: Stub, context: Context | None = None) -> Reconciler[StubSpec, ResourceStatus]:
    context = context or Context(settings=Settings(), metrics=FakeMetricSource())
    return Reconciler(kind, context, api=client.ApiClient, resources=lambda _: server)


def tick(reconciler: Reconciler[StubSpec, ResourceStatus], server: InMemoryResources) -> ResourceStatus | None:
    """One tick from the object as a watch would have delivered it."""
    return reconciler.tick(server.stored(PLURAL, "ns", "s"), now=NOW)


def status_of(server: InMemoryResources) -> ResourceStatus:
    return ResourceStatus.model_validate(server.stored(PLURAL, "ns", "s").get("status") or {})


def condition(server: InMemoryResources, type_: str) -> tuple[str, str] | None:
    found = next((c for c in status_of(server).conditions if c.type == type_), None)
    return (found.status, found.reason) if found else None


def test_a_tick_reads_afresh_then_does_the_kinds_work_status_before_events() -> None:
    server, kind = world(), Stub(work=observe)
    returned = tick(loop(server, kind), server)

    assert kind.ran == [1]
    assert server.journal == [
        "get stubs/s",
        "status ['eventsRecorded', 'observedGeneration', 'pendingEvents']",
        "event Observed",
    ]
    assert returned == status_of(server).model_copy(update={"pending_events": []}), (
        "what the API server stored, with the outbox as it is meant to be: its clearing waits for the next write"
    )


def test_events_waiting_from_before_a_crash_go_out_before_anything_is_decided() -> None:
    waiting = enqueue_events(ResourceStatus(observed_generation=1), [Event("Normal", "Promoted", "v2")], NOW)
    server = world(status=waiting.model_dump(mode="json", by_alias=True, exclude_none=True))
    kind = Stub(work=observe)
    tick(loop(server, kind), server)

    assert server.journal == [
        "get stubs/s",
        "event Promoted",
        "status ['eventsRecorded', 'pendingEvents']",  # Promoted's clearing rides on the tick's next write
        "event Observed",
    ]
    assert server.reasons() == ["Promoted", "Observed"]
    assert [p.reason for p in status_of(server).pending_events] == ["Observed"], "posted; its clearing is held"


def test_a_clearing_no_write_picks_up_goes_on_its_own_once_it_has_waited() -> None:
    waiting = enqueue_events(ResourceStatus(observed_generation=1), [Event("Normal", "Promoted", "v2")], NOW)
    server = world(status=waiting.model_dump(mode="json", by_alias=True, exclude_none=True))
    clock = [100.0]
    clearings = HeldClearings(clock=lambda: clock[0])
    reconciler = loop(server, Stub(), Context(settings=Settings(), metrics=FakeMetricSource(), clearings=clearings))
    tick(reconciler, server)
    assert server.journal == ["get stubs/s", "event Promoted"]

    tick(reconciler, server)
    assert server.journal == ["get stubs/s", "event Promoted"], "quiet: the posted Event is neither news nor reposted"
    assert [p.reason for p in status_of(server).pending_events] == ["Promoted"]

    clock[0] += HOLD_SECONDS
    tick(reconciler, server)
    assert server.journal[2:] == ["status ['pendingEvents']"]
    assert status_of(server).pending_events == []
    tick(reconciler, server)
    assert server.journal[3:] == [], "sent once"


def test_a_resource_at_rest_costs_no_call_until_its_generation_an_action_or_a_resync() -> None:
    server, kind = world(status={"observedGeneration": 1}), Stub()
    context = Context(settings=Settings(), metrics=FakeMetricSource())
    context.synced(kind.name, "ns", "s")
    reconciler = loop(server, kind, context)

    assert tick(reconciler, server) is None
    assert server.journal == [], "at rest: not even a read"

    server.objects[PLURAL, "ns", "s"]["metadata"]["annotations"] = {ACTION_ANNOTATION: "promote"}
    tick(reconciler, server)
    assert server.journal == ["get stubs/s"], "an action is acted on at once"

    del server.objects[PLURAL, "ns", "s"]["metadata"]["annotations"]
    server.objects[PLURAL, "ns", "s"]["metadata"]["generation"] = 2
    tick(reconciler, server)
    assert kind.ran == [1, 1], "a new generation is acted on at once"

    kind.rest = False
    server.objects[PLURAL, "ns", "s"]["status"]["observedGeneration"] = 2
    tick(reconciler, server)
    assert kind.ran == [1, 1, 1], "the kind has something due"


def test_an_invalid_spec_is_told_once_changes_nothing_else_and_is_cleared_when_fixed() -> None:
    server, kind = world(spec={"replicas": -1}), Stub(work=observe)
    reconciler = loop(server, kind)
    tick(reconciler, server)

    assert kind.ran == [], "nothing is decided from a spec the rules reject"
    assert condition(server, "InvalidSpec") == ("True", "ValidationFailed")
    message = next(c.message for c in status_of(server).conditions if c.type == "InvalidSpec")
    assert message.startswith("replicas: Input should be greater than or equal to 0")
    assert server.journal[1:] == [
        "status ['conditions', 'eventsRecorded', 'observedGeneration', 'pendingEvents']",
        "event InvalidSpec",
    ]

    server.journal.clear()
    tick(reconciler, server)
    assert server.journal == [], "told once; and quiet, not even read, until the spec changes"

    server.patch(PLURAL, "ns", "s", {"spec": {"replicas": 2}})  # a new generation, as the API server counts
    tick(reconciler, server)
    assert condition(server, "InvalidSpec") == ("False", "Valid")
    assert kind.ran == [2]
    assert server.reasons() == ["InvalidSpec", "Observed"]


def refuse(tick: Tick, spec: StubSpec, status: ResourceStatus) -> ResourceStatus:
    del tick, spec, status
    error = client.ApiException(status=422, reason="Unprocessable Entity")
    error.body = '{"kind": "Status", "message": "Deployment.apps \\"s-1\\" is invalid: spec.template: Required value"}'
    raise error


def test_a_failing_tick_is_a_condition_and_a_warning_backs_off_and_a_success_clears_it() -> None:
    server, kind = world(), Stub(work=refuse)
    context = Context(settings=Settings(), metrics=FakeMetricSource())
    reconciler = loop(server, kind, context)

    assert tick(reconciler, server) is None
    assert condition(server, "Reconciled") == ("False", "Invalid")
    assert server.reasons() == ["Invalid"]

    server.journal.clear()
    tick(reconciler, server)
    assert server.journal == [], "the next try waits for the back-off"

    kind.work = observe
    context._failures[kind.name, "ns", "s"] = dataclasses.replace(context._failures[kind.name, "ns", "s"], retry_at=0.0)
    tick(reconciler, server)
    assert condition(server, "Reconciled") == ("True", "Reconciled")
    assert server.reasons() == ["Invalid", "Observed"], "a recovery is a condition, not an Event"


def test_a_failure_recorded_before_a_restart_is_cleared_by_the_first_success() -> None:
    failed = {
        "conditions": [
            {"type": "Reconciled", "status": "False", "reason": "Invalid", "lastTransitionTime": "2026-11-30T07:00:00Z"}
        ]
    }
    server = world(status=failed)
    tick(loop(server, Stub(work=observe)), server)
    assert condition(server, "Reconciled") == ("True", "Reconciled")

    untouched = world()
    tick(loop(untouched, Stub()), untouched)
    assert untouched.journal == ["get stubs/s"], "nothing to clear: no write"


def test_a_bug_in_a_kind_never_escapes_the_tick() -> None:
    def broken(tick: Tick, spec: StubSpec, status: ResourceStatus) -> ResourceStatus:
        raise KeyError("template")

    server = world()
    assert tick(loop(server, Stub(work=broken)), server) is None
    assert condition(server, "Reconciled") == ("False", "InternalError")


@pytest.mark.parametrize("gone_at", ["get", "work"])
def test_a_resource_deleted_meanwhile_ends_the_tick_quietly(gone_at: str) -> None:
    server = world()

    def vanish(tick: Tick, spec: StubSpec, status: ResourceStatus) -> ResourceStatus:
        del server.objects[PLURAL, "ns", "s"]
        return observe(tick, spec, status)

    body = copy.deepcopy(server.stored(PLURAL, "ns", "s"))
    if gone_at == "get":
        del server.objects[PLURAL, "ns", "s"]
    reconciler = loop(server, Stub(work=vanish))
    assert reconciler.tick(body, now=NOW) is None
    assert not server.events


def test_kopf_sees_no_change_in_any_event_and_copies_nothing() -> None:
    """kopf's change detection compares the stored essence with the current one on every watch event: both are
    the same empty one, so no event is a change to kopf, and none costs a copy of the body."""
    storage = NoDiffBaseStorage()
    body = kopf.Body({"metadata": {"name": "m", "annotations": {"a": "b"}}, "spec": {"replicas": 3}})
    old, new = storage.fetch(body=body), storage.build(body=body, extra_fields=["status.phase"])
    assert old == new == {}
