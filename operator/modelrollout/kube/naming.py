"""Names and labels of everything the operator creates, in one place so selectors always agree."""

from __future__ import annotations

import hashlib
import re

from modelrollout import GROUP

_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")

MODEL_DEPLOYMENT_LABEL = f"{GROUP}/model-deployment"
REVISION_LABEL = f"{GROUP}/revision"
ROLE_LABEL = f"{GROUP}/role"
MODEL_LABEL = f"{GROUP}/model"
"""On model-server pods: the model's name (spec.model.name), the ``model`` label of its metrics."""
POOL_LABEL = f"{GROUP}/pool"
POOL_SERVING = "serving"
POOL_SMOKE = "smoke"
SMOKE_LABEL = f"{GROUP}/smoke"
SMOKE_ATTEMPT_LABEL = f"{GROUP}/smoke-attempt"
SMOKE_KIND_LABEL = f"{GROUP}/smoke-kind"
MANAGED_BY = {"app.kubernetes.io/managed-by": "modelrollout"}


def workload_name(name: str, revision_hash: str) -> str:
    return f"{name}-{revision_hash}"


def revision_name(name: str, revision_hash: str) -> str:
    return f"{name}-{revision_hash}"


def stable_service(name: str) -> str:
    return f"{name}-stable"


def canary_service(name: str) -> str:
    return f"{name}-canary"


def root_service(name: str) -> str:
    """The Service selecting every revision's pods: the replicas router splits traffic here."""
    return name


JOB_NAME_MAX_LENGTH = 63
"""A Job's name is also the value of its pods' ``job-name`` label, so it is at most 63 characters."""


def smoke_job_name(name: str, revision_hash: str, attempt: int, kind: str) -> str:
    """``<name>-smoke-<hash>-<attempt>-<kind>``; a long name is cut and a digest of it keeps names apart."""
    suffix = f"-smoke-{revision_hash}-{attempt}-{kind}"
    if len(name) + len(suffix) <= JOB_NAME_MAX_LENGTH:
        return name + suffix
    digest = hashlib.sha256(name.encode()).hexdigest()[:5]
    kept = name[: max(1, JOB_NAME_MAX_LENGTH - len(suffix) - len(digest) - 1)].rstrip("-")
    return f"{kept}-{digest}{suffix}"


def owned_selector(name: str) -> str:
    return f"{MODEL_DEPLOYMENT_LABEL}={name}"


def is_label_value(value: str) -> bool:
    """Whether ``value`` is a non-empty label value Kubernetes accepts (63 characters, alphanumeric ends)."""
    return _LABEL_VALUE.fullmatch(value) is not None
