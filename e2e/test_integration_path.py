"""Scenario 6: the whole path from a market-data feed through the served model to a downstream consumer.

"Unit tests are enough" ignores everything between the feed and the order book. Here a small
feed of market records is preprocessed into the model's features, sent to ``/predict`` on the
server behind the ModelDeployment's stable Service (the one the operator rolled out), and each
prediction is sized into a position by a risk step and delivered to a downstream consumer (a
tiny HTTP sink standing in for order execution).

Then a feed with missing, null and NaN values goes the same way: the server answers every
request, the consumer still gets bounded positions, Prometheus counts exactly the missing values
that were sent, the operator carries on, and a DriftMonitor reports the missing rate as
degraded data quality.
"""

from __future__ import annotations

import json
import math
import urllib.request
from collections import Counter
from typing import Any

import numpy as np
import pytest

from e2e.conftest import NAME, Sink, Stage
from e2e.dataplane import DEFAULT_REFERENCE
from e2e.gwt import Scenario
from e2e.harness.scenario import model_deployment
from model_server.model import NUMERIC_FEATURES
from model_server.world import sample_batch
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

MONITOR = "returns-quality"
RECORDS = 60
BATCH = 10
MAX_POSITION = 1_000_000.0
"""The risk limit per symbol, in dollars."""
TARGET_RETURN = 0.02
"""The predicted return at which the risk step takes the full position."""


def market_feed(seed: int, records: int = RECORDS) -> list[dict[str, Any]]:
    """Records as a data vendor sends them: a symbol and the features of the sample model's market."""
    batch = sample_batch(np.random.default_rng(seed), records)
    return [{"symbol": f"SYM{i:03d}", **row} for i, row in enumerate(batch.instances())]


def with_gaps(feed: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The same feed with values left out, null and NaN, as a flaky vendor sends them; and how many per feature."""
    gaps: Counter[str] = Counter()
    for i, record in enumerate(feed):
        if i % 2 == 0:
            del record["volatility_20d"]
            gaps["volatility_20d"] += 1
        if i % 5 == 0:
            record["return_5d"] = float("nan")
            gaps["return_5d"] += 1
        if i % 7 == 0:
            record["rsi_14"] = None
            gaps["rsi_14"] += 1
    return feed, gaps


def preprocess(record: dict[str, Any]) -> dict[str, Any]:
    """The model's features of one record (the symbol stays with the pipeline)."""
    return {k: v for k, v in record.items() if k != "symbol"}


def post_json(url: str, payload: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def size_position(prediction: float) -> float | None:
    """Risk management: scale the predicted return to a position within the limit; no position on garbage."""
    if not math.isfinite(prediction):
        return None
    return max(-1.0, min(1.0, prediction / TARGET_RETURN)) * MAX_POSITION


def run_pipeline(feed: list[dict[str, Any]], model_url: str, consumer: Sink) -> list[dict[str, Any]]:
    """Feed -> features -> /predict -> risk -> downstream consumer; returns the model's answers."""
    answers: list[dict[str, Any]] = []
    for start in range(0, len(feed), BATCH):
        records = feed[start : start + BATCH]
        code, answer = post_json(f"{model_url}/predict", {"instances": [preprocess(r) for r in records]})
        assert code == 200, (code, answer)
        answers.append(answer)
        for record, prediction in zip(records, answer["predictions"], strict=True):
            order = {
                "symbol": record["symbol"],
                "prediction": prediction,
                "position": size_position(prediction),
                "model": answer["model"],
            }
            code, _ = post_json(f"{consumer.url}/orders", order)
            assert code == 200
    return answers


def missing_counts(stage: Stage) -> dict[str, float]:
    return stage.query_all(
        f'sum by (feature) (model_feature_missing_total{{namespace="{stage.namespace}"}})', by="feature"
    )


def test_feed_to_prediction_to_consumer_and_missing_data_is_handled(stage: Stage, sink: Sink) -> None:
    story = Scenario("a data feed flows through the served model to a downstream consumer, gaps included")

    with story.given("v1 rolled out by the operator, watched for data quality"):
        stage.create(model_deployment(NAME, "1.0.0"))
        stable = stage.healthy_on("1.0.0")["stableRevision"]
        stage.create(
            {
                "apiVersion": "modelrollout.dev/v1alpha1",
                "kind": "DriftMonitor",
                "metadata": {"name": MONITOR},
                "spec": {
                    "targetRef": NAME,
                    "interval": "2s",
                    "window": "1m",
                    "minSamples": 50,
                    "reference": {"inline": json.loads(DEFAULT_REFERENCE.read_text())},
                    "dataQuality": {"maxMissingRate": 0.05, "maxOutOfRangeRate": 1.0, "maxOutlierRate": 1.0},
                },
            }
        )
        model_url = wait_for(lambda: stage.kubelet.service_url(f"{NAME}-stable"), 10, message="the stable Service")
        before = wait_for(lambda: missing_counts(stage) or None, 60, message="the server's counters in Prometheus")

    with story.when(f"a feed of {RECORDS} clean records runs through the pipeline"):
        answers = run_pipeline(market_feed(seed=7), model_url, sink)

    with story.then("the consumer receives one bounded order per record, from the version in production"):
        orders = sink.received()
        assert [o["symbol"] for o in orders] == [f"SYM{i:03d}" for i in range(RECORDS)]
        assert all(abs(o["prediction"]) <= 1 for o in orders)
        assert all(o["position"] is not None and abs(o["position"]) <= MAX_POSITION for o in orders)
        assert len({o["position"] for o in orders}) > RECORDS // 2, "positions follow the predictions"
        assert {(a["model"]["version"], a["model"]["revision"]) for a in answers} == {("1.0.0", stable["hash"])}
        assert set(sink.paths) == {"/orders"}

    with story.when("a feed with missing, null and NaN values runs through the same pipeline"):
        gappy, gaps = with_gaps(market_feed(seed=8))
        run_pipeline(gappy, model_url, sink)

    with story.then("every request is answered and every order is still bounded"):
        orders = sink.received()[RECORDS:]
        assert len(orders) == RECORDS
        assert all(o["position"] is not None and abs(o["position"]) <= MAX_POSITION for o in orders)

    with story.and_("Prometheus counts exactly the missing values that were sent"):

        def counted() -> dict[str, float]:
            now = missing_counts(stage)
            return {f: now.get(f, 0) - before.get(f, 0) for f in NUMERIC_FEATURES}

        expected = {f: gaps[f] for f in NUMERIC_FEATURES}
        # Scrapes are 1 s apart, but a loaded machine can hold Prometheus back for many of them.
        try:
            wait_for(lambda: counted() == expected, 90, interval=0.5, message=f"missing counters to rise by {expected}")
        except AssertionError as error:
            raise AssertionError(f"{error}; the last rises read: {counted()}") from error
        rises = counted()
        assert rises["volatility_20d"] == RECORDS // 2

    with story.and_("the operator carries on and the DriftMonitor reports the missing rate"):

        def quality_degraded() -> dict[str, Any] | None:
            status = stage.get("DriftMonitor", MONITOR).get("status") or {}
            by_feature = {q["name"]: q for q in status.get("dataQuality", [])}
            volatility = by_feature.get("volatility_20d") or {}
            return status if volatility.get("degraded") else None

        # The monitor's 1 m window must first fill with the gappy feed; on a loaded machine that takes longer.
        status = wait_for(quality_degraded, 90, interval=0.5, message="DataQualityDegraded on volatility_20d")
        by_feature = {q["name"]: q for q in status["dataQuality"]}
        # increase() extrapolates to the window's edges, so the 30 of 120 values (25%) read approximately.
        assert 0.15 < by_feature["volatility_20d"]["missingRate"] < 0.35, by_feature
        assert set(by_feature) <= set(gaps), ("only the features with gaps are reported degraded", by_feature)
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["DataQualityDegraded"]["status"] == "True", conditions
        assert stage.told("DataQualityDegraded", MONITOR)
        assert stage.operator.alive()
        md = stage.ns.get(NAME)
        assert md["status"]["phase"] == "Healthy", md["status"]
        assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
        with urllib.request.urlopen(f"http://{stage.operator.metrics_target}/metrics", timeout=5) as response:
            assert response.status == 200
