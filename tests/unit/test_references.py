"""Training references: building, validation, round trips, and agreement with the sample server."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError

from e2e.dataplane import DEFAULT_REFERENCE
from model_server.model import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from model_server.reference import parse_reference
from modelrollout.references import (
    REFERENCE_KEY,
    Binning,
    CategoricalFeature,
    ModelInfo,
    NumericFeature,
    Reference,
    bin_counts,
    bin_edges,
    build_reference,
    dumps_reference,
    loads_reference,
    render_configmap,
)


def columns(rng: np.random.Generator, rows: int = 1000) -> dict[str, list[str]]:
    x = rng.normal(size=rows)
    prediction = 0.5 * x
    target = x + rng.normal(size=rows)
    return {
        "x": [f"{v:.6f}" for v in x],
        "y": [f"{v:.6f}" for v in rng.exponential(size=rows)],
        "colour": rng.choice(["red", "green", "blue"], size=rows).tolist(),
        "prediction": [f"{v:.6f}" for v in prediction],
        "target": [f"{v:.6f}" for v in target],
    }


def test_numeric_columns_get_quantile_bins_holding_every_value() -> None:
    data = columns(np.random.default_rng(0))
    reference = build_reference(data, bins=10, prediction_column="prediction", target_column="target")

    x = reference.feature("x")
    assert isinstance(x, NumericFeature)
    values = np.array(data["x"], dtype=float)
    assert len(x.edges) == 11
    assert x.edges[0] < values.min() == x.min
    assert x.edges[-1] == values.max() == x.max
    assert x.counts == [100] * 10
    assert x.mean == pytest.approx(values.mean())
    assert x.std == pytest.approx(values.std())
    assert [f.name for f in reference.features] == ["x", "y", "colour"]


def test_non_numeric_columns_become_categorical_with_missing_cells_ignored() -> None:
    reference = build_reference({"c": ["a", "b", "a", "", "NA"], "n": ["1", "", "3", "nan", "2"]}, bins=2)
    colour = reference.feature("c")
    assert isinstance(colour, CategoricalFeature)
    assert (colour.categories, colour.counts) == (["a", "b"], [2, 1])
    assert reference.feature("n").total == 3


def test_prediction_and_performance_sections() -> None:
    data = columns(np.random.default_rng(1))
    reference = build_reference(data, prediction_column="prediction", target_column="target")
    assert reference.prediction is not None
    assert reference.prediction.name == "prediction"
    assert reference.performance is not None
    predictions, targets = np.array(data["prediction"], dtype=float), np.array(data["target"], dtype=float)
    accuracy = np.mean(predictions * targets > 0)
    assert reference.performance.baseline_directional_accuracy == pytest.approx(accuracy)
    assert reference.performance.baseline_mean_abs_error == pytest.approx(np.mean(np.abs(predictions - targets)))
    assert np.all(np.diff(reference.performance.abs_error_edges) > 0)


def test_uniform_binning_and_constant_columns() -> None:
    edges = bin_edges(np.array([0.0, 1.0, 2.0, 10.0]), 5, "uniform")
    assert edges[1:].tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]
    constant = bin_edges(np.array([3.0, 3.0]), 10)
    assert len(constant) == 2
    assert constant[0] < 3.0 < constant[1]


def test_heavy_ties_merge_quantile_edges() -> None:
    values = np.array([0.0] * 90 + list(range(1, 11)), dtype=float)
    edges = bin_edges(values, 10)
    assert np.all(np.diff(edges) > 0)
    assert sum(bin_counts(values, edges)) == 100


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 300), elements=st.floats(-1e6, 1e6, allow_nan=False)),
    st.integers(1, 20),
    st.sampled_from(["quantile", "uniform"]),
)
def test_edges_always_hold_every_value(values: np.ndarray, bins: int, binning: Binning) -> None:
    edges = bin_edges(values, bins, binning)
    feature = NumericFeature(
        name="v",
        edges=edges.tolist(),
        counts=bin_counts(values, edges),
        mean=float(values.mean()),
        std=float(values.std()),
        min=float(values.min()),
        max=float(values.max()),
    )
    assert feature.total == values.size
    assert len(feature.edges) <= bins + 1


def test_bin_counts_use_the_prometheus_le_convention() -> None:
    # (0, 1], (1, 2]: a value on an edge belongs to the bin it closes.
    assert bin_counts(np.array([1.0, 1.5, 2.0]), np.array([0.0, 1.0, 2.0])) == [1, 2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"edges": [0.0, 0.0, 1.0]}, "strictly increasing"),
        ({"edges": [0.0, float("inf")], "counts": [1]}, "finite"),
        ({"counts": [1]}, "need 2 counts"),
        ({"min": -5.0}, "within the edges"),
        ({"counts": [1, -1]}, "greater than or equal to 0"),
    ],
)
def test_numeric_feature_validation(change: dict[str, object], message: str) -> None:
    entry = {"name": "f", "edges": [0.0, 1.0, 2.0], "counts": [1, 1], "mean": 1, "std": 0.5, "min": 0.5, "max": 2}
    with pytest.raises(ValidationError, match=message):
        NumericFeature.model_validate(entry | change)


def test_reference_validation() -> None:
    categorical = {"name": "c", "type": "categorical", "categories": ["a"], "counts": [1]}
    with pytest.raises(ValidationError, match="duplicate features"):
        Reference.model_validate({"features": [categorical, categorical]})
    with pytest.raises(ValidationError, match="categories must be unique"):
        CategoricalFeature.model_validate(categorical | {"categories": ["a", "a"], "counts": [1, 1]})
    with pytest.raises(ValidationError):
        Reference.model_validate({"features": [categorical | {"type": "ordinal"}]})
    with pytest.raises(ValidationError):
        Reference.model_validate({"features": []})


def test_json_round_trip_uses_camel_case_and_accepts_snake_case() -> None:
    reference = build_reference(
        columns(np.random.default_rng(2)),
        prediction_column="prediction",
        target_column="target",
        model=ModelInfo(name="m", version="1", trainedAt="2026-01-01"),  # type: ignore[call-arg]
    )
    text = dumps_reference(reference)
    document = json.loads(text)
    assert "baselineDirectionalAccuracy" in document["performance"]
    assert document["model"]["trainedAt"] == "2026-01-01"
    assert loads_reference(text) == reference
    document["performance"] = {"baseline_mean_abs_error": 0.5}
    performance = Reference.model_validate(document).performance
    assert performance is not None
    assert performance.baseline_mean_abs_error == 0.5


def test_configmap_embeds_the_reference_json() -> None:
    reference = build_reference({"x": ["1", "2", "3"]}, bins=2)
    manifest = render_configmap(reference, name="ref", namespace="ml")
    assert manifest["kind"] == "ConfigMap"
    assert manifest["metadata"]["name"] == "ref"
    assert manifest["metadata"]["namespace"] == "ml"
    assert loads_reference(manifest["data"][REFERENCE_KEY]) == reference


def test_committed_sample_reference_is_valid_and_serves_the_model() -> None:
    reference = loads_reference(DEFAULT_REFERENCE.read_text())
    assert [f.name for f in reference.numeric_features] == list(NUMERIC_FEATURES)
    assert [f.name for f in reference.categorical_features] == list(CATEGORICAL_FEATURES)
    assert reference.prediction is not None
    assert reference.performance is not None
    serving = parse_reference(json.loads(DEFAULT_REFERENCE.read_text()))
    assert [spec.edges.tolist() for spec in serving.numeric] == [f.edges for f in reference.numeric_features]
    assert serving.prediction_edges.tolist() == reference.prediction.edges
