"""Guardrail evaluation: thresholds, relative-to-stable limits, the sequential proportion test, missing data."""

from __future__ import annotations

import pytest

from modelrollout.core.analysis import CANARY, STABLE, Missing, QueryKey, Target, evaluate, plan_queries
from tests.unit.core.sim import make_spec

TARGET = Target(namespace="ml", name="returns", canary_revision="c4n4ry", stable_revision="st4bl3", elapsed_seconds=90)


def spec_with(metrics: list[dict], breaker: list[dict] | None = None):
    return make_spec("2", analysis={"metrics": metrics}, circuitBreaker=breaker or [])


LATENCY = {
    "name": "p99",
    "query": 'q{revision="{{revision}}"}[{{window}}]',
    "max": 0.5,
    "relativeToStable": {"maxRatio": 1.2},
}
ERRORS = {
    "name": "errors",
    "proportion": {
        "errorsQuery": "e[{{elapsed}}]",
        "totalQuery": "t[{{elapsed}}]",
        "maxIncrease": 0.01,
        "minSamples": 200,
    },
}


def test_plan_renders_variables_per_revision() -> None:
    requests = plan_queries(spec_with([LATENCY, ERRORS]), TARGET, guardrails=True)
    keys = {r.key for r in requests}
    assert QueryKey("p99", CANARY) in keys
    assert QueryKey("p99", STABLE) in keys
    assert {QueryKey("errors", role, part) for role in (CANARY, STABLE) for part in ("errors", "total")} <= keys
    canary = next(r for r in requests if r.key == QueryKey("p99", CANARY))
    assert canary.variables["revision"] == "c4n4ry"
    assert canary.variables["elapsed"] == "90s"


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
        (Missing("NoData", "no series"), 0.2, "Inconclusive"),
        (0.2, Missing("Error", "connection refused"), "Inconclusive"),
        (float("nan"), 0.2, "Inconclusive"),
    ],
)
def test_threshold_and_relative_limits(canary, stable, verdict) -> None:
    answers = {QueryKey("p99", CANARY): canary, QueryKey("p99", STABLE): stable}
    result = evaluate(spec_with([LATENCY]), answers, {}, guardrails=True)
    assert result.verdict == verdict
    assert result.metrics[0].verdict == verdict


def proportion_answers(canary_errors: float, canary_total: float, stable_errors: float, stable_total: float):
    return {
        QueryKey("errors", CANARY, "errors"): canary_errors,
        QueryKey("errors", CANARY, "total"): canary_total,
        QueryKey("errors", STABLE, "errors"): stable_errors,
        QueryKey("errors", STABLE, "total"): stable_total,
    }


def test_proportion_test_fails_on_a_clear_increase() -> None:
    result = evaluate(spec_with([ERRORS]), proportion_answers(60, 400, 20, 4000), {}, guardrails=True)
    metric = result.metrics[0]
    assert metric.verdict == "Fail"
    assert metric.interval[0] > 0.01
    assert metric.value == pytest.approx(0.15)


def test_proportion_test_is_inconclusive_below_min_samples_and_passes_after() -> None:
    few = evaluate(spec_with([ERRORS]), proportion_answers(1, 50, 40, 4000), {}, guardrails=True)
    assert few.metrics[0].verdict == "Inconclusive"
    enough = evaluate(spec_with([ERRORS]), proportion_answers(4, 400, 40, 4000), {}, guardrails=True)
    assert enough.metrics[0].verdict == "Pass"


def test_proportion_confidence_sequence_is_intersected_across_looks() -> None:
    spec = spec_with([ERRORS])
    first = evaluate(spec, proportion_answers(4, 400, 40, 4000), {}, guardrails=True).metrics[0]
    second = evaluate(spec, proportion_answers(8, 800, 80, 8000), {"errors": first}, guardrails=True).metrics[0]
    assert second.interval[0] >= first.interval[0]
    assert second.interval[1] <= first.interval[1]
    assert second.p_value <= first.p_value


def test_low_traffic_noise_does_not_fail_the_proportion_test() -> None:
    """2 errors out of 200 against a 0.5% stable rate is noise, not evidence of a 1-point increase."""
    result = evaluate(spec_with([ERRORS]), proportion_answers(2, 200, 20, 4000), {}, guardrails=True)
    assert result.metrics[0].verdict == "Pass"


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


def test_a_canary_that_starts_failing_mid_way_fails_even_after_clean_looks() -> None:
    """Regression: the intersected sequence became empty once errors began, which read as a pass."""
    spec = spec_with([ERRORS])
    early = evaluate(spec, proportion_answers(1, 400, 4, 4000), {}, guardrails=True).metrics[0]
    assert early.verdict == "Pass"
    assert early.interval[1] < 0.05
    failing = evaluate(spec, proportion_answers(200, 1200, 8, 8000), {"errors": early}, guardrails=True).metrics[0]
    assert failing.verdict == "Fail"
    assert "changed" in failing.message
    assert failing.interval[0] > 0.02


def test_a_worse_looking_canary_is_held_not_passed_while_evidence_builds() -> None:
    """10% failures against none, after 100 trials: not yet significant, but never a pass."""
    result = evaluate(spec_with([ERRORS]), proportion_answers(10, 100, 0, 2000), {}, guardrails=True).metrics[0]
    assert result.verdict in ("Inconclusive", "Fail")
    more = evaluate(spec_with([ERRORS]), proportion_answers(30, 300, 0, 6000), {"errors": result}, guardrails=True)
    assert more.metrics[0].verdict == "Fail"
