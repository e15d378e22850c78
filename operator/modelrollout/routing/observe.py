"""Reading traffic shares for things that play the data plane (the tests' load generator)."""

from __future__ import annotations

from modelrollout.routing.router import TrafficRouter


def current_weights(router: TrafficRouter) -> dict[str, float]:
    """Service -> share of traffic in [0, 1] as the router has it in force; empty when none is routed."""
    split = router.observe()
    if split is None:
        return {}
    return {backend.service: backend.weight / 100 for backend in split.backends}
