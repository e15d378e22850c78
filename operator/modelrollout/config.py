"""Operator settings, read once from the environment and frozen.

Every knob has a default that works in a cluster installed from the chart; the
test harness overrides the few that differ on a laptop (the Prometheus URL, a
faster tick).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

PREFIX = "MODELROLLOUT_"


@dataclass(frozen=True, slots=True)
class Settings:
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    """Where guardrail, drift and experiment queries go."""
    prometheus_timeout: float = 5.0
    """Seconds one query may take; a slower answer counts as an error (Inconclusive)."""
    metrics_port: int = 8000
    """The operator's own /metrics port (0 disables it)."""
    tick_seconds: float = 1.0
    """How often active rollouts are reconciled; analysis intervals are honoured on top of it."""
    resync_seconds: float = 30.0
    """How often resources at rest are re-verified (router drift, deleted workloads)."""
    operator_image: str = "ghcr.io/modelrollout/modelrollout:0.1.0"
    """The image smoke-test Jobs run ``modelrollout smoke`` from, unless the spec names another."""
    namespaces: tuple[str, ...] = field(default_factory=tuple)
    """Namespaces to watch; all when empty."""
    peering: str | None = None
    """The kopf peering name (only one of several replicas acts, and peering is then mandatory);
    None runs standalone."""
    webhook_timeout: float = 5.0
    """Seconds a drift webhook delivery may take."""
    peering_lifetime: int = 60
    """Seconds a silent peer is still counted: how long a standby replica waits after the active one dies."""
    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    """kopf's liveness probe endpoint; None turns it off."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env

        def get(name: str) -> str | None:
            return source.get(PREFIX + name)

        defaults = cls()
        namespaces = get("NAMESPACES")
        peering = get("PEERING_NAME")
        return cls(
            prometheus_url=get("PROMETHEUS_URL") or defaults.prometheus_url,
            prometheus_timeout=float(get("PROMETHEUS_TIMEOUT") or defaults.prometheus_timeout),
            metrics_port=int(get("METRICS_PORT") or defaults.metrics_port),
            tick_seconds=float(get("TICK_SECONDS") or defaults.tick_seconds),
            resync_seconds=float(get("RESYNC_SECONDS") or defaults.resync_seconds),
            operator_image=get("OPERATOR_IMAGE") or defaults.operator_image,
            namespaces=tuple(n.strip() for n in namespaces.split(",") if n.strip()) if namespaces else (),
            peering=(peering or None) if peering is not None else defaults.peering,
            webhook_timeout=float(get("WEBHOOK_TIMEOUT") or defaults.webhook_timeout),
            peering_lifetime=int(get("PEERING_LIFETIME") or defaults.peering_lifetime),
            liveness_endpoint=(get("LIVENESS") or None) if get("LIVENESS") is not None else defaults.liveness_endpoint,
        )
