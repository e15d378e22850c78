"""Side by side with Argo Rollouts: false rollbacks at low traffic and rollback speed, on one cluster.

Both controllers run at the same time against the same local control plane and the same
Prometheus (1 s scrape): our operator (ModelDeployment, replicas router, the spec in
``bench/peers/modeldeployment.yaml``) and Argo Rollouts v1.10.2's controller, built from its Go
module by ``hack/peers/argo-rollouts/build.py`` (Rollout with a replica canary and a
Prometheus AnalysisTemplate, ``bench/peers/argo-rollouts.yaml``). Each gets its own namespace,
model-server processes and load generator; both split traffic by replicas (20 per revision, so
5% is one canary replica).

* Healthy canaries (scenario a): 1% errors on both revisions, 2 requests/s per object; N rollouts
  per controller, spread over ``--lanes`` objects per controller rolling out at the same time
  (independent objects, each with its own servers and traffic: this only saves wall-clock time,
  as low traffic makes our rollouts long by design), both controllers at once. Counted:
  promoted, rolled back (a false rollback: the canary is as good as stable), undecided after
  ``--max-rollout-seconds``; time to promotion; Kubernetes API requests per rollout, as each
  controller counts its own (ours ``modelrollout_kube_requests_total``, Argo
  ``controller_clientset_k8s_request_total``; the API server's ``apiserver_request_total`` has
  no user-agent label to split them by).
* Bad canaries (scenario b): 20% errors on the canary, 60 requests/s, one controller at a time;
  from the first Prometheus sample showing a canary 5xx (its scrape timestamp, read back from
  Prometheus) to the router's state sending 100% to stable (canary replicas 0, polled every 50
  ms). Argo runs three times per round: with the ratio query as first written (``natural``), with
  ``or vector(0)``, and with that plus a success condition that lets NaN pass (``nan-safe``).

Run: ``python bench/bench_peers.py [--rollouts 20] [--lanes 4] [--runs 9] [--max-rollout-seconds 1800]``
(prints Markdown; progress on stderr). Starts the local cluster and Prometheus if they are not
running and leaves them running; stops everything else it started, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from bench.peers.argo import GROUP, HASH_LABEL, VERSION, ArgoController, ArgoDataPlane, built_argo, documents
from kubernetes import client

from e2e.harness.kubelet import REVISION_LABEL, LocalKubelet
from e2e.harness.operator import OperatorProcess
from e2e.harness.scenario import model_deployment
from e2e.harness.traffic import Traffic
from hack.localcluster import cluster
from hack.localcluster.harness import LocalCluster
from hack.localprom import prom
from hack.localprom.harness import LocalPrometheus
from hack.localprom.webhook import AlertReceiver

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "bench" / "peers"
ARGO_VARIANTS = ("natural", "or-vector0", "nan-safe")
POLL = 0.5


def log(message: str) -> None:
    print(f"[bench_peers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(what: str, check: Callable[[], Any], timeout: float, stop: threading.Event, every: float = POLL) -> Any:
    """Poll ``check()`` until truthy; None after ``timeout`` seconds; KeyboardInterrupt once ``stop`` is set."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop.is_set():
            raise KeyboardInterrupt(f"stopped while waiting for {what}")
        with contextlib.suppress(client.ApiException, OSError):
            value = check()
            if value:
                return value
        stop.wait(every)
    return None


def retry_conflicts(write: Callable[[], None], attempts: int = 10) -> None:
    """Run a read-modify-write again when the controller changed the object in between (HTTP 409)."""
    for attempt in range(attempts):
        try:
            write()
            return
        except client.ApiException as error:
            if error.status != 409 or attempt == attempts - 1:
                raise


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` merged into a copy of ``base``: mappings key by key, lists and scalars replaced."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def default_pause() -> str:
    """Our default step pause, read from the API models at run time (the lead may change it)."""
    from modelrollout.api.modeldeployment import CanaryStep  # noqa: PLC0415 - read at run time on purpose

    duration = CanaryStep(weight=5).pause.duration
    if not duration:
        raise SystemExit("the API's default step pause is unset: pass --pause for the peer's steps")
    return str(duration)


# --------------------------------------------------------------------------- the two controllers


class Side(Protocol):
    """What a scenario needs from a controller under test."""

    label: str
    name: str
    namespace: str
    variant: str
    """Argo's AnalysisTemplate variant; ours has one spec."""

    def deploy(self, version: str, error_rate: float, variant: str) -> None: ...
    def canary_hash(self, version: str) -> str | None: ...
    def outcome(self, version: str) -> str | None: ...
    def canary_replicas(self, pod_hash: str) -> int: ...
    def weights(self) -> dict[str, float]: ...
    def api_requests(self) -> float: ...


class Ours:
    """A ModelDeployment: the e2e sample model, our spec fixture merged over it."""

    label = "modelrollout"
    variant = "ours"

    def __init__(
        self, api: client.ApiClient, namespace: str, kubelet: LocalKubelet, metrics_port: int, name: str
    ) -> None:
        self.name = name
        self.objects = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.namespace = namespace
        self.kubelet = kubelet
        self.metrics_port = metrics_port
        self.overlay = yaml.safe_load((FIXTURES / "modeldeployment.yaml").read_text())

    def document(self, version: str, error_rate: float) -> dict[str, Any]:
        base = model_deployment(self.name, version, server_args=["--error-rate", str(error_rate)], smoke=False)
        base["spec"]["trafficRouting"] = {"router": "replicas"}
        base["spec"].pop("analysis", None)
        return deep_merge(base, self.overlay)

    def _get(self) -> dict[str, Any]:
        found = self.objects.get_namespaced_custom_object(
            "modelrollout.dev", "v1alpha1", self.namespace, "modeldeployments", self.name
        )
        return dict(found)

    def create(self, version: str, error_rate: float) -> None:
        self.objects.create_namespaced_custom_object(
            "modelrollout.dev", "v1alpha1", self.namespace, "modeldeployments", self.document(version, error_rate)
        )

    def deploy(self, version: str, error_rate: float, variant: str) -> None:
        def replace() -> None:
            live = self._get()
            live["spec"] = self.document(version, error_rate)["spec"]
            self.objects.replace_namespaced_custom_object(
                "modelrollout.dev", "v1alpha1", self.namespace, "modeldeployments", self.name, live
            )

        retry_conflicts(replace)

    def _status(self) -> dict[str, Any]:
        return dict(self._get().get("status") or {})

    def canary_hash(self, version: str) -> str | None:
        current = self._status().get("currentRevision") or {}
        return current.get("hash") if current.get("modelVersion") == version else None

    def outcome(self, version: str) -> str | None:
        status = self._status()
        current = status.get("currentRevision") or {}
        stable = status.get("stableRevision") or {}
        if current.get("modelVersion") != version:
            return None
        if status.get("phase") == "Healthy" and stable.get("modelVersion") == version:
            return "promoted"
        if status.get("aborted"):
            return "rolled back"
        return None

    def canary_replicas(self, pod_hash: str) -> int:
        found = self.apps.list_namespaced_deployment(self.namespace, label_selector=f"{REVISION_LABEL}={pod_hash}")
        return sum(d.spec.replicas or 0 for d in found.items)

    def weights(self) -> dict[str, float]:
        try:
            return self.kubelet.weights(self.name)
        except Exception:
            return {}

    def api_requests(self) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("modelrollout_kube_requests_total{")
        )


class Argo:
    """An Argo Rollout with a replica canary and background analysis (fixture argo-rollouts.yaml)."""

    label = "Argo Rollouts"
    variant = "or-vector0"

    def __init__(
        self, api: client.ApiClient, plane: ArgoDataPlane, controller: ArgoController, rollout: dict[str, Any]
    ):
        self.objects = client.CustomObjectsApi(api)
        self.name = plane.rollout
        self.namespace = plane.namespace
        self.plane = plane
        self.controller = controller
        self.rollout = copy.deepcopy(rollout)
        # One Rollout per lane: its own name and pod label, hence its own ReplicaSets and pod template hashes.
        self.rollout["metadata"]["name"] = self.name
        self.rollout["spec"]["selector"]["matchLabels"]["app"] = self.name
        self.rollout["spec"]["template"]["metadata"]["labels"]["app"] = self.name

    def with_variant(self, variant: str) -> Argo:
        """The same Rollout, labelled by the AnalysisTemplate variant it deploys with."""
        labelled = copy.copy(self)
        labelled.label, labelled.variant = f"Argo ({variant})", variant
        return labelled

    def document(self, version: str, error_rate: float, variant: str) -> dict[str, Any]:
        rollout = copy.deepcopy(self.rollout)
        server_args = ["--error-rate", str(error_rate)]
        template = model_deployment(self.name, version, server_args=server_args)["spec"]["template"]
        container = copy.deepcopy(template["spec"]["containers"][0])
        container["env"] = [
            {"name": "MODEL_NAME", "value": "next-day-returns"},
            {"name": "MODEL_VERSION", "value": version},
        ]
        rollout["spec"]["template"]["spec"]["containers"] = [container]
        rollout["spec"]["strategy"]["canary"]["analysis"]["templates"] = [{"templateName": f"error-rate-{variant}"}]
        return dict(rollout)

    def create(self, version: str, error_rate: float, variant: str) -> None:
        self.objects.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "rollouts", self.document(version, error_rate, variant)
        )

    def deploy(self, version: str, error_rate: float, variant: str) -> None:
        def replace() -> None:
            live = self.objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "rollouts", self.name)
            live["spec"] = self.document(version, error_rate, variant)["spec"]
            self.objects.replace_namespaced_custom_object(GROUP, VERSION, self.namespace, "rollouts", self.name, live)

        retry_conflicts(replace)

    def canary_hash(self, version: str) -> str | None:
        for rs in self.plane.replica_sets():
            env = {e.name: e.value for e in rs.spec.template.spec.containers[0].env or []}
            if env.get("MODEL_VERSION") == version:
                return str(rs.metadata.labels[HASH_LABEL])
        return None

    def outcome(self, version: str) -> str | None:
        pod_hash = self.canary_hash(version)
        status = self.plane.status()
        if pod_hash is None or status.get("currentPodHash") != pod_hash:
            return None
        if status.get("stableRS") == pod_hash and status.get("phase") == "Healthy":
            return "promoted"
        if status.get("abort"):
            return "rolled back"
        return None

    def canary_replicas(self, pod_hash: str) -> int:
        return self.plane.replicas().get(pod_hash, 0)

    def weights(self) -> dict[str, float]:
        try:
            return self.plane.weights()
        except Exception:
            return {}

    def api_requests(self) -> float:
        return self.controller.requests_total()


# --------------------------------------------------------------------------- scenarios


@dataclass
class Healthy:
    """Scenario a for one controller."""

    outcomes: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    requests: float = 0.0
    """The controller's Kubernetes API requests during the whole scenario (all lanes)."""


def healthy_rollouts(
    side: Side, into: Healthy, *, count: int, error_rate: float, variant: str, max_seconds: float, stop: threading.Event
) -> None:
    """``count`` rollouts of a canary as good as stable, one after another; each ends promoted,
    rolled back or undecided (then the next version supersedes it)."""
    for index in range(count):
        version = f"{side.name}-h{index + 1}"
        started = time.monotonic()
        side.deploy(version, error_rate, variant)
        decided = functools.partial(side.outcome, version)
        outcome = wait_until(f"{side.label} {version}", decided, max_seconds, stop) or "undecided"
        into.outcomes.append(outcome)
        into.seconds.append(time.monotonic() - started)
        log(f"a: {side.label} {side.name} rollout {index + 1}/{count}: {outcome} after {into.seconds[-1]:.0f} s")


@dataclass
class Bad:
    """Scenario b for one controller (and query variant)."""

    seconds: list[float] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)


def first_breach(prometheus_url: str, namespace: str, pod_hash: str, lookback: float) -> float | None:
    """Unix time of the first scrape that saw a 5xx from the canary (a raw sample, read back from Prometheus)."""
    selector = f'model_requests_total{{namespace="{namespace}",revision="{pod_hash}",code=~"5.."}}'
    query = urllib.parse.urlencode({"query": f"{selector}[{int(lookback) + 5}s]"})
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=10) as answer:
        result = json.loads(answer.read())["data"]["result"]
    times = [float(t) for series in result for t, v in series["values"] if float(v) > 0]
    return min(times) if times else None


def bad_canary(
    side: Side, version: str, *, variant: str, error_rate: float, timeout: float, prometheus: str, stop: threading.Event
) -> tuple[float | None, str]:
    """One canary failing ``error_rate`` of requests: (first 5xx sample -> 100% on stable, outcome)."""
    started = time.monotonic()
    side.deploy(version, error_rate, variant)
    pod_hash = wait_until(f"{side.label} canary {version}", lambda: side.canary_hash(version), 60, stop, 0.05)
    if pod_hash is None:
        return None, "no canary"
    if not wait_until("canary replicas", lambda: side.canary_replicas(pod_hash) > 0, 60, stop, 0.05):
        return None, "canary never scaled up"
    on_stable = wait_until("100% stable", lambda: side.canary_replicas(pod_hash) == 0, timeout, stop, 0.05)
    stable_at = time.time()
    outcome = wait_until("an outcome", lambda: side.outcome(version), 30, stop) or "undecided"
    if not on_stable:
        return None, outcome
    # The sample may land in Prometheus a scrape after it was taken: wait for it rather than read once.
    lookback = time.monotonic() - started + 5
    breach = wait_until(
        "the first 5xx sample",
        lambda: first_breach(prometheus, side.namespace, pod_hash, lookback),
        10,
        stop,
        0.5,
    )
    return (stable_at - breach if breach else None), outcome


# --------------------------------------------------------------------------- plumbing


def ensure_stack() -> tuple[LocalCluster, LocalPrometheus]:
    """The shared local cluster and Prometheus: started if not running, never stopped here."""
    for script in ("hack/localcluster/cluster.py", "hack/localprom/prom.py"):
        result = subprocess.run([sys.executable, script, "up"], cwd=ROOT, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"`{script} up` failed:\n{result.stderr[-4000:]}")
    layout = cluster.Layout.current()
    local = LocalCluster(kubeconfig=cluster.KUBECONFIG, kubectl_bin=str(layout.binary("kubectl")), started_here=False)
    settings = prom.Settings.from_env()
    prometheus = LocalPrometheus(
        url=settings.prometheus_url,
        alertmanager_url=settings.alertmanager_url,
        receiver=AlertReceiver(),
        started_here=False,
        settings=settings,
    )
    return local, prometheus


@contextlib.contextmanager
def namespace(api: client.ApiClient, prefix: str) -> Iterator[str]:
    """A fresh namespace (not ``mr-*``, so no other session's operator reconciles it), deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name, "labels": {"modelrollout.dev/bench": "peers"}}})
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except Exception as error:  # a teardown step: say so and let the rest of the teardown run
            log(f"cannot delete namespace {name} (cluster gone or restarted?): {error!r:.200}")


def delete_model_deployments(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, timeout: float = 60.0
) -> None:
    """Delete our objects while the operator still runs, so it releases its finalizers; strip what is left
    (at once when the operator is gone already, e.g. after a Ctrl-C reached the whole process group)."""
    objects = client.CustomObjectsApi(api)
    plural = ("modelrollout.dev", "v1alpha1", namespace, "modeldeployments")

    def names() -> list[str]:
        return [item["metadata"]["name"] for item in objects.list_namespaced_custom_object(*plural)["items"]]

    try:
        for name in names():
            with contextlib.suppress(client.ApiException):
                objects.delete_namespaced_custom_object(*plural, name)
        process = operator.process
        if process is not None and process.poll() is None:

            def gone() -> bool:
                return not names() or process.poll() is not None

            wait_until("ModelDeployments deleted", gone, timeout, threading.Event())
        for name in names():
            with contextlib.suppress(client.ApiException):
                objects.patch_namespaced_custom_object(*plural, name, {"metadata": {"finalizers": None}})
    except Exception as error:  # a teardown step: say so and let the rest of the teardown run
        log(f"cannot delete the ModelDeployments in {namespace} (cluster gone or restarted?): {error!r:.200}")


def install_crds(local: LocalCluster, argo_dir: Path) -> None:
    for folder in (ROOT / "crds", argo_dir / "crds"):
        local.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=bench-peers", "-f", str(folder))
        local.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(folder))


def interruptible_join(threads: list[threading.Thread], stop: threading.Event) -> None:
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(0.5)
    except BaseException:
        stop.set()
        for thread in threads:
            thread.join(30)
        raise


def run_thread(target: Callable[[], None], failures: list[BaseException], stop: threading.Event) -> threading.Thread:
    def body() -> None:
        try:
            target()
        except BaseException as error:  # surfaced by the main thread
            failures.append(error)
            stop.set()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


# --------------------------------------------------------------------------- report


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s" if values else "n/a"


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return "n/a"
    if theirs == 0:
        return "n/a (peer 0)" if ours else "equal (both 0)"
    return f"{ours / theirs:.2f}"


def report(args: argparse.Namespace, healthy: dict[str, Healthy], bad: dict[str, Bad], pause: str) -> list[str]:
    lines = [
        f"Argo Rollouts v1.10.2 (built from its Go module) and modelrollout on one local control plane and one "
        f"Prometheus (1 s scrape), analysis every 2 s, steps 5/25/50/100 with {pause} pauses (Argo; ours: its "
        "defaults), 20 replicas per revision split by replica count; specs in `bench/peers/`.",
        "",
    ]
    if healthy:
        lines += [
            f"**Healthy canaries**: {args.error_rate:.0%} errors on both revisions, {args.rate:g} requests/s, "
            f"{args.rollouts} rollouts per controller on {args.lanes} objects rolling out at once, both controllers "
            f"at the same time (Argo with the `{args.argo_query}` query); undecided = no verdict within "
            f"{args.max_rollout_seconds:.0f} s. API requests as each controller counts its own.",
            "",
            "| controller | rollouts | promoted | rolled back (false) | undecided | median time to promotion "
            "| API requests per rollout | API requests per object per second rolling out |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, result in healthy.items():
            promoted = [s for o, s in zip(result.outcomes, result.seconds, strict=True) if o == "promoted"]
            per = result.requests / len(result.outcomes) if result.outcomes else 0.0
            lines.append(
                f"| {label} | {len(result.outcomes)} | {len(promoted)} | {result.outcomes.count('rolled back')} "
                f"| {result.outcomes.count('undecided')} | {median(promoted)} | {per:.0f} "
                f"| {_per_second(result) or 0:.2f} |"
            )
        ours, theirs = healthy.get("modelrollout"), healthy.get("Argo Rollouts")
        if ours and theirs:
            rolled_back = ratio(ours.outcomes.count("rolled back"), theirs.outcomes.count("rolled back"))
            lines.append(
                f"| ratio ours / Argo | | | {rolled_back} "
                f"| | {ratio(_median_promoted(ours), _median_promoted(theirs))} "
                f"| {ratio(_per_rollout(ours), _per_rollout(theirs))} "
                f"| {ratio(_per_second(ours), _per_second(theirs))} |"
            )
        lines.append("")
    if bad:
        lines += [
            f"**Bad canaries**: {args.bad_error_rate:.0%} errors on the canary, {args.bad_rate:g} requests/s, "
            f"{args.runs} runs per row, one controller at a time; first Prometheus sample with a canary 5xx -> "
            "canary at 0 replicas (100% stable).",
            "",
            "| controller | runs | median first 5xx sample -> 100% stable | runs (s) | outcomes | ratio ours / row |",
            "|---|---|---|---|---|---|",
        ]
        ours_median = statistics.median(bad["modelrollout"].seconds) if bad.get("modelrollout", Bad()).seconds else None
        for label, row in bad.items():
            mid = statistics.median(row.seconds) if row.seconds else None
            outcomes = ", ".join(f"{row.outcomes.count(o)} {o}" for o in sorted(set(row.outcomes)))
            values = ", ".join(f"{v:.2f}" for v in row.seconds)
            lines.append(
                f"| {label} | {len(row.outcomes)} | {median(row.seconds)} | {values} | {outcomes} "
                f"| {ratio(ours_median, mid) if label != 'modelrollout' else ''} |"
            )
        lines.append("")
    return lines


def _per_second(result: Healthy) -> float | None:
    """API requests per second of rollout: our rollouts last longer at low traffic, so per rollout alone misleads."""
    return result.requests / sum(result.seconds) if result.seconds else None


def _per_rollout(result: Healthy) -> float | None:
    return result.requests / len(result.outcomes) if result.outcomes else None


def _median_promoted(result: Healthy) -> float | None:
    times = [s for o, s in zip(result.outcomes, result.seconds, strict=True) if o == "promoted"]
    return statistics.median(times) if times else None


# --------------------------------------------------------------------------- main


def promoted(side: Side, version: str) -> bool:
    return side.outcome(version) == "promoted"


def served(traffic: Traffic, requests: float) -> bool:
    return traffic.sent >= requests


def scenario_healthy(sides: list[Side], args: argparse.Namespace, stop: threading.Event) -> dict[str, Healthy]:
    """Scenario a: every lane of every controller at the same time, each lane with its own object and traffic;
    ``args.rollouts`` per controller, shared out over its lanes."""
    labels = list(dict.fromkeys(side.label for side in sides))
    results = {label: Healthy() for label in labels}
    first = {label: next(s for s in sides if s.label == label) for label in labels}
    before = {label: first[label].api_requests() for label in labels}
    failures: list[BaseException] = []
    with contextlib.ExitStack() as traffic:
        for side in sides:
            traffic.enter_context(Traffic(side.weights, rate=args.rate, feedback=False))
        threads = []
        for side in sides:
            lanes = [s for s in sides if s.label == side.label]
            share = args.rollouts // len(lanes) + (lanes.index(side) < args.rollouts % len(lanes))
            task = functools.partial(
                healthy_rollouts, side, results[side.label], count=share, error_rate=args.error_rate,
                variant=args.argo_query, max_seconds=args.max_rollout_seconds, stop=stop,
            )  # fmt: skip
            threads.append(run_thread(task, failures, stop))
        interruptible_join(threads, stop)
    if failures:
        raise failures[0]
    for label in labels:
        results[label].requests = first[label].api_requests() - before[label]
    return results


def scenario_bad(sides: list[Side], args: argparse.Namespace, stop: threading.Event) -> dict[str, Bad]:
    """Scenario b: rounds of one bad canary per controller, one controller at a time (timings on two shared
    cores), each with its own traffic, started before the canary and running until it is gone."""
    results = {side.label: Bad() for side in sides}
    for run in range(1, args.runs + 1):
        for side in sides:
            with Traffic(side.weights, rate=args.bad_rate, feedback=False) as traffic:
                if not wait_until("stable traffic", functools.partial(served, traffic, args.bad_rate), 30, stop, 0.1):
                    raise RuntimeError(f"{side.label}: no traffic reaches the stable revision")
                seconds, outcome = bad_canary(
                    side, f"b{run}-{side.variant}", variant=side.variant, error_rate=args.bad_error_rate,
                    timeout=args.bad_timeout, prometheus=args.prometheus_url, stop=stop,
                )  # fmt: skip
            results[side.label].outcomes.append(outcome)
            if seconds is not None:
                results[side.label].seconds.append(seconds)
            shown = "n/a" if seconds is None else f"{seconds:.2f} s"
            log(f"b: {side.label} run {run}/{args.runs}: {outcome}, first 5xx -> 100% stable {shown}")
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="a,b", help="a (healthy canaries), b (bad canaries), or a,b")
    parser.add_argument("--rollouts", type=int, default=20, help="healthy rollouts per controller (a)")
    parser.add_argument("--lanes", type=int, default=4, help="objects per controller rolling out at once (a)")
    parser.add_argument("--rate", type=float, default=2.0, help="requests/s in scenario a")
    parser.add_argument("--error-rate", type=float, default=0.01, help="error rate of both revisions in a")
    parser.add_argument("--max-rollout-seconds", type=float, default=1800.0, help="undecided after this (a)")
    parser.add_argument("--argo-query", choices=ARGO_VARIANTS, default="or-vector0", help="Argo's query in a")
    parser.add_argument(
        "--controllers", default="ours,argo", help="ours, argo, or ours,argo: who rolls out in scenario a"
    )
    parser.add_argument("--runs", type=int, default=9, help="bad canaries per controller and query (b)")
    parser.add_argument("--bad-rate", type=float, default=60.0, help="requests/s in scenario b")
    parser.add_argument("--bad-error-rate", type=float, default=0.2, help="the bad canary's error rate (b)")
    parser.add_argument("--bad-timeout", type=float, default=120.0, help="seconds a bad canary may stay (b)")
    parser.add_argument("--pause", help="Argo's pause after each setWeight (default: our default step pause)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    scenarios = {s.strip() for s in args.scenarios.split(",")}
    pause = args.pause or default_pause()
    stop = threading.Event()

    def terminate(*_: object) -> None:
        stop.set()
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, terminate)
    # Started in the background by a script, SIGINT may arrive ignored: Ctrl-C must still stop everything.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    local, prometheus = ensure_stack()
    args.prometheus_url = prometheus.url
    argo_dir = built_argo()
    install_crds(local, argo_dir)
    api = local.api_client()
    healthy: dict[str, Healthy] = {}
    bad: dict[str, Bad] = {}
    with contextlib.ExitStack() as stack:
        stack.callback(prometheus.cleanup)
        ns_ours = stack.enter_context(namespace(api, "peers-ours"))
        ns_argo = stack.enter_context(namespace(api, "peers-argo"))
        metrics_port = free_port()
        operator = OperatorProcess(
            local.kubeconfig,
            prometheus.url,
            tick=0.5,
            extra_env={"MODELROLLOUT_METRICS_PORT": str(metrics_port)},
            namespaces=ns_ours,
        )
        stack.enter_context(operator)
        # Runs before the operator stops (LIFO): kopf's finalizers would otherwise hold the namespace forever.
        stack.callback(delete_model_deployments, api, ns_ours, operator)
        binary = argo_dir / "bin" / "rollouts-controller"
        controller = stack.enter_context(ArgoController(binary, local.kubeconfig, ns_argo, free_port(), free_port()))
        log(f"operator log {operator.log_path}; Argo log {controller.log_path}; namespaces {ns_ours}, {ns_argo}")
        kubelet = stack.enter_context(LocalKubelet(api, prometheus, ns_ours))
        fixtures = documents(FIXTURES / "argo-rollouts.yaml", namespace=ns_argo, prometheus=prometheus.url, pause=pause)
        objects = client.CustomObjectsApi(api)
        for document in fixtures:
            if document["kind"] == "AnalysisTemplate":
                objects.create_namespaced_custom_object(GROUP, VERSION, ns_argo, "analysistemplates", document)
        rollout = next(d for d in fixtures if d["kind"] == "Rollout")
        ours: list[Ours] = []
        argo: list[Argo] = []
        controllers = {c.strip() for c in args.controllers.split(",")}
        for lane in range(args.lanes if "ours" in controllers or "b" in scenarios else 0):
            ours.append(Ours(api, ns_ours, kubelet, metrics_port, f"bench-{lane}"))
            ours[-1].create("0", args.error_rate)
        for lane in range(args.lanes if "argo" in controllers or "b" in scenarios else 0):
            name = f"bench-{lane}"
            argo.append(Argo(api, ArgoDataPlane(api, prometheus, ns_argo, name), controller, rollout))
            argo[-1].create("0", args.error_rate, args.argo_query)
            stack.enter_context(argo[-1].plane)
        sides: list[Side] = [*ours, *argo]
        for side in sides:
            if not wait_until(f"{side.label} initial", functools.partial(promoted, side, "0"), 180, stop):
                raise SystemExit(f"{side.label} {side.name}: the first version never became stable")
        log("both controllers serve version 0")
        if "a" in scenarios:
            healthy = scenario_healthy(sides, args, stop)
        if "b" in scenarios:
            variants = [argo[0].with_variant(variant) for variant in ARGO_VARIANTS]
            bad = scenario_bad([ours[0], *variants], args, stop)
    print("\n".join(report(args, healthy, bad, pause)))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        log("interrupted: every process and namespace this run started is gone")
        raise SystemExit(130) from None
