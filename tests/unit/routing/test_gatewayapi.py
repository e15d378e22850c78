"""The gatewayAPI router: the rules it computes from a stored HTTPRoute and a split, and its reads."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrollout.routing import Backend, Feature, HeaderRoute, RouterUnavailable, TrafficSplit
from modelrollout.routing.gatewayapi import GatewayAPIRouter, desired_rules, route_patch, split_from_rules

PREDICT = {"path": {"type": "PathPrefix", "value": "/predict"}}
HEALTH_RULE = {
    "matches": [{"path": {"type": "Exact", "value": "/healthz"}}],
    "backendRefs": [{"group": "", "kind": "Service", "name": "health", "port": 80, "weight": 1}],
}
REWRITE = {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v1"}}}


def stored_route(*rules: dict[str, Any]) -> dict[str, Any]:
    """An HTTPRoute as the API server returns it: metadata, defaults filled in, parents untouched."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "model", "namespace": "ns", "resourceVersion": "7"},
        "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["model.example"], "rules": list(rules)},
    }


def weighted_rule(*refs: tuple[str, int], **extra: Any) -> dict[str, Any]:
    backend_refs = [{"group": "", "kind": "Service", "name": n, "port": 80, "weight": w} for n, w in refs]
    return {"matches": [PREDICT], "backendRefs": backend_refs, **extra}


def split(stable: int, canary: int, **extra: Any) -> TrafficSplit:
    return TrafficSplit((Backend("model-stable", "d1", stable), Backend("model-canary", "d2", canary)), **extra)


ARM_ROUTE = HeaderRoute("X-Modelrollout-Arm", "challenger", "model-canary")


def test_weights_change_and_nothing_else() -> None:
    rules = [HEALTH_RULE, weighted_rule(("model-stable", 100), ("model-canary", 0), filters=[REWRITE])]
    result = desired_rules(rules, 1, split(75, 25), port=80)
    assert result == [HEALTH_RULE, weighted_rule(("model-stable", 75), ("model-canary", 25), filters=[REWRITE])]
    assert rules[1]["backendRefs"][0]["weight"] == 100, "the input is not modified"


def test_new_backends_get_the_router_port_and_spelled_out_defaults() -> None:
    rules = [{"matches": [PREDICT], "backendRefs": [{"name": "model-stable", "port": 8080, "weight": 1}]}]
    result = desired_rules(rules, 0, split(90, 10), port=80)
    assert result[0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "model-stable", "port": 8080, "weight": 90},
        {"group": "", "kind": "Service", "name": "model-canary", "port": 80, "weight": 10},
    ]


def test_header_routes_become_named_rules_just_before_the_weighted_rule() -> None:
    rules = [HEALTH_RULE, weighted_rule(("model-stable", 50), ("model-canary", 50), filters=[REWRITE])]
    result = desired_rules(rules, 1, split(50, 50, header_routes=(ARM_ROUTE,)), port=80)
    assert result[0] == HEALTH_RULE
    assert result[1] == {
        "name": "modelrollout-header-0",
        "matches": [{**PREDICT, "headers": [{"type": "Exact", "name": "x-modelrollout-arm", "value": "challenger"}]}],
        "backendRefs": [{"group": "", "kind": "Service", "name": "model-canary", "port": 80, "weight": 1}],
        "filters": [REWRITE],
    }
    assert result[2]["backendRefs"][1]["weight"] == 50
    assert "name" not in result[2]


def test_mirror_is_a_request_mirror_filter_on_the_weighted_rule() -> None:
    rules = [weighted_rule(("model-stable", 100), ("model-canary", 0), filters=[REWRITE])]
    result = desired_rules(rules, 0, split(100, 0, mirror="model-shadow"), port=80)
    assert result[0]["filters"] == [
        REWRITE,
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"group": "", "kind": "Service", "name": "model-shadow", "port": 80}},
        },
    ]


def test_rule_index_counts_only_the_users_rules() -> None:
    with_headers = desired_rules(
        [HEALTH_RULE, weighted_rule(("model-stable", 100))], 1, split(50, 50, header_routes=(ARM_ROUTE,)), 80
    )
    assert len(with_headers) == 3
    without = desired_rules(with_headers, 1, split(80, 20), 80)
    assert without == [HEALTH_RULE, weighted_rule(("model-stable", 80), ("model-canary", 20))]


def test_removing_the_mirror_removes_the_filter_key() -> None:
    mirrored = desired_rules([weighted_rule(("model-stable", 100))], 0, split(100, 0, mirror="model-shadow"), 80)
    assert "filters" not in desired_rules(mirrored, 0, split(100, 0), 80)[0]


def test_a_rule_index_beyond_the_route_is_unavailable() -> None:
    with pytest.raises(RouterUnavailable) as error:
        desired_rules([HEALTH_RULE], 1, split(50, 50), 80)
    assert error.value.reason == "RuleNotFound"


SPLITS = [
    split(95, 5),
    split(100, 0, mirror="model-canary"),
    split(50, 50, header_routes=(ARM_ROUTE, HeaderRoute("x-modelrollout-arm", "champion", "model-stable"))),
]


@pytest.mark.parametrize("wanted", SPLITS)
def test_apply_is_idempotent_and_reads_back_what_it_wrote(wanted: TrafficSplit) -> None:
    route = stored_route(HEALTH_RULE, weighted_rule(("model-stable", 100)))
    patch = route_patch(route, 1, wanted, 80)
    assert patch is not None
    assert set(patch) == {"spec"}
    assert set(patch["spec"]) == {"rules"}
    applied = copy.deepcopy(route)
    applied["spec"]["rules"] = patch["spec"]["rules"]
    assert route_patch(applied, 1, wanted, 80) is None
    assert split_from_rules(applied["spec"]["rules"], 1) == wanted


def test_header_rules_extend_a_match_that_already_has_headers() -> None:
    tenant = {"type": "Exact", "name": "x-tenant", "value": "a"}
    rules = [{"matches": [{**PREDICT, "headers": [tenant]}], "backendRefs": [{"name": "model-stable", "weight": 1}]}]
    wanted = split(50, 50, header_routes=(ARM_ROUTE,))
    result = desired_rules(rules, 0, wanted, 80)
    assert result[0]["matches"][0]["headers"] == [
        tenant,
        {"type": "Exact", "name": "x-modelrollout-arm", "value": "challenger"},
    ]
    assert split_from_rules(result, 0) == wanted


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        ([{"name": "a"}, {"name": "b"}], {"a": 50, "b": 50}),  # weight defaults to 1
        ([{"name": "a", "weight": 3}, {"name": "b", "weight": 1}], {"a": 75, "b": 25}),
        ([{"name": "a", "weight": 0}], None),
        ([], None),
    ],
)
def test_observed_weights_are_normalised(refs: list[dict[str, Any]], expected: dict[str, int] | None) -> None:
    observed = split_from_rules([{"backendRefs": refs}], 0)
    assert (observed.weights if observed else None) == expected


@given(st.integers(min_value=0, max_value=100), st.booleans(), st.booleans())
def test_any_split_round_trips(canary: int, mirror: bool, sticky: bool) -> None:
    wanted = split(100 - canary, canary, mirror="shadow" if mirror else None, header_routes=(ARM_ROUTE,) * sticky)
    rules = desired_rules([HEALTH_RULE, weighted_rule(("old", 1))], 1, wanted, 80)
    assert split_from_rules(rules, 1) == wanted
    assert desired_rules(rules, 1, wanted, 80) == rules


def test_supports_mirror_and_header_routing() -> None:
    router = GatewayAPIRouter(None, "ns", "model", 0, 80)
    assert router.supports(Feature.MIRROR | Feature.HEADER_ROUTING)


def test_a_route_edited_into_nonsense_is_reported_not_misread() -> None:
    twice = [{"backendRefs": [{"name": "a", "weight": 1}, {"name": "a", "weight": 1}]}]
    with pytest.raises(RouterUnavailable) as error:
        split_from_rules(twice, 0)
    assert error.value.reason == "RouteModified"
