"""Just enough of the training reference for the server to bin what it sees.

The operator validates references (``modelrollout.references``); the server
only reads the fields the metric contract needs, so the image stays free of
the operator's dependencies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model_server.model import FloatArray

# Used when the reference carries no prediction/performance section.
DEFAULT_PREDICTION_EDGES = (-0.02, -0.01, -0.005, -0.0025, 0.0, 0.0025, 0.005, 0.01, 0.02)
DEFAULT_ABS_ERROR_EDGES = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.5, 1.0)

# |z| beyond this (against the reference mean/std) counts as an outlier.
OUTLIER_Z = 4.0


@dataclass(frozen=True)
class NumericSpec:
    name: str
    edges: FloatArray
    mean: float
    std: float

    def out_of_range(self, values: FloatArray) -> int:
        return int(np.count_nonzero((values < self.edges[0]) | (values > self.edges[-1])))

    def outliers(self, values: FloatArray) -> int:
        if self.std <= 0:
            return 0
        return int(np.count_nonzero(np.abs(values - self.mean) > OUTLIER_Z * self.std))


@dataclass(frozen=True)
class CategoricalSpec:
    name: str
    categories: frozenset[str]


@dataclass(frozen=True)
class ServingReference:
    numeric: list[NumericSpec]
    categorical: list[CategoricalSpec]
    prediction_edges: FloatArray
    abs_error_edges: FloatArray
    model: dict[str, Any] = field(default_factory=dict)


def _edges(raw: Any) -> FloatArray:
    edges = np.asarray(raw, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be at least two finite, strictly increasing numbers: {raw!r}")
    return edges


def parse_reference(document: dict[str, Any]) -> ServingReference:
    numeric: list[NumericSpec] = []
    categorical: list[CategoricalSpec] = []
    for entry in document["features"]:
        if entry["type"] == "numeric":
            numeric.append(
                NumericSpec(
                    name=entry["name"],
                    edges=_edges(entry["edges"]),
                    mean=float(entry["mean"]),
                    std=float(entry["std"]),
                )
            )
        elif entry["type"] == "categorical":
            categorical.append(CategoricalSpec(name=entry["name"], categories=frozenset(entry["categories"])))
        else:
            raise ValueError(f"feature {entry.get('name')!r} has unknown type {entry['type']!r}")
    prediction = document.get("prediction")
    performance = document.get("performance") or {}
    return ServingReference(
        numeric=numeric,
        categorical=categorical,
        prediction_edges=_edges(prediction["edges"] if prediction else DEFAULT_PREDICTION_EDGES),
        abs_error_edges=_edges(performance.get("absErrorEdges") or DEFAULT_ABS_ERROR_EDGES),
        model=dict(document.get("model") or {}),
    )


def load_reference(path: Path) -> ServingReference:
    return parse_reference(json.loads(path.read_text(encoding="utf-8")))
