"""Queries are limited to the resource's namespace when they run; naming another namespace is an answer
that says so, and nothing is sent to Prometheus for it."""

from __future__ import annotations

from modelrollout.core.queries import Missing, QueryKey, QueryRequest
from modelrollout.engine.querying import answer_all
from modelrollout.metrics.fake import FakeMetricSource

VARIABLES = {"namespace": "team-b", "revision": "r1", "window": "1m"}


def request(metric: str, template: str) -> QueryRequest:
    return QueryRequest(QueryKey(metric, "canary"), template, VARIABLES)


def test_a_query_runs_with_the_namespace_enforced_on_every_selector() -> None:
    source = FakeMetricSource(
        {'sum(rate(x{namespace="team-b",revision="r1"}[1m])) / sum(rate(y{namespace="team-b"}[1m]))': 0.5}
    )
    answers = answer_all(source, [request("m", 'sum(rate(x{revision="{{revision}}"}[{{window}}])) / sum(rate(y[1m]))')])
    assert answers[QueryKey("m", "canary")] == 0.5


def test_a_query_naming_another_namespace_is_answered_with_the_reason_and_never_sent() -> None:
    source = FakeMetricSource()
    answers = answer_all(source, [request("leak", 'sum(model_requests_total{namespace="team-a"})')])
    answer = answers[QueryKey("leak", "canary")]
    assert isinstance(answer, Missing)
    assert answer.kind == "Error"
    assert 'namespace="team-a"' in answer.message
    assert "own namespace (team-b)" in answer.message
    assert source.queries == []


def test_an_admin_may_allow_cross_namespace_queries() -> None:
    source = FakeMetricSource({'sum(model_requests_total{namespace="team-a"})': 7.0})
    answers = answer_all(
        source, [request("shared", 'sum(model_requests_total{namespace="team-a"})')], cross_namespace=True
    )
    assert answers[QueryKey("shared", "canary")] == 7.0
