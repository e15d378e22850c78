"""router_for builds the router the spec names; current_weights reads shares for a load generator."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient

from modelrollout.api.common import TrafficRouting
from modelrollout.routing import Backend, TrafficSplit, current_weights, router_for
from modelrollout.routing.gatewayapi import GatewayAPIRouter
from modelrollout.routing.istio import IstioRouter
from modelrollout.routing.replicas import ReplicasRouter


@pytest.mark.parametrize(
    ("routing", "kind"),
    [
        ({}, ReplicasRouter),
        ({"router": "gatewayAPI", "gatewayAPI": {"httpRoute": "model", "ruleIndex": 1}}, GatewayAPIRouter),
        ({"router": "istio", "istio": {"virtualService": "model"}}, IstioRouter),
    ],
)
def test_router_for_builds_the_named_router(routing: dict[str, object], kind: type) -> None:
    router = router_for(TrafficRouting.model_validate(routing), "ns", ApiClient(), total_replicas=4, port=80)
    assert isinstance(router, kind)
    assert router.name == TrafficRouting.model_validate(routing).router


class StubRouter:
    name = "stub"

    def __init__(self, split: TrafficSplit | None) -> None:
        self.split = split

    def observe(self) -> TrafficSplit | None:
        return self.split


def test_current_weights_are_fractions_of_traffic() -> None:
    split = TrafficSplit((Backend("stable", "", 75), Backend("canary", "", 25)))
    assert current_weights(StubRouter(split)) == {"stable": 0.75, "canary": 0.25}
    assert current_weights(StubRouter(None)) == {}
