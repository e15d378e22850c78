"""The DriftMonitor kind's part of the reconciliation loop: observe, decide (:mod:`modelrollout.core.drift`),
record, deliver.

The loop (:mod:`modelrollout.engine.reconciler`) runs one tick at a time per monitor; ``spec.interval``
is honoured on top of it from ``status.lastAttemptTime``, so a tick between evaluations costs no
I/O at all. The status is written before anything leaves the operator (Events, the webhook,
the patch of the target), and what is still to deliver is itself status, so a restart neither
loses nor repeats an alert or an action.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes.client import ApiException
from pydantic import ValidationError

from modelrollout import telemetry
from modelrollout.api import driftmonitor as dm
from modelrollout.api import modeldeployment as md
from modelrollout.api.common import ConfigMapKeyRef, SecretKeyRef
from modelrollout.core import drift
from modelrollout.core.actions import ACTION_ANNOTATION, ACTION_ID_ANNOTATION
from modelrollout.engine import controller
from modelrollout.engine.context import Context
from modelrollout.engine.queue import Priority
from modelrollout.engine.reconciler import KindWork, Reconciler, Tick
from modelrollout.engine.webhooks import DeliveryError, Dispatcher, Failed, InFlight
from modelrollout.engine.writing import post_event, record
from modelrollout.kube.client import is_status
from modelrollout.metrics.scoping import ScopeError, scope
from modelrollout.metrics.source import NoDataError, QueryError
from modelrollout.metrics.templates import TemplateError, render
from modelrollout.references import Reference

KIND = "driftmonitor"
logger = logging.getLogger(__name__)

MONITOR_WORKERS = 4
WEBHOOK_WORKERS = 4
"""Concurrent webhook POSTs: receivers that never answer hold these threads, not the reconcile threads."""


def register(context: Context) -> None:
    """Attach the kind to the reconciliation loop; called once at start-up with the shared context."""
    monitors = DriftMonitors(Gauges(), Dispatcher(timeout=context.settings.webhook_timeout, workers=WEBHOOK_WORKERS))

    def forget(namespace: str, name: str, spec: Mapping[str, Any]) -> None:
        del spec
        monitors.gauges.forget(namespace, name)
        monitors.dispatcher.forget(namespace, name)

    controller.register(controller.Controller(Reconciler(monitors, context), workers=MONITOR_WORKERS), on_delete=forget)


@dataclass
class Gauges:
    """The drift gauges this process exports, per monitor, so a deleted monitor or feature stops being reported."""

    _labels: dict[tuple[str, str], set[tuple[str, ...]]] = field(default_factory=dict)

    def export(self, namespace: str, name: str, status: dm.DriftMonitorStatus, quality: list[dm.QualityResult]) -> None:
        telemetry.drift_detected.labels(namespace, name).set(1 if status.state == "Drift" else 0)
        current: set[tuple[str, ...]] = set()
        for result in [*status.features, *([status.prediction] if status.prediction else [])]:
            for method, score in result.scores.items():
                telemetry.drift_score.labels(namespace, name, result.name, method).set(score)
                current.add(("score", result.name, method))
        for quality_result in quality:
            for kind, rate in (
                ("missing", quality_result.missing_rate),
                ("out_of_range", quality_result.out_of_range_rate),
                ("outliers", quality_result.outlier_rate),
            ):
                if rate is not None:
                    telemetry.data_quality_rate.labels(namespace, name, quality_result.name, kind).set(rate)
                    current.add(("quality", quality_result.name, kind))
        for stale in self._labels.get((namespace, name), set()) - current:
            self._remove(namespace, name, stale)
        self._labels[namespace, name] = current

    def forget(self, namespace: str, name: str) -> None:
        for labels in self._labels.pop((namespace, name), set()):
            self._remove(namespace, name, labels)
        with contextlib.suppress(KeyError):
            telemetry.drift_detected.remove(namespace, name)

    @staticmethod
    def _remove(namespace: str, name: str, labels: tuple[str, ...]) -> None:
        gauge = telemetry.drift_score if labels[0] == "score" else telemetry.data_quality_rate
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name, *labels[1:])


@dataclass
class DriftMonitors:
    """The DriftMonitor kind in the reconciliation loop (:mod:`modelrollout.engine.reconciler`).

    Without a dispatcher pool (``workers=0``) a webhook is posted inline, so the tick's status already
    holds the outcome (the integration tests use that).
    """

    gauges: Gauges
    dispatcher: Dispatcher
    name = KIND
    plural = dm.PLURAL
    spec_model = dm.DriftMonitorSpec
    status_model = dm.DriftMonitorStatus

    def at_rest(self, spec: Mapping[str, Any], status: dm.DriftMonitorStatus, now: datetime) -> bool:
        """No evaluation due (``spec.interval`` after the last attempt), no action or alert to deliver."""
        try:
            parsed = dm.DriftMonitorSpec.model_validate(spec)
        except ValidationError:
            return True  # reported by the loop; nothing to do until the spec changes
        generation = status.observed_generation or 0
        due = drift.evaluation_due(parsed, status, generation, now)
        return not (due or drift.action_pending(status, now) is not None or drift.delivery_due(status, now))

    def active(self, spec: Mapping[str, Any], status: dm.DriftMonitorStatus) -> bool:
        """Always: evaluations come due every ``spec.interval`` (checked from the watch's copy, no request)."""
        del spec, status
        return True

    def resyncs(self, spec: Mapping[str, Any], status: dm.DriftMonitorStatus) -> bool:
        """Nothing derived to re-verify: a monitor only reads, and writes its own status."""
        del spec, status
        return False

    def priority(self, body: Mapping[str, Any]) -> Priority:
        del body
        return Priority.NORMAL

    def reconcile(self, tick: Tick, spec: dm.DriftMonitorSpec, status: dm.DriftMonitorStatus) -> dm.DriftMonitorStatus:
        return _Monitor(tick, self.gauges, self.dispatcher).run(spec, status)


@dataclass
class _Monitor(KindWork):
    """One tick's work on one DriftMonitor: evaluate when due, act on the target, deliver the alert."""

    gauges: Gauges
    dispatcher: Dispatcher

    def run(self, spec: dm.DriftMonitorSpec, status: dm.DriftMonitorStatus) -> dm.DriftMonitorStatus:
        if drift.evaluation_due(spec, status, self.generation, self.now):
            status = self._evaluate(spec, status)
        if drift.action_pending(status, self.now) is not None:
            status = self._act(spec, status)
        if drift.delivery_due(status, self.now):
            status = self._deliver(spec, status)
        return status

    # --- evaluation ---------------------------------------------------------------------------------------------

    def _evaluate(self, spec: dm.DriftMonitorSpec, status: dm.DriftMonitorStatus) -> dm.DriftMonitorStatus:
        outcome, revision = self._observe(spec)
        decision = drift.decide(spec, status, outcome, now=self.now, generation=self.generation, revision=revision)
        recorded = self._record(status, decision)
        if isinstance(outcome, drift.Evaluation):
            self.gauges.export(self.namespace, self.name, decision.status, list(outcome.quality))
            logger.info("%s/%s: %s", self.namespace, self.name, decision.status.state)
        else:
            logger.warning("%s/%s: %s: %s", self.namespace, self.name, outcome.reason, outcome.message)
        return recorded

    def _observe(self, spec: dm.DriftMonitorSpec) -> tuple[drift.Evaluation | drift.Failure, str | None]:
        reference = self._reference(spec.reference)
        if isinstance(reference, drift.Failure):
            return reference, None
        target = self._target(spec.target_ref)
        if isinstance(target, drift.Failure):
            return target, None
        revision = drift.revision_label(spec, target.get("status") or {})
        if isinstance(revision, drift.Failure):
            return revision, None
        queries = drift.plan_queries(spec, reference, namespace=self.namespace, revision=revision)
        answers = self._ask(queries)
        if isinstance(answers, drift.Failure):
            return answers, revision
        return drift.evaluate(spec, reference, answers), revision

    def _reference(self, source: dm.ReferenceSource) -> Reference | drift.Failure:
        if source.inline is not None:
            return drift.parse_reference(source.inline)
        ref = source.config_map_ref
        assert ref is not None  # the model's rule: exactly one of inline and configMapRef
        text = self._config_map_key(ref)
        return text if isinstance(text, drift.Failure) else _parse_cached(text)

    def _config_map_key(self, ref: ConfigMapKeyRef) -> str | drift.Failure:
        try:
            data = self.tick.resources.config_map_data(self.namespace, ref.name)
        except ApiException as error:
            if is_status(error, 404):
                return drift.Failure("ReferenceNotFound", f"ConfigMap {ref.name} not found in {self.namespace}")
            raise
        if ref.key not in data:
            keys = ", ".join(sorted(data)) or "none"
            return drift.Failure("ReferenceNotFound", f"ConfigMap {ref.name} has no key {ref.key!r} (keys: {keys})")
        return str(data[ref.key])

    def _target(self, name: str) -> dict[str, Any] | drift.Failure:
        try:
            target = self.tick.resources.get(md.PLURAL, self.namespace, name)
        except ApiException as error:
            if is_status(error, 404):
                return drift.Failure("TargetNotFound", f"ModelDeployment {name} not found in {self.namespace}")
            raise
        return target

    def _ask(self, queries: list[drift.DriftQuery]) -> drift.Answers | drift.Failure:
        """Every query in turn; the first failure ends the evaluation, whose verdict would be partial."""
        answers: dict[drift.QueryName, Any] = {}
        for query in queries:
            try:
                promql = render(query.template, query.variables)
                if not self.tick.context.settings.cross_namespace_queries:
                    promql = scope(promql, self.namespace)
            except TemplateError as error:
                return drift.Failure("InvalidQuery", f"{query.name}: {error}")
            except ScopeError as error:
                return drift.Failure(error.reason, f"{query.name}: {error}")
            try:
                answers[query.name] = self.tick.context.metrics.query_vector(promql)
            except NoDataError:
                answers[query.name] = []
            except QueryError as error:
                reason = "PrometheusUnavailable" if error.status is None else "QueryFailed"
                return drift.Failure(reason, f"{query.name}: {error.message}")
        return answers

    # --- delivery -----------------------------------------------------------------------------------------------

    def _act(self, spec: dm.DriftMonitorSpec, status: dm.DriftMonitorStatus) -> dm.DriftMonitorStatus:
        action = drift.action_pending(status, self.now)
        assert action is not None
        try:
            target = self._patch_target(spec.target_ref, action)
        except ApiException as error:
            message = f"{error.status} {error.reason}: patching ModelDeployment {spec.target_ref}"
            return self._record(status, drift.action_failed(status, message, permanent=is_status(error, 404)))
        recorded = self._record(status, drift.action_done(status, target=spec.target_ref, now=self.now))
        post_event(self.tick.resources, target, drift.target_event(action, f"{self.namespace}/{self.name}"), self.now)
        return recorded

    def _patch_target(self, target: str, action: dm.TargetActionStatus) -> dict[str, Any]:
        """Rollback is the abort action the ModelDeployment controller consumes once per id; Pause edits the spec."""
        if action.name == "Rollback":
            patch: dict[str, Any] = {
                "metadata": {"annotations": {ACTION_ANNOTATION: "abort", ACTION_ID_ANNOTATION: action.id}}
            }
        else:
            patch = {"spec": {"paused": True}}
        return self.tick.resources.patch(md.PLURAL, self.namespace, target, patch)

    def _deliver(self, spec: dm.DriftMonitorSpec, status: dm.DriftMonitorStatus) -> dm.DriftMonitorStatus:
        """Start the POST on the dispatcher's pool, and record its outcome at a later tick (or this one)."""
        webhook = spec.alerting.webhook
        if webhook is None:
            updated = drift.alert_cancelled(status)
        else:
            key = (self.namespace, self.name, status.alert.pending or "", status.alert.fingerprint or "")
            outcome = self.dispatcher.outcome(key)
            if outcome is None:
                try:
                    url = self._secret(webhook.url_secret_ref)
                except DeliveryError as error:
                    outcome = Failed(str(error))
                else:
                    self.dispatcher.submit(key, url, drift.alert_payload(self.namespace, self.name, spec, status))
                    outcome = self.dispatcher.outcome(key)
            if outcome is None or outcome is InFlight:
                return status
            if isinstance(outcome, Failed):
                logger.warning("%s/%s: alert delivery failed: %s", self.namespace, self.name, outcome.message)
                updated = drift.alert_failed(status, outcome.message, self.now)
            else:
                updated = drift.alert_delivered(status, self.now)
        return self._record(status, drift.Decision(status=updated))

    def _secret(self, ref: SecretKeyRef) -> str:
        try:
            data = self.tick.resources.secret_data(self.namespace, ref.name)
        except ApiException as error:
            raise DeliveryError(f"cannot read Secret {ref.name}: {error.status} {error.reason}") from None
        value = data.get(ref.key)
        if value is None:
            raise DeliveryError(f"Secret {ref.name} has no key {ref.key!r}")
        try:
            return base64.b64decode(value, validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            raise DeliveryError(f"Secret {ref.name} key {ref.key!r} does not hold UTF-8 text") from None

    # --- recording ----------------------------------------------------------------------------------------------

    def _record(self, before: dm.DriftMonitorStatus, decision: drift.Decision) -> dm.DriftMonitorStatus:
        """Status first, then Events (:func:`modelrollout.engine.writing.record`)."""
        tick = self.tick
        return record(
            tick.resources, dm.PLURAL, tick.body, before, decision.status, events=decision.events, now=tick.now
        )


@functools.lru_cache(maxsize=64)
def _parse_cached(text: str) -> Reference | drift.Failure:
    """References are immutable once parsed; a ConfigMap that did not change is not parsed again."""
    return drift.parse_reference(text)
