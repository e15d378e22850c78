"""Seeded simulation of canary rollouts through the real decision path, for the unit test and ``make bench``.

Each rollout starts a new revision against a stable one with the default
steps and analysis (only the look interval and the error-rate guardrail's
queries are set), then alternates as the engine does: traffic flows for one
analysis interval at the weight the router holds, the guardrail queries are
answered with the cumulative counts since the canary started,
:func:`modelrollout.core.analysis.evaluate` reads them and
:func:`modelrollout.core.rollout.decide` decides; when the weight changes the
router follows at once and ``decide`` runs again to confirm the step, as the
engine does in one tick (with an unchanged weight that second call changes
nothing, so it is skipped). Requests arrive as Poisson counts and fail independently:
what Prometheus' extrapolation and scrape skew add on a real cluster is left
to the real-cluster benchmark.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from modelrollout.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus, RevisionRef
from modelrollout.core.analysis import evaluate
from modelrollout.core.queries import CANARY, STABLE, TRAFFIC, Answer, QueryKey
from modelrollout.core.revisions import KnownRevision, RevisionContent, version_id
from modelrollout.core.rollout import Observations, analysis_due, decide, guardrails_due

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GUARDRAIL = "error-rate"

Outcome = Literal["promoted", "rolled back", "undecided"]


def canary_spec(version: str, look_seconds: float, **analysis: Any) -> ModelDeploymentSpec:
    """Defaults everywhere but the look interval and the error-rate guardrail's two queries."""
    return ModelDeploymentSpec.model_validate(
        {
            "model": {"name": "sim", "version": version, "uri": f"s3://sim/{version}"},
            "template": {"spec": {"containers": [{"name": "server", "image": f"server:{version}"}]}},
            "analysis": {
                "interval": f"{look_seconds:g}s",
                "metrics": [{"name": GUARDRAIL, "proportion": {"errorsQuery": "errors", "totalQuery": "total"}}],
                **analysis,
            },
        }
    )


@dataclass(frozen=True, slots=True)
class Scenario:
    """One cell: traffic, failure rates and how often the controller looks."""

    requests_per_second: float
    look_seconds: float
    stable_error_rate: float = 0.01
    canary_error_rate: float = 0.01
    horizon_seconds: float = 7200.0


@dataclass(frozen=True, slots=True)
class RolloutResult:
    outcome: Outcome
    seconds: float
    """From the canary's first traffic to the decision (or the horizon)."""
    canary_requests: float
    reason: str
    looks_after_tenth: int | None = None
    """Looks from the first one that saw the canary's 10th request to the rollback (0 when it came before the
    10th request; None: not rolled back)."""


def _stable_status(spec: ModelDeploymentSpec) -> ModelDeploymentStatus:
    content = RevisionContent.of(spec)
    ref = RevisionRef(number=1, version_id=version_id(1, content.hash), hash=content.hash, model_version="1")
    return ModelDeploymentStatus(current_revision=ref, stable_revision=ref, phase="Healthy", observed_generation=1)


def simulate_rollout(scenario: Scenario, rng: np.random.Generator) -> RolloutResult:
    """One rollout of a new revision, to promotion, rollback or the horizon."""
    stable_spec = canary_spec("1", scenario.look_seconds)
    spec = canary_spec("2", scenario.look_seconds)
    status = _stable_status(stable_spec)
    content = RevisionContent.of(spec)
    known = (KnownRevision(1, RevisionContent.of(stable_spec).hash, "1"),)
    counts = {"canary": [0.0, 0.0], "stable": [0.0, 0.0]}
    rates = {"canary": scenario.canary_error_rate, "stable": scenario.stable_error_rate}
    now, router, generation = T0, 0, 2
    dt = scenario.look_seconds
    looks, tenth_look = 0, None
    while True:
        started = status.canary_started_at
        if started is not None and (now - started).total_seconds() > scenario.horizon_seconds:
            return RolloutResult("undecided", (now - started).total_seconds(), counts["canary"][1], "horizon")
        analysis = None
        if analysis_due(spec, status, now):
            looks += 1
            if tenth_look is None and counts["canary"][1] >= 10:
                tenth_look = looks
            elapsed = (now - (started or now)).total_seconds()
            analysis = evaluate(
                spec,
                _answers(counts),
                {m.name: m for m in status.analysis.metrics},
                guardrails=guardrails_due(spec, status),
                elapsed_seconds=elapsed,
                step=status.current_step_index,
            )
        observations = Observations(
            now=now,
            generation=generation,
            content=content,
            known_revisions=known,
            stable_ready=True,
            canary_ready=True,
            router_weight=router,
            analysis=analysis,
        )
        decision = decide(spec, status, observations)
        status = decision.status
        if decision.desired.canary_weight != router:
            router = decision.desired.canary_weight
            confirm = dataclasses.replace(observations, router_weight=router, analysis=None)
            status = decide(spec, status, confirm).status
        known = (*known, KnownRevision(2, content.hash, "2")) if len(known) == 1 else known
        canary_seconds = (now - status.canary_started_at).total_seconds() if status.canary_started_at else 0.0
        if status.phase == "Healthy" and status.stable_revision and status.stable_revision.hash == content.hash:
            return RolloutResult("promoted", canary_seconds, counts["canary"][1], "")
        if status.aborted:
            after = 0 if tenth_look is None else looks - tenth_look
            return RolloutResult("rolled back", canary_seconds, counts["canary"][1], status.message or "", after)
        _serve(counts, rates, router, scenario.requests_per_second * dt, rng)
        now += timedelta(seconds=dt)


def _serve(
    counts: dict[str, list[float]], rates: dict[str, float], weight: int, requests: float, rng: np.random.Generator
) -> None:
    for role, share in (("canary", weight / 100.0), ("stable", 1.0 - weight / 100.0)):
        served = float(rng.poisson(requests * share)) if share > 0 else 0.0
        counts[role][0] += float(rng.binomial(int(served), rates[role])) if served else 0.0
        counts[role][1] += served


def _answers(counts: dict[str, list[float]]) -> dict[QueryKey, Answer]:
    answers: dict[QueryKey, Answer] = {}
    for role, key in (("canary", CANARY), ("stable", STABLE)):
        errors, total = counts[role]
        answers[QueryKey(GUARDRAIL, key, "errors")] = errors
        answers[QueryKey(GUARDRAIL, key, "total")] = total
        answers[QueryKey(TRAFFIC, key)] = total
    return answers


@dataclass(frozen=True, slots=True)
class CellSummary:
    scenario: Scenario
    rollouts: int
    promoted: int
    rolled_back: int
    undecided: int
    median_seconds: float
    """Median time to a decision among decided rollouts (nan when none decided)."""
    first_failure_requests: float
    """Median canary requests seen when a rollback happened (nan when none)."""
    most_looks_after_tenth: int | None
    """The most looks any rollback took after the look that saw the canary's 10th request."""


def run_cell(scenario: Scenario, rollouts: int, seed: int) -> CellSummary:
    """``rollouts`` independent rollouts of one scenario, seeded."""
    rng = np.random.default_rng(seed)
    results = [simulate_rollout(scenario, rng) for _ in range(rollouts)]
    decided = [r.seconds for r in results if r.outcome != "undecided"]
    failed = [r.canary_requests for r in results if r.outcome == "rolled back"]
    return CellSummary(
        scenario=scenario,
        rollouts=rollouts,
        promoted=sum(r.outcome == "promoted" for r in results),
        rolled_back=len(failed),
        undecided=sum(r.outcome == "undecided" for r in results),
        median_seconds=float(np.median(decided)) if decided else float("nan"),
        first_failure_requests=float(np.median(failed)) if failed else float("nan"),
        most_looks_after_tenth=max(
            (r.looks_after_tenth for r in results if r.looks_after_tenth is not None), default=None
        ),
    )


__all__ = ["CellSummary", "RolloutResult", "Scenario", "canary_spec", "run_cell", "simulate_rollout"]
