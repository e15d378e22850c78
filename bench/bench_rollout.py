"""Rollout benchmarks on the local control plane: reaction time to a guardrail breach, API cost per step.

Measured end to end with the real pieces: the operator process, the API
server, Prometheus scraping every second, model servers and traffic.

* breach -> stable: from the first scrape in which Prometheus shows the
  canary failing to the moment the router's state sends 100% to stable
  (analysis interval 2 s; failure limit 1 for the guardrail run; the
  circuit breaker aborts on the first breached evaluation);
* Kubernetes API requests the operator makes per rollout step, counted by
  the operator itself (``modelrollout_kube_requests_total``; kopf's watch
  streams excluded).

Run: ``python bench/bench_rollout.py [--runs 3]`` (prints Markdown).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
import urllib.request
from typing import Any

from e2e.harness.kubelet import LocalKubelet, wait_for
from e2e.harness.operator import OperatorProcess
from e2e.harness.scenario import ERROR_RATIO_QUERY, Namespace, model_deployment, namespace
from e2e.harness.traffic import Traffic
from hack.localcluster.harness import cluster_session
from hack.localprom.harness import prometheus_session

NAME = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kube_requests(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("modelrollout_kube_requests_total{")
    )


def analysis(interval: str, failure_limit: int) -> dict[str, Any]:
    document = model_deployment(NAME, "x")
    spec = document["spec"]["analysis"]
    spec.update({"interval": interval, "failureLimit": failure_limit})
    return dict(spec)


def breach_to_stable(
    ns: Namespace, kubelet: LocalKubelet, prometheus: Any, version: str, **options: Any
) -> dict[str, float]:
    ns.update_spec(NAME, model_deployment(NAME, version, smoke=False, **options)["spec"])
    wait_for(lambda: ns.status(NAME).get("canaryWeight") == 25 and ns.status(NAME).get("stepStartedAt"), 120, 0.1)
    status = ns.status(NAME)
    canary, stable = status["currentRevision"]["hash"], status["stableRevision"]["hash"]
    server = wait_for(lambda: kubelet.server(canary), 10)
    query = f'sum(rate(model_requests_total{{namespace="{ns.name}",revision="{canary}",code=~"5.."}}[10s])) > 0'
    injected = time.monotonic()
    server.set_faults(error_rate=1.0)
    client = prometheus.client()
    wait_for(lambda: bool(client.custom_query(query)), 30, 0.05, message="breach visible in Prometheus")
    visible = time.monotonic()
    stable_url = kubelet.server(stable).url
    wait_for(lambda: list(kubelet.weights(NAME)) == [stable_url], 60, 0.05, message="100% on stable")
    on_stable = time.monotonic()
    return {"visible_to_stable": on_stable - visible, "inject_to_stable": on_stable - injected}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    metrics_port = free_port()
    with cluster_session() as cluster, prometheus_session() as prometheus:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "crds/")
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s", "-f", "crds/")
        api = cluster.api_client()
        env = {"MODELROLLOUT_METRICS_PORT": str(metrics_port)}
        with (
            OperatorProcess(cluster.kubeconfig, prometheus.url, tick=0.5, extra_env=env),
            namespace(api) as ns,
            LocalKubelet(api, prometheus, ns.name) as kubelet,
            Traffic(lambda: _weights(kubelet), rate=60.0),
        ):
            ns.create(model_deployment(NAME, "1", smoke=False))
            wait_for(lambda: ns.status(NAME).get("phase") == "Healthy", 90)
            before = kube_requests(metrics_port)
            started = time.monotonic()
            ns.update_spec(NAME, model_deployment(NAME, "2", smoke=False)["spec"])
            wait_for(
                lambda: (
                    ns.status(NAME).get("phase") == "Healthy"
                    and ns.status(NAME)["stableRevision"]["modelVersion"] == "2"
                ),
                120,
                0.1,
            )
            rollout_seconds = time.monotonic() - started
            requests = kube_requests(metrics_port) - before
            guardrail, breaker = [], []
            for run in range(args.runs):
                guardrail.append(breach_to_stable(ns, kubelet, prometheus, f"g{run}", analysis=analysis("2s", 1)))
                breaker.append(
                    breach_to_stable(
                        ns,
                        kubelet,
                        prometheus,
                        f"c{run}",
                        analysis=analysis("2s", 2),
                        circuit_breaker=[{"name": "error-storm", "query": ERROR_RATIO_QUERY, "max": 0.5}],
                    )
                )
    steps = 4
    print("| measure | median | runs |")
    print("|---|---|---|")
    for label, runs in (("guardrail (failure limit 1)", guardrail), ("circuit breaker", breaker)):
        for key, text in (
            ("visible_to_stable", "breach visible in Prometheus -> 100% on stable"),
            ("inject_to_stable", "fault injected -> 100% on stable"),
        ):
            values = [r[key] for r in runs]
            print(f"| {label}: {text} | {statistics.median(values):.2f} s | {', '.join(f'{v:.2f}' for v in values)} |")
    label = f"API requests of one 4-step rollout (5/25/50/100, 5 s pauses, {rollout_seconds:.0f} s)"
    print(f"| {label} | {requests:.0f} | 1 |")
    print(f"| API requests per step | {requests / steps:.0f} | 1 |")
    print(f"| API requests per second while progressing | {requests / rollout_seconds:.1f} | 1 |")
    return 0


def _weights(kubelet: LocalKubelet) -> dict[str, float]:
    try:
        return kubelet.weights(NAME)
    except Exception:
        return {}


def _stable_version(ns: Namespace) -> str | None:
    status = ns.status(NAME)
    return status["stableRevision"]["modelVersion"] if status.get("phase") == "Healthy" else None


if __name__ == "__main__":
    raise SystemExit(main())
