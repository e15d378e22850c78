"""The DriftMonitor kind's tick through the one loop, without a server: the calls it makes, in order.

The API server is the in-memory one behind the engine's seam (its journal lists every call), Prometheus
is the strict fake (a query nobody prepared fails the test), and the clock is fixed. Inputs are the
sample model server's: its training reference (``DEFAULT_REFERENCE``) in a ConfigMap, and histogram
answers shaped as Prometheus returns them for that server (cumulative ``le`` buckets labelled with
prometheus-client's rendering of the reference's edges). As in Argo Rollouts' controller tests, each
test asserts on the calls (a status write before every Event), the status written and the Events.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.utils import floatToGoString

from e2e.dataplane import DEFAULT_REFERENCE
from modelrollout import API_VERSION
from modelrollout.api import driftmonitor as dm
from modelrollout.config import Settings
from modelrollout.core.actions import ACTION_ANNOTATION, ACTION_ID_ANNOTATION
from modelrollout.engine import webhooks
from modelrollout.engine.context import Context
from modelrollout.engine.driftmonitors import DriftMonitors, Gauges
from modelrollout.engine.reconciler import Reconciler
from modelrollout.engine.webhooks import Dispatcher
from modelrollout.metrics.fake import FakeMetricSource
from modelrollout.metrics.source import QueryError, Sample
from modelrollout.references import CategoricalFeature, NumericFeature, Reference
from tests.support.kubernetes import InMemoryResources

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
NAMESPACE = "ml"
MONITOR = "watch"
TARGET = "returns"
REVISION = "5d8f9c2a41"
"""The target's stable revision hash: the ``revision`` label the queries select."""
REFERENCE_TEXT = DEFAULT_REFERENCE.read_text()
REFERENCE = Reference.model_validate_json(REFERENCE_TEXT)
SHIFTED = "return_1d"
SCALE = 0.2
"""Live traffic in the window as a share of the training counts (5000 per feature): 1000 observations."""
EVALUATED = [
    "get driftmonitors/watch",
    "get configmaps/returns-reference",
    "get modeldeployments/returns",
]
"""The reads of every evaluation: the monitor afresh, its reference, its target's revision."""
EVALUATION_WRITE = (
    "status ['conditions', 'features', 'history', 'lastAttemptTime', 'lastEvaluationTime', 'observedGeneration', "
    "'prediction', 'revision', 'state']"
)


def promql(by: str, series: str) -> str:
    """A query as the engine sends it: grouped, over the window, scoped to the namespace and revision."""
    return f'sum by ({by}) (increase({series}{{namespace="{NAMESPACE}", revision="{REVISION}"}}[1h]))'


QUERIES = {
    "numeric": promql("feature, le", "model_feature_value_bucket"),
    "categorical": promql("feature, category", "model_feature_category_total"),
    "prediction": promql("le", "model_prediction_value_bucket"),
    "observations": promql("feature", "model_feature_observations_total"),
    "missing": promql("feature", "model_feature_missing_total"),
    "outOfRange": promql("feature", "model_feature_out_of_range_total"),
    "outliers": promql("feature", "model_feature_outliers_total"),
}
"""Every query of the default spec, in the order the engine sends them."""


def buckets(edges: Sequence[float], per_bin: Sequence[float], labels: Mapping[str, str]) -> list[Sample]:
    """Cumulative ``le`` buckets of one series from counts below the first edge, in each bin, and above the last."""
    assert len(per_bin) == len(edges) + 1
    les = [floatToGoString(edge) for edge in edges] + ["+Inf"]  # type: ignore[no-untyped-call]
    samples, total = [], 0.0
    for le, count in zip(les, per_bin, strict=True):
        total += count
        samples.append(Sample({**labels, "le": le}, total))
    return samples


def like_training(counts: Sequence[int]) -> list[float]:
    """The training distribution at the live volume, nothing outside the edges."""
    return [0.0, *(c * SCALE for c in counts), 0.0]


def moved_up(counts: Sequence[int]) -> list[float]:
    """The training mass moved two bins up (the top bins pile up in the last one): plainly drifted."""
    scaled = [c * SCALE for c in counts]
    return [0.0, 0.0, 0.0, *scaled[:-3], sum(scaled[-3:]), 0.0]


def answers(shifted: Iterable[str] = ()) -> dict[str, list[Sample]]:
    """What Prometheus answers for the sample server's traffic, with the ``shifted`` features moved up."""
    moved = set(shifted)
    numeric: list[Sample] = []
    categorical: list[Sample] = []
    for feature in REFERENCE.features:
        if isinstance(feature, NumericFeature):
            live = moved_up(feature.counts) if feature.name in moved else like_training(feature.counts)
            numeric += buckets(feature.edges, live, {"feature": feature.name})
        elif isinstance(feature, CategoricalFeature):
            categorical += [
                Sample({"feature": feature.name, "category": category}, count * SCALE)
                for category, count in zip(feature.categories, feature.counts, strict=True)
            ]
    prediction = REFERENCE.prediction
    assert prediction is not None
    names = [f.name for f in REFERENCE.features]
    observed = sum(REFERENCE.features[0].counts) * SCALE

    def per_feature(value: float) -> list[Sample]:
        return [Sample({"feature": name}, value) for name in names]

    by_name = {
        "numeric": numeric,
        "categorical": categorical,
        "prediction": buckets(prediction.edges, like_training(prediction.counts), {}),
        "observations": per_feature(observed),
        "missing": per_feature(0.0),
        "outOfRange": per_feature(0.0),
        "outliers": per_feature(0.0),
    }
    return {QUERIES[name]: samples for name, samples in by_name.items()}


def prometheus_down(promql: str) -> QueryError:
    """Every query fails as when Prometheus cannot be reached (no HTTP status)."""
    return QueryError(promql, "connection refused")


def monitor(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "DriftMonitor",
        "metadata": {"namespace": NAMESPACE, "name": MONITOR},
        "spec": {
            "targetRef": TARGET,
            "interval": "1m",
            "window": "1h",
            "minSamples": 200,
            "reference": {"configMapRef": {"name": "returns-reference", "key": "reference.json"}},
        }
        | spec,
    }


def target() -> dict[str, Any]:
    """The watched ModelDeployment, with the status its own controller writes once it is healthy."""
    stable = {"number": 1, "versionId": f"1-{REVISION}", "hash": REVISION, "modelVersion": "1.0.0"}
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelDeployment",
        "metadata": {"namespace": NAMESPACE, "name": TARGET},
        "spec": {
            "model": {"name": "next-day-returns", "version": "1.0.0", "uri": "s3://models/returns/1.0.0"},
            "template": {"spec": {"containers": [{"name": "server", "image": "model-server:test"}]}},
        },
        "status": {"stableRevision": stable, "currentRevision": stable, "phase": "Healthy"},
    }


@dataclass
class World:
    """One monitor, its target and reference in the in-memory API server, Prometheus' answers, and the loop."""

    server: InMemoryResources
    metrics: FakeMetricSource
    reconciler: Reconciler[dm.DriftMonitorSpec, dm.DriftMonitorStatus] = field(init=False)

    def __post_init__(self) -> None:
        context = Context(settings=Settings(), metrics=self.metrics)
        monitors = DriftMonitors(Gauges(), Dispatcher(timeout=1.0, workers=0))
        self.reconciler = Reconciler(monitors, context, api=client.ApiClient, resources=lambda _: self.server)

    def tick(self, at: datetime = NOW) -> dm.DriftMonitorStatus | None:
        """One tick from the monitor as a watch would have delivered it."""
        return self.reconciler.tick(self.server.stored(dm.PLURAL, NAMESPACE, MONITOR), now=at)

    def status(self) -> dm.DriftMonitorStatus:
        return dm.DriftMonitorStatus.model_validate(self.server.stored(dm.PLURAL, NAMESPACE, MONITOR)["status"])

    def conditions(self) -> dict[str, tuple[str, str]]:
        return {c.type: (c.status, c.reason) for c in self.status().conditions}

    def message(self, type_: str) -> str:
        return next(c.message for c in self.status().conditions if c.type == type_)

    def events(self, about: str = MONITOR) -> list[dict[str, Any]]:
        return [e for e in self.server.events.values() if e["involvedObject"]["name"] == about]

    def restart_journal(self) -> None:
        """Forget the calls and queries so far, to assert on one tick's."""
        self.server.journal.clear()
        self.metrics.calls.clear()


def world(*, reference: Mapping[str, str] | None = None, shifted: Iterable[str] = (), **spec: Any) -> World:
    server = InMemoryResources()
    server.add(dm.PLURAL, monitor(**spec))
    server.add("modeldeployments", target())
    server.config_maps[NAMESPACE, "returns-reference"] = dict(
        reference if reference is not None else {"reference.json": REFERENCE_TEXT}
    )
    return World(server, FakeMetricSource(answers(shifted)))


def test_a_due_evaluation_without_drift_records_no_drift_and_tells_nobody() -> None:
    """The common tick: read, ask Prometheus once per metric family, write one status, post nothing."""
    w = world()
    returned = w.tick()

    assert w.server.journal == [*EVALUATED, EVALUATION_WRITE]
    assert w.metrics.queries == list(QUERIES.values())
    status = w.status()
    assert returned == status, "the tick returns what the API server stored"
    assert status.state == "NoDrift"
    assert status.revision == REVISION
    assert status.observed_generation == 1
    assert status.last_evaluation_time == status.last_attempt_time == NOW
    assert [(f.name, f.verdict, f.samples) for f in status.features] == [
        (f.name, "NoDrift", 1000) for f in REFERENCE.features
    ]
    assert status.prediction is not None
    assert status.prediction.verdict == "NoDrift"
    assert status.drifted_features == []
    assert [h.state for h in status.history] == ["NoDrift"]
    assert w.conditions() == {
        "Drifted": ("False", "NoDrift"),
        "InsufficientData": ("False", "EnoughSamples"),
        "DataQualityDegraded": ("False", "WithinLimits"),
        "PerformanceDegraded": ("False", "NotMonitored"),
        "Ready": ("True", "Evaluated"),
    }
    assert not w.server.events
    assert status.alert == dm.AlertStatus()


def test_drift_is_written_to_status_before_it_is_told() -> None:
    """A DriftDetected Warning goes out only once the status holds it (in its outbox, then cleared)."""
    w = world(shifted=[SHIFTED])
    w.tick()

    assert w.server.journal == [
        *EVALUATED,
        "status ['alert', 'conditions', 'driftedFeatures', 'eventsRecorded', 'features', 'history', "
        "'lastAttemptTime', 'lastEvaluationTime', 'observedGeneration', 'pendingEvents', 'prediction', "
        "'revision', 'state']",
        "event DriftDetected",
    ]
    status = w.status()
    assert status.state == "Drift"
    assert status.drifted_features == [SHIFTED]
    assert w.conditions()["Drifted"] == ("True", "FeaturesDrifted")
    assert status.alert.firing
    assert status.alert.fingerprint == SHIFTED
    assert status.alert.pending is None, "no webhook: Events and metrics are the only alert"
    assert [p.reason for p in status.pending_events] == ["DriftDetected"], "posted; cleared by the next status write"
    assert status.events_recorded == 1
    (told,) = w.events()
    assert (told["type"], told["reason"]) == ("Warning", "DriftDetected")
    assert told["message"].startswith(f"drift in {SHIFTED} (psi ")
    assert told["involvedObject"]["kind"] == "DriftMonitor"
    assert status.action is None
    assert "patch modeldeployments/returns" not in w.server.journal, "spec.action None: the target is left alone"


def test_drift_with_rollback_asks_the_target_to_abort_once_and_tells_the_target() -> None:
    """Rollback is the abort annotation, with an id the target consumes once; recorded, then told on both."""
    w = world(shifted=[SHIFTED], action="Rollback")
    w.tick()

    action_id = "drift-20261130T080000Z-g1"
    assert w.server.journal[len(EVALUATED) :] == [
        "status ['action', 'alert', 'conditions', 'driftedFeatures', 'eventsRecorded', 'features', 'history', "
        "'lastAttemptTime', 'lastEvaluationTime', 'observedGeneration', 'pendingEvents', 'prediction', "
        "'revision', 'state']",
        "event DriftDetected",
        "patch modeldeployments/returns",
        "status ['action', 'actionTaken', 'eventsRecorded', 'pendingEvents']",  # DriftDetected's clearing too
        "event RollbackRequested",
        "event DriftDetected",
    ]
    annotations = w.server.stored("modeldeployments", NAMESPACE, TARGET)["metadata"]["annotations"]
    assert annotations == {ACTION_ANNOTATION: "abort", ACTION_ID_ANNOTATION: action_id}
    status = w.status()
    assert status.action is not None
    assert (status.action.name, status.action.id, status.action.state) == ("Rollback", action_id, "Taken")
    assert status.action.taken_at == NOW
    assert status.action_taken is not None
    assert status.action_taken.startswith(f"asked to roll back the canary of ModelDeployment {TARGET}")
    assert w.server.reasons(MONITOR) == ["DriftDetected", "RollbackRequested"]
    (on_target,) = w.events(TARGET)
    assert on_target["involvedObject"]["kind"] == "ModelDeployment"
    assert (on_target["type"], on_target["reason"]) == ("Warning", "DriftDetected")
    assert on_target["message"].startswith(f"rollback requested by DriftMonitor {NAMESPACE}/{MONITOR}: drift in")

    w.restart_journal()
    w.tick(NOW + timedelta(minutes=1))
    assert w.status().state == "Drift"
    assert w.server.journal == [
        *EVALUATED,
        "status ['history', 'lastAttemptTime', 'lastEvaluationTime', 'pendingEvents']",
    ], "one action per drift episode"
    assert w.server.stored("modeldeployments", NAMESPACE, TARGET)["metadata"]["annotations"] == annotations


def test_prometheus_down_is_a_condition_told_once_and_keeps_the_last_results() -> None:
    """An outage is Ready False with one Warning; the last good scores stay and no alert is resolved or raised."""
    w = world()
    w.tick()
    good = w.status()

    w.metrics.answers.clear()
    w.metrics.handler = prometheus_down
    w.restart_journal()
    w.tick(NOW + timedelta(minutes=1))

    assert w.metrics.queries == [QUERIES["numeric"]], "after the first failure the rest of the plan is not sent"
    assert w.server.journal == [
        *EVALUATED,
        "status ['conditions', 'eventsRecorded', 'history', 'lastAttemptTime', 'pendingEvents', 'state']",
        "event PrometheusUnavailable",
    ]
    status = w.status()
    assert w.conditions()["Ready"] == ("False", "PrometheusUnavailable")
    assert w.message("Ready") == "numeric: connection refused"
    assert status.state == "Error"
    assert status.features == good.features
    assert status.last_evaluation_time == NOW
    assert status.last_attempt_time == NOW + timedelta(minutes=1)
    assert w.conditions()["Drifted"] == ("False", "NoDrift"), "an outage is not a verdict"
    (told,) = w.events()
    assert (told["type"], told["reason"]) == ("Warning", "PrometheusUnavailable")

    w.restart_journal()
    w.tick(NOW + timedelta(minutes=2))
    assert w.server.journal == [*EVALUATED, "status ['history', 'lastAttemptTime', 'pendingEvents']"], (
        "told once, not every tick; the clearing of the last tick's outbox rides on this write"
    )
    assert [h.state for h in w.status().history] == ["Error", "Error", "NoDrift"]
    assert w.server.reasons(MONITOR) == ["PrometheusUnavailable"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, f"ConfigMap returns-reference not found in {NAMESPACE}"),
        ({"other.json": "{}"}, "ConfigMap returns-reference has no key 'reference.json' (keys: other.json)"),
    ],
    ids=["no-config-map", "no-key"],
)
def test_a_missing_reference_is_reference_not_found_and_nothing_is_asked(
    data: dict[str, str] | None, message: str
) -> None:
    """Without a reference nothing can be judged: neither the target nor Prometheus is asked."""
    w = world(reference=data or {})
    if data is None:
        del w.server.config_maps[NAMESPACE, "returns-reference"]
    w.tick()

    assert w.server.journal == [
        "get driftmonitors/watch",
        "get configmaps/returns-reference",
        "status ['conditions', 'eventsRecorded', 'history', 'lastAttemptTime', 'observedGeneration', "
        "'pendingEvents', 'state']",
        "event ReferenceNotFound",
    ]
    assert w.metrics.calls == []
    assert w.conditions() == {"Ready": ("False", "ReferenceNotFound")}
    assert w.message("Ready") == message
    assert w.status().state == "Error"
    (told,) = w.events()
    assert (told["type"], told["reason"], told["message"]) == ("Warning", "ReferenceNotFound", message)


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("TargetNotFound", f"ModelDeployment {TARGET} not found in {NAMESPACE}"),
        (
            "RevisionUnknown",
            f"ModelDeployment {TARGET} has no status.stableRevision yet, so its stable revision's traffic "
            "cannot be selected",
        ),
    ],
)
def test_a_target_whose_traffic_cannot_be_selected_is_a_condition_and_nothing_is_asked(
    reason: str, message: str
) -> None:
    """The queries select the target's stable revision: without the target, or before it has one, no query
    could say anything about the model, so none is sent."""
    w = world()
    if reason == "TargetNotFound":
        del w.server.objects["modeldeployments", NAMESPACE, TARGET]
    else:
        del w.server.objects["modeldeployments", NAMESPACE, TARGET]["status"]
    w.tick()

    assert w.server.journal == [
        *EVALUATED,
        "status ['conditions', 'eventsRecorded', 'history', 'lastAttemptTime', 'observedGeneration', "
        "'pendingEvents', 'state']",
        f"event {reason}",
    ]
    assert w.metrics.calls == []
    assert w.conditions() == {"Ready": ("False", reason)}
    assert w.message("Ready") == message
    assert w.server.reasons(MONITOR) == [reason]


def test_a_tick_between_evaluations_makes_no_call_at_all() -> None:
    """``spec.interval`` is honoured on the cached body: a tick before it costs neither a read nor a query."""
    w = world()
    w.tick()
    w.restart_journal()

    assert w.tick(NOW + timedelta(seconds=59)) is None
    assert w.server.journal == []
    assert w.metrics.calls == []

    w.tick(NOW + timedelta(minutes=1))
    assert w.server.journal == [*EVALUATED, "status ['history', 'lastAttemptTime', 'lastEvaluationTime']"]


def test_an_invalid_spec_is_reported_by_the_loop_once_and_cleared_when_fixed() -> None:
    """A rule the schema cannot check (a warning level above its threshold) stops the monitor before any read."""
    w = world(methods=[{"name": "psi", "threshold": 0.1, "warning": 0.2}])
    w.tick()

    assert w.server.journal == [
        "get driftmonitors/watch",
        "status ['conditions', 'eventsRecorded', 'observedGeneration', 'pendingEvents']",
        "event InvalidSpec",
    ]
    assert w.metrics.calls == []
    assert w.conditions() == {"InvalidSpec": ("True", "ValidationFailed")}
    assert "a method's warning level must not exceed its drift threshold" in w.message("InvalidSpec")
    (told,) = w.events()
    assert (told["type"], told["reason"]) == ("Warning", "InvalidSpec")

    w.restart_journal()
    w.tick(NOW + timedelta(minutes=1))
    assert w.server.journal == [], "told once; and quiet, not even read, until the spec changes"

    stored = w.server.objects[dm.PLURAL, NAMESPACE, MONITOR]
    stored["spec"]["methods"] = [{"name": "psi", "threshold": 0.2, "warning": 0.1}]
    stored["metadata"]["generation"] = 2
    w.restart_journal()
    w.tick(NOW + timedelta(minutes=2))
    assert w.server.journal[:2] == ["get driftmonitors/watch", "status ['conditions', 'pendingEvents']"]
    assert w.conditions()["InvalidSpec"] == ("False", "Valid")
    assert w.conditions()["Ready"] == ("True", "Evaluated")
    assert w.status().observed_generation == 2
    assert w.server.reasons(MONITOR) == ["InvalidSpec"]


def webhook_secret(server: InMemoryResources, url: str) -> None:
    server.secrets[NAMESPACE, "drift-webhook"] = {"url": base64.b64encode(url.encode()).decode()}


WEBHOOK = {"webhook": {"urlSecretRef": {"name": "drift-webhook", "key": "url"}}}


def test_an_alert_is_recorded_then_posted_inline_and_its_delivery_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``workers=0`` the POST runs in the tick; ``post_json`` is replaced by a receiver that records
    the payload (no network), so the tick's status already says the alert was sent."""
    posted: list[tuple[str, Mapping[str, Any]]] = []

    def receive(url: str, payload: Mapping[str, Any], *, timeout: float) -> int:
        del timeout
        posted.append((url, payload))
        return 200

    monkeypatch.setattr(webhooks, "post_json", receive)
    w = world(shifted=[SHIFTED], alerting=WEBHOOK)
    webhook_secret(w.server, "https://hooks.example.com/services/T000/B000/XXXX")
    w.tick()

    assert w.server.journal[len(EVALUATED) + 1 :] == [
        "event DriftDetected",
        "get secrets/drift-webhook",
        "status ['alert', 'pendingEvents']",
    ], "the alert is pending in status before the POST, and its delivery is recorded after"
    ((url, payload),) = posted
    assert url == "https://hooks.example.com/services/T000/B000/XXXX"
    assert payload["modelrollout"]["kind"] == "Firing"
    assert payload["modelrollout"]["driftedFeatures"] == [SHIFTED]
    assert payload["modelrollout"]["revision"] == REVISION
    alert = w.status().alert
    assert (alert.firing, alert.pending, alert.last_sent_at, alert.failures) == (True, None, NOW, 0)


def test_an_alert_that_cannot_be_delivered_backs_off_in_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Secret that is not there is a delivery failure like any other: retried later, never an exception."""

    def unreachable(url: str, payload: Mapping[str, Any], *, timeout: float) -> int:
        raise AssertionError("nothing may be posted without a URL")

    monkeypatch.setattr(webhooks, "post_json", unreachable)
    w = world(shifted=[SHIFTED], alerting=WEBHOOK)
    w.tick()

    assert w.server.journal[-2:] == ["get secrets/drift-webhook", "status ['alert', 'pendingEvents']"]
    alert = w.status().alert
    assert alert.pending == "Firing"
    assert alert.failures == 1
    assert alert.next_attempt_at == NOW + timedelta(seconds=10)
    assert alert.last_error == "cannot read Secret drift-webhook: 404 Not Found"
    assert w.conditions().get("Reconciled") is None, "a failed delivery is not a failed reconciliation"
