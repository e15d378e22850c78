"""The ModelDeployment state machine: (spec, status, observations) -> (status, desired state, events).

Nothing here performs I/O or reads the clock. The engine observes the world,
calls :func:`decide`, writes the returned status and converges the cluster to
the returned :class:`Desired` state. Because every step of progress is written
to status before it is acted on, and acting is idempotent, a restarted
operator resumes where it stopped: it re-verifies the router, and never
repeats a finished step or skips a pending one.

A revision's life cycle, in the order of the transitions below:

- A spec whose model, template or port differ from the current revision's
  starts a new revision: Progressing, or SmokeTesting first when the spec has
  smoke tests. Nothing about the stable revision changes.
- Smoke tests run against the canary before it gets any traffic. A failed or
  timed-out attempt leaves it Failed (aborted): traffic never moved.
- Once the smoke tests passed and the canary's pods are ready, traffic moves
  through the canary steps (a first revision, with nothing stable yet,
  becomes stable instead). A step starts when the router confirms its weight,
  holds for its pause (or until a promote, when the pause has no duration)
  and, when the step has guardrails, until its analysis passes. A
  failed analysis, a tripped circuit breaker, missing data or an expired
  maxStepDuration (the last two as the spec's policy says) rolls back:
  Degraded, all traffic on stable, the spec untouched.
- After the last step the canary is promoted to stable, and the resource is
  Healthy once the router confirms that all traffic goes to it.

People steer it with ``spec.paused`` (Paused: the weight holds) and one-off
actions: promote (the next step now), promote-full (stable now), abort (roll
back) and retry (an aborted or failed revision starts over: smoke tests,
then the first step). Undo is a spec change: the stable revision's spec
drops the canary, and an older revision's spec is rolled out as a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelrollout.api.base import duration_seconds
from modelrollout.api.modeldeployment import (
    AnalysisStatus,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Outcome,
    RevisionRecord,
    RevisionRef,
    SmokeTestStatus,
)
from modelrollout.core.actions import InvalidAction
from modelrollout.core.analysis import AnalysisOutcome
from modelrollout.core.decisions import Draft
from modelrollout.core.revisions import next_number, version_id
from modelrollout.core.rollout.scheduling import guardrails_due
from modelrollout.core.rollout.status import (
    current_number,
    current_step,
    current_version,
    eta_words,
    in_traffic_steps,
    is_canary,
    set_conditions,
    step_number,
)
from modelrollout.core.rollout.values import Decision, Observations, desired


@dataclass(slots=True)
class _Draft(Draft[ModelDeploymentStatus]):
    """The status being built, plus the rollbacks the transition counts."""

    rollbacks: int = 0


def decide(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations) -> Decision:
    """One tick: a new revision if the spec changed one, then the user's action, the progress, and the conditions."""
    draft = _Draft(status, obs.now, obs.generation)
    if status.current_revision is None or status.current_revision.hash != obs.content.hash:
        _start_revision(spec, draft, obs)
    if obs.action is not None:
        _apply_action(spec, draft, obs)
    _advance(spec, draft, obs)
    set_conditions(spec, draft, obs.stable_ready)
    draft.update(observed_generation=obs.generation)
    return Decision(
        status=draft.status,
        desired=desired(spec, draft.status),
        events=tuple(draft.events),
        rollbacks=draft.rollbacks,
        keep_revisions=spec.revision_history_limit,
    )


def _start_revision(spec: ModelDeploymentSpec, draft: _Draft, obs: Observations) -> None:
    status = draft.status
    content_hash = obs.content.hash
    previous = status.current_revision
    stable = status.stable_revision
    history = list(status.history)
    if previous is not None and (stable is None or previous.hash != stable.hash) and not status.aborted:
        history = _record(history, previous.number, "Superseded", "a newer spec replaced it before it became stable")
    if stable is not None and stable.hash == content_hash:
        draft.update(
            current_revision=stable,
            canary_weight=0,
            current_step_index=None,
            step_started_at=None,
            canary_started_at=None,
            smoke_test=None,
            aborted=False,
            analysis=AnalysisStatus(),
            history=history,
            phase="Progressing",
            message=f"spec matches the stable revision {stable.version_id} again; the canary was dropped",
        )
        draft.emit("Normal", "ReturnedToStable", f"spec matches stable revision {stable.version_id}")
        return
    number = next_number(list(obs.known_revisions))
    ref = RevisionRef(
        number=number,
        version_id=version_id(number, content_hash),
        hash=content_hash,
        model_version=str(obs.content.model.get("version", "")),
    )
    history = [r for r in history if r.number != number]
    history.insert(
        0,
        RevisionRecord(
            number=number,
            version_id=ref.version_id,
            model_version=ref.model_version,
            digest=obs.content.model.get("digest"),
            created_at=obs.now,
            outcome="Pending",
        ),
    )
    smoke = SmokeTestStatus(state="Pending", attempt=1) if spec.smoke_test is not None else None
    draft.update(
        current_revision=ref,
        canary_weight=0,
        current_step_index=None,
        step_started_at=None,
        canary_started_at=None,
        smoke_test=smoke,
        aborted=False,
        analysis=AnalysisStatus(),
        history=history[: spec.revision_history_limit],
        phase="SmokeTesting" if smoke is not None else "Progressing",
        message=f"revision {ref.version_id} (model {ref.model_version}) created",
    )
    draft.emit("Normal", "RevisionCreated", f"revision {ref.version_id} for model version {ref.model_version}")


def _apply_action(spec: ModelDeploymentSpec, draft: _Draft, obs: Observations) -> None:
    action = obs.action
    assert action is not None
    draft.update(last_action_id=action.id)
    if isinstance(action, InvalidAction):
        draft.emit(
            "Warning", "UnknownAction", f"ignored action {action.value!r}: use promote, promote-full, abort or retry"
        )
        return
    status = draft.status
    if action.name == "abort":
        if is_canary(status) and not status.aborted:
            _roll_back(spec, draft, "Aborted", "aborted by a user", outcome="Aborted")
        else:
            draft.emit("Warning", "ActionIgnored", "abort: no canary in progress")
    elif action.name == "retry":
        if is_canary(status) and status.aborted:
            _retry(spec, draft)
        else:
            draft.emit("Warning", "ActionIgnored", "retry: nothing was aborted or failed")
    elif action.name == "promote":
        if in_traffic_steps(status) and not status.aborted:
            draft.emit("Normal", "Promoted", f"step {step_number(status)} promoted by a user")
            _next_step(spec, draft, obs)
        else:
            draft.emit(
                "Warning", "ActionIgnored", "promote: no traffic step in progress (smoke tests cannot be skipped)"
            )
    elif action.name == "promote-full":
        smoke_done = status.smoke_test is None or status.smoke_test.state == "Passed"
        if is_canary(status) and not status.aborted and smoke_done:
            draft.emit("Normal", "Promoted", "fully promoted by a user, skipping the remaining steps")
            _promote(draft, obs)
        else:
            draft.emit("Warning", "ActionIgnored", "promote-full: no canary that passed its smoke tests")


def _advance(spec: ModelDeploymentSpec, draft: _Draft, obs: Observations) -> None:
    status = draft.status
    if not is_canary(status) or status.aborted:
        if not is_canary(status):
            _settle_stable(draft, obs)
        return
    smoke = status.smoke_test
    if smoke is not None and smoke.state in ("Pending", "Running"):
        _run_smoke(spec, draft, obs)
        return
    if status.current_step_index is None:
        _begin_traffic(spec, draft, obs)
        return
    if spec.paused:
        draft.update(phase="Paused", message=f"paused at {status.canary_weight}% (spec.paused)")
        return
    draft.update(phase="Progressing")
    if status.step_started_at is None:
        if obs.router_weight == status.canary_weight:
            draft.update(
                step_started_at=obs.now,
                canary_started_at=status.canary_started_at or obs.now,
                message=f"step {step_number(status)}: {status.canary_weight}% of traffic on the canary",
            )
            draft.emit("Normal", "StepStarted", f"canary at {status.canary_weight}% (step {step_number(status)})")
        else:
            seen = "unknown" if obs.router_weight is None else f"{obs.router_weight}%"
            draft.update(message=f"waiting for the router to reach {status.canary_weight}% (now {seen})")
        return
    if obs.analysis is not None:
        _record_analysis(spec, draft, obs.analysis, obs)
        if draft.status.aborted:
            return
    _maybe_finish_step(spec, draft, obs)


def _settle_stable(draft: _Draft, obs: Observations) -> None:
    """Healthy only once the router confirms that all traffic goes to stable.

    Status is written before the router is converged, so a promotion (or a
    return to the stable spec) first reads Progressing; the confirming
    decision of the same tick, made from the router's read-back, makes it
    Healthy. When the router was not read this time, a resource already
    Healthy stays so (an idle resync must not flap).
    """
    status = draft.status
    draft.update(canary_weight=0, current_step_index=None)
    if obs.router_weight == 0 or (obs.router_weight is None and status.phase == "Healthy"):
        draft.update(phase="Healthy")
        return
    stable = status.stable_revision.version_id if status.stable_revision else "?"
    seen = "not confirmed yet" if obs.router_weight is None else f"the canary still has {obs.router_weight}%"
    draft.update(phase="Progressing", message=f"moving all traffic to stable revision {stable} ({seen})")


def _run_smoke(spec: ModelDeploymentSpec, draft: _Draft, obs: Observations) -> None:
    status = draft.status
    smoke = status.smoke_test
    assert smoke is not None
    assert spec.smoke_test is not None
    started = smoke.started_at or obs.now
    if obs.smoke is not None and obs.smoke.state == "Passed":
        draft.update(smoke_test=smoke.model_copy(update={"state": "Passed", "finished_at": obs.now}))
        draft.emit("Normal", "SmokeTestPassed", f"revision {current_version(status)} passed its smoke tests")
        _begin_traffic(spec, draft, obs)
        return
    failed = obs.smoke is not None and obs.smoke.state == "Failed"
    timed_out = (obs.now - started).total_seconds() > duration_seconds(spec.smoke_test.timeout)
    if failed or timed_out:
        reason = (obs.smoke.reason if obs.smoke and failed else None) or (
            f"timed out after {spec.smoke_test.timeout}" if timed_out else "the smoke Job failed"
        )
        draft.update(smoke_test=smoke.model_copy(update={"state": "Failed", "finished_at": obs.now, "reason": reason}))
        draft.update(
            aborted=True,
            canary_weight=0,
            phase="Failed",
            message=f"revision {current_version(status)} failed its smoke tests: {reason}",
            history=_record(list(status.history), current_number(status), "SmokeFailed", reason),
        )
        draft.emit("Warning", "SmokeTestFailed", f"revision {current_version(status)}: {reason}")
        return
    state = "Running" if obs.smoke is not None else smoke.state
    draft.update(
        smoke_test=smoke.model_copy(update={"state": state, "started_at": started}),
        phase="SmokeTesting",
        message=f"smoke tests of revision {current_version(status)} (attempt {smoke.attempt}) are running",
    )


def _begin_traffic(spec: ModelDeploymentSpec, draft: _Draft, obs: Observations) -> None:
    """Traffic (or, for a first revision, the stable role) only goes to a canary whose pods are ready."""
    if not obs.canary_ready:
        draft.update(
            phase="Progressing",
            message=f"waiting for revision {current_version(draft.status)} to have ready replicas"
            " before it gets traffic",
        )
        return
    if draft.status.stable_revision is None:
        _promote(draft, obs)
        return
    _enter_step(spec, draft, 0)


def _enter_step(spec: ModelDeploymentSpec, draft: _Draft, index: int) -> None:
    step = spec.strategy.canary.steps[index]
    analysis = draft.status.analysis
    draft.update(
        current_step_index=index,
        canary_weight=step.weight,
        step_started_at=None,
        phase="Progressing",
        analysis=AnalysisStatus(
            last_run_at=None,
            verdict=None,
            consecutive_failures=analysis.consecutive_failures,
            consecutive_no_data=analysis.consecutive_no_data,
            passes=0,
            metrics=analysis.metrics,
        ),
        message=f"moving to step {index + 1} of {len(spec.strategy.canary.steps)}: {step.weight}%",
    )


def _next_step(spec: ModelDeploymentSpec, draft: _Draft, obs: Observations) -> None:
    index = draft.status.current_step_index
    nxt = 0 if index is None else index + 1
    if nxt >= len(spec.strategy.canary.steps):
        _promote(draft, obs)
    else:
        _enter_step(spec, draft, nxt)


def _maybe_finish_step(spec: ModelDeploymentSpec, draft: _Draft, obs: Observations) -> None:
    status = draft.status
    step = current_step(spec, status)
    assert status.step_started_at is not None
    if step.pause.duration is None:
        draft.update(phase="Paused", message=f"step {step_number(status)} at {status.canary_weight}% waits for promote")
        return
    held = (obs.now - status.step_started_at).total_seconds()
    if held < duration_seconds(step.pause.duration):
        return
    if guardrails_due(spec, status) and not (status.analysis.verdict == "Pass" and status.analysis.passes > 0):
        limit = spec.analysis.max_step_duration
        if limit is not None and held >= duration_seconds(limit):
            _time_out(spec, draft, held)
            return
        waiting = status.analysis.verdict or "no analysis yet"
        draft.update(
            message=f"step {step_number(status)} held {held:.0f}s; waiting for a passing analysis ({waiting}"
            f"{eta_words(status.analysis)})"
        )
        return
    _next_step(spec, draft, obs)


def _time_out(spec: ModelDeploymentSpec, draft: _Draft, held: float) -> None:
    """maxStepDuration ran out without a Pass: the stated policy, and never a promotion."""
    status = draft.status
    reason = f"step {step_number(status)} found no Pass within maxStepDuration {spec.analysis.max_step_duration}"
    if spec.analysis.on_step_timeout == "Rollback":
        _roll_back(spec, draft, "StepTimedOut", reason)
        return
    if not status.analysis.timed_out:
        draft.emit("Warning", "StepTimedOut", f"{reason}; holding at {status.canary_weight}% until it passes")
        draft.update(analysis=status.analysis.model_copy(update={"timed_out": True}))
    draft.update(
        message=f"{reason} (held {held:.0f}s); holding at {status.canary_weight}% and still gathering evidence"
        f"{eta_words(status.analysis)}"
    )


def _record_analysis(spec: ModelDeploymentSpec, draft: _Draft, outcome: AnalysisOutcome, obs: Observations) -> None:
    """Fold one evaluation into status and act on it.

    A statistical Fail rolls back at once (its test already accounts for
    noise); threshold failures need ``failureLimit`` in a row; only missing
    data counts toward ``noDataLimit``; Waiting changes nothing but the ETA.
    """
    previous = draft.status.analysis
    failures = previous.consecutive_failures + 1 if outcome.verdict == "Fail" else 0
    no_data = previous.consecutive_no_data + 1 if outcome.verdict == "NoData" else 0
    passes = previous.passes + 1 if outcome.verdict == "Pass" else previous.passes
    metrics = list(outcome.metrics) if outcome.metrics else [m for m in previous.metrics if m.evidence is not None]
    rate, needed, eta = _traffic_estimate(draft.status, outcome, obs.now)
    draft.update(
        analysis=AnalysisStatus(
            last_run_at=obs.now,
            verdict=outcome.verdict,
            consecutive_failures=failures,
            consecutive_no_data=no_data,
            passes=passes,
            metrics=[*metrics, *outcome.tripped],
            canary_request_rate=rate,
            needed_samples=needed,
            eta_seconds=eta,
            timed_out=previous.timed_out,
        )
    )
    if outcome.tripped:
        detail = "; ".join(f"{m.name} = {m.value:.4g} ({m.limit})" for m in outcome.tripped if m.value is not None)
        _roll_back(spec, draft, "CircuitBreakerTripped", f"circuit breaker: {detail}")
        return
    if outcome.proven_failure or failures >= spec.analysis.failure_limit:
        detail = "; ".join(f"{m.name}: {m.message}" for m in outcome.metrics if m.verdict == "Fail")
        count = "a failed analysis" if outcome.proven_failure else f"{failures} failed analyses in a row"
        _roll_back(spec, draft, "AnalysisFailed", f"{count}: {detail}")
        return
    if no_data >= spec.analysis.no_data_limit:
        detail = "; ".join(f"{m.name}: {m.message}" for m in outcome.metrics if m.verdict == "NoData")
        if spec.analysis.on_no_data == "Rollback":
            _roll_back(spec, draft, "AnalysisNoData", f"{no_data} analyses in a row without data: {detail}")
        else:
            draft.update(message=f"holding at {draft.status.canary_weight}%: {no_data} analyses without data")


def _traffic_estimate(
    status: ModelDeploymentStatus, outcome: AnalysisOutcome, now: datetime
) -> tuple[float | None, float | None, float | None]:
    """Canary requests per second at the current weight, requests still needed to pass, and the time that takes.

    The rate is the whole model's request rate since the canary started (the
    traffic query on both revisions) times the current weight, so it is right
    from a step's first look, before the canary has had many requests.
    """
    needed = max((m.needed_samples for m in outcome.metrics if m.needed_samples is not None), default=None)
    traffic = outcome.traffic
    started = status.canary_started_at
    if traffic.canary is None or traffic.stable is None or started is None:
        return None, needed, None
    elapsed = (now - started).total_seconds()
    if elapsed <= 0:
        return None, needed, None
    rate = (traffic.canary + traffic.stable) / elapsed * status.canary_weight / 100.0
    eta = needed / rate if needed is not None and rate > 0 else None
    return rate, needed, eta


def _roll_back(
    spec: ModelDeploymentSpec, draft: _Draft, reason: str, message: str, outcome: Outcome = "Degraded"
) -> None:
    """Traffic back to stable; the spec is left alone so Git stays the source of truth."""
    status = draft.status
    draft.update(
        aborted=True,
        canary_weight=0,
        phase="Degraded",
        message=f"revision {current_version(status)} rolled back: {message}",
        history=_record(list(status.history), current_number(status), outcome, message),
    )
    draft.rollbacks += 1
    stable = status.stable_revision.version_id if status.stable_revision else "none"
    draft.emit("Warning", reason, f"revision {current_version(status)} rolled back to {stable}: {message}")


def _retry(spec: ModelDeploymentSpec, draft: _Draft) -> None:
    status = draft.status
    smoke = status.smoke_test
    next_smoke = (
        SmokeTestStatus(state="Pending", attempt=(smoke.attempt + 1) if smoke else 1)
        if spec.smoke_test is not None
        else None
    )
    draft.update(
        aborted=False,
        smoke_test=next_smoke,
        current_step_index=None,
        step_started_at=None,
        canary_started_at=None,
        canary_weight=0,
        analysis=AnalysisStatus(),
        phase="SmokeTesting" if next_smoke else "Progressing",
        history=_record(list(status.history), current_number(status), "Pending", None),
        message=f"revision {current_version(status)} retried",
    )
    draft.emit("Normal", "Retried", f"revision {current_version(status)} retried by a user")


def _promote(draft: _Draft, obs: Observations) -> None:
    status = draft.status
    current = status.current_revision
    assert current is not None
    history = list(status.history)
    if status.stable_revision is not None:
        history = _record(history, status.stable_revision.number, "Superseded", None)
    history = _record(history, current.number, "Stable", None)
    draft.update(
        stable_revision=current,
        canary_weight=0,
        current_step_index=None,
        step_started_at=None,
        phase="Progressing",
        history=history,
        message=f"revision {current.version_id} (model {current.model_version}) is stable",
    )
    draft.emit("Normal", "RolloutCompleted", f"revision {current.version_id} is stable")


def _record(history: list[RevisionRecord], number: int, outcome: Outcome, reason: str | None) -> list[RevisionRecord]:
    return [r.model_copy(update={"outcome": outcome, "reason": reason}) if r.number == number else r for r in history]
