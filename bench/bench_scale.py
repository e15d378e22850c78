"""A fleet of ModelDeployments at rest on one operator: what it costs, and how fast a change is acted on.

Fleets of ``--sizes`` ModelDeployments (100 per namespace, the replicas router, one replica,
no smoke test, no guardrails: a model served and at rest) are created on the local control
plane and reconciled by one operator process with its default settings. Once every one is
Healthy, the operator's work queue is empty (when it has one: ``modelrollout_workqueue_depth``)
and a settling pause has passed, for ``--rest-seconds``:

* **API requests at rest, counted by the API server itself.** The operator runs as its own
  ServiceAccount, which the chart's FlowSchema (``flowControl.enabled``) puts in its own flow; the API server's
  ``apiserver_flowcontrol_dispatched_requests_total`` for that flow schema is read before and
  after. Watches count once, when they start.
* **Operator CPU** (user + system time from ``/proc``) and **RSS** at the end.

Then ``--changes`` spec changes, one at a time, each to a ModelDeployment at rest: the time from
the API server accepting the patch to the canary's Deployment existing (the bench polls for it
every 20 ms as an administrator, outside the operator's flow), reported as p50 and p99.

``--peer argo`` measures Argo Rollouts v1.10.2 the same way on a fleet of equivalent Rollouts
(``bench/peers/argo_fleet.py``): its own ServiceAccount and FlowSchema, so the API server counts
its requests as it counts ours, and a canary is its new ReplicaSet.

``--operator-path`` runs another checkout's operator (its ``operator/`` directory first on
PYTHONPATH), so an older commit is measured the same way: give a ``git worktree`` of it.

Run: ``python bench/bench_scale.py --sizes 100,1000 [--rest-seconds 60] [--changes 30]``
(prints Markdown; progress on stderr). Starts the local cluster if it is not running and leaves it
running; deletes its namespaces and stops its operator at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from bench import growth  # noqa: E402
from bench.fleet import Fleet, wait_until  # noqa: E402
from bench.peers import argo, argo_fleet  # noqa: E402

from e2e.harness.operator import OperatorProcess  # noqa: E402
from e2e.harness.scenario import served_model  # noqa: E402
from hack.localcluster import cluster  # noqa: E402
from hack.localcluster.harness import LocalCluster  # noqa: E402

GROUP, VERSION, PLURAL = "modelrollout.dev", "v1alpha1", "modeldeployments"
FLOW_SCHEMA = "mrscale-modelrollout-operator"
"""The chart's flow schema (``flowControl.enabled``), rendered for release ``mrscale``."""
SYSTEM_NAMESPACE = "mrscale-system"
ACCOUNT = "operator"
OWNER_LABEL = "modelrollout.dev/model-deployment"
REVISION_LABEL = "modelrollout.dev/revision"
ACTION, ACTION_ID = "modelrollout.dev/action", "modelrollout.dev/action-id"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ensure_cluster() -> LocalCluster:
    result = subprocess.run(
        [sys.executable, "hack/localcluster/cluster.py", "up"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"`hack/localcluster/cluster.py up` failed:\n{result.stderr[-4000:]}")
    layout = cluster.Layout.current()
    local = LocalCluster(kubeconfig=cluster.KUBECONFIG, kubectl_bin=str(layout.binary("kubectl")), started_here=False)
    crds = str(ROOT / "crds")
    local.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=bench-scale", "-f", crds)
    local.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", crds)
    return local


def operator_identity(local: LocalCluster, api: client.ApiClient, folder: Path, account: str, flows: str) -> Path:
    """A ServiceAccount for the controller, ``flows`` (its FlowSchema), and a kubeconfig with its token."""
    core = client.CoreV1Api(api)
    with contextlib.suppress(client.ApiException):
        core.create_namespace({"metadata": {"name": SYSTEM_NAMESPACE}})
    with contextlib.suppress(client.ApiException):
        core.create_namespaced_service_account(SYSTEM_NAMESPACE, {"metadata": {"name": account}})
    manifests = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"mrscale-{account}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": SYSTEM_NAMESPACE}],
        },
    ]
    documents = yaml.safe_dump_all(manifests) + "---\n" + flows
    local.kubectl("apply", "--server-side", "--field-manager=bench-scale", "-f", "-", stdin=documents)
    token = core.create_namespaced_service_account_token(
        account, SYSTEM_NAMESPACE, {"spec": {"expirationSeconds": 6 * 3600}}
    ).status.token
    admin = yaml.safe_load(cluster.KUBECONFIG.read_text())
    server = admin["clusters"][0]["cluster"]
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": server}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": account}}],
        "current-context": "operator",
    }
    path = folder / f"{account}.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


def flow_control() -> str:
    """The chart's FlowSchema and PriorityLevelConfiguration for the operator's ServiceAccount."""
    helm = Path.home() / ".cache" / "modelrollout" / "tools" / "bin" / "helm"
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            "mrscale",
            str(ROOT / "charts" / "modelrollout"),
            "--kube-version=1.36.0",
            f"--namespace={SYSTEM_NAMESPACE}",
            "--set=flowControl.enabled=true",
            f"--set=serviceAccount.name={ACCOUNT}",
            "--show-only=templates/flowcontrol.yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return rendered.stdout


def dispatched(local: LocalCluster, flow: str) -> float:
    """Requests of the controller's flow the API server has dispatched so far (its own metric)."""
    return dispatched_by_flow(local).get(flow, 0.0)


def dispatched_by_flow(local: LocalCluster) -> dict[str, float]:
    """Requests the API server has dispatched so far, by flow schema: who its clients are."""
    totals: dict[str, float] = {}
    for line in local.kubectl("get", "--raw", "/metrics").splitlines():
        if line.startswith("apiserver_flowcontrol_dispatched_requests_total{"):
            flow = line.split('flow_schema="', 1)[1].split('"', 1)[0]
            totals[flow] = totals.get(flow, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


QUIET_WINDOW_SECONDS = 10.0
QUIET_REQUESTS = 20
"""At most this many requests of every other client (all but the bench's own, which are exempt, and the
controller's) in a window: the controller manager has caught up with the fleet's growth."""


def others_quiet(local: LocalCluster, flow: str) -> bool:
    """Whether the other clients sent at most :data:`QUIET_REQUESTS` in the last :data:`QUIET_WINDOW_SECONDS`.

    A burst measured while the controller manager still works through the growth's backlog (its ReplicaSet
    and endpoint writes, minutes behind at 10,000) measures that backlog too.
    """
    before = dispatched_by_flow(local)
    time.sleep(QUIET_WINDOW_SECONDS)
    after = dispatched_by_flow(local)
    others = sum(n - before.get(f, 0.0) for f, n in after.items() if f not in (flow, "exempt"))
    log(f"other clients: {others:.0f} requests in {QUIET_WINDOW_SECONDS:.0f} s")
    return others <= QUIET_REQUESTS


def requests_by_call(local: LocalCluster) -> dict[tuple[str, str], float]:
    """``apiserver_request_total`` by (verb, resource), every client: what the requests were."""
    counts: dict[tuple[str, str], float] = {}
    for line in local.kubectl("get", "--raw", "/metrics").splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(part.split("=", 1) for part in line[line.index("{") + 1 : line.rindex("}")].split(","))
        resource, subresource = labels.get("resource", "").strip('"'), labels.get("subresource", "").strip('"')
        key = (labels.get("verb", "").strip('"'), f"{resource}/{subresource}" if subresource else resource)
        counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


CONTROL_PLANE = ("kube-apiserver", "etcd")
CONTROL_PLANE_CPU = (*CONTROL_PLANE, "kube-controller", "kube-scheduler", "kwok")
"""Every process of the local control plane, by ``/proc`` name (the controller manager's is cut at 15 bytes)."""


def control_plane_rss() -> dict[str, float]:
    """RSS of the local control plane's API server and etcd, by process name (they run on this machine)."""
    return by_process(CONTROL_PLANE, rss_mib)


def control_plane_cpu() -> dict[str, float]:
    """CPU seconds (user and system) each control-plane process has used so far."""
    return by_process(CONTROL_PLANE_CPU, cpu_seconds)


def by_process(names: tuple[str, ...], measure: Callable[[int], float]) -> dict[str, float]:
    """``measure`` of every process named one of ``names``, summed by name."""
    found: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            name = stat.read_text().split("(", 1)[1].split(")", 1)[0]
            if name in names:
                found[name] = found.get(name, 0.0) + measure(int(stat.parent.name))
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class ModelDeployments(Fleet):
    """The bench's ModelDeployments, 100 per namespace."""

    group, version, plural = GROUP, VERSION, PLURAL

    def document(self, name: str) -> dict[str, Any]:
        return served_model(name, "v1", model="scale")

    def workloads_of(self, item: tuple[str, str]) -> set[str]:
        namespace, name = item
        found = client.AppsV1Api(self.api).list_namespaced_deployment(namespace, label_selector=f"{OWNER_LABEL}={name}")
        return {d.metadata.name for d in found.items}

    def canary_replicas(self, item: tuple[str, str], revision: str) -> int:
        namespace, name = item
        found = client.AppsV1Api(self.api).list_namespaced_deployment(
            namespace, label_selector=f"{OWNER_LABEL}={name},{REVISION_LABEL}={revision}"
        )
        return sum(d.spec.replicas or 0 for d in found.items)

    def version_patch(self, version: str) -> dict[str, Any]:
        return {"spec": {"model": {"version": version}}}

    def start_canary(self, item: tuple[str, str], version: str) -> str:
        self.patch(item, self.version_patch(version))
        wait_until("the victim's canary in traffic", lambda: int(self.status(item).get("canaryWeight") or 0) > 0, 300)
        return str(self.status(item)["currentRevision"]["hash"])

    def abort(self, item: tuple[str, str]) -> None:
        self.patch(item, {"metadata": {"annotations": {ACTION: "abort", ACTION_ID: uuid.uuid4().hex}}})

    def rolled_back(self, item: tuple[str, str], canary: str) -> bool:
        """The canary at 0 replicas, and the status at 0%."""
        return int(self.status(item).get("canaryWeight") or 0) == 0 and self.canary_replicas(item, canary) == 0

    workload_path, workload_selector = "/apis/apps/v1/deployments", OWNER_LABEL

    def owner_of(self, meta: dict[str, Any]) -> tuple[str, str]:
        return meta["namespace"], meta["labels"][OWNER_LABEL]


def poll_seconds(size: int) -> float:
    """How often to read every status of a fleet of ``size``: the reads are themselves load on the API server
    being measured (at 10,000, every 2 s would serialise all 10,000 ModelDeployments), so they are spaced
    with the fleet's size."""
    return max(2.0, size / 500)


def no_earlier_fleet(api: client.ApiClient) -> bool:
    names = [ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items]
    return not [name for name in names if name.startswith("mrscale") and name != SYSTEM_NAMESPACE]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def queue_depth(port: int) -> float | None:
    """The operator's ModelDeployment work queue (None: an operator without one, the timer-driven kind)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    for line in text.splitlines():
        if line.startswith('modelrollout_workqueue_depth{kind="modeldeployment"}'):
            return float(line.rsplit(" ", 1)[1])
    return None


@contextlib.contextmanager
def running_operator(kubeconfig: Path, operator_path: str | None, metrics_port: int) -> Iterator[OperatorProcess]:
    """The operator as a default install runs it: every namespace, one watch per kind."""
    extra = {
        "MODELROLLOUT_RESYNC_SECONDS": "300" if operator_path is None else "30",
        "MODELROLLOUT_METRICS_PORT": str(metrics_port),
    }
    if operator_path:
        extra["PYTHONPATH"] = f"{Path(operator_path) / 'operator'}:{os.environ.get('PYTHONPATH', '')}"
    process = OperatorProcess(kubeconfig, "http://127.0.0.1:9", tick=1.0, extra_env=extra, namespaces=None)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def profiled(pid: int, output: Path | None) -> Iterator[None]:
    """py-spy samples the process meanwhile (50 Hz, without pausing it); its collapsed stacks go to ``output``."""
    if output is None:
        yield
        return
    beside = Path(sys.executable).with_name("py-spy")  # pip install py-spy: not a dependency of the project
    spy = str(beside) if beside.exists() else "py-spy"
    command = [spy, "record", "--pid", str(pid), "--rate", "50", "--nonblocking", "--format", "raw"]
    recorder = subprocess.Popen([*command, "--output", str(output)], stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)
        log(f"py-spy: {output}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="fleet sizes, ascending, comma-separated")
    parser.add_argument("--rest-seconds", type=float, default=60.0)
    parser.add_argument("--settle-seconds", type=float, default=30.0)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--burst", type=int, default=0, help="at the largest size: this many changes at once")
    parser.add_argument("--operator-path", help="a checkout whose operator/ to run instead of this one")
    parser.add_argument("--label", default="this checkout", help="what the table calls the operator")
    parser.add_argument("--peer", choices=["argo"], help="run Argo Rollouts v1.10.2 on a fleet of Rollouts instead")
    parser.add_argument(
        "--profile", type=Path, help="record the operator with py-spy during the burst (collapsed stacks to this file)"
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    local = ensure_cluster()
    api = local.api_client()
    prefix = f"mrscale{uuid.uuid4().hex[:4]}"
    # The operator watches every namespace: an earlier run's fleet still being deleted would be reconciled and
    # stored too, and counted in this run's memory and queue.
    wait_until("earlier runs' namespaces deleted", functools.partial(no_earlier_fleet, api), 1800, every=5.0)
    rows: list[str] = []
    grown: list[tuple[int, float, dict[str, float]]] = []
    bursts: list[str] = []
    used: set[tuple[str, str]] = set()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        if args.peer:
            argo_dir = argo.built_argo()
            local.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(argo_dir / "crds"))
            # Ours' FlowSchema and PriorityLevelConfiguration, then Argo's FlowSchema at that same level.
            flows = (
                flow_control() + "---\n" + yaml.safe_dump(argo_fleet.flow_schema(SYSTEM_NAMESPACE, "argo", FLOW_SCHEMA))
            )
            kubeconfig, flow = operator_identity(local, api, Path(folder), "argo", flows), argo_fleet.FLOW_SCHEMA
        else:
            kubeconfig, flow = operator_identity(local, api, Path(folder), ACCOUNT, flow_control()), FLOW_SCHEMA
        fleet: Fleet = argo_fleet.ArgoFleet(api, prefix) if args.peer else ModelDeployments(api, prefix)
        try:
            port = free_port()
            with contextlib.ExitStack() as stack:
                if args.peer:
                    binary = argo_dir / "bin" / "rollouts-controller"
                    argo_controller = argo.ArgoController(binary, kubeconfig, None, port, free_port())
                    process = stack.enter_context(argo_controller).process
                    assert process is not None
                    pid = process.pid
                else:
                    operator = stack.enter_context(running_operator(kubeconfig, args.operator_path, port))
                    assert operator.process is not None
                    pid = operator.process.pid
                for size in sizes:
                    log(f"{args.label}: growing the fleet to {size}")
                    started = time.monotonic()
                    fleet.grow(size)
                    healthy = functools.partial(fleet.all_healthy, size)
                    wait_until(f"{size} Healthy", healthy, 600 + size, poll_seconds(size))
                    log(f"{size} Healthy after {time.monotonic() - started:.0f} s")
                    if not args.peer and queue_depth(port) is not None:
                        wait_until("an empty work queue", lambda: queue_depth(port) == 0, 1800, every=1.0)
                        log(f"work queue empty after {time.monotonic() - started:.0f} s")
                    time.sleep(args.settle_seconds)
                    requests, cpu, calls = dispatched(local, flow), cpu_seconds(pid), requests_by_call(local)
                    time.sleep(args.rest_seconds)
                    requests, cpu = dispatched(local, flow) - requests, cpu_seconds(pid) - cpu
                    after = requests_by_call(local)
                    busiest = sorted(((after[k] - calls.get(k, 0.0), k) for k in after), reverse=True)[:6]
                    log("at rest, all clients: " + ", ".join(f"{v} {r}: {n:.0f}" for n, (v, r) in busiest if n))
                    rss = rss_mib(pid)
                    plane = control_plane_rss()
                    log("control plane RSS MiB: " + ", ".join(f"{name} {mib:.0f}" for name, mib in plane.items()))
                    grown.append((size, rss, plane))
                    per_hour = requests / size * 3600 / args.rest_seconds
                    changed = rng.sample(fleet.names[:size], args.changes)
                    latencies = [fleet.change(item, f"v-{uuid.uuid4().hex[:6]}") for item in changed]
                    rows.append(
                        f"| {args.label} | {size:,} | {rss:.0f} | {rss / size * 1024:.0f} | "
                        f"{100 * cpu / args.rest_seconds:.1f}% | {requests:.0f} | {per_hour:.2f} | "
                        f"{statistics.median(latencies):.2f} / {percentile(latencies, 0.99):.2f} |"
                    )
                    log(rows[-1])
                    used |= set(changed)
                if args.burst:
                    at_rest = functools.partial(fleet.all_healthy, sizes[-1])
                    wait_until("the fleet at rest again", at_rest, 3600, poll_seconds(sizes[-1]))
                    waited = time.monotonic()
                    wait_until("the other clients at rest", functools.partial(others_quiet, local, flow), 3600, 0)
                    log(f"the other clients at rest after {time.monotonic() - waited:.0f} s")
                    unused = [item for item in fleet.names if item not in used]
                    victim, burst = unused[0], rng.sample(unused[1:], args.burst)
                    log(f"{args.label}: {args.burst} changes at once, and an abort of a canary in traffic meanwhile")
                    before_burst, calls = dispatched_by_flow(local), requests_by_call(local)
                    plane_cpu, own_cpu = control_plane_cpu(), cpu_seconds(pid)
                    with profiled(pid, args.profile):
                        rolled_back, created = fleet.burst(burst, victim)
                    used_cpu = {name: cpu - plane_cpu.get(name, 0.0) for name, cpu in control_plane_cpu().items()}
                    used_cpu["controller"] = cpu_seconds(pid) - own_cpu
                    log(
                        "during the burst, CPU seconds: "
                        + ", ".join(f"{name} {cpu:.0f}" for name, cpu in sorted(used_cpu.items(), key=lambda x: -x[1]))
                    )
                    during, after = dispatched_by_flow(local), requests_by_call(local)
                    by_flow = sorted(((during[f] - before_burst.get(f, 0.0), f) for f in during), reverse=True)[:6]
                    log("during the burst, requests by flow schema: " + ", ".join(f"{f}: {n:.0f}" for n, f in by_flow))
                    busiest = sorted(((after[k] - calls.get(k, 0.0), k) for k in after), reverse=True)[:16]
                    log("during the burst, all clients: " + ", ".join(f"{v} {r}: {n:.0f}" for n, (v, r) in busiest))
                    bursts.append(
                        f"| {args.label} | {sizes[-1]:,} | {args.burst:,} | {created:.1f} | {rolled_back:.2f} |"
                    )
                    log(bursts[-1])
        finally:
            fleet.delete()
    print(
        f"| operator | fleet | RSS MiB | KiB per object | CPU at rest (of a core) | API requests in "
        f"{args.rest_seconds:.0f} s at rest | per object per hour | spec change -> canary Deployment, p50 / p99 s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if len(grown) >= 3:
        sizes_seen = [float(size) for size, _, _ in grown]
        print(f"\n- operator RSS: {growth.describe(sizes_seen, [rss for _, rss, _ in grown], 10_000, 'MiB')}")
        for name in CONTROL_PLANE:
            fitted = growth.describe(sizes_seen, [plane.get(name, 0.0) for _, _, plane in grown], 10_000, "MiB")
            print(f"- {name} RSS: {fitted}")
    if bursts:
        print(
            "\n| operator | fleet | changes at once | every canary Deployment created after (s) "
            "| abort during the burst -> canary at 0 replicas and 0% (s) |"
        )
        print("|---|---|---|---|---|")
        print("\n".join(bursts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
