"""Each router against the real local control plane: apply, read back, apply again, fail clearly.

The API server validates what the gatewayAPI router writes against the real Gateway API schema
(v1.6), so a rule name, header match or mirror filter it does not accept fails here. The Istio
CRD is a stand-in that stores anything: for istio this proves the read-modify-write cycle, not
Istio's validation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from modelrollout.api.common import TrafficRouting
from modelrollout.routing import (
    Backend,
    HeaderRoute,
    RouterUnavailable,
    TrafficRouter,
    TrafficSplit,
    current_weights,
    router_for,
)
from modelrollout.routing.patching import CustomResource, read_custom
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")
ISTIO = ("networking.istio.io", "v1", "virtualservices")


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"it-routing-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def canary(weight: int, **extra: Any) -> TrafficSplit:
    backends = (Backend("model-stable", "model-1", 100 - weight), Backend("model-canary", "model-2", weight))
    return TrafficSplit(backends, **extra)


STICKY = (
    HeaderRoute("x-modelrollout-arm", "challenger", "model-canary"),
    HeaderRoute("x-modelrollout-arm", "champion", "model-stable"),
)


def resource_version(api: client.ApiClient, kind: tuple[str, str, str], namespace: str) -> str:
    stored = client.CustomObjectsApi(api).get_namespaced_custom_object(*kind[:2], namespace, kind[2], "model")
    return str(stored["metadata"]["resourceVersion"])


def apply_and_verify(router: TrafficRouter, split: TrafficSplit) -> None:
    router.apply(split)
    assert router.observe() == router.realised(split)


# --- gatewayAPI ---------------------------------------------------------------------------------

HEALTH_RULE = {
    "matches": [{"path": {"type": "Exact", "value": "/healthz"}}],
    "backendRefs": [{"name": "model-stable", "port": 80}],
}


@pytest.fixture
def http_route(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    body = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "model"},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "hostnames": ["model.example"],
            "rules": [
                HEALTH_RULE,
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/predict"}}],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"set": [{"name": "x-via", "value": "gw"}]},
                        }
                    ],
                    "backendRefs": [{"name": "model-stable", "port": 80}],
                },
            ],
        },
    }
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        *GATEWAY[:2], namespace, GATEWAY[2], body
    )
    return created


def gateway_router(api: client.ApiClient, namespace: str, route: str = "model") -> TrafficRouter:
    routing = TrafficRouting.model_validate(
        {"router": "gatewayAPI", "gatewayAPI": {"httpRoute": route, "ruleIndex": 1}}
    )
    return router_for(routing, namespace, api, total_replicas=4, port=80)


def test_gateway_api_weights(api: client.ApiClient, namespace: str, http_route: dict[str, Any]) -> None:
    router = gateway_router(api, namespace)
    router.check()
    assert current_weights(router) == {"model-stable": 1.0}
    for weight in (5, 25, 100):
        apply_and_verify(router, canary(weight))
    assert current_weights(router) == {"model-stable": 0.0, "model-canary": 1.0}
    stored = read_custom(
        client.CustomObjectsApi(api), CustomResource(*GATEWAY[:2], GATEWAY[2], "HTTPRoute", namespace, "model")
    )
    assert stored["spec"]["rules"][0]["matches"] == HEALTH_RULE["matches"], "the user's other rules are untouched"
    assert stored["spec"]["rules"][1]["filters"][0]["type"] == "RequestHeaderModifier"
    assert stored["spec"]["hostnames"] == ["model.example"]


def test_gateway_api_is_idempotent(api: client.ApiClient, namespace: str, http_route: dict[str, Any]) -> None:
    router = gateway_router(api, namespace)
    split = canary(50, mirror="model-canary", header_routes=STICKY)
    router.apply(split)
    before = resource_version(api, GATEWAY, namespace)
    router.apply(split)
    assert resource_version(api, GATEWAY, namespace) == before, "a second apply must send nothing"


def test_gateway_api_header_routes_and_mirror(
    api: client.ApiClient, namespace: str, http_route: dict[str, Any]
) -> None:
    router = gateway_router(api, namespace)
    apply_and_verify(router, canary(50, header_routes=STICKY))
    apply_and_verify(router, canary(0, mirror="model-canary"))
    apply_and_verify(router, canary(0, mirror="model-canary", header_routes=STICKY[:1]))
    apply_and_verify(router, canary(10))
    stored = client.CustomObjectsApi(api).get_namespaced_custom_object(*GATEWAY[:2], namespace, GATEWAY[2], "model")
    assert len(stored["spec"]["rules"]) == 2, "header rules and the mirror are gone again"
    assert [f["type"] for f in stored["spec"]["rules"][1]["filters"]] == ["RequestHeaderModifier"]


def test_gateway_api_missing_route_and_crd(api: client.ApiClient, namespace: str) -> None:
    router = gateway_router(api, namespace, route="absent")
    for call in (router.check, router.observe, lambda: router.apply(canary(5))):
        with pytest.raises(RouterUnavailable) as error:
            call()
        assert error.value.reason == "RouteNotFound"
    missing_type = CustomResource("example.invalid", "v1", "widgets", "Widget", namespace, "model")
    with pytest.raises(RouterUnavailable) as error:
        read_custom(client.CustomObjectsApi(api), missing_type)
    assert error.value.reason == "CRDNotInstalled"


def test_gateway_api_rule_index_out_of_range(api: client.ApiClient, namespace: str, http_route: dict[str, Any]) -> None:
    routing = TrafficRouting.model_validate(
        {"router": "gatewayAPI", "gatewayAPI": {"httpRoute": "model", "ruleIndex": 2}}
    )
    with pytest.raises(RouterUnavailable) as error:
        router_for(routing, namespace, api, total_replicas=4, port=80).check()
    assert error.value.reason == "RuleNotFound"


# --- istio ----------------------------------------------------------------------------------------


@pytest.fixture
def virtual_service(api: client.ApiClient, namespace: str) -> None:
    body = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "model"},
        "spec": {
            "hosts": ["model"],
            "http": [
                {
                    "name": "health",
                    "match": [{"uri": {"exact": "/healthz"}}],
                    "route": [{"destination": {"host": "model-stable"}}],
                },
                {
                    "name": "primary",
                    "match": [{"uri": {"prefix": "/predict"}}],
                    "timeout": "3s",
                    "route": [{"destination": {"host": "model-stable", "port": {"number": 80}}}],
                },
            ],
        },
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(*ISTIO[:2], namespace, ISTIO[2], body)


def istio_router(api: client.ApiClient, namespace: str, route_name: str = "primary") -> TrafficRouter:
    routing = TrafficRouting.model_validate(
        {"router": "istio", "istio": {"virtualService": "model", "routeName": route_name}}
    )
    return router_for(routing, namespace, api, total_replicas=4, port=80)


@pytest.mark.usefixtures("virtual_service")
def test_istio_weights_header_routes_and_mirror(api: client.ApiClient, namespace: str) -> None:
    router = istio_router(api, namespace)
    router.check()
    assert current_weights(router) == {"model-stable": 1.0}
    for split in (canary(5), canary(50, header_routes=STICKY), canary(0, mirror="model-canary"), canary(25)):
        apply_and_verify(router, split)
    stored = client.CustomObjectsApi(api).get_namespaced_custom_object(*ISTIO[:2], namespace, ISTIO[2], "model")
    assert [r["name"] for r in stored["spec"]["http"]] == ["health", "primary"]
    assert stored["spec"]["http"][1]["timeout"] == "3s"


@pytest.mark.usefixtures("virtual_service")
def test_istio_is_idempotent(api: client.ApiClient, namespace: str) -> None:
    router = istio_router(api, namespace)
    split = canary(50, mirror="model-canary", header_routes=STICKY)
    router.apply(split)
    before = resource_version(api, ISTIO, namespace)
    router.apply(split)
    assert resource_version(api, ISTIO, namespace) == before


@pytest.mark.usefixtures("virtual_service")
def test_istio_missing_route(api: client.ApiClient, namespace: str) -> None:
    with pytest.raises(RouterUnavailable) as error:
        istio_router(api, namespace, route_name="absent").check()
    assert error.value.reason == "RouteNotFound"
    routing = TrafficRouting.model_validate({"router": "istio", "istio": {"virtualService": "absent"}})
    with pytest.raises(RouterUnavailable) as error:
        router_for(routing, namespace, api, total_replicas=4, port=80).observe()
    assert error.value.reason == "RouteNotFound"


# --- replicas -------------------------------------------------------------------------------------


def deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": "model", "modelrollout.dev/revision": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="server", image="example.invalid/model:1")]),
            ),
        ),
    )


def test_replicas_router_scales_two_deployments(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment("model-1", 4))
    apps.create_namespaced_deployment(namespace, deployment("model-2", 0))
    router = router_for(TrafficRouting(), namespace, api, total_replicas=4, port=80)
    assert router.observe() is None
    apply_and_verify(router, canary(5))
    assert current_weights(router) == {"model-stable": 0.75, "model-canary": 0.25}
    generation = apps.read_namespaced_deployment("model-1", namespace).metadata.generation
    router.apply(canary(5))
    assert apps.read_namespaced_deployment("model-1", namespace).metadata.generation == generation
    apply_and_verify(router, canary(50))
    apply_and_verify(router, canary(100))
    assert [apps.read_namespaced_deployment(d, namespace).spec.replicas for d in ("model-1", "model-2")] == [0, 4]

    def ready() -> bool:
        return (apps.read_namespaced_deployment_status("model-2", namespace).status.ready_replicas or 0) == 4

    wait_for(ready, 60, message="the canary's pods to be ready")


def test_replicas_router_missing_deployment(api: client.ApiClient, namespace: str) -> None:
    router = router_for(TrafficRouting(), namespace, api, total_replicas=4, port=80)
    with pytest.raises(RouterUnavailable) as error:
        router.apply(canary(5))
    assert error.value.reason == "DeploymentNotFound"
