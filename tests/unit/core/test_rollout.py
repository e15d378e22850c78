"""Table- and scenario-driven tests of the rollout state machine: every transition, and restarts in between."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from modelrollout.api.conditions import find_condition
from modelrollout.api.modeldeployment import MetricResult
from modelrollout.core.actions import InvalidAction, UserAction, pending_action
from modelrollout.core.analysis import AnalysisOutcome, Traffic
from modelrollout.core.rollout import SmokeObservation, work_due
from tests.unit.core.sim import World, deployed, make_spec, outcome

SMOKE = {"builtin": {"outputRange": {"min": -1, "max": 1}}, "timeout": "2m"}


def test_first_revision_without_smoke_tests_becomes_stable_at_once() -> None:
    world = World(spec=make_spec("1"))
    decision = world.tick()
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision == world.status.current_revision
    assert world.status.stable_revision.version_id.startswith("1-")
    assert decision.desired.stable_replicas == 1
    assert decision.desired.canary is None
    assert [r.outcome for r in world.status.history] == ["Stable"]
    assert [r.number for r in world.revisions] == [1]


def test_first_revision_waits_for_its_smoke_tests() -> None:
    world = World(spec=make_spec("1", smokeTest=SMOKE), smoke=lambda attempt: SmokeObservation("Running"))
    world.run(3)
    assert world.status.phase == "SmokeTesting"
    assert world.status.stable_revision is None
    assert world.decisions[-1].desired.canary_replicas == 1
    assert world.decisions[-1].desired.smoke_attempt == 1
    world.smoke = lambda attempt: SmokeObservation("Passed")
    world.tick()
    assert world.status.phase == "Healthy"
    assert world.smoke_jobs_started == 1
    assert {c.type: c.status for c in world.status.conditions}["SmokeTestPassed"] == "True"


def test_healthy_canary_goes_5_25_50_100_and_becomes_stable() -> None:
    world = deployed()
    old_stable = world.status.stable_revision
    world.change(make_spec("2"))
    world.run_until(lambda s: s.phase == "Healthy", seconds=5)
    assert world.weights_seen == [0, 5, 25, 50, 100, 0]
    assert world.status.stable_revision.model_version == "2"
    assert [r.outcome for r in world.status.history] == ["Stable", "Superseded"]
    assert world.status.history[1].number == old_stable.number
    assert world.events().count("StepStarted") == 4
    assert "RolloutCompleted" in world.events()


def test_a_step_does_not_start_before_the_router_confirms_its_weight() -> None:
    world = deployed()
    world.change(make_spec("2"))
    world.router_lags = 5
    world.run(4)
    assert world.status.current_step_index == 0
    assert world.status.step_started_at is None
    assert "waiting for the router" in world.status.message
    world.run(3)
    assert world.status.step_started_at is not None


def test_smoke_failure_never_sends_traffic_and_keeps_stable() -> None:
    world = deployed()
    world.change(make_spec("3", smokeTest=SMOKE))
    world.smoke = lambda attempt: SmokeObservation("Failed", "output_range: 3 predictions outside [-1, 1]")
    world.run(5)
    assert world.status.phase == "Failed"
    assert max(world.weights_seen) == 0
    assert world.status.stable_revision.model_version == "1"
    assert world.status.history[0].outcome == "SmokeFailed"
    assert "outside [-1, 1]" in world.status.history[0].reason
    assert world.decisions[-1].desired.canary_replicas == 0
    conditions = {c.type: c for c in world.status.conditions}
    assert conditions["Degraded"].reason == "SmokeTestFailed"
    assert conditions["Available"].status == "True"
    assert world.events().count("SmokeTestFailed") == 1


def test_smoke_timeout_fails_the_revision() -> None:
    world = deployed()
    world.change(make_spec("3", smokeTest={**SMOKE, "timeout": "30s"}))
    world.smoke = lambda attempt: SmokeObservation("Running")
    world.run(40)
    assert world.status.phase == "Failed"
    assert "timed out" in world.status.smoke_test.reason


@pytest.mark.parametrize(("failure_limit", "ticks_to_rollback"), [(1, 1), (2, 2), (3, 3)])
def test_failed_guardrails_roll_back_after_the_failure_limit(failure_limit: int, ticks_to_rollback: int) -> None:
    world = deployed()
    spec = make_spec("4")
    world.change(
        spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"failure_limit": failure_limit})})
    )
    world.run_until(lambda s: s.canary_weight == 25 and s.step_started_at is not None, seconds=5)
    world.analysis = lambda w: outcome("Fail")
    analyses = 0
    while world.status.phase != "Degraded":
        tick_time = world.now
        if world.tick(seconds=10).status.analysis.last_run_at == tick_time:
            analyses += 1
        assert analyses <= ticks_to_rollback
    assert analyses == ticks_to_rollback
    assert world.router_weight == 0
    assert world.status.stable_revision.model_version == "1"
    assert world.status.history[0].outcome == "Degraded"
    assert world.decisions[-1].rollbacks == 1
    assert world.decisions[-1].desired.canary_replicas == 0
    assert "AnalysisFailed" in world.events()
    assert world.spec.model.version == "4", "automatic rollback never edits the spec"


def test_circuit_breaker_aborts_at_once() -> None:
    world = deployed()
    world.change(make_spec("4", circuitBreaker=[{"name": "errors", "query": "q", "max": 0.5}]))
    world.run_until(lambda s: s.step_started_at is not None)
    world.analysis = lambda w: outcome("Pass", tripped=True)
    world.tick(10)
    assert world.status.phase == "Degraded"
    assert "CircuitBreakerTripped" in world.events()
    assert "errors = 0.9" in world.status.message


def with_analysis(spec, **changes):
    return spec.model_copy(update={"analysis": spec.analysis.model_copy(update=changes)})


@pytest.mark.parametrize(("policy", "phase"), [("Rollback", "Degraded"), ("Hold", "Progressing")])
def test_missing_data_holds_then_follows_the_no_data_policy(policy: str, phase: str) -> None:
    world = deployed()
    world.change(with_analysis(make_spec("4"), no_data_limit=3, on_no_data=policy))
    world.analysis = lambda w: outcome("NoData")
    world.run(60, seconds=10)
    assert world.status.phase == phase
    assert max(world.weights_seen) == 5, "missing metrics never promote"
    if policy == "Rollback":
        assert "3 analyses in a row without data" in world.status.message


def test_waiting_never_counts_toward_any_limit_and_never_promotes() -> None:
    """Not enough evidence yet holds the step for as long as it takes: slower, never rolled back."""
    world = deployed()
    world.change(with_analysis(make_spec("2"), no_data_limit=1, failure_limit=1, max_step_duration=None))
    world.analysis = lambda w: outcome("Waiting")
    world.run(500, seconds=10)
    assert world.status.phase == "Progressing"
    assert world.status.canary_weight == 5
    assert world.status.analysis.consecutive_no_data == 0
    world.analysis = lambda w: outcome("Pass")
    world.run_until(lambda s: s.phase == "Healthy", seconds=10)


def test_no_step_advances_without_a_passing_analysis_even_after_the_pause() -> None:
    world = deployed()
    world.change(make_spec("2"))
    world.analysis = lambda w: outcome("Pass") if w.now.minute >= 5 else outcome("Waiting")
    world.run(20, seconds=10)
    assert world.status.canary_weight == 5
    world.run_until(lambda s: s.phase == "Healthy", seconds=10)


def test_a_statistical_fail_rolls_back_at_once() -> None:
    world = deployed()
    world.change(make_spec("2"))
    world.run_until(lambda s: s.step_started_at is not None)
    proven = MetricResult(name="errors", verdict="Fail", alpha=0.05, message="more than 1.5 x stable")
    world.analysis = lambda w: AnalysisOutcome(verdict="Fail", metrics=(proven,), tripped=())
    world.tick(10)
    assert world.status.phase == "Degraded"
    assert "a failed analysis: errors: more than 1.5 x stable" in world.status.message


@pytest.mark.parametrize(
    ("policy", "phase", "reason"), [("Rollback", "Degraded", "StepTimedOut"), ("Hold", "Progressing", "StepTimedOut")]
)
def test_a_step_past_max_duration_follows_its_policy_and_never_promotes(policy: str, phase: str, reason: str) -> None:
    world = deployed()
    world.change(with_analysis(make_spec("2"), max_step_duration="5m", on_step_timeout=policy))
    world.analysis = lambda w: outcome("Waiting")
    world.run(60, seconds=10)
    assert world.status.phase == phase
    assert max(world.weights_seen) == 5
    assert world.events().count(reason) == 1
    if policy == "Hold":
        assert world.status.analysis.timed_out
        assert "still gathering evidence" in world.status.message


def test_a_step_expected_to_take_too_long_is_underpowered_with_what_would_suffice() -> None:
    world = deployed()
    world.change(with_analysis(make_spec("2"), max_step_duration="10m"))
    world.run_until(lambda s: s.canary_started_at is not None)
    waiting = MetricResult(name="errors", verdict="Waiting", alpha=0.05, needed_samples=300.0)

    def slow(w: World) -> AnalysisOutcome:
        elapsed = (w.now - w.status.canary_started_at).total_seconds()
        traffic = Traffic(canary=0.05 * 2.0 * elapsed, stable=0.95 * 2.0 * elapsed)  # 2 req/s in all
        return AnalysisOutcome(verdict="Waiting", metrics=(waiting,), tripped=(), traffic=traffic)

    world.analysis = slow
    world.run(3, seconds=10)
    condition = find_condition(world.status.conditions, "Underpowered")
    assert condition is not None
    assert condition.status == "True"
    assert "about 300 more canary requests: about 50 min at 0.1 req/s" in condition.message
    assert "0.1 req/s" in condition.message
    assert "a weight of about 25%" in condition.message
    assert world.status.analysis.eta_seconds == pytest.approx(3000, rel=0.01)


def test_no_traffic_goes_to_a_canary_without_ready_pods() -> None:
    world = deployed()
    world.change(make_spec("2"))
    world.canary_ready = False
    world.run(20)
    assert world.status.canary_weight == 0
    assert "ready replicas" in world.status.message
    world.canary_ready = True
    world.run_until(lambda s: s.canary_weight == 5)


@pytest.mark.parametrize("overrides", [{}, {"smokeTest": SMOKE}], ids=["without-smoke-tests", "after-smoke-tests"])
def test_the_router_gets_no_canary_weight_until_the_canary_is_ready(overrides: dict[str, Any]) -> None:
    """``Observations.canary_ready`` gates the first traffic: the router itself stays at 0% until it is True."""
    world = deployed()
    world.change(make_spec("2", **overrides))
    world.canary_ready = False
    world.run(20, seconds=5)
    assert world.weights_seen == [0]
    assert [d.desired.canary_weight for d in world.decisions] == [0] * 20
    assert world.decisions[-1].desired.canary_replicas == 1
    assert world.status.current_step_index is None
    if overrides:
        assert world.status.smoke_test is not None
        assert world.status.smoke_test.state == "Passed"
    world.canary_ready = True
    decision = world.tick()
    assert decision.desired.canary_weight == 5
    assert world.weights_seen == [0, 5]
    assert world.status.step_started_at is not None


@pytest.mark.parametrize("overrides", [{}, {"smokeTest": SMOKE}], ids=["without-smoke-tests", "after-smoke-tests"])
def test_a_canary_waiting_for_ready_pods_needs_no_work_until_its_deployment_changes(overrides: dict[str, Any]) -> None:
    """No clock runs while a canary waits for its pods: the watch of its Deployment tells when they are ready."""
    world = deployed()
    world.change(make_spec("2", **overrides))
    world.canary_ready = False
    if overrides:
        world.smoke = lambda attempt: SmokeObservation("Running")
        world.run(3, seconds=5)
        assert work_due(world.spec, world.status, world.now), "smoke tests: a refused pod is no watch event"
        world.smoke = lambda attempt: SmokeObservation("Passed")
    world.run(3, seconds=5)
    assert "ready replicas" in world.status.message
    assert not work_due(world.spec, world.status, world.now + timedelta(hours=1))
    world.canary_ready = True
    world.tick()
    assert world.status.step_started_at is not None
    assert world.status.current_step_index == 0


def test_a_first_revision_is_stable_only_once_its_pods_are_ready() -> None:
    world = World(spec=make_spec("1"), canary_ready=False)
    world.run(10)
    assert world.status.stable_revision is None
    world.canary_ready = True
    world.run_until(lambda s: s.phase == "Healthy")


def test_manual_gate_waits_for_promote_and_consumes_it_once() -> None:
    world = deployed()
    spec = make_spec("2")
    steps = spec.strategy.canary.steps
    gated = [
        steps[0],
        steps[1].model_copy(update={"pause": steps[1].pause.model_copy(update={"duration": None})}),
        *steps[2:],
    ]
    strategy = spec.strategy.model_copy(update={"canary": spec.strategy.canary.model_copy(update={"steps": gated})})
    world.change(spec.model_copy(update={"strategy": strategy}))
    world.run(60, seconds=5)
    assert world.status.canary_weight == 25
    assert world.status.phase == "Paused"
    promote = UserAction("promote", "a1")
    world.tick(action=promote)
    assert world.status.canary_weight == 50
    assert world.status.last_action_id == "a1"
    assert pending_action({"modelrollout.dev/action": "promote", "modelrollout.dev/action-id": "a1"}, "a1") is None
    world.run_until(lambda s: s.phase == "Healthy", seconds=5)


def test_abort_then_retry() -> None:
    world = deployed()
    world.change(make_spec("2"))
    world.run_until(lambda s: s.canary_weight == 25)
    world.tick(action=UserAction("abort", "x1"))
    assert world.status.phase == "Degraded"
    assert world.status.history[0].outcome == "Aborted"
    world.run(3)
    assert world.router_weight == 0
    world.tick(action=UserAction("retry", "x2"))
    assert world.status.phase == "Progressing"
    world.run_until(lambda s: s.phase == "Healthy", seconds=5)
    assert world.status.stable_revision.model_version == "2"


def test_retry_after_smoke_failure_runs_a_new_attempt() -> None:
    world = deployed()
    world.change(make_spec("3", smokeTest=SMOKE))
    world.smoke = lambda attempt: SmokeObservation("Failed", "boom") if attempt == 1 else SmokeObservation("Passed")
    world.run(3)
    assert world.status.phase == "Failed"
    world.tick(action=UserAction("retry", "r"))
    world.run_until(lambda s: s.phase == "Healthy", seconds=5)
    assert world.smoke_jobs_started == 2


def test_promote_full_skips_the_remaining_steps() -> None:
    world = deployed()
    world.change(make_spec("2"))
    world.run(2)
    world.tick(action=UserAction("promote-full", "p"))
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision.model_version == "2"


def test_spec_paused_holds_the_weight() -> None:
    world = deployed()
    world.change(make_spec("2", paused=True))
    world.run(100, seconds=5)
    assert world.status.phase == "Paused"
    assert world.status.canary_weight == 5
    world.change(make_spec("2", paused=False))
    world.run_until(lambda s: s.phase == "Healthy", seconds=5)


def test_reverting_the_spec_to_stable_drops_the_canary() -> None:
    world = deployed()
    world.change(make_spec("2"))
    world.run_until(lambda s: s.canary_weight == 25)
    world.change(make_spec("1"))
    world.tick()
    assert world.status.phase == "Healthy"
    assert world.status.current_revision == world.status.stable_revision
    assert world.decisions[-1].desired.canary is None
    assert "ReturnedToStable" in world.events()


def test_a_newer_spec_supersedes_a_canary_in_progress() -> None:
    world = deployed()
    world.change(make_spec("2"))
    world.run_until(lambda s: s.canary_weight == 25)
    world.change(make_spec("3"))
    world.tick()
    assert world.status.current_revision.model_version == "3"
    assert world.status.canary_weight == 5
    assert [r.outcome for r in world.status.history][:3] == ["Pending", "Superseded", "Stable"]


def test_changes_outside_model_and_template_make_no_new_revision() -> None:
    world = deployed()
    spec = world.spec
    revisions = list(world.revisions)
    world.change(spec.model_copy(update={"replicas": 5}))
    decision = world.tick()
    assert world.revisions == revisions
    assert decision.desired.stable_replicas == 5
    assert world.status.phase == "Healthy"


def test_rolling_out_an_old_revision_again_renumbers_it() -> None:
    world = deployed("1")
    for version in ("2", "1"):
        world.change(make_spec(version))
        world.run_until(lambda s, v=version: s.phase == "Healthy" and s.stable_revision.model_version == v, seconds=5)
    assert world.status.stable_revision.number == 3
    assert sorted(r.number for r in world.revisions) == [2, 3]


def test_unknown_action_is_reported_once() -> None:
    world = deployed()
    world.tick(action=InvalidAction("promot", "z"))
    assert world.status.last_action_id == "z"
    assert world.events() == ["UnknownAction"]


@pytest.mark.parametrize("lose_every", [2, 3, 5])
def test_lost_status_writes_repeat_no_step_and_skip_none(lose_every: int) -> None:
    """A crash between acting and writing status: the next tick sees the old status and the new world."""
    world = deployed()
    world.change(make_spec("2"))
    for i in range(400):
        if world.status.phase == "Healthy" and world.status.stable_revision.model_version == "2":
            break
        world.tick(seconds=5, lose_status=(i % lose_every == 0))
    assert world.status.stable_revision.model_version == "2"
    assert [w for i, w in enumerate(world.weights_seen) if i == 0 or w != world.weights_seen[i - 1]] == [
        0,
        5,
        25,
        50,
        100,
        0,
    ]
    assert world.events().count("RolloutCompleted") >= 1


def test_a_step_holding_its_weight_needs_no_work_until_its_analysis_or_pause_is_due() -> None:
    world = deployed()
    world.change(make_spec("2"))
    world.run_until(lambda s: s.step_started_at is not None and s.analysis.last_run_at is not None)
    status = world.status
    assert not work_due(world.spec, status, status.analysis.last_run_at + timedelta(seconds=5))
    assert work_due(world.spec, status, status.analysis.last_run_at + timedelta(seconds=10)), "analysis interval 10s"
    assert work_due(world.spec, status, status.step_started_at + timedelta(seconds=31)), "pause 30s over"
    assert work_due(world.spec, world.status.model_copy(update={"step_started_at": None}), world.now)


def test_healthy_only_once_the_router_confirms_all_traffic_on_stable() -> None:
    """Status never claims Healthy while the router still sends traffic to the old canary."""
    world = deployed()
    world.change(make_spec("2"))
    world.run_until(lambda s: s.current_step_index == 3 and s.step_started_at is not None, seconds=10)
    world.router_lags = 3
    world.run_until(lambda s: s.stable_revision is not None and s.stable_revision.model_version == "2", seconds=10)
    assert world.status.phase == "Progressing"
    assert "moving all traffic to stable revision" in world.status.message
    world.run_until(lambda s: s.phase == "Healthy", limit=10)
    assert world.router_weight == 0
