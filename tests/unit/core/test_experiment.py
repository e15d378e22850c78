"""The Experiment state machine against a simulated world: design, split, looks, decisions, restarts.

Each tick the world adds Bernoulli outcomes to the arms that receive traffic,
answers the queries the machine planned (as Prometheus would, from totals since
the start), and round-trips the status through JSON, so every tick is also a
restart of the operator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from modelrollout.api.experiment import ExperimentSpec, ExperimentStatus
from modelrollout.core import experiment as core
from modelrollout.core.queries import Answer, Missing, QueryKey, QueryRequest
from modelrollout.metrics.templates import render
from modelrollout.stats.power import sample_size_two_proportions
from modelrollout.stats.sequential import msprt_sample_size

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REVISIONS = {"champion": "aaa111", "challenger": "bbb222"}


def make_spec(**changes: Any) -> ExperimentSpec:
    spec: dict[str, Any] = {
        "champion": {"name": "champion", "modelDeployment": "model-a", "weight": 50},
        "challengers": [{"name": "challenger", "modelDeployment": "model-b", "weight": 50}],
        "trafficRouting": {"router": "gatewayAPI", "gatewayAPI": {"httpRoute": "route"}},
        "primaryMetric": {
            "name": "accuracy",
            "kind": "proportion",
            "successQuery": 'sum(increase(correct{revision="{{revision}}"}[{{elapsed}}]))',
            "totalQuery": 'sum(increase(feedback{revision="{{revision}}", arm="{{arm}}"}[{{elapsed}}]))',
            "baseline": 0.5,
            "minimumDetectableEffect": 0.1,
        },
        "interval": "10s",
        "maxDuration": "1h",
    }
    spec.update(changes)
    return ExperimentSpec.model_validate(spec)


@dataclass
class World:
    spec: ExperimentSpec
    truth: dict[str, float] = field(default_factory=lambda: {"champion": 0.5, "challenger": 0.5})
    rate: float = 100.0
    """Requests per second entering the experiment."""
    skew: dict[str, float] | None = None
    """Shares the data plane really uses, when they differ from the spec's (SRM)."""
    guardrail: dict[str, float] = field(default_factory=dict)
    revisions: dict[str, str | None] = field(default_factory=lambda: dict(REVISIONS))
    router_verified: bool = True
    missing: set[str] = field(default_factory=set)
    trailing: dict[str, float] = field(default_factory=dict)
    """Arm -> seconds its counts trail the look by (its targets' last scrape was that long ago)."""
    seed: int = 0
    status: ExperimentStatus = field(default_factory=ExperimentStatus)
    now: datetime = T0
    decisions: list[core.Decision] = field(default_factory=list)
    counts: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def shares(self) -> dict[str, float]:
        if self.skew is not None:
            return self.skew
        return core.shares(self.spec)

    def _flow(self, seconds: float) -> None:
        if self.status.phase != "Running" or self.status.started_at is None:
            return
        for arm, share in self.shares().items():
            n = int(self.rng.poisson(self.rate * seconds * share))
            total = self.counts.setdefault(arm, [0.0, 0.0])
            total[0] += n
            total[1] += int(self.rng.binomial(n, self.truth[arm]))

    def _answer(self, request: QueryRequest) -> Answer:
        render(request.template, request.variables)  # every planned template must render
        metric, part_arm = request.key.metric, request.key.part
        part, arm = part_arm.split("@")
        if arm in self.missing:
            return Missing("NoData", "no series")
        if metric == core.RATE:
            return (
                self.rate * self.shares()[arm] * 60.0
                if self.status.started_at
                else self.rate * 60.0 * (arm == "champion")
            )
        if metric in {g.name for g in self.spec.guardrails}:
            return self.guardrail.get(arm, 0.1)
        n, s = self.counts.get(arm, [0.0, 0.0])
        unseen = min(n, self.rate * self.shares()[arm] * self.trailing.get(arm, 0.0))
        seen = (n - unseen) / n if n else 1.0
        return {"total": n - unseen, "successes": s * seen}[part]

    def tick(self, seconds: float = 10.0) -> core.Decision:
        self.now += timedelta(seconds=seconds)
        self._flow(seconds)
        answers: Mapping[QueryKey, Answer] | None = None
        known = {arm: revision for arm, revision in self.revisions.items() if revision}
        elapsed = (self.now - self.status.started_at).total_seconds() if self.status.started_at else 0.0
        target = core.Target("ns", "exp", known, elapsed)
        if core.design_due(self.status) and len(known) == len(self.revisions):
            answers = {r.key: self._answer(r) for r in core.plan_design(self.spec, target)}
        elif core.analysis_due(self.spec, self.status, self.now):
            answers = {r.key: self._answer(r) for r in core.plan_analysis(self.spec, target)}
        obs = core.Observations(self.now, 1, self.revisions, answers)
        first = core.decide(self.spec, self.status, obs)
        verified = self.router_verified if first.traffic is not None else None
        settled = core.decide(self.spec, first.status, core.Observations(self.now, 1, self.revisions, None, verified))
        if settled.promote is not None:
            settled = core.Decision(core.promoted(settled.status), settled.traffic, settled.events, settled.promote)
        merged = core.Decision(settled.status, settled.traffic, first.events + settled.events, settled.promote)
        self.decisions.append(merged)
        wire = settled.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        self.status = ExperimentStatus.model_validate(wire)
        return merged

    def run_until_done(self, limit: int = 2000, seconds: float = 10.0) -> ExperimentStatus:
        for _ in range(limit):
            self.tick(seconds)
            if self.status.phase in core.TERMINAL:
                return self.status
        return self.status

    def events(self) -> list[str]:
        return [e.reason for d in self.decisions for e in d.events]

    def condition(self, type_: str) -> str | None:
        return next((c.status for c in self.status.conditions if c.type == type_), None)


def test_design_comes_before_traffic_and_uses_the_stats_package() -> None:
    world = World(make_spec())
    decision = world.tick()
    design = world.status.design
    assert design is not None
    expected = msprt_sample_size(0.05, 0.25, 0.55 * 0.45, mixing_sd=0.05, alpha=0.05, power=0.8)
    assert design.samples_per_arm == expected
    assert design.method == core.SEQUENTIAL_METHOD
    assert design.traffic_rate == pytest.approx(100.0)
    assert design.expected_duration_seconds == pytest.approx(expected / 0.5 / 100.0)
    assert world.condition("Designed") == "True"
    assert world.condition("Underpowered") == "False"
    assert decision.events[0].reason == "Designed"
    assert world.status.phase == "Running"
    assert [a.revision for a in world.status.arms] == ["aaa111", "bbb222"]


def test_fixed_horizon_design() -> None:
    world = World(make_spec(sequential=False))
    world.tick()
    assert world.status.design is not None
    assert world.status.design.samples_per_arm == sample_size_two_proportions(0.5, 0.05).champion


def test_an_experiment_that_cannot_reach_its_size_says_so_at_the_start() -> None:
    world = World(make_spec(maxDuration="1m"), rate=5.0)
    world.tick()
    assert world.condition("Underpowered") == "True"
    assert "Underpowered" in world.events()
    assert world.status.phase == "Running"


def test_waits_for_stable_revisions_of_every_arm() -> None:
    world = World(make_spec(), revisions={"champion": "aaa111", "challenger": None})
    decision = world.tick()
    assert world.status.phase == "Pending"
    assert decision.traffic is None
    assert world.condition("ArmsReady") == "False"
    assert "model-b" in (world.status.message or "")


def test_split_with_header_pins_and_start_only_once_verified() -> None:
    world = World(make_spec(), router_verified=False)
    world.run_until_done(limit=3)
    assert world.status.started_at is None
    traffic = world.decisions[-1].traffic
    assert traffic == core.Traffic(weights=(("champion", 50), ("challenger", 50)), pinned=True)
    world.router_verified = True
    world.tick()
    assert world.status.started_at == world.now
    assert world.condition("TrafficSplit") == "True"


def test_an_a_a_test_declares_no_winner() -> None:
    for seed in range(5):
        world = World(make_spec(), seed=seed)
        status = world.run_until_done()
        assert status.phase == "Concluded", status.message
        assert status.decision is not None
        assert status.decision.outcome != "Promote", status.decision
    assert world.decisions[-1].traffic == core.Traffic(weights=(("champion", 100),))


def test_a_better_challenger_is_promoted_with_its_interval() -> None:
    world = World(make_spec(decision={"autoPromote": True}), truth={"champion": 0.5, "challenger": 0.6})
    status = world.run_until_done()
    assert status.decision is not None
    assert (status.decision.outcome, status.decision.winner, status.phase) == ("Promote", "challenger", "Concluded")
    challenger = status.arms[1]
    assert challenger.interval is not None
    assert challenger.interval[0] > 0
    assert challenger.relative_interval is not None
    assert challenger.relative_interval[0] > 0
    assert challenger.p_value is not None
    assert challenger.p_value < 0.05
    assert "CI [" in status.decision.reason
    assert [d.promote for d in world.decisions].count("challenger") == 1
    assert status.decision.promoted
    world.tick()
    assert world.decisions[-1].promote is None
    assert world.decisions[-1].traffic == core.Traffic(weights=(("champion", 100),))


def test_without_auto_promote_status_carries_a_recommendation() -> None:
    world = World(make_spec(), truth={"champion": 0.5, "challenger": 0.6})
    status = world.run_until_done()
    assert status.decision is not None
    assert status.decision.outcome == "Promote"
    assert not status.decision.promoted
    assert "model-a" in (status.decision.recommendation or "")
    assert all(d.promote is None for d in world.decisions)


def test_a_worse_challenger_keeps_the_champion() -> None:
    world = World(make_spec(), truth={"champion": 0.6, "challenger": 0.5})
    status = world.run_until_done()
    assert status.decision is not None
    assert status.decision.outcome == "KeepChampion"
    assert "significantly worse" in status.decision.reason


def test_sample_ratio_mismatch_makes_the_result_invalid() -> None:
    world = World(make_spec(scrapeInterval="1s"), skew={"champion": 0.6, "challenger": 0.4})
    while world.status.srm_mismatches == 0 and world.status.phase not in core.TERMINAL:
        world.tick()
    assert world.condition("SampleRatioMismatch") == "Unknown"  # one look could be scrape timing
    assert world.status.srm_mismatches == 1
    assert world.status.looks <= 3
    status = world.run_until_done()
    assert status.srm_mismatches == core.SRM_LOOKS
    assert (status.phase, status.decision and status.decision.outcome) == ("Failed", "Invalid")
    assert world.condition("SampleRatioMismatch") == "True"
    assert status.srm_p_value is not None
    assert status.srm_p_value < 0.001
    assert "sample ratio mismatch" in status.decision.reason


def promotes_the_challenger_without_a_mismatch(world: World) -> None:
    """Run to the end: no look suspects a mismatch, and the better challenger wins."""
    mismatches = []
    while world.status.phase not in core.TERMINAL:
        world.tick()
        mismatches.append(world.status.srm_mismatches)
    assert set(mismatches) == {0}
    assert world.status.decision is not None
    assert (world.status.decision.outcome, world.status.decision.winner) == ("Promote", "challenger")


@pytest.mark.parametrize("trailing_arm", ["champion", "challenger"])
def test_counts_one_scrape_behind_are_not_a_mismatch(trailing_arm: str) -> None:
    """One arm's targets scraped a whole scrape interval before the look, at every look: timing, not assignment."""
    truth = {"champion": 0.5, "challenger": 0.6}
    world = World(make_spec(scrapeInterval="10s"), truth=truth, trailing={trailing_arm: 10})
    promotes_the_challenger_without_a_mismatch(world)


def test_traffic_lost_before_an_arms_first_scrape_is_not_a_mismatch() -> None:
    """The champion's target was scraped 30 s late: 1,500 of its observations never reach Prometheus.

    The check counts from the first look that measured every arm, and that look decides nothing.
    """
    world = World(make_spec(scrapeInterval="1s"), truth={"champion": 0.5, "challenger": 0.6}, trailing={"champion": 30})
    while world.status.looks == 0:
        world.tick()
    baseline = next(c for c in world.status.conditions if c.type == "SampleRatioMismatch")
    assert (baseline.status, baseline.reason) == ("Unknown", "Baseline")
    assert world.status.decision is None
    assert [arm.counted_from for arm in world.status.arms] == [arm.samples for arm in world.status.arms]
    promotes_the_challenger_without_a_mismatch(world)


def test_a_guardrail_breach_stops_at_once_whatever_min_duration() -> None:
    guardrail = {"name": "latency", "query": 'p99{revision="{{revision}}"}[{{window}}]', "maxRatioToChampion": 1.1}
    world = World(make_spec(guardrails=[guardrail], minDuration="1h"), guardrail={"champion": 0.1, "challenger": 0.2})
    world.tick()
    world.tick()
    status = world.status
    assert (status.phase, status.decision and status.decision.outcome) == ("Stopped", "KeepChampion")
    assert world.condition("GuardrailBreached") == "True"
    assert status.arms[1].guardrails_breached == ["latency"]
    assert "challenger breached guardrail latency (2 x champion > 1.1)" in status.decision.reason
    assert world.decisions[-1].traffic == core.Traffic(weights=(("champion", 100),))


def test_an_absolute_guardrail() -> None:
    guardrail = {"name": "latency", "query": "q", "max": 0.15}
    world = World(make_spec(guardrails=[guardrail], minDuration="1h"), guardrail={"champion": 0.1, "challenger": 0.12})
    world.run_until_done(limit=5)
    assert world.condition("GuardrailBreached") == "False"
    world.guardrail["challenger"] = 0.2
    world.run_until_done(limit=3)
    assert world.status.phase == "Stopped"


def test_no_decision_before_min_duration() -> None:
    world = World(make_spec(minDuration="30m"), truth={"champion": 0.5, "challenger": 0.65})
    status = world.run_until_done()
    assert status.decision is not None
    assert status.decision.outcome == "Promote"
    assert status.started_at is not None
    assert (status.decision.decided_at - status.started_at) >= timedelta(minutes=30)


def test_max_duration_without_a_verdict_is_inconclusive() -> None:
    world = World(make_spec(maxDuration="2m"), truth={"champion": 0.5, "challenger": 0.52}, rate=5.0)
    status = world.run_until_done()
    assert status.decision is not None
    assert status.decision.outcome == "Inconclusive"
    assert "maxDuration" in status.decision.reason


def test_missing_data_waits_and_then_is_invalid() -> None:
    world = World(make_spec(maxDuration="1m"), missing={"challenger"})
    world.run_until_done(limit=3)
    assert world.condition("MetricsAvailable") == "False"
    assert "waiting for data" in (world.status.message or "")
    status = world.run_until_done()
    assert (status.phase, status.decision and status.decision.outcome) == ("Failed", "Invalid")


def test_fixed_horizon_reports_no_p_value_before_the_planned_size() -> None:
    world = World(make_spec(sequential=False), truth={"champion": 0.5, "challenger": 0.6})
    world.run_until_done(limit=2)
    assert world.status.phase == "Running"
    assert world.status.arms[1].p_value is None
    assert world.status.arms[1].difference is not None
    status = world.run_until_done()
    assert status.decision is not None
    assert status.decision.outcome == "Promote"
    planned = status.design.samples_per_arm if status.design else 0
    assert min(a.samples for a in status.arms) >= planned


def test_shadow_mirrors_the_challenger_and_skips_srm() -> None:
    world = World(make_spec(mode="Shadow", minDuration="1h"), skew={"champion": 1.0, "challenger": 0.7})
    world.run_until_done(limit=5)
    assert world.decisions[-1].traffic == core.Traffic(weights=(("champion", 100),), mirror="challenger")
    assert world.status.srm_p_value is None
    assert world.status.design is not None
    assert [p.share for p in world.status.design.arms] == [1.0, 1.0]


def test_an_arm_that_changes_model_mid_experiment_invalidates_it() -> None:
    world = World(make_spec())
    world.run_until_done(limit=3)
    world.revisions["challenger"] = "ccc333"
    world.tick()
    assert world.status.decision is not None
    assert world.status.decision.outcome == "Invalid"
    assert "bbb222 to ccc333" in world.status.decision.reason


def test_the_series_is_bounded_per_challenger() -> None:
    world = World(make_spec(maxDuration="10h"), truth={"champion": 0.5, "challenger": 0.5}, rate=1.0)
    for _ in range(250):
        world.tick()
    assert world.status.looks > 200
    assert len(world.status.series) == 200
    assert world.status.series[-1].at == world.now


def test_sequential_state_survives_restarts_and_intervals_only_narrow() -> None:
    world = World(make_spec(), truth={"champion": 0.5, "challenger": 0.53}, seed=3)
    widths = []
    for _ in range(60):
        world.tick()
        interval = world.status.arms[1].interval if len(world.status.arms) > 1 else None
        if interval:
            widths.append(interval[1] - interval[0])
    assert widths == sorted(widths, reverse=True)
    assert world.status.arms[1].sequential is not None
    assert world.status.arms[1].sequential.looks > 0


def test_secondary_metrics_are_corrected_across_challengers_and_metrics() -> None:
    secondary = {"name": "latency-ok", "kind": "proportion", "successQuery": "s", "totalQuery": "t"}
    spec = make_spec(
        challengers=[
            {"name": "challenger", "modelDeployment": "model-b", "weight": 50},
            {"name": "other", "modelDeployment": "model-c", "weight": 50},
        ],
        secondaryMetrics=[secondary],
        correction="benjaminiHochberg",
    )
    world = World(
        spec,
        truth={"champion": 0.5, "challenger": 0.5, "other": 0.5},
        revisions={**REVISIONS, "other": "ccc333"},
    )
    world.run_until_done(limit=30)
    assert [(s.metric, s.arm) for s in world.status.secondary] == [
        ("latency-ok", "challenger"),
        ("latency-ok", "other"),
    ]
    assert all(s.p_value is not None and not s.significant for s in world.status.secondary)
    assert world.status.design is not None
    assert world.status.design.alpha_per_comparison == pytest.approx(0.025)


def test_a_mean_metric() -> None:
    metric = {
        "name": "abs-error",
        "kind": "mean",
        "sumQuery": "s",
        "sumSquaresQuery": "q",
        "totalQuery": "t",
        "baseline": 1.0,
        "baselineStd": 0.5,
        "minimumDetectableEffect": 0.1,
        "higherIsBetter": False,
    }
    spec = make_spec(primaryMetric=metric)
    design = core.design(spec, 100.0)
    assert design.minimum_effect == pytest.approx(-0.1)
    assert design.samples_per_arm == msprt_sample_size(-0.1, 0.25, 0.25, mixing_sd=0.1, alpha=0.05, power=0.8)
    target = core.Target("ns", "exp", REVISIONS, 30.0)
    keys = {r.key.part for r in core.plan_analysis(spec, target)}
    assert keys == {f"{part}@{arm}" for part in ("total", "sum", "squares") for arm in REVISIONS}


def test_plan_renders_every_placeholder() -> None:
    guardrail = {"name": "p99", "query": 'q{revision="{{revision}}", ns="{{namespace}}"}[{{window}}]', "max": 1}
    spec = make_spec(guardrails=[guardrail])
    requests = core.plan_analysis(spec, core.Target("ns", "exp", REVISIONS, 42.0))
    rendered = {render(r.template, r.variables) for r in requests}
    assert 'sum(increase(feedback{revision="bbb222", arm="challenger"}[42s]))' in rendered
    assert 'q{revision="bbb222", ns="ns"}[1m]' in rendered
    assert [r.key.part for r in requests if r.key.metric == "p99"] == ["value@challenger"]  # absolute: no champion


def test_status_has_only_finite_numbers() -> None:
    world = World(make_spec(), rate=3.0)
    world.run_until_done(limit=5)
    wire = world.status.model_dump(mode="json", by_alias=True, exclude_none=True)

    def finite(value: Any) -> bool:
        if isinstance(value, float):
            return math.isfinite(value)
        if isinstance(value, dict):
            return all(finite(v) for v in value.values())
        if isinstance(value, list):
            return all(finite(v) for v in value)
        return True

    assert finite(wire)
