"""FakeMetricSource behaves like a MetricSource, including its two kinds of failure."""

from __future__ import annotations

import math

import pytest

from modelrollout.metrics import FakeMetricSource, MetricSource, NoDataError, QueryError, Sample
from modelrollout.metrics.fake import UnexpectedQuery

RATE = 'sum(rate(errors{revision="2"}[1m]))'


def test_is_a_metric_source() -> None:
    source: MetricSource = FakeMetricSource()
    assert source.validate("up") is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (0.25, 0.25),
        (3, 3.0),
        ([Sample({"revision": "2"}, 0.5)], 0.5),
        (math.inf, math.inf),
    ],
)
def test_scalar_answers(answer, expected: float) -> None:
    assert FakeMetricSource({RATE: answer}).query_scalar(RATE) == expected


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (None, NoDataError),
        ([], NoDataError),
        (math.nan, NoDataError),
        (QueryError(RATE, "connection refused"), QueryError),
        ([Sample({"r": "1"}, 1.0), Sample({"r": "2"}, 2.0)], QueryError),
    ],
)
def test_scalar_failures(answer, error: type[Exception]) -> None:
    with pytest.raises(error):
        FakeMetricSource({RATE: answer}).query_scalar(RATE)


def test_vectors_and_no_data() -> None:
    series = [Sample({"revision": "1"}, 1.0), Sample({"revision": "2"}, 2.0)]
    source = FakeMetricSource({RATE: series, "absent": None})
    assert source.query_vector(RATE) == series
    assert source.query_vector("absent") == []


def test_a_handler_answers_by_query_and_changes_over_time() -> None:
    values = iter([1.0, 2.0])
    source = FakeMetricSource({RATE: lambda _: next(values)}, handler=lambda q: 7.0 if "stable" in q else None)
    assert [source.query_scalar(RATE), source.query_scalar(RATE)] == [1.0, 2.0]
    assert source.query_scalar('x{role="stable"}') == 7.0
    with pytest.raises(NoDataError):
        source.query_scalar('x{role="canary"}')


def test_answers_can_change_mid_test() -> None:
    source = FakeMetricSource({RATE: 1.0})
    source.fail(RATE, "timeout")
    with pytest.raises(QueryError, match="timeout"):
        source.query_scalar(RATE)
    source.no_data(RATE)
    with pytest.raises(NoDataError):
        source.query_scalar(RATE)
    source.set(RATE, 0.5)
    assert source.query_scalar(RATE) == 0.5


def test_unknown_queries_fail_loudly_unless_lenient() -> None:
    with pytest.raises(UnexpectedQuery, match="no answer prepared"):
        FakeMetricSource({RATE: 1.0}).query_scalar("typo")
    with pytest.raises(NoDataError):
        FakeMetricSource(strict=False).query_scalar("typo")


def test_records_queries_in_order() -> None:
    source = FakeMetricSource({"a": 1.0, "b": [Sample({}, 2.0)]}, invalid={"bad(": "unclosed left parenthesis"})
    source.query_scalar("a")
    source.query_vector("b")
    assert source.validate("bad(") == "unclosed left parenthesis"
    assert source.queries == ["a", "b"]
    assert [c.method for c in source.calls] == ["query_scalar", "query_vector", "validate"]


def test_samples_are_read_only_and_compare_by_value() -> None:
    sample = Sample({"a": "1"}, 1.0)
    assert sample == Sample({"a": "1"}, 1.0)
    with pytest.raises(TypeError):
        sample.labels["a"] = "2"
