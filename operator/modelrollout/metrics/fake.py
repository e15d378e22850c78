"""A MetricSource for tests, shipped with the package like httpx's MockTransport.

Controllers' unit tests give it the answers Prometheus would give (a number, some series, no
data, a failure) by exact query string or through a function of the query, then assert on the
queries it recorded. By default a query nobody prepared an answer for fails the test loudly
(``UnexpectedQuery``) instead of passing as "no data", so a typo in a template cannot hide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from modelrollout.metrics.source import MetricError, NoDataError, QueryError, Sample, single_value

Answer = float | Sequence[Sample] | MetricError | None
"""A number (one series without labels), series, an error to raise, or None for no data."""
Handler = Callable[[str], Answer]


class UnexpectedQuery(AssertionError):  # noqa: N818 - reads like pytest's own failures
    """A strict fake was asked a query it has no answer for."""


@dataclass(frozen=True)
class Call:
    """One call the fake received."""

    method: str
    promql: str


class FakeMetricSource:
    """Answers queries from a table and an optional handler; records every call."""

    def __init__(
        self,
        answers: Mapping[str, Answer | Handler] | None = None,
        *,
        handler: Handler | None = None,
        invalid: Mapping[str, str] | None = None,
        strict: bool = True,
    ) -> None:
        self.answers: dict[str, Answer | Handler] = dict(answers or {})
        """Exact query -> answer (or a function of the query); looked up before ``handler``."""
        self.handler = handler
        """Answers every query the table does not have."""
        self.invalid: dict[str, str] = dict(invalid or {})
        """Query -> the parse error ``validate`` reports; every other query parses."""
        self.strict = strict
        """When False, unknown queries have no data instead of failing the test."""
        self.calls: list[Call] = []

    @property
    def queries(self) -> list[str]:
        """The queries run so far (scalar and vector), in order."""
        return [c.promql for c in self.calls if c.method != "validate"]

    def set(self, promql: str, answer: Answer | Handler) -> None:
        """Answer ``promql`` with ``answer`` from now on."""
        self.answers[promql] = answer

    def no_data(self, promql: str) -> None:
        """``promql`` returns no series from now on."""
        self.answers[promql] = None

    def fail(self, promql: str, message: str = "connection refused", status: int | None = None) -> None:
        """``promql`` fails from now on: as if Prometheus were unreachable, or refusing it with ``status``."""
        self.answers[promql] = QueryError(promql, message, status)

    def query_scalar(self, promql: str) -> float:
        self.calls.append(Call("query_scalar", promql))
        return single_value(promql, self._samples(promql))

    def query_vector(self, promql: str) -> list[Sample]:
        self.calls.append(Call("query_vector", promql))
        try:
            return self._samples(promql)
        except NoDataError:
            return []

    def validate(self, promql: str) -> str | None:
        self.calls.append(Call("validate", promql))
        return self.invalid.get(promql)

    def _samples(self, promql: str) -> list[Sample]:
        answer = self._answer(promql)
        if isinstance(answer, MetricError):
            raise answer
        if answer is None:
            raise NoDataError(promql, "no values found: the query returned no series")
        if isinstance(answer, int | float):
            return [Sample({}, float(answer))]
        return list(answer)

    def _answer(self, promql: str) -> Answer:
        if promql in self.answers:
            found = self.answers[promql]
            return found(promql) if callable(found) else found
        if self.handler is not None:
            return self.handler(promql)
        if self.strict:
            known = "\n  ".join(sorted(self.answers)) or "(none)"
            raise UnexpectedQuery(f"no answer prepared for query:\n  {promql}\nprepared:\n  {known}")
        raise NoDataError(promql, "no values found: the query returned no series")
