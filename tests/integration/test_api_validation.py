"""The real API server judges our resources: the examples pass, every invalid case is refused with its
message (schema and CEL rules), and the operator's ClusterRole grants exactly what the operator needs."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.cases import InvalidCase, load_examples, load_invalid

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = load_examples()
INVALID = load_invalid()


@pytest.fixture(scope="module")
def api(cluster: Any) -> client.ApiClient:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s", "-f", str(ROOT / "crds"))
    return cluster.api_client()


@pytest.fixture(scope="module")
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"validation-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def create(api: client.ApiClient, namespace: str, document: dict[str, Any], *, dry_run: bool = True) -> None:
    group, version = document["apiVersion"].split("/")
    plural = document["kind"].lower() + "s"
    body = copy.deepcopy(document)
    body["metadata"].pop("namespace", None)
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        group, version, namespace, plural, body, dry_run="All" if dry_run else None
    )


@pytest.mark.parametrize(("name", "document"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_examples_are_accepted(api: client.ApiClient, namespace: str, name: str, document: dict[str, Any]) -> None:
    create(api, namespace, document)


@pytest.mark.parametrize("case", INVALID, ids=[c.name for c in INVALID])
def test_invalid_resources_are_refused_with_a_message_that_names_the_problem(
    api: client.ApiClient, namespace: str, case: InvalidCase
) -> None:
    with pytest.raises(client.ApiException) as refused:
        create(api, namespace, case.document)
    assert refused.value.status == 422
    assert case.expected in str(refused.value.body), refused.value.body


def test_defaults_are_filled_in_by_the_api_server(api: client.ApiClient, namespace: str) -> None:
    minimal = {
        "apiVersion": "modelrollout.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "minimal"},
        "spec": {
            "model": {"name": "m", "version": "1", "uri": "s3://m/1"},
            "template": {"spec": {"containers": [{"name": "server", "image": "model-server:1"}]}},
        },
    }
    create(api, namespace, minimal, dry_run=False)
    stored = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "modelrollout.dev", "v1alpha1", namespace, "modeldeployments", "minimal"
    )
    spec = stored["spec"]
    assert [s["weight"] for s in spec["strategy"]["canary"]["steps"]] == [5, 25, 50, 100]
    assert spec["trafficRouting"]["router"] == "replicas"
    assert spec["analysis"]["onNoData"] == "Rollback"
    assert spec["analysis"]["maxStepDuration"] == "1h"


def test_the_operators_cluster_role_grants_what_it_needs_and_no_more(
    cluster: Any, api: client.ApiClient, namespace: str
) -> None:
    base = ROOT / "manifests" / "base"
    roles = [
        document
        for path in ("clusterrole.yaml", "clusterrole-secrets.yaml")
        for document in yaml.safe_load_all((base / path).read_text())
        if document and document["kind"] == "ClusterRole"
    ]
    rbac = client.RbacAuthorizationV1Api(api)
    client.CoreV1Api(api).create_namespaced_service_account(namespace, {"metadata": {"name": "operator"}})
    names = []
    for index, role in enumerate(roles):
        role["metadata"] = {"name": f"modelrollout-under-test-{namespace}-{index}"}
        names.append(role["metadata"]["name"])
        rbac.create_cluster_role(role)
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": role["metadata"]["name"]},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role["metadata"]["name"],
                },
                "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": namespace}],
            }
        )
    try:
        user = f"system:serviceaccount:{namespace}:operator"
        allowed = [
            ("patch", "modelrollout.dev", "modeldeployments", "status"),
            ("create", "apps", "controllerrevisions", ""),
            ("update", "apps", "controllerrevisions", ""),
            ("create", "apps", "deployments", ""),
            ("create", "batch", "jobs", ""),
            ("patch", "gateway.networking.k8s.io", "httproutes", ""),
            ("get", "", "secrets", ""),
            ("create", "", "events", ""),
        ]
        denied = [
            ("list", "", "secrets", ""),
            ("create", "", "pods", ""),
            ("delete", "", "namespaces", ""),
            ("patch", "apps", "controllerrevisions", ""),
            ("create", "rbac.authorization.k8s.io", "clusterroles", ""),
        ]
        for expected, checks in ((True, allowed), (False, denied)):
            for verb, group, resource, subresource in checks:
                review = client.AuthorizationV1Api(api).create_subject_access_review(
                    {
                        "spec": {
                            "user": user,
                            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
                            "resourceAttributes": {
                                "namespace": namespace,
                                "verb": verb,
                                "group": group,
                                "resource": resource,
                                "subresource": subresource,
                            },
                        }
                    }
                )
                assert review.status.allowed is expected, (verb, group, resource, subresource)
    finally:
        for name in names:
            rbac.delete_cluster_role_binding(name)
            rbac.delete_cluster_role(name)
