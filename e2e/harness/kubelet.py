"""A local stand-in for the kubelet, for the parts of a pod that matter to modelrollout.

On the local control plane kwok makes pods *look* Ready but runs nothing. This
harness makes the data plane real instead of pretending:

* every Deployment a ModelDeployment owns, while it has replicas, is served by
  one sample model-server process on loopback started with the pod template's
  container ``args`` (so faults are declared in the manifest, as on kind), and
  registered with the local Prometheus under the labels a ServiceMonitor would
  give it (``revision``, ``role``, ``model``, ``namespace``);
* every built-in smoke Job pod is executed for real: its ``modelrollout smoke``
  command runs as a local process against the server the canary Service points
  to, and the pod's status is set from its exit code and termination message,
  so the Job controller, not the test, decides the Job's outcome. (kwok leaves
  these pods Running: the local cluster's stages exclude them.)

It also tells the load generator where traffic goes, from the router's state
in the API server (HTTPRoute weights, or replica counts behind the root Service).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e.dataplane.servers import ServerHandle, ServerSpec, start_servers
from tests.support import waiting

MODEL_DEPLOYMENT_LABEL = "modelrollout.dev/model-deployment"
REVISION_LABEL = "modelrollout.dev/revision"
ROLE_LABEL = "modelrollout.dev/role"
SMOKE_KIND_LABEL = "modelrollout.dev/smoke-kind"
JOB = "model-server"
SERVICE_WAIT_SECONDS = 30.0
log = logging.getLogger(__name__)


@dataclass
class _Served:
    handle: ServerHandle
    role: str
    model: str


class LocalKubelet:
    """Runs model servers for Deployments and built-in smoke Jobs, in one namespace."""

    def __init__(self, api: client.ApiClient, prometheus: Any, namespace: str, *, poll: float = 0.25) -> None:
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)
        self._objects = client.CustomObjectsApi(api)
        self._prometheus = prometheus
        self.namespace = namespace
        self._poll = poll
        self._servers: dict[str, _Served] = {}
        self._smoke_done: set[str] = set()
        self._smoke_running: dict[str, threading.Thread] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-kubelet", daemon=True)
        self._workdir = Path(tempfile.mkdtemp(prefix="modelrollout-kubelet-"))
        self.smoke_runs: list[dict[str, Any]] = []

    def __enter__(self) -> LocalKubelet:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for thread in list(self._smoke_running.values()):
            thread.join(timeout=30)
        with self._lock:
            for deployment in list(self._servers):
                self._stop_server(deployment)

    # --- what tests read ------------------------------------------------------------------------------------

    def server(self, revision: str) -> ServerHandle | None:
        with self._lock:
            return next((s.handle for s in self._servers.values() if s.handle.revision == revision), None)

    def servers(self) -> dict[str, ServerHandle]:
        with self._lock:
            return {name: served.handle for name, served in self._servers.items()}

    def service_url(self, service: str) -> str | None:
        """The loopback URL of the server the Service's selector picks (one revision per Service here)."""
        try:
            found = self._core.read_namespaced_service(service, self.namespace)
        except client.ApiException:
            return None
        revision = (found.spec.selector or {}).get(REVISION_LABEL)
        server = self.server(revision) if revision else None
        return server.url if server else None

    def weights(self, model_deployment: str) -> dict[str, float]:
        """Where a gateway would send traffic for one ModelDeployment right now: URL -> share."""
        spec = self._objects.get_namespaced_custom_object(
            "modelrollout.dev", "v1alpha1", self.namespace, "modeldeployments", model_deployment
        )["spec"]
        routing = spec.get("trafficRouting") or {}
        if routing.get("router") == "gatewayAPI":
            return self.route_weights(
                routing["gatewayAPI"]["httpRoute"], int(routing["gatewayAPI"].get("ruleIndex", 0))
            )
        return self._replica_weights(model_deployment)

    def route_weights(self, route: str, rule_index: int = 0) -> dict[str, float]:
        """URL -> weight of an HTTPRoute's weighted rule, as a gateway would split (header rules aside)."""
        found = self._objects.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", self.namespace, "httproutes", route
        )
        rules = [r for r in found["spec"].get("rules", []) if not str(r.get("name", "")).startswith("modelrollout-")]
        refs = rules[rule_index].get("backendRefs", []) if rule_index < len(rules) else []
        shares: dict[str, float] = {}
        for ref in refs:
            url = self.service_url(ref["name"])
            if url is not None and int(ref.get("weight", 1)) > 0:
                shares[url] = shares.get(url, 0.0) + float(ref.get("weight", 1))
        return shares

    def _replica_weights(self, model_deployment: str) -> dict[str, float]:
        deployments = self._apps.list_namespaced_deployment(
            self.namespace, label_selector=f"{MODEL_DEPLOYMENT_LABEL}={model_deployment}"
        ).items
        shares: dict[str, float] = {}
        for deployment in deployments:
            labels = deployment.spec.template.metadata.labels or {}
            server = self.server(labels.get(REVISION_LABEL, ""))
            replicas = deployment.spec.replicas or 0
            if server is not None and replicas > 0 and labels.get("modelrollout.dev/pool") == "serving":
                shares[server.url] = float(replicas)
        return shares

    # --- the loop ---------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync_servers()
                self._sync_smoke_pods()
            except Exception:
                log.exception("local kubelet sync failed")
            self._stop.wait(self._poll)

    def _sync_servers(self) -> None:
        deployments = self._apps.list_namespaced_deployment(self.namespace, label_selector=MODEL_DEPLOYMENT_LABEL).items
        wanted = {d.metadata.name: d for d in deployments if (d.spec.replicas or 0) > 0}
        with self._lock:
            for name in set(self._servers) - set(wanted):
                self._stop_server(name)
            for name, deployment in wanted.items():
                role = (deployment.metadata.labels or {}).get(ROLE_LABEL, "stable")
                served = self._servers.get(name)
                if served is None:
                    self._start_server(name, deployment, role)
                elif served.role != role:
                    served.role = role
                    self._register(served)

    def _start_server(self, name: str, deployment: Any, role: str) -> None:
        template = deployment.spec.template
        labels = template.metadata.labels or {}
        container = template.spec.containers[0]
        env = {e.name: e.value for e in container.env or []}
        spec = ServerSpec(
            revision=labels[REVISION_LABEL],
            role="canary" if role == "canary" else "stable",
            model=env.get("MODEL_NAME", "next-day-returns"),
            version=env.get("MODEL_VERSION"),
            extra_args=tuple(container.args or ()),
        )
        (handle,) = start_servers([spec], wait_healthy=False, timeout=20)
        served = _Served(handle=handle, role=role, model=spec.model)
        self._servers[name] = served
        self._register(served)
        log.info("serving %s (revision %s) on %s", name, spec.revision, handle.url)

    def _register(self, served: _Served) -> None:
        labels = {
            "revision": served.handle.revision,
            "role": served.role,
            "model": served.model,
            "namespace": self.namespace,
        }
        self._prometheus.add_target(JOB, f"127.0.0.1:{served.handle.port}", labels)

    def _stop_server(self, name: str) -> None:
        served = self._servers.pop(name)
        self._prometheus.remove_target(JOB, f"127.0.0.1:{served.handle.port}")
        served.handle.stop()

    def _sync_smoke_pods(self) -> None:
        pods = self._core.list_namespaced_pod(self.namespace, label_selector=f"{SMOKE_KIND_LABEL}=builtin").items
        for pod in pods:
            name = pod.metadata.name
            if name in self._smoke_done or name in self._smoke_running:
                continue
            if pod.status is None or pod.status.phase != "Running":
                continue
            thread = threading.Thread(target=self._run_smoke, args=(pod,), name=f"smoke-{name}", daemon=True)
            self._smoke_running[name] = thread
            thread.start()

    def _run_smoke(self, pod: Any) -> None:
        name = pod.metadata.name
        started = datetime.now(UTC)
        try:
            exit_code, message = self._execute(pod)
        except Exception as error:  # the harness itself failed: the pod fails, visibly
            exit_code, message = 2, f"local kubelet could not run the pod: {error}"
        self.smoke_runs.append({"pod": name, "exitCode": exit_code, "message": message})
        finished = datetime.now(UTC)
        container = pod.spec.containers[0]
        status = {
            "status": {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
                "containerStatuses": [
                    {
                        "name": container.name,
                        "image": container.image,
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": exit_code,
                                "reason": "Completed" if exit_code == 0 else "Error",
                                "message": message[-4000:],
                                "startedAt": started.isoformat(),
                                "finishedAt": finished.isoformat(),
                            }
                        },
                    }
                ],
            }
        }
        with contextlib.suppress(client.ApiException):
            self._core.patch_namespaced_pod_status(name, self.namespace, status)
        self._smoke_done.add(name)
        self._smoke_running.pop(name, None)

    def _execute(self, pod: Any) -> tuple[int, str]:
        """Run the pod's container command here, with cluster DNS names and mounted files made local."""
        container = pod.spec.containers[0]
        args = list(container.args or [])
        workdir = Path(tempfile.mkdtemp(dir=self._workdir))
        mounts = self._materialise_volumes(pod, workdir)
        translated = [self._localise(arg, mounts) for arg in args]
        termination = workdir / "termination-log"
        termination.touch()
        command = [sys.executable, "-m", "modelrollout", *translated, "--termination-log", str(termination)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        message = termination.read_text().strip() or (result.stdout + result.stderr).strip()
        return result.returncode, message

    def _localise(self, arg: str, mounts: dict[str, Path]) -> str:
        for mount_path, local in mounts.items():
            if arg.startswith(mount_path):
                return str(local) + arg[len(mount_path) :]
        if arg.startswith("http://") and ".svc" in arg:
            service = arg.removeprefix("http://").split(".", 1)[0]
            # The server behind the Service may still be starting: a real pod would retry DNS and connect.
            # If it never comes, the command meets a closed port, as a pod would meet a refused connection.
            with contextlib.suppress(AssertionError):
                return waiting.wait_for(
                    lambda: self.service_url(service), SERVICE_WAIT_SECONDS, message=f"Service {service}"
                )
            return "http://127.0.0.1:9"
        return arg

    def _materialise_volumes(self, pod: Any, workdir: Path) -> dict[str, Path]:
        mounts: dict[str, Path] = {}
        volumes = {v.name: v for v in pod.spec.volumes or []}
        for mount in pod.spec.containers[0].volume_mounts or []:
            volume = volumes.get(mount.name)
            if volume is None or volume.config_map is None:
                continue
            local = workdir / mount.name
            local.mkdir()
            config_map = self._core.read_namespaced_config_map(volume.config_map.name, self.namespace)
            for key, value in (config_map.data or {}).items():
                (local / key).write_text(value)
            mounts[mount.mount_path] = local
        return mounts


def wait_for(predicate: Any, timeout: float, interval: float = 0.2, message: str = "condition") -> Any:
    """:func:`tests.support.waiting.wait_for`, with ``interval`` also positional as the benchmarks pass it."""
    return waiting.wait_for(predicate, timeout, interval=interval, message=message)


# --- on a real cluster ------------------------------------------------------------------------------------

KUBELET_MODE = "MODELROLLOUT_TEST_KUBELET"
NODEPORTS = "MODELROLLOUT_TEST_NODEPORTS"
NODEPORT_LABEL = "e2e.modelrollout.dev/nodeport-for"


@dataclass
class ClusterServer:
    """A revision's pods on a real cluster, as the tests see a local server: a loopback URL and faults."""

    api: client.ApiClient
    namespace: str
    selector: str
    revision: str
    role: str
    port: int
    """The NodePort (mapped to 127.0.0.1 by kind's extraPortMappings)."""
    target_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _pods(self) -> list[str]:
        pods = client.CoreV1Api(self.api).list_namespaced_pod(self.namespace, label_selector=self.selector).items
        return [p.metadata.name for p in pods if p.status.phase == "Running"]

    def _each_pod(self, method: str, path: str, body: Any = None) -> list[Any]:
        answers = []
        for pod in self._pods():
            answer, _, _ = self.api.call_api(
                f"/api/v1/namespaces/{self.namespace}/pods/{pod}:{self.target_port}/proxy/{path}",
                method,
                body=body,
                header_params={"Content-Type": "application/json", "Accept": "application/json"},
                auth_settings=["BearerToken"],
                response_type="object",
                _return_http_data_only=False,
            )
            answers.append(answer)
        return answers

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Every running pod of the revision gets the faults (the Service spreads traffic over all of them)."""
        answers = self._each_pod("POST", "admin/fault", changes)
        if not answers:
            raise ValueError(f"no running pod for revision {self.revision}")
        return dict(answers[-1])

    def clear_faults(self) -> None:
        self._each_pod("DELETE", "admin/fault")


class ClusterKubelet(LocalKubelet):
    """LocalKubelet's interface on a real cluster: real kubelets run the pods, this only watches.

    Each revision with replicas gets a NodePort Service from the pool in MODELROLLOUT_TEST_NODEPORTS
    (kind maps those ports to 127.0.0.1) so the load generator reaches it; Prometheus discovers the
    pods itself; ``smoke_runs`` is read from the real smoke pods' termination states.
    """

    def __init__(self, api: client.ApiClient, namespace: str, ports: range, *, poll: float = 0.5) -> None:
        super().__init__(api, None, namespace, poll=poll)
        self._api = api
        self._pool = ports
        self._cluster: dict[str, ClusterServer] = {}

    def server(self, revision: str) -> Any:
        with self._lock:
            return next((s for s in self._cluster.values() if s.revision == revision), None)

    def servers(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._cluster)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._lock:
            for name in list(self._cluster):
                self._unexpose(name)

    def _sync_servers(self) -> None:
        deployments = self._apps.list_namespaced_deployment(self.namespace, label_selector=MODEL_DEPLOYMENT_LABEL).items
        wanted = {d.metadata.name: d for d in deployments if (d.spec.replicas or 0) > 0}
        with self._lock:
            for name in set(self._cluster) - set(wanted):
                self._unexpose(name)
            for name, deployment in wanted.items():
                role = "canary" if (deployment.metadata.labels or {}).get(ROLE_LABEL) == "canary" else "stable"
                if name in self._cluster:
                    self._cluster[name].role = role
                else:
                    self._expose(name, deployment, role)

    def _expose(self, name: str, deployment: Any, role: str) -> None:
        labels = deployment.spec.template.metadata.labels or {}
        selector = {MODEL_DEPLOYMENT_LABEL: labels[MODEL_DEPLOYMENT_LABEL], REVISION_LABEL: labels[REVISION_LABEL]}
        container = deployment.spec.template.spec.containers[0]
        target = next((p.container_port for p in container.ports or []), 8080)
        service_name = f"e2e-np-{labels[REVISION_LABEL]}"[:63]
        for candidate in self._pool:
            port = candidate
            body = {
                "metadata": {"name": service_name, "labels": {NODEPORT_LABEL: name}},
                "spec": {
                    "type": "NodePort",
                    "selector": selector,
                    "ports": [{"name": "http", "port": 80, "targetPort": target, "nodePort": candidate}],
                },
            }
            try:
                self._core.create_namespaced_service(self.namespace, body)
            except client.ApiException as error:
                if error.status == 422:  # port taken (another namespace, or a leftover): try the next one
                    continue
                if error.status != 409:
                    raise
                existing = self._core.read_namespaced_service(service_name, self.namespace)
                port = existing.spec.ports[0].node_port
            self._cluster[name] = ClusterServer(
                self._api,
                self.namespace,
                ",".join(f"{k}={v}" for k, v in selector.items()),
                labels[REVISION_LABEL],
                role,
                port,
                target,
            )
            log.info("revision %s of %s reachable on 127.0.0.1:%d", labels[REVISION_LABEL], name, port)
            return
        raise RuntimeError(f"no free NodePort in {self._pool.start}-{self._pool.stop - 1} for {name}")

    def _unexpose(self, name: str) -> None:
        self._cluster.pop(name, None)
        services = self._core.list_namespaced_service(self.namespace, label_selector=f"{NODEPORT_LABEL}={name}")
        for service in services.items:
            with contextlib.suppress(client.ApiException):
                self._core.delete_namespaced_service(service.metadata.name, self.namespace)

    def _sync_smoke_pods(self) -> None:
        pods = self._core.list_namespaced_pod(self.namespace, label_selector=f"{SMOKE_KIND_LABEL}=builtin").items
        for pod in pods:
            name = pod.metadata.name
            if name in self._smoke_done:
                continue
            for status in (pod.status.container_statuses or []) if pod.status else []:
                terminated = status.state.terminated if status.state else None
                if terminated is not None:
                    message = terminated.message or ""
                    self.smoke_runs.append({"pod": name, "exitCode": terminated.exit_code, "message": message})
                    self._smoke_done.add(name)


def kubelet_for(api: client.ApiClient, prometheus: Any, namespace: str) -> LocalKubelet:
    """The local kubelet harness, or with MODELROLLOUT_TEST_KUBELET=cluster a watcher of the real kubelets."""
    if os.environ.get(KUBELET_MODE) == "cluster":
        first, _, last = os.environ.get(NODEPORTS, "30080-30089").partition("-")
        return ClusterKubelet(api, namespace, range(int(first), int(last or first) + 1))
    return LocalKubelet(api, prometheus, namespace)
