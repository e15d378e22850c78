"""Revision identity: what makes two specs the same model version.

A revision is the model's identity (name, version, artifact, digest, lineage)
plus the pod template and port. Everything else in the spec (steps,
guardrails, replicas) is *how* to roll out, and changing it must not start a
new rollout.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from modelrollout.api.modeldeployment import ModelDeploymentSpec

HASH_LENGTH = 10


@dataclass(frozen=True)
class RevisionContent:
    """The part of a spec that a revision freezes, in wire form (its hash computed once)."""

    model: dict[str, Any]
    template: dict[str, Any]
    port: int

    @classmethod
    def of(cls, spec: ModelDeploymentSpec) -> RevisionContent:
        return cls(model=spec.model.to_wire(), template=spec.template, port=spec.port)

    def to_data(self) -> dict[str, Any]:
        """The ControllerRevision ``data``: enough to restore the spec exactly (undo)."""
        return {"model": self.model, "template": self.template, "port": self.port}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RevisionContent:
        return cls(model=data["model"], template=data["template"], port=int(data["port"]))

    @cached_property
    def hash(self) -> str:
        canonical = json.dumps(self.to_data(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


@dataclass(frozen=True, slots=True)
class KnownRevision:
    """A revision as its ControllerRevision records it."""

    number: int
    hash: str
    model_version: str


def version_id(number: int, content_hash: str) -> str:
    """Revision number and content hash: sortable by people, unambiguous for machines."""
    return f"{number}-{content_hash[:8]}"


def next_number(known: list[KnownRevision]) -> int:
    return max((r.number for r in known), default=0) + 1
