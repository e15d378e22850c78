"""What a decision asks Prometheus and what comes back, shared by every kind.

The core modules plan queries as :class:`QueryRequest` values and read
:data:`Answer` values; the engine renders, runs and parses them. Keeping the
types here, apart from any one kind's logic, lets the canary analysis, the
drift monitor and the experiment share one query runner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Role = Literal["canary", "stable"]
CANARY: Role = "canary"
STABLE: Role = "stable"
TRAFFIC = "__traffic__"
"""The query key name of the analysis' traffic query (not a guardrail)."""


@dataclass(frozen=True, slots=True)
class QueryKey:
    """Names one number: a metric (or one of a proportion test's two queries) for one revision."""

    metric: str
    role: Role
    part: str = "value"


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """A PromQL template and its variables; the engine renders (escaping values) and runs it."""

    key: QueryKey
    template: str
    variables: Mapping[str, str]
    shape: Literal["scalar", "buckets"] = "scalar"
    """``buckets``: the answer is one sample per ``le`` label, read as a cumulative histogram."""


@dataclass(frozen=True, slots=True)
class Missing:
    """No number: ``NoData`` (the query matched nothing) or ``Error`` (Prometheus failed or is unreachable)."""

    kind: Literal["NoData", "Error"]
    message: str


@dataclass(frozen=True, slots=True)
class Buckets:
    """A cumulative histogram: counts of observations ``<= edge``, edges ascending, the last one ``+Inf``."""

    edges: tuple[float, ...]
    counts: tuple[float, ...]

    @property
    def total(self) -> float:
        return self.counts[-1] if self.counts else 0.0

    def at_or_below(self, edge: float) -> float:
        """Observations ``<= edge`` for an edge of this histogram (0 below the first)."""
        below = 0.0
        for bound, count in zip(self.edges, self.counts, strict=True):
            if bound > edge:
                break
            below = count
        return below

    def quantile(self, q: float) -> float:
        """The q-quantile by linear interpolation within a bucket, as PromQL's histogram_quantile does."""
        rank = q * self.total
        lower_edge, lower_count = 0.0, 0.0
        for bound, count in zip(self.edges, self.counts, strict=True):
            if count >= rank:
                if math.isinf(bound):
                    return lower_edge
                if count == lower_count:
                    return bound
                return lower_edge + (bound - lower_edge) * (rank - lower_count) / (count - lower_count)
            lower_edge, lower_count = bound, count
        return lower_edge


Answer = float | Buckets | Missing
