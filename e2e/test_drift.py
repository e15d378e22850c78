"""Scenario 2: feature drift on a model in production is detected by PSI and KS, and alerts without repeating.

"The model took weeks to train, it's fine" meets a market that moved: clients start sending a
shifted ``return_1d``. A DriftMonitor run by the operator process compares the live feature
histograms of the ModelDeployment's stable revision (scraped by Prometheus from the real model
server) with the training reference from ``examples/model-server``. While traffic looks like
training data it stays quiet; once one feature shifts, both PSI and the KS test flag that feature
and no other input, the monitor's state turns Drift with an Event, and an alert reaches a webhook
receiver on loopback whose URL is kept in a Secret. The model's predictions may drift in turn
(they depend on that feature): that changes the drifted set, which is worth one more alert
(docs/drift.md), but the same drift is never alerted twice.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from kubernetes import client

from e2e.conftest import NAME, Sink, Stage, following_traffic
from e2e.dataplane import MODEL_SERVER_DIR
from e2e.gwt import Scenario
from e2e.harness.scenario import model_deployment
from tests.support.settling import settle
from tests.support.waiting import pace, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

MONITOR = "returns-drift"
SHIFTED = "return_1d"
SHIFT = 0.05
"""About three training standard deviations of return_1d: a regime change, not noise."""
REFERENCE = MODEL_SERVER_DIR / "data" / "reference-configmap.yaml"
PSI_THRESHOLD, KS_THRESHOLD = 0.2, 0.1
MIN_SAMPLES = 800
"""About 20 s of the 40 rps clients. With a couple of hundred samples a KS statistic of 0.1 is within the
null's 5% tail, so six watched series would raise false alarms now and then; 800 keeps "no drift" quiet."""


def reference_config_map(stage: Stage) -> str:
    """The training reference ConfigMap shipped with the sample model, created in the scenario's namespace."""
    config_map: dict[str, Any] = yaml.safe_load(REFERENCE.read_text())
    config_map["metadata"]["namespace"] = stage.namespace
    client.CoreV1Api(stage.api).create_namespaced_config_map(stage.namespace, config_map)
    name: str = config_map["metadata"]["name"]
    return name


def webhook_secret(stage: Stage, url: str) -> None:
    secret = {"metadata": {"name": "drift-webhook"}, "data": {"url": base64.b64encode(url.encode()).decode()}}
    client.CoreV1Api(stage.api).create_namespaced_secret(stage.namespace, secret)


def drift_monitor(reference: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": MONITOR},
        "spec": {
            "targetRef": NAME,
            "interval": "2s",
            "window": "30s",
            "minSamples": MIN_SAMPLES,
            "reference": {"configMapRef": {"name": reference, "key": "reference.json"}},
            "methods": [{"name": "psi", "threshold": PSI_THRESHOLD}, {"name": "ks", "threshold": KS_THRESHOLD}],
            "alerting": {"webhook": {"urlSecretRef": {"name": "drift-webhook", "key": "url"}}},
        },
    }


def monitor_status(stage: Stage) -> dict[str, Any]:
    return dict(stage.get("DriftMonitor", MONITOR).get("status") or {})


def monitor_settles(stage: Stage, predicate: Callable[[dict[str, Any]], bool], timeout: float, message: str) -> None:
    """Wait for the monitor's status; on timeout show it (features, conditions) rather than only "timed out"."""
    settle(
        lambda: monitor_status(stage),
        predicate,
        timeout,
        message,
        explain=lambda: f"DriftMonitor status: {monitor_status(stage)}",
        interval=0.5,
    )


def test_one_shifted_feature_is_detected_by_psi_and_ks_and_alerted(stage: Stage, sink: Sink) -> None:
    story = Scenario("a shifted feature is detected by PSI and KS and alerted; no drift stays quiet")
    with following_traffic(stage) as traffic:
        with story.given("v1 in production, watched by a DriftMonitor against its training reference"):
            stage.create(model_deployment(NAME, "1.0.0", smoke=False))
            stable = stage.healthy_on("1.0.0")["stableRevision"]
            webhook_secret(stage, f"{sink.url}/hooks/drift")
            stage.create(drift_monitor(reference_config_map(stage)))

        with story.then("while clients send training-like data the monitor says NoDrift and stays quiet"):

            def quiet_evaluations(status: dict[str, Any]) -> int:
                return sum(1 for h in status.get("history", []) if h.get("state") == "NoDrift")

            monitor_settles(stage, lambda s: quiet_evaluations(s) >= 3, 60, "three NoDrift evaluations")
            status = monitor_status(stage)
            assert status["state"] == "NoDrift", status
            assert status["revision"] == stable["hash"], "it judges the stable revision's traffic"
            assert status["driftedFeatures"] == []
            assert all(f["verdict"] in ("NoDrift", "Warning") for f in status["features"]), status["features"]
            assert all(f["samples"] >= MIN_SAMPLES for f in status["features"])
            assert sink.received() == [], ("no alert without drift", sink.received(), status.get("history"))
            assert not stage.events(MONITOR, reason="DriftDetected")
            stage.record("DriftMonitor", MONITOR, "driftmonitor-nodrift.yaml")

        with story.when(f"clients start sending {SHIFTED} shifted by {SHIFT}"):
            traffic.reconfigure(shift={SHIFTED: SHIFT})

        with story.then("the monitor reports drift on that feature alone"):
            monitor_settles(stage, lambda s: s.get("state") == "Drift", 60, "Drift")
            status = monitor_status(stage)
            assert [f for f in status["driftedFeatures"] if f != "prediction"] == [SHIFTED]
            assert status["prediction"]["samples"] > 0, "predictions are judged too (they may drift with the input)"
            features = {f["name"]: f for f in status["features"]}
            assert features[SHIFTED]["verdict"] == "Drift"
            conditions = {c["type"]: c for c in status["conditions"]}
            assert conditions["Drifted"]["status"] == "True"

        with story.and_("a DriftDetected Event and one alert at the webhook say which feature"):
            # Both follow the status that says Drift: the Event from the status' outbox, the alert from the
            # delivery pool. On a loaded machine either may take a few seconds more.
            detected = stage.told("DriftDetected", MONITOR)
            assert SHIFTED in detected[-1].message
            wait_for(sink.received, 30, message="an alert at the webhook")
            alerts = sink.received()
            assert {a["modelrollout"]["kind"] for a in alerts} == {"Firing"}, alerts
            assert SHIFTED in alerts[0]["modelrollout"]["driftedFeatures"]
            assert set(alerts[0]["modelrollout"]["driftedFeatures"]) <= {SHIFTED, "prediction"}
            assert set(alerts[0]["modelrollout"]["scores"][SHIFTED]) == {"psi", "ks"}
            assert sink.paths == ["/hooks/drift"]

        with story.and_("as shifted data fills the window, PSI and KS both score that feature over threshold"):

            def both_methods(status: dict[str, Any]) -> bool:
                scores: dict[str, float] = next(f["scores"] for f in status["features"] if f["name"] == SHIFTED)
                return scores["psi"] >= PSI_THRESHOLD and scores["ks"] >= KS_THRESHOLD

            monitor_settles(stage, both_methods, 40, f"PSI and KS over threshold on {SHIFTED}")
            status = monitor_status(stage)
            assert status["state"] == "Drift"
            features = {f["name"]: f for f in status["features"]}
            assert features[SHIFTED]["pValues"]["ks"] < 0.05
            for name, result in features.items():
                if name != SHIFTED:
                    assert result["verdict"] != "Drift", (name, result["scores"])
                    assert result["scores"]["psi"] < PSI_THRESHOLD, (name, result["scores"])
            stage.record("DriftMonitor", MONITOR, "driftmonitor-drift.yaml")

        with story.and_("while the drift persists no alert is repeated (a new one only when the drifted set changes)"):
            evaluated = monitor_status(stage)["lastEvaluationTime"]
            # Due 2 s later; the bound allows a failed attempt's back-off (up to 30 s) on a loaded machine.
            monitor_settles(stage, lambda s: s["lastEvaluationTime"] != evaluated, 60, "another evaluation")
            pace(2)  # time for a repeated alert, were one sent, to reach the sink
            status = monitor_status(stage)
            assert status["state"] == "Drift"
            sent = [(a["modelrollout"]["kind"], a["modelrollout"].get("driftedFeatures")) for a in sink.received()]
            fingerprints = [tuple(features or ()) for _, features in sent]
            assert {kind for kind, _ in sent} == {"Firing"}, sent
            assert len(fingerprints) == len(set(fingerprints)), (sent, status["alert"])
            assert len(sent) <= 2, "return_1d, then at most once more when predictions follow it"
