"""Injectable faults, settable at start-up and while the server runs.

A running test degrades a server through ``POST /admin/fault`` rather than
restarting it, so the controller under test sees a revision go bad in place,
as it would in production.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Faults:
    latency_ms: float = 0.0
    """Added to every /predict answer."""
    error_rate: float = 0.0
    """Fraction of /predict requests answered 500."""
    shift: Mapping[str, float] = field(default_factory=dict)
    """Feature -> additive shift applied to incoming values before they are recorded and predicted."""
    degrade: float = 0.0
    """Gaussian noise added to predictions, in units of the model's output scale."""
    fail_load: bool = False
    """The model never becomes healthy."""
    out_of_range: bool = False
    """Predictions are pushed outside [-1, 1]."""
    nan_output: bool = False
    """Predictions are NaN."""

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with ``changes`` applied; a null value resets that fault."""
        defaults = Faults()
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            values[name] = getattr(defaults, name) if value is None else _coerce(name, value)
        return dataclasses.replace(self, **values)

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "shift": dict(self.shift)}


def _coerce(name: str, value: Any) -> Any:
    if name in ("fail_load", "out_of_range", "nan_output"):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if name == "shift":
        if not isinstance(value, Mapping):
            raise ValueError("shift must map feature names to numbers")
        return {str(feature): _finite(f"shift.{feature}", amount) for feature, amount in value.items()}
    number = _finite(name, value)
    if number < 0 or (name == "error_rate" and number > 1):
        raise ValueError(f"{name} out of range: {number}")
    return number


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)
