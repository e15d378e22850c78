"""The istio router: the HTTP routes it computes from a stored VirtualService and a split."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrollout.routing import Backend, HeaderRoute, RouterUnavailable, TrafficSplit
from modelrollout.routing.istio import desired_routes, split_from_routes, virtual_service_patch

PREDICT = {"uri": {"prefix": "/predict"}}
RETRIES = {"attempts": 2, "perTryTimeout": "1s"}


def destination(host: str, weight: int) -> dict[str, Any]:
    return {"destination": {"host": host, "port": {"number": 80}}, "weight": weight}


def primary(*destinations: tuple[str, int], **extra: Any) -> dict[str, Any]:
    return {"name": "primary", "match": [PREDICT], "route": [destination(h, w) for h, w in destinations], **extra}


FALLBACK = {"name": "fallback", "route": [destination("static", 100)]}


def split(stable: int, canary: int, **extra: Any) -> TrafficSplit:
    return TrafficSplit((Backend("model-stable", "d1", stable), Backend("model-canary", "d2", canary)), **extra)


ARM_ROUTE = HeaderRoute("X-Modelrollout-Arm", "challenger", "model-canary")


def test_weights_change_on_the_named_route_only() -> None:
    routes = [FALLBACK, primary(("model-stable", 100), ("model-canary", 0), retries=RETRIES)]
    result = desired_routes(routes, "primary", split(90, 10), port=80)
    assert result == [FALLBACK, primary(("model-stable", 90), ("model-canary", 10), retries=RETRIES)]


def test_without_a_route_name_the_first_route_is_weighted() -> None:
    result = desired_routes([primary(("model-stable", 100)), FALLBACK], None, split(50, 50), 80)
    assert result[0]["route"] == [destination("model-stable", 50), destination("model-canary", 50)]
    assert result[1] == FALLBACK


def test_existing_destinations_keep_their_settings() -> None:
    subset = {"destination": {"host": "model-stable", "subset": "v1", "port": {"number": 9000}}, "weight": 100}
    result = desired_routes([{"route": [subset]}], None, split(75, 25), 80)
    assert result[0]["route"] == [{**subset, "weight": 75}, destination("model-canary", 25)]


def test_header_routes_come_first_and_behave_like_the_weighted_route() -> None:
    routes = [primary(("model-stable", 50), ("model-canary", 50), retries=RETRIES, timeout="3s")]
    result = desired_routes(routes, "primary", split(50, 50, header_routes=(ARM_ROUTE,)), 80)
    assert result[0] == {
        "name": "modelrollout-header-0",
        "match": [{**PREDICT, "headers": {"x-modelrollout-arm": {"exact": "challenger"}}}],
        "route": [{"destination": {"host": "model-canary", "port": {"number": 80}}, "weight": 100}],
        "retries": RETRIES,
        "timeout": "3s",
    }
    assert result[1]["name"] == "primary"


def test_mirror_is_the_mirror_field_at_100_percent() -> None:
    result = desired_routes([primary(("model-stable", 100))], None, split(100, 0, mirror="model-shadow"), 80)
    assert result[0]["mirror"] == {"host": "model-shadow", "port": {"number": 80}}
    assert result[0]["mirrorPercentage"] == {"value": 100.0}
    cleared = desired_routes(result, None, split(100, 0), 80)
    assert "mirror" not in cleared[0]
    assert "mirrorPercentage" not in cleared[0]


def test_route_name_is_looked_up_among_the_users_routes() -> None:
    with pytest.raises(RouterUnavailable) as error:
        desired_routes([FALLBACK], "primary", split(50, 50), 80)
    assert error.value.reason == "RouteNotFound"


@pytest.mark.parametrize(
    "wanted",
    [
        split(95, 5),
        split(100, 0, mirror="model-canary"),
        split(50, 50, header_routes=(ARM_ROUTE, HeaderRoute("x-modelrollout-arm", "champion", "model-stable"))),
    ],
)
def test_apply_is_idempotent_and_reads_back_what_it_wrote(wanted: TrafficSplit) -> None:
    vs = {"metadata": {"resourceVersion": "3"}, "spec": {"hosts": ["model"], "http": [primary(("model-stable", 100))]}}
    patch = virtual_service_patch(vs, "primary", wanted, 80)
    assert patch is not None
    assert set(patch["spec"]) == {"http"}
    applied = copy.deepcopy(vs)
    applied["spec"]["http"] = patch["spec"]["http"]
    assert virtual_service_patch(applied, "primary", wanted, 80) is None
    assert split_from_routes(applied["spec"]["http"], "primary") == wanted


def test_a_lone_destination_without_weight_takes_all_traffic() -> None:
    observed = split_from_routes([{"route": [{"destination": {"host": "model-stable"}}]}], None)
    assert observed is not None
    assert observed.weights == {"model-stable": 100}


@given(st.integers(min_value=0, max_value=100), st.booleans(), st.booleans())
def test_any_split_round_trips(canary: int, mirror: bool, sticky: bool) -> None:
    wanted = split(100 - canary, canary, mirror="shadow" if mirror else None, header_routes=(ARM_ROUTE,) * sticky)
    routes = desired_routes([FALLBACK, primary(("old", 100))], "primary", wanted, 80)
    assert split_from_routes(routes, "primary") == wanted
    assert desired_routes(routes, "primary", wanted, 80) == routes
