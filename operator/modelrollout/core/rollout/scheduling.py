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
from modelrollout.core.rollout.status import current_step, in_traffic_steps, is_canary


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
    analysis is due needs no API calls, and nor does a canary waiting for its
    pods to be ready (no clock runs there, and the watch of its Deployment
    reconciles it when they are); everything else (smoke tests, whose refused
    pods no watch reports, unconfirmed weights, rest states under resync) does.
    """
    if waits_for_ready_pods(status):
        return False
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


def waits_for_ready_pods(status: ModelDeploymentStatus) -> bool:
    """A canary past its smoke tests (or without any) and not yet in traffic: it waits for ready replicas."""
    smoke_done = status.smoke_test is None or status.smoke_test.state == "Passed"
    return is_canary(status) and not status.aborted and smoke_done and status.current_step_index is None


def guardrails_due(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> bool:
    """Whether this step's guardrails are evaluated (circuit breakers always are)."""
    return bool(spec.analysis.metrics) and current_step(spec, status).analysis
