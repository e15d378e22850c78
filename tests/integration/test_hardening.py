"""Hardening on the real API server and a real operator process: Pod Security, webhook secrets, receivers
that never answer, and a 409 Conflict in the middle of a step.

* Smoke Jobs are admitted where ``pod-security.kubernetes.io/enforce=restricted``; a smoke Job whose pod
  the namespace refuses fails the smoke test at once, with the refusal's words in the status.
* A webhook URL from a Secret (with a token, control characters, a bad host, a receiver that answers 500
  with a body that repeats the token) never appears in the operator's log, in Events or in status; status
  keeps the status code and a fixed phrase only.
* Twenty monitors whose receiver accepts and never answers do not hold up the reconciliation of a
  ModelDeployment created after them.
* A Deployment written by someone else between our read and our write (409 Conflict) is re-read and
  re-applied within the same call, in well under a second.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from e2e.dataplane import DEFAULT_REFERENCE
from e2e.harness.operator import OperatorProcess
from modelrollout.api.modeldeployment import ModelDeploymentSpec, RevisionRef
from modelrollout.core.revisions import RevisionContent
from modelrollout.kube import builders
from modelrollout.kube.converge import SPEC_HASH, Converger
from modelrollout.kube.owned import read_owned
from tests.integration.cleanup import delete_namespaces
from tests.support.waiting import pace, wait_for

pytestmark = pytest.mark.integration
GROUP, VERSION = "modelrollout.dev", "v1alpha1"
TOKEN = "xoxb-T0KEN-7f3a9c21d4"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


class Receiver(ThreadingHTTPServer):
    daemon_threads = True


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/hang"):
            pace(30)  # a receiver that hangs: the operator must give up on it
            return
        self.send_response(500)
        self.end_headers()
        self.wfile.write(f"internal data for {TOKEN}: secret=hunter2".encode())

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def hardened_operator(cluster: Any, crds: None) -> Iterator[OperatorProcess]:
    """No query runs in these tests: the operator's Prometheus is a closed port."""
    env = {"MODELROLLOUT_WEBHOOK_TIMEOUT": "1", "MODELROLLOUT_OPERATOR_IMAGE": "ghcr.io/modelrollout/modelrollout:test"}
    # Only this module's namespaces: its log then speaks of its own objects alone.
    with OperatorProcess(cluster.kubeconfig, "http://127.0.0.1:9", extra_env=env, namespaces="mrhard-*") as process:
        yield process
        print(process.logs()[-20000:])


@pytest.fixture
def fresh_namespace(cluster: Any, hardened_operator: OperatorProcess) -> Iterator[tuple[client.ApiClient, str]]:
    api = cluster.api_client()
    name = f"mrhard-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield api, name
    finally:
        delete_namespaces(api, [name])  # while the operator still runs


def model_deployment(name: str, smoke: dict[str, Any] | None = None) -> dict[str, Any]:
    restricted_container = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    spec: dict[str, Any] = {
        "model": {"name": "returns", "version": "1", "uri": "s3://models/returns/1"},
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "server",
                        "image": "ghcr.io/modelrollout/model-server:0.1.0",
                        "securityContext": restricted_container,
                    }
                ]
            }
        },
    }
    if smoke is not None:
        spec["smokeTest"] = smoke
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": name}, "spec": spec}


def status_of(api: client.ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any]:
    found = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    return dict(found.get("status") or {})


def test_builtin_smoke_jobs_are_admitted_under_the_restricted_pod_security_standard(
    fresh_namespace: tuple[client.ApiClient, str],
) -> None:
    api, namespace = fresh_namespace
    core = client.CoreV1Api(api)
    core.patch_namespace(namespace, {"metadata": {"labels": RESTRICTED}})
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", model_deployment("smoked", {"builtin": {}, "timeout": "2m"})
    )
    jobs = wait_for(lambda: client.BatchV1Api(api).list_namespaced_job(namespace).items, 30, message="the smoke Job")
    job = jobs[0].metadata.name
    pods = wait_for(
        lambda: core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items,
        30,
        message="the smoke pod, admitted",
    )
    assert pods
    refusals = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={job},reason=FailedCreate")
    assert refusals.items == []


def test_a_smoke_pod_the_namespace_refuses_fails_the_smoke_test_at_once_with_the_reason(
    fresh_namespace: tuple[client.ApiClient, str],
) -> None:
    api, namespace = fresh_namespace
    client.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": RESTRICTED}})
    privileged_job = {
        "spec": {"template": {"spec": {"containers": [{"name": "check", "image": "busybox:1.36", "args": ["true"]}]}}}
    }
    started = time.monotonic()
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "modeldeployments",
        model_deployment("refused", {"jobTemplate": privileged_job, "timeout": "10m"}),
    )

    def failed() -> dict[str, Any] | None:
        status = status_of(api, namespace, "modeldeployments", "refused")
        smoke = status.get("smokeTest") or {}
        return status if smoke.get("state") == "Failed" else None

    status = wait_for(failed, 60, interval=0.5, message="the smoke test to fail")
    assert time.monotonic() - started < 60, "long before the 10-minute smoke timeout"
    assert "violates PodSecurity" in status["smokeTest"]["reason"]
    assert "violates PodSecurity" in status["message"]
    assert status["phase"] == "Failed"


HOSTILE_URLS = {
    "control": f"http://127.0.0.1:{{port}}/hooks/{TOKEN}\r\nX-Injected: yes",
    "nul": f"http://127.0.0.1:{{port}}/hooks/{TOKEN}\x00",
    "badhost": f"http://exa mple.invalid/hooks/{TOKEN}",
    "badport": f"http://127.0.0.1:notaport/hooks/{TOKEN}",
    "userinfo": f"http://user:{TOKEN}@127.0.0.1:1/hooks",
    "reflecting": f"http://127.0.0.1:{{port}}/reflect/{TOKEN}",
    "hanging": f"http://127.0.0.1:{{port}}/hang/{TOKEN}",
    "scheme": f"file:///etc/{TOKEN}",
}


def drift_monitor(name: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {
            "targetRef": "returns",
            "interval": "1h",
            "reference": {"configMapRef": {"name": "reference", "key": "reference.json"}},
            "alerting": {"webhook": {"urlSecretRef": {"name": secret, "key": "url"}}},
        },
    }


def make_pending(api: client.ApiClient, namespace: str, name: str) -> None:
    """An alert waiting to be delivered, as drift would leave it (the test needs no real drift)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    patch = {
        "status": {
            "observedGeneration": 1,
            "lastAttemptTime": now,
            "state": "Drift",
            "alert": {"pending": "Firing", "firing": True, "fingerprint": "age"},
        }
    }
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "driftmonitors", name, patch, _content_type="application/merge-patch+json"
    )


def test_webhook_secrets_never_reach_logs_events_or_status_and_hanging_receivers_starve_nothing(
    fresh_namespace: tuple[client.ApiClient, str], receiver: Receiver, hardened_operator: OperatorProcess
) -> None:
    api, namespace = fresh_namespace
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "reference"}, "data": {"reference.json": DEFAULT_REFERENCE.read_text()}}
    )
    port = receiver.server_address[1]
    monitors = {name: url.replace("{port}", str(port)) for name, url in HOSTILE_URLS.items()}
    monitors |= {f"hanging-{i}": monitors["hanging"] for i in range(20)}
    for name, url in monitors.items():
        data = {"url": base64.b64encode(url.encode()).decode()}
        core.create_namespaced_secret(namespace, {"metadata": {"name": f"hook-{name}"}, "data": data})
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "driftmonitors", drift_monitor(name, f"hook-{name}")
        )

    def delivery_failed(name: str) -> bool:
        alert = status_of(api, namespace, "driftmonitors", name).get("alert") or {}
        if alert.get("lastError"):
            return True
        if not alert.get("pending"):
            make_pending(api, namespace, name)  # the operator's first write raced ours: set it again
        return False

    # While twenty receivers hold their connections, a ModelDeployment is still reconciled at once.
    for name in monitors:
        make_pending(api, namespace, name)
    started = time.monotonic()
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", model_deployment("returns")
    )
    wait_for(
        lambda: status_of(api, namespace, "modeldeployments", "returns").get("currentRevision"),
        15,
        message="the ModelDeployment's first status while webhooks hang",
    )
    reconciled_after = time.monotonic() - started

    for name in monitors:
        wait_for(lambda name=name: delivery_failed(name), 60, interval=0.5, message=f"{name}: a recorded failure")

    statuses = {name: status_of(api, namespace, "driftmonitors", name) for name in monitors}
    errors = {name: s["alert"]["lastError"] for name, s in statuses.items()}
    assert "answered 500 Internal Server Error" in errors["reflecting"]
    assert "timed out" in errors["hanging"]
    assert "control characters" in errors["control"]
    assert "must be http or https" in errors["scheme"]
    for name, status in statuses.items():
        text = json.dumps(status)
        assert TOKEN not in text, (name, text)
        assert "hunter2" not in text, "a receiver's answer is never copied into status"
    events = core.list_namespaced_event(namespace).items
    for event in events:
        assert TOKEN not in (event.message or ""), event.message
    log = hardened_operator.logs()
    assert TOKEN not in log
    assert "hunter2" not in log
    assert "failed with an exception" not in log
    assert reconciled_after < 10, f"the ModelDeployment waited {reconciled_after:.1f}s behind hanging webhooks"


def test_a_conflict_during_a_step_is_re_read_and_re_applied_in_under_a_second(
    fresh_namespace: tuple[client.ApiClient, str],
) -> None:
    """The Deployment is changed by someone else (kubectl scale, an HPA) between our read and our replace."""
    api, namespace = fresh_namespace
    spec = ModelDeploymentSpec.model_validate(model_deployment("racy")["spec"])
    parent = builders.Parent(name="unowned-racy", namespace=namespace, uid=str(uuid.uuid4()))
    ref = RevisionRef(number=1, version_id="1-01234567", hash="0123456789", model_version="1")
    manifest = builders.deployment(parent, ref, RevisionContent.of(spec), replicas=1, role="stable")
    manifest["metadata"]["ownerReferences"] = []
    manifest["metadata"]["annotations"][SPEC_HASH] = "an-older-template"
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, manifest)
    owned = read_owned(api, namespace, parent.name, with_jobs=False)
    stale = next(iter(owned.deployments.values()))
    apps.patch_namespaced_deployment(
        stale["metadata"]["name"], namespace, {"metadata": {"labels": {"touched-by": "someone-else"}}}
    )

    new_spec = spec.model_copy(update={"model": spec.model.model_copy(update={"version": "2"})})
    converger = Converger(api, parent, new_spec, owned, operator_image="")
    wanted = builders.deployment(parent, ref, RevisionContent.of(new_spec), replicas=1, role="stable")
    started = time.monotonic()
    converger._ensure_deployment(wanted, own_replicas=True)
    elapsed = time.monotonic() - started

    live = apps.read_namespaced_deployment(stale["metadata"]["name"], namespace)
    env = {e.name: e.value for e in live.spec.template.spec.containers[0].env}
    assert env["MODEL_VERSION"] == "2", "the change was re-applied on the fresh read"
    assert live.metadata.annotations[SPEC_HASH] == wanted["metadata"]["annotations"][SPEC_HASH]
    assert elapsed < 1.0, f"the conflict cost {elapsed:.2f}s"


def test_a_spec_over_the_annotation_limit_is_reconciled_and_kopf_writes_no_annotation_of_it(
    fresh_namespace: tuple[client.ApiClient, str], hardened_operator: OperatorProcess
) -> None:
    """kopf used to copy the spec into its last-handled-configuration annotation; annotations are limited to
    256 KiB in all, so a bigger spec (here a 300 KiB environment) had every kopf patch refused."""
    api, namespace = fresh_namespace
    document = model_deployment("big")
    env = [{"name": f"FEATURE_{i}", "value": "x" * 1000} for i in range(300)]
    document["spec"]["template"]["spec"]["containers"][0]["env"] = env
    assert len(json.dumps(document["spec"])) > 300 * 1024
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", document
    )
    wait_for(
        lambda: status_of(api, namespace, "modeldeployments", "big").get("currentRevision"),
        30,
        message="the big spec's first revision",
    )
    live = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", "big"
    )
    annotations = live["metadata"].get("annotations") or {}
    assert not [key for key in annotations if "last-handled-configuration" in key], annotations.keys()
    deployments = wait_for(
        lambda: client.AppsV1Api(api).list_namespaced_deployment(namespace).items, 30, message="the Deployment"
    )
    assert len(deployments[0].spec.template.spec.containers[0].env) >= 300
    log = hardened_operator.logs()
    assert "failed with an exception" not in log
    assert "Throttling" not in log, "kopf throttles an object whose patches it cannot apply"
    assert "Too long" not in log
