"""Installing on a real, empty API server: one-shot kustomize, Helm under any name, monitoring CRDs, the image.

Each module gets its own fresh etcd + kube-apiserver (tests/integration/freshcluster.py), so
these tests see what a first-time user sees (no CRD established yet, nothing left over) and
may uninstall and delete freely. The operator runs as a real process authenticated as the
ServiceAccount the install created, so a permission the manifests forgot is a `forbidden`
here, not in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from hack.localcluster import procs
from hack.tools.cache import require_tool
from modelrollout.api.kinds import ALL_KINDS
from tests.integration.freshcluster import FreshCluster, fresh_cluster
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelrollout"
UNUSED_PROMETHEUS = "http://127.0.0.1:9"
"""Nothing in these tests queries Prometheus (no analysis runs)."""

MONITORING_CRDS = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, plural: servicemonitors, singular: servicemonitor, listKind: ServiceMonitorList}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: prometheusrules.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: PrometheusRule, plural: prometheusrules, singular: prometheusrule, listKind: PrometheusRuleList}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
"""The Prometheus Operator's CRDs as far as the API server's discovery is concerned (schema left open)."""


@pytest.fixture(scope="module")
def fresh() -> Iterator[FreshCluster]:
    with fresh_cluster() as created:
        yield created


def helm(fresh: FreshCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(require_tool("helm")), f"--kubeconfig={fresh.kubeconfig}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def objects_api(kubeconfig: Path) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(config.new_client_from_config(config_file=str(kubeconfig)))


def peering(fresh: FreshCluster, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = objects_api(fresh.kubeconfig).get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", name
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return found


class Operator:
    """``modelrollout run`` as the Deployment runs it, authenticated as the install's ServiceAccount."""

    def __init__(self, kubeconfig: Path, args: list[str], peering_name: str, log: Path) -> None:
        self.log = log
        self.metrics_port = procs.free_ports(["metrics"])["metrics"]
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "MODELROLLOUT_PROMETHEUS_URL": UNUSED_PROMETHEUS,
            "MODELROLLOUT_PEERING_NAME": peering_name,
            "MODELROLLOUT_PEERING_LIFETIME": "10",
            "MODELROLLOUT_METRICS_PORT": str(self.metrics_port),
            "MODELROLLOUT_LIVENESS": "",
            "MODELROLLOUT_TICK_SECONDS": "0.5",
            "PYTHONUNBUFFERED": "1",
        }
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelrollout", "run", *args],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def requests(self) -> dict[tuple[str, str], float]:
        """modelrollout_kube_requests_total by (client, verb), from the operator's /metrics."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        found = re.findall(r'^modelrollout_kube_requests_total\{client="(\w+)",verb="(\w+)"\} (\S+)$', text, re.M)
        return {(client_name, verb): float(value) for client_name, verb, value in found}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def operator_as(
    fresh: FreshCluster, namespace: str, account: str, *, args: list[str], peering_name: str
) -> Iterator[Operator]:
    kubeconfig = fresh.identity(
        f"system:serviceaccount:{namespace}:{account}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"),
    )
    operator = Operator(kubeconfig, args, peering_name, fresh.folder / f"operator-{peering_name}.log")
    try:
        yield operator
    finally:
        operator.stop()
        print(operator.logs()[-5000:])


def model_deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "next-day-returns", "version": "1.0.0", "uri": "s3://models/returns/1.0.0"},
            "template": {
                "spec": {"containers": [{"name": "server", "image": "ghcr.io/modelrollout/model-server:0.1.0"}]}
            },
        },
    }


def assert_reconciles(fresh: FreshCluster, operator: Operator, namespace: str) -> None:
    """A ModelDeployment gets its revision, Deployment and Services and a status: the RBAC is enough."""
    fresh.kubectl("create", "namespace", namespace, check=False)
    fresh.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(model_deployment("returns")))
    apps = client.AppsV1Api(config.new_client_from_config(config_file=str(fresh.kubeconfig)))
    wait_for(
        lambda: apps.list_namespaced_deployment(namespace).items,
        60,
        message=f"the operator to create a Deployment in {namespace}\n{operator.logs()[-3000:]}",
    )
    wait_for(
        lambda: (
            objects_api(fresh.kubeconfig)
            .get_namespaced_custom_object("modelrollout.dev", "v1alpha1", namespace, "modeldeployments", "returns")
            .get("status", {})
            .get("phase")
        ),
        60,
        message="a status phase",
    )
    services = client.CoreV1Api(config.new_client_from_config(config_file=str(fresh.kubeconfig)))

    def roles() -> set[str | None]:
        listed = services.list_namespaced_service(namespace).items
        return {service.metadata.labels.get("modelrollout.dev/role") for service in listed}

    # The status is written before the tick converges the Services: wait for them, do not race them.
    wait_for(
        lambda: roles() == {None, "stable", "canary"},
        60,
        message="the root, stable and canary Services, with their role for scrape configs",
    )


# --- kustomize -------------------------------------------------------------------------------------


def test_kustomize_install_is_one_command_on_a_fresh_cluster(fresh: FreshCluster) -> None:
    """One apply installs everything; the operator started before its CRDs exist waits for them."""
    applied = fresh.kubectl("apply", "--server-side", "-k", "manifests/default", check=False)
    assert applied.returncode == 0, applied.stderr
    assert "no matches for kind" not in applied.stderr
    # Back to "RBAC there, CRDs not yet": the order in which a pod may meet a fresh install.
    crds = [f"crd/{kind.crd_name}" for kind in ALL_KINDS] + ["crd/clusterkopfpeerings.kopf.dev"]
    # A CRD deleted while its storage still initialises meets "storage is (re)initializing" in the API
    # server's CRD finalizer, which then retries on an exponential backoff: wait until each one is served.
    for crd in crds:
        wait_for(
            lambda crd=crd: fresh.kubectl("get", crd.removeprefix("crd/"), "-A", check=False).returncode == 0,
            60,
            message=f"{crd} served",
        )
    fresh.kubectl("delete", "--wait=true", "--timeout=120s", *crds)
    with operator_as(fresh, "modelrollout-system", "modelrollout", args=["--all-namespaces"], peering_name="mr") as op:
        wait_for(
            lambda: "waiting for the API to serve" in op.logs(),
            60,
            message=f"the operator to wait for its CRDs\n{op.logs()[-3000:]}",
        )
        again = fresh.kubectl("apply", "--server-side", "-k", "manifests/default", check=False)
        assert again.returncode == 0, again.stderr
        created = wait_for(lambda: peering(fresh, "mr"), 60, message="the peering object")
        assert created["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "modelrollout"}
        wait_for(lambda: (peering(fresh, "mr") or {}).get("status"), 60, message="the operator's keep-alive")
        assert_reconciles(fresh, op, "kz-returns")
        # kopf's own requests are counted too (watches once each, keep-alive and finalizer patches, Events).
        counted = op.requests()
        assert counted.get(("kopf", "WATCH"), 0) > 0, counted
        assert counted.get(("kopf", "PATCH"), 0) > 0, counted
        assert counted.get(("kubernetes", "POST"), 0) > 0, counted


def test_image_override_reaches_the_smoke_image(fresh: FreshCluster, tmp_path: Path) -> None:
    """An overlay that retags the operator (as docs/install.md recommends) retags the smoke Jobs' image too."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(REPO / "manifests" / "base", overlay)],
                "images": [{"name": "ghcr.io/modelrollout/modelrollout", "newTag": "9.9.9-rc1"}],
            }
        )
    )
    built = subprocess.run(
        [str(require_tool("kustomize")), "build", str(overlay)], capture_output=True, text=True, check=True, timeout=60
    )
    deployment = next(d for d in yaml.safe_load_all(built.stdout) if d and d["kind"] == "Deployment")
    template = deployment["spec"]["template"]
    env = {e["name"] for e in template["spec"]["containers"][0]["env"]}
    assert "MODELROLLOUT_OPERATOR_IMAGE" not in env
    # The Pod a ReplicaSet would create from this template (no controller-manager here).
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "modelrollout-abc12", **template["metadata"]}}
    pod["spec"] = template["spec"]
    fresh.kubectl("create", "namespace", "image-test", check=False)
    fresh.kubectl("create", "serviceaccount", "-n", "image-test", template["spec"]["serviceAccountName"])
    fresh.kubectl("apply", "-n", "image-test", "-f", "-", stdin=json.dumps(pod))
    script = (
        "from modelrollout.cli.run import _with_own_image\n"
        "from modelrollout.config import Settings\n"
        "print(_with_own_image(Settings.from_env()).operator_image)\n"
    )
    env_vars = {
        **os.environ,
        "KUBECONFIG": str(fresh.kubeconfig),
        "POD_ID": "modelrollout-abc12",
        "POD_NAMESPACE": "image-test",
    }
    env_vars.pop("MODELROLLOUT_OPERATOR_IMAGE", None)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env_vars, capture_output=True, text=True, check=True, timeout=60, cwd=REPO
    )
    assert result.stdout.strip() == "ghcr.io/modelrollout/modelrollout:9.9.9-rc1"
    pinned = subprocess.run(
        [sys.executable, "-c", script],
        env={**env_vars, "MODELROLLOUT_OPERATOR_IMAGE": "registry.local/smoke:1"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=REPO,
    )
    assert pinned.stdout.strip() == "registry.local/smoke:1", "an explicit image still wins"


# --- Helm ------------------------------------------------------------------------------------------


def test_helm_install_uninstall_reinstall_under_other_names(fresh: FreshCluster) -> None:
    """The cluster-scoped objects (peering CRD, user roles) never block another release name or namespace."""
    helm(fresh, "install", "first", str(CHART), "-n", "ops-a", "--create-namespace")
    helm(fresh, "uninstall", "first", "-n", "ops-a")
    helm(fresh, "install", "second", str(CHART), "-n", "ops-b", "--create-namespace")
    helm(fresh, "upgrade", "second", str(CHART), "-n", "ops-b", "--reuse-values")
    helm(fresh, "uninstall", "second", "-n", "ops-b")
    helm(fresh, "install", "first", str(CHART), "-n", "ops-a")
    helm(fresh, "uninstall", "first", "-n", "ops-a")
    crds = fresh.kubectl("get", "crd", "-o", "name").stdout
    assert "clusterkopfpeerings.kopf.dev" in crds, "kept for other kopf operators"


def namespace_kept(fresh: FreshCluster, name: str) -> bool:
    """Present and not being deleted (without a controller-manager a deleted namespace stays Terminating)."""
    found = json.loads(fresh.kubectl("get", "namespace", name, "-o", "json").stdout)
    return "deletionTimestamp" not in found["metadata"] and found["status"]["phase"] == "Active"


def test_helm_watched_namespace_that_does_not_exist_yet(fresh: FreshCluster) -> None:
    """Install succeeds, the namespace is there with the operator's Role, and the operator (as its
    ServiceAccount, namespaced RBAC only) reconciles a model in it; a reinstall under another name works."""
    assert fresh.kubectl("get", "namespace", "team-later", check=False).returncode != 0
    helm(
        fresh,
        "install",
        "scoped",
        str(CHART),
        "-n",
        "ops-c",
        "--create-namespace",
        "--set",
        "watchNamespaces={team-later}",
    )
    roles = fresh.kubectl("get", "role", "-n", "team-later", "-o", "name").stdout.split()
    assert sorted(roles) == ["role.rbac.authorization.k8s.io/scoped-modelrollout-operator",
                             "role.rbac.authorization.k8s.io/scoped-modelrollout-secrets"]  # fmt: skip
    args = ["--namespace", "team-later"]
    with operator_as(fresh, "ops-c", "scoped-modelrollout", args=args, peering_name="scoped") as op:
        wait_for(
            lambda: (peering(fresh, "scoped") or {}).get("status"), 60, message=f"the keep-alive\n{op.logs()[-3000:]}"
        )
        assert_reconciles(fresh, op, "team-later")
        problems = [line for line in op.logs().splitlines() if "forbidden" in line.lower() or "permission" in line]
        assert not problems, "\n".join(problems)
    # An upgrade no longer renders the namespace (it exists now); kept all the same.
    helm(fresh, "upgrade", "scoped", str(CHART), "-n", "ops-c", "--reuse-values")
    assert namespace_kept(fresh, "team-later"), "kept on upgrade"
    helm(fresh, "uninstall", "scoped", "-n", "ops-c")
    assert namespace_kept(fresh, "team-later"), "kept on uninstall: it holds models"
    helm(
        fresh,
        "install",
        "rescoped",
        str(CHART),
        "-n",
        "ops-d",
        "--create-namespace",
        "--set",
        "watchNamespaces={team-later}",
    )
    helm(fresh, "uninstall", "rescoped", "-n", "ops-d")


def test_helm_monitoring_with_and_without_the_prometheus_operator(fresh: FreshCluster) -> None:
    values = ["--set", "serviceMonitor.enabled=true,modelServerMonitor.enabled=true,prometheusRule.enabled=true"]
    refused = helm(fresh, "install", "mon", str(CHART), "-n", "ops-e", "--create-namespace", *values, check=False)
    assert refused.returncode != 0
    assert "needs the Prometheus Operator's ServiceMonitor CRD" in refused.stderr, refused.stderr
    assert "no matches for kind" not in refused.stderr
    fresh.kubectl("apply", "-f", "-", stdin=MONITORING_CRDS)
    fresh.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "servicemonitors.monitoring.coreos.com"
    )
    wait_for(
        lambda: "servicemonitors" in fresh.kubectl("api-resources", "--api-group=monitoring.coreos.com").stdout,
        30,
        message="discovery to serve monitoring.coreos.com",
    )
    helm(fresh, "install", "mon", str(CHART), "-n", "ops-e", "--create-namespace", *values)
    monitors = json.loads(fresh.kubectl("get", "servicemonitors", "-n", "ops-e", "-o", "json").stdout)["items"]
    by_name = {m["metadata"]["name"]: m for m in monitors}
    assert by_name["mon-modelrollout"]["spec"]["endpoints"][0]["honorLabels"] is True
    assert "mon-modelrollout-model-servers" in by_name
    assert fresh.kubectl("get", "prometheusrule", "-n", "ops-e", "mon-modelrollout", check=False).returncode == 0
    helm(fresh, "uninstall", "mon", "-n", "ops-e")
