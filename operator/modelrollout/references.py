"""Training references: what "normal" looked like when the model was trained.

A reference holds, per feature, the histogram of the training data on fixed
edges. The model server bins live traffic on exactly these edges (see
``docs/metrics-contract.md``), so the DriftMonitor can compare the two
histograms bucket by bucket without ever seeing raw data.

Bin semantics follow Prometheus: bin ``i`` holds values in
``(edges[i], edges[i + 1]]``. The lowest edge sits strictly below the training
minimum so that every training value lands in a bin.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, Self, cast

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

REFERENCE_KEY = "reference.json"
"""Data key of the reference in its ConfigMap."""

PREDICTION_NAME = "prediction"

DEFAULT_BINS = 10
DEFAULT_ABS_ERROR_EDGES = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.5, 1.0)

# Cells that mean "no value" in a CSV; everything else must parse for a column to be numeric.
MISSING_CELLS = frozenset({"", "na", "nan", "null", "none"})

Binning = Literal["quantile", "uniform"]
FloatArray = npt.NDArray[np.float64]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")


def _check_edges(edges: Sequence[float], what: str) -> None:
    if len(edges) < 2:
        raise ValueError(f"{what}: need at least two edges")
    if not np.all(np.isfinite(edges)):
        raise ValueError(f"{what}: edges must be finite")
    if np.any(np.diff(edges) <= 0):
        raise ValueError(f"{what}: edges must be strictly increasing")


class NumericFeature(_Model):
    name: str = Field(min_length=1)
    type: Literal["numeric"] = "numeric"
    edges: list[float]
    counts: list[Annotated[int, Field(ge=0)]]
    mean: float
    std: float = Field(ge=0)
    min: float
    max: float

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_edges(self.edges, self.name)
        if len(self.counts) != len(self.edges) - 1:
            raise ValueError(f"{self.name}: {len(self.edges)} edges need {len(self.edges) - 1} counts")
        if not all(math.isfinite(v) for v in (self.mean, self.std, self.min, self.max)):
            raise ValueError(f"{self.name}: mean, std, min and max must be finite")
        if not self.edges[0] <= self.min <= self.max <= self.edges[-1]:
            raise ValueError(f"{self.name}: min and max must lie within the edges")
        return self

    @property
    def total(self) -> int:
        return sum(self.counts)


class CategoricalFeature(_Model):
    name: str = Field(min_length=1)
    type: Literal["categorical"] = "categorical"
    categories: list[str]
    counts: list[Annotated[int, Field(ge=0)]]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(self.categories) != len(self.counts):
            raise ValueError(f"{self.name}: categories and counts differ in length")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"{self.name}: categories must be unique")
        return self

    @property
    def total(self) -> int:
        return sum(self.counts)


Feature = Annotated[NumericFeature | CategoricalFeature, Field(discriminator="type")]


class ModelInfo(BaseModel):
    """Free-form identity of the model the reference was built for (name and version are conventional)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="allow")

    name: str | None = None
    version: str | None = None


class Performance(_Model):
    baseline_directional_accuracy: float | None = Field(default=None, ge=0, le=1)
    baseline_mean_abs_error: float | None = Field(default=None, ge=0)
    abs_error_edges: list[float] = Field(default_factory=lambda: list(DEFAULT_ABS_ERROR_EDGES))

    @model_validator(mode="after")
    def _edges(self) -> Self:
        _check_edges(self.abs_error_edges, "absErrorEdges")
        return self


class Reference(_Model):
    model: ModelInfo | None = None
    features: list[Feature] = Field(min_length=1)
    prediction: NumericFeature | None = None
    performance: Performance | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [feature.name for feature in self.features]
        duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
        if duplicates:
            raise ValueError(f"duplicate features: {duplicates}")
        return self

    def feature(self, name: str) -> NumericFeature | CategoricalFeature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    @property
    def numeric_features(self) -> list[NumericFeature]:
        return [f for f in self.features if isinstance(f, NumericFeature)]

    @property
    def categorical_features(self) -> list[CategoricalFeature]:
        return [f for f in self.features if isinstance(f, CategoricalFeature)]


# --- load and dump ---------------------------------------------------------------------------


def loads_reference(text: str | bytes) -> Reference:
    return Reference.model_validate_json(text)


def dumps_reference(reference: Reference) -> str:
    return reference.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"


def render_configmap(
    reference: Reference, *, name: str, namespace: str | None = None, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "modelrollout", **(labels or {})}}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {REFERENCE_KEY: dumps_reference(reference)},
    }


# --- building from training data -------------------------------------------------------------


def _parse_numeric(cells: Iterable[str] | FloatArray) -> FloatArray | None:
    """The column as floats (NaN where missing), or None if some cell is not a number.

    A float array is a column already parsed (the CLI's CSV reader, NaN where missing).
    """
    if isinstance(cells, np.ndarray):
        return np.where(np.isfinite(cells), cells, np.nan)
    values = []
    for cell in cells:
        if cell.lower() in MISSING_CELLS:
            values.append(math.nan)
            continue
        try:
            values.append(float(cell))
        except ValueError:
            return None
    array = np.asarray(values, dtype=float)
    array[~np.isfinite(array)] = np.nan
    return array


def bin_edges(values: FloatArray, bins: int, binning: Binning = "quantile") -> FloatArray:
    """Strictly increasing edges whose bins hold every value, lowest edge below the minimum.

    Quantile edges that coincide (heavy ties) are merged, so a column may get
    fewer bins than asked for.
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    low, high = float(np.min(values)), float(np.max(values))
    if low == high:
        pad = max(abs(low) * 1e-3, 1e-3)
        return np.array([low - pad, high + pad])
    if binning == "quantile":
        inner = np.quantile(values, np.linspace(0.0, 1.0, bins + 1))[1:-1]
    else:
        inner = np.linspace(low, high, bins + 1)[1:-1]
    # Interpolation noise (0.0063113939999999997) would end up in every le label; ten digits is plenty.
    inner = np.unique([float(f"{edge:.10g}") for edge in inner])
    inner = inner[(inner > low) & (inner < high)]
    below = low - (high - low) * 1e-3
    if not below < low:  # a range so small (subnormal) that the margin underflows
        below = float(np.nextafter(low, -np.inf))
    return np.concatenate([[below], inner, [high]])


def bin_counts(values: FloatArray, edges: FloatArray) -> list[int]:
    """Counts per bin ``(edges[i], edges[i + 1]]``, the Prometheus ``le`` convention."""
    index = np.searchsorted(edges, values, side="left")
    counts = np.bincount(index, minlength=edges.size + 1)
    return [int(count) for count in counts[1 : edges.size]]


def numeric_feature(name: str, values: FloatArray, bins: int, binning: Binning = "quantile") -> NumericFeature:
    present = values[np.isfinite(values)]
    if present.size == 0:
        raise ValueError(f"column {name!r} has no values")
    edges = bin_edges(present, bins, binning)
    return NumericFeature(
        name=name,
        edges=edges.tolist(),
        counts=bin_counts(present, edges),
        mean=float(np.mean(present)),
        std=float(np.std(present)),
        min=float(np.min(present)),
        max=float(np.max(present)),
    )


def categorical_feature(name: str, cells: Sequence[str]) -> CategoricalFeature:
    counts = Counter(cell for cell in cells if cell.lower() not in MISSING_CELLS)
    if not counts:
        raise ValueError(f"column {name!r} has no values")
    categories = sorted(counts)
    return CategoricalFeature(name=name, categories=categories, counts=[counts[c] for c in categories])


def performance_section(predictions: FloatArray, actuals: FloatArray, bins: int) -> Performance:
    """Baselines from in-sample predictions and realised targets; abs-error edges at error quantiles."""
    keep = np.isfinite(predictions) & np.isfinite(actuals)
    predictions, actuals = predictions[keep], actuals[keep]
    if predictions.size == 0:
        raise ValueError("no rows with both a prediction and a target")
    errors = np.abs(predictions - actuals)
    edges = np.unique(np.quantile(errors, np.linspace(0.0, 1.0, bins + 1))[1:])
    edges = edges[edges > 0]
    return Performance(
        baseline_directional_accuracy=float(np.mean(predictions * actuals > 0)),
        baseline_mean_abs_error=float(np.mean(errors)),
        abs_error_edges=edges.tolist() if edges.size >= 2 else list(DEFAULT_ABS_ERROR_EDGES),
    )


def build_reference(
    columns: Mapping[str, Sequence[str] | FloatArray],
    *,
    bins: int = DEFAULT_BINS,
    binning: Binning = "quantile",
    prediction_column: str | None = None,
    target_column: str | None = None,
    exclude: Iterable[str] = (),
    model: ModelInfo | None = None,
) -> Reference:
    """A reference from raw training columns: numeric columns are binned, others become categorical.

    The prediction and target columns are not features: the first becomes the
    ``prediction`` histogram and, with the second, the performance baselines.
    """
    for column in (prediction_column, target_column):
        if column is not None and column not in columns:
            raise ValueError(f"no column {column!r}; columns: {sorted(columns)}")
    skip = {*exclude, prediction_column, target_column}
    features: list[NumericFeature | CategoricalFeature] = []
    for name, cells in columns.items():
        if name in skip:
            continue
        values = _parse_numeric(cells)
        features.append(
            # values is None only for cells that are strings (a parsed float array is always numeric)
            categorical_feature(name, cast(Sequence[str], cells))
            if values is None
            else numeric_feature(name, values, bins, binning)
        )

    prediction = performance = None
    if prediction_column is not None:
        predictions = _require_numeric(columns, prediction_column)
        prediction = numeric_feature(PREDICTION_NAME, predictions, bins, binning)
        if target_column is not None:
            performance = performance_section(predictions, _require_numeric(columns, target_column), bins)
    elif target_column is not None:
        raise ValueError("a target column needs a prediction column to compute baselines")
    return Reference(model=model, features=features, prediction=prediction, performance=performance)


def _require_numeric(columns: Mapping[str, Sequence[str] | FloatArray], name: str) -> FloatArray:
    values = _parse_numeric(columns[name])
    if values is None:
        raise ValueError(f"column {name!r} must be numeric")
    return values
