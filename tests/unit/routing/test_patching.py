"""Read-modify-write of custom objects: conflicts are retried, API errors become reasons or propagate."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from modelrollout.routing import Backend, RouterUnavailable, TrafficSplit
from modelrollout.routing.gatewayapi import GatewayAPIRouter
from modelrollout.routing.patching import CONFLICT_ATTEMPTS, CustomResource, unavailable_from, update_custom

REF = CustomResource("g", "v1", "things", "Thing", "ns", "t")
ROUTE_NOT_FOUND = {"kind": "Status", "reason": "NotFound", "details": {"name": "model", "kind": "httproutes"}}
TYPE_NOT_FOUND = {"kind": "Status", "reason": "NotFound", "message": "the server could not find the requested resource"}


def api_error(status: int, body: dict[str, Any] | str | None = None) -> ApiException:
    return ApiException(status=status, reason="x", body=json.dumps(body) if isinstance(body, dict) else body)


@dataclass
class FakeObjects:
    """CustomObjectsApi's get and patch over one stored object, with errors on demand."""

    stored: dict[str, Any]
    patch_errors: list[ApiException] = field(default_factory=list)
    get_error: ApiException | None = None
    patches: list[dict[str, Any]] = field(default_factory=list)

    def get_namespaced_custom_object(self, *_: str) -> dict[str, Any]:
        if self.get_error:
            raise self.get_error
        return self.stored

    def patch_namespaced_custom_object(self, *args: Any) -> None:
        self.patches.append(args[-1])
        if self.patch_errors:
            raise self.patch_errors.pop(0)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (api_error(404, ROUTE_NOT_FOUND), "RouteNotFound"),
        (api_error(404, TYPE_NOT_FOUND), "CRDNotInstalled"),
        (api_error(404, "404 page not found"), "CRDNotInstalled"),
        (api_error(403, {"message": "forbidden"}), "Forbidden"),
        (api_error(422, {"message": "too many rules"}), "RouteRejected"),
        (api_error(500), None),
        (api_error(409), None),
    ],
)
def test_api_errors_that_mean_unavailable(error: ApiException, reason: str | None) -> None:
    unavailable = unavailable_from(error, "HTTPRoute ns/model")
    assert (unavailable.reason if unavailable else None) == reason


def test_the_patch_carries_the_resource_version_it_was_computed_from() -> None:
    objects = FakeObjects({"metadata": {"resourceVersion": "41"}, "spec": {}})
    update_custom(objects, REF, lambda obj: {"spec": {"x": 1}})
    assert objects.patches == [{"spec": {"x": 1}, "metadata": {"resourceVersion": "41"}}]


def test_nothing_is_sent_when_nothing_differs() -> None:
    objects = FakeObjects({"metadata": {"resourceVersion": "41"}})
    update_custom(objects, REF, lambda obj: None)
    assert objects.patches == []


def test_a_conflict_is_retried_on_a_fresh_read() -> None:
    objects = FakeObjects({"metadata": {"resourceVersion": "41"}}, patch_errors=[api_error(409)])
    reads = []

    def desired(obj: dict[str, Any]) -> dict[str, Any]:
        reads.append(obj)
        return {"spec": {}}

    update_custom(objects, REF, desired)
    assert len(objects.patches) == 2
    assert len(reads) == 2


def test_endless_conflicts_propagate() -> None:
    objects = FakeObjects({"metadata": {"resourceVersion": "1"}}, patch_errors=[api_error(409)] * CONFLICT_ATTEMPTS)
    with pytest.raises(ApiException) as error:
        update_custom(objects, REF, lambda obj: {"spec": {}})
    assert error.value.status == 409
    assert len(objects.patches) == CONFLICT_ATTEMPTS


def test_other_errors_propagate_unchanged() -> None:
    objects = FakeObjects({}, get_error=api_error(500))
    with pytest.raises(ApiException):
        update_custom(objects, REF, lambda obj: None)


def test_a_missing_route_makes_the_router_unavailable() -> None:
    router = GatewayAPIRouter(FakeObjects({}, get_error=api_error(404, ROUTE_NOT_FOUND)), "ns", "model", 0, 80)
    for call in (router.check, router.observe, lambda: router.apply(TrafficSplit((Backend("a", "", 100),)))):
        with pytest.raises(RouterUnavailable) as error:
            call()
        assert error.value.reason == "RouteNotFound"
        assert "HTTPRoute ns/model" in error.value.message
