"""Operator settings, read once from the environment and frozen.

Every knob has a default that works in a cluster installed from the chart; the
test harness overrides the few that differ on a laptop (the Prometheus URL, a
faster tick).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

PREFIX = "MODELROLLOUT_"


class SettingsError(ValueError):
    """An environment variable holds something the operator cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class PrometheusAuth:
    """How to authenticate to Prometheus (or Thanos, Mimir, a managed service) and trust its certificate.

    Secrets arrive as files (mounted Secrets, projected service account tokens) or as
    environment variables filled from Secrets (``valueFrom.secretKeyRef``); never in the chart's
    plain values.
    """

    bearer_token: str | None = field(default=None, repr=False)
    """``PROMETHEUS_BEARER_TOKEN``: sent as ``Authorization: Bearer``."""
    bearer_token_file: str | None = None
    """``PROMETHEUS_BEARER_TOKEN_FILE``: read on every request, so a rotated token is picked up."""
    username: str | None = None
    """``PROMETHEUS_USERNAME``: HTTP basic auth, with the password below."""
    password: str | None = field(default=None, repr=False)
    """``PROMETHEUS_PASSWORD`` or the content of ``PROMETHEUS_PASSWORD_FILE``."""
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """``PROMETHEUS_HEADERS``, a JSON object: extra headers such as Mimir's ``X-Scope-OrgID`` tenant."""
    ca_file: str | None = None
    """``PROMETHEUS_CA_FILE``: the CA bundle that signed Prometheus' certificate (the system's when unset)."""
    cert_file: str | None = None
    """``PROMETHEUS_CERT_FILE`` and ``PROMETHEUS_KEY_FILE``: a client certificate for mutual TLS."""
    key_file: str | None = None
    insecure_skip_verify: bool = False
    """``PROMETHEUS_INSECURE_SKIP_VERIFY=true``: do not verify the certificate (never in production)."""


@dataclass(frozen=True, slots=True)
class Settings:
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    """Where guardrail, drift and experiment queries go."""
    prometheus_timeout: float = 5.0
    """Seconds one query may take; a slower answer counts as an error (Inconclusive)."""
    prometheus_auth: PrometheusAuth = field(default_factory=PrometheusAuth)
    """Credentials, headers and TLS for Prometheus."""
    metrics_port: int = 8000
    """The operator's own /metrics port (0 disables it)."""
    tick_seconds: float = 1.0
    """How often active rollouts are reconciled; analysis intervals are honoured on top of it."""
    resync_seconds: float = 30.0
    """How often resources at rest are re-verified (router drift, deleted workloads)."""
    operator_image: str = "ghcr.io/modelrollout/modelrollout:0.1.0"
    """The image smoke-test Jobs run ``modelrollout smoke`` from, unless the spec names another.
    Unset in a pod, the operator reads its own container's image (``modelrollout run``), so an
    overlay that retags the operator cannot leave smoke Jobs on another version."""
    operator_image_set: bool = False
    """Whether ``OPERATOR_IMAGE`` was given (then it wins over the pod's own image)."""
    namespaces: tuple[str, ...] = field(default_factory=tuple)
    """Namespaces to watch; all when empty."""
    peering: str | None = None
    """The kopf peering name (only one of several replicas acts, and peering is then mandatory);
    None runs standalone."""
    webhook_timeout: float = 5.0
    """Seconds a drift webhook delivery may take."""
    peering_lifetime: int = 15
    """Seconds a silent peer is still counted: how long a standby replica waits after the active one dies.
    kopf renews every lifetime minus 5-10 s, so 15 s tolerates a keep-alive 5 s late and the standby acts
    about 15-20 s after the active replica's death (60 s, kopf's default, made that over a minute)."""
    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    """kopf's liveness probe endpoint; None turns it off."""
    cross_namespace_queries: bool = False
    """Let guardrail, experiment and drift queries read any namespace. Off, every vector selector is limited to
    the resource's own namespace (metrics/scoping.py), so a tenant cannot read another's series; an admin whose
    users are trusted may turn it on (MODELROLLOUT_CROSS_NAMESPACE_QUERIES=true)."""

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
            prometheus_auth=_prometheus_auth(get),
            metrics_port=int(get("METRICS_PORT") or defaults.metrics_port),
            tick_seconds=float(get("TICK_SECONDS") or defaults.tick_seconds),
            resync_seconds=float(get("RESYNC_SECONDS") or defaults.resync_seconds),
            operator_image=get("OPERATOR_IMAGE") or defaults.operator_image,
            operator_image_set=bool(get("OPERATOR_IMAGE")),
            namespaces=tuple(n.strip() for n in namespaces.split(",") if n.strip()) if namespaces else (),
            peering=(peering or None) if peering is not None else defaults.peering,
            webhook_timeout=float(get("WEBHOOK_TIMEOUT") or defaults.webhook_timeout),
            peering_lifetime=int(get("PEERING_LIFETIME") or defaults.peering_lifetime),
            liveness_endpoint=(get("LIVENESS") or None) if get("LIVENESS") is not None else defaults.liveness_endpoint,
            cross_namespace_queries=(get("CROSS_NAMESPACE_QUERIES") or "").strip().lower() in ("1", "true", "yes"),
        )


def _prometheus_auth(get: Callable[[str], str | None]) -> PrometheusAuth:
    """The ``PROMETHEUS_*`` connection settings, checked now so a typo stops the operator at start-up."""
    raw_headers = get("PROMETHEUS_HEADERS") or "{}"
    try:
        headers = json.loads(raw_headers)
    except ValueError as error:
        raise SettingsError(f"{PREFIX}PROMETHEUS_HEADERS is not a JSON object: {error}") from None
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise SettingsError(
            f'{PREFIX}PROMETHEUS_HEADERS must be a JSON object of strings, like {{"X-Scope-OrgID": "a"}}'
        )
    password = get("PROMETHEUS_PASSWORD")
    password_file = get("PROMETHEUS_PASSWORD_FILE")
    if password_file:
        try:
            with open(password_file, encoding="utf-8") as stream:
                password = stream.read().strip()
        except OSError as error:
            raise SettingsError(f"{PREFIX}PROMETHEUS_PASSWORD_FILE {password_file}: {error.strerror}") from None
    username = get("PROMETHEUS_USERNAME") or None
    if bool(username) != bool(password):
        raise SettingsError(f"{PREFIX}PROMETHEUS_USERNAME and a password (or PASSWORD_FILE) go together")
    cert, key = get("PROMETHEUS_CERT_FILE") or None, get("PROMETHEUS_KEY_FILE") or None
    if bool(cert) != bool(key):
        raise SettingsError(f"{PREFIX}PROMETHEUS_CERT_FILE and PROMETHEUS_KEY_FILE go together")
    insecure = (get("PROMETHEUS_INSECURE_SKIP_VERIFY") or "false").lower()
    if insecure not in ("true", "false"):
        raise SettingsError(f"{PREFIX}PROMETHEUS_INSECURE_SKIP_VERIFY must be true or false, got {insecure!r}")
    return PrometheusAuth(
        bearer_token=get("PROMETHEUS_BEARER_TOKEN") or None,
        bearer_token_file=get("PROMETHEUS_BEARER_TOKEN_FILE") or None,
        username=username,
        password=password or None,
        headers=MappingProxyType(dict(headers)),
        ca_file=get("PROMETHEUS_CA_FILE") or None,
        cert_file=cert,
        key_file=key,
        insecure_skip_verify=insecure == "true",
    )
