"""Scenario 1: a trading model is deployed only after smoke tests prove it loads, infers, stays in range and is fast.

"Model trained successfully, just deploy it" is what the operator refuses: every new revision
is served by a real model-server process started from its pod template, and the built-in smoke
Job runs ``modelrollout smoke`` against it for real. Each broken model below stops at the smoke
test with the failing check named in ``status.smokeTest.reason`` and a ``SmokeTestFailed``
Event, while the router never sends it a request and the stable version keeps serving. A good
model passes and its version is recorded in ``status.history`` and on its ControllerRevision.

One namespace serves the whole module: v1 is deployed once and each broken version is tried on
top of it, as successive commits would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from e2e.conftest import NAME, Stage, following_traffic
from e2e.gwt import Scenario
from e2e.harness.scenario import model_deployment
from e2e.harness.traffic import Traffic

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

FAST_STEPS = [{"weight": w, "pause": {"duration": "2s"}} for w in (5, 25, 50, 100)]


def document(version: str, server_args: list[str], smoke_timeout: str = "40s") -> dict[str, Any]:
    built = model_deployment(NAME, version, server_args=server_args)
    built["spec"]["strategy"]["canary"]["steps"] = FAST_STEPS
    built["spec"]["smokeTest"]["timeout"] = smoke_timeout
    return built


@pytest.fixture(scope="module")
def serving(module_stage: Stage) -> Iterator[tuple[Stage, Traffic]]:
    """v1, smoke-tested and stable, with clients following the router for the whole module."""
    with following_traffic(module_stage) as traffic:
        module_stage.create(document("1.0.0", []))
        module_stage.healthy_on("1.0.0")
        yield module_stage, traffic


class RouterWatch:
    """Every backend the router pointed at while waiting, and every canary weight status reported."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.backends: set[str] = set()
        self.canary_weights: set[int] = set()

    def look(self, status: dict[str, Any]) -> None:
        self.backends.update(self.stage.weights())
        self.canary_weights.add(int(status.get("canaryWeight") or 0))


BROKEN = {
    "loads": (["--fail-load"], "12s"),
    "inference": (["--error-rate", "1"], "40s"),
    "output_range": (["--out-of-range"], "40s"),
    "latency": (["--latency-ms", "800"], "40s"),
}


@pytest.mark.parametrize("check", list(BROKEN))
def test_a_broken_model_is_blocked_at_its_smoke_test(serving: tuple[Stage, Traffic], check: str) -> None:
    stage, _ = serving
    server_args, smoke_timeout = BROKEN[check]
    version = f"2.0.0-{check.replace('_', '-')}"
    story = Scenario(f"a model that fails the {check} check never gets traffic")
    watch = RouterWatch(stage)

    with story.given("v1 serves all traffic"):
        before = stage.status()
        stable = before["stableRevision"]
        assert stable["modelVersion"] == "1.0.0"
        stable_server = stage.kubelet.server(stable["hash"])
        assert stable_server is not None
        assert list(stage.weights()) == [stable_server.url]
        failures_before = len(stage.events(reason="SmokeTestFailed"))

    with story.when(f"{version} is deployed with {' '.join(server_args)}"):
        stage.update_spec(document(version, server_args, smoke_timeout)["spec"])

    with story.then("the rollout fails at the smoke test"):

        def failed(status: dict[str, Any]) -> bool:
            watch.look(status)
            current = status.get("currentRevision") or {}
            return current.get("modelVersion") == version and status.get("phase") == "Failed"

        status = stage.settle(failed, 90, f"{version} to fail its smoke test")
        assert status["smokeTest"]["state"] == "Failed"
        assert status["history"][0]["outcome"] == "SmokeFailed"
        assert status["history"][0]["modelVersion"] == version
        events = stage.told("SmokeTestFailed", more_than=failures_before)
        assert events[-1].type == "Warning"

    with story.and_("traffic never moved and v1 keeps serving"):
        assert watch.backends == {stable_server.url}, "only the stable server was ever a backend"
        assert watch.canary_weights == {0}
        assert status["stableRevision"] == stable
        assert status["canaryWeight"] == 0
        assert list(stage.weights()) == [stable_server.url]
        served = stage.query(
            f'sum(increase(model_requests_total{{namespace="{stage.namespace}",revision="{stable["hash"]}",'
            'code="200"}[15s]))'
        )
        assert served is not None
        assert served > 0, "clients are still answered by v1"

    stage.record("ModelDeployment", NAME, f"modeldeployment-failed-{check.replace('_', '-')}.yaml")

    with story.and_(f"status and the Event name the {check} check as the reason"):
        reason = status["smokeTest"]["reason"]
        assert reason.split(": ", 1)[-1].startswith(f"{check}"), reason
        assert f"{check}" in events[-1].message, events[-1].message


def test_a_good_model_passes_and_its_version_is_recorded(serving: tuple[Stage, Traffic]) -> None:
    stage, traffic = serving
    story = Scenario("a good model passes its smoke tests, rolls out and is recorded")

    with story.when("3.0.0, a healthy model, is deployed"):
        stage.update_spec(document("3.0.0", [])["spec"])

    with story.then("its smoke tests pass before any traffic moves"):
        status = stage.settle(
            lambda s: (
                (s.get("currentRevision") or {}).get("modelVersion") == "3.0.0"
                and (s.get("smokeTest") or {}).get("state") == "Passed"
            ),
            90,
            "3.0.0 smoke tests passed",
        )
        passed = stage.told("SmokeTestPassed")
        assert any(status["currentRevision"]["versionId"] in e.message for e in passed), [e.message for e in passed]
        assert any(run["exitCode"] == 0 for run in stage.kubelet.smoke_runs), "the checks really ran"

    with story.and_("it becomes stable"):
        status = stage.healthy_on("3.0.0")
        stage.record("ModelDeployment", NAME, "modeldeployment-healthy.yaml")

    with story.and_("its version is in status.history and on its ControllerRevision"):
        current = status["currentRevision"]
        assert current == status["stableRevision"]
        newest = status["history"][0]
        assert (newest["versionId"], newest["modelVersion"], newest["outcome"]) == (
            current["versionId"],
            "3.0.0",
            "Stable",
        )
        outcomes = {h["modelVersion"]: h["outcome"] for h in status["history"]}
        assert outcomes["1.0.0"] == "Superseded"
        assert {o for v, o in outcomes.items() if v.startswith("2.0.0-")} <= {"SmokeFailed"}
        revisions = client.AppsV1Api(stage.api).list_namespaced_controller_revision(
            stage.namespace, label_selector=f"modelrollout.dev/model-deployment={NAME}"
        )
        by_number = {r.revision: r for r in revisions.items}
        revision = by_number[current["number"]]
        assert revision.metadata.annotations["modelrollout.dev/version-id"] == current["versionId"]
        assert traffic.sent > 0
