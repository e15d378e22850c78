"""The generated CRDs are structural, committed as generated, and default like the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelrollout.api.crd import all_crds, crd
from modelrollout.api.kinds import ALL_KINDS
from modelrollout.cli.crds import render

ROOT = Path(__file__).resolve().parents[3]
FOLDERS = ["crds", "manifests/base/crds", "charts/modelrollout/crds"]


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
        preserve = node.get("x-kubernetes-preserve-unknown-fields")
        assert "type" in node or preserve, f"{path} has no type"
        if "properties" in node:
            assert "additionalProperties" not in node, f"{path} mixes properties and additionalProperties"
        if isinstance(node.get("exclusiveMinimum"), (int, float)) and not isinstance(node["exclusiveMinimum"], bool):
            pytest.fail(f"{path}: exclusiveMinimum must be boolean in OpenAPI v3.0")
        undocumented_ok = path in ("", ".apiVersion", ".kind", ".metadata") or path.endswith(("[]", "}"))
        assert node.get("description") or undocumented_ok, f"{path} has no description for kubectl explain"


def test_embedded_templates_are_the_only_open_objects() -> None:
    open_paths = []
    for document in all_crds():
        schema = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        open_paths += [p for p, n in walk(schema) if n.get("x-kubernetes-preserve-unknown-fields")]
    assert sorted(open_paths) == sorted([".spec.template", ".spec.smokeTest.jobTemplate", ".spec.reference.inline"])


def test_printer_columns_show_revision_phase_weight_and_age() -> None:
    columns = {c["name"] for c in crd(ALL_KINDS[0])["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert {"Revision", "Phase", "Weight", "Age"} <= columns
