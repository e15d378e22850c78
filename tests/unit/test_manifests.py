"""The install manifests: kustomize base complete, RBAC explicit, the operator's pod locked down.

Why static checks: these properties (least privilege, non-root, read-only root
filesystem, one image everywhere) are promises docs/install.md makes, and a
reviewer skimming YAML misses a "*" or a dropped securityContext field. The
kustomize build itself needs the cached kustomize binary (integration).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.tools.cache import require_tool

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "manifests" / "base"
DEFAULT = REPO / "manifests" / "default"
CHART = REPO / "charts" / "modelrollout"
IMAGE_REPOSITORY = "ghcr.io/modelrollout/modelrollout"

# Every verb the API server knows for RBAC; "*" is deliberately absent.
KNOWN_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kustomization(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return document


def base_objects() -> list[dict[str, Any]]:
    return [d for name in kustomization(BASE)["resources"] for d in documents(BASE / name)]


def only(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = only(objects, "Deployment")
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


# --- kustomize base ------------------------------------------------------------------------------


def test_base_lists_every_file_in_its_folder() -> None:
    """A manifest added to the folder but not to kustomization.yaml would silently never be installed."""
    on_disk = {p.relative_to(BASE).as_posix() for p in BASE.rglob("*.yaml") if p.name != "kustomization.yaml"}
    listed = set(kustomization(BASE)["resources"])
    assert on_disk - listed == set(), "files in manifests/base missing from its kustomization.yaml"
    assert listed - on_disk == set(), "kustomization.yaml lists files that do not exist"


def test_base_installs_every_generated_crd() -> None:
    crds = {o["metadata"]["name"] for o in base_objects() if o["kind"] == "CustomResourceDefinition"}
    generated = {p.stem for p in (REPO / "crds").glob("*.yaml")}
    assert generated <= crds
    assert "clusterkopfpeerings.kopf.dev" in crds


def test_default_overlay_pins_the_image_tag() -> None:
    images = kustomization(DEFAULT)["images"]
    assert images == [{"name": IMAGE_REPOSITORY, "newTag": chart_app_version()}]
    assert kustomization(DEFAULT)["resources"] == ["../base"]


def test_base_namespaced_objects_live_in_the_operator_namespace() -> None:
    for obj in base_objects():
        if obj["kind"] in {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding"}:
            assert obj["metadata"]["namespace"] == "modelrollout-system"
    only(base_objects(), "Namespace", "modelrollout-system")
    bindings = [o for o in base_objects() if o["kind"] in {"ClusterRoleBinding", "RoleBinding"}]
    assert sorted(b["roleRef"]["name"] for b in bindings) == [
        "modelrollout-operator",
        "modelrollout-operator",
        "modelrollout-operator-secrets",
    ]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "modelrollout", "namespace": "modelrollout-system"}
        ]


# --- RBAC --------------------------------------------------------------------------------------------


def cluster_roles() -> list[dict[str, Any]]:
    return [o for o in base_objects() if o["kind"] == "ClusterRole"]


@pytest.mark.parametrize("role", cluster_roles(), ids=lambda r: r["metadata"]["name"])
def test_cluster_role_rules_are_explicit(role: dict[str, Any]) -> None:
    """No wildcard anywhere: every rule names its API groups, resources and verbs."""
    assert role["rules"], "a ClusterRole without rules is a mistake"
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"unexpected rule fields: {rule}"
        for field in ("apiGroups", "resources", "verbs"):
            assert rule[field], f"{field} must not be empty: {rule}"
            assert all("*" not in value for value in rule[field]), f"wildcard in {field}: {rule}"
        assert set(rule["verbs"]) <= KNOWN_VERBS, rule
        assert len(set(rule["verbs"])) == len(rule["verbs"]), f"duplicate verbs: {rule}"


def grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples a role grants."""
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_operator_role_is_least_privilege() -> None:
    """Spot checks of the permissions docs/install.md promises the operator does not have
    (tests/unit/test_rbac.py checks the rules equal the calls the code makes)."""
    granted = grants(only(base_objects(), "ClusterRole", "modelrollout-operator"))
    assert not [g for g in granted if g[1] == "secrets"], "secrets are in their own role"
    secrets = grants(only(base_objects(), "ClusterRole", "modelrollout-operator-secrets"))
    assert secrets == {("", "secrets", "get")}, "secrets: get by name only"
    assert not {("", "pods", verb) for verb in ("get", "create", "delete", "patch", "update")} & granted
    assert not {("modelrollout.dev", kind, verb) for kind in ("modeldeployments",) for verb in ("create", "delete")} & (
        granted
    )
    assert not [g for g in granted if g[1] in {"clusterroles", "roles", "rolebindings", "clusterrolebindings"}]
    assert not [g for g in granted if g[0] == "coordination.k8s.io"], "kopf peering, not Leases: no lease rights"
    # Renumbering a revision rolled out again is a full update: the API server refuses a patch of
    # a ControllerRevision (it re-serialises the immutable data). Patch is therefore not granted.
    assert ("apps", "controllerrevisions", "update") in granted
    assert ("apps", "controllerrevisions", "patch") not in granted
    own = grants(only(base_objects(), "Role", "modelrollout-operator"))
    assert own == {("", "pods", "get")}, "its own pod (the smoke image), in its own namespace only"


def test_user_roles_aggregate_into_view_and_edit() -> None:
    view = only(base_objects(), "ClusterRole", "modelrollout-view")
    edit = only(base_objects(), "ClusterRole", "modelrollout-edit")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"]
    assert {verb for _, _, verb in grants(view)} == {"get", "list", "watch"}
    assert not [g for g in grants(edit) if g[1].endswith("/status")], "people never write status"


# --- the operator's pod ------------------------------------------------------------------------------


def test_deployment_security_context() -> None:
    deployment = only(base_objects(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(base_objects())
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 65532
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    # Read-only root: /tmp is the one writable path, an emptyDir.
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert [v["name"] for v in pod["volumes"] if "emptyDir" in v] == ["tmp"]
    assert pod["serviceAccountName"] == "modelrollout"


def test_deployment_runs_the_operator_as_specified() -> None:
    deployment = only(base_objects(), "Deployment")
    assert deployment["spec"]["replicas"] == 2
    container = operator_container(base_objects())
    assert container["command"] == ["modelrollout"]
    assert container["args"] == ["run", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELROLLOUT_METRICS_PORT"] == "8000"
    assert "MODELROLLOUT_PROMETHEUS_URL" in env
    assert env["MODELROLLOUT_NAMESPACES"] == ""
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8000, "health": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    service = only(base_objects(), "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8000, "targetPort": "metrics", "protocol": "TCP"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_no_object_whose_crd_the_same_apply_creates() -> None:
    """One `kubectl apply -k` on a fresh cluster: the operator creates its ClusterKopfPeering itself."""
    crd_kinds = {o["spec"]["names"]["kind"] for o in base_objects() if o["kind"] == "CustomResourceDefinition"}
    assert not [o for o in base_objects() if o["kind"] in crd_kinds]
    env = {e["name"]: e.get("value") for e in operator_container(base_objects())["env"]}
    assert env["MODELROLLOUT_PEERING_NAME"] == "modelrollout"


def test_smoke_image_is_the_operator_pods_own() -> None:
    """No second copy of the image for an overlay to forget: the operator reads its own pod."""
    env = {e["name"]: e for e in operator_container(base_objects())["env"]}
    assert "MODELROLLOUT_OPERATOR_IMAGE" not in env
    assert env["POD_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert operator_container(base_objects())["name"] == "operator"


# --- one image everywhere -------------------------------------------------------------------------


def chart_app_version() -> str:
    version: str = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    return version


def test_chart_and_kustomize_reference_the_same_image() -> None:
    """values.yaml (tag defaulting to appVersion) and the kustomize manifests must ship one image."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    tag = values["image"]["tag"] or chart["appVersion"]
    assert f"{values['image']['repository']}:{tag}" == operator_container(base_objects())["image"]
    assert values["image"]["repository"] == IMAGE_REPOSITORY
    assert chart["version"] == "0.1.0"
    assert chart["apiVersion"] == "v2"
    assert 'include "modelrollout.image"' in (CHART / "templates" / "deployment.yaml").read_text()
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert ".Values.image.tag | default .Chart.AppVersion" in helpers


def test_chart_templates_have_no_wildcard_rbac() -> None:
    for template in (CHART / "templates").glob("*.yaml"):
        text = template.read_text()
        if "rbac.authorization.k8s.io" in text:
            for bad in ('"*"', "'*'", "[*]", "- *"):
                assert bad not in text, f"{template.name}: wildcard {bad}"


# --- kustomize build (integration: needs the cached kustomize) -------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("overlay", ["manifests/default", "manifests/argocd/operator"])
def test_kustomize_build(overlay: str) -> None:
    """The overlay builds with the pinned kustomize, and the result is the base with the tag set."""
    kustomize = require_tool("kustomize")
    result = subprocess.run(
        [str(kustomize), "build", overlay], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert operator_container(objects)["image"] == f"{IMAGE_REPOSITORY}:{chart_app_version()}"
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == sorted({o["kind"] for o in base_objects()} | {"ConfigMap"})  # + the generated dashboards
    for obj in objects:
        namespaced = obj["kind"] in {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "ConfigMap"}
        assert (obj["metadata"].get("namespace") == "modelrollout-system") == namespaced, obj["metadata"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "modelrollout"


def test_kustomize_dashboards_are_the_charts() -> None:
    """manifests/base/dashboards copies charts/modelrollout/dashboards (kustomize reads nothing outside its root)."""
    chart = {p.name: p.read_text() for p in (CHART / "dashboards").glob("*.json")}
    base = {p.name: p.read_text() for p in (BASE / "dashboards").glob("*.json")}
    assert chart == base
    assert sorted(chart) == ["fleet-overview.json", "model.json"]
    generated = {g["files"][0] for g in kustomization(BASE)["configMapGenerator"]}
    assert generated == {f"dashboards/{name}" for name in chart}
