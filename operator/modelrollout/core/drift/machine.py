"""The DriftMonitor's decision: the status after each evaluation attempt, and the Events it calls for.

Everything here is pure and takes ``now`` as an argument, as in the ModelDeployment's state machine.
A DriftMonitor lives from evaluation to evaluation; the engine runs one attempt as:

1. :func:`evaluation_due`: an interval after the last attempt, at once after a spec change;
2. read the reference and the target (:func:`~.planning.parse_reference`,
   :func:`~.planning.revision_label`), plan the queries (:func:`~.planning.plan_queries`) and run them;
3. :func:`~.evaluation.evaluate` the answers, or make a :class:`~.outcomes.Failure` of what went wrong;
4. :func:`decide`: conditions, history, and the alert and action the outcome calls for
   (:func:`~.alerts.update_alert`), all written to status first;
5. only then deliver what the status says is pending (an alert, an action on the target), reporting the
   outcome through :func:`~.alerts.alert_delivered` / :func:`~.alerts.alert_failed` and
   :func:`~.alerts.action_done` / :func:`~.alerts.action_failed`.

A spec the schema let through but the rules reject never gets here: the engine reports it, as for
every kind, with the ``InvalidSpec`` condition.
Whatever the outcome, the engine writes the returned status before it publishes the Events.
Keeping delivery state in status makes every side effect happen once per drift episode, survives
restarts, and lets a failing webhook back off without ever holding up the next evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from modelrollout.api.base import duration_seconds
from modelrollout.api.conditions import find_condition
from modelrollout.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus, EvaluationSummary, QualityResult
from modelrollout.core.decisions import Draft
from modelrollout.core.drift.alerts import update_alert
from modelrollout.core.drift.evaluation import Evaluation, drift_summary
from modelrollout.core.drift.outcomes import Decision, Failure


def evaluation_due(spec: DriftMonitorSpec, status: DriftMonitorStatus, generation: int, now: datetime) -> bool:
    """Due an interval after the last attempt, and at once after a spec change."""
    if status.observed_generation != generation or status.last_attempt_time is None:
        return True
    return (now - status.last_attempt_time).total_seconds() >= duration_seconds(spec.interval)


def decide(
    spec: DriftMonitorSpec,
    status: DriftMonitorStatus,
    outcome: Evaluation | Failure,
    *,
    now: datetime,
    generation: int,
    revision: str | None = None,
) -> Decision:
    """The status after one evaluation attempt, and the Events it calls for.

    A failure changes only Ready, the state (Error) and the history: the last good scores,
    conditions and alert state stay as they were, so an outage neither resolves nor raises an alert.
    """
    draft = Draft(status=status, now=now, generation=generation)
    draft.update(observed_generation=generation, last_attempt_time=now)
    if isinstance(outcome, Failure):
        _failed(draft, outcome, spec.history_limit)
    else:
        _evaluated(spec, draft, outcome, revision)
    return Decision(status=draft.status, events=tuple(draft.events))


def _failed(draft: Draft[DriftMonitorStatus], failure: Failure, history_limit: int) -> None:
    ready = find_condition(draft.status.conditions, "Ready")
    if ready is None or ready.status != "False" or ready.reason != failure.reason:
        draft.emit("Warning", failure.reason, failure.message)
    draft.condition("Ready", "False", failure.reason, failure.message)
    summary = EvaluationSummary(time=draft.now, state="Error")
    draft.update(state="Error", history=_bounded([summary, *draft.status.history], history_limit))


def _evaluated(
    spec: DriftMonitorSpec, draft: Draft[DriftMonitorStatus], evaluation: Evaluation, revision: str | None
) -> None:
    state = evaluation.state
    previous_quality = find_condition(draft.status.conditions, "DataQualityDegraded")
    draft.update(
        state=state,
        last_evaluation_time=draft.now,
        revision=revision,
        drifted_features=evaluation.drifted,
        features=list(evaluation.features),
        prediction=evaluation.prediction,
        performance=evaluation.performance,
        data_quality=[q for q in evaluation.quality if q.degraded],
    )
    _drift_conditions(spec, draft, evaluation)
    if draft.status.data_quality and (previous_quality is None or previous_quality.status != "True"):
        draft.emit("Warning", "DataQualityDegraded", _quality_message(draft.status.data_quality))
    draft.condition("Ready", "True", "Evaluated", f"evaluated {len(evaluation.features)} features over {spec.window}")
    update_alert(spec, draft, evaluation)
    psi = [f.scores["psi"] for f in evaluation.features if "psi" in f.scores]
    summary = EvaluationSummary(
        time=draft.now, state=state, drifted=list(evaluation.fingerprint), max_psi=max(psi) if psi else None
    )
    draft.update(history=_bounded([summary, *draft.status.history], spec.history_limit))


def _drift_conditions(spec: DriftMonitorSpec, draft: Draft[DriftMonitorStatus], evaluation: Evaluation) -> None:
    performance = evaluation.performance
    if evaluation.drifted:
        draft.condition("Drifted", "True", "FeaturesDrifted", drift_summary(evaluation.features, evaluation.prediction))
    elif performance is not None and performance.degraded:
        draft.condition("Drifted", "True", "PerformanceDegraded", performance.message or "")
    elif evaluation.insufficient:
        draft.condition("Drifted", "Unknown", "InsufficientData", "too few observations to rule drift out")
    else:
        draft.condition("Drifted", "False", "NoDrift", "")

    if evaluation.insufficient:
        names = evaluation.insufficient
        message = (
            f"{len(names)} of {len(evaluation.features) + (evaluation.prediction is not None)} distributions "
            f"have too few observations in {spec.window} (minSamples {spec.min_samples}, or noise floors above "
            f"the thresholds): {_listing(names)}"
        )
        draft.condition("InsufficientData", "True", "TooFewSamples", message)
    else:
        draft.condition("InsufficientData", "False", "EnoughSamples")

    if spec.data_quality is None:
        draft.condition("DataQualityDegraded", "False", "NotMonitored")
    elif draft.status.data_quality:
        draft.condition("DataQualityDegraded", "True", "LimitsExceeded", _quality_message(draft.status.data_quality))
    else:
        draft.condition("DataQualityDegraded", "False", "WithinLimits")

    if performance is None:
        draft.condition("PerformanceDegraded", "False", "NotMonitored")
    elif performance.degraded:
        draft.condition("PerformanceDegraded", "True", "BelowBaseline", performance.message or "")
    elif performance.feedback < (spec.performance.min_feedback if spec.performance else 0):
        draft.condition("PerformanceDegraded", "Unknown", "InsufficientFeedback", performance.message or "")
    elif performance.message and performance.message.startswith("no baseline"):
        draft.condition("PerformanceDegraded", "Unknown", "NoBaseline", performance.message)
    else:
        draft.condition("PerformanceDegraded", "False", "WithinBaseline", performance.message or "")


def _quality_message(results: Sequence[QualityResult]) -> str:
    parts = []
    for result in results[:10]:
        rates = [
            f"{label} {rate:.1%}"
            for label, rate in (
                ("missing", result.missing_rate),
                ("out of range", result.out_of_range_rate),
                ("outliers", result.outlier_rate),
            )
            if rate is not None
        ]
        parts.append(f"{result.name} ({', '.join(rates)})")
    return "data quality limits exceeded: " + ", ".join(parts) + (" ..." if len(results) > 10 else "")


def _listing(names: Sequence[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _bounded(history: list[EvaluationSummary], limit: int) -> list[EvaluationSummary]:
    return history[:limit]
