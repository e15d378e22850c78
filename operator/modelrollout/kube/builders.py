"""Pure builders of the Kubernetes objects a ModelDeployment owns.

Each function returns a plain manifest (a dict, as the API takes it) so tests
can assert on exactly what would be sent, and the applying code stays a thin
loop of create-or-patch calls.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from modelrollout import API_VERSION
from modelrollout.api.base import duration_seconds
from modelrollout.api.modeldeployment import ModelDeploymentSpec, RevisionRef
from modelrollout.core.revisions import RevisionContent
from modelrollout.kube import naming

Manifest = dict[str, Any]

GOLDEN_MOUNT = "/etc/modelrollout/golden"
SERVICE_PORT = 80
RESTRICTED_POD_SECURITY: Manifest = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
"""The built-in smoke pod's security context: admitted where ``pod-security.kubernetes.io/enforce=restricted``
(the operator image runs as 65532, so ``runAsNonRoot`` holds without naming a user)."""
RESTRICTED_CONTAINER_SECURITY: Manifest = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""The built-in smoke container's: no privilege escalation, every capability dropped, the default seccomp."""


@dataclass(frozen=True, slots=True)
class Parent:
    """The custom resource that owns what is built: deleting it collects everything through owner references."""

    name: str
    namespace: str
    uid: str
    kind: str = "ModelDeployment"

    def owner_reference(self) -> Manifest:
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def metadata(self, name: str, labels: dict[str, str]) -> Manifest:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": {**naming.MANAGED_BY, **labels},
            "ownerReferences": [self.owner_reference()],
        }


def _revision_labels(name: str, revision_hash: str) -> dict[str, str]:
    return {naming.MODEL_DEPLOYMENT_LABEL: name, naming.REVISION_LABEL: revision_hash}


def model_env(content: RevisionContent, ref: RevisionRef) -> list[Manifest]:
    """What every model-server container learns about the version it serves."""
    model = content.model
    values = {
        "MODEL_NAME": model.get("name"),
        "MODEL_VERSION": model.get("version"),
        "MODEL_URI": model.get("uri"),
        "MODEL_DIGEST": model.get("digest"),
        "MODEL_REVISION": ref.hash,
        "MODEL_VERSION_ID": ref.version_id,
    }
    return [{"name": key, "value": str(value)} for key, value in values.items() if value is not None]


def controller_revision(parent: Parent, ref: RevisionRef, content: RevisionContent) -> Manifest:
    """The frozen revision: enough to list history with lineage and to restore the spec exactly (undo)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            **parent.metadata(naming.revision_name(parent.name, ref.hash), _revision_labels(parent.name, ref.hash)),
            "annotations": {
                "modelrollout.dev/version-id": ref.version_id,
                "modelrollout.dev/model-version": ref.model_version,
            },
        },
        "revision": ref.number,
        "data": content.to_data(),
    }


def deployment(
    parent: Parent, ref: RevisionRef, content: RevisionContent, *, replicas: int, role: str, serving: bool = True
) -> Manifest:
    """One Deployment per live revision; the pod template carries the revision label the Services select on.

    ``serving=False`` keeps the pods out of the root Service: with the replicas
    router that Service *is* the traffic split, and a canary under smoke test
    must not receive live requests.
    """
    name = parent.name
    template = copy.deepcopy(content.template)
    labels = _revision_labels(name, ref.hash)
    metadata = template.setdefault("metadata", {})
    pool = naming.POOL_SERVING if serving else naming.POOL_SMOKE
    metadata["labels"] = {**metadata.get("labels", {}), **labels, naming.POOL_LABEL: pool}
    model_name = str(content.model.get("name") or "")
    if naming.is_label_value(model_name):  # scrape configs take the `model` label from it (charts/)
        metadata["labels"][naming.MODEL_LABEL] = model_name
    metadata["annotations"] = {**metadata.get("annotations", {}), "modelrollout.dev/version-id": ref.version_id}
    env = model_env(content, ref)
    for container in template.setdefault("spec", {}).get("containers", []):
        names = {e["name"] for e in env}
        container["env"] = [*(e for e in container.get("env", []) if e.get("name") not in names), *env]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **parent.metadata(naming.workload_name(name, ref.hash), {**labels, naming.ROLE_LABEL: role}),
            "annotations": {"modelrollout.dev/version-id": ref.version_id},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": template,
        },
    }


def service(
    parent: Parent, service_name: str, selector: dict[str, str], port: int, role: str | None = None
) -> Manifest:
    """``role`` labels the stable and canary Services: scrape configs read a pod's role from the Service."""
    labels = {naming.MODEL_DEPLOYMENT_LABEL: parent.name, **({naming.ROLE_LABEL: role} if role else {})}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": parent.metadata(service_name, labels),
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": port, "protocol": "TCP"}],
        },
    }


def services(parent: Parent, port: int, *, stable_hash: str | None, canary_hash: str | None) -> list[Manifest]:
    """The root Service (every revision), and stable and canary Services (one revision each)."""
    name = parent.name
    root = {naming.MODEL_DEPLOYMENT_LABEL: name}
    result = [service(parent, naming.root_service(name), {**root, naming.POOL_LABEL: naming.POOL_SERVING}, port)]
    for service_name, revision_hash, role in (
        (naming.stable_service(name), stable_hash, "stable"),
        (naming.canary_service(name), canary_hash, "canary"),
    ):
        selector = {**root, naming.REVISION_LABEL: revision_hash or "none"}
        result.append(service(parent, service_name, selector, port, role))
    return result


def canary_url(name: str, namespace: str) -> str:
    return f"http://{naming.canary_service(name)}.{namespace}.svc:{SERVICE_PORT}"


def smoke_jobs(
    parent: Parent, spec: ModelDeploymentSpec, ref: RevisionRef, *, attempt: int, operator_image: str
) -> list[Manifest]:
    """The Jobs of one smoke attempt: built-in ML checks and/or the user's own template."""
    name, namespace = parent.name, parent.namespace
    smoke = spec.smoke_test
    if smoke is None:
        return []
    labels = {
        **_revision_labels(name, ref.hash),
        naming.SMOKE_LABEL: "true",
        naming.SMOKE_ATTEMPT_LABEL: str(attempt),
    }
    deadline = max(1, int(duration_seconds(smoke.timeout)))
    url = canary_url(name, namespace)
    jobs: list[Manifest] = []
    if smoke.builtin is not None:
        builtin = smoke.builtin
        # The model may take a while to load, but the wait must end well inside the Job's deadline (and the
        # operator's own timeout): a model that never loads is then reported as failing the `loads` check,
        # with its own words, rather than as a Job killed for running too long.
        load_wait = max(1, deadline // 2)
        args = ["smoke", "--url", url, "--timeout", str(load_wait), "--format", "json"]
        args += ["--health-path", builtin.health_path, "--predict-path", builtin.predict_path]
        volumes: list[Manifest] = []
        mounts: list[Manifest] = []
        if builtin.golden_inputs is not None:
            args += ["--golden", f"{GOLDEN_MOUNT}/{builtin.golden_inputs.key}"]
            volumes.append({"name": "golden", "configMap": {"name": builtin.golden_inputs.name}})
            mounts.append({"name": "golden", "mountPath": GOLDEN_MOUNT, "readOnly": True})
        if builtin.expected_shape is not None:
            args += ["--expect-shape", str(builtin.expected_shape)]
        if builtin.output_range is not None:
            args += ["--min", repr(builtin.output_range.min), "--max", repr(builtin.output_range.max)]
        if builtin.latency_budget_ms is not None:
            args += ["--latency-budget-ms", str(builtin.latency_budget_ms)]
        container = {
            "name": "smoke",
            "image": builtin.image or operator_image,
            "command": ["modelrollout"],
            "args": args,
            "volumeMounts": mounts,
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "securityContext": copy.deepcopy(RESTRICTED_CONTAINER_SECURITY),
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        }
        pod = {
            "restartPolicy": "Never",
            "securityContext": copy.deepcopy(RESTRICTED_POD_SECURITY),
            "automountServiceAccountToken": False,
            "containers": [container],
            "volumes": volumes,
        }
        job_name = naming.smoke_job_name(name, ref.hash, attempt, "builtin")
        jobs.append(
            _job(parent, job_name, {**labels, naming.SMOKE_KIND_LABEL: "builtin"}, {"spec": pod}, deadline=deadline)
        )
    if smoke.job_template is not None:
        template = copy.deepcopy(smoke.job_template)
        pod_template = template.get("spec", {}).get("template", {"spec": {}})
        env = [{"name": "CANARY_URL", "value": url}, *model_env(RevisionContent({}, {}, spec.port), ref)]
        for container in pod_template.get("spec", {}).get("containers", []):
            container["env"] = [*container.get("env", []), *env]
        pod_template.setdefault("spec", {}).setdefault("restartPolicy", "Never")
        job_name = naming.smoke_job_name(name, ref.hash, attempt, "custom")
        job_labels = {**labels, naming.SMOKE_KIND_LABEL: "custom"}
        jobs.append(
            _job(parent, job_name, job_labels, pod_template, deadline=deadline, user_job_spec=template.get("spec", {}))
        )
    return jobs


def _job(
    parent: Parent,
    job_name: str,
    labels: dict[str, str],
    pod_template: Manifest,
    *,
    deadline: int,
    user_job_spec: Manifest | None = None,
) -> Manifest:
    pod_metadata = pod_template.setdefault("metadata", {})
    pod_metadata["labels"] = {**pod_metadata.get("labels", {}), **labels}
    spec: Manifest = {**(user_job_spec or {})}
    spec.update({"template": pod_template, "backoffLimit": 0, "activeDeadlineSeconds": deadline})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": parent.metadata(job_name, labels),
        "spec": spec,
    }
