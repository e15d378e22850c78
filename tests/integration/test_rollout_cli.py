"""The rollout CLI against a real API server with the operator running: every command does what it says.

The CLI runs in-process (``modelrollout.__main__.main``) with the cluster's
kubeconfig, exactly as a user would call it, and once as the installed
``kubectl modelrollout`` plugin. Rollouts are kept to two short steps without
guardrails, so each takes a few seconds; the operator and the local kubelet
are the real ones.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from e2e.harness.kubelet import LocalKubelet
from e2e.harness.scenario import Namespace, model_deployment
from modelrollout.__main__ import main
from tests.support.rollouts import controller_revisions, is_stable_on, settle_rollout
from tests.support.waiting import pace, wait_for

pytestmark = pytest.mark.integration
NAME = "returns"
NO_GUARDRAILS = {"interval": "1s", "window": "10s", "metrics": []}


class Cli:
    """``modelrollout COMMAND NAME -n NS --kubeconfig ...`` in this process, with its output."""

    def __init__(self, cluster: Any, ns: Namespace, capsys: pytest.CaptureFixture[str]) -> None:
        self.kubeconfig = str(cluster.kubeconfig)
        self.namespace = ns.name
        self.capsys = capsys

    def __call__(self, *args: str, expect: int = 0) -> str:
        code = main([*args, "-n", self.namespace, "--kubeconfig", self.kubeconfig])
        captured = self.capsys.readouterr()
        assert code == expect, f"exit {code}: {captured.out}\n{captured.err}"
        return captured.out + captured.err

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--format", "json"))


@pytest.fixture
def cli(cluster: Any, ns: Namespace, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(cluster, ns, capsys)


def spec(version: str, *, steps: list[dict[str, Any]] | None = None, label: str | None = None) -> dict[str, Any]:
    """A fast rollout: two steps of one second, no smoke tests and no guardrails."""
    document = model_deployment(NAME, version, smoke=False, analysis=copy.deepcopy(NO_GUARDRAILS))
    document["spec"]["strategy"]["canary"]["steps"] = steps or [
        {"weight": 50, "pause": {"duration": "1s"}},
        {"weight": 100, "pause": {"duration": "1s"}},
    ]
    if label is not None:
        document["spec"]["template"]["metadata"]["labels"]["track"] = label
    return document


def stable_on(ns: Namespace, version: str, timeout: float = 60) -> None:
    settle_rollout(ns, NAME, lambda s: is_stable_on(s, version), timeout, f"{version} stable")


def roll_out(ns: Namespace, version: str, **changes: Any) -> None:
    """A new model version, as a commit would bring it; ``spec.paused`` stays as the CLI left it."""
    new = spec(version, **changes)["spec"]

    def replaced() -> bool:
        new["paused"] = ns.get(NAME)["spec"].get("paused", False)
        try:
            ns.update_spec(NAME, new)
        except client.ApiException as error:
            if error.status != 409:
                raise
            return False
        return True

    wait_for(replaced, 10, interval=0.1, message="a spec update without a conflict with the operator's writes")


def holds(ns: Namespace, seconds: float) -> dict[str, Any]:
    """Status after ``seconds`` more, for asserting that nothing moved meanwhile."""
    pace(seconds)
    return ns.status(NAME)


def phase_is(ns: Namespace, phase: str, timeout: float = 30) -> None:
    settle_rollout(ns, NAME, lambda s: s.get("phase") == phase, timeout, f"phase {phase}")


def test_three_versions_have_a_history_with_lineage_and_undo_restores_revision_1_exactly(
    ns: Namespace, kubelet: LocalKubelet, cli: Cli
) -> None:
    ns.create(spec("1.0.0"))
    stable_on(ns, "1.0.0")
    roll_out(ns, "2.0.0")
    stable_on(ns, "2.0.0")
    roll_out(ns, "3.0.0", label="experimental")
    stable_on(ns, "3.0.0")

    rows = cli.json("history", NAME)
    assert [(r["number"], r["modelVersion"], r["outcome"]) for r in rows] == [
        (1, "1.0.0", "Superseded"),
        (2, "2.0.0", "Superseded"),
        (3, "3.0.0", "Stable"),
    ]
    assert [r["lineage"]["code"] for r in rows] == ["commit-1.0.0", "commit-2.0.0", "commit-3.0.0"]
    assert rows[0]["lineage"]["data"] == "s3://datasets/returns/2026-10.parquet"
    assert rows[0]["lineage"]["params"] == {"alpha": "0.01"}
    assert rows[2]["serving"] == "stable"
    text = cli("history", NAME)
    assert "code     commit-2.0.0" in text
    assert "params   alpha=0.01" in text

    before = controller_revisions(ns.api, ns.name, NAME)[1]
    out = cli("undo", NAME, "--to-revision", "1")
    assert "rolled back to revision 1" in out
    assert "differ from Git" in out
    restored = ns.get(NAME)["spec"]
    assert restored["template"] == before["data"]["template"], "the template is revision 1's, whole"
    assert "track" not in restored["template"]["metadata"]["labels"], "nothing of revision 3 merged in"
    assert restored["model"] == before["data"]["model"]
    assert restored["port"] == before["data"]["port"]

    stable_on(ns, "1.0.0")
    status = ns.status(NAME)
    assert status["stableRevision"]["hash"] == before["metadata"]["labels"]["modelrollout.dev/revision"]
    rows = cli.json("history", NAME)
    assert rows[-1]["modelVersion"] == "1.0.0", "revision 1 was rolled out again as the newest revision"
    assert rows[-1]["serving"] == "stable"
    assert "Healthy" in cli("status", NAME)


def test_a_manual_gate_waits_for_promote_and_abort_then_retry_restart_the_canary(
    ns: Namespace, kubelet: LocalKubelet, cli: Cli
) -> None:
    gated = [{"weight": 50, "pause": {}}, {"weight": 100, "pause": {"duration": "1s"}}]
    ns.create(spec("1.0.0"))
    stable_on(ns, "1.0.0")

    roll_out(ns, "2.0.0", steps=gated)
    phase_is(ns, "Paused")
    assert "[50 ⏸ promote?] [100 ·]" in cli("status", NAME)
    assert holds(ns, 2)["phase"] == "Paused", "a manual gate never opens by itself"
    assert "promote requested" in cli("promote", NAME)
    stable_on(ns, "2.0.0")

    roll_out(ns, "3.0.0", steps=gated)
    phase_is(ns, "Paused")
    assert "abort requested" in cli("abort", NAME)
    phase_is(ns, "Degraded")
    view = cli.json("status", NAME)
    assert view["canaryWeight"] == 0
    assert [s["state"] for s in view["steps"]] == ["failed", "pending"]
    assert ns.status(NAME)["history"][0]["outcome"] == "Aborted"
    assert ns.get(NAME)["spec"]["model"]["version"] == "3.0.0", "abort leaves the spec alone"

    assert "retry requested" in cli("retry", NAME)
    phase_is(ns, "Paused")
    assert ns.status(NAME)["canaryWeight"] == 50
    cli("promote", NAME, "--full")
    stable_on(ns, "3.0.0")
    assert "the operator will likely ignore it: no canary in progress" in cli("abort", NAME)


def test_pause_holds_the_rollout_until_resume(ns: Namespace, kubelet: LocalKubelet, cli: Cli) -> None:
    ns.create(spec("1.0.0"))
    stable_on(ns, "1.0.0")
    assert "this edits the spec" in cli("pause", NAME)
    assert ns.get(NAME)["spec"]["paused"] is True
    roll_out(ns, "2.0.0")
    phase_is(ns, "Paused")
    status = holds(ns, 3)
    assert (status["phase"], status["canaryWeight"]) == ("Paused", 50)
    assert "[50 ⏸ paused]" in cli("status", NAME)
    cli("resume", NAME)
    stable_on(ns, "2.0.0")


def test_a_missing_resource_is_a_clear_error(ns: Namespace, cli: Cli) -> None:
    for command in ("status", "promote", "pause", "history", "undo"):
        out = cli(command, "absent", expect=1)
        assert f"modeldeployment 'absent' not found in namespace '{ns.name}'" in out


def test_the_kubectl_plugin_entry_point(cluster: Any, ns: Namespace, kubelet: LocalKubelet) -> None:
    ns.create(spec("1.0.0"))
    stable_on(ns, "1.0.0")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    if shutil.which("kubectl-modelrollout", path=path) is None:
        pytest.fail("kubectl-modelrollout is not installed: run `pip install -e .` again", pytrace=False)
    result = subprocess.run(
        [cluster.kubectl_bin, "modelrollout", "status", NAME, "-n", ns.name],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Phase:       Healthy" in result.stdout
    assert "Model:       next-day-returns 1.0.0" in result.stdout
