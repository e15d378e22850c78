"""Argo CD health checks and resource actions, run as Argo CD runs them: Lua with ``obj`` set.

Why lupa with Lua 5.1: Argo CD evaluates these scripts with gopher-lua, a Lua 5.1
implementation, so 5.1 catches the same syntax (no ``goto``, no ``//``) and number
semantics. The objects come from tests/data/argocd/ with expectations in
health_test.yaml and actions_test.yaml (Argo CD's own test layout), so objects
recorded from e2e runs are added as data, not code.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from hack.tools import argocd_cm
from modelrollout.api import driftmonitor, experiment, modeldeployment
from modelrollout.core.actions import ACTION_ANNOTATION, ACTION_ID_ANNOTATION, ACTION_NAMES

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "manifests" / "argocd"
DATA = REPO / "tests" / "data" / "argocd"
ACTIONS = ("promote", "promote-full", "abort", "retry", "pause", "resume")
HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

HEALTH_SCRIPTS = {
    "ModelDeployment": ARGOCD / "health" / "modeldeployment.lua",
    "Experiment": ARGOCD / "health" / "experiment.lua",
    "DriftMonitor": ARGOCD / "health" / "driftmonitor.lua",
}
STATUS_MODELS: dict[str, type[Any]] = {
    "ModelDeployment": modeldeployment.ModelDeploymentStatus,
    "Experiment": experiment.ExperimentStatus,
    "DriftMonitor": driftmonitor.DriftMonitorStatus,
}


# --- running Lua the way Argo CD does ------------------------------------------------------------


def _to_lua(runtime: Any, value: Any) -> Any:
    """A Python (JSON) value as a Lua value; JSON null becomes nil, as in Argo CD."""
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def _from_lua(value: Any) -> Any:
    """A Lua value as Python: a table with keys 1..n is a list, an empty table an empty dict."""
    if lua51.lua_type(value) != "table":
        return value
    items = dict(value.items())
    if items and all(isinstance(k, int) for k in items) and sorted(items) == list(range(1, len(items) + 1)):
        return [_from_lua(items[i]) for i in range(1, len(items) + 1)]
    return {k: _from_lua(v) for k, v in items.items()}


def run_lua(script: Path, obj: dict[str, Any]) -> Any:
    """Run one script in a fresh runtime with the global ``obj``, returning its result as Python."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=False)
    runtime.globals().obj = _to_lua(runtime, obj)
    return _from_lua(runtime.execute(script.read_text()))


def _normalise(value: Any) -> Any:
    """Empty lists and dicts are one thing once through Lua (Argo CD has the same ambiguity)."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items() if v is not None} or {}
    if isinstance(value, list):
        return [_normalise(v) for v in value] or {}
    return value


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DATA / name).read_text())
    return document


def health(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = run_lua(HEALTH_SCRIPTS[obj["kind"]], obj)
    return result


# --- health ----------------------------------------------------------------------------------------

HEALTH_CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "health_test.yaml").read_text())["tests"]


@pytest.mark.parametrize("case", HEALTH_CASES, ids=[c["inputPath"] for c in HEALTH_CASES])
def test_health(case: dict[str, Any]) -> None:
    result = health(load(case["inputPath"]))
    expected = case["healthStatus"]
    assert result["status"] == expected["status"], result
    if "message" in expected:
        assert result["message"] == expected["message"]
    assert result["message"], "every health status carries a message people can act on"


def test_every_data_file_has_a_health_expectation() -> None:
    """A recorded object dropped into the folder without an expectation would test nothing."""
    listed = {c["inputPath"] for c in HEALTH_CASES}
    objects = {p.name for p in DATA.glob("*.yaml") if not p.name.endswith("_test.yaml")}
    assert objects - listed == set()
    assert listed - objects == set()


@pytest.mark.parametrize("name", sorted(c["inputPath"] for c in HEALTH_CASES))
def test_data_status_is_valid_for_the_api(name: str) -> None:
    """The representative statuses must be ones the operator can write: valid for the models, known fields."""
    obj = load(name)
    status = obj.get("status")
    if status is None:
        return
    model = STATUS_MODELS[obj["kind"]]
    model.model_validate(status)
    known = {field.alias or key for key, field in model.model_fields.items()}
    assert set(status) - known == set(), f"{name}: status fields the API does not have"


def _minimal(kind: str, status: dict[str, Any], spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "default", "generation": 1, "resourceVersion": "1"},
        "spec": spec or {},
        "status": {"observedGeneration": 1, **status},
    }


MODELDEPLOYMENT_HEALTH = {
    "Pending": "Progressing",
    "SmokeTesting": "Progressing",
    "Progressing": "Progressing",
    "Paused": "Suspended",
    "Healthy": "Healthy",
    "Degraded": "Degraded",
    "Failed": "Degraded",
}
EXPERIMENT_HEALTH = {
    "Pending": "Progressing",
    "Running": "Progressing",
    "Concluded": "Healthy",
    "Stopped": "Suspended",
    "Failed": "Degraded",
}
DRIFTMONITOR_HEALTH = {
    "Pending": "Healthy",
    "NoDrift": "Healthy",
    "Warning": "Healthy",
    "InsufficientData": "Healthy",
    "Drift": "Degraded",
    "Error": "Degraded",
}


def test_every_api_phase_is_mapped() -> None:
    """A phase added to the API must be added to the health checks (else Argo CD shows Unknown)."""
    assert set(typing.get_args(modeldeployment.Phase)) == set(MODELDEPLOYMENT_HEALTH)
    assert set(typing.get_args(experiment.ExperimentPhase)) == set(EXPERIMENT_HEALTH)
    assert set(typing.get_args(driftmonitor.DriftState)) == set(DRIFTMONITOR_HEALTH)


@pytest.mark.parametrize(("phase", "status"), MODELDEPLOYMENT_HEALTH.items())
def test_modeldeployment_phase(phase: str, status: str) -> None:
    result = health(_minimal("ModelDeployment", {"phase": phase}))
    assert result["status"] == status
    assert result["message"]


@pytest.mark.parametrize(("phase", "status"), EXPERIMENT_HEALTH.items())
def test_experiment_phase(phase: str, status: str) -> None:
    result = health(_minimal("Experiment", {"phase": phase}))
    assert result["status"] == status
    assert result["message"]


@pytest.mark.parametrize(("state", "status"), DRIFTMONITOR_HEALTH.items())
def test_driftmonitor_state(state: str, status: str) -> None:
    result = health(_minimal("DriftMonitor", {"state": state}))
    assert result["status"] == status
    assert result["message"]


def test_modeldeployment_degraded_wins_over_paused() -> None:
    """A paused rollout that was rolled back must show the rollback, not just "paused"."""
    obj = _minimal("ModelDeployment", {"phase": "Degraded", "message": "rolled back"}, spec={"paused": True})
    assert health(obj) == {"status": "Degraded", "message": "rolled back"}


def test_modeldeployment_without_observed_generation_is_progressing() -> None:
    obj = _minimal("ModelDeployment", {"phase": "Healthy"})
    del obj["status"]["observedGeneration"]
    assert health(obj)["status"] == "Progressing"


def test_unknown_phase_is_unknown_not_healthy() -> None:
    """A phase from a newer operator is not silently Healthy."""
    assert health(_minimal("ModelDeployment", {"phase": "Exploded"}))["status"] == "Unknown"
    assert health(_minimal("Experiment", {"phase": "Exploded"}))["status"] == "Unknown"
    assert health(_minimal("DriftMonitor", {"state": "Exploded"}))["status"] == "Unknown"


# --- actions ---------------------------------------------------------------------------------------

ACTION_TESTS: dict[str, Any] = yaml.safe_load((DATA / "actions_test.yaml").read_text())
ACTION_DIR = ARGOCD / "actions" / "modeldeployment"


@pytest.mark.parametrize(
    "case", ACTION_TESTS["discoveryTests"], ids=[c["inputPath"] for c in ACTION_TESTS["discoveryTests"]]
)
def test_action_discovery(case: dict[str, Any]) -> None:
    actions = run_lua(ACTION_DIR / "discovery.lua", load(case["inputPath"]))
    assert set(actions) == set(ACTIONS), "every action is listed, disabled when it does not apply"
    enabled = {name for name, action in actions.items() if not action["disabled"]}
    assert enabled == set(case["enabled"])
    for action in actions.values():
        assert action["displayName"]
        assert action["iconClass"].startswith("fa ")


ACTION_ID = re.compile(r"^(\d+)-(\S+)$")


@pytest.mark.parametrize("case", ACTION_TESTS["actionTests"], ids=[c["action"] for c in ACTION_TESTS["actionTests"]])
def test_action(case: dict[str, Any]) -> None:
    before = load(case["inputPath"])
    after = run_lua(ACTION_DIR / f"{case['action']}.lua", before)

    expected = _normalise(before)
    if "annotations" in case:
        annotations = after["metadata"]["annotations"]
        for key, value in case["annotations"].items():
            assert annotations[key] == value
        match = ACTION_ID.match(annotations["modelrollout.dev/action-id"])
        assert match, annotations["modelrollout.dev/action-id"]
        assert match.group(2) == before["metadata"]["resourceVersion"]
        expected["metadata"]["annotations"] = {
            **expected["metadata"].get("annotations", {}),
            **case["annotations"],
            "modelrollout.dev/action-id": annotations["modelrollout.dev/action-id"],
        }
    if "paused" in case:
        assert after["spec"]["paused"] is case["paused"]
        expected["spec"]["paused"] = case["paused"]
    assert _normalise(after) == expected, "the action changed something it should not"


def test_annotation_actions_are_the_ones_the_operator_consumes() -> None:
    """Every one-off action the Lua writes is a name modelrollout.core.actions accepts, under its annotations."""
    obj = load("modeldeployment-progressing.yaml")
    one_off = [name for name in ACTIONS if name not in {"pause", "resume"}]
    assert set(one_off) == set(ACTION_NAMES)
    for name in one_off:
        annotations = run_lua(ACTION_DIR / f"{name}.lua", obj)["metadata"]["annotations"]
        assert annotations[ACTION_ANNOTATION] == name
        assert annotations[ACTION_ID_ANNOTATION]


def test_action_ids_differ_between_clicks() -> None:
    """Two requests in the same second still get distinct ids: the object's resourceVersion changed in between."""
    obj = load("modeldeployment-progressing.yaml")
    first = run_lua(ACTION_DIR / "promote.lua", obj)
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
    obj["metadata"]["annotations"] = first["metadata"]["annotations"]
    second = run_lua(ACTION_DIR / "promote.lua", obj)
    key = "modelrollout.dev/action-id"
    assert first["metadata"]["annotations"][key] != second["metadata"]["annotations"][key]


def test_action_keeps_existing_annotations() -> None:
    obj = load("modeldeployment-degraded.yaml")
    obj["metadata"]["annotations"] = {"team": "quant"}
    after = run_lua(ACTION_DIR / "retry.lua", obj)
    assert after["metadata"]["annotations"]["team"] == "quant"


# --- the argocd-cm patch embeds exactly these files ------------------------------------------------


def test_argocd_cm_patch_is_generated_from_the_lua_files() -> None:
    """The committed patch is what hack/tools/argocd_cm.py renders now (regenerate it after editing Lua)."""
    assert (ARGOCD / "argocd-cm-patch.yaml").read_text() == argocd_cm.render(), (
        "manifests/argocd/argocd-cm-patch.yaml is stale: run python hack/tools/argocd_cm.py"
    )


def test_argocd_cm_patch_embeds_each_lua_file_verbatim() -> None:
    """Parsed as Argo CD parses it, every embedded script equals its source file."""
    config_map = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())
    assert config_map["kind"] == "ConfigMap"
    assert config_map["metadata"]["name"] == "argocd-cm"
    data = config_map["data"]
    for kind, script in HEALTH_SCRIPTS.items():
        assert data[f"resource.customizations.health.modelrollout.dev_{kind}"] == script.read_text()
    actions = yaml.safe_load(data["resource.customizations.actions.modelrollout.dev_ModelDeployment"])
    assert actions["discovery.lua"] == (ACTION_DIR / "discovery.lua").read_text()
    assert [d["name"] for d in actions["definitions"]] == list(ACTIONS)
    for definition in actions["definitions"]:
        assert definition["action.lua"] == (ACTION_DIR / f"{definition['name']}.lua").read_text()


def test_health_statuses_are_argo_cd_ones() -> None:
    for case in HEALTH_CASES:
        assert case["healthStatus"]["status"] in HEALTH_STATUSES
