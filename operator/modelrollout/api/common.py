"""Pieces shared by more than one kind: references, traffic routing, metric queries."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelrollout.api.base import ApiModel, Name, Rule

KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
"""What a Secret or ConfigMap data key may be."""


class SecretKeyRef(ApiModel):
    """A key of a Secret in the resource's namespace."""

    name: Name
    """The Secret's name."""
    key: str = Field(min_length=1, max_length=253, pattern=KEY_PATTERN)
    """The key within the Secret's data."""


class ConfigMapKeyRef(ApiModel):
    """A key of a ConfigMap in the resource's namespace."""

    name: Name
    """The ConfigMap's name."""
    key: str = Field(min_length=1, max_length=253, pattern=KEY_PATTERN)
    """The key within the ConfigMap's data."""


class GatewayAPIRouting(ApiModel):
    """Weights on the backendRefs of an existing Gateway API HTTPRoute."""

    http_route: Name
    """The HTTPRoute, in the same namespace, whose rules the operator manages the backends of."""
    rule_index: int = Field(default=0, ge=0)
    """Which rule of the route carries the weighted backends."""


class IstioRouting(ApiModel):
    """Route weights on an existing Istio VirtualService."""

    virtual_service: Name
    """The VirtualService, in the same namespace, whose HTTP route weights the operator manages."""
    route_name: str | None = Field(default=None, min_length=1, max_length=253)
    """The named HTTP route to manage; the first one when unset."""


RouterKind = Literal["replicas", "gatewayAPI", "istio"]


class TrafficRouting(ApiModel):
    """How traffic is split between revisions (or experiment arms)."""

    __rules__ = (
        Rule(
            "self.router != 'gatewayAPI' || has(self.gatewayAPI)",
            "trafficRouting.gatewayAPI is required when router is gatewayAPI",
            lambda s: s.router != "gatewayAPI" or s.gateway_api is not None,
        ),
        Rule(
            "self.router != 'istio' || has(self.istio)",
            "trafficRouting.istio is required when router is istio",
            lambda s: s.router != "istio" or s.istio is not None,
        ),
    )

    router: RouterKind = "replicas"
    """replicas: weight by replica ratio behind one Service (no mesh needed, coarse);
    gatewayAPI: HTTPRoute backendRef weights; istio: VirtualService route weights."""
    gateway_api: GatewayAPIRouting | None = Field(default=None, alias="gatewayAPI")
    """Settings of the gatewayAPI router."""
    istio: IstioRouting | None = None
    """Settings of the istio router."""
