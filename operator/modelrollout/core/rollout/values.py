"""What the ModelDeployment state machine takes and returns, apart from the spec and the status.

The engine builds :class:`Observations` from what it read this tick, and
converges the cluster to a :class:`Decision`'s :class:`Desired` state. They
are plain frozen values, so the engine, the converger and the tests share
them without sharing the state machine; :func:`desired` is here because it
defines what a :class:`Desired` state means for a status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from modelrollout.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus, RevisionRef
from modelrollout.core.actions import InvalidAction, UserAction
from modelrollout.core.analysis import AnalysisOutcome
from modelrollout.core.decisions import Event
from modelrollout.core.revisions import KnownRevision, RevisionContent
from modelrollout.core.rollout.status import is_canary


@dataclass(frozen=True, slots=True)
class SmokeObservation:
    """The combined outcome of the current attempt's smoke Jobs, as their status says."""

    state: Literal["Running", "Passed", "Failed"]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Observations:
    """What the engine saw this tick. ``analysis`` is present only when the engine ran one."""

    now: datetime
    generation: int
    content: RevisionContent
    known_revisions: tuple[KnownRevision, ...] = ()
    stable_ready: bool = False
    canary_ready: bool = False
    smoke: SmokeObservation | None = None
    router_weight: int | None = None
    analysis: AnalysisOutcome | None = None
    action: UserAction | InvalidAction | None = None


@dataclass(frozen=True, slots=True)
class Desired:
    """The state the engine converges the cluster to. Re-applying it is harmless."""

    stable: RevisionRef | None
    stable_replicas: int
    canary: RevisionRef | None
    canary_replicas: int
    canary_weight: int
    smoke_attempt: int | None
    """Smoke Jobs of this attempt must exist for the canary (None: no smoke Jobs wanted)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One tick's outcome: the status to write, the state to converge to, and the Events to publish after."""

    status: ModelDeploymentStatus
    desired: Desired
    events: tuple[Event, ...] = ()
    rollbacks: int = 0
    keep_revisions: int = 10


def desired(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> Desired:
    stable = status.stable_revision
    canary = status.current_revision if is_canary(status) else None
    weight = status.canary_weight if canary is not None and not status.aborted else 0
    canary_replicas = 0
    smoke_attempt = None
    if canary is not None and not status.aborted:
        canary_replicas = max(1, math.ceil(spec.replicas * weight / 100))
        if status.smoke_test is not None and status.smoke_test.state in ("Pending", "Running"):
            smoke_attempt = status.smoke_test.attempt
    return Desired(
        stable=stable,
        stable_replicas=spec.replicas if stable is not None else 0,
        canary=canary,
        canary_replicas=canary_replicas,
        canary_weight=weight,
        smoke_attempt=smoke_attempt,
    )


def acts_first(spec: ModelDeploymentSpec, before: ModelDeploymentStatus, decision: Decision) -> bool:
    """Whether ``decision`` may be acted on before it is recorded: it only moves more traffic to the same canary.

    Such a step forward is recorded once, with what the router confirmed, instead of twice (the intent, then
    the confirmation). A crash in between loses nothing: the next tick reads the same status, decides the
    same step again, and acting twice is harmless. Whatever moves traffic away from a canary (a rollback, an
    abort, a promotion) is recorded first, so that its reason and its Events survive a crash even when the
    evidence behind it does not come again.
    """
    now, then = desired(spec, before), decision.desired
    return then.canary is not None and then.canary == now.canary and then.canary_weight > now.canary_weight
