"""Argo CD health checks on objects recorded from real e2e runs, not only on hand-written ones.

Why: the hand-written objects in tests/data/argocd/ say what the authors believed the operator
writes; the objects in tests/data/argocd/recorded/ are what the operator did write during the
e2e scenarios (``MODELROLLOUT_E2E_RECORD=1 pytest e2e``), at the moments a person would look
at Argo CD: a canary progressing, a rollout healthy, degraded after a rollback, failed at its
smoke test, paused at a manual gate; an experiment running and concluded; a drift monitor with
and without drift. The Lua scripts are run the way tests/unit/test_argocd.py runs them, and
the expected health follows from the recorded phase, so a change of the operator's status that
the health checks misread shows up here once the objects are recorded again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_argocd import (
    DRIFTMONITOR_HEALTH,
    EXPERIMENT_HEALTH,
    HEALTH_SCRIPTS,
    MODELDEPLOYMENT_HEALTH,
    STATUS_MODELS,
    run_lua,
)

RECORDED = Path(__file__).resolve().parents[2] / "tests" / "data" / "argocd" / "recorded"
FILES = sorted(RECORDED.glob("*.yaml"))

REQUIRED = {
    "ModelDeployment": {"Progressing", "Healthy", "Degraded", "Failed", "Paused"},
    "Experiment": {"Running", "Concluded"},
    "DriftMonitor": {"Drift", "NoDrift"},
}
"""The moments the e2e suite records: each must be present, so none silently goes missing."""


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def phase_of(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    key = "state" if obj["kind"] == "DriftMonitor" else "phase"
    return str(status.get(key))


def expected_health(obj: dict[str, Any]) -> str:
    table = {"ModelDeployment": MODELDEPLOYMENT_HEALTH, "Experiment": EXPERIMENT_HEALTH}
    return table.get(obj["kind"], DRIFTMONITOR_HEALTH)[phase_of(obj)]


def test_every_recorded_moment_is_there() -> None:
    found: dict[str, set[str]] = {}
    for path in FILES:
        obj = load(path)
        found.setdefault(obj["kind"], set()).add(phase_of(obj))
    for kind, phases in REQUIRED.items():
        assert phases <= found.get(kind, set()), f"{kind}: no recorded object in {phases - found.get(kind, set())}"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_recorded_object_health(path: Path) -> None:
    obj = load(path)
    result = run_lua(HEALTH_SCRIPTS[obj["kind"]], obj)
    assert result["status"] == expected_health(obj), (phase_of(obj), result)
    assert result["message"], "every health status carries a message people can act on"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_recorded_object_is_clean_and_valid(path: Path) -> None:
    """Recorded from a live API server, stripped of what belongs to that server, and a status the API accepts."""
    obj = load(path)
    assert not {"managedFields", "uid", "resourceVersion"} & set(obj["metadata"])
    STATUS_MODELS[obj["kind"]].model_validate(obj["status"])


def health_message(name: str) -> str:
    path = RECORDED / name
    message: str = run_lua(HEALTH_SCRIPTS[load(path)["kind"]], load(path))["message"]
    return message


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("modeldeployment-failed-output-range.yaml", "output_range"),
        ("modeldeployment-degraded.yaml", "error-rate"),
        ("modeldeployment-progressing.yaml", "25"),
        ("driftmonitor-drift.yaml", "return_1d"),
        ("experiment-concluded.yaml", "Promote challenger"),
    ],
)
def test_recorded_messages_say_why(name: str, words: str) -> None:
    """The message Argo CD shows names the cause a person has to act on."""
    assert words in health_message(name)
