"""What a ModelDeployment's status says: its conditions, the words for a wait, and the small readers of it.

The transitions (:mod:`modelrollout.core.rollout.machine`) only move the
status along; the conditions are derived from where it ended up, once per
decision, so they can never disagree with the phase. The readers answer the
questions every part of the state machine asks (is there a canary, which
step is it on) in one place.
"""

from __future__ import annotations

import math
from datetime import datetime

from modelrollout.api.base import duration_seconds
from modelrollout.api.conditions import ConditionStatus, find_condition
from modelrollout.api.modeldeployment import AnalysisStatus, CanaryStep, ModelDeploymentSpec, ModelDeploymentStatus
from modelrollout.core.decisions import Draft


def set_conditions(spec: ModelDeploymentSpec, draft: Draft[ModelDeploymentStatus], stable_ready: bool) -> None:
    status = draft.status
    put = draft.condition
    stable = status.stable_revision
    if stable is None:
        put("Available", "False", "NoStableRevision", "no revision is stable yet")
    elif stable_ready:
        put("Available", "True", "StableServing", f"revision {stable.version_id} serves")
    else:
        put("Available", "False", "StableNotReady", f"revision {stable.version_id} has no ready replicas")
    canary = is_canary(status)
    message = status.message or ""
    if canary and not status.aborted:
        put("Progressing", "True", status.phase, message)
    else:
        put("Progressing", "False", "RolloutStopped" if canary else "RolloutComplete", message)
    if canary and status.aborted:
        put("Degraded", "True", "SmokeTestFailed" if status.phase == "Failed" else "RolledBack", message)
    else:
        put("Degraded", "False", "AsExpected")
    smoke = status.smoke_test
    if smoke is not None:
        put("SmokeTestPassed", _TRI_STATE.get(smoke.state, "Unknown"), f"Smoke{smoke.state}", smoke.reason or "")
    verdict = status.analysis.verdict
    if verdict is not None:
        put("AnalysisPassing", _TRI_STATE.get(verdict, "Unknown"), f"Analysis{verdict}")
    underpowered = _underpowered(spec, status, draft.now)
    if underpowered is not None:
        put("Underpowered", "True", "SlowerThanMaxStepDuration", underpowered)
    elif find_condition(status.conditions, "Underpowered") is not None:
        put("Underpowered", "False", "DecisionExpectedInTime")
    paused = status.phase == "Paused"
    put("Paused", "True" if paused else "False", "Paused" if paused else "Running")


def _underpowered(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime) -> str | None:
    """Why the current step is not expected to decide within maxStepDuration at the observed traffic, if so."""
    analysis, limit = status.analysis, spec.analysis.max_step_duration
    if not in_traffic_steps(status) or status.step_started_at is None or limit is None:
        return None
    if analysis.verdict != "Waiting" or analysis.eta_seconds is None or not analysis.canary_request_rate:
        return None
    allowed = duration_seconds(limit)
    remaining = allowed - (now - status.step_started_at).total_seconds()
    if analysis.eta_seconds <= remaining or analysis.needed_samples is None:
        return None
    total_rate = analysis.canary_request_rate * 100.0 / max(status.canary_weight, 1)
    weight = 100.0 * analysis.needed_samples / (total_rate * allowed) if total_rate > 0 else math.inf
    suggestion = f"a weight of about {math.ceil(weight)}% or " if weight <= 100 else ""
    return (
        f"step {step_number(status)} at {status.canary_weight}% needs about {analysis.needed_samples:,.0f} more "
        f"canary requests: about {_duration_words(analysis.eta_seconds)} at {analysis.canary_request_rate:.3g} req/s, "
        f"beyond maxStepDuration {limit}; {suggestion}maxStepDuration of "
        f"{_duration_words(analysis.eta_seconds)} would suffice"
    )


_TRI_STATE: dict[str, ConditionStatus] = {"Passed": "True", "Failed": "False", "Pass": "True", "Fail": "False"}


def eta_words(analysis: AnalysisStatus) -> str:
    if analysis.needed_samples is None:
        return ""
    words = f"; about {analysis.needed_samples:,.0f} more canary requests"
    if analysis.eta_seconds is not None and analysis.canary_request_rate:
        words += f": about {_duration_words(analysis.eta_seconds)} at {analysis.canary_request_rate:.3g} req/s"
    return words


def _duration_words(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def is_canary(status: ModelDeploymentStatus) -> bool:
    current, stable = status.current_revision, status.stable_revision
    return current is not None and (stable is None or current.hash != stable.hash)


def in_traffic_steps(status: ModelDeploymentStatus) -> bool:
    return is_canary(status) and status.current_step_index is not None and not status.aborted


def current_step(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> CanaryStep:
    steps = spec.strategy.canary.steps
    index = min(status.current_step_index or 0, len(steps) - 1)
    return steps[index]


def step_number(status: ModelDeploymentStatus) -> int:
    return (status.current_step_index or 0) + 1


def current_version(status: ModelDeploymentStatus) -> str:
    return status.current_revision.version_id if status.current_revision else "?"


def current_number(status: ModelDeploymentStatus) -> int:
    return status.current_revision.number if status.current_revision else 0
