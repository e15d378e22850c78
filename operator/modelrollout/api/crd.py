"""CRD generation from the pydantic models.

Kubernetes wants *structural* OpenAPI v3.0 schemas: no ``$ref``, a ``type`` on
every node, ``nullable`` instead of ``anyOf`` with null, boolean
``exclusiveMinimum``. Pydantic emits JSON Schema 2020-12. This module is the
translation, plus the defaults pydantic cannot express (``default_factory``),
so that the API server fills in the same defaults the models would.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from modelrollout import GROUP, VERSION
from modelrollout.api.kinds import ALL_KINDS, CATEGORY, Kind

_DROPPED_KEYS = frozenset({"title", "$defs"})


class SchemaError(ValueError):
    """The models use a construct that has no structural-schema equivalent."""


def _factory_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Defaults of fields built by ``default_factory``, in wire form, keyed by alias."""
    defaults: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.default_factory is None:
            continue
        value = field.default_factory()  # type: ignore[call-arg]
        defaults[field.alias or name] = _to_wire(value)
    return defaults


def _to_wire(value: Any) -> Any:
    if isinstance(value, BaseModel):
        # Fully expanded: the API server checks a default against the object's own CEL rules
        # before filling in nested defaults, so ``{}`` would fail a rule that reads a defaulted field.
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [_to_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_wire(item) for key, item in value.items()}
    return value


def _models_by_name(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model reachable from ``root``, by the name pydantic gives its ``$defs`` entry."""
    found: dict[str, type[BaseModel]] = {}
    pending = [root]
    while pending:
        model = pending.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = model
        for field in model.model_fields.values():
            pending.extend(_nested_models(field))
    return found


def _nested_models(field: FieldInfo) -> list[type[BaseModel]]:
    stack: list[Any] = [field.annotation]
    models: list[type[BaseModel]] = []
    while stack:
        annotation = stack.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            models.append(annotation)
        stack.extend(getattr(annotation, "__args__", ()))
    return models


class _Translator:
    def __init__(self, root: type[BaseModel]) -> None:
        self._schema = root.model_json_schema(by_alias=True, mode="validation")
        self._defs: dict[str, Any] = self._schema.get("$defs", {})
        self._models = _models_by_name(root)

    def translate(self) -> dict[str, Any]:
        return self._node(self._schema, self._schema.get("title"))

    def _resolve(self, ref: str) -> tuple[dict[str, Any], str]:
        name = ref.rsplit("/", 1)[-1]
        if name not in self._defs:
            raise SchemaError(f"unresolvable $ref {ref}")
        return self._defs[name], name

    def _node(self, node: dict[str, Any], model_name: str | None = None) -> dict[str, Any]:
        node = copy.deepcopy(node)
        if "$ref" in node:
            target, model_name = self._resolve(node.pop("$ref"))
            node = {**copy.deepcopy(target), **node}
        if "anyOf" in node:
            variants = [v for v in node.pop("anyOf") if v.get("type") != "null"]
            if len(variants) != 1:
                raise SchemaError(f"anyOf with {len(variants)} non-null variants has no structural form")
            variant = variants[0]
            if "$ref" in variant:
                target, model_name = self._resolve(variant["$ref"])
                variant = target
            node = {**copy.deepcopy(variant), **node}
            node["nullable"] = True
            if node.get("default", ...) is None:
                del node["default"]
        result: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROPPED_KEYS:
                continue
            if key == "properties":
                result[key] = {name: self._node(prop) for name, prop in value.items()}
            elif key == "items":
                result[key] = self._node(value)
            elif key == "additionalProperties":
                if isinstance(value, dict):
                    result[key] = self._node(value)
                elif (
                    value is True and "properties" not in node and not node.get("x-kubernetes-preserve-unknown-fields")
                ):
                    result["x-kubernetes-preserve-unknown-fields"] = True
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                result[bound] = value
                result[key] = True
            elif key == "const":
                result["enum"] = [value]
            else:
                result[key] = value
        if "properties" in result and result.get("type") == "object":
            result.pop("additionalProperties", None)
        if model_name and model_name in self._models and "properties" in result:
            for alias, default in _factory_defaults(self._models[model_name]).items():
                if alias in result["properties"]:
                    result["properties"][alias].setdefault("default", default)
        untyped_allowed = result.get("x-kubernetes-preserve-unknown-fields") or result.get("x-kubernetes-int-or-string")
        if "type" not in result and not untyped_allowed:
            raise SchemaError(f"schema node without a type: {sorted(result)}")
        return result


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one model."""
    return _Translator(model).translate()


def crd(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    spec_schema = structural_schema(kind.spec)
    status_schema = structural_schema(kind.status)
    spec_schema.pop("nullable", None)
    root: dict[str, Any] = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if kind.name_rules:
        root["x-kubernetes-validations"] = list(kind.name_rules)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/name": "modelrollout", "app.kubernetes.io/part-of": "modelrollout"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(kind.printer_columns),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd(kind) for kind in ALL_KINDS]
