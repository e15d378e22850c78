"""Running a plan of PromQL queries: render with escaping, ask, and keep failures as answers, not exceptions."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from modelrollout.core.queries import Answer, Buckets, Missing, QueryKey, QueryRequest
from modelrollout.metrics.scoping import ScopeError, scope
from modelrollout.metrics.source import MetricSource, NoDataError, QueryError, Sample
from modelrollout.metrics.templates import TemplateError, render


def answer_all(
    source: MetricSource, requests: Iterable[QueryRequest], *, cross_namespace: bool = False
) -> Mapping[QueryKey, Answer]:
    """One answer per request. After Prometheus fails once, the rest of the plan is not sent: each query
    would wait for the same timeout, and the verdict (NoData) is already certain.

    Unless ``cross_namespace`` (an operator setting), every query is limited to the namespace of its
    ``{{namespace}}`` variable (the resource's); one that names another namespace is answered with an error
    saying so, and is never sent."""
    answers: dict[QueryKey, Answer] = {}
    outage: Missing | None = None
    for request in requests:
        if outage is not None:
            answers[request.key] = outage
            continue
        try:
            promql = render(request.template, request.variables)
            if not cross_namespace:
                promql = scope(promql, request.variables["namespace"])
        except TemplateError as error:
            answers[request.key] = Missing("Error", f"template: {error}")
            continue
        except ScopeError as error:
            answers[request.key] = Missing("Error", f"namespace: {error}"[:500])
            continue
        try:
            if request.shape == "buckets":
                answers[request.key] = _buckets(source.query_vector(promql))
            else:
                answers[request.key] = source.query_scalar(promql)
        except NoDataError as error:
            answers[request.key] = Missing("NoData", error.message)
        except QueryError as error:
            failure = Missing("Error", error.message)
            answers[request.key] = failure
            if _is_outage(error):
                outage = failure
    return answers


def _buckets(samples: list[Sample]) -> Buckets | Missing:
    """A cumulative histogram from one sample per ``le``; counts made monotone (scrapes can skew them)."""
    pairs: list[tuple[float, float]] = []
    for sample in samples:
        try:
            edge = float(sample.labels["le"])
        except (KeyError, ValueError):
            return Missing("Error", f"a histogram query must return one sample per 'le', got labels {sample.labels}")
        if math.isfinite(sample.value):
            pairs.append((edge, max(sample.value, 0.0)))
    if not pairs:
        return Missing("NoData", "no buckets")
    pairs.sort()
    if not math.isinf(pairs[-1][0]):
        return Missing("Error", 'a histogram query must include the le="+Inf" bucket')
    counts: list[float] = []
    for _, count in pairs:
        counts.append(max(count, counts[-1]) if counts else count)
    return Buckets(edges=tuple(e for e, _ in pairs), counts=tuple(counts))


def _is_outage(error: QueryError) -> bool:
    """A refused query (bad PromQL) is about that query; anything else is about Prometheus."""
    return error.status is None
