"""The replicas router: the rounding of weights to replicas, and the scaling calls it makes."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from modelrollout.routing import Backend, Feature, HeaderRoute, RouterUnavailable, TrafficSplit, UnsupportedFeature
from modelrollout.routing.replicas import ReplicasRouter, deployment_patch, quantised, split_replicas


@pytest.mark.parametrize(
    ("total", "weight", "expected"),
    [
        (4, 0, (4, 0)),
        (4, 100, (0, 4)),
        (4, 5, (3, 1)),  # 0.2 replicas rounds up to the minimum of one
        (4, 25, (3, 1)),
        (4, 50, (2, 2)),
        (4, 99, (1, 3)),  # stable keeps one replica
        (10, 5, (9, 1)),  # 0.5 rounds half up
        (10, 15, (8, 2)),  # 1.5 rounds half up, not to even
        (10, 25, (7, 3)),  # 2.5 -> 3
        (1, 50, (1, 1)),  # one replica cannot be shared: the pool grows by one
        (1, 100, (0, 1)),
        (2, 99, (1, 1)),
    ],
)
def test_split_replicas(total: int, weight: int, expected: tuple[int, int]) -> None:
    assert split_replicas(total, weight) == expected


@given(st.integers(min_value=1, max_value=500), st.integers(min_value=0, max_value=100))
def test_split_replicas_properties(total: int, weight: int) -> None:
    stable, canary = split_replicas(total, weight)
    assert (canary > 0) == (weight > 0)
    assert (stable > 0) == (weight < 100)
    assert stable + canary == max(total, 2 if 0 < weight < 100 else 1)
    if total >= 2:
        assert abs(canary - total * weight / 100) < 1  # rounding, or the minimum of one replica


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=99))
def test_more_weight_never_means_fewer_canary_replicas(total: int, weight: int) -> None:
    assert split_replicas(total, weight)[1] <= split_replicas(total, weight + 1)[1]


def test_quantised_reports_the_weight_replicas_imply() -> None:
    split = TrafficSplit((Backend("stable", "model-1", 95), Backend("canary", "model-2", 5)))
    assert quantised(split, 4).weights == {"stable": 75, "canary": 25}
    assert quantised(split, 20).weights == {"stable": 95, "canary": 5}


@dataclass
class FakeApps:
    """AppsV1Api's two calls the router makes, over a dict of replica counts."""

    replicas: dict[str, int]
    patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    reads: int = 0

    def read_namespaced_deployment(self, name: str, namespace: str) -> Any:
        self.reads += 1
        if name not in self.replicas:
            raise ApiException(status=404, reason="Not Found")
        return SimpleNamespace(spec=SimpleNamespace(replicas=self.replicas[name]))

    def patch_namespaced_deployment(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> Any:
        self.patches.append((name, body))
        self.replicas[name] = body["spec"]["replicas"]
        return SimpleNamespace(spec=SimpleNamespace(replicas=self.replicas[name]))


def split(weight: int) -> TrafficSplit:
    return TrafficSplit((Backend("stable", "model-1", 100 - weight), Backend("canary", "model-2", weight)))


def test_apply_scales_up_before_down_and_only_what_differs() -> None:
    apps = FakeApps({"model-1": 4, "model-2": 0})
    router = ReplicasRouter(apps, "ns", 4)
    router.apply(split(50))
    assert apps.patches == [("model-2", deployment_patch(2)), ("model-1", deployment_patch(2))]
    apps.patches.clear()
    router.apply(split(50))
    assert apps.patches == []
    router.apply(split(0))
    assert apps.patches == [("model-1", deployment_patch(4)), ("model-2", deployment_patch(0))]


def test_observe_reads_the_replicas_back() -> None:
    apps = FakeApps({"model-1": 4, "model-2": 0})
    router = ReplicasRouter(apps, "ns", 4)
    assert router.observe() is None  # it cannot know the Deployments before an apply
    router.apply(split(5))
    assert router.observe() == router.realised(split(5))
    assert router.observe() == TrafficSplit((Backend("stable", "", 75), Backend("canary", "", 25)))
    apps.replicas["model-2"] = 3  # someone scaled by hand: observe shows it
    assert router.observe() == TrafficSplit((Backend("stable", "", 50), Backend("canary", "", 50)))


def test_the_first_observe_after_an_apply_answers_from_what_the_apply_read_and_wrote() -> None:
    apps = FakeApps({"model-1": 4, "model-2": 0})
    router = ReplicasRouter(apps, "ns", 4)
    router.apply(split(50))
    reads = apps.reads
    assert router.observe() == router.realised(split(50))
    assert apps.reads == reads, "the patches' answers are the replicas in force"
    router.apply(split(50))
    apps.replicas["model-1"] = 3  # a hand scale after the apply's read
    reads = apps.reads
    assert router.observe() == router.realised(split(50)), "a moment old: the apply's read"
    assert router.observe() == TrafficSplit((Backend("stable", "", 60), Backend("canary", "", 40)))
    assert apps.reads == reads + 2, "then it reads"


def test_missing_deployment_makes_the_router_unavailable() -> None:
    router = ReplicasRouter(FakeApps({"model-1": 1}), "ns", 4)
    with pytest.raises(RouterUnavailable) as error:
        router.apply(split(25))
    assert error.value.reason == "DeploymentNotFound"


@pytest.mark.parametrize(
    "wanted",
    [
        TrafficSplit(split(50).backends, mirror="shadow"),
        TrafficSplit(split(50).backends, header_routes=(HeaderRoute("x-arm", "b", "canary"),)),
        TrafficSplit((Backend("a", "a", 34), Backend("b", "b", 33), Backend("c", "c", 33))),
    ],
)
def test_unsupported_splits_are_refused_before_anything_changes(wanted: TrafficSplit) -> None:
    apps = FakeApps({"a": 1, "b": 1, "c": 1, "model-1": 1, "model-2": 1})
    router = ReplicasRouter(apps, "ns", 4)
    assert not router.supports(Feature.MIRROR)
    assert not router.supports(Feature.HEADER_ROUTING)
    with pytest.raises(UnsupportedFeature, match="replicas router"):
        router.apply(wanted)
    assert apps.patches == []


def test_the_refusal_names_what_is_missing() -> None:
    router = ReplicasRouter(FakeApps({}), "ns", 4)
    wanted = TrafficSplit(split(50).backends, mirror="shadow", header_routes=(HeaderRoute("x-arm", "b", "canary"),))
    with pytest.raises(UnsupportedFeature, match="replicas router does not support mirror, header routing"):
        router.apply(wanted)
