"""The Experiment state machine: (spec, status, observations) -> (status, traffic, events, promotion).

Like :mod:`modelrollout.core.rollout`, nothing here performs I/O or reads the
clock. The engine reads the arms' ModelDeployments and runs the queries
:mod:`~modelrollout.core.experiment.planning` plans, calls :func:`decide`,
writes the returned status and puts the returned :class:`Traffic` in force.
Every number a decision rests on comes from :mod:`modelrollout.stats`, through
:mod:`~modelrollout.core.experiment.sizing` (the design) and
:mod:`~modelrollout.core.experiment.evidence` (a look); this module only says
when to look, what the looks mean together, and when to stop.

The life of an experiment:

``Pending``
    Waits until every arm's ModelDeployment has a stable revision, then designs
    the test (sample size per arm, and from the observed traffic rate the
    expected duration) before any traffic moves.
``Running``
    Traffic is split (or mirrored, in shadow mode); ``startedAt`` is set only once
    the router reads back the split. Every ``interval`` one look: guardrails,
    sample ratio mismatch, the primary comparison (mSPRT state carried in status
    across looks, or a fixed-horizon test at the planned size), secondary metrics.
``Concluded`` / ``Stopped`` / ``Failed``
    Terminal: traffic back to 100% champion. Concluded carries Promote,
    KeepChampion or Inconclusive; Stopped is a guardrail breach (KeepChampion);
    Failed is Invalid (sample ratio mismatch, missing data, an arm that changed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from modelrollout.api.base import duration_seconds
from modelrollout.api.experiment import (
    ArmResult,
    DecisionStatus,
    ExperimentPhase,
    ExperimentSpec,
    ExperimentStatus,
    Outcome,
)
from modelrollout.core.decisions import Draft, Event
from modelrollout.core.experiment.evidence import Baseline, Look, SampleRatio, elapsed_seconds, look
from modelrollout.core.experiment.planning import analysis_due, arm_names
from modelrollout.core.experiment.sizing import design, observed_rate
from modelrollout.core.queries import Answer, QueryKey

TERMINAL: tuple[ExperimentPhase, ...] = ("Concluded", "Stopped", "Failed")


@dataclass(frozen=True, slots=True)
class Observations:
    """What the engine saw this tick.

    ``answers`` holds the answers to whichever plan the engine ran this tick: the
    design's (:func:`~.planning.plan_design`, while there is no design) or a look's
    (:func:`~.planning.plan_analysis`, when :func:`~.planning.analysis_due`); None when it ran none.
    """

    now: datetime
    generation: int
    revisions: Mapping[str, str | None]
    """Arm -> its ModelDeployment's stable revision hash; None when there is none (yet)."""
    answers: Mapping[QueryKey, Answer] | None = None
    router_verified: bool | None = None
    """Whether the router reads back the split asked for; None when the engine did not check."""
    router_problem: tuple[str, str] | None = None
    """(reason, message) when the router could not be used."""


@dataclass(frozen=True, slots=True)
class Traffic:
    """The split the engine puts in force, in arm names; the engine maps arms to Services.

    ``weights`` are the spec's relative weights (the engine turns them into percentages);
    ``pinned`` asks for one header route per arm, ``assignment.armHeader: <arm>``.
    """

    weights: tuple[tuple[str, int], ...]
    mirror: str | None = None
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    status: ExperimentStatus
    traffic: Traffic | None
    """None: leave the router alone (nothing was split yet)."""
    events: tuple[Event, ...] = ()
    promote: str | None = None
    """The winning arm whose ModelDeployment spec the engine copies onto the champion's (autoPromote)."""


@dataclass(slots=True)
class _Draft(Draft[ExperimentStatus]):
    """The status being built, plus the arm to promote."""

    promote: str | None = None


def decide(spec: ExperimentSpec, status: ExperimentStatus, obs: Observations) -> Decision:
    draft = _Draft(status, obs.now, obs.generation)
    if status.phase == "Pending":
        _pending(spec, draft, obs)
    elif status.phase == "Running":
        _running(spec, draft, obs)
    if draft.status.phase in TERMINAL:
        _after_conclusion(spec, draft, obs)
    draft.update(observed_generation=obs.generation)
    return Decision(
        status=draft.status,
        traffic=desired_traffic(spec, draft.status),
        events=tuple(draft.events),
        promote=draft.promote,
    )


def promoted(status: ExperimentStatus) -> ExperimentStatus:
    """The status once the engine has started the winner's rollout."""
    if status.decision is None:
        return status
    decision = status.decision.model_copy(update={"promoted": True, "recommendation": None})
    return status.model_copy(update={"decision": decision})


def desired_traffic(spec: ExperimentSpec, status: ExperimentStatus) -> Traffic | None:
    if status.phase == "Pending":
        return None
    champion = spec.champion.name
    if status.phase in TERMINAL:
        return Traffic(weights=((champion, 100),))
    if spec.mode == "Shadow":
        return Traffic(weights=((champion, 100),), mirror=spec.challengers[0].name)
    return Traffic(weights=tuple((arm.name, arm.weight) for arm in (spec.champion, *spec.challengers)), pinned=True)


# --- Pending ----------------------------------------------------------------------------------------------------


def _pending(spec: ExperimentSpec, draft: _Draft, obs: Observations) -> None:
    missing = [arm for arm in arm_names(spec) if not obs.revisions.get(arm)]
    if missing:
        deployments = {a.name: a.model_deployment for a in (spec.champion, *spec.challengers)}
        named = ", ".join(f"{arm} ({deployments[arm]})" for arm in missing)
        message = f"waiting for a stable revision of every arm's ModelDeployment: {named}"
        draft.condition("ArmsReady", "False", "NoStableRevision", message)
        draft.update(message=message)
        return
    draft.condition("ArmsReady", "True", "StableRevisions")
    if draft.status.design is None:
        if obs.answers is None:
            return
        _design(spec, draft, obs.answers)
    revisions = {arm: obs.revisions[arm] for arm in arm_names(spec)}
    draft.update(
        phase="Running",
        arms=[ArmResult(name=arm, revision=revision) for arm, revision in revisions.items()],
        message="moving traffic: " + _describe_traffic(spec),
    )


def _design(spec: ExperimentSpec, draft: _Draft, answers: Mapping[QueryKey, Answer]) -> None:
    traffic = observed_rate(spec, answers)
    plan = design(spec, traffic if traffic > 0 else None)
    draft.update(design=plan)
    expected = plan.expected_duration_seconds
    summary = f"{plan.samples_per_arm} samples per arm ({plan.method}, MDE {plan.minimum_effect:+.4g})"
    if expected is None:
        summary += "; no traffic observed yet, so the duration is unknown"
    else:
        summary += f"; about {_human(expected)} at {traffic:.4g}/s"
    draft.condition("Designed", "True", "SampleSizeComputed", summary)
    draft.emit("Normal", "Designed", summary)
    limit = duration_seconds(spec.max_duration)
    if expected is None:
        draft.condition("Underpowered", "Unknown", "NoTraffic", "no traffic rate observed")
    elif expected > limit:
        message = (
            f"reaching {plan.samples_per_arm} samples per arm takes about {_human(expected)}, longer than "
            f"maxDuration {spec.max_duration}: raise the challengers' share, accept a larger MDE or allow longer"
        )
        draft.condition("Underpowered", "True", "SampleSizeOutOfReach", message)
        draft.emit("Warning", "Underpowered", message)
    else:
        draft.condition("Underpowered", "False", "SampleSizeReachable")


# --- Running ----------------------------------------------------------------------------------------------------


def _running(spec: ExperimentSpec, draft: _Draft, obs: Observations) -> None:
    changed = _changed_arm(draft.status, obs)
    if changed is not None:
        _conclude(spec, draft, "Invalid", changed)
        return
    if obs.router_problem is not None:
        reason, message = obs.router_problem
        draft.condition("TrafficSplit", "False", reason, message)
        draft.update(message=f"the router cannot split traffic: {message}")
    elif obs.router_verified is not None:
        if obs.router_verified:
            draft.condition("TrafficSplit", "True", "InForce", _describe_traffic(spec))
        else:
            draft.condition(
                "TrafficSplit",
                "False",
                "NotYetInForce",
                "the router does not read back the split yet",
            )
    if draft.status.started_at is None:
        if obs.router_verified:
            draft.update(started_at=obs.now, message="traffic in force: " + _describe_traffic(spec))
            draft.emit("Normal", "Started", _describe_traffic(spec))
        return
    if analysis_due(spec, draft.status, obs.now) and obs.answers is not None:
        draft.update(last_analysis_at=obs.now)
        _record_look(spec, draft, obs.now, look(spec, draft.status, obs.answers, obs.now))
    if draft.status.phase == "Running":
        _check_max_duration(spec, draft, obs)


def _changed_arm(status: ExperimentStatus, obs: Observations) -> str | None:
    for arm in status.arms:
        now = obs.revisions.get(arm.name)
        if arm.revision is not None and now and now != arm.revision:
            return (
                f"arm {arm.name} changed its stable revision from {arm.revision} to {now} during the experiment: "
                "its samples mix two models"
            )
    return None


def _record_look(spec: ExperimentSpec, draft: _Draft, now: datetime, found: Look) -> None:
    """Write the look to status, then act on it: a breach stops, a mismatch invalidates, a verdict concludes."""
    measured = found.measured
    if measured is None:
        draft.condition("MetricsAvailable", "False", "NoData", "; ".join(found.gaps))
        draft.update(
            arms=[
                arm.model_copy(update={"guardrails": found.guardrails.get(arm.name, [])}) for arm in draft.status.arms
            ],
            message="waiting for data: " + found.gaps[0],
        )
        _stop_on_breach(spec, draft, found)
        return
    draft.condition("MetricsAvailable", "True", "AllArmsMeasured")
    srm = measured.sample_ratio
    draft.update(
        looks=draft.status.looks + 1,
        srm_p_value=srm.p_value if isinstance(srm, SampleRatio) else None,
        arms=measured.arms,
        secondary=measured.secondary,
        series=measured.series,
        message=measured.progress,
    )
    if _stop_on_breach(spec, draft, found):
        return
    if isinstance(srm, Baseline):
        draft.condition("SampleRatioMismatch", "Unknown", "Baseline", srm.message)
        return
    if srm is not None and _sample_ratio_mismatch(spec, draft, srm):
        return
    if elapsed_seconds(draft.status, now) < duration_seconds(spec.min_duration):
        return
    verdict = measured.verdict
    if verdict is not None:
        _conclude(spec, draft, verdict.outcome, verdict.reason, winner=verdict.winner)


def _stop_on_breach(spec: ExperimentSpec, draft: _Draft, found: Look) -> bool:
    """Record the guardrails; True when one is breached, which stops the experiment."""
    breach = found.breach
    if breach is None:
        if spec.guardrails:
            draft.condition("GuardrailBreached", "False", "WithinLimits")
        return False
    draft.update(
        arms=[
            arm.model_copy(update={"guardrails_breached": breach.guardrails.get(arm.name, [])})
            for arm in draft.status.arms
        ]
    )
    draft.condition("GuardrailBreached", "True", "Breached", breach.reason)
    draft.emit("Warning", "GuardrailBreached", breach.reason)
    _conclude(spec, draft, "KeepChampion", breach.reason, phase="Stopped")
    return True


def _sample_ratio_mismatch(spec: ExperimentSpec, draft: _Draft, srm: SampleRatio) -> bool:
    """Record the check; True when the counts mismatch, so nothing is decided on them.

    The result is Invalid once the mismatch is proven (held for several looks in a row).
    """
    draft.update(srm_mismatches=srm.mismatches)
    if srm.mismatches == 0:
        draft.condition("SampleRatioMismatch", "False", "AsAllocated", srm.message)
        return False
    if not srm.proven:
        draft.condition("SampleRatioMismatch", "Unknown", "Suspected", srm.message)
        return True
    draft.condition("SampleRatioMismatch", "True", "Mismatch", srm.message)
    draft.emit("Warning", "SampleRatioMismatch", srm.message)
    _conclude(spec, draft, "Invalid", srm.message)
    return True


def _check_max_duration(spec: ExperimentSpec, draft: _Draft, obs: Observations) -> None:
    if elapsed_seconds(draft.status, obs.now) < duration_seconds(spec.max_duration):
        return
    if draft.status.looks == 0:
        _conclude(spec, draft, "Invalid", f"no data from every arm by maxDuration {spec.max_duration}")
        return
    samples = min(arm.samples for arm in draft.status.arms) if draft.status.arms else 0
    planned = draft.status.design.samples_per_arm if draft.status.design else 0
    reason = f"no verdict by maxDuration {spec.max_duration} ({samples} of {planned} samples per arm)"
    _conclude(spec, draft, "Inconclusive", reason)


# --- Concluded, Stopped, Failed ---------------------------------------------------------------------------------


def _conclude(
    spec: ExperimentSpec,
    draft: _Draft,
    outcome: Outcome,
    reason: str,
    *,
    winner: str | None = None,
    phase: ExperimentPhase | None = None,
) -> None:
    phase = phase or ("Failed" if outcome == "Invalid" else "Concluded")
    recommendation = _recommendation(spec, outcome, winner)
    draft.update(
        phase=phase,
        decision=DecisionStatus(
            outcome=outcome, winner=winner, reason=reason[:2000], decided_at=draft.now, recommendation=recommendation
        ),
        message=f"{outcome}{f' {winner}' if winner else ''}: {reason}"[:1000],
    )
    draft.condition("Concluded", "True", outcome, reason)
    draft.emit("Warning" if phase != "Concluded" else "Normal", "Concluded", f"{outcome}: {reason}")


def _recommendation(spec: ExperimentSpec, outcome: Outcome, winner: str | None) -> str | None:
    champion = spec.champion.model_deployment
    if outcome == "Promote" and winner is not None:
        source = next(c.model_deployment for c in spec.challengers if c.name == winner)
        if spec.decision.auto_promote:
            return None
        return (
            f"roll {winner} out: set spec.model, spec.template and spec.port of ModelDeployment {champion} "
            f"to those of {source} (in Git, where Git owns the spec)"
        )
    if outcome == "Invalid":
        return "fix the cause, then delete and re-create the Experiment: its data cannot be trusted"
    return f"keep {spec.champion.name} ({champion})"


def _after_conclusion(spec: ExperimentSpec, draft: _Draft, obs: Observations) -> None:
    """A Promote with autoPromote asks the engine for the rollout until status says it started."""
    decision = draft.status.decision
    if decision is not None and decision.outcome == "Promote" and spec.decision.auto_promote and not decision.promoted:
        draft.promote = decision.winner
    if obs.router_verified:
        draft.condition("TrafficSplit", "False", "ChampionOnly", "all traffic on the champion")


# --- wording ----------------------------------------------------------------------------------------------------


def _describe_traffic(spec: ExperimentSpec) -> str:
    if spec.mode == "Shadow":
        return f"{spec.champion.name} serves everything; {spec.challengers[0].name} gets a mirror"
    arms = (spec.champion, *spec.challengers)
    total = sum(arm.weight for arm in arms)
    split = ", ".join(f"{arm.name} {arm.weight / total:.0%}" for arm in arms)
    return f"{split}; header {spec.assignment.arm_header} pins an arm"


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
