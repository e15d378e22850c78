"""Argo Rollouts as the peer in bench/bench_peers.py: its controller as a local process, and its data plane.

Why separate from e2e/harness: the harness serves ModelDeployments (Deployments labelled by our
operator); a Rollout owns ReplicaSets labelled ``rollouts-pod-template-hash`` instead. The data
plane here plays the same part for them: one sample model-server process per ReplicaSet with
replicas (started with the pod template's container ``args``), registered with the local
Prometheus under the same labels (``namespace``, ``revision`` = the pod template hash, ``role``,
``model``), and traffic weights read from the API server (the ReplicaSets' replicas, as a
Service spreading requests over pods would split them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

import yaml
from kubernetes import client

from e2e.dataplane.servers import ServerHandle, ServerSpec, start_servers

GROUP, VERSION = "argoproj.io", "v1alpha1"
HASH_LABEL = "rollouts-pod-template-hash"
JOB = "model-server"
BUILD_PY = Path(__file__).resolve().parents[2] / "hack" / "peers" / "argo-rollouts" / "build.py"
log = logging.getLogger(__name__)


def built_argo() -> Path:
    """The cache folder with ``bin/rollouts-controller`` and ``crds/``, building it once if needed."""
    result = subprocess.run(
        [sys.executable, str(BUILD_PY), "build"], capture_output=True, text=True, check=False, cwd=BUILD_PY.parent
    )
    if result.returncode != 0:
        raise RuntimeError(f"building Argo Rollouts failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def documents(path: Path, **placeholders: str) -> list[dict[str, Any]]:
    """The YAML documents of a fixture, with ``@NAME@`` placeholders filled in."""
    text = path.read_text()
    for name, value in placeholders.items():
        text = text.replace(f"@{name.upper()}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise ValueError(f"{path}: placeholders not filled: {sorted(set(left))}")
    return [d for d in yaml.safe_load_all(text) if d]


class ArgoController:
    """``rollouts-controller`` against the local cluster, watching one namespace, or all when it is None.

    ``--namespaced`` takes the namespace from the kubeconfig's context, so the controller gets a
    copy of the kubeconfig with that namespace set; leader election is off; metrics and healthz
    listen on free loopback ports (the build binds them to 127.0.0.1).
    """

    def __init__(
        self, binary: Path, kubeconfig: Path, namespace: str | None, metrics_port: int, healthz_port: int
    ) -> None:
        self.binary = binary
        self.namespace = namespace
        self.metrics_port = metrics_port
        self.healthz_port = healthz_port
        self._workdir = Path(tempfile.mkdtemp(prefix="argo-rollouts-"))
        self.kubeconfig = kubeconfig
        if namespace is not None:
            config = yaml.safe_load(kubeconfig.read_text())
            for context in config["contexts"]:
                context["context"]["namespace"] = namespace
            self.kubeconfig = self._workdir / "kubeconfig"
            self.kubeconfig.write_text(json.dumps(config))
            self.kubeconfig.chmod(0o600)
        self.log_path = self._workdir / "controller.log"
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ArgoController:
        self._log = self.log_path.open("ab")
        argv = [
            str(self.binary), f"--kubeconfig={self.kubeconfig}", "--leader-elect=false",
            f"--metricsPort={self.metrics_port}", f"--healthzPort={self.healthz_port}", "--loglevel=info",
        ] + (["--namespaced"] if self.namespace is not None else [])  # fmt: skip
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_healthy(60.0)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"rollouts-controller exited with {self.process.returncode}:\n{self.logs()[-3000:]}")
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{self.healthz_port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        return
            time.sleep(0.2)
        raise TimeoutError(f"rollouts-controller not healthy after {timeout:.0f}s:\n{self.logs()[-3000:]}")

    def requests_total(self) -> float:
        """Kubernetes API requests the controller made so far (its own client-side counter)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("controller_clientset_k8s_request_total{")
        )

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


class ArgoDataPlane:
    """Model servers for a Rollout's ReplicaSets, and the traffic split their replicas imply."""

    def __init__(self, api: client.ApiClient, prometheus: Any, namespace: str, rollout: str, *, poll: float = 0.25):
        self._apps = client.AppsV1Api(api)
        self._objects = client.CustomObjectsApi(api)
        self._prometheus = prometheus
        self.namespace = namespace
        self.rollout = rollout
        self._poll = poll
        self._servers: dict[str, ServerHandle] = {}
        self._roles: dict[str, str] = {}
        self._selector: str | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="argo-dataplane", daemon=True)

    def __enter__(self) -> ArgoDataPlane:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with self._lock:
            for name in list(self._servers):
                self._stop_server(name)

    def status(self) -> dict[str, Any]:
        found = self._objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "rollouts", self.rollout)
        return dict(found.get("status") or {})

    def server(self, pod_hash: str) -> ServerHandle | None:
        with self._lock:
            return next((s for s in self._servers.values() if s.revision == pod_hash), None)

    def replica_sets(self) -> list[Any]:
        selector = self._rollout_selector()
        return list(self._apps.list_namespaced_replica_set(self.namespace, label_selector=selector).items)

    def replicas(self) -> dict[str, int]:
        """Pod template hash -> spec.replicas, for every ReplicaSet of the Rollout."""
        return {rs.metadata.labels[HASH_LABEL]: rs.spec.replicas or 0 for rs in self.replica_sets()}

    def weights(self) -> dict[str, float]:
        """URL -> share, as a Service over all the Rollout's pods would split: by replicas."""
        shares: dict[str, float] = {}
        for pod_hash, replicas in self.replicas().items():
            server = self.server(pod_hash)
            if server is not None and replicas > 0:
                shares[server.url] = float(replicas)
        return shares

    def _rollout_selector(self) -> str:
        if self._selector is None:
            found = self._objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "rollouts", self.rollout)
            labels = found["spec"]["selector"]["matchLabels"]
            self._selector = ",".join(f"{key}={value}" for key, value in labels.items())
        return self._selector

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except client.ApiException as error:
                if error.status != 404:  # the Rollout not created yet is the only expected miss
                    log.exception("argo data plane sync failed")
            except Exception:
                log.exception("argo data plane sync failed")
            self._stop.wait(self._poll)

    def _sync(self) -> None:
        stable = self.status().get("stableRS")
        wanted = {rs.metadata.name: rs for rs in self.replica_sets() if (rs.spec.replicas or 0) > 0}
        with self._lock:
            for name in set(self._servers) - set(wanted):
                self._stop_server(name)
            for name, rs in wanted.items():
                role = "stable" if rs.metadata.labels[HASH_LABEL] == stable else "canary"
                if name not in self._servers:
                    self._start_server(name, rs, role)
                elif self._roles[name] != role:
                    self._roles[name] = role
                    self._register(name)

    def _start_server(self, name: str, rs: Any, role: str) -> None:
        container = rs.spec.template.spec.containers[0]
        env = {e.name: e.value for e in container.env or []}
        spec = ServerSpec(
            revision=rs.metadata.labels[HASH_LABEL],
            role="canary" if role == "canary" else "stable",
            model=env.get("MODEL_NAME", "next-day-returns"),
            version=env.get("MODEL_VERSION"),
            extra_args=tuple(container.args or ()),
        )
        (handle,) = start_servers([spec], wait_healthy=False, timeout=20)
        self._servers[name] = handle
        self._roles[name] = role
        self._register(name)

    def _register(self, name: str) -> None:
        handle = self._servers[name]
        labels = {
            "revision": handle.revision,
            "role": self._roles[name],
            "model": handle.spec.model,
            "namespace": self.namespace,
        }
        self._prometheus.add_target(JOB, f"127.0.0.1:{handle.port}", labels)

    def _stop_server(self, name: str) -> None:
        handle = self._servers.pop(name)
        self._roles.pop(name, None)
        self._prometheus.remove_target(JOB, f"127.0.0.1:{handle.port}")
        handle.stop()
