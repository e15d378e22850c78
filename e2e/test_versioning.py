"""Scenario 5: every deployed model version has an id and lineage, and any earlier one can be restored.

"Just save the model as model.pkl" loses what was serving when. Here each spec change becomes a
ControllerRevision carrying a version id (revision number + content hash) and the model's
lineage (training data, code commit, hyperparameters). Three versions are deployed, the second
behind a manual gate released with ``modelrollout promote``; ``modelrollout history`` lists all
three with their lineage and which one serves; ``modelrollout undo --to-revision 2`` restores
revision 2's template and model exactly, and the operator rolls it out again.

The CLI runs in this process (``modelrollout.__main__.main``) with the cluster's kubeconfig,
exactly as a user would call it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from e2e.conftest import NAME, Cli, Stage
from e2e.gwt import Scenario
from e2e.harness.scenario import model_deployment
from tests.support.rollouts import controller_revisions

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

FAST = [{"weight": 50, "pause": {"duration": "1s"}}, {"weight": 100, "pause": {"duration": "1s"}}]
GATED = [{"weight": 50, "pause": {}}, {"weight": 100, "pause": {"duration": "1s"}}]


def spec(version: str, *, steps: list[dict[str, Any]] | None = None, label: str | None = None) -> dict[str, Any]:
    """A quick rollout (no smoke test, no guardrails): this scenario is about versions, not safety gates."""
    document = model_deployment(NAME, version, smoke=False, analysis={"interval": "1s", "window": "10s", "metrics": []})
    document["spec"]["strategy"]["canary"]["steps"] = copy.deepcopy(steps or FAST)
    document["spec"]["model"]["lineage"]["params"] = {"alpha": "0.01", "lookback": version}
    if label is not None:
        document["spec"]["template"]["metadata"]["labels"]["track"] = label
    return document


def test_three_versions_have_ids_and_lineage_and_undo_restores_revision_2(stage: Stage, cli: Cli) -> None:
    story = Scenario("three model versions, their history, and a rollback to a chosen one")

    with story.given("v1 is deployed"):
        stage.create(spec("1.0.0"))
        stage.healthy_on("1.0.0")

    with story.when("v2 is deployed behind a manual gate at 50%"):
        stage.update_spec(spec("2.0.0", steps=GATED)["spec"])

    with story.then("it waits Paused at 50% until someone promotes it"):
        status = stage.settle(lambda s: s.get("phase") == "Paused", 60, "the manual gate")
        assert status["canaryWeight"] == 50
        stage.record("ModelDeployment", NAME, "modeldeployment-paused.yaml")
        assert "promote requested" in cli("promote", NAME)
        stage.healthy_on("2.0.0")

    with story.when("v3, with a new pod label, is deployed"):
        stage.update_spec(spec("3.0.0", label="experimental")["spec"])
        stage.healthy_on("3.0.0")

    with story.then("history lists the three versions with their ids, lineage and what serves"):
        rows = cli.json("history", NAME)
        assert [(r["number"], r["modelVersion"], r["outcome"]) for r in rows] == [
            (1, "1.0.0", "Superseded"),
            (2, "2.0.0", "Superseded"),
            (3, "3.0.0", "Stable"),
        ]
        assert [r["lineage"]["code"] for r in rows] == ["commit-1.0.0", "commit-2.0.0", "commit-3.0.0"]
        assert [r["lineage"]["params"]["lookback"] for r in rows] == ["1.0.0", "2.0.0", "3.0.0"]
        assert {r["lineage"]["data"] for r in rows} == {"s3://datasets/returns/2026-10.parquet"}
        assert [r["serving"] for r in rows][-1] == "stable"
        text = cli("history", NAME)
        assert "code     commit-2.0.0" in text
        assert "params   alpha=0.01" in text

    with story.and_("each version id is on its ControllerRevision and in status"):
        revisions = controller_revisions(stage.api, stage.namespace, NAME)
        history = {h["number"]: h for h in stage.status()["history"]}
        for number in (1, 2, 3):
            annotations = revisions[number]["metadata"]["annotations"]
            assert annotations["modelrollout.dev/version-id"] == history[number]["versionId"]
            assert history[number]["versionId"].startswith(f"{number}-")
        assert len({h["versionId"] for h in history.values()}) == 3, "unique version ids"

    with story.when("the user rolls back to revision 2"):
        chosen = revisions[2]
        out = cli("undo", NAME, "--to-revision", "2")
        assert "rolled back to revision 2" in out

    with story.then("the spec holds exactly revision 2's template and model"):
        restored = stage.ns.get(NAME)["spec"]
        assert restored["template"] == chosen["data"]["template"]
        assert "track" not in restored["template"]["metadata"]["labels"], "nothing of revision 3 merged in"
        assert restored["model"] == chosen["data"]["model"]
        assert restored["port"] == chosen["data"]["port"]

    with story.and_("the operator rolls revision 2's content out again and it serves"):
        status = stage.healthy_on("2.0.0")
        assert status["stableRevision"]["hash"] == chosen["metadata"]["labels"]["modelrollout.dev/revision"]
        rows = cli.json("history", NAME)
        assert rows[-1]["modelVersion"] == "2.0.0"
        assert rows[-1]["serving"] == "stable"
        assert rows[-1]["lineage"]["code"] == "commit-2.0.0"
        server = stage.kubelet.server(status["stableRevision"]["hash"])
        assert server is not None
        assert list(stage.weights()) == [server.url]
        assert "Healthy" in cli("status", NAME)
