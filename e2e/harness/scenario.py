"""Building and watching ModelDeployments in tests: manifests, a namespace, status reads and Events."""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e.dataplane import GOLDEN_INPUTS
from tests.support.waiting import wait_for

GROUP, VERSION, PLURAL = "modelrollout.dev", "v1alpha1", "modeldeployments"

ERRORS = (
    'sum(increase(model_requests_total{{namespace="{{{{namespace}}}}",revision="{{{{revision}}}}"{code}}}'
    "[{{{{elapsed}}}}])) or vector(0)"
)
ERROR_QUERY = ERRORS.format(code=',code=~"5.."')
TOTAL_QUERY = ERRORS.format(code="").replace(" or vector(0)", "")
P99_QUERY = (
    'histogram_quantile(0.99, sum by (le) (rate(model_request_duration_seconds_bucket{namespace="{{namespace}}",'
    'revision="{{revision}}"}[{{window}}])))'
)
ERROR_RATIO_QUERY = (
    'sum(rate(model_requests_total{namespace="{{namespace}}",revision="{{revision}}",code=~"5.."}[{{window}}]))'
    ' / sum(rate(model_requests_total{namespace="{{namespace}}",revision="{{revision}}"}[{{window}}]))'
)


def served_model(name: str, version: str, *, model: str = "served") -> dict[str, Any]:
    """A model served and at rest: one replica, the replicas router, no smoke test, no guardrails (fleets)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": model, "version": version, "uri": f"s3://models/{model}/{version}"},
            "replicas": 1,
            "port": 8080,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "server", "image": "ghcr.io/modelrollout/model-server:0.1.0"}]},
            },
            "trafficRouting": {"router": "replicas"},
        },
    }


def model_deployment(
    name: str,
    version: str,
    *,
    server_args: list[str] | None = None,
    pause: str = "5s",
    smoke: bool = True,
    router: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
    circuit_breaker: list[dict[str, Any]] | None = None,
    replicas: int = 2,
) -> dict[str, Any]:
    """A ModelDeployment of the sample returns model, tuned for seconds-long test rollouts."""
    spec: dict[str, Any] = {
        "model": {
            "name": "next-day-returns",
            "version": version,
            "uri": f"s3://models/next-day-returns/{version}/model.joblib",
            "framework": "custom",
            "lineage": {
                "data": "s3://datasets/returns/2026-10.parquet",
                "code": f"commit-{version}",
                "params": {"alpha": "0.01"},
            },
        },
        "replicas": replicas,
        "port": 8080,
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [
                    {
                        "name": "server",
                        "image": "ghcr.io/modelrollout/model-server:0.1.0",
                        "args": list(server_args or []),
                        "ports": [{"containerPort": 8080, "name": "http"}],
                    }
                ]
            },
        },
        "strategy": {"canary": {"steps": [{"weight": w, "pause": {"duration": pause}} for w in (5, 25, 50, 100)]}},
        "analysis": analysis
        or {
            "interval": "1s",
            "window": "10s",
            "failureLimit": 2,
            "noDataLimit": 30,
            "metrics": [
                {
                    "name": "error-rate",
                    "proportion": {
                        "errorsQuery": ERROR_QUERY,
                        "totalQuery": TOTAL_QUERY,
                        "maxIncrease": 0.05,
                    },
                },
                {"name": "latency-p99", "query": P99_QUERY, "max": 0.5},
            ],
        },
        "trafficRouting": router or {"router": "replicas"},
    }
    if smoke:
        spec["smokeTest"] = {
            "timeout": "60s",
            "builtin": {
                "goldenInputs": {"name": "golden", "key": "golden.json"},
                "outputRange": {"min": -1, "max": 1},
                "latencyBudgetMs": 300,
            },
        }
    if circuit_breaker:
        spec["circuitBreaker"] = circuit_breaker
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": name}, "spec": spec}


class Namespace:
    """A fresh namespace per test, with the golden-inputs ConfigMap the smoke checks read."""

    def __init__(self, api: client.ApiClient, name: str) -> None:
        self.api = api
        self.name = name
        self.core = client.CoreV1Api(api)
        self.objects = client.CustomObjectsApi(api)

    def create(self, document: dict[str, Any]) -> dict[str, Any]:
        return dict(self.objects.create_namespaced_custom_object(GROUP, VERSION, self.name, PLURAL, document))

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.objects.get_namespaced_custom_object(GROUP, VERSION, self.name, PLURAL, name))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def update_spec(self, name: str, spec: dict[str, Any]) -> None:
        """Replace the spec as ``kubectl replace`` would, re-reading on a conflict.

        The operator writes status on every analysis look, and each write moves the object's
        resourceVersion, so a read-then-replace can lose the race; a user's apply is retried the same way.
        """
        for attempt in range(5):
            live = self.get(name)
            live["spec"] = copy.deepcopy(spec)
            try:
                self.objects.replace_namespaced_custom_object(GROUP, VERSION, self.name, PLURAL, name, live)
                return
            except client.ApiException as error:
                if error.status != 409 or attempt == 4:
                    raise

    def annotate(self, name: str, annotations: dict[str, str | None]) -> None:
        self.objects.patch_namespaced_custom_object(
            GROUP, VERSION, self.name, PLURAL, name, {"metadata": {"annotations": annotations}}
        )

    def events(self, name: str) -> list[Any]:
        found = self.core.list_namespaced_event(self.name, field_selector=f"involvedObject.name={name}")
        return sorted(found.items, key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp)

    def event_reasons(self, name: str) -> list[str]:
        return [e.reason for e in self.events(name)]

    def has_event(self, name: str, reason: str, timeout: float = 15.0) -> bool:
        """Events are posted asynchronously by the operator: wait for one rather than read once."""
        with contextlib.suppress(AssertionError):
            return wait_for(lambda: reason in self.event_reasons(name), timeout, message=f"Event {reason} on {name}")
        return False

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        return next((c for c in self.status(name).get("conditions", []) if c["type"] == type_), None)


@contextmanager
def namespace(api: client.ApiClient, golden: Path = GOLDEN_INPUTS, *, prefix: str = "mr-") -> Iterator[Namespace]:
    """A fresh namespace ``<prefix><random>`` with the golden inputs the smoke tests read, deleted afterwards."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(
        name, {"metadata": {"name": "golden"}, "data": {"golden.json": golden.read_text()}}
    )
    try:
        yield Namespace(api, name)
    finally:
        core.delete_namespace(name)
