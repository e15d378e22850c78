"""Every Grafana dashboard panel's query names metrics someone exports and returns data.

Why: a dashboard whose panels say "No data" is found by the user, on the day they need it.
The exporters are the project's own: the sample model server (examples/model-server, two
revisions under load with feedback, missing features and 5xx answers) and the operator's
metrics registry (``modelrollout.telemetry``, served by its own ``serve``), its series set
the way the controllers set them. A private Prometheus scrapes both, labelled as the shipped
scrape configuration labels model servers; every panel query, with the dashboard variables
set to match everything, must return at least one series. Every metric name a query uses must
be in one of the two exporters' /metrics.

Known limit: the operator's series are set through the telemetry module's API (the calls the
controllers make), not by running rollouts, drift monitors and experiments here; the e2e
suite (e2e/test_monitoring.py) checks the controllers set them.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from e2e.dataplane.loadgen import LoadConfig, run_load
from e2e.dataplane.servers import ServerHandle, ServerSpec, file_sd_entry, running_servers
from hack.localcluster import procs
from hack.localprom.instance import private_prometheus
from modelrollout import telemetry
from modelrollout.kube.client import count_request

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "charts" / "modelrollout" / "dashboards").glob("*.json"))
NAMESPACE = "dash"


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) with every variable matching everything."""
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = re.sub(r"\$\{?(namespace|model)\}?", ".*", target["expr"])
                found.append((path.name, panel["title"], expr))
    return found


def metric_names(node: Any) -> set[str]:
    """Names of every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name} if node.name else set()
    names: set[str] = set()
    for attribute in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None and not isinstance(child, str | int | float):
            names |= metric_names(child)
    for child in getattr(node, "args", None) or []:
        names |= metric_names(child)
    return names


def exported_families(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            if kind == "summary":
                names |= {f"{name}_sum", f"{name}_count"}
            if kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
    return names


def set_operator_series() -> None:
    """The operator's series as the controllers set them during a canary, a drift and an experiment."""
    telemetry.record_rollout(NAMESPACE, "returns", "Progressing", 25)
    telemetry.analysis_verdict.labels(NAMESPACE, "returns", "error-rate").set(1)
    for role, value in (("canary", 0.011), ("stable", 0.010)):
        telemetry.analysis_value.labels(NAMESPACE, "returns", "error-rate", role).set(value)
    telemetry.rollbacks_total.labels(NAMESPACE, "returns", "AnalysisFailed").inc()
    for kind in ("ModelDeployment", "DriftMonitor", "Experiment"):
        telemetry.reconcile_seconds.labels(kind).observe(0.02)
    count_request("kopf", "GET", "/apis/modelrollout.dev/v1alpha1/modeldeployments?watch=true")
    count_request("kubernetes", "PATCH", "/apis/modelrollout.dev/v1alpha1/namespaces/dash/modeldeployments/returns")
    telemetry.drift_detected.labels(NAMESPACE, "returns-drift").set(1)
    telemetry.drift_score.labels(NAMESPACE, "returns-drift", "momentum_5d", "psi").set(0.31)
    telemetry.data_quality_rate.labels(NAMESPACE, "returns-drift", "momentum_5d", "missing").set(0.1)
    for arm, samples, estimate in (("champion", 4000, 0.55), ("challenger", 4000, 0.58)):
        telemetry.experiment_samples.labels(NAMESPACE, "returns-ab", arm).set(samples)
        telemetry.experiment_estimate.labels(NAMESPACE, "returns-ab", arm).set(estimate)
    telemetry.experiment_p_value.labels(NAMESPACE, "returns-ab", "challenger").set(0.01)


@pytest.fixture(scope="module")
def operator_metrics() -> str:
    port = procs.free_ports(["operator"])["operator"]
    telemetry.serve(port)
    set_operator_series()
    return f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def model_servers() -> Iterator[list[ServerHandle]]:
    specs = [ServerSpec(revision="1-aaaa", role="stable", faults={"error_rate": 0.1}), ServerSpec("2-bbbb", "canary")]
    with running_servers(specs) as handles:
        yield handles


def test_every_panel_query_returns_data(
    operator_metrics: str, model_servers: list[ServerHandle], tmp_path: Path
) -> None:
    targets = tmp_path / "model-servers.json"
    groups = [file_sd_entry(handle) for handle in model_servers]
    for group in groups:
        group["labels"]["namespace"] = NAMESPACE
    targets.write_text(json.dumps(groups))
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            # As files/model-servers-scrape.yaml's operator job: honor_labels keeps the resources' namespace.
            {
                "job_name": "modelrollout-operator",
                "honor_labels": True,
                "static_configs": [{"targets": [operator_metrics]}],
            },
            {"job_name": "model-server", "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}]},
        ],
    }
    exported = exported_families(urllib.request.urlopen(f"http://{operator_metrics}/metrics").read().decode())
    for handle in model_servers:
        exported |= exported_families(handle.metrics_text())
    queries = panel_queries()
    assert len(queries) >= 16, "two dashboards of eight panels at least"
    unknown = {
        (board, title, name)
        for board, title, expr in queries
        for name in metric_names(promql_parser.parse(expr))
        if name not in exported
    }
    assert not unknown, f"queries name metrics nobody exports: {sorted(unknown)}"

    with private_prometheus(config) as prometheus:
        load = LoadConfig(requests=600, rate_per_second=60, max_seconds=30, missing_rate=0.1, feedback=True)
        run_load(lambda: {handle.url: 0.5 for handle in model_servers}, load)
        deadline = time.monotonic() + 60
        while True:
            empty = [(b, t, e) for b, t, e in queries if not prometheus.api("query", query=e)["result"]]
            if not empty or time.monotonic() > deadline:
                break
            run_load(lambda: {handle.url: 0.5 for handle in model_servers}, LoadConfig(requests=60, max_seconds=5))
    assert not empty, "panels without data:\n" + "\n".join(f"{b} / {t}: {e}" for b, t, e in empty)
