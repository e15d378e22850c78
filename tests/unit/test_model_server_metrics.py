"""The sample server's /metrics honours the metric contract, checked against numpy on what was sent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from e2e.dataplane import DEFAULT_REFERENCE
from e2e.dataplane._http import request_json
from e2e.dataplane.servers import ServerHandle, ServerSpec, running_servers
from model_server.world import realised_returns, sample_batch
from modelrollout.references import loads_reference

REFERENCE = loads_reference(DEFAULT_REFERENCE.read_text())


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    with running_servers([ServerSpec(revision="r1", version="1.2.3", seed=1)]) as (handle,):
        yield handle


def scrape(server: ServerHandle) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(server.metrics_text())}


def value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    matches = [s.value for s in families[family].samples if s.name == sample and s.labels == labels]
    assert len(matches) == 1, (family, sample, labels, families[family].samples)
    result: float = matches[0]
    return result


def buckets(families: dict[str, Any], family: str, **labels: str) -> list[tuple[str, float]]:
    return [
        (s.labels["le"], s.value)
        for s in families[family].samples
        if s.name == f"{family}_bucket" and {k: v for k, v in s.labels.items() if k != "le"} == labels
    ]


def predict(server: ServerHandle, instances: list[dict[str, Any]]) -> list[float]:
    status, answer = request_json("POST", server.url + "/predict", {"instances": instances})
    assert status == 200, answer
    predictions: list[float] = answer["predictions"]
    return predictions


def test_feature_histogram_buckets_equal_numpy_histogram_on_reference_edges(server: ServerHandle) -> None:
    batch = sample_batch(np.random.default_rng(3), 600)
    for start in range(0, 600, 150):
        predict(server, batch.instances()[start : start + 150])

    families = scrape(server)
    assert families["model_feature_value"].type == "histogram"
    for feature in REFERENCE.numeric_features:
        sent = batch.numeric[feature.name]
        edges = np.array(feature.edges)
        observed = buckets(families, "model_feature_value", feature=feature.name)
        assert [le for le, _ in observed] == [floatToGoString(e) for e in edges] + ["+Inf"]
        cumulative = np.array([count for _, count in observed])
        inside, _ = np.histogram(sent, bins=edges)
        assert cumulative[0] == np.count_nonzero(sent <= edges[0])
        assert np.diff(cumulative[:-1]).tolist() == inside.tolist()
        assert cumulative[-1] - cumulative[-2] == np.count_nonzero(sent > edges[-1])
        assert value(families, "model_feature_value", "model_feature_value_count", feature=feature.name) == 600
        total = value(families, "model_feature_value", "model_feature_value_sum", feature=feature.name)
        assert total == pytest.approx(sent.sum(), rel=1e-9, abs=1e-12)

    sectors = Counter(batch.sectors)
    for category in REFERENCE.feature("sector").categories:  # type: ignore[union-attr]
        seen = value(
            families, "model_feature_category", "model_feature_category_total", feature="sector", category=category
        )
        assert seen == sectors[category]


def test_prediction_histogram_and_counters(server: ServerHandle) -> None:
    batch = sample_batch(np.random.default_rng(4), 200)
    predictions = np.array(predict(server, batch.instances()))
    families = scrape(server)

    assert REFERENCE.prediction is not None
    edges = np.array(REFERENCE.prediction.edges)
    observed = np.array([count for _, count in buckets(families, "model_prediction_value")])
    assert np.diff(observed[:-1]).tolist() == np.histogram(predictions, bins=edges)[0].tolist()
    assert value(families, "model_prediction_value", "model_prediction_value_count") == 200
    assert value(families, "model_predictions", "model_predictions_total") == 200
    assert value(families, "model_requests", "model_requests_total", code="200") == 1
    assert value(families, "model_request_duration_seconds", "model_request_duration_seconds_count") == 1
    les = [le for le, _ in buckets(families, "model_request_duration_seconds")]
    assert les[0] == "0.001"
    assert les[-2:] == ["10.0", "+Inf"]
    assert value(families, "model_info", "model_info", name="next-day-returns", version="1.2.3") == 1


def test_data_quality_counters(server: ServerHandle) -> None:
    rsi = REFERENCE.feature("rsi_14")
    assert rsi.type == "numeric"
    instances: list[dict[str, Any]] = [
        {"rsi_14": rsi.max + 1.0, "sector": "crypto"},  # out of range, unknown category
        {"rsi_14": rsi.mean + 5 * rsi.std, "sector": None},  # outlier (and out of range), missing sector
        {"rsi_14": None, "return_1d": "bogus"},  # missing, invalid
        {"rsi_14": rsi.mean, "sector": "energy"},
    ]
    predict(server, instances)
    families = scrape(server)

    def counter(name: str, feature: str) -> float:
        return value(families, f"model_feature_{name}", f"model_feature_{name}_total", feature=feature)

    assert counter("observations", "rsi_14") == 4
    assert counter("missing", "rsi_14") == 1
    assert counter("missing", "return_1d") == 4
    assert counter("out_of_range", "rsi_14") == 2
    assert counter("outliers", "rsi_14") == 1
    assert counter("missing", "sector") == 2
    assert counter("out_of_range", "sector") == 1
    other = value(
        families, "model_feature_category", "model_feature_category_total", feature="sector", category="__other__"
    )
    assert other == 1


def test_feedback_feeds_accuracy_and_error_moments(server: ServerHandle) -> None:
    rng = np.random.default_rng(5)
    batch = sample_batch(rng, 300)
    predictions = np.array(predict(server, batch.instances()))
    actuals = realised_returns(rng, batch)
    items = [{"prediction": p, "actual": a} for p, a in zip(predictions, actuals, strict=True)]
    assert request_json("POST", server.url + "/feedback", {"items": items})[0] == 200
    families = scrape(server)

    errors = np.abs(predictions - actuals)
    assert value(families, "model_feedback", "model_feedback_total") == 300
    assert value(families, "model_direction_correct", "model_direction_correct_total") == np.sum(
        predictions * actuals > 0
    )
    assert value(families, "model_abs_error", "model_abs_error_count") == 300
    assert value(families, "model_abs_error", "model_abs_error_sum") == pytest.approx(errors.sum())
    squared = value(families, "model_abs_error_squared", "model_abs_error_squared_sum")
    assert squared == pytest.approx(np.sum(errors**2))
    assert REFERENCE.performance is not None
    observed = np.array([count for _, count in buckets(families, "model_abs_error")])
    assert (
        np.diff(observed[:-1]).tolist() == np.histogram(errors, bins=REFERENCE.performance.abs_error_edges)[0].tolist()
    )


def test_bad_requests_are_counted_and_rejected(server: ServerHandle) -> None:
    assert request_json("POST", server.url + "/predict", {"rows": []})[0] == 400
    assert request_json("POST", server.url + "/feedback", {"items": [{"prediction": 1}]})[0] == 400
    families = scrape(server)
    assert value(families, "model_requests", "model_requests_total", code="400") == 1
    assert value(families, "model_feedback", "model_feedback_total") == 0


def test_runtime_shift_is_applied_before_recording(server: ServerHandle) -> None:
    server.set_faults(shift={"rsi_14": 1000.0})
    predict(server, sample_batch(np.random.default_rng(6), 50).instances())
    families = scrape(server)
    assert value(families, "model_feature_out_of_range", "model_feature_out_of_range_total", feature="rsi_14") == 50
    rsi_buckets = buckets(families, "model_feature_value", feature="rsi_14")
    assert rsi_buckets[-1][1] - rsi_buckets[-2][1] == 50  # everything landed in +Inf


def test_identity_and_health(server: ServerHandle) -> None:
    assert request_json("GET", server.url + "/model") == (
        200,
        {"name": "next-day-returns", "version": "1.2.3", "revision": "r1"},
    )
    assert request_json("GET", server.url + "/healthz") == (200, {"status": "ok"})
    server.set_faults(fail_load=True)
    assert request_json("GET", server.url + "/healthz") == (503, {"status": "failed"})
    server.clear_faults()
    assert request_json("GET", server.url + "/healthz")[0] == 200
