"""What one request of each kind the operator makes costs the API server, in CPU: which writes are worth saving.

On the local control plane, with nothing else running on it, ``--count`` requests of each kind are sent (8
at a time) and the kube-apiserver process's CPU time (user and system, from ``/proc``) is read before and
after; its background rate, read for 3 s just before, is subtracted. Each row is the CPU per request and
the wall time of the batch. The ModelDeployments are the bench fleet's (``served_model``), so the status
writes go through the same schema, CEL rules and field management as the operator's.

Run: ``python bench/bench_write_cost.py [--count 600] [--rounds 3]`` (prints Markdown: the median of the
rounds and their range). Starts the local cluster if it is not running and leaves it running; deletes its
namespace at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from bench.bench_scale import GROUP, PLURAL, VERSION, by_process, cpu_seconds, ensure_cluster, log  # noqa: E402

from e2e.harness.scenario import served_model  # noqa: E402

NAMESPACE = "bench-write-cost"
BACKGROUND_SECONDS = 3.0


def apiserver_cpu() -> float:
    return by_process(("kube-apiserver",), cpu_seconds)["kube-apiserver"]


def cost(count: int, request: Callable[[int], object]) -> tuple[float, float]:
    """The API server's CPU milliseconds per request, less its background; and the batch's wall seconds."""
    before, started = apiserver_cpu(), time.monotonic()
    time.sleep(BACKGROUND_SECONDS)
    background = (apiserver_cpu() - before) / (time.monotonic() - started)
    before, started = apiserver_cpu(), time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(request, range(count)))
    wall = time.monotonic() - started
    return 1000 * (apiserver_cpu() - before - background * wall) / count, wall


def requests(api: client.ApiClient, names: list[str]) -> dict[str, Callable[[int], object]]:
    """Each kind of request, on the i-th object; every call changes something, as the operator's do."""
    objects, core = client.CustomObjectsApi(api), client.CoreV1Api(api)

    def stamp() -> str:
        return uuid.uuid4().hex

    def event(i: int) -> dict[str, object]:
        return {
            "metadata": {"name": f"{names[i]}.{stamp()}"},
            "involvedObject": {"kind": "ModelDeployment", "name": names[i], "namespace": NAMESPACE},
            "type": "Normal",
            "reason": "RevisionCreated",
            "message": "revision 2-8900fd18 for model version 2.0.0",
            "firstTimestamp": "2026-12-01T00:00:00Z",
            "lastTimestamp": "2026-12-01T00:00:00Z",
            "count": 1,
            "source": {"component": "modelrollout"},
        }

    return {
        "ModelDeployment status patch": lambda i: objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, NAMESPACE, PLURAL, names[i], {"status": {"message": stamp()}}
        ),
        "ModelDeployment metadata patch": lambda i: objects.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, names[i], {"metadata": {"annotations": {"bench": stamp()}}}
        ),
        "ModelDeployment GET": lambda i: objects.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, names[i]
        ),
        "ConfigMap patch": lambda i: core.patch_namespaced_config_map(names[i], NAMESPACE, {"data": {"a": stamp()}}),
        "Event create": lambda i: core.create_namespaced_event(NAMESPACE, event(i)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=600, help="requests of each kind in a round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    api = ensure_cluster().api_client()
    core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
    names = [f"w{i}" for i in range(args.count)]
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    try:
        log(f"creating {args.count} ModelDeployments and ConfigMaps")
        for name in names:
            objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, served_model(name, "v1"))
            core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": name}, "data": {"a": "b"}})
        kinds = requests(api, names)
        measured: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
        for round_ in range(args.rounds):
            for kind, request in kinds.items():
                measured[kind].append(cost(args.count, request))
                log(f"round {round_ + 1}, {kind}: {measured[kind][-1][0]:.2f} ms")
    finally:
        core.delete_namespace(NAMESPACE)
    print(f"\n{args.count} requests of each kind, 8 at a time, {args.rounds} rounds\n")
    print("| request | kube-apiserver CPU per request, ms (median; range) | wall per batch, s (median) |")
    print("|---|---|---|")
    for kind, rounds in measured.items():
        millis = sorted(m for m, _ in rounds)
        wall = statistics.median(w for _, w in rounds)
        print(f"| {kind} | {statistics.median(millis):.2f} ({millis[0]:.2f}-{millis[-1]:.2f}) | {wall:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
