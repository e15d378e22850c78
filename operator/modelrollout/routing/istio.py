"""Traffic split on an Istio VirtualService (networking.istio.io/v1).

The user owns the VirtualService. The operator owns, on the HTTP route named ``routeName``
(or the first route the user wrote), the ``route`` destinations and weights and the
``mirror``/``mirrorPercentage`` fields; and it owns the HTTP routes it adds for header routes,
named ``modelrollout-header-<n>``. Istio matches HTTP routes in order (first match wins), so those
go right before the weighted route; they copy its match conditions and add the header, and
copy its other settings (timeouts, retries, rewrites) so a sticky user is served the same way.
"""

from __future__ import annotations

import copy
from typing import Any

from kubernetes.client import CustomObjectsApi

from modelrollout.routing.errors import RouterUnavailable
from modelrollout.routing.patching import CustomResource, Patch, read_custom, update_custom
from modelrollout.routing.router import require
from modelrollout.routing.split import Backend, Feature, HeaderRoute, TrafficSplit, percentages, read_back

GROUP = "networking.istio.io"
VERSION = "v1"
PLURAL = "virtualservices"
OWNED_ROUTE_PREFIX = "modelrollout-"
MIRROR_FIELDS = ("mirror", "mirrorPercentage", "mirrorPercent", "mirrors")
"""Every way Istio spells mirroring; the operator owns all of them on the weighted route."""

HttpRoute = dict[str, Any]


def is_owned(route: HttpRoute) -> bool:
    """Whether the operator added this HTTP route (for a header route)."""
    return str(route.get("name", "")).startswith(OWNED_ROUTE_PREFIX)


def weighted_position(routes: list[HttpRoute], route_name: str | None) -> int:
    """The position of the HTTP route the operator manages the weights of."""
    for i, route in enumerate(routes):
        if not is_owned(route) and (route_name is None or route.get("name") == route_name):
            return i
    wanted = f"an HTTP route named {route_name}" if route_name else "any HTTP route"
    raise RouterUnavailable("RouteNotFound", f"the VirtualService has no {wanted}")


def desired_routes(routes: list[HttpRoute], route_name: str | None, split: TrafficSplit, port: int) -> list[HttpRoute]:
    """The VirtualService's HTTP routes with ``split`` in force; the input is not modified."""
    position = weighted_position(routes, route_name)
    weighted = {k: copy.deepcopy(v) for k, v in routes[position].items() if k not in MIRROR_FIELDS}
    weighted["route"] = [_destination(routes[position], b.service, port, b.weight) for b in split.backends]
    if split.mirror is not None:
        weighted["mirror"] = _mirror(routes[position], split.mirror, port)
        weighted["mirrorPercentage"] = {"value": 100.0}
    ports = {d["destination"]["host"]: d["destination"].get("port") for d in weighted["route"]}
    header_routes = [_header_route(weighted, n, r, ports[r.service]) for n, r in enumerate(split.header_routes)]
    result: list[HttpRoute] = []
    for i, route in enumerate(routes):
        if i == position:
            result.extend(header_routes)
            result.append(weighted)
        elif not is_owned(route):
            result.append(copy.deepcopy(route))
    return result


def split_from_routes(routes: list[HttpRoute], route_name: str | None) -> TrafficSplit | None:
    """The split the HTTP routes put in force; None when the weighted route sends traffic nowhere."""
    weighted = routes[weighted_position(routes, route_name)]
    destinations = weighted.get("route", [])
    # Istio: a lone destination without a weight takes all traffic.
    default_weight = 100 if len(destinations) == 1 else 0
    shares = percentages([int(d.get("weight", default_weight)) for d in destinations])
    if shares is None:
        return None
    mirror = weighted.get("mirror")
    return read_back(
        lambda: TrafficSplit(
            backends=tuple(Backend(d["destination"]["host"], "", s) for d, s in zip(destinations, shares, strict=True)),
            mirror=mirror["host"] if mirror else None,
            header_routes=tuple(_read_header_route(route, weighted) for route in routes if is_owned(route)),
        ),
        "the VirtualService's weighted HTTP route",
    )


def virtual_service_patch(vs: dict[str, Any], route_name: str | None, split: TrafficSplit, port: int) -> Patch | None:
    """The JSON merge patch that puts ``split`` in force, or None when it already is.

    Merge patch replaces lists whole, so ``spec.http`` is sent complete; routes the operator does
    not own go back exactly as they were read, and ``tcp``/``tls`` routes are not touched.
    """
    routes: list[HttpRoute] = vs.get("spec", {}).get("http", [])
    desired = desired_routes(routes, route_name, split, port)
    if desired == routes:
        return None
    return {"spec": {"http": desired}}


class IstioRouter:
    """Weights on one HTTP route of an existing VirtualService."""

    name = "istio"

    def __init__(
        self, objects: CustomObjectsApi, namespace: str, virtual_service: str, route_name: str | None, port: int
    ) -> None:
        self._objects = objects
        self._vs = CustomResource(GROUP, VERSION, PLURAL, "VirtualService", namespace, virtual_service)
        self._route_name = route_name
        self._port = port

    def supports(self, features: Feature) -> bool:
        return features in Feature.MIRROR | Feature.HEADER_ROUTING

    def check(self) -> None:
        vs = read_custom(self._objects, self._vs)
        weighted_position(vs.get("spec", {}).get("http", []), self._route_name)

    def apply(self, split: TrafficSplit) -> None:
        require(self, split)
        update_custom(
            self._objects, self._vs, lambda vs: virtual_service_patch(vs, self._route_name, split, self._port)
        )

    def observe(self) -> TrafficSplit | None:
        vs = read_custom(self._objects, self._vs)
        return split_from_routes(vs.get("spec", {}).get("http", []), self._route_name)

    def realised(self, split: TrafficSplit) -> TrafficSplit:
        return split


def _destination(route: HttpRoute, service: str, port: int, weight: int) -> dict[str, Any]:
    """The route's existing destination for ``service`` with the new weight (keeping port, subset, headers)."""
    for existing in route.get("route", []):
        if existing.get("destination", {}).get("host") == service:
            found: dict[str, Any] = {**copy.deepcopy(existing), "weight": weight}
            return found
    return {"destination": {"host": service, "port": {"number": port}}, "weight": weight}


def _mirror(route: HttpRoute, service: str, port: int) -> dict[str, Any]:
    existing = route.get("mirror")
    if existing and existing.get("host") == service:
        found: dict[str, Any] = copy.deepcopy(existing)
        return found
    return {"host": service, "port": {"number": port}}


def _header_route(weighted: HttpRoute, n: int, route: HeaderRoute, port: Any) -> HttpRoute:
    """An HTTP route sending ``route``'s requests to its Service, otherwise like the weighted route."""
    condition = {"exact": route.value}
    matches = [
        {
            **match,
            "headers": {
                **{k: v for k, v in match.get("headers", {}).items() if k != route.header},
                route.header: condition,
            },
        }
        for match in weighted.get("match") or [{}]
    ]
    destination: dict[str, Any] = {"host": route.service}
    if port is not None:
        destination["port"] = copy.deepcopy(port)
    header_route = {
        k: copy.deepcopy(v) for k, v in weighted.items() if k not in ("name", "match", "route", *MIRROR_FIELDS)
    }
    header_route.update(
        name=f"{OWNED_ROUTE_PREFIX}header-{n}", match=matches, route=[{"destination": destination, "weight": 100}]
    )
    return header_route


def _read_header_route(route: HttpRoute, weighted: HttpRoute) -> HeaderRoute:
    """Read a header route back: its header is the one condition the weighted route lacks."""
    base = set(((weighted.get("match") or [{}])[0]).get("headers", {}))
    first = (route.get("match") or [{}])[0]
    added = [(h, c) for h, c in first.get("headers", {}).items() if h not in base]
    destinations = route.get("route", [])
    if len(added) != 1 or "exact" not in added[0][1] or len(destinations) != 1:
        raise RouterUnavailable("RouteModified", f"HTTP route {route.get('name')} was changed by someone else")
    header, condition = added[0]
    return HeaderRoute(header, condition["exact"], destinations[0]["destination"]["host"])
