"""The shared base of every resource model.

The pydantic models in this package are the single source of truth for the
CRDs: field docstrings become schema descriptions (so ``kubectl explain`` is
useful), ``x-kubernetes-validations`` rules ride along in ``json_schema_extra``,
and the same models parse what the API server hands the operator.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w))+$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}

Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        description="A duration such as 30s, 5m, 1h30m or 7d (Prometheus style).",
    ),
]
"""Durations stay strings in the API so they read the same in YAML and PromQL."""

Name = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
"""A Kubernetes object name (DNS subdomain)."""


def duration_seconds(value: str) -> float:
    """Parse a Prometheus-style duration; the schema pattern has already vetted it."""
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"not a duration: {value!r}")
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """Render seconds as the shortest exact Prometheus duration (used for PromQL windows)."""
    whole = max(1, round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


class Rule(NamedTuple):
    """A cross-field rule, enforced twice from one definition.

    The API server evaluates ``cel`` at apply time (the earliest point a user
    can hear about a mistake); the operator evaluates ``check`` when it parses
    a resource, so an object that slipped past an older CRD still gets the same
    message as a condition instead of a crash.
    """

    cel: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None


def _schema_rules(schema: dict[str, Any], cls: type) -> None:
    rules: tuple[Rule, ...] = getattr(cls, "__rules__", ())
    if rules:
        schema["x-kubernetes-validations"] = [cel(r.cel, r.message, r.field_path) for r in rules]


class ApiModel(BaseModel):
    """Base of spec models: camelCase on the wire, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        json_schema_extra=_schema_rules,
    )

    __rules__: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _enforce_rules(self) -> Self:
        for rule in type(self).__rules__:
            if not rule.check(self):
                raise ValueError(rule.message)
        return self

    def to_wire(self) -> dict[str, Any]:
        """The JSON form the API server stores: aliases, no unset optionals."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(ApiModel):
    """Base of status models: unknown fields are ignored so an older operator can read a newer status."""

    model_config = ConfigDict(extra="ignore")


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry; a message always names the field it is about."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry
