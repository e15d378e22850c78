"""The rollout commands against a recorded fake cluster: the exact patches sent, messages and exit codes."""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from modelrollout.__main__ import main
from modelrollout.cli import _kube, rollout
from modelrollout.cli._kube import CommandError
from modelrollout.cli._undo import UndoError, choose_revision, restore_operations

V1 = {"number": 1, "versionId": "1-aaaaaaaa", "hash": "aaaaaaaaaa", "modelVersion": "1.0.0"}
V2 = {"number": 2, "versionId": "2-bbbbbbbb", "hash": "bbbbbbbbbb", "modelVersion": "2.0.0"}
V3 = {"number": 3, "versionId": "3-cccccccc", "hash": "cccccccccc", "modelVersion": "3.0.0"}


def revision(ref: dict[str, Any]) -> dict[str, Any]:
    version = ref["modelVersion"]
    return {
        "metadata": {"name": f"returns-{ref['hash']}", "labels": {"modelrollout.dev/revision": ref["hash"]}},
        "revision": ref["number"],
        "data": {
            "model": {"name": "next-day-returns", "version": version, "uri": f"s3://m/{version}"},
            "template": {"metadata": {"labels": {"app": "returns"}}, "spec": {"containers": [{"name": version}]}},
            "port": 8080,
        },
    }


def model_deployment(current: dict[str, Any], stable: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "returns", "namespace": "models", "generation": 7},
        "spec": {"model": {"version": current["modelVersion"]}, "template": {}, "port": 8080},
        "status": {"observedGeneration": 7, "currentRevision": current, "stableRevision": stable, **status},
    }


@dataclass
class FakeCluster:
    resource: dict[str, Any] | None
    revisions: list[dict[str, Any]] = field(default_factory=list)
    namespace: str = "models"
    merge_patches: list[dict[str, Any]] = field(default_factory=list)
    json_patches: list[list[dict[str, Any]]] = field(default_factory=list)

    def get_model_deployment(self, name: str) -> dict[str, Any]:
        if self.resource is None:
            raise CommandError(f"modeldeployment {name!r} not found in namespace {self.namespace!r}")
        return copy.deepcopy(self.resource)

    def merge_patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.get_model_deployment(name)
        self.merge_patches.append(patch)
        return {}

    def json_patch(self, name: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
        self.json_patches.append(operations)
        return {}

    def controller_revisions(self, name: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.revisions)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    cluster = FakeCluster(model_deployment(V3, V2), [revision(V1), revision(V2), revision(V3)])

    def connect(args: argparse.Namespace) -> FakeCluster:
        return cluster

    monkeypatch.setattr(_kube, "connect", connect)
    return cluster


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- one-off actions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "action"),
    [(["promote"], "promote"), (["promote", "--full"], "promote-full"), (["abort"], "abort")],
)
def test_actions_set_the_two_annotations_with_a_fresh_id(
    fake: FakeCluster, capsys: pytest.CaptureFixture[str], argv: list[str], action: str
) -> None:
    fake.resource = model_deployment(V3, V2, currentStepIndex=1, canaryWeight=25, smokeTest={"state": "Passed"})
    code, out, err = run(capsys, *argv, "returns")
    assert code == 0
    [patch] = fake.merge_patches
    annotations = patch["metadata"]["annotations"]
    assert annotations["modelrollout.dev/action"] == action
    assert len(annotations["modelrollout.dev/action-id"]) == 32
    assert out.startswith(f"{action} requested for modeldeployment/returns in models (action id ")
    assert err == ""


def test_each_request_has_its_own_id(fake: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    fake.resource = model_deployment(V3, V2, aborted=True)
    run(capsys, "retry", "returns")
    run(capsys, "retry", "returns")
    ids = {p["metadata"]["annotations"]["modelrollout.dev/action-id"] for p in fake.merge_patches}
    assert len(ids) == 2


def test_an_action_the_operator_will_ignore_is_still_sent_with_a_warning(
    fake: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.resource = model_deployment(V2, V2)
    code, _, err = run(capsys, "abort", "returns")
    assert code == 0
    assert len(fake.merge_patches) == 1
    assert err == "warning: the operator will likely ignore it: no canary in progress\n"


@pytest.mark.parametrize(
    ("action", "status", "reason"),
    [
        ("retry", {}, "nothing was aborted or failed"),
        ("promote", {"aborted": True}, "the canary was aborted or failed (retry it first)"),
        ("promote", {"smokeTest": {"state": "Running"}}, "no traffic step in progress (smoke tests cannot be skipped)"),
        ("promote-full", {"smokeTest": {"state": "Running"}}, "the canary has not passed its smoke tests"),
        ("promote", {"currentStepIndex": 0}, None),
        ("promote-full", {}, None),
        ("abort", {}, None),
        ("retry", {"aborted": True}, None),
    ],
)
def test_ignored_because(action: Any, status: dict[str, Any], reason: str | None) -> None:
    assert rollout.ignored_because(action, {"currentRevision": V3, "stableRevision": V2, **status}) == reason


@pytest.mark.parametrize("command", ["status", "promote", "abort", "retry", "pause", "resume", "history", "undo"])
def test_a_missing_resource_exits_1_with_a_clear_message(
    fake: FakeCluster, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    fake.resource = None
    code, out, err = run(capsys, command, "absent")
    assert code == 1
    assert out == ""
    assert err == f"modelrollout {command}: modeldeployment 'absent' not found in namespace 'models'\n"
    assert fake.merge_patches == fake.json_patches == []


# --- spec edits -------------------------------------------------------------------------------------------------


def test_pause_and_resume_patch_spec_paused_and_say_it_edits_the_spec(
    fake: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "pause", "returns")
    assert code == 0
    assert out == "modeldeployment/returns paused (spec.paused=true): traffic holds where it is\n"
    assert "this edits the spec: with GitOps, change it in Git instead" in err
    run(capsys, "resume", "returns")
    assert fake.merge_patches == [{"spec": {"paused": True}}, {"spec": {"paused": False}}]


def test_undo_during_a_canary_restores_the_stable_revision_whole(
    fake: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "undo", "returns")
    assert code == 0
    data = revision(V2)["data"]
    assert fake.json_patches == [
        [
            {"op": "add", "path": "/spec/model", "value": data["model"]},
            {"op": "add", "path": "/spec/template", "value": data["template"]},
            {"op": "add", "path": "/spec/port", "value": 8080},
        ]
    ]
    assert out == "modeldeployment/returns rolled back to revision 2 (2-bbbbbbbb, model 2.0.0)\n"
    assert "now differ from Git" in err


def test_undo_to_a_revision_and_dry_run(fake: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "undo", "returns", "--to-revision", "1", "--dry-run")
    assert code == 0
    assert json.loads(out) == restore_operations(revision(V1))
    assert fake.json_patches == []


def test_undo_to_the_revision_already_asked_for_does_nothing(
    fake: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "undo", "returns", "--to-revision", "3")
    assert code == 0
    assert "already asks for revision 3" in out
    assert fake.json_patches == []


def test_undo_to_an_unknown_revision(fake: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "undo", "returns", "--to-revision", "9")
    assert code == 1
    assert err == "modelrollout undo: revision 9 not found; kept revisions: 1, 2, 3\n"


def test_undo_when_healthy_goes_to_the_previous_revision() -> None:
    revisions = [revision(V1), revision(V3), revision(V2)]
    assert choose_revision(model_deployment(V3, V3), revisions, None)["revision"] == 2
    with pytest.raises(UndoError, match="revision 1 is the oldest kept revision"):
        choose_revision(model_deployment(V1, V1), revisions, None)
    with pytest.raises(UndoError, match="no revisions recorded yet"):
        choose_revision(model_deployment(V1, V1), [], None)


# --- status and history ---------------------------------------------------------------------------------------


def test_status_json_is_the_view(fake: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status", "returns", "-o", "json")
    assert code == 0
    view = json.loads(out)
    assert view["currentRevision"]["versionId"] == "3-cccccccc"
    assert view["stableRevision"]["versionId"] == "2-bbbbbbbb"


def test_watch_renders_until_ctrl_c_and_exits_0(
    fake: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = iter([None, None, KeyboardInterrupt()])

    def sleep(seconds: float) -> None:
        assert seconds == 1.0
        interrupt = next(frames)
        if interrupt is not None:
            raise interrupt

    monkeypatch.setattr(rollout.time, "sleep", sleep)
    code, out, _ = run(capsys, "status", "returns", "--watch")
    assert code == 0
    assert out.count("Name:        returns (namespace models)") == 3


def test_history_json(fake: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "history", "returns", "--format", "json")
    assert code == 0
    assert [row["number"] for row in json.loads(out)] == [1, 2, 3]


# --- connection -----------------------------------------------------------------------------------------------


KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {cluster: local, user: admin, namespace: team-models}
- name: bare
  context: {cluster: local, user: admin}
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: admin
  user: {token: not-a-secret}
"""


def connection(kubeconfig: str | None, namespace: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(kubeconfig=kubeconfig, namespace=namespace)


def test_the_namespace_defaults_to_the_context_then_to_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    assert _kube.Cluster.from_args(connection(str(path))).namespace == "team-models"
    assert _kube.Cluster.from_args(connection(str(path), "other")).namespace == "other"
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert _kube.Cluster.from_args(connection(None)).api.configuration.host == "https://127.0.0.1:6443"
    path.write_text(KUBECONFIG.replace("current-context: dev", "current-context: bare"))
    assert _kube.Cluster.from_args(connection(None)).namespace == "default"


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    code, _, err = run(capsys, "status", "returns", "--kubeconfig", str(missing))
    assert code == 1
    assert err.startswith(f"modelrollout status: cannot load kubeconfig {missing}:")
