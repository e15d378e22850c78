"""The Experiment kind's part of the reconciliation loop: observe, decide (pure), record, route, promote.

The loop (:mod:`modelrollout.engine.reconciler`) runs one tick at a time per
Experiment, as for every kind. The arms' ModelDeployments are
only read, except for the opt-in ``decision.autoPromote``, which copies the
winner's model onto the champion's ModelDeployment and so starts its normal
staged rollout.

Deleting an Experiment returns all traffic to the champion before the object
goes (a kopf deletion handler, hence a finalizer): an experiment deleted while
running would otherwise leave a split in the route that nobody watches any
more. Concluded experiments have already put the champion back, and a missing
route or CRD is no reason to block a deletion, so the handler never fails on
those.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from kubernetes.client import ApiClient, ApiException
from pydantic import ValidationError

from modelrollout import telemetry
from modelrollout.api import experiment as exp
from modelrollout.api import modeldeployment as md
from modelrollout.core import experiment as core
from modelrollout.core.decisions import Event
from modelrollout.core.queries import Answer, QueryKey
from modelrollout.engine import controller
from modelrollout.engine.context import Context
from modelrollout.engine.querying import answer_all
from modelrollout.engine.queue import Priority
from modelrollout.engine.reconciler import KindWork, Reconciler, Tick
from modelrollout.engine.writing import record
from modelrollout.kube import builders, naming
from modelrollout.kube.client import api_client, is_status
from modelrollout.routing import (
    Backend,
    HeaderRoute,
    RouterUnavailable,
    TrafficRouter,
    TrafficSplit,
    UnsupportedFeature,
    router_for,
)
from modelrollout.routing.split import percentages

KIND = "experiment"
OUTCOMES: tuple[str, ...] = get_args(exp.Outcome)
EXPERIMENT_WORKERS = 4
logger = logging.getLogger(__name__)


def register(context: Context) -> None:
    """Attach the kind to the reconciliation loop; called once at start-up with the shared context."""

    def restore(namespace: str, name: str, spec: Mapping[str, Any]) -> None:
        """Traffic back to the champion before the Experiment goes."""
        restore_champion(api_client(), namespace, spec)
        forget_metrics(namespace, name, spec)

    controller.register(
        controller.Controller(Reconciler(Experiments(), context), workers=EXPERIMENT_WORKERS), on_delete=restore
    )


class Experiments:
    """The Experiment kind in the reconciliation loop (:mod:`modelrollout.engine.reconciler`)."""

    name = KIND
    plural = exp.PLURAL
    spec_model = exp.ExperimentSpec
    status_model = exp.ExperimentStatus
    finalizes = True
    """Deletion waits for the champion to have all traffic back (a kopf finalizer)."""

    def at_rest(self, spec: Mapping[str, Any], status: exp.ExperimentStatus, now: datetime) -> bool:
        """Concluded, and no promotion left to start: only a periodic re-check of the route."""
        del now
        return not self.active(spec, status)

    def active(self, spec: Mapping[str, Any], status: exp.ExperimentStatus) -> bool:
        """Not concluded yet, or a promotion still to start."""
        decision = status.decision
        promoting = (
            decision is not None
            and decision.outcome == "Promote"
            and not decision.promoted
            and bool((spec.get("decision") or {}).get("autoPromote"))
        )
        return status.phase not in core.TERMINAL or promoting

    def resyncs(self, spec: Mapping[str, Any], status: exp.ExperimentStatus) -> bool:
        """The route is the user's object, edited by others: re-verified at rest too."""
        del spec, status
        return True

    def priority(self, body: Mapping[str, Any]) -> Priority:
        del body
        return Priority.NORMAL

    def reconcile(self, tick: Tick, spec: exp.ExperimentSpec, status: exp.ExperimentStatus) -> exp.ExperimentStatus:
        return _Experiment(tick).run(spec, status)


@dataclass
class _Experiment(KindWork):
    """One tick's work on one Experiment: observe, decide, record, route, decide, promote, record."""

    def run(self, parsed: exp.ExperimentSpec, status: exp.ExperimentStatus) -> exp.ExperimentStatus:
        revisions = self._revisions(parsed)
        observations = core.Observations(
            now=self.now,
            generation=self.tick.generation,
            revisions=revisions,
            answers=self._answers(parsed, status, revisions),
        )
        decision = core.decide(parsed, status, observations)
        recorded = self._record(status, decision)

        verified, problem = self._route(parsed, decision.traffic)
        settled = core.decide(
            parsed,
            recorded,
            dataclasses.replace(observations, answers=None, router_verified=verified, router_problem=problem),
        )
        told: tuple[Event, ...] = ()
        if settled.promote is not None:
            promoted, told = self._promote(parsed, settled.status, settled.promote)
            settled = dataclasses.replace(settled, status=promoted, events=(*settled.events, *told))
        final = self._record(recorded, settled)
        export_metrics(self.namespace, self.name, final)
        return final

    def _revisions(self, spec: exp.ExperimentSpec) -> dict[str, str | None]:
        """Each arm's stable revision hash, the value of the metrics' ``revision`` label."""
        revisions: dict[str, str | None] = {}
        for arm in (spec.champion, *spec.challengers):
            try:
                deployment = self.tick.resources.get(md.PLURAL, self.namespace, arm.model_deployment)
            except ApiException as error:
                if not is_status(error, 404):
                    raise
                revisions[arm.name] = None
                continue
            stable = (deployment.get("status") or {}).get("stableRevision") or {}
            revisions[arm.name] = stable.get("hash")
        return revisions

    def _answers(
        self, spec: exp.ExperimentSpec, status: exp.ExperimentStatus, revisions: Mapping[str, str | None]
    ) -> Mapping[QueryKey, Answer] | None:
        """The answers to the design's queries or to one look's, whichever is due."""
        if core.design_due(status):
            current = {arm: revision for arm, revision in revisions.items() if revision}
            if len(current) < len(revisions):
                return None
            target = core.Target(self.namespace, self.name, current, elapsed_seconds=0.0)
            return answer_all(
                self.tick.context.metrics,
                core.plan_design(spec, target),
                cross_namespace=self.tick.context.settings.cross_namespace_queries,
            )
        if not core.analysis_due(spec, status, self.now):
            return None
        # The revisions recorded at the start: a look measures the models the experiment started with.
        recorded = {arm.name: arm.revision for arm in status.arms if arm.revision}
        known: dict[str, str] = {}
        for arm, revision in revisions.items():
            label = recorded.get(arm) or revision
            if not label:
                return None
            known[arm] = label
        assert status.started_at is not None  # analysis_due guarantees it
        target = core.Target(
            self.namespace,
            self.name,
            known,
            elapsed_seconds=(self.now - status.started_at).total_seconds(),
        )
        return answer_all(
            self.tick.context.metrics,
            core.plan_analysis(spec, target),
            cross_namespace=self.tick.context.settings.cross_namespace_queries,
        )

    def _route(
        self, spec: exp.ExperimentSpec, traffic: core.Traffic | None
    ) -> tuple[bool | None, tuple[str, str] | None]:
        """Put the split in force and read it back: (verified, problem)."""
        if traffic is None:
            return None, None
        split = traffic_split(spec, traffic)
        try:
            router = self._router(spec)
            router.check()
            router.apply(split)
            return router.observe() == router.realised(split), None
        except RouterUnavailable as problem:
            return False, (problem.reason, problem.message)
        except UnsupportedFeature as problem:
            return False, ("UnsupportedFeature", str(problem))

    def _router(self, spec: exp.ExperimentSpec) -> TrafficRouter:
        return router_for(spec.traffic_routing, self.namespace, self.api, 1, port=builders.SERVICE_PORT)

    def _promote(
        self, spec: exp.ExperimentSpec, status: exp.ExperimentStatus, winner: str
    ) -> tuple[exp.ExperimentStatus, tuple[Event, ...]]:
        """Copy the winner's model, template and port onto the champion's ModelDeployment (autoPromote).

        A JSON patch replaces the template whole (a merge patch would keep keys the winner's lacks),
        and the champion's ModelDeployment then rolls the new revision out through its own stages.
        """
        source = next(c.model_deployment for c in spec.challengers if c.name == winner)
        resources = self.tick.resources
        winner_spec = resources.get(md.PLURAL, self.namespace, source)["spec"]
        patch = [
            {"op": "add", "path": f"/spec/{field}", "value": winner_spec[field]}
            for field in ("model", "template", "port")
            if field in winner_spec
        ]
        resources.patch(md.PLURAL, self.namespace, spec.champion.model_deployment, patch, patch_type="json")
        message = (
            f"ModelDeployment {spec.champion.model_deployment} now rolls out the model of {source} "
            f"({winner_spec.get('model', {}).get('version', '?')})"
        )
        return core.promoted(status), (Event("Normal", "Promoted", message),)

    def _record(self, before: exp.ExperimentStatus, decision: core.Decision) -> exp.ExperimentStatus:
        """Status first, then Events (:func:`modelrollout.engine.writing.record`)."""
        tick = self.tick
        return record(
            tick.resources, exp.PLURAL, tick.body, before, decision.status, events=decision.events, now=tick.now
        )


def traffic_split(spec: exp.ExperimentSpec, traffic: core.Traffic) -> TrafficSplit:
    """Arms to Services: each arm's ModelDeployment serves its stable revision through ``<md>-stable``."""
    deployments = {arm.name: arm.model_deployment for arm in (spec.champion, *spec.challengers)}
    services = {arm: naming.stable_service(deployment) for arm, deployment in deployments.items()}
    shares = percentages([weight for _, weight in traffic.weights]) or [100] + [0] * (len(traffic.weights) - 1)
    backends = tuple(
        Backend(services[arm], deployments[arm], share) for (arm, _), share in zip(traffic.weights, shares, strict=True)
    )
    pinned = tuple(HeaderRoute(spec.assignment.arm_header, arm, services[arm]) for arm, _ in traffic.weights)
    return TrafficSplit(
        backends=backends,
        mirror=services[traffic.mirror] if traffic.mirror else None,
        header_routes=pinned if traffic.pinned else (),
    )


def restore_champion(api: ApiClient, namespace: str, spec: Mapping[str, Any]) -> None:
    """All traffic on the champion, no mirror, no header routes; nothing to do when the route is gone."""
    try:
        parsed = exp.ExperimentSpec.model_validate(spec)
    except ValidationError:
        logger.warning("experiment in %s has an invalid spec; its route is left as it is", namespace)
        return
    split = traffic_split(parsed, core.Traffic(weights=((parsed.champion.name, 100),)))
    try:
        router_for(parsed.traffic_routing, namespace, api, 1, port=builders.SERVICE_PORT).apply(split)
    except RouterUnavailable as problem:
        logger.info("no traffic to restore in %s: %s", namespace, problem.message)


def export_metrics(namespace: str, name: str, status: exp.ExperimentStatus) -> None:
    """The status' numbers as gauges (telemetry.experiment_*), for dashboards and alerts."""
    for arm in status.arms:
        telemetry.experiment_samples.labels(namespace, name, arm.name).set(arm.samples)
        if arm.estimate is not None:
            telemetry.experiment_estimate.labels(namespace, name, arm.name).set(arm.estimate)
        if arm.p_value is not None:
            telemetry.experiment_p_value.labels(namespace, name, arm.name).set(arm.p_value)
    if status.srm_p_value is not None:
        telemetry.experiment_srm_p_value.labels(namespace, name).set(status.srm_p_value)
    if status.decision is not None:
        for outcome in OUTCOMES:
            telemetry.experiment_decision.labels(namespace, name, outcome).set(
                1 if outcome == status.decision.outcome else 0
            )


def forget_metrics(namespace: str, name: str, spec: Mapping[str, Any]) -> None:
    """Drop a deleted experiment's series, so dashboards do not show it forever."""
    arms = [spec.get("champion", {}).get("name")] + [c.get("name") for c in spec.get("challengers", [])]
    gauges = (telemetry.experiment_samples, telemetry.experiment_estimate, telemetry.experiment_p_value)
    for arm in filter(None, arms):
        for gauge in gauges:
            _remove(gauge, namespace, name, arm)
    _remove(telemetry.experiment_srm_p_value, namespace, name)
    for outcome in OUTCOMES:
        _remove(telemetry.experiment_decision, namespace, name, outcome)


def _remove(gauge: Any, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)
