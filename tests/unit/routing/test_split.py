"""TrafficSplit refuses splits no router could put in force, and compares by traffic only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrollout.routing import Backend, Feature, HeaderRoute, TrafficSplit
from modelrollout.routing.split import percentages


def two(stable: int, canary: int) -> tuple[Backend, ...]:
    return (Backend("stable", "d-stable", stable), Backend("canary", "d-canary", canary))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TrafficSplit(()), "at least one backend"),
        (lambda: TrafficSplit(two(90, 20)), "sum to 110"),
        (lambda: TrafficSplit((Backend("a", "", 50), Backend("a", "", 50))), "twice"),
        (lambda: Backend("a", "", 101), "outside 0..100"),
        (lambda: Backend("", "", 100), "needs a Service"),
        (lambda: TrafficSplit(two(50, 50), header_routes=(HeaderRoute("x-arm", "b", "other"),)), "not a backend"),
        (
            lambda: TrafficSplit(
                two(50, 50), header_routes=(HeaderRoute("x-arm", "b", "stable"), HeaderRoute("X-Arm", "b", "canary"))
            ),
            "same header value",
        ),
        (lambda: HeaderRoute("x-arm", "", "a"), "needs a header"),
    ],
)
def test_invalid_splits_are_refused(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_deployment_takes_no_part_in_equality() -> None:
    assert TrafficSplit(two(95, 5)) == TrafficSplit((Backend("stable", "", 95), Backend("canary", "", 5)))
    assert TrafficSplit(two(95, 5)) != TrafficSplit(two(90, 10))


def test_header_names_compare_case_insensitively() -> None:
    assert HeaderRoute("X-Modelrollout-Arm", "b", "s") == HeaderRoute("x-modelrollout-arm", "b", "s")


@pytest.mark.parametrize(
    ("split", "features"),
    [
        (TrafficSplit(two(50, 50)), Feature.NONE),
        (TrafficSplit(two(50, 50), mirror="shadow"), Feature.MIRROR),
        (TrafficSplit(two(50, 50), header_routes=(HeaderRoute("h", "v", "canary"),)), Feature.HEADER_ROUTING),
        (
            TrafficSplit(two(100, 0), mirror="canary", header_routes=(HeaderRoute("h", "v", "canary"),)),
            Feature.MIRROR | Feature.HEADER_ROUTING,
        ),
    ],
)
def test_features_a_split_needs(split: TrafficSplit, features: Feature) -> None:
    assert split.features == features


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([90, 10], [90, 10]),
        ([1, 1], [50, 50]),
        ([3, 1], [75, 25]),
        ([1, 1, 1], [34, 33, 33]),
        ([2, 1], [67, 33]),
        ([0, 5], [0, 100]),
        ([0, 0], None),
        ([], None),
    ],
)
def test_percentages(weights: list[int], expected: list[int] | None) -> None:
    assert percentages(weights) == expected


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=8).filter(any))
def test_percentages_sum_to_100_and_keep_order(weights: list[int]) -> None:
    shares = percentages(weights)
    assert shares is not None
    assert sum(shares) == 100
    for a, b in zip(weights, shares, strict=True):
        assert abs(b - 100 * a / sum(weights)) < 1
