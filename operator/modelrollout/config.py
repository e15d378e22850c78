"""Operator settings, read once from the environment and frozen.

Every knob has a default that works in a cluster installed from the chart; the
test harness overrides the few that differ on a laptop (the Prometheus URL, a
faster tick).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

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


Getter = Callable[[str], str | None]
"""Reads ``PREFIX + name`` from the environment."""


@dataclass(frozen=True, slots=True)
class Variable:
    """Where a setting comes from: the variable after ``PREFIX``, and how its text becomes the value.

    Each setting names its variable once, beside its default and its docstring, so the variable
    cannot drift from the field. An unset variable leaves the field's default; so does an empty one
    (a chart value rendered as ``""``), unless ``empty_is_value`` (``LIVENESS=""`` turns the probe off).
    """

    name: str
    parse: Callable[[str], object] = str
    empty_is_value: bool = False
    pod: str | None = None
    """A variable of the pod's own, without the prefix (``POD_NAMESPACE``, set by the downward API), that wins
    when set: in a pod the operator's name and namespace come from the pod, not from a second setting."""

    def read(self, get: Getter, pod: Getter) -> object:
        """The parsed value, or ``_DEFAULT`` when the variable leaves the field's default."""
        text = (pod(self.pod) if self.pod else None) or get(self.name)
        if text is None or (text == "" and not self.empty_is_value):
            return _DEFAULT
        return self.parse(text)


@dataclass(frozen=True, slots=True)
class Section:
    """A setting built from several variables that are checked together (the Prometheus connection)."""

    read: Callable[[Getter], object]


_DEFAULT = object()
SOURCE = "modelrollout.env"
"""The key of a field's metadata that holds its ``Variable`` or ``Section``."""


def variable(
    name: str, parse: Callable[[str], object] = str, *, empty_is_value: bool = False, pod: str | None = None
) -> dict[str, Variable]:
    """Field metadata: the setting is read from ``PREFIX + name`` with ``parse`` (from ``pod`` first, when set)."""
    return {SOURCE: Variable(name, parse, empty_is_value, pod)}


def section(read: Callable[[Getter], object]) -> dict[str, Section]:
    """Field metadata: the setting is built by ``read`` from several variables."""
    return {SOURCE: Section(read)}


def _namespaces(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _count(text: str) -> int:
    """A whole number, zero or more."""
    number = int(text)
    if number < 0:
        raise ValueError(f"must be 0 or more, got {text!r}")
    return number


def _flag(text: str) -> bool:
    """A lenient switch: 1, true or yes (any case) turn it on, anything else leaves it off."""
    return text.strip().lower() in ("1", "true", "yes")


def _given(text: str) -> bool:
    """Any non-empty text: the variable was set."""
    return bool(text)


def _prometheus_auth(get: Getter) -> PrometheusAuth:
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


@dataclass(frozen=True, slots=True)
class Settings:
    """The operator's settings; each field's metadata names its variable (``MODELROLLOUT_`` + name)."""

    prometheus_url: str = field(
        default="http://prometheus-operated.monitoring.svc:9090", metadata=variable("PROMETHEUS_URL")
    )
    """Where guardrail, drift and experiment queries go."""
    prometheus_timeout: float = field(default=5.0, metadata=variable("PROMETHEUS_TIMEOUT", float))
    """Seconds one query may take; a slower answer counts as an error (Inconclusive)."""
    prometheus_auth: PrometheusAuth = field(default_factory=PrometheusAuth, metadata=section(_prometheus_auth))
    """Credentials, headers and TLS for Prometheus (the ``PROMETHEUS_*`` variables of :class:`PrometheusAuth`)."""
    metrics_port: int = field(default=8000, metadata=variable("METRICS_PORT", int))
    """The operator's own /metrics port (0 disables it)."""
    tick_seconds: float = field(default=1.0, metadata=variable("TICK_SECONDS", float))
    """How often active rollouts are reconciled; analysis intervals are honoured on top of it."""
    resync_seconds: float = field(default=300.0, metadata=variable("RESYNC_SECONDS", float))
    """How often what no watch tells of is re-verified at rest: a Gateway API or Istio route someone edited
    (a ModelDeployment's own Deployments, Services, revisions and Jobs are watched)."""
    watch_seconds: int = field(default=1800, metadata=variable("WATCH_SECONDS", int))
    """How long one watch stream lasts before it is opened again (with a fresh list): each kind costs two
    requests per period, cluster-wide or per watched namespace, however many resources it has. Whole seconds:
    the API server's ``timeoutSeconds``."""
    workers: int = field(default=16, metadata=variable("WORKERS", int))
    """ModelDeployments reconciled at once (DriftMonitors and Experiments have 4 workers each)."""
    operator_image: str = field(default="ghcr.io/modelrollout/modelrollout:0.1.0", metadata=variable("OPERATOR_IMAGE"))
    """The image smoke-test Jobs run ``modelrollout smoke`` from, unless the spec names another.
    Unset in a pod, the operator reads its own container's image (``modelrollout run``), so an
    overlay that retags the operator cannot leave smoke Jobs on another version."""
    operator_image_set: bool = field(default=False, metadata=variable("OPERATOR_IMAGE", _given))
    """Whether ``OPERATOR_IMAGE`` was given (then it wins over the pod's own image)."""
    namespaces: tuple[str, ...] = field(default_factory=tuple, metadata=variable("NAMESPACES", _namespaces))
    """Namespaces to watch, comma-separated; all when empty."""
    peering: str | None = field(default=None, metadata=variable("PEERING_NAME"))
    """The kopf peering name (only one of several replicas acts, and peering is then mandatory);
    None runs standalone."""
    webhook_timeout: float = field(default=5.0, metadata=variable("WEBHOOK_TIMEOUT", float))
    """Seconds a drift webhook delivery may take."""
    peering_lifetime: int = field(default=15, metadata=variable("PEERING_LIFETIME", int))
    """Seconds a silent peer is still counted: how long a standby replica waits after the active one dies.
    kopf renews every lifetime minus 5-10 s, so 15 s tolerates a keep-alive 5 s late and the standby acts
    about 15-20 s after the active replica's death (60 s, kopf's default, made that over a minute)."""
    liveness_endpoint: str | None = field(
        default="http://0.0.0.0:8080/healthz",
        metadata=variable("LIVENESS", lambda text: text or None, empty_is_value=True),
    )
    """kopf's liveness probe endpoint; None (the variable set empty) turns it off."""
    cross_namespace_queries: bool = field(default=False, metadata=variable("CROSS_NAMESPACE_QUERIES", _flag))
    """Let guardrail, experiment and drift queries read any namespace. Off, every vector selector is limited to
    the resource's own namespace (metrics/scoping.py), so a tenant cannot read another's series; an admin whose
    users are trusted may turn it on (MODELROLLOUT_CROSS_NAMESPACE_QUERIES=true)."""
    shards: int = field(default=0, metadata=variable("SHARDS", _count))
    """Split the watched resources into this many shards by a hash of their namespace, each processed by the one
    replica that holds its Lease (engine/sharding.py); 0 (the default) turns sharding off. Every replica must use
    the same number, and kopf peering must be off: each replica runs standalone."""
    shard_identity: str | None = field(default=None, metadata=variable("SHARD_IDENTITY", pod="POD_NAME"))
    """This replica's name in the sharding Leases: the pod's name (``POD_NAME``) in a pod; None picks the host
    name and a random suffix at start-up. Two live replicas must never share it."""
    shard_namespace: str = field(
        default="modelrollout-system", metadata=variable("SHARD_NAMESPACE", pod="POD_NAMESPACE")
    )
    """Where the sharding Leases live: the operator's own namespace (``POD_NAMESPACE``) in a pod."""

    def __post_init__(self) -> None:
        if self.watch_seconds < 1:
            raise SettingsError(f"{PREFIX}WATCH_SECONDS must be 1 or more, got {self.watch_seconds}")
        if self.shards and self.peering is not None:
            raise SettingsError(
                f"{PREFIX}SHARDS and {PREFIX}PEERING_NAME exclude each other: with shards every replica runs "
                "standalone and Leases decide which one acts on which namespaces; unset the peering name"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every field from its variable; the dataclass supplies the defaults of those left unset."""
        source = os.environ if env is None else env

        def get(name: str) -> str | None:
            return source.get(PREFIX + name)

        values: dict[str, Any] = {}
        for setting in fields(cls):
            origin = setting.metadata[SOURCE]
            value = origin.read(get, source.get) if isinstance(origin, Variable) else origin.read(get)
            if value is not _DEFAULT:
                values[setting.name] = value
        return cls(**values)
