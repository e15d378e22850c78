"""The operator's RBAC is exactly the set of API calls it makes: nothing missing, nothing unused.

Why: a permission granted and never used is attack surface nobody reviews, and one missing
is a `forbidden` in production. The calls are derived from the code, not listed by hand:

- every Kubernetes client method the package calls (an AST walk over operator/modelrollout,
  CLI excluded: it runs with the user's credentials), mapped to its HTTP method and resource
  path by reading the client's own request serializer (``resource_path=..., method=...``);
- CustomObjectsApi calls name their resource at run time, so their plurals come from the code
  that owns them (the API kinds, the routers' group/plural constants, kopf's peering);
- what kopf does on the operator's behalf (watch streams, finalizer and annotation patches,
  Events, peering keep-alives, CRD and namespace discovery), from kopf's documented needs.

The result must equal the rules of manifests/base (ClusterRole + Role) and of the chart in
both modes (cluster-wide, and Roles per watched namespace). The sharding Leases are granted only
where sharding is on: the chart's ``shards``, in the operator's own namespace.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from hack.tools.cache import require_tool
from modelrollout.api.kinds import ALL_KINDS
from modelrollout.routing import gatewayapi, istio

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "modelrollout"
BASE = REPO / "manifests" / "base"
CHART = REPO / "charts" / "modelrollout"
CLIENT_METHOD = re.compile(r"(read|list|create|patch|replace|delete|get|watch)_\w*?(namespaced|cluster)_\w+")
HTTP_VERBS = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
CUSTOM_OBJECTS = {
    "get_namespaced_custom_object",
    "patch_namespaced_custom_object",
    "patch_namespaced_custom_object_status",
    "create_cluster_custom_object",
}

Grant = tuple[str, str, str]
"""(apiGroup, resource, verb)."""

OWN_KINDS = {("modelrollout.dev", kind.plural) for kind in ALL_KINDS}
ROUTES = {(gatewayapi.GROUP, gatewayapi.PLURAL), (istio.GROUP, istio.PLURAL)}
PEERING = ("kopf.dev", "clusterkopfpeerings")
OWNED = {("apps", "deployments"), ("", "services"), ("apps", "controllerrevisions"), ("batch", "jobs")}

KOPF_NAMESPACED: set[Grant] = {
    # Watch streams of the handled kinds (a list, then a watch), finalizers and progress annotations.
    *{(group, plural, verb) for group, plural in OWN_KINDS for verb in ("list", "watch", "patch")},
    # kopf.event() posts core/v1 Events.
    ("", "events", "create"),
    # engine/owners.watch_owned: lists and watches of what a ModelDeployment owns, so a change pokes its owner
    # (kopf's watches, or kube/informer.py's own when the operator watches every namespace).
    *{(group, plural, "list") for group, plural in OWNED},
    *{(group, plural, "watch") for group, plural in OWNED},
}
KOPF_CLUSTER: set[Grant] = {
    # Peering: watch the ClusterKopfPeering, patch keep-alives into it.
    (*PEERING, "list"),
    (*PEERING, "watch"),
    (*PEERING, "patch"),
    # Discovery of CRDs as they come and go (kopf's resource observer).
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
}
KOPF_FOLLOWING_NAMESPACES: set[Grant] = {("", "namespaces", "list"), ("", "namespaces", "watch")}
"""Only when restricted to namespaces: kopf lists and watches namespaces to follow those that appear later."""
OWN_POD: set[Grant] = {("", "pods", "get")}
"""kube/bootstrap.own_image reads the operator's own Pod: a Role in its own namespace."""
SECRETS: set[Grant] = {("", "secrets", "get")}
LEASES: set[Grant] = {("coordination.k8s.io", "leases", verb) for verb in ("list", "create", "update", "delete")}
"""engine/sharding.Membership keeps its Leases in its own namespace: a Role there, with the chart's ``shards`` only
(kustomize runs one active replica by peering; an overlay that turns sharding on adds the rule)."""


def called_client_methods() -> dict[str, set[str]]:
    """Kubernetes client methods the package calls, and the modules calling them."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and CLIENT_METHOD.fullmatch(node.attr):
                found.setdefault(node.attr, set()).add(str(path.relative_to(PACKAGE)))
    return found


def static_grant(method: str) -> Grant:
    """(group, resource, verb) of a typed client method, from the request its serializer builds."""
    apis = (
        kubernetes.client.CoreV1Api,
        kubernetes.client.AppsV1Api,
        kubernetes.client.BatchV1Api,
        kubernetes.client.CoordinationV1Api,
    )
    for api in apis:
        serializer = getattr(api, f"_{method}_serialize", None)
        if serializer is None:
            continue
        source = inspect.getsource(serializer)
        http = re.search(r"method='(\w+)'", source)
        path = re.search(r"resource_path='([^']+)'", source)
        assert http, method
        assert path, method
        match = re.fullmatch(r"/apis?/(?:(?P<group>[^/]+)/)?v1(?:/namespaces/\{namespace\})?/(?P<rest>.+)", path[1])
        assert match, path[1]
        parts = match["rest"].split("/")
        resource = parts[0] + (f"/{parts[2]}" if len(parts) > 2 else "")
        verb = "list" if http[1] == "GET" and "{name}" not in path[1] else HTTP_VERBS[http[1]]
        group = match["group"] if path[1].startswith("/apis/") else ""
        return (group or "", resource, verb)
    raise AssertionError(f"{method}: not a typed client method of core, apps, batch or coordination")


def custom_grants(method: str) -> set[Grant]:
    """CustomObjectsApi calls: their resources are the kinds the code names."""
    verb = {"get": "get", "patch": "patch", "create": "create"}[method.split("_", maxsplit=1)[0]]
    if method == "create_cluster_custom_object":
        return {(*PEERING, verb)}  # kube/bootstrap.ensure_peering
    if method.endswith("_status"):
        return {(group, f"{plural}/status", verb) for group, plural in OWN_KINDS}
    return {(group, plural, verb) for group, plural in OWN_KINDS | ROUTES}


def code_grants() -> set[Grant]:
    grants: set[Grant] = set()
    for method in called_client_methods():
        grants |= custom_grants(method) if method in CUSTOM_OBJECTS else {static_grant(method)}
    return grants


def expected(*, namespaced_mode: bool) -> tuple[set[Grant], set[Grant]]:
    """(grants in the watched namespaces, cluster-scoped grants), secrets, the own pod and Leases aside."""
    namespaced = (code_grants() | KOPF_NAMESPACED) - SECRETS - OWN_POD - LEASES - {(*PEERING, "create")}
    cluster = KOPF_CLUSTER | {(*PEERING, "create")} | (KOPF_FOLLOWING_NAMESPACES if namespaced_mode else set())
    return namespaced, cluster


def grants_of(role: dict[str, Any]) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_code_needs_what_the_docs_say() -> None:
    """Spot checks, so a broken derivation cannot pass by deriving nothing."""
    grants = code_grants()
    assert ("apps", "controllerrevisions", "update") in grants  # renumbering replaces
    assert ("", "pods", "list") in grants
    assert ("", "secrets", "get") in grants
    assert ("gateway.networking.k8s.io", "httproutes", "patch") in grants
    assert ("", "pods/log", "get") not in grants
    assert grants >= LEASES, "engine/sharding.py: list, create, replace and delete Leases"
    assert ("coordination.k8s.io", "leases", "get") not in grants
    assert not [g for g in grants if g[2] == "watch"], "no watch_* call: watches are list calls with watch=True"


def test_kustomize_rbac_equals_the_calls() -> None:
    objects = [
        d
        for path in BASE.glob("*.yaml")
        if path.name != "kustomization.yaml"
        for d in yaml.safe_load_all(path.read_text())
        if d
    ]
    roles = {(o["kind"], o["metadata"]["name"]): grants_of(o) for o in objects if o["kind"] in {"ClusterRole", "Role"}}
    namespaced, cluster = expected(namespaced_mode=False)
    assert_equal(roles[("ClusterRole", "modelrollout-operator")], namespaced | cluster)
    assert_equal(roles[("Role", "modelrollout-operator")], OWN_POD)
    assert_equal(roles[("ClusterRole", "modelrollout-operator-secrets")], SECRETS)


def assert_equal(granted: set[Grant], needed: set[Grant]) -> None:
    assert not needed - granted, f"missing permissions: {sorted(needed - granted)}"
    assert not granted - needed, f"granted but never used: {sorted(granted - needed)}"


def render_chart(*values: str) -> list[dict[str, Any]]:
    helm = require_tool("helm")
    result = subprocess.run(
        [str(helm), "template", "r", str(CHART), "-n", "ops", "--kube-version", "v1.31.0", *values],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.mark.integration
def test_chart_rbac_equals_the_calls_cluster_wide() -> None:
    objects = render_chart()
    namespaced, cluster = expected(namespaced_mode=False)
    cluster_roles = {o["metadata"]["name"]: grants_of(o) for o in objects if o["kind"] == "ClusterRole"}
    assert_equal(cluster_roles["r-modelrollout-operator"], namespaced | cluster)
    assert_equal(cluster_roles["r-modelrollout-secrets"], SECRETS)
    roles = [o for o in objects if o["kind"] == "Role"]
    assert [(r["metadata"]["namespace"], grants_of(r)) for r in roles] == [("ops", OWN_POD)]


@pytest.mark.integration
def test_chart_shards_add_the_leases_in_its_own_namespace_and_drop_peering() -> None:
    objects = render_chart("--set", "shards=4")
    roles = [o for o in objects if o["kind"] == "Role"]
    assert [(r["metadata"]["namespace"], grants_of(r)) for r in roles] == [("ops", OWN_POD | LEASES)]
    env = {
        e["name"]: e
        for o in objects
        if o["kind"] == "Deployment"
        for e in o["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODELROLLOUT_SHARDS"]["value"] == "4"
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "MODELROLLOUT_PEERING_NAME" not in env, "each replica runs standalone; the Leases decide"


@pytest.mark.integration
def test_chart_rbac_is_namespaced_when_watching_namespaces() -> None:
    objects = render_chart("--set", "watchNamespaces={team-a,team-b}")
    namespaced, cluster = expected(namespaced_mode=True)
    cluster_roles = {o["metadata"]["name"]: grants_of(o) for o in objects if o["kind"] == "ClusterRole"}
    assert_equal(cluster_roles.pop("r-modelrollout-operator"), cluster)
    assert set(cluster_roles) == {"r-modelrollout-view", "r-modelrollout-edit"}, "no other cluster-wide grant"
    roles: dict[tuple[str, str], set[Grant]] = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): grants_of(o) for o in objects if o["kind"] == "Role"
    }
    for ns in ("team-a", "team-b"):
        assert_equal(roles.pop((ns, "r-modelrollout-operator")), namespaced)
        assert_equal(roles.pop((ns, "r-modelrollout-secrets")), SECRETS)
    assert roles == {("ops", "r-modelrollout-self"): OWN_POD}
    bindings = {(o["metadata"]["namespace"], o["roleRef"]["name"]) for o in objects if o["kind"] == "RoleBinding"}
    assert bindings == {
        ("team-a", "r-modelrollout-operator"),
        ("team-b", "r-modelrollout-operator"),
        ("team-a", "r-modelrollout-secrets"),
        ("team-b", "r-modelrollout-secrets"),
        ("ops", "r-modelrollout-self"),
    }


@pytest.mark.integration
def test_chart_secrets_can_be_narrowed_or_dropped() -> None:
    narrowed = render_chart("--set", "rbac.secrets.namespaces={hooks}")
    secret_roles = [o for o in narrowed if o["metadata"]["name"].endswith("-secrets") and o["kind"].endswith("Role")]
    assert [(o["kind"], o["metadata"].get("namespace")) for o in secret_roles] == [("Role", "hooks")]
    dropped = render_chart("--set", "rbac.secrets.enabled=false")
    assert not [o for o in dropped if "secrets" in {r for x in o.get("rules", []) for r in x["resources"]}]
