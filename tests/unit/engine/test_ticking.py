"""A failed tick becomes a reason and a message naming the object, and is retried on a short, capped back-off."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from modelrollout.api.modeldeployment import ModelDeploymentStatus
from modelrollout.config import Settings
from modelrollout.engine.context import RETRY_CAP_SECONDS, Context
from modelrollout.engine.ticking import Tick, describe
from modelrollout.metrics.fake import FakeMetricSource


def api_error(status: int, reason: str, message: str) -> client.ApiException:
    error = client.ApiException(status=status, reason=reason)
    error.body = json.dumps({"kind": "Status", "message": message})
    return error


def test_an_api_refusal_is_described_in_the_api_servers_own_words() -> None:
    message = 'Deployment.apps "m-0123456789" is invalid: spec.template.spec.containers[0].image: Required value'
    reason, text = describe(api_error(422, "Unprocessable Entity", message))
    assert reason == "Invalid"
    assert text == f"422 Unprocessable Entity: {message}"


def test_a_body_that_is_not_a_status_still_gives_the_status_line() -> None:
    error = client.ApiException(status=500, reason="Internal Server Error")
    error.body = "<html>"
    assert describe(error) == ("ApiError", "500 Internal Server Error")


def test_an_error_that_knows_its_reason_keeps_it() -> None:
    class RefusedError(Exception):
        condition_reason = "DerivedObjectInvalid"

    assert describe(RefusedError("creating Job x: 422")) == ("DerivedObjectInvalid", "creating Job x: 422")


def test_a_bug_is_an_internal_error_with_a_bounded_message() -> None:
    reason, text = describe(KeyError("x" * 5000))
    assert reason == "InternalError"
    assert text.startswith("KeyError: ")
    assert len(text) == 1000


def test_failures_back_off_from_one_second_doubling_to_the_cap_and_a_new_generation_retries_at_once() -> None:
    context = Context(settings=Settings(), metrics=FakeMetricSource())
    delays = [context.failed("k", "ns", "n", generation=1) for _ in range(8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, RETRY_CAP_SECONDS, RETRY_CAP_SECONDS, RETRY_CAP_SECONDS]
    assert context.backing_off("k", "ns", "n", generation=1)
    assert not context.backing_off("k", "ns", "n", generation=2)
    assert context.failed("k", "ns", "n", generation=2) == 1.0
    assert context.recovered("k", "ns", "n")
    assert not context.recovered("k", "ns", "n")
    assert not context.backing_off("k", "ns", "n", generation=2)


class RecordingTick(Tick):
    """A Tick whose condition writes are recorded instead of sent."""

    written: list[tuple[str, str]]

    def _set_reconciled(self, plural: str, model: type[Any], value: str, reason: str, message: str) -> None:
        self.written.append((value, reason))


def tick(context: Context, body: dict[str, Any] | None = None) -> RecordingTick:
    made = RecordingTick(
        context=context,
        api=client.ApiClient(),
        body=body or {"metadata": {"namespace": "ns", "name": "m", "generation": 1}},
        now=datetime.now(UTC),
    )
    made.written = []
    return made


def fail() -> None:
    raise api_error(422, "Unprocessable Entity", 'Deployment.apps "m-1" is invalid: spec.template: Required value')


def test_a_failing_tick_is_reported_backs_off_and_a_success_clears_it() -> None:
    context = Context(settings=Settings(), metrics=FakeMetricSource())
    first = tick(context)
    first.guarded("k", "things", ModelDeploymentStatus, fail)
    assert first.written == [("False", "Invalid")]
    calls: list[str] = []
    tick(context).guarded("k", "things", ModelDeploymentStatus, lambda: calls.append("ran"))
    assert calls == [], "the next try waits for the back-off"
    context._failures["k", "ns", "m"] = dataclasses.replace(context._failures["k", "ns", "m"], retry_at=0.0)
    recovered = tick(context)
    recovered.guarded("k", "things", ModelDeploymentStatus, lambda: calls.append("ran"))
    assert calls == ["ran"]
    assert recovered.written == [("True", "Reconciled")]


def test_a_failure_recorded_before_a_restart_is_cleared_by_the_first_success() -> None:
    body = {
        "metadata": {"namespace": "ns", "name": "m", "generation": 1},
        "status": {"conditions": [{"type": "Reconciled", "status": "False", "reason": "Invalid"}]},
    }
    fresh = tick(Context(settings=Settings(), metrics=FakeMetricSource()), body)
    fresh.guarded("k", "things", ModelDeploymentStatus, lambda: None)
    assert fresh.written == [("True", "Reconciled")]
    quiet = tick(Context(settings=Settings(), metrics=FakeMetricSource()))
    quiet.guarded("k", "things", ModelDeploymentStatus, lambda: None)
    assert quiet.written == [], "nothing to clear: no API call"
