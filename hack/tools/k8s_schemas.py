#!/usr/bin/env python3
"""Generate operator/modelrollout/api/k8s_schemas.json: the pod and Job template schemas the CRDs embed.

Why: ``spec.template`` (a core/v1 PodTemplateSpec) and ``smokeTest.jobTemplate`` (a batch/v1
JobTemplateSpec) used to be ``x-kubernetes-preserve-unknown-fields``, so the API server took
``containers: "abc"`` or ``containerPort: "http"`` and the operator met the mistake only when
creating the Deployment. This script takes Kubernetes' own OpenAPI v3 definitions of the
pinned release (hack/localcluster/versions.env) and turns them into the structural schemas a
CRD may embed:

* ``$ref``/``allOf`` inlined, descriptions dropped (they would make the CRD several MiB; etcd
  refuses objects over 1.5 MiB), defaults dropped (the API server would otherwise write them
  into the spec, and the revision hash would change with the server version);
* ``oneOf`` int-or-string becomes ``x-kubernetes-int-or-string``; a Quantity (a string or a
  number) becomes an untyped leaf that the Deployment's validation judges;
* list-map and patch annotations dropped (a list-map needs required or defaulted keys, and
  duplicates are the Deployment's validation's business);
* a few checks the OpenAPI leaves to Go code and that a model server always needs, added by
  hand (``EXTRAS``): at least one container, every container named and with an image, ports
  in range.

The output is committed; ``make crds`` reads it. Regenerate after bumping the pinned release:

    python hack/tools/k8s_schemas.py            # from the Go module cache (go mod download)
    python hack/tools/k8s_schemas.py --from DIR # from a folder of api__v1_openapi.json files
    python hack/tools/k8s_schemas.py --check    # fail when the committed file is stale
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "operator" / "modelrollout" / "api" / "k8s_schemas.json"
VERSIONS = REPO / "hack" / "localcluster" / "versions.env"
DOCUMENTS = ("api__v1_openapi.json", "apis__batch__v1_openapi.json")
ROOTS = {
    "podTemplateSpec": "io.k8s.api.core.v1.PodTemplateSpec",
    "jobTemplateSpec": "io.k8s.api.batch.v1.JobTemplateSpec",
}
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
KEPT = frozenset(
    {"type", "format", "enum", "required", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"}
)
"""Validation keywords copied as they are; everything else is handled or dropped."""

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
TEMPLATE_METADATA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "labels": {
            "type": "object",
            "maxProperties": 64,
            "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
        },
        "annotations": {
            "type": "object",
            "maxProperties": 128,
            "additionalProperties": {"type": "string", "maxLength": 65536},
        },
    },
}
"""A template's metadata: labels (values checked, keys by the operator) and annotations; the rest
of ObjectMeta (name, namespace, owner references) has no meaning in a template and is pruned."""

EXTRAS: dict[str, dict[str, Any]] = {
    "io.k8s.api.core.v1.PodTemplateSpec": {"required": ["spec"]},
    "io.k8s.api.core.v1.PodSpec": {"properties": {"containers": {"minItems": 1, "maxItems": 64}}},
    "io.k8s.api.core.v1.Container": {
        "required": ["name", "image"],
        "properties": {
            "name": {"maxLength": 63, "pattern": DNS_LABEL},
            "image": {"minLength": 1, "maxLength": 4096, "pattern": r"^\S+$"},
        },
    },
    "io.k8s.api.core.v1.ContainerPort": {"properties": {"containerPort": {"minimum": 1, "maximum": 65535}}},
    "io.k8s.api.core.v1.EnvVar": {"properties": {"name": {"minLength": 1}}},
    "io.k8s.api.batch.v1.JobTemplateSpec": {"required": ["spec"]},
}
"""Checks Kubernetes makes in Go code, which a rollout needs at apply time, keyed by definition."""


class _Inliner:
    def __init__(self, schemas: dict[str, Any]) -> None:
        self._schemas = schemas

    def definition(self, name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        if name == QUANTITY:
            return {"x-kubernetes-preserve-unknown-fields": True}
        if name == INT_OR_STRING:
            return {"x-kubernetes-int-or-string": True}
        if name == OBJECT_META:
            return copy.deepcopy(TEMPLATE_METADATA)
        if name in seen:
            # A recursive type (none in pod templates today): stop and let the workload's validation judge.
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        node = self.node(self._schemas[name], (*seen, name))
        return _merge(node, EXTRAS.get(name, {}))

    def node(self, raw: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
        if "$ref" in raw:
            return self.definition(raw["$ref"].rsplit("/", 1)[-1], seen)
        if "allOf" in raw:
            (only,) = raw["allOf"]
            return self.node(only, seen)
        if raw.get("format") == "int-or-string":
            return {"x-kubernetes-int-or-string": True}
        result: dict[str, Any] = {key: value for key, value in raw.items() if key in KEPT}
        if "properties" in raw:
            result["properties"] = {key: self.node(value, seen) for key, value in sorted(raw["properties"].items())}
        if "items" in raw:
            result["items"] = self.node(raw["items"], seen)
        if isinstance(raw.get("additionalProperties"), dict):
            result["additionalProperties"] = self.node(raw["additionalProperties"], seen)
        if result.get("type") == "object" and "properties" not in result and "additionalProperties" not in result:
            result["x-kubernetes-preserve-unknown-fields"] = True  # RawExtension and the like
        if "type" not in result and "x-kubernetes-preserve-unknown-fields" not in result:
            raise SystemExit(f"no type for {sorted(raw)} under {seen[-1] if seen else '?'}")
        return result


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif key == "required":
            merged[key] = sorted({*merged.get(key, []), *value})
        else:
            merged[key] = value
    return merged


def pinned_version() -> str:
    for line in VERSIONS.read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].strip()
    raise SystemExit(f"no KUBERNETES_VERSION in {VERSIONS}")


def module_folder(version: str) -> Path:
    """The pinned release's OpenAPI folder in the Go module cache (downloaded when missing)."""
    cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    folder = Path(cache) / f"k8s.io/kubernetes@{version}" / "api" / "openapi-spec" / "v3"
    if not folder.is_dir():
        subprocess.run(
            ["go", "mod", "download", f"k8s.io/kubernetes@{version}"],
            cwd=REPO / "hack" / "localcluster" / "kubernetes",
            check=True,
        )
    return folder


def generate(folder: Path, version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for document in DOCUMENTS:
        schemas.update(json.loads((folder / document).read_text())["components"]["schemas"])
    inliner = _Inliner(schemas)
    return {
        "kubernetesVersion": version,
        "generatedBy": "hack/tools/k8s_schemas.py",
        **{key: inliner.definition(name) for key, name in ROOTS.items()},
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="a folder holding " + " and ".join(DOCUMENTS))
    parser.add_argument("--check", action="store_true", help="fail when the committed file differs")
    args = parser.parse_args()
    version = pinned_version()
    text = render(generate(args.source or module_folder(version), version))
    if args.check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(REPO)} is stale: run python hack/tools/k8s_schemas.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(REPO)} ({len(text)} bytes) from Kubernetes {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
