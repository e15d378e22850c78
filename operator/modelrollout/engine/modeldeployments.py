"""The ModelDeployment kind's part of the reconciliation loop: observe, decide (pure), record, converge.

The loop (:mod:`modelrollout.engine.reconciler`) runs one tick at a time per
resource, so exactly one piece of code ever acts on a ModelDeployment; a spec
change or an action is picked up at the next tick. What is this kind's own:
a rollout at rest (Healthy, Degraded, Failed) is not looked at until it or
something it owns changes, and one under way is looked at every tick from
the watch's copy, read only when something is due; a tick reads the derived objects,
runs the smoke checks and the guardrail analysis, decides, converges the
workloads and the router, reads the router back and decides again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from modelrollout import telemetry
from modelrollout.api import modeldeployment as md
from modelrollout.api.conditions import find_condition, set_condition
from modelrollout.core import rollout
from modelrollout.core.actions import ACTION_ANNOTATION, pending_action
from modelrollout.core.analysis import AnalysisOutcome, Target, evaluate, plan_queries
from modelrollout.core.decisions import Event
from modelrollout.core.revisions import RevisionContent
from modelrollout.engine import controller, owners, preflight
from modelrollout.engine.context import Context
from modelrollout.engine.querying import answer_all
from modelrollout.engine.queue import Priority
from modelrollout.engine.reconciler import KindWork, Reconciler, Tick
from modelrollout.engine.writing import clear_action, record
from modelrollout.kube import builders, naming
from modelrollout.kube.converge import Converger, RouterState
from modelrollout.kube.owned import Listing, Owned, OwnedReader, smoke_outcome
from modelrollout.routing.errors import RouterUnavailable
from modelrollout.routing.factory import router_for

KIND = "modeldeployment"
AT_REST = ("Healthy", "Degraded", "Failed")
logger = logging.getLogger(__name__)


def register(context: Context) -> None:
    """Attach the kind to the reconciliation loop; called once at start-up with the shared context."""

    def forget(namespace: str, name: str, spec: Mapping[str, Any]) -> None:
        """Owner references collect the workloads; only our own bookkeeping is left to drop."""
        del spec
        telemetry.forget_rollout(namespace, name)

    kind = ModelDeployments()
    rollouts = controller.Controller(Reconciler(kind, context), workers=context.settings.workers)
    controller.register(rollouts, on_delete=forget)
    kind.owned = owners.watch_owned(rollouts, naming.MODEL_DEPLOYMENT_LABEL, context.settings)


class ModelDeployments:
    """The ModelDeployment kind in the reconciliation loop (:mod:`modelrollout.engine.reconciler`)."""

    name = KIND
    plural = md.PLURAL
    spec_model = md.ModelDeploymentSpec
    status_model = md.ModelDeploymentStatus

    def __init__(self, owned: OwnedReader | None = None) -> None:
        self.owned: OwnedReader = owned or Listing()
        """Where a tick reads what the resource owns: memory, once the owned kinds are watched (:mod:`.owners`)."""

    def at_rest(self, spec: Mapping[str, Any], status: md.ModelDeploymentStatus, now: datetime) -> bool:
        """Healthy, Degraded or Failed; else nothing in the rollout due (a step's end, an analysis look)."""
        if status.phase in AT_REST:
            return True
        try:
            parsed = md.ModelDeploymentSpec.model_validate(spec)
        except ValidationError:
            return True  # reported by the loop; nothing to do until the spec changes
        return not rollout.work_due(parsed, status, now)

    def active(self, spec: Mapping[str, Any], status: md.ModelDeploymentStatus) -> bool:
        """A rollout under way: its steps, looks and pauses come due with time. Not a canary waiting for
        ready pods: no clock runs there, and the watch of its Deployment reconciles it when they are."""
        del spec
        return status.phase not in AT_REST and not rollout.waits_for_ready_pods(status)

    def resyncs(self, spec: Mapping[str, Any], status: md.ModelDeploymentStatus) -> bool:
        """A Gateway API or Istio route, which no watch reports (what the replicas router owns is watched,
        :mod:`.owners`); and a canary waiting for ready pods, in case the event that says so was lost."""
        router = str((spec.get("trafficRouting") or {}).get("router", "replicas"))
        return router != "replicas" or rollout.waits_for_ready_pods(status)

    def priority(self, body: Mapping[str, Any]) -> Priority:
        """An abort to carry out first, then a canary with traffic, whose next look may roll it back."""
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        if annotations.get(ACTION_ANNOTATION) == "abort":
            return Priority.ROLLBACK
        if int((body.get("status") or {}).get("canaryWeight") or 0) > 0:
            return Priority.IN_TRAFFIC
        return Priority.NORMAL

    def reconcile(
        self, tick: Tick, spec: md.ModelDeploymentSpec, status: md.ModelDeploymentStatus
    ) -> md.ModelDeploymentStatus:
        return _Rollout(tick, self.owned).run(spec, status)


@dataclass
class _Rollout(KindWork):
    """One tick's work on one ModelDeployment: observe, decide, record, converge, verify, record (a step
    forward skips the first record: ``core.rollout.acts_first``)."""

    reader: OwnedReader = dataclasses.field(default_factory=Listing)

    def run(self, parsed: md.ModelDeploymentSpec, status: md.ModelDeploymentStatus) -> md.ModelDeploymentStatus:
        checked = self._preflight(parsed, status)
        if checked is None:
            return status
        status = checked
        action = pending_action(self.tick.annotations, status.last_action_id)

        content = RevisionContent.of(parsed)
        smoke_pending = status.smoke_test is not None and status.smoke_test.state in ("Pending", "Running")
        owned = self.reader.owned(self.api, self.namespace, self.name, with_jobs=smoke_pending)
        parent = builders.Parent(name=self.name, namespace=self.namespace, uid=self.tick.meta["uid"])
        same_revision = status.current_revision is not None and status.current_revision.hash == content.hash
        observations = rollout.Observations(
            now=self.now,
            generation=self.generation,
            content=content,
            known_revisions=owned.known_revisions(),
            stable_ready=owned.ready(self.name, status.stable_revision.hash if status.stable_revision else None),
            canary_ready=owned.ready(self.name, content.hash),
            smoke=self._smoke(parsed, status, parent, owned) if same_revision else None,
            analysis=self._analyse(parsed, status) if same_revision else None,
            action=action,
        )
        decision = rollout.decide(parsed, status, observations)
        if rollout.acts_first(parsed, status, decision):
            # A step forward: recorded once below, with what the router confirms and this decision's Events.
            recorded, stored, carried = decision.status, status, decision.events
        else:
            recorded = stored = self._record(status, decision)
            carried = ()

        converger = Converger(self.api, parent, parsed, owned, operator_image=self.tick.context.settings.operator_image)
        converger.revisions(decision.status)
        converger.workloads(
            decision.status, decision.desired, router_scales=parsed.traffic_routing.router == "replicas"
        )
        converger.smoke_jobs(decision.status, decision.desired)
        router_state = self._route(converger, parsed, decision.desired)

        # Verify the router in the same tick: a step starts, and a rollback is confirmed, without waiting a tick.
        settled = rollout.decide(
            parsed,
            recorded,
            dataclasses.replace(observations, router_weight=router_state.canary_weight, analysis=None, action=None),
        )
        settled = dataclasses.replace(
            settled, status=self._router_condition(settled.status, router_state), events=carried + settled.events
        )
        final = self._record(stored, settled)
        converger.prune_revisions(settled.status, decision.keep_revisions)
        if action is not None:
            clear_action(self.tick.resources, md.PLURAL, self.namespace, self.name, action.id)
        telemetry.record_rollout(self.namespace, self.name, settled.status.phase, settled.status.canary_weight)
        return final

    def _preflight(
        self, spec: md.ModelDeploymentSpec, status: md.ModelDeploymentStatus
    ) -> md.ModelDeploymentStatus | None:
        """Run the operator-side checks on a new spec (and again while they fail).

        Returns the status to go on from, or None to hold the rollout where it is.
        """
        known = find_condition(status.conditions, "ConfigurationValid")
        if status.observed_generation == self.generation and known is not None and known.status == "True":
            return status
        settings = self.tick.context.settings
        problems = preflight.check(
            spec, self.namespace, self.api, self.tick.context.metrics, cross_namespace=settings.cross_namespace_queries
        )
        message = "; ".join(p.message for p in problems)[:1000]
        if problems:
            value, reason = "False", problems[0].reason
        else:
            value, reason = "True", "Checked"
        if known is None or known.status != value or known.message != message:
            conditions = set_condition(
                status.conditions,
                "ConfigurationValid",
                value,  # type: ignore[arg-type]
                reason=reason,
                message=message,
                now=self.now,
                generation=self.generation,
            )
            updated = status.model_copy(update={"conditions": conditions})
            held = (Event("Warning", reason, f"rollout held: {message}"),) if problems else ()
            status = record(self.tick.resources, md.PLURAL, self.tick.body, status, updated, events=held, now=self.now)
        return None if problems else status

    def _smoke(
        self, spec: md.ModelDeploymentSpec, status: md.ModelDeploymentStatus, parent: builders.Parent, owned: Owned
    ) -> rollout.SmokeObservation | None:
        smoke, current = status.smoke_test, status.current_revision
        if smoke is None or current is None or smoke.state not in ("Pending", "Running"):
            return None
        jobs = builders.smoke_jobs(parent, spec, current, attempt=smoke.attempt, operator_image="")
        return smoke_outcome(self.api, owned, self.namespace, [j["metadata"]["name"] for j in jobs])

    def _analyse(self, spec: md.ModelDeploymentSpec, status: md.ModelDeploymentStatus) -> AnalysisOutcome | None:
        if not rollout.analysis_due(spec, status, self.now) or status.current_revision is None:
            return None
        started = status.canary_started_at or status.step_started_at or self.now
        target = Target(
            namespace=self.namespace,
            name=self.name,
            canary_revision=status.current_revision.hash,
            stable_revision=status.stable_revision.hash if status.stable_revision else None,
            elapsed_seconds=(self.now - started).total_seconds(),
        )
        guardrails = rollout.guardrails_due(spec, status)
        answers = answer_all(
            self.tick.context.metrics,
            plan_queries(spec, target, guardrails=guardrails),
            cross_namespace=self.tick.context.settings.cross_namespace_queries,
        )
        outcome = evaluate(
            spec,
            answers,
            {m.name: m for m in status.analysis.metrics},
            guardrails=guardrails,
            elapsed_seconds=target.elapsed_seconds,
            step=status.current_step_index,
        )
        for result in (*outcome.metrics, *outcome.tripped):
            code = {"Pass": 1, "Fail": 0, "Waiting": -1}.get(result.verdict, -2)
            telemetry.analysis_verdict.labels(self.namespace, self.name, result.name).set(code)
            for role, value in (("canary", result.value), ("stable", result.stable_value)):
                if value is not None:
                    telemetry.analysis_value.labels(self.namespace, self.name, result.name, role).set(value)
        return outcome

    def _route(self, converger: Converger, spec: md.ModelDeploymentSpec, desired: rollout.Desired) -> RouterState:
        try:
            router = router_for(
                spec.traffic_routing,
                self.namespace,
                self.api,
                spec.replicas,
                port=builders.SERVICE_PORT,
                known_deployment=lambda name: self.reader.deployment(self.namespace, name),
            )
            router.check()
        except RouterUnavailable as problem:
            return RouterState(canary_weight=None, problem=problem)
        return converger.route(router, desired)

    def _router_condition(self, status: md.ModelDeploymentStatus, state: RouterState) -> md.ModelDeploymentStatus:
        """``RouterReady`` as the router was read back; left as it is while that does not change.

        Its ``observedGeneration`` is the generation at which the router's state last changed, not the last
        one at which it was read: bumping it alone on a new generation cost every canary's start a status
        write of its own (a custom resource's status write costs the API server about five times an Event). The
        resource's own ``status.observedGeneration`` says which generation was acted on.
        """
        if state.problem is not None:
            value, reason, message = "False", state.problem.reason, state.problem.message
        else:
            value, reason, message = "True", "WeightsInForce", ""
        known = find_condition(status.conditions, "RouterReady")
        if known is not None and (known.status, known.reason, known.message) == (value, reason, message):
            return status
        conditions = set_condition(
            status.conditions,
            "RouterReady",
            value,  # type: ignore[arg-type]
            reason=reason,
            message=message,
            now=self.now,
            generation=self.generation,
        )
        return status.model_copy(update={"conditions": conditions})

    def _record(self, before: md.ModelDeploymentStatus, decision: rollout.Decision) -> md.ModelDeploymentStatus:
        """Status first, with the transition's Events in its outbox; then the Events; then the outbox cleared.

        What was decided is durable before anyone is told about it, and so is the telling: a crash after
        the status write leaves the Events in status, and the next tick posts them under the same names
        (a repost is refused as AlreadyExists). Returns the status as it now stands.
        """
        recorded = record(
            self.tick.resources,
            md.PLURAL,
            self.tick.body,
            before,
            decision.status,
            events=decision.events,
            now=self.now,
        )
        if decision.rollbacks:
            reason = next((e.reason for e in decision.events if e.type == "Warning"), "RolledBack")
            telemetry.rollbacks_total.labels(self.namespace, self.name, reason).inc(decision.rollbacks)
            logger.warning("%s/%s rolled back: %s", self.namespace, self.name, decision.status.message)
        return recorded
