"""The DriftMonitor controller: observe, decide (pure, :mod:`modelrollout.core.drift`), record, deliver.

One short kopf timer per monitor, like the ModelDeployment controller; ``spec.interval`` is
honoured on top of it from ``status.lastAttemptTime``, so a tick between evaluations costs no
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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client
from pydantic import ValidationError

from modelrollout import GROUP, VERSION, telemetry
from modelrollout.api import driftmonitor as dm
from modelrollout.api import modeldeployment as md
from modelrollout.api.common import ConfigMapKeyRef, SecretKeyRef
from modelrollout.api.conditions import find_condition
from modelrollout.core import drift
from modelrollout.core.actions import ACTION_ANNOTATION, ACTION_ID_ANNOTATION
from modelrollout.engine.context import Context
from modelrollout.engine.ticking import Tick, parse_status
from modelrollout.engine.webhooks import DeliveryError, Dispatcher, Failed, InFlight
from modelrollout.engine.writing import MERGE, post_event
from modelrollout.kube.client import api_client, is_status
from modelrollout.metrics.scoping import ScopeError, scope
from modelrollout.metrics.source import NoDataError, QueryError
from modelrollout.metrics.templates import TemplateError, render
from modelrollout.references import Reference

KIND = "driftmonitor"
logger = logging.getLogger(__name__)

JSON_PATCH = "application/json-patch+json"
WEBHOOK_WORKERS = 4
"""Concurrent webhook POSTs: receivers that never answer hold these threads, not the reconcile threads."""

EventSink = Callable[[Any, str, str, str], None]
"""``(body, type, reason, message)``: kopf's Events in the operator, a recorder in tests."""


def register(context: Context) -> None:
    """Attach the handlers; called once at start-up with the operator's shared context."""
    gauges = Gauges()
    dispatcher = Dispatcher(timeout=context.settings.webhook_timeout, workers=WEBHOOK_WORKERS)

    @kopf.timer(GROUP, VERSION, dm.PLURAL, interval=context.settings.tick_seconds, sharp=False)
    def tick(body: kopf.Body, **_: Any) -> None:
        guard = Tick(context=context, api=api_client(), body=dict(body), now=datetime.now(UTC))
        guard.guarded(
            KIND,
            dm.PLURAL,
            dm.DriftMonitorStatus,
            lambda: reconcile(context, guard.api, guard.body, now=guard.now, gauges=gauges, dispatcher=dispatcher),
        )

    @kopf.on.delete(GROUP, VERSION, dm.PLURAL, optional=True)
    def deleted(namespace: str | None, name: str, **_: Any) -> None:
        gauges.forget(namespace or "", name)
        dispatcher.forget(namespace or "", name)


def reconcile(
    context: Context,
    api: client.ApiClient,
    obj: Mapping[str, Any],
    *,
    now: datetime,
    gauges: Gauges | None = None,
    post: EventSink = post_event,
    dispatcher: Dispatcher | None = None,
) -> dm.DriftMonitorStatus:
    """One tick of one DriftMonitor (the whole object as the API server returns it); returns the new status.

    Without a ``dispatcher`` a webhook is posted inline, so the tick's status already holds the outcome.
    """
    reconciliation = Reconciliation(
        context=context,
        api=api,
        body=dict(obj),
        now=now,
        gauges=gauges or Gauges(),
        post=post,
        dispatcher=dispatcher or Dispatcher(timeout=context.settings.webhook_timeout, workers=0),
    )
    return reconciliation.run(dict(obj.get("spec") or {}), dict(obj.get("status") or {}))


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
class Reconciliation(Tick):
    """One tick of one DriftMonitor."""

    gauges: Gauges
    dispatcher: Dispatcher
    post: EventSink = post_event

    def run(self, raw_spec: dict[str, Any], raw_status: dict[str, Any]) -> dm.DriftMonitorStatus:
        status = parse_status(dm.DriftMonitorStatus, raw_status)
        try:
            spec = dm.DriftMonitorSpec.model_validate(raw_spec)
        except ValidationError as error:
            return self._invalid_spec(status, error)
        if drift.evaluation_due(spec, status, self.generation, self.now):
            status = self._evaluate(spec, status)
        if drift.action_pending(status, self.now) is not None:
            status = self._act(spec, status)
        if drift.delivery_due(status, self.now):
            status = self._deliver(spec, status)
        return status

    # --- evaluation ---------------------------------------------------------------------------------------------

    def _evaluate(self, spec: dm.DriftMonitorSpec, status: dm.DriftMonitorStatus) -> dm.DriftMonitorStatus:
        started = time.monotonic()
        outcome, revision = self._observe(spec)
        decision = drift.decide(spec, status, outcome, now=self.now, generation=self.generation, revision=revision)
        self._record(status, decision)
        if isinstance(outcome, drift.Evaluation):
            self.gauges.export(self.namespace, self.name, decision.status, list(outcome.quality))
            logger.info("%s/%s: %s", self.namespace, self.name, decision.status.state)
        else:
            logger.warning("%s/%s: %s: %s", self.namespace, self.name, outcome.reason, outcome.message)
        telemetry.reconcile_seconds.labels(KIND).observe(time.monotonic() - started)
        return decision.status

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
            config_map = client.CoreV1Api(self.api).read_namespaced_config_map(ref.name, self.namespace)
        except client.ApiException as error:
            if is_status(error, 404):
                return drift.Failure("ReferenceNotFound", f"ConfigMap {ref.name} not found in {self.namespace}")
            raise
        data = config_map.data or {}
        if ref.key not in data:
            keys = ", ".join(sorted(data)) or "none"
            return drift.Failure("ReferenceNotFound", f"ConfigMap {ref.name} has no key {ref.key!r} (keys: {keys})")
        return str(data[ref.key])

    def _target(self, name: str) -> dict[str, Any] | drift.Failure:
        try:
            target: dict[str, Any] = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, md.PLURAL, name
            )
        except client.ApiException as error:
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
                if not self.context.settings.cross_namespace_queries:
                    promql = scope(promql, self.namespace)
            except TemplateError as error:
                return drift.Failure("InvalidQuery", f"{query.name}: {error}")
            except ScopeError as error:
                return drift.Failure(error.reason, f"{query.name}: {error}")
            try:
                answers[query.name] = self.context.metrics.query_vector(promql)
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
        except client.ApiException as error:
            message = f"{error.status} {error.reason}: patching ModelDeployment {spec.target_ref}"
            decision = drift.action_failed(status, message, permanent=is_status(error, 404))
            self._record(status, decision)
            return decision.status
        decision = drift.action_done(status, target=spec.target_ref, now=self.now)
        self._record(status, decision)
        event = drift.target_event(action, f"{self.namespace}/{self.name}")
        self.post(target, event.type, event.reason, event.message)
        return decision.status

    def _patch_target(self, target: str, action: dm.TargetActionStatus) -> dict[str, Any]:
        """Rollback is the abort action the ModelDeployment controller consumes once per id; Pause edits the spec."""
        if action.name == "Rollback":
            patch: dict[str, Any] = {
                "metadata": {"annotations": {ACTION_ANNOTATION: "abort", ACTION_ID_ANNOTATION: action.id}}
            }
        else:
            patch = {"spec": {"paused": True}}
        patched: dict[str, Any] = client.CustomObjectsApi(self.api).patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, md.PLURAL, target, patch, _content_type=MERGE
        )
        return patched

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
        self._record(status, drift.Decision(status=updated))
        return updated

    def _secret(self, ref: SecretKeyRef) -> str:
        try:
            secret = client.CoreV1Api(self.api).read_namespaced_secret(ref.name, self.namespace)
        except client.ApiException as error:
            raise DeliveryError(f"cannot read Secret {ref.name}: {error.status} {error.reason}") from None
        value = (secret.data or {}).get(ref.key)
        if value is None:
            raise DeliveryError(f"Secret {ref.name} has no key {ref.key!r}")
        try:
            return base64.b64decode(value, validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            raise DeliveryError(f"Secret {ref.name} key {ref.key!r} does not hold UTF-8 text") from None

    # --- recording ----------------------------------------------------------------------------------------------

    def _record(self, before: dm.DriftMonitorStatus, decision: drift.Decision) -> None:
        """Status first, then Events: what was decided is durable before anyone is told about it."""
        if decision.status != before:
            replace_status(self.api, self.namespace, self.name, decision.status)
        for event in decision.events:
            self.post(self.body, event.type, event.reason, event.message)

    def _invalid_spec(self, status: dm.DriftMonitorStatus, error: ValidationError) -> dm.DriftMonitorStatus:
        """A spec the schema let through but the rules reject: say so once, not every tick."""
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in error.errors())
        ready = find_condition(status.conditions, "Ready")
        if (
            ready is not None
            and ready.reason == "InvalidSpec"
            and ready.message == message[:1000]
            and status.observed_generation == self.generation
        ):
            return status
        decision = drift.invalid_spec(status, message, now=self.now, generation=self.generation)
        self._record(status, decision)
        return decision.status


def replace_status(api: client.ApiClient, namespace: str, name: str, status: dm.DriftMonitorStatus) -> None:
    """Replace the whole status. A merge patch keeps keys it does not mention, so a field going back to
    null (``alert.pending`` once delivered) would stay set on the server and the alert be sent again."""
    value = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    patch = [{"op": "add", "path": "/status", "value": value}]
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, dm.PLURAL, name, patch, _content_type=JSON_PATCH
    )


@functools.lru_cache(maxsize=64)
def _parse_cached(text: str) -> Reference | drift.Failure:
    """References are immutable once parsed; a ConfigMap that did not change is not parsed again."""
    return drift.parse_reference(text)
