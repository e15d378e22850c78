"""What a traffic split is, independent of the router that puts it in force.

Routers translate a ``TrafficSplit`` to their own objects and read it back from them, so the
controller decides in these terms only and verifies a change by comparing two splits.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from modelrollout.routing.errors import RouterUnavailable


class Feature(enum.Flag):
    """What a split may ask for beyond weights; routers declare what they can do."""

    NONE = 0
    MIRROR = enum.auto()
    HEADER_ROUTING = enum.auto()


@dataclass(frozen=True)
class Backend:
    """One destination of traffic and its share in percent.

    ``deployment`` is bookkeeping for the replicas router, which scales it; mesh routers
    route to ``service`` only and cannot read the Deployment back, so it takes no part in
    equality: two splits are equal when they send the same traffic to the same Services.
    """

    service: str
    deployment: str = field(compare=False)
    weight: int

    def __post_init__(self) -> None:
        if not self.service:
            raise ValueError("a backend needs a Service name")
        if not 0 <= self.weight <= 100:
            raise ValueError(f"backend {self.service}: weight {self.weight} is outside 0..100")


@dataclass(frozen=True)
class HeaderRoute:
    """Requests carrying ``header: value`` go to ``service``, whatever the weights say.

    Experiments use it for consistent assignment: clients compute the arm from the user id and
    send it in a header. Header names are case-insensitive in HTTP and Istio only matches
    lowercase names, so the name is kept lowercase and desired and observed splits compare equal.
    """

    header: str
    value: str
    service: str

    def __post_init__(self) -> None:
        if not self.header or not self.value or not self.service:
            raise ValueError("a header route needs a header, a value and a Service")
        object.__setattr__(self, "header", self.header.lower())


@dataclass(frozen=True)
class TrafficSplit:
    """Weights over backends (summing to 100), plus optional header routes and a mirror.

    ``mirror`` names a Service that receives a copy of every request (shadow mode); its
    answers are discarded by the proxy, so it needs no weight and need not be a backend.
    """

    backends: tuple[Backend, ...]
    mirror: str | None = None
    header_routes: tuple[HeaderRoute, ...] = ()

    def __post_init__(self) -> None:
        if not self.backends:
            raise ValueError("a traffic split needs at least one backend")
        services = [b.service for b in self.backends]
        if len(set(services)) != len(services):
            raise ValueError(f"backends name a Service twice: {services}")
        total = sum(b.weight for b in self.backends)
        if total != 100:
            raise ValueError(f"backend weights sum to {total}, not 100: {self.weights}")
        for route in self.header_routes:
            if route.service not in services:
                raise ValueError(f"header route {route.header}={route.value} targets {route.service}, not a backend")
        keys = [(r.header, r.value) for r in self.header_routes]
        if len(set(keys)) != len(keys):
            raise ValueError("two header routes match the same header value")

    @property
    def weights(self) -> dict[str, int]:
        """Service -> percent, in backend order."""
        return {b.service: b.weight for b in self.backends}

    @property
    def features(self) -> Feature:
        """The features a router needs to put this split in force."""
        needed = Feature.NONE
        if self.mirror is not None:
            needed |= Feature.MIRROR
        if self.header_routes:
            needed |= Feature.HEADER_ROUTING
        return needed


def read_back(make: Callable[[], TrafficSplit], what: str) -> TrafficSplit:
    """Build an observed split; a route edited into something no split describes is unavailable."""
    try:
        return make()
    except ValueError as error:
        raise RouterUnavailable("RouteModified", f"{what} no longer describes a traffic split: {error}") from error


def percentages(weights: list[int]) -> list[int] | None:
    """Relative weights as integer percentages summing to 100, or None when all are zero.

    Proxies treat weights as relative (Gateway API) or read routes written by hand, so an
    observed route may say 1:1 or 3:1. Largest remainder keeps the sum at exactly 100 and
    gives leftover points to the largest fractions (ties to the earlier backend).
    """
    if any(w < 0 for w in weights):
        raise ValueError(f"negative weight in {weights}")
    total = sum(weights)
    if total == 0:
        return None
    exact = [Decimal(100 * w) / total for w in weights]
    floors = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (floors[i] - exact[i], i))
    for i in order[: 100 - sum(floors)]:
        floors[i] += 1
    return floors


def round_half_up(value: Decimal) -> int:
    """Round like people do (2.5 -> 3), not like banks (Python's round(2.5) is 2)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
