"""Guardrail evaluation: thresholds, relative limits, the rate and quantile tests, waiting versus missing data."""

from __future__ import annotations

import math

import pytest

from modelrollout.core.analysis import Target, evaluate, plan_queries
from modelrollout.core.queries import CANARY, STABLE, TRAFFIC, Buckets, Missing, QueryKey
from tests.unit.core.sim import make_spec

TARGET = Target(namespace="ml", name="returns", canary_revision="c4n4ry", stable_revision="st4bl3", elapsed_seconds=90)


def spec_with(metrics: list[dict], breaker: list[dict] | None = None, **analysis):
    return make_spec("2", analysis={"metrics": metrics, **analysis}, circuitBreaker=breaker or [])


LATENCY = {
    "name": "p99",
    "query": 'q{revision="{{revision}}"}[{{window}}]',
    "max": 0.5,
    "relativeToStable": {"maxRatio": 1.2},
}
ERRORS = {"name": "errors", "proportion": {"errorsQuery": "e[{{elapsed}}]", "totalQuery": "t[{{elapsed}}]"}}
P99 = {"name": "slow", "quantile": {"bucketsQuery": 'b{revision="{{revision}}"}', "quantile": 0.99, "maxRatio": 1.2}}
EDGES = (0.05, 0.1, 0.25, 0.5, 1.0, math.inf)


def test_plan_renders_variables_per_revision() -> None:
    requests = plan_queries(spec_with([LATENCY, ERRORS, P99]), TARGET, guardrails=True)
    keys = {r.key for r in requests}
    assert {QueryKey("p99", CANARY), QueryKey("p99", STABLE), QueryKey(TRAFFIC, CANARY)} <= keys
    assert {QueryKey("errors", role, part) for role in (CANARY, STABLE) for part in ("errors", "total")} <= keys
    canary = next(r for r in requests if r.key == QueryKey("p99", CANARY))
    assert canary.variables["revision"] == "c4n4ry"
    assert canary.variables["elapsed"] == "90s"
    assert {r.shape for r in requests if r.key.metric == "slow"} == {"buckets"}


def test_circuit_breakers_are_planned_even_when_the_step_skips_guardrails() -> None:
    spec = spec_with([LATENCY], breaker=[{"name": "storm", "query": "s", "max": 0.5}])
    assert [r.key for r in plan_queries(spec, TARGET, guardrails=False)] == [QueryKey("storm", CANARY)]


@pytest.mark.parametrize(
    ("canary", "stable", "verdict"),
    [
        (0.2, 0.2, "Pass"),
        (0.6, 0.6, "Fail"),  # absolute max
        (0.3, 0.2, "Fail"),  # 1.5 x stable
        (0.23, 0.2, "Pass"),  # within 1.2 x stable
        (Missing("NoData", "no series"), 0.2, "NoData"),
        (0.2, Missing("Error", "connection refused"), "NoData"),
        (float("nan"), 0.2, "NoData"),
    ],
)
def test_threshold_and_relative_limits(canary, stable, verdict) -> None:
    answers = {QueryKey("p99", CANARY): canary, QueryKey("p99", STABLE): stable}
    result = evaluate(spec_with([LATENCY]), answers, {}, guardrails=True)
    assert result.verdict == verdict
    assert result.metrics[0].verdict == verdict


def test_a_threshold_over_a_canary_without_requests_waits() -> None:
    """A ratio over a canary that has had no requests is NaN: that is not enough evidence, not missing data."""
    answers = {
        QueryKey("p99", CANARY): float("nan"),
        QueryKey("p99", STABLE): 0.2,
        QueryKey(TRAFFIC, CANARY): Missing("NoData", "no series"),
        QueryKey(TRAFFIC, STABLE): 900.0,
    }
    result = evaluate(spec_with([LATENCY]), answers, {}, guardrails=True)
    assert result.verdict == "Waiting"
    assert result.metrics[0].message == "no canary requests yet"


def test_empty_results_in_the_first_window_wait_but_errors_count() -> None:
    spec = spec_with([LATENCY], window="1m")
    empty = {QueryKey("p99", CANARY): Missing("NoData", "no series"), QueryKey("p99", STABLE): 0.2}
    assert evaluate(spec, empty, {}, guardrails=True, elapsed_seconds=20).verdict == "Waiting"
    assert evaluate(spec, empty, {}, guardrails=True, elapsed_seconds=90).verdict == "NoData"
    down = {QueryKey("p99", CANARY): Missing("Error", "connection refused"), QueryKey("p99", STABLE): 0.2}
    assert evaluate(spec, down, {}, guardrails=True, elapsed_seconds=20).verdict == "NoData"


def proportion_answers(canary_errors, canary_total, stable_errors, stable_total):
    return {
        QueryKey("errors", CANARY, "errors"): canary_errors,
        QueryKey("errors", CANARY, "total"): canary_total,
        QueryKey("errors", STABLE, "errors"): stable_errors,
        QueryKey("errors", STABLE, "total"): stable_total,
    }


def look(spec, answers, previous=None):
    return evaluate(spec, answers, {"errors": previous} if previous else {}, guardrails=True).metrics[0]


def test_a_clear_increase_fails_with_its_error_rate() -> None:
    metric = look(spec_with([ERRORS]), proportion_answers(60, 400, 20, 4000))
    assert metric.verdict == "Fail"
    assert metric.alpha == 0.05
    assert metric.p_value < 0.05
    assert metric.value == pytest.approx(0.15)
    assert metric.interval[0] > 0


def test_a_healthy_canary_waits_until_shown_within_the_margin_then_passes() -> None:
    spec = spec_with([ERRORS])
    few = look(spec, proportion_answers(1, 100, 200, 20_000))
    assert few.verdict == "Waiting"
    assert few.needed_samples > 1000
    assert "more canary requests" in few.message
    many = look(spec, proportion_answers(100, 10_000, 2000, 200_000), few)
    assert many.verdict == "Pass"
    assert many.needed_samples is None


def test_errors_without_a_series_count_as_zero_failures() -> None:
    """Prometheus has no series for a status code that never happened: that is zero, not missing data."""
    answers = proportion_answers(Missing("NoData", "none"), 400, Missing("NoData", "none"), 8000)
    metric = look(spec_with([ERRORS]), answers)
    assert metric.verdict in ("Waiting", "Pass")
    assert metric.value == 0


def test_a_canary_without_requests_waits_while_stable_has_traffic() -> None:
    answers = proportion_answers(Missing("NoData", "none"), Missing("NoData", "none"), 5, 500)
    metric = look(spec_with([ERRORS]), answers)
    assert metric.verdict == "Waiting"
    assert metric.message == "no canary requests yet"


def test_no_requests_anywhere_or_an_outage_is_no_data() -> None:
    nothing = proportion_answers(Missing("NoData", "none"), Missing("NoData", "none"), 0.0, 0.0)
    assert look(spec_with([ERRORS]), nothing).verdict == "NoData"
    down = proportion_answers(Missing("Error", "refused"), 10, 1, 100)
    assert look(spec_with([ERRORS]), down).verdict == "NoData"


def test_a_canary_failing_every_request_fails_against_a_perfect_stable() -> None:
    """Regression: a zero plug-in variance skipped the test, so 2,500 of 2,500 failures stayed undecided."""
    metric = look(spec_with([ERRORS]), proportion_answers(2500, 2500, 0, 47_500))
    assert metric.verdict == "Fail"


def test_the_floor_fails_at_once_without_statistics() -> None:
    metric = look(spec_with([ERRORS]), proportion_answers(10, 12, 0, 0.0 + 12))
    assert metric.verdict == "Fail"
    assert "floor" in metric.message


def test_the_harm_test_carries_its_evidence_across_looks() -> None:
    spec = spec_with([ERRORS])
    first = look(spec, proportion_answers(4, 100, 10, 2000))
    assert first.evidence is not None
    assert first.evidence.consumed == [4, 100, 10, 2000]
    assert first.evidence.looks == 1
    second = look(spec, proportion_answers(9, 200, 20, 4000), first)
    assert second.evidence.consumed == [9, 200, 20, 4000]
    assert second.p_value <= first.p_value


def test_failures_ahead_of_their_totals_wait_for_the_next_look() -> None:
    """Counters scraped at slightly different moments: a failure is never read without its request."""
    spec = spec_with([ERRORS])
    first = look(spec, proportion_answers(5, 2, 0, 100))
    assert first.evidence.consumed[0] == 2
    second = look(spec, proportion_answers(5, 10, 0, 200), first)
    assert second.evidence.consumed[:2] == [5, 10]


def test_a_canary_that_starts_failing_mid_way_fails_even_after_clean_looks() -> None:
    spec = spec_with([ERRORS])
    early = look(spec, proportion_answers(40, 10_000, 2000, 200_000))
    assert early.verdict == "Pass"
    failing = look(spec, proportion_answers(140, 10_200, 2004, 201_000), early)
    assert failing.verdict == "Fail"


def test_a_worse_looking_canary_is_never_passed_while_evidence_builds() -> None:
    result = look(spec_with([ERRORS]), proportion_answers(10, 100, 0, 2000))
    assert result.verdict in ("Waiting", "Fail")
    more = look(spec_with([ERRORS]), proportion_answers(30, 300, 0, 6000), result)
    assert more.verdict == "Fail"


def histogram(total: float, shares: tuple[float, ...]) -> Buckets:
    """A cumulative histogram over EDGES from the share of observations in each bucket."""
    counts, running = [], 0.0
    for share in shares:
        running += share * total
        counts.append(running)
    return Buckets(edges=EDGES, counts=tuple(counts))


FAST = (0.6, 0.3, 0.095, 0.004, 0.001, 0.0)  # p99 inside (0.1, 0.25]
SLOW = (0.0, 0.1, 0.3, 0.3, 0.2, 0.1)


def quantile_answers(canary: Buckets | Missing, stable: Buckets | Missing):
    return {QueryKey("slow", CANARY): canary, QueryKey("slow", STABLE): stable}


def test_quantile_waits_for_stable_then_passes_a_canary_like_stable() -> None:
    spec = spec_with([P99])
    early = evaluate(spec, quantile_answers(histogram(10, FAST), histogram(100, FAST)), {}, guardrails=True)
    assert early.metrics[0].verdict == "Waiting"
    assert "learning stable" in early.metrics[0].message
    answers = quantile_answers(histogram(5000, FAST), histogram(100_000, FAST))
    metric = evaluate(spec, answers, {}, guardrails=True).metrics[0]
    assert metric.verdict == "Pass"
    assert metric.evidence.limit == 0.5  # first edge >= 1.2 x stable's p99
    assert metric.stable_value == pytest.approx(0.25 - 0.15 * (0.005 / 0.095), rel=1e-3)


def test_quantile_fails_a_slow_canary_fast() -> None:
    spec = spec_with([P99])
    metric = evaluate(spec, quantile_answers(histogram(20, SLOW), histogram(50_000, FAST)), {}, guardrails=True)
    assert metric.metrics[0].verdict == "Fail"
    assert metric.proven_failure


def test_quantile_without_canary_observations_waits() -> None:
    spec = spec_with([P99])
    answers = quantile_answers(Missing("NoData", "none"), histogram(50_000, FAST))
    assert evaluate(spec, answers, {}, guardrails=True).metrics[0].verdict == "Waiting"


def test_tripped_circuit_breaker_fails_the_evaluation() -> None:
    spec = spec_with([LATENCY], breaker=[{"name": "storm", "query": "s", "max": 0.5}])
    answers = {QueryKey("p99", CANARY): 0.1, QueryKey("p99", STABLE): 0.1, QueryKey("storm", CANARY): 0.9}
    result = evaluate(spec, answers, {}, guardrails=True)
    assert result.verdict == "Fail"
    assert [m.name for m in result.tripped] == ["storm"]


def test_missing_breaker_data_does_not_trip() -> None:
    spec = spec_with([LATENCY], breaker=[{"name": "storm", "query": "s", "max": 0.5}])
    answers = {QueryKey("storm", CANARY): Missing("NoData", "none")}
    assert evaluate(spec, answers, {}, guardrails=False).tripped == ()
