"""A transition's Events are recorded in status with it, posted under fixed names, then cleared: exactly once.

The API server is faked in memory (status applied as a JSON merge patch, Events kept by name with
AlreadyExists on a second create), and a crash is an exception raised at the n-th call, after which
a restarted operator posts what the stored status still holds.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from modelrollout.api.driftmonitor import DriftMonitorStatus
from modelrollout.api.events import OUTBOX_LIMIT
from modelrollout.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
from modelrollout.config import Settings
from modelrollout.core import rollout
from modelrollout.engine import modeldeployments, preflight
from modelrollout.engine.context import Context
from modelrollout.engine.modeldeployments import Reconciliation
from modelrollout.engine.ticking import parse_status
from modelrollout.engine.writing import SEQUENCE_ANNOTATION, enqueue_events, event_name, post_outbox, write_told
from modelrollout.metrics.fake import FakeMetricSource

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
BODY = {
    "apiVersion": "modelrollout.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"namespace": "ns", "name": "returns", "uid": "0b7d-uid", "generation": 1},
}


class Crash(BaseException):
    """The operator dies here (a BaseException, so no handler of the code under test catches it)."""


def apply_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


class FakeServer:
    """The resource's stored status and the namespace's Events, with a journal of the calls in order."""

    def __init__(self, crash_at: int | None = None, refuse: dict[str, int] | None = None) -> None:
        self.status: dict[str, Any] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.journal: list[str] = []
        self.crash_at = crash_at
        self.refuse = refuse or {}
        """Event reason -> the HTTP status its creation is refused with."""

    def _call(self, what: str) -> None:
        if self.crash_at is not None and len(self.journal) == self.crash_at:
            raise Crash(what)
        self.journal.append(what)

    def patch_status(self, patch: dict[str, Any]) -> None:
        self._call(f"status {sorted(patch['status'])}")
        self.status = apply_merge_patch(self.status, patch["status"])

    def create_event(self, event: dict[str, Any]) -> None:
        name = event["metadata"]["name"]
        code = self.refuse.get(event["reason"])
        if code is not None:
            self.journal.append(f"refused {event['reason']}")
            raise client.ApiException(status=code, reason="Refused")
        self._call(f"event {event['reason']}")
        if name in self.events:
            raise client.ApiException(status=409, reason="AlreadyExists")
        self.events[name] = copy.deepcopy(event)

    def reasons(self) -> list[str]:
        ordered = sorted(self.events.values(), key=lambda e: int(e["metadata"]["annotations"][SEQUENCE_ANNOTATION]))
        return [e["reason"] for e in ordered]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    fake = FakeServer()

    class Objects:
        def __init__(self, api: object) -> None:
            del api

        def patch_namespaced_custom_object_status(self, *args: Any, **_: Any) -> None:
            fake.patch_status(args[5])

    class Core:
        def __init__(self, api: object) -> None:
            del api

        def create_namespaced_event(self, namespace: str, event: dict[str, Any]) -> None:
            assert namespace == "ns"
            fake.create_event(event)

    monkeypatch.setattr("modelrollout.engine.writing.client.CustomObjectsApi", Objects)
    monkeypatch.setattr("modelrollout.engine.writing.client.CoreV1Api", Core)
    return fake


def reconciliation() -> Reconciliation:
    return Reconciliation(
        context=Context(settings=Settings(), metrics=FakeMetricSource()),
        api=client.ApiClient(),
        body=copy.deepcopy(BODY),
        now=NOW,
    )


def transition(before: ModelDeploymentStatus) -> rollout.Decision:
    """A step change with two Events, as core.rollout.decide returns it."""
    return rollout.Decision(
        status=before.model_copy(update={"phase": "Progressing", "canary_weight": 25, "current_step_index": 0}),
        desired=rollout.Desired(None, 0, None, 0, 25, None),
        events=(
            rollout.Event("Normal", "SmokeTestPassed", "revision 2 passed its smoke tests"),
            rollout.Event("Normal", "StepStarted", "canary at 25% (step 1)"),
        ),
    )


def stored(server: FakeServer) -> ModelDeploymentStatus:
    return parse_status(ModelDeploymentStatus, server.status)


def test_status_with_its_events_is_written_first_then_the_events_then_the_outbox_is_cleared(
    server: FakeServer,
) -> None:
    after = reconciliation()._record(ModelDeploymentStatus(), transition(ModelDeploymentStatus()))

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


def test_the_events_are_named_by_the_resource_and_their_number_and_say_their_number(server: FakeServer) -> None:
    reconciliation()._record(ModelDeploymentStatus(), transition(ModelDeploymentStatus()))

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
    server: FakeServer, crash_at: int
) -> None:
    server.crash_at = crash_at
    with pytest.raises(Crash):
        reconciliation()._record(ModelDeploymentStatus(), transition(ModelDeploymentStatus()))
    server.crash_at = None

    # The restarted operator reads the status afresh and posts what its outbox holds first.
    status = post_outbox(client.ApiClient(), "modeldeployments", copy.deepcopy(BODY), stored(server))
    if crash_at == 0:  # died before the status write: nothing happened, and the transition is redone
        status = reconciliation()._record(status, transition(status))

    assert server.reasons() == ["SmokeTestPassed", "StepStarted"]
    assert stored(server).pending_events == []
    assert status == stored(server)


def test_posting_again_what_was_posted_is_a_no_op(server: FakeServer) -> None:
    recorded = enqueue_events(ModelDeploymentStatus(), transition(ModelDeploymentStatus()).events, NOW)
    post_outbox(client.ApiClient(), "modeldeployments", BODY, recorded)
    post_outbox(client.ApiClient(), "modeldeployments", BODY, recorded)  # as after a crash before the clear

    assert server.reasons() == ["SmokeTestPassed", "StepStarted"]
    assert server.journal.count("event StepStarted") == 2  # the second refused with 409, and counted as posted


def test_events_that_cannot_be_posted_now_wait_in_order_and_a_refused_one_is_dropped(server: FakeServer) -> None:
    recorded = enqueue_events(ModelDeploymentStatus(), transition(ModelDeploymentStatus()).events, NOW)
    server.refuse = {"StepStarted": 403}  # an exceeded Event quota, say
    held = post_outbox(client.ApiClient(), "modeldeployments", BODY, recorded)
    assert [p.reason for p in held.pending_events] == ["StepStarted"]
    assert server.reasons() == ["SmokeTestPassed"]

    server.refuse = {}
    assert post_outbox(client.ApiClient(), "modeldeployments", BODY, held).pending_events == []
    assert server.reasons() == ["SmokeTestPassed", "StepStarted"]

    invalid = enqueue_events(held, [rollout.Event("Warning", "Odd", "x")], NOW)
    server.refuse = {"Odd": 422}
    assert post_outbox(client.ApiClient(), "modeldeployments", BODY, invalid).pending_events == []


def test_the_outbox_is_bounded_and_keeps_the_newest() -> None:
    many = [rollout.Event("Normal", "StepStarted", f"step {n}") for n in range(OUTBOX_LIMIT + 5)]
    status = enqueue_events(ModelDeploymentStatus(), many, NOW)
    assert len(status.pending_events) == OUTBOX_LIMIT
    assert status.pending_events[0].sequence == 6
    assert status.events_recorded == OUTBOX_LIMIT + 5


def test_no_events_changes_nothing() -> None:
    status = ModelDeploymentStatus()
    assert enqueue_events(status, [], NOW) is status


def test_a_quiet_tick_is_not_quiet_while_events_wait(server: FakeServer) -> None:
    waiting = enqueue_events(
        ModelDeploymentStatus(phase="Healthy", observed_generation=1), transition(ModelDeploymentStatus()).events, NOW
    )
    tick = reconciliation()
    tick.context.synced(modeldeployments.KIND, "ns", "returns")
    assert tick._quiet({}, waiting.model_copy(update={"pending_events": []}))
    assert not tick._quiet({}, waiting)


def test_a_held_rollout_is_told_through_the_outbox_once(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    problem = preflight.Problem("QueryInvalid", "guardrail latency: parse error")
    monkeypatch.setattr(preflight, "check", lambda *_, **__: [problem])
    spec = ModelDeploymentSpec.model_validate(
        {"model": {"name": "m", "version": "1", "uri": "s3://m"}, "template": {"spec": {"containers": []}}}
    )
    tick = reconciliation()
    assert tick._preflight(spec, ModelDeploymentStatus()) is None
    assert tick._preflight(spec, stored(server)) is None  # held still, and told once

    assert server.reasons() == ["QueryInvalid"]
    assert server.journal[1:] == ["event QueryInvalid", "status ['pendingEvents']"]
    assert stored(server).pending_events == []


def test_a_condition_warning_goes_through_the_outbox_where_the_kind_keeps_one(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    posted_by_kopf: list[str] = []
    monkeypatch.setattr("modelrollout.engine.writing.kopf.event", lambda *_, **kw: posted_by_kopf.append(kw["reason"]))
    told = rollout.Event("Warning", "InvalidSpec", "spec.replicas: too many")

    write_told(
        client.ApiClient(),
        "modeldeployments",
        BODY,
        ModelDeploymentStatus(),
        previous=ModelDeploymentStatus(),
        event=told,
        now=NOW,
    )
    assert server.reasons() == ["InvalidSpec"]
    assert stored(server).events_recorded == 1

    write_told(
        client.ApiClient(),
        "driftmonitors",
        BODY,
        DriftMonitorStatus(),
        previous=DriftMonitorStatus(),
        event=told,
        now=NOW,
    )
    assert posted_by_kopf == ["InvalidSpec"], "a kind without an outbox: kopf posts it, as before"
