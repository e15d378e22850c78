"""When a ModelDeployment needs the engine's attention: the questions asked before deciding.

The engine asks these before it reads anything: whether to query Prometheus,
whether a tick could change anything at all, and which guardrails apply. A
rollout that merely holds its step costs no API calls, and the analysis runs
at ``spec.analysis.interval`` however often the engine ticks.
"""

from __future__ import annotations

from datetime import datetime

from modelrollout.api.base import duration_seconds
from modelrollout.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
from modelrollout.core.rollout.status import current_step, in_traffic_steps


def analysis_due(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime) -> bool:
    """Whether the engine should query Prometheus this tick."""
    if not in_traffic_steps(status) or spec.paused or status.step_started_at is None:
        return False
    if not (spec.circuit_breaker or (spec.analysis.metrics and current_step(spec, status).analysis)):
        return False
    last = status.analysis.last_run_at
    return last is None or (now - last).total_seconds() >= duration_seconds(spec.analysis.interval)


def work_due(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime) -> bool:
    """Whether a tick can change anything without a new spec or action.

    A step that merely holds its weight until its pause ends or its next
    analysis is due needs no API calls; everything else (smoke tests,
    unconfirmed weights, rest states under resync) does.
    """
    if not in_traffic_steps(status) or status.step_started_at is None:
        return True
    if spec.paused:
        return False
    if analysis_due(spec, status, now):
        return True
    pause = current_step(spec, status).pause.duration
    if pause is None:
        return False
    return (now - status.step_started_at).total_seconds() >= duration_seconds(pause)


def guardrails_due(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> bool:
    """Whether this step's guardrails are evaluated (circuit breakers always are)."""
    return bool(spec.analysis.metrics) and current_step(spec, status).analysis
