"""The one interface the controllers read metrics through.

Two failures are kept apart on purpose, as Flagger does with its "no values found" sentinel:
``NoDataError`` means Prometheus answered and there is nothing to judge (no series yet, a NaN
from 0/0 before any traffic); ``QueryError`` means the question could not be asked or answered
(Prometheus down, a timeout, a bad query). The controller counts the first as inconclusive and
the second as an error, and neither is ever mistaken for a passing value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol


class MetricError(Exception):
    """Base of the errors metric sources raise."""

    def __init__(self, query: str, message: str) -> None:
        super().__init__(message)
        self.query = query
        """The PromQL that failed, as sent."""
        self.message = message
        """Why, in Prometheus' own words where it gave any."""


class NoDataError(MetricError):
    """The query ran and returned no series, or only NaN."""


class QueryError(MetricError):
    """The query could not be run: Prometheus unreachable, too slow, or refusing it."""

    def __init__(self, query: str, message: str, status: int | None = None) -> None:
        super().__init__(query, message)
        self.status = status
        """The HTTP status of the answer; None when no answer came (unreachable, timed out).

        None is an outage, and every other query would fail the same way; a status means this
        query was refused (400 bad_data, 422 execution) or its answer was unusable."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and its value at the evaluation time."""

    labels: Mapping[str, str] = field(hash=False)
    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))


class MetricSource(Protocol):
    """Instant queries against a Prometheus-compatible backend."""

    def query_scalar(self, promql: str) -> float:
        """One number: a scalar result or a vector of exactly one series.

        Raises ``NoDataError`` for no series or NaN, ``QueryError`` when the query fails or
        returns more than one series (the template does not aggregate as it should).
        """
        ...

    def query_vector(self, promql: str) -> list[Sample]:
        """Every series of an instant vector (possibly none); raises ``QueryError`` on failure."""
        ...

    def validate(self, promql: str) -> str | None:
        """Prometheus' parse error for ``promql``, or None when it parses.

        Raises ``QueryError`` when Prometheus cannot be asked: that says nothing about the query.
        """
        ...


def single_value(promql: str, samples: list[Sample]) -> float:
    """The value of the one sample a scalar query must return, with the errors ``query_scalar`` promises."""
    if not samples:
        raise NoDataError(promql, "no values found: the query returned no series")
    if len(samples) > 1:
        shown = ", ".join(_labels(s.labels) for s in samples[:3])
        message = f"expected one series, got {len(samples)} ({shown}); aggregate with sum() or by ()"
        raise QueryError(promql, message, status=200)
    value = samples[0].value
    if math.isnan(value):
        raise NoDataError(promql, "no values found: the query returned NaN (a ratio before any traffic?)")
    return value


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
