"""A failure becomes a reason and a message naming the object, retried on a short, capped back-off."""

from __future__ import annotations

import json

from kubernetes import client

from modelrollout.config import Settings
from modelrollout.engine.context import RETRY_CAP_SECONDS, Context
from modelrollout.engine.reconciler import describe
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
