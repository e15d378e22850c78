"""Alerts and actions on the target: what a drift episode asks for, and how its delivery goes.

:func:`update_alert` runs inside :func:`~.machine.decide` and only records, in status, what is to
be sent or done; the engine delivers it after the status is written and reports back through the
other functions here, so a webhook is called once per drift episode (plus reminders and one
resolution) and a failing one backs off without holding up the next evaluation.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from modelrollout.api.base import duration_seconds
from modelrollout.api.driftmonitor import AlertStatus, DriftMonitorSpec, DriftMonitorStatus, TargetActionStatus
from modelrollout.core.decisions import Draft, Event
from modelrollout.core.drift.evaluation import Evaluation, drift_summary
from modelrollout.core.drift.outcomes import Decision

RETRY_BASE_SECONDS = 10.0
RETRY_CAP_SECONDS = 600.0
"""Webhook retries wait 10 s, 20 s, 40 s, ... up to 10 minutes between attempts."""


def update_alert(spec: DriftMonitorSpec, draft: Draft[DriftMonitorStatus], evaluation: Evaluation) -> None:
    """One alert per drift episode or change of what drifted, reminders, and one resolution.

    Only a verdict resolves an alert: too little data (or an outage, see :func:`~.machine.decide`) keeps
    an open alert open, because "we cannot tell" is not "drift is over".
    """
    alert = draft.status.alert
    fingerprint = ",".join(evaluation.fingerprint) or None
    webhook = spec.alerting.webhook is not None
    summary = _alert_summary(evaluation)
    if fingerprint is not None and not alert.firing:
        draft.emit("Warning", "DriftDetected", summary)
        alert = _open(alert, fingerprint, "Firing" if webhook else None, draft.now)
        _request_action(spec, draft, summary)
    elif fingerprint is not None and fingerprint != alert.fingerprint:
        draft.emit("Warning", "DriftChanged", summary)
        alert = _open(alert, fingerprint, "Firing" if webhook else None, draft.now)
    elif fingerprint is not None:
        remind = spec.alerting.remind_after
        since = alert.last_sent_at
        due = remind is not None and since is not None and draft.now - since >= _seconds(duration_seconds(remind))
        if webhook and due and alert.pending is None:
            alert = alert.model_copy(update={"pending": "Reminder", "next_attempt_at": draft.now})
    elif alert.firing and evaluation.state != "InsufficientData":
        draft.emit("Normal", "DriftResolved", f"no drift in {spec.window} of traffic ({evaluation.state})")
        never_sent = alert.pending == "Firing"
        resolved = webhook and spec.alerting.send_resolved and not never_sent
        alert = alert.model_copy(
            update={
                "firing": False,
                "fingerprint": None,
                "pending": "Resolved" if resolved else None,
                "failures": 0,
                "next_attempt_at": draft.now if resolved else None,
                "last_error": None,
            }
        )
    draft.update(alert=alert)


def _open(alert: AlertStatus, fingerprint: str, pending: Literal["Firing"] | None, now: datetime) -> AlertStatus:
    return alert.model_copy(
        update={
            "firing": True,
            "fingerprint": fingerprint,
            "pending": pending,
            "failures": 0,
            "next_attempt_at": now if pending else None,
            "last_error": None,
        }
    )


def _alert_summary(evaluation: Evaluation) -> str:
    parts = []
    if evaluation.drifted:
        parts.append(drift_summary(evaluation.features, evaluation.prediction))
    if evaluation.performance is not None and evaluation.performance.degraded:
        parts.append(f"performance degraded: {evaluation.performance.message}")
    return "; ".join(parts)


def _request_action(spec: DriftMonitorSpec, draft: Draft[DriftMonitorStatus], summary: str) -> None:
    if spec.action == "None":
        return
    stamp = draft.now.strftime("%Y%m%dT%H%M%SZ")
    action = TargetActionStatus(
        name=spec.action,
        id=f"drift-{stamp}-g{draft.generation}",
        requested_at=draft.now,
        message=summary[:500],
    )
    draft.update(action=action)


def action_pending(status: DriftMonitorStatus, now: datetime) -> TargetActionStatus | None:
    """The action still to take; due from when drift asked for it, like a pending alert."""
    action = status.action
    return action if action is not None and action.state == "Pending" and action.requested_at <= now else None


def action_done(status: DriftMonitorStatus, *, target: str, now: datetime) -> Decision:
    """The target was patched: record it on the monitor (status and an Event)."""
    action = status.action
    assert action is not None
    verb = "paused the rollout of" if action.name == "Pause" else "asked to roll back the canary of"
    text = f"{verb} ModelDeployment {target} at {now.isoformat()}: {action.message}"
    updated = action.model_copy(update={"state": "Taken", "taken_at": now})
    event = Event("Warning", "TargetPaused" if action.name == "Pause" else "RollbackRequested", text)
    return Decision(status=status.model_copy(update={"action": updated, "action_taken": text[:1000]}), events=(event,))


def action_failed(status: DriftMonitorStatus, error: str, *, permanent: bool) -> Decision:
    """A failed patch is retried at the next tick unless it cannot succeed (the target is gone)."""
    action = status.action
    assert action is not None
    updated = action.model_copy(update={"state": "Failed" if permanent else "Pending", "message": error[:500]})
    events = (Event("Warning", "ActionFailed", f"{action.name} of the target failed: {error}"),) if permanent else ()
    return Decision(status=status.model_copy(update={"action": updated}), events=events)


def target_event(action: TargetActionStatus, monitor: str) -> Event:
    """The Event on the ModelDeployment, so its owners see why it was paused or rolled back."""
    what = "paused" if action.name == "Pause" else "rollback requested"
    return Event("Warning", "DriftDetected", f"{what} by DriftMonitor {monitor}: {action.message}")


def delivery_due(status: DriftMonitorStatus, now: datetime) -> bool:
    alert = status.alert
    return alert.pending is not None and (alert.next_attempt_at is None or alert.next_attempt_at <= now)


def alert_delivered(status: DriftMonitorStatus, now: datetime) -> DriftMonitorStatus:
    alert = status.alert.model_copy(
        update={"pending": None, "failures": 0, "next_attempt_at": None, "last_error": None, "last_sent_at": now}
    )
    return status.model_copy(update={"alert": alert})


def alert_failed(status: DriftMonitorStatus, error: str, now: datetime) -> DriftMonitorStatus:
    """Back off exponentially; evaluation carries on meanwhile and a newer message replaces this one."""
    failures = status.alert.failures + 1
    wait = min(RETRY_BASE_SECONDS * 2 ** (failures - 1), RETRY_CAP_SECONDS)
    alert = status.alert.model_copy(
        update={"failures": failures, "next_attempt_at": now + _seconds(wait), "last_error": error[:500]}
    )
    return status.model_copy(update={"alert": alert})


def alert_payload(namespace: str, name: str, spec: DriftMonitorSpec, status: DriftMonitorStatus) -> dict[str, Any]:
    """A Slack-compatible message (``text`` plus ``blocks``) with a machine-readable ``modelrollout`` field."""
    kind = status.alert.pending or "Firing"
    monitor = f"{namespace}/{name}"
    drifted = [
        f for f in [*status.features, *([status.prediction] if status.prediction else [])] if f.verdict == "Drift"
    ]
    performance = status.performance
    if kind == "Resolved":
        text = f":white_check_mark: DriftMonitor {monitor}: drift on ModelDeployment {spec.target_ref} resolved"
    else:
        prefix = ":warning: Reminder: drift persists" if kind == "Reminder" else ":warning: Drift detected"
        details = []
        if drifted:
            details.append(drift_summary(status.features, status.prediction))
        if performance is not None and performance.degraded:
            details.append(f"performance degraded: {performance.message}")
        text = f"{prefix} on ModelDeployment {spec.target_ref} (DriftMonitor {monitor}): {'; '.join(details)}"
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "modelrollout": {
            "kind": kind,
            "monitor": name,
            "namespace": namespace,
            "target": spec.target_ref,
            "state": status.state,
            "revision": status.revision,
            "evaluatedAt": status.last_evaluation_time.isoformat() if status.last_evaluation_time else None,
            "driftedFeatures": [f.name for f in drifted] if kind != "Resolved" else [],
            "scores": {f.name: dict(f.scores) for f in drifted} if kind != "Resolved" else {},
            "performance": (
                performance.model_dump(mode="json", by_alias=True, exclude_none=True) if performance else None
            ),
            "fingerprint": status.alert.fingerprint,
        },
    }


def alert_cancelled(status: DriftMonitorStatus) -> DriftMonitorStatus:
    """The webhook was removed from the spec while a message waited: nobody is left to tell."""
    alert = status.alert.model_copy(update={"pending": None, "failures": 0, "next_attempt_at": None})
    return status.model_copy(update={"alert": alert})


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
