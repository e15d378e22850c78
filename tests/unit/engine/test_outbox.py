"""A transition's Events are recorded in status with it, posted under fixed names, then cleared: exactly once.

The API server is the shared in-memory one (``tests/support/kubernetes.py``: status applied as a JSON
merge patch, Events kept by name with AlreadyExists on a second create), and a crash is an exception
raised at the n-th call, after which a restarted operator posts what the stored status still holds.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from kubernetes import client

from modelrollout.api.events import OUTBOX_LIMIT
from modelrollout.api.modeldeployment import PLURAL, ModelDeploymentSpec, ModelDeploymentStatus
from modelrollout.config import Settings
from modelrollout.core import rollout
from modelrollout.core.decisions import Event
from modelrollout.engine import modeldeployments, preflight
from modelrollout.engine.context import Context
from modelrollout.engine.modeldeployments import ModelDeployments, _Rollout
from modelrollout.engine.reconciler import Reconciler, Tick, parse_status
from modelrollout.engine.tickwrites import TickWrites
from modelrollout.engine.writing import SEQUENCE_ANNOTATION, enqueue_events, event_name, post_outbox, record
from modelrollout.metrics.fake import FakeMetricSource
from tests.support.kubernetes import Crash, InMemoryResources

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
BODY = {
    "apiVersion": "modelrollout.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"namespace": "ns", "name": "returns", "uid": "0b7d-uid", "generation": 1},
}


@pytest.fixture
def server() -> InMemoryResources:
    fake = InMemoryResources()
    fake.add("modeldeployments", BODY)
    return fake


def tick(server: InMemoryResources) -> Tick:
    context = Context(settings=Settings(), metrics=FakeMetricSource())
    return Tick(context, client.ApiClient(), server, copy.deepcopy(BODY), NOW)


def record_transition(server: InMemoryResources, before: ModelDeploymentStatus) -> ModelDeploymentStatus:
    decision = transition(before)
    return record(server, PLURAL, BODY, before, decision.status, events=decision.events, now=NOW)


def transition(before: ModelDeploymentStatus) -> rollout.Decision:
    """A step change with two Events, as core.rollout.decide returns it."""
    return rollout.Decision(
        status=before.model_copy(update={"phase": "Progressing", "canary_weight": 25, "current_step_index": 0}),
        desired=rollout.Desired(None, 0, None, 0, 25, None),
        events=(
            Event("Normal", "SmokeTestPassed", "revision 2 passed its smoke tests"),
            Event("Normal", "StepStarted", "canary at 25% (step 1)"),
        ),
    )


def stored(server: InMemoryResources) -> ModelDeploymentStatus:
    return parse_status(ModelDeploymentStatus, server.stored(PLURAL, "ns", "returns").get("status"))


def test_status_with_its_events_is_written_first_then_the_events_then_the_outbox_is_cleared(
    server: InMemoryResources,
) -> None:
    after = record_transition(server, ModelDeploymentStatus())

    assert server.journal == [
        "status ['canaryWeight', 'currentStepIndex', 'eventsRecorded', 'pendingEvents', 'phase']",
        "event SmokeTestPassed",
        "event StepStarted",
        "status ['pendingEvents']",
    ]
    assert server.reasons() == ["SmokeTestPassed", "StepStarted"]
    assert after == stored(server)
    assert after.events_recorded == 2
    assert after.pending_events == []


def test_the_events_are_named_by_the_resource_and_their_number_and_say_their_number(server: InMemoryResources) -> None:
    record_transition(server, ModelDeploymentStatus())

    names = sorted(server.events)
    assert names == sorted(event_name("returns", "0b7d-uid", n) for n in (1, 2))
    event = server.events[event_name("returns", "0b7d-uid", 2)]
    assert event["metadata"]["annotations"][SEQUENCE_ANNOTATION] == "2"
    assert event["involvedObject"] == {
        "apiVersion": "modelrollout.dev/v1alpha1",
        "kind": "ModelDeployment",
        "name": "returns",
        "namespace": "ns",
        "uid": "0b7d-uid",
    }
    assert event["lastTimestamp"] == "2026-11-30T08:00:00Z"
    # Another resource, or this name recreated (a new uid), never collides with these.
    assert event_name("returns", "another-uid", 2) not in server.events


@pytest.mark.parametrize("crash_at", range(4))  # the four calls of one transition
def test_a_crash_at_any_call_leaves_each_event_posted_exactly_once_after_the_restart(
    server: InMemoryResources, crash_at: int
) -> None:
    server.crash_at = crash_at
    with pytest.raises(Crash):
        record_transition(server, ModelDeploymentStatus())
    server.crash_at = None

    # The restarted operator reads the status afresh and posts what its outbox holds first.
    status = post_outbox(server, PLURAL, copy.deepcopy(BODY), stored(server))
    if crash_at == 0:  # died before the status write: nothing happened, and the transition is redone
        status = record_transition(server, status)

    assert server.reasons() == ["SmokeTestPassed", "StepStarted"]
    assert stored(server).pending_events == []
    assert status == stored(server)


def test_posting_again_what_was_posted_is_a_no_op(server: InMemoryResources) -> None:
    recorded = enqueue_events(ModelDeploymentStatus(), transition(ModelDeploymentStatus()).events, NOW)
    post_outbox(server, PLURAL, BODY, recorded)
    post_outbox(server, PLURAL, BODY, recorded)  # as after a crash before the clear

    assert server.reasons() == ["SmokeTestPassed", "StepStarted"]
    assert server.journal.count("event StepStarted") == 2  # the second refused with 409, and counted as posted


def test_events_that_cannot_be_posted_now_wait_in_order_and_a_refused_one_is_dropped(server: InMemoryResources) -> None:
    recorded = enqueue_events(ModelDeploymentStatus(), transition(ModelDeploymentStatus()).events, NOW)
    server.refuse = {"StepStarted": 403}  # an exceeded Event quota, say
    held = post_outbox(server, PLURAL, BODY, recorded)
    assert [p.reason for p in held.pending_events] == ["StepStarted"]
    assert server.reasons() == ["SmokeTestPassed"]

    server.refuse = {}
    assert post_outbox(server, PLURAL, BODY, held).pending_events == []
    assert server.reasons() == ["SmokeTestPassed", "StepStarted"]

    invalid = enqueue_events(held, [Event("Warning", "Odd", "x")], NOW)
    server.refuse = {"Odd": 422}
    assert post_outbox(server, PLURAL, BODY, invalid).pending_events == []


def test_the_outbox_is_bounded_and_keeps_the_newest() -> None:
    many = [Event("Normal", "StepStarted", f"step {n}") for n in range(OUTBOX_LIMIT + 5)]
    status = enqueue_events(ModelDeploymentStatus(), many, NOW)
    assert len(status.pending_events) == OUTBOX_LIMIT
    assert status.pending_events[0].sequence == 6
    assert status.events_recorded == OUTBOX_LIMIT + 5


def test_no_events_changes_nothing() -> None:
    status = ModelDeploymentStatus()
    assert enqueue_events(status, [], NOW) is status


def test_a_quiet_tick_is_not_quiet_while_events_wait(server: InMemoryResources) -> None:
    waiting = enqueue_events(
        ModelDeploymentStatus(phase="Healthy", observed_generation=1), transition(ModelDeploymentStatus()).events, NOW
    )
    context = Context(settings=Settings(), metrics=FakeMetricSource())
    context.synced(modeldeployments.KIND, "ns", "returns")
    loop = Reconciler(ModelDeployments(), context, api=client.ApiClient, resources=lambda _: server)

    def quiet(status: ModelDeploymentStatus) -> bool:
        body = {**BODY, "spec": {}, "status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
        writes = TickWrites(server, context.freshness, context.clearings)
        return loop._quiet(Tick(context, client.ApiClient(), writes, body, NOW), writes)

    assert quiet(waiting.model_copy(update={"pending_events": []}))
    assert not quiet(waiting)


def test_a_held_rollout_is_told_through_the_outbox_once(
    server: InMemoryResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = preflight.Problem("QueryInvalid", "guardrail latency: parse error")
    monkeypatch.setattr(preflight, "check", lambda *_, **__: [problem])
    spec = ModelDeploymentSpec.model_validate(
        {"model": {"name": "m", "version": "1", "uri": "s3://m"}, "template": {"spec": {"containers": []}}}
    )
    rollout_tick = _Rollout(tick(server))
    assert rollout_tick._preflight(spec, ModelDeploymentStatus()) is None
    assert rollout_tick._preflight(spec, stored(server)) is None  # held still, and told once

    assert server.reasons() == ["QueryInvalid"]
    assert server.journal[1:] == ["event QueryInvalid", "status ['pendingEvents']"]
    assert stored(server).pending_events == []
