"""The one interface every traffic router implements, like Argo Rollouts' trafficrouting plug-ins."""

from __future__ import annotations

from typing import Protocol

from modelrollout.routing.errors import UnsupportedFeature
from modelrollout.routing.split import Feature, TrafficSplit


class TrafficRouter(Protocol):
    """Puts a ``TrafficSplit`` in force and reads back the one in force.

    Sync on purpose: the kubernetes client is sync and kopf runs sync handlers in threads.
    """

    name: str
    """The router kind as the spec names it: replicas, gatewayAPI or istio."""

    def supports(self, features: Feature) -> bool:
        """Whether every feature in ``features`` can be put in force."""
        ...

    def check(self) -> None:
        """Raise ``RouterUnavailable`` when the router's objects cannot be used."""
        ...

    def apply(self, split: TrafficSplit) -> None:
        """Put ``split`` in force, changing only what differs (a second call changes nothing)."""
        ...

    def observe(self) -> TrafficSplit | None:
        """The split in force, read from the cluster; None when no traffic is routed at all."""
        ...

    def realised(self, split: TrafficSplit) -> TrafficSplit:
        """What ``observe`` reports once ``apply(split)`` has taken effect.

        The same split for mesh routers; the replicas router can only realise weights its
        replica counts imply (5% of 4 replicas is 1 replica, which is 25%). Verification
        compares ``observe()`` with this, so it never waits for a weight that cannot exist.
        """
        ...


def require(router: TrafficRouter, split: TrafficSplit) -> None:
    """Refuse a split that needs features the router lacks, before anything changes."""
    missing = [f for f in Feature if f in split.features and not router.supports(f)]
    if missing:
        names = ", ".join(str(f.name).lower().replace("_", " ") for f in missing)
        raise UnsupportedFeature(f"the {router.name} router does not support {names}")
