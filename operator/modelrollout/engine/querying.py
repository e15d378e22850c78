"""Running a plan of PromQL queries: render with escaping, ask, and keep failures as answers, not exceptions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from modelrollout.core.analysis import Answer, Missing, QueryKey, QueryRequest
from modelrollout.metrics.scoping import ScopeError, scope
from modelrollout.metrics.source import MetricSource, NoDataError, QueryError
from modelrollout.metrics.templates import TemplateError, render


def answer_all(
    source: MetricSource, requests: Iterable[QueryRequest], *, cross_namespace: bool = False
) -> Mapping[QueryKey, Answer]:
    """One answer per request. After Prometheus fails once, the rest of the plan is not sent: each query
    would wait for the same timeout, and the verdict (Inconclusive) is already certain.

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
            answers[request.key] = Missing("Error", f"namespace: {error}")
            continue
        try:
            answers[request.key] = source.query_scalar(promql)
        except NoDataError as error:
            answers[request.key] = Missing("NoData", error.message)
        except QueryError as error:
            failure = Missing("Error", error.message)
            answers[request.key] = failure
            if _is_outage(error):
                outage = failure
    return answers


def _is_outage(error: QueryError) -> bool:
    """A refused query (bad PromQL) is about that query; anything else is about Prometheus."""
    return error.status is None
