"""Traffic routers: one small interface, one module per way of splitting traffic.

``router_for`` picks the router the spec names; the controller speaks ``TrafficSplit`` only.
"""

from modelrollout.routing.errors import RouterUnavailable, RoutingError, UnsupportedFeature
from modelrollout.routing.factory import router_for
from modelrollout.routing.observe import current_weights
from modelrollout.routing.router import TrafficRouter, require
from modelrollout.routing.split import Backend, Feature, HeaderRoute, TrafficSplit

__all__ = [
    "Backend",
    "Feature",
    "HeaderRoute",
    "RouterUnavailable",
    "RoutingError",
    "TrafficRouter",
    "TrafficSplit",
    "UnsupportedFeature",
    "current_weights",
    "require",
    "router_for",
]
