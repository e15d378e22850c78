"""Shared test data: the examples and the invalid resources with the message each must produce."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelrollout.api.kinds import ALL_KINDS, Kind

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
INVALID = sorted((ROOT / "tests" / "data" / "invalid").glob("*.yaml"))


@dataclass(frozen=True)
class InvalidCase:
    name: str
    document: dict[str, Any]
    expected: str
    apiserver_only: bool = False
    """Judged by the CRD's schema alone (Kubernetes' pod template schema, rules on metadata.name), which the
    operator's models do not repeat: marked by a second line ``# apiserver-only: <why>``."""

    @property
    def kind(self) -> Kind:
        return kind_of(self.document)


def kind_of(document: dict[str, Any]) -> Kind:
    return next(k for k in ALL_KINDS if k.kind == document["kind"])


def load_invalid() -> list[InvalidCase]:
    cases = []
    for path in INVALID:
        text = path.read_text()
        first = text.splitlines()[0]
        assert first.startswith("# expect: "), f"{path} must start with '# expect: <message>'"
        only = text.splitlines()[1].startswith("# apiserver-only:")
        cases.append(InvalidCase(path.stem, yaml.safe_load(text), first.removeprefix("# expect: "), only))
    return cases


def load_examples() -> list[tuple[str, dict[str, Any]]]:
    examples = []
    for path in EXAMPLES:
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc and str(doc.get("apiVersion", "")).startswith("modelrollout.dev/"):
                examples.append((f"{path.stem}[{i}]", doc))
    return examples
