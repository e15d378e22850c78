"""Every vector selector of a user's query is limited to its own namespace, or the query is refused."""

from __future__ import annotations

import promql_parser
import pytest

from modelrollout.metrics.scoping import ScopeError, scope

SCOPED = [
    ("up", 'up{namespace="b"}'),
    ("x{}", 'x{namespace="b"}'),
    ('x{a="b",}', 'x{namespace="b",a="b",}'),
    ('{__name__="up"}', '{namespace="b",__name__="up"}'),
    ('{"some.metric"}', '{namespace="b","some.metric"}'),
    (
        'sum(rate(model_requests_total{namespace="b",revision="r"}[5m])) or vector(0)',
        'sum(rate(model_requests_total{namespace="b",revision="r"}[5m])) or vector(0)',
    ),
    (
        'histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b"}[1m])))',
        'histogram_quantile(0.99, sum by (le) (rate(x_bucket{namespace="b",a="b"}[1m])))',
    ),
    ("max_over_time(rate(x[5m])[30m:1m])", 'max_over_time(rate(x{namespace="b"}[5m])[30m:1m])'),
    ("x[5m:]", 'x{namespace="b"}[5m:]'),
    ("x / on(a) group_left(b) y", 'x{namespace="b"} / on(a) group_left(b) y{namespace="b"}'),
    ("sum without (a) (x) > bool 0.5", 'sum without (a) (x{namespace="b"}) > bool 0.5'),
    ("sum(x) by (namespace)", 'sum(x{namespace="b"}) by (namespace)'),
    ("up offset 5m", 'up{namespace="b"} offset 5m'),
    ("up @ start()", 'up{namespace="b"} @ start()'),
    ('count_values("v", x)', 'count_values("v", x{namespace="b"})'),
    (
        'label_replace(up, "namespace", "a", "b", "(.*)")',
        'label_replace(up{namespace="b"}, "namespace", "a", "b", "(.*)")',
    ),
    ("x and on() y", 'x{namespace="b"} and on() y{namespace="b"}'),
    ("-x ^ 2", '-x{namespace="b"} ^ 2'),
    ("vector(1) + time() * inf", "vector(1) + time() * inf"),
    ('x # {namespace="a"}\n + y', 'x{namespace="b"} # {namespace="a"}\n + y{namespace="b"}'),
    ('x{a="\\"namespace=\\"a"}', 'x{namespace="b",a="\\"namespace=\\"a"}'),
    ("x{a=`raw`}", 'x{namespace="b",a=`raw`}'),
]


@pytest.mark.parametrize(("query", "expected"), SCOPED, ids=[q for q, _ in SCOPED])
def test_every_selector_gets_the_namespace_and_the_rest_of_the_query_is_untouched(query: str, expected: str) -> None:
    assert scope(query, "b") == expected


REFUSED = [
    ('sum(model_requests_total{namespace="a"})', 'namespace="a"'),
    ('x{"namespace"="a"}', 'namespace="a"'),
    ('x{namespace!="b"}', 'namespace!="b"'),
    ('x{namespace=~"b|a"}', 'namespace=~"b|a"'),
    ('x{namespace=~".+"}', 'namespace=~".+"'),
    ('x{namespace="b"} + y{namespace="a"}', 'namespace="a"'),
    ('rate(x{namespace="a"}[5m])', 'namespace="a"'),
    ('x{a="1" or namespace="a"}', "'or'"),
    ('x{namespace="b"} # c\r+ y{namespace="a"}', "control characters"),
    ("info(up)", "info()"),
    ("up{", "unbalanced"),
    ('up{a="x}', "never closed"),
    ('up{a=~"\\x41"} + x{namespace="\\x61"}', "escape"),
]


@pytest.mark.parametrize(("query", "said"), REFUSED, ids=[q for q, _ in REFUSED])
def test_a_query_that_reads_another_namespace_or_cannot_be_checked_is_refused_with_the_reason(
    query: str, said: str
) -> None:
    with pytest.raises(ScopeError) as refused:
        scope(query, "b")
    assert said in str(refused.value)


def test_a_query_naming_another_namespace_says_how_to_allow_it() -> None:
    with pytest.raises(ScopeError, match="only read their own namespace \\(b\\) unless the operator allows"):
        scope('sum(model_requests_total{namespace="a"})', "b")


@pytest.mark.parametrize(("query", "_"), SCOPED, ids=[q for q, _ in SCOPED])
def test_the_prometheus_grammar_sees_the_matcher_on_every_selector(query: str, _: str) -> None:
    selectors: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        promql_parser.parse(scope(query, "b")),
        lambda node: selectors.append(node) if isinstance(node, promql_parser.VectorSelector) else None,
    )
    for selector in selectors:
        assert [(m.name, m.value) for m in selector.matchers.matchers if m.name == "namespace"] == [("namespace", "b")]


def test_a_query_longer_than_the_limit_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(ScopeError, match="at most 16384"):
        scope("up + " * 5000 + "up", "b")


def test_the_refusal_quotes_a_long_namespace_value_cut_short() -> None:
    with pytest.raises(ScopeError) as refused:
        scope('x{namespace="' + "a" * 5000 + '"}', "b")
    assert len(str(refused.value)) < 300
