"""Names and labels of everything the operator creates, in one place so selectors always agree."""

from __future__ import annotations

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


def smoke_job_name(name: str, revision_hash: str, attempt: int, kind: str) -> str:
    return f"{name}-smoke-{revision_hash}-{attempt}-{kind}"


def owned_selector(name: str) -> str:
    return f"{MODEL_DEPLOYMENT_LABEL}={name}"


def is_label_value(value: str) -> bool:
    """Whether ``value`` is a non-empty label value Kubernetes accepts (63 characters, alphanumeric ends)."""
    return _LABEL_VALUE.fullmatch(value) is not None
