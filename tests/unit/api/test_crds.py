"""The generated CRDs are structural, committed as generated, and default like the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelrollout.api.crd import all_crds, crd
from modelrollout.api.kinds import ALL_KINDS
from modelrollout.cli.crds import render

ROOT = Path(__file__).resolve().parents[3]
FOLDERS = ["crds", "manifests/base/crds", "charts/modelrollout/crds"]
EMBEDDED = (".spec.template.", ".spec.smokeTest.jobTemplate.")


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = []
    if isinstance(node, dict):
        if "type" in node or "x-kubernetes-preserve-unknown-fields" in node or "properties" in node:
            nodes.append((path, node))
        for key in ("properties",):
            for name, child in node.get(key, {}).items():
                nodes.extend(walk(child, f"{path}.{name}"))
        if "items" in node:
            nodes.extend(walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            nodes.extend(walk(node["additionalProperties"], f"{path}{{}}"))
    return nodes


@pytest.mark.parametrize("folder", FOLDERS)
@pytest.mark.parametrize("kind", ALL_KINDS, ids=[k.kind for k in ALL_KINDS])
def test_committed_crds_are_what_the_models_generate(folder: str, kind) -> None:
    path = ROOT / folder / f"{kind.crd_name}.yaml"
    assert path.read_text() == render(crd(kind)), f"{path} is stale: run `make crds`"


@pytest.mark.parametrize("document", all_crds(), ids=lambda d: d["metadata"]["name"])
def test_schemas_are_structural(document: dict[str, Any]) -> None:
    schema = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    text = yaml.safe_dump(schema)
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "$defs", "title:", "const:"):
        assert forbidden not in text
    for path, node in walk(schema):
        preserve = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
        assert "type" in node or preserve, f"{path} has no type"
        if "properties" in node:
            assert "additionalProperties" not in node, f"{path} mixes properties and additionalProperties"
        if isinstance(node.get("exclusiveMinimum"), (int, float)) and not isinstance(node["exclusiveMinimum"], bool):
            pytest.fail(f"{path}: exclusiveMinimum must be boolean in OpenAPI v3.0")
        generated = path.startswith(EMBEDDED)  # Kubernetes' own schemas, kept without their descriptions
        undocumented_ok = path in ("", ".apiVersion", ".kind", ".metadata") or path.endswith(("[]", "}")) or generated
        assert node.get("description") or undocumented_ok, f"{path} has no description for kubectl explain"


def test_only_the_drift_reference_and_kubernetes_own_open_leaves_are_unchecked() -> None:
    """The pod and Job templates carry Kubernetes' schemas; what stays open there is what Kubernetes leaves
    open too (a Quantity, which is a string or a number; raw extension objects)."""
    open_paths = []
    for document in all_crds():
        schema = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        open_paths += [p for p, n in walk(schema) if n.get("x-kubernetes-preserve-unknown-fields")]
    ours = [p for p in open_paths if not p.startswith(EMBEDDED)]
    assert ours == [".spec.reference.inline"]
    leaves = {p.rsplit(".", 1)[-1] for p in open_paths if p.startswith(EMBEDDED)}
    assert leaves <= {"limits{}", "requests{}", "overhead{}", "divisor", "sizeLimit"}, leaves


def test_templates_have_the_kubernetes_schema_and_the_rollouts_own_requirements() -> None:
    spec = crd(ALL_KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    template = spec["properties"]["template"]
    assert template["required"] == ["spec"]
    pod = template["properties"]["spec"]
    assert "containers" in pod["required"]
    assert pod["properties"]["containers"]["minItems"] == 1
    container = pod["properties"]["containers"]["items"]
    assert {"name", "image"} <= set(container["required"])
    port = container["properties"]["ports"]["items"]["properties"]["containerPort"]
    assert (port["type"], port["minimum"], port["maximum"]) == ("integer", 1, 65535)
    job = spec["properties"]["smokeTest"]["properties"]["jobTemplate"]
    assert job["properties"]["spec"]["properties"]["template"]["properties"]["spec"] == pod


@pytest.mark.parametrize("document", all_crds(), ids=lambda d: d["metadata"]["name"])
def test_crds_stay_far_below_the_etcd_object_limit(document: dict[str, Any]) -> None:
    """etcd refuses objects over 1.5 MiB; the embedded schemas carry no descriptions to stay far below."""
    assert len(json.dumps(document)) < 512 * 1024


def test_model_deployment_names_are_limited_so_derived_service_names_are_valid() -> None:
    root = crd(ALL_KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = " ".join(r["rule"] for r in root["x-kubernetes-validations"])
    assert "size(self.metadata.name) <= 56" in rules
    assert len("x" * 56 + "-stable") <= 63


def test_printer_columns_show_revision_phase_weight_and_age() -> None:
    columns = {c["name"] for c in crd(ALL_KINDS[0])["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert {"Revision", "Phase", "Weight", "Age"} <= columns
