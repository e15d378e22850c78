"""From the spec's ``trafficRouting`` to a router: the only place that knows every router kind."""

from __future__ import annotations

from kubernetes.client import ApiClient, AppsV1Api, CustomObjectsApi

from modelrollout.api.common import TrafficRouting
from modelrollout.routing.gatewayapi import GatewayAPIRouter
from modelrollout.routing.istio import IstioRouter
from modelrollout.routing.replicas import KnownDeployment, ReplicasRouter
from modelrollout.routing.router import TrafficRouter


def router_for(
    routing: TrafficRouting,
    namespace: str,
    api: ApiClient,
    total_replicas: int,
    port: int,
    *,
    known_deployment: KnownDeployment | None = None,
) -> TrafficRouter:
    """The router ``routing`` asks for, for objects in ``namespace``.

    ``total_replicas`` sizes the replicas router's pool; ``port`` is the Service port new
    backend references use (existing references keep theirs). Routers are cheap: build one per
    reconciliation rather than caching them across spec changes. ``known_deployment`` answers the
    replicas router from a watch-fed cache instead of a GET.
    """
    match routing.router:
        case "replicas":
            return ReplicasRouter(AppsV1Api(api), namespace, total_replicas, known=known_deployment)
        case "gatewayAPI":
            if routing.gateway_api is None:
                raise ValueError("trafficRouting.gatewayAPI is required when router is gatewayAPI")
            settings = routing.gateway_api
            return GatewayAPIRouter(CustomObjectsApi(api), namespace, settings.http_route, settings.rule_index, port)
        case "istio":
            if routing.istio is None:
                raise ValueError("trafficRouting.istio is required when router is istio")
            return IstioRouter(
                CustomObjectsApi(api), namespace, routing.istio.virtual_service, routing.istio.route_name, port
            )
