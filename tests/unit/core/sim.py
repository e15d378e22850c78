"""A tiny simulated world for the rollout state machine: ticks, a router that follows, scripted metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modelrollout.api.modeldeployment import MetricResult, ModelDeploymentSpec, ModelDeploymentStatus
from modelrollout.core.actions import UserAction
from modelrollout.core.analysis import AnalysisOutcome
from modelrollout.core.revisions import KnownRevision, RevisionContent
from modelrollout.core.rollout import Decision, Observations, SmokeObservation, analysis_due, decide

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def make_spec(version: str = "1", **overrides: Any) -> ModelDeploymentSpec:
    body: dict[str, Any] = {
        "model": {"name": "returns", "version": version, "uri": f"s3://m/{version}"},
        "template": {"spec": {"containers": [{"name": "server", "image": f"server:{version}"}]}},
        "analysis": {"interval": "10s", "metrics": [{"name": "latency", "query": "q", "max": 1.0}]},
        "strategy": {"canary": {"steps": [{"weight": w, "pause": {"duration": "30s"}} for w in (5, 25, 50, 100)]}},
    }
    body.update(overrides)
    return ModelDeploymentSpec.model_validate(body)


def outcome(verdict: str = "Pass", tripped: bool = False) -> AnalysisOutcome:
    metric = MetricResult(name="latency", verdict=verdict, value=0.1 if verdict == "Pass" else 2.0, message="m")  # type: ignore[arg-type]
    trip = (MetricResult(name="errors", verdict="Fail", value=0.9, limit="<= 0.5"),) if tripped else ()
    return AnalysisOutcome(verdict="Fail" if tripped else verdict, metrics=(metric,), tripped=trip)  # type: ignore[arg-type]


@dataclass
class World:
    """The cluster as the state machine sees it, converging to each decision's desired state."""

    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    now: datetime = T0
    revisions: list[KnownRevision] = field(default_factory=list)
    router_weight: int = 0
    smoke: Callable[[int], SmokeObservation | None] = lambda attempt: SmokeObservation("Passed")
    analysis: Callable[[World], AnalysisOutcome] = lambda world: outcome("Pass")
    router_lags: int = 0
    canary_ready: bool = True
    generation: int = 1
    decisions: list[Decision] = field(default_factory=list)
    weights_seen: list[int] = field(default_factory=list)
    smoke_jobs_started: int = 0
    _pending_smoke: int | None = None

    def tick(self, seconds: float = 1.0, action: UserAction | None = None, lose_status: bool = False) -> Decision:
        due = analysis_due(self.spec, self.status, self.now)
        content = RevisionContent.of(self.spec)
        obs = Observations(
            now=self.now,
            generation=self.generation,
            content=content,
            known_revisions=tuple(self.revisions),
            stable_ready=True,
            canary_ready=self.canary_ready,
            smoke=self.smoke(self._pending_smoke) if self._pending_smoke is not None else None,
            router_weight=self.router_weight,
            analysis=self.analysis(self) if due else None,
            action=action,
        )
        decision = decide(self.spec, self.status, obs)
        self._record_revisions(decision.status)
        if self.router_lags:
            self.router_lags -= 1
        else:
            self.router_weight = decision.desired.canary_weight
        # As the engine does in the same tick: decide again from the router's read-back.
        confirmed = decide(
            self.spec,
            decision.status,
            dataclasses.replace(obs, router_weight=self.router_weight, analysis=None, action=None),
        )
        decision = dataclasses.replace(
            confirmed,
            events=decision.events + confirmed.events,
            rollbacks=decision.rollbacks + confirmed.rollbacks,
        )
        self.decisions.append(decision)
        if not self.weights_seen or self.weights_seen[-1] != self.router_weight:
            self.weights_seen.append(self.router_weight)
        if decision.desired.smoke_attempt != self._pending_smoke:
            self._pending_smoke = decision.desired.smoke_attempt
            if self._pending_smoke is not None:
                self.smoke_jobs_started += 1
        if not lose_status:
            self.status = ModelDeploymentStatus.model_validate(decision.status.to_wire())
        self.now += timedelta(seconds=seconds)
        return decision

    def _record_revisions(self, status: ModelDeploymentStatus) -> None:
        """As the engine's converger does: a ControllerRevision for the stable and the current revision,
        created when missing and renumbered when an old revision is rolled out again."""
        for ref in (status.stable_revision, status.current_revision):
            if ref is None:
                continue
            recorded = KnownRevision(ref.number, ref.hash, ref.model_version)
            if recorded not in self.revisions:
                self.revisions = [*(r for r in self.revisions if r.hash != ref.hash), recorded]

    def run(self, ticks: int, seconds: float = 1.0) -> None:
        for _ in range(ticks):
            self.tick(seconds)

    def run_until(
        self, predicate: Callable[[ModelDeploymentStatus], bool], limit: int = 1000, seconds: float = 1.0
    ) -> None:
        for _ in range(limit):
            self.tick(seconds)
            if predicate(self.status):
                return
        raise AssertionError(f"not reached in {limit} ticks: phase={self.status.phase} {self.status.message}")

    def change(self, spec: ModelDeploymentSpec) -> None:
        self.spec = spec
        self.generation += 1

    def events(self) -> list[str]:
        return [e.reason for d in self.decisions for e in d.events]


def deployed(version: str = "1", **kwargs: Any) -> World:
    """A world whose first revision is stable."""
    world = World(spec=make_spec(version), **kwargs)
    world.run_until(lambda s: s.phase == "Healthy")
    world.decisions.clear()
    world.weights_seen = [world.router_weight]
    return world


__all__ = ["T0", "World", "deployed", "make_spec", "outcome"]
