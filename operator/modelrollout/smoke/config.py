"""What to check: golden inputs and the thresholds for shape, range and latency."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GoldenInputs:
    """Known-good instances and, optionally, the predictions they must produce."""

    instances: tuple[dict[str, Any], ...]
    expected: tuple[float, ...] | None = None
    tolerance: float = 1e-6

    def __post_init__(self) -> None:
        if not self.instances:
            raise ValueError("golden inputs need at least one instance")
        if self.expected is not None and len(self.expected) != len(self.instances):
            raise ValueError(f"{len(self.expected)} expected predictions for {len(self.instances)} instances")
        if not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise ValueError("tolerance must be a finite number >= 0")

    @classmethod
    def from_document(cls, document: Any) -> GoldenInputs:
        if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
            raise ValueError('golden inputs must be {"instances": [...], "expected": [...], "tolerance": t}')
        instances = document["instances"]
        if not all(isinstance(instance, dict) for instance in instances):
            raise ValueError("every golden instance must be a JSON object")
        expected = document.get("expected")
        if expected is not None and not (isinstance(expected, list) and all(_is_number(value) for value in expected)):
            raise ValueError("expected must be a list of numbers")
        tolerance = document.get("tolerance")
        if tolerance is not None and not _is_number(tolerance):
            raise ValueError("tolerance must be a number")
        return cls(
            instances=tuple(instances),
            expected=None if expected is None else tuple(float(value) for value in expected),
            tolerance=1e-6 if tolerance is None else float(tolerance),
        )

    def payload(self, instances: tuple[dict[str, Any], ...] | None = None) -> bytes:
        return json.dumps({"instances": list(self.instances if instances is None else instances)}).encode()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_golden(path: Path) -> GoldenInputs:
    """Golden inputs from a JSON file; ``OSError`` or ``ValueError`` if unusable."""
    return GoldenInputs.from_document(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class SmokeConfig:
    golden: GoldenInputs | None = None
    """Without golden inputs only ``loads`` runs; the other checks are skipped."""
    expect_shape: int | None = None
    """Width of each prediction: None or 1 means a scalar per instance, N a list of N numbers."""
    min_value: float | None = None
    max_value: float | None = None
    latency_budget_ms: float | None = None
    """p95 budget; None skips the latency check."""
    latency_requests: int = 20
    """Single-instance requests timed for the latency percentile."""
    latency_percentile: float = 95.0
    load_timeout_seconds: float = 60.0
    """How long ``loads`` polls the health endpoint for a 200."""
    poll_interval_seconds: float = 0.5
    request_timeout_seconds: float = 10.0
    health_path: str = "/healthz"
    predict_path: str = "/predict"

    def __post_init__(self) -> None:
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise ValueError(f"min {self.min_value} is above max {self.max_value}")
        if self.expect_shape is not None and self.expect_shape < 1:
            raise ValueError("expect_shape must be at least 1")
        if self.latency_requests < 1:
            raise ValueError("latency_requests must be at least 1")
        if not 0 < self.latency_percentile <= 100:
            raise ValueError("latency_percentile must be in (0, 100]")
        positive = (self.load_timeout_seconds, self.poll_interval_seconds, self.request_timeout_seconds)
        if any(value <= 0 for value in positive) or (
            self.latency_budget_ms is not None and self.latency_budget_ms <= 0
        ):
            raise ValueError("timeouts, poll interval and latency budget must be positive")
