"""Shared fixtures of the end-to-end scenarios: the operator process, a namespace, the data plane.

Everything is real but the containers: the API server of the ``cluster`` fixture (the local
control plane, or the cluster of ``KUBECONFIG`` with ``MODELROLLOUT_TEST_CLUSTER=existing``),
one ``modelrollout run`` process per module, Prometheus and Alertmanager, model servers started
by the local kubelet from the pod templates, and smoke Jobs executed for real.

Scenario namespaces are named ``e2e-*`` and the operator watches only those: an integration
session running against the same cluster (its operator watches ``mr-*``) never reconciles
them, and this one never reconciles its. Assertions read status, Events, router state and
Prometheus, never logs; the operator's log is printed after a module only to help a human.

``MODELROLLOUT_E2E_RECORD=1`` also writes the objects of key moments to
``tests/data/argocd/recorded/``, where ``tests/unit/test_argocd_recorded.py`` runs the Argo CD
health checks on them. Without it nothing in the checkout changes.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from e2e.dataplane import GOLDEN_INPUTS, REPO_ROOT
from e2e.harness.kubelet import LocalKubelet
from e2e.harness.operator import OperatorProcess
from e2e.harness.scenario import GROUP, VERSION, Namespace
from e2e.harness.traffic import Traffic
from hack.localcluster.harness import LocalCluster
from hack.localprom.harness import LocalPrometheus
from modelrollout.__main__ import main as modelrollout_main
from tests.support.rollouts import settle_rollout
from tests.support.waiting import wait_for

NAME = "returns"
"""The ModelDeployment every scenario rolls out."""
NAMESPACE_PATTERN = "e2e-*"
RECORD_ENV = "MODELROLLOUT_E2E_RECORD"
RECORDED = REPO_ROOT / "tests" / "data" / "argocd" / "recorded"
OPERATOR_JOB = "modelrollout-operator"
PLURALS = {"ModelDeployment": "modeldeployments", "DriftMonitor": "driftmonitors", "Experiment": "experiments"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the operator ------------------------------------------------------------------------------------


@dataclass
class Operator:
    """The operator process of a module and where its own /metrics are served."""

    process: OperatorProcess
    metrics_port: int

    @property
    def metrics_target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def alive(self) -> bool:
        return self.process.process is not None and self.process.process.poll() is None


@pytest.fixture(scope="module")
def crds(cluster: LocalCluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s", "-f", str(REPO_ROOT / "crds"))


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, prometheus: LocalPrometheus, crds: None) -> Iterator[Operator]:
    """One ``modelrollout run`` per module, with its metrics on a free port (scraped only where a test asks)."""
    port = free_port()
    process = OperatorProcess(
        cluster.kubeconfig,
        prometheus.url,
        namespaces=NAMESPACE_PATTERN,
        extra_env={"MODELROLLOUT_METRICS_PORT": str(port)},
    )
    with process:
        yield Operator(process, port)
        print(process.logs()[-20000:])


# --- a namespace with its data plane -----------------------------------------------------------------


@dataclass
class Stage:
    """One scenario namespace with its local kubelet: where the story happens, and ways to look at it."""

    cluster: LocalCluster
    prometheus: LocalPrometheus
    operator: Operator
    ns: Namespace
    kubelet: LocalKubelet
    api: client.ApiClient
    recorded: list[Path] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.ns.name

    # reading

    def status(self, name: str = NAME) -> dict[str, Any]:
        return self.ns.status(name)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[kind], name
        )
        return found

    def condition(self, type_: str, name: str = NAME) -> dict[str, Any] | None:
        return self.ns.condition(name, type_)

    def events(self, name: str = NAME, reason: str | None = None) -> list[Any]:
        """Events about ``name`` as the API server stores them (oldest first), optionally of one reason."""
        return [e for e in self.ns.events(name) if reason is None or e.reason == reason]

    def told(self, reason: str, name: str = NAME, *, more_than: int = 0, timeout: float = 30.0) -> list[Any]:
        """The Events of ``reason`` about ``name`` once there are more than ``more_than``.

        An Event follows the status write that decided it (it is posted from the status' outbox right
        after), so a test that has just seen the status waits for it rather than reading it once.
        """
        wait_for(lambda: len(self.events(name, reason)) > more_than, timeout, message=f"a {reason} Event about {name}")
        return self.events(name, reason)

    def settle(
        self, predicate: Callable[[dict[str, Any]], Any], timeout: float, message: str, name: str = NAME
    ) -> dict[str, Any]:
        """Wait until the ModelDeployment's status satisfies ``predicate``; on timeout show it as ``status`` does."""
        settle_rollout(self.ns, name, predicate, timeout, message, interval=0.2)
        return self.status(name)

    def healthy_on(self, version: str, timeout: float = 90, name: str = NAME) -> dict[str, Any]:
        return self.settle(
            lambda s: s.get("phase") == "Healthy" and (s.get("stableRevision") or {}).get("modelVersion") == version,
            timeout,
            f"{version} stable and Healthy",
            name,
        )

    def weights(self, name: str = NAME) -> dict[str, float]:
        """Where the router sends traffic now (URL -> share); empty while nothing serves."""
        try:
            return self.kubelet.weights(name)
        except (client.ApiException, KeyError, IndexError):
            return {}

    def query(self, promql: str) -> float | None:
        """The value of an instant query with one series (None when it has none)."""
        result = self.prometheus.client().custom_query(query=promql)
        return float(result[0]["value"][1]) if result else None

    def query_all(self, promql: str, by: str) -> dict[str, float]:
        """An instant query's series by the value of one label."""
        result = self.prometheus.client().custom_query(query=promql)
        return {r["metric"].get(by, ""): float(r["value"][1]) for r in result}

    # writing

    def create(self, document: dict[str, Any]) -> None:
        kind = document["kind"]
        client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[kind], document
        )

    def update_spec(self, spec: dict[str, Any], name: str = NAME) -> None:
        """Replace the spec as a Git commit would; retried on a conflict with the operator's own writes."""

        def replaced() -> bool:
            try:
                self.ns.update_spec(name, spec)
            except client.ApiException as error:
                if error.status != 409:
                    raise
                return False
            return True

        wait_for(replaced, 10, interval=0.1, message="a spec update without a conflict")

    def record(self, kind: str, name: str, filename: str) -> None:
        """Keep the object as it is now for the Argo CD health-check data (only with MODELROLLOUT_E2E_RECORD=1)."""
        if os.environ.get(RECORD_ENV) != "1":
            return
        RECORDED.mkdir(parents=True, exist_ok=True)
        path = RECORDED / filename
        path.write_text(recorded_yaml(self.get(kind, name), self.namespace))
        self.recorded.append(path)


def recorded_yaml(obj: dict[str, Any], namespace: str) -> str:
    """The object without what is particular to one run's API server (the namespace becomes ``e2e``)."""
    obj = copy.deepcopy(obj)
    metadata = obj["metadata"]
    for key in ("managedFields", "uid", "resourceVersion"):
        metadata.pop(key, None)
    # kopf's copy of the last spec it handled: a second copy of spec, noise in a diff.
    metadata.get("annotations", {}).pop(f"{GROUP}/last-handled-configuration", None)
    metadata["namespace"] = "e2e"
    text = yaml.safe_dump(obj, sort_keys=False).replace(namespace, "e2e")
    header = f"# Recorded by the e2e suite ({RECORD_ENV}=1): {obj['kind']} {obj.get('status', {}).get('phase') or ''}"
    return header.rstrip() + "\n" + text


@contextmanager
def e2e_namespace(api: client.ApiClient) -> Iterator[Namespace]:
    """A fresh ``e2e-*`` namespace with the golden-inputs ConfigMap the smoke checks read."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(
        name, {"metadata": {"name": "golden"}, "data": {"golden.json": GOLDEN_INPUTS.read_text()}}
    )
    try:
        yield Namespace(api, name)
    finally:
        core.delete_namespace(name)


@contextmanager
def open_stage(cluster: LocalCluster, prometheus: LocalPrometheus, operator: Operator) -> Iterator[Stage]:
    api = cluster.api_client()
    with e2e_namespace(api) as ns, LocalKubelet(cluster.api_client(), prometheus, ns.name) as kubelet:
        yield Stage(cluster, prometheus, operator, ns, kubelet, api)
    api.close()


@pytest.fixture
def stage(cluster: LocalCluster, prometheus: LocalPrometheus, operator: Operator) -> Iterator[Stage]:
    with open_stage(cluster, prometheus, operator) as opened:
        yield opened


@pytest.fixture(scope="module")
def module_stage(cluster: LocalCluster, prometheus: LocalPrometheus, operator: Operator) -> Iterator[Stage]:
    """One namespace for a whole module, for scenarios that build on one stable version."""
    with open_stage(cluster, prometheus, operator) as opened:
        yield opened


@contextmanager
def following_traffic(stage: Stage, name: str = NAME, rate: float = 40.0, **config: Any) -> Iterator[Traffic]:
    """Clients at ``rate`` requests per second, split the way the router says at each moment."""
    with Traffic(lambda: stage.weights(name), rate=rate, **config) as running:
        yield running


@pytest.fixture
def traffic(stage: Stage) -> Iterator[Traffic]:
    with following_traffic(stage) as running:
        yield running


# --- the CLI, HTTP sinks --------------------------------------------------------------------------------


class Cli:
    """``modelrollout COMMAND ... -n NS --kubeconfig ...`` in this process, as a user would type it.

    Its output is captured on its own, apart from the scenario's step lines that pytest captures.
    """

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def __call__(self, *args: str, expect: int = 0) -> str:
        code, out, err = self._run(args)
        assert code == expect, f"exit {code}: {out}\n{err}"
        return out + err

    def json(self, *args: str) -> Any:
        code, out, err = self._run((*args, "--format", "json"))
        assert code == 0, f"exit {code}: {out}\n{err}"
        return json.loads(out)

    def _run(self, args: tuple[str, ...]) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        argv = [*args, "-n", self.stage.namespace, "--kubeconfig", str(self.stage.cluster.kubeconfig)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = modelrollout_main(argv)
        return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli(stage: Stage) -> Cli:
    return Cli(stage)


class Sink(HTTPServer):
    """A tiny HTTP endpoint on loopback that keeps every JSON body POSTed to it (a webhook, a consumer)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def keep(self, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.paths.append(path)
            self.bodies.append(body)

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.bodies)

    def __enter__(self) -> Sink:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


class _SinkHandler(BaseHTTPRequestHandler):
    server: Sink

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.keep(self.path, body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as running:
        yield running
