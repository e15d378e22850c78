"""Guardrail analysis: which queries a step needs, and what their answers mean.

Two pure halves around the one piece of I/O: :func:`plan_queries` says what to
ask Prometheus, the engine asks, and :func:`evaluate` turns the answers into
verdicts. Four outcomes are kept apart, because they call for different
actions:

* ``Fail``: evidence of harm (or a threshold crossed): roll back.
* ``Pass``: evidence of safety (or every threshold met): the step may end.
* ``Waiting``: not enough evidence yet, including a canary that has had no
  requests while stable has: hold the step, never count it against the canary.
* ``NoData``: the queries gave nothing usable (an empty or NaN result,
  Prometheus down or refusing): counted toward ``noDataLimit``. Missing data
  never passes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelrollout.api.base import duration_seconds, format_duration
from modelrollout.api.modeldeployment import (
    GuardrailMetric,
    MetricResult,
    ModelDeploymentSpec,
    ProportionTest,
    QuantileTest,
    SequentialEvidence,
    Verdict,
)
from modelrollout.core.queries import CANARY, STABLE, TRAFFIC, Answer, Buckets, Missing, QueryKey, QueryRequest, Role
from modelrollout.stats.canary import (
    CANARY_ALPHA_SHARE,
    HarmEvidence,
    RateCounts,
    baseline_rate,
    compare_rates,
    one_sample_log_e_value,
    rate_bound,
    trials_to_pass,
    update_harm,
)

QUANTILE_BASELINE_TAIL = 20.0
"""A quantile's baseline is frozen once stable has this many observations expected above it."""


@dataclass(frozen=True, slots=True)
class Target:
    """Who is measured: the revisions' label values and where they run."""

    namespace: str
    name: str
    canary_revision: str
    stable_revision: str | None
    elapsed_seconds: float


@dataclass(frozen=True, slots=True)
class Traffic:
    """Requests each revision served since the canary started, when the traffic query said so."""

    canary: float | None = None
    stable: float | None = None

    @property
    def canary_idle(self) -> bool:
        """The canary has had no requests while stable has: a reason to wait, not a lack of data."""
        return not self.canary and bool(self.stable)


@dataclass(frozen=True, slots=True)
class AnalysisOutcome:
    """The verdict of one evaluation and the evidence behind it."""

    verdict: Verdict
    metrics: tuple[MetricResult, ...]
    tripped: tuple[MetricResult, ...]
    """Circuit-breaker metrics over their limit: abort at once."""
    traffic: Traffic = field(default_factory=Traffic)

    @property
    def proven_failure(self) -> bool:
        """A statistical guardrail failed: its test already accounts for noise, so no failure limit applies."""
        return any(m.verdict == "Fail" and m.alpha is not None for m in self.metrics)


def _variables(spec: ModelDeploymentSpec, target: Target, revision: str) -> dict[str, str]:
    return {
        "revision": revision,
        "namespace": target.namespace,
        "name": target.name,
        "window": spec.analysis.window,
        "elapsed": format_duration(max(target.elapsed_seconds, 1.0)),
    }


def plan_queries(spec: ModelDeploymentSpec, target: Target, *, guardrails: bool) -> list[QueryRequest]:
    """Every query one evaluation needs; guardrails (and the traffic query) only when the step asks for analysis."""
    canary = _variables(spec, target, target.canary_revision)
    stable = _variables(spec, target, target.stable_revision) if target.stable_revision else None
    requests = [QueryRequest(QueryKey(m.name, CANARY), m.query, canary) for m in spec.circuit_breaker]
    if not guardrails:
        return requests
    roles: list[tuple[Role, dict[str, str]]] = [(CANARY, canary)] + ([(STABLE, stable)] if stable else [])
    for role, variables in roles:
        requests.append(QueryRequest(QueryKey(TRAFFIC, role), spec.analysis.traffic_query, variables))
    for metric in spec.analysis.metrics:
        if metric.proportion is not None:
            for role, variables in roles:
                requests.append(
                    QueryRequest(QueryKey(metric.name, role, "errors"), metric.proportion.errors_query, variables)
                )
                requests.append(
                    QueryRequest(QueryKey(metric.name, role, "total"), metric.proportion.total_query, variables)
                )
        elif metric.quantile is not None:
            for role, variables in roles:
                requests.append(
                    QueryRequest(QueryKey(metric.name, role), metric.quantile.buckets_query, variables, "buckets")
                )
        else:
            assert metric.query is not None  # the model's rules guarantee exactly one kind
            requests.append(QueryRequest(QueryKey(metric.name, CANARY), metric.query, canary))
            if metric.relative_to_stable is not None and stable is not None:
                requests.append(QueryRequest(QueryKey(metric.name, STABLE), metric.query, stable))
    return requests


def evaluate(
    spec: ModelDeploymentSpec,
    answers: Mapping[QueryKey, Answer],
    previous: Mapping[str, MetricResult],
    *,
    guardrails: bool,
    elapsed_seconds: float = math.inf,
    step: int | None = None,
) -> AnalysisOutcome:
    """Turn answers into verdicts. ``previous`` carries each sequential test's running state.

    Within the first analysis window of the canary an empty result is not yet
    missing data: counters and rate windows need a few scrapes to have values.
    """
    tripped = tuple(
        result
        for result in (_critical(m.name, m.max, answers.get(QueryKey(m.name, CANARY))) for m in spec.circuit_breaker)
        if result.verdict == "Fail"
    )
    traffic = Traffic(
        canary=_count(answers.get(QueryKey(TRAFFIC, CANARY))), stable=_count(answers.get(QueryKey(TRAFFIC, STABLE)))
    )
    results: list[MetricResult] = []
    if guardrails:
        for metric in spec.analysis.metrics:
            if metric.proportion is not None:
                results.append(_proportion(metric.name, metric.proportion, answers, previous.get(metric.name), step))
            elif metric.quantile is not None:
                results.append(_quantile(metric.name, metric.quantile, answers, previous.get(metric.name)))
            else:
                results.append(_threshold(metric, answers, traffic))
    if elapsed_seconds < duration_seconds(spec.analysis.window):
        results = [_early(r, answers) for r in results]
    verdicts = {r.verdict for r in results}
    order: tuple[Verdict, ...] = ("Fail", "NoData", "Waiting")
    verdict: Verdict = "Fail" if tripped else next((v for v in order if v in verdicts), "Pass")
    return AnalysisOutcome(verdict=verdict, metrics=tuple(results), tripped=tripped, traffic=traffic)


def _early(result: MetricResult, answers: Mapping[QueryKey, Answer]) -> MetricResult:
    """An empty result in the canary's first window waits; a Prometheus error still counts as missing data."""
    if result.verdict != "NoData":
        return result
    failed = any(
        isinstance(answer, Missing) and answer.kind == "Error"
        for key, answer in answers.items()
        if key.metric == result.name
    )
    if failed:
        return result
    return result.model_copy(update={"verdict": "Waiting", "message": f"no data yet: {result.message}"})


def _count(answer: Answer | None) -> float | None:
    """A request count: an empty result is zero requests; an error or a histogram is unknown."""
    if isinstance(answer, Missing):
        return 0.0 if answer.kind == "NoData" else None
    if isinstance(answer, float | int) and math.isfinite(answer):
        return max(float(answer), 0.0)
    return None


def _number(name: str, answer: Answer | None, who: str) -> float | MetricResult:
    """The answer as a finite number, or the NoData result that explains why there is none."""
    if answer is None:
        return MetricResult(name=name, verdict="NoData", message=f"{who}: not queried")
    if isinstance(answer, Missing):
        return MetricResult(name=name, verdict="NoData", message=f"{who}: {answer.kind}: {answer.message}")
    if isinstance(answer, Buckets):
        return MetricResult(name=name, verdict="NoData", message=f"{who}: a histogram where a number was expected")
    if not math.isfinite(answer):
        return MetricResult(name=name, verdict="NoData", message=f"{who}: value is {answer}")
    return float(answer)


def _critical(name: str, limit: float, answer: Answer | None) -> MetricResult:
    value = _number(name, answer, "canary")
    if isinstance(value, MetricResult):
        return value
    verdict: Verdict = "Fail" if value > limit else "Pass"
    return MetricResult(name=name, verdict=verdict, value=value, limit=f"<= {limit:g}")


def _threshold(metric: GuardrailMetric, answers: Mapping[QueryKey, Answer], traffic: Traffic) -> MetricResult:
    canary = _number(metric.name, answers.get(QueryKey(metric.name, CANARY)), "canary")
    if isinstance(canary, MetricResult):
        if traffic.canary_idle:
            return canary.model_copy(update={"verdict": "Waiting", "message": "no canary requests yet"})
        return canary
    limits: list[str] = []
    failures: list[str] = []
    if metric.max is not None:
        limits.append(f"<= {metric.max:g}")
        if canary > metric.max:
            failures.append(f"{canary:.4g} > max {metric.max:g}")
    if metric.min is not None:
        limits.append(f">= {metric.min:g}")
        if canary < metric.min:
            failures.append(f"{canary:.4g} < min {metric.min:g}")
    stable_value: float | None = None
    relative = metric.relative_to_stable
    if relative is not None:
        stable = _number(metric.name, answers.get(QueryKey(metric.name, STABLE)), "stable")
        if isinstance(stable, MetricResult):
            return stable.model_copy(update={"value": canary})
        stable_value = stable
        if relative.max_ratio is not None:
            bound = stable * relative.max_ratio
            limits.append(f"<= {relative.max_ratio:g} x stable = {bound:.4g}")
            if canary > bound:
                failures.append(f"{canary:.4g} > {relative.max_ratio:g} x stable {stable:.4g}")
        if relative.min_ratio is not None:
            bound = stable * relative.min_ratio
            limits.append(f">= {relative.min_ratio:g} x stable = {bound:.4g}")
            if canary < bound:
                failures.append(f"{canary:.4g} < {relative.min_ratio:g} x stable {stable:.4g}")
    return MetricResult(
        name=metric.name,
        verdict="Fail" if failures else "Pass",
        value=canary,
        stable_value=stable_value,
        limit=", ".join(limits),
        message="; ".join(failures) or None,
    )


def _tally(name: str, answers: Mapping[QueryKey, Answer], role: Role, part: str) -> float | Missing:
    """One count of a proportion test: empty or NaN is zero; an error stays missing."""
    answer = answers.get(QueryKey(name, role, part))
    if answer is None:
        return Missing("Error", f"{role} {part}: not queried")
    if isinstance(answer, Missing):
        return 0.0 if answer.kind == "NoData" else Missing(answer.kind, f"{role} {part}: {answer.message}")
    if isinstance(answer, Buckets):
        return Missing("Error", f"{role} {part}: a histogram where a count was expected")
    return max(float(answer), 0.0) if math.isfinite(answer) else 0.0


def _proportion(
    name: str,
    test: ProportionTest,
    answers: Mapping[QueryKey, Answer],
    previous: MetricResult | None,
    step: int | None,
) -> MetricResult:
    """Failure rates of canary and stable: harm test, floor and safety bound (see :mod:`modelrollout.stats.canary`).

    A missing failure series means no failures (Prometheus has no series for a
    code that never happened); missing totals on both sides mean no data; a
    canary with no requests while stable has some is simply waiting.
    """
    tallies = {
        (role, part): _tally(name, answers, role, part) for role in (CANARY, STABLE) for part in ("errors", "total")
    }
    errors = [t for t in tallies.values() if isinstance(t, Missing)]
    if errors:
        return MetricResult(name=name, verdict="NoData", message=f"{errors[0].kind}: {errors[0].message}")
    values = {key: float(t) for key, t in tallies.items() if not isinstance(t, Missing)}
    counts = RateCounts(
        canary_bad=values[CANARY, "errors"],
        canary_trials=values[CANARY, "total"],
        stable_bad=values[STABLE, "errors"],
        stable_trials=values[STABLE, "total"],
    ).clamped()
    if counts.stable_trials <= 0:
        if counts.canary_trials <= 0:
            return MetricResult(name=name, verdict="NoData", message="no requests on either revision")
        return MetricResult(name=name, verdict="NoData", message="stable has no requests to compare with")
    evidence = _carried(previous)
    new_step = evidence.step is not None and step is not None and step != evidence.step
    harm = update_harm(_harm_of(evidence), counts, test.max_ratio, new_step=new_step)
    baseline = evidence.baseline
    if baseline is None:
        baseline = baseline_rate(counts.stable_bad, counts.stable_trials)
    reading = compare_rates(
        harm, counts, prior_rate=baseline, max_ratio=test.max_ratio, max_increase=test.max_increase, alpha=test.alpha
    )
    verdict: Verdict = reading.verdict
    floor = test.floor
    rate = reading.canary_rate
    if counts.canary_bad >= floor.min_failures and rate is not None and rate >= floor.max_rate:
        verdict = "Fail"
        message: str | None = f"{counts.canary_bad:.0f} canary failures at a rate of {rate:.3g} (floor)"
    elif verdict == "Fail":
        message = (
            f"failure rate {_rate(rate)} vs stable {_rate(reading.stable_rate)}: more than {test.max_ratio:g} x "
            f"stable with evidence (p = {reading.p_value:.2g})"
        )
    elif verdict == "Pass":
        message = None
    elif counts.canary_trials <= 0:
        message = "no canary requests yet"
    elif reading.margin is None:
        message = "learning stable's failure rate"
    else:
        message = f"failure rate {_rate(rate)} vs stable {_rate(reading.stable_rate)}: {_needs(reading.needed)}"
    margin = f" = {reading.margin:.4g}" if reading.margin is not None else ""
    return MetricResult(
        name=name,
        verdict=verdict,
        value=rate,
        stable_value=reading.stable_rate,
        limit=f"canary <= {test.max_ratio:g} x stable + {test.max_increase:g}{margin}",
        p_value=reading.p_value,
        interval=[reading.interval[0], reading.interval[1]],
        alpha=test.alpha,
        canary_samples=counts.canary_trials,
        stable_samples=counts.stable_trials,
        needed_samples=reading.needed,
        evidence=_evidence_of(harm, baseline, step),
        message=message,
    )


def _quantile(
    name: str, test: QuantileTest, answers: Mapping[QueryKey, Answer], previous: MetricResult | None
) -> MetricResult:
    """The canary's quantile against a limit set from stable's: exact one-sample tests on exceedances.

    The limit (``maxRatio`` x stable's quantile + ``maxIncrease``, rounded up to
    a bucket edge so exceedances can be counted) is frozen once stable has
    enough observations; the canary's quantile is within it exactly when at
    most ``1 - quantile`` of its observations exceed it.
    """
    canary, stable = answers.get(QueryKey(name, CANARY)), answers.get(QueryKey(name, STABLE))
    if not isinstance(stable, Buckets) or stable.total <= 0:
        why = stable.message if isinstance(stable, Missing) else "no observations"
        return MetricResult(name=name, verdict="NoData", message=f"stable: {why}")
    if isinstance(canary, Missing) and canary.kind == "Error":
        return MetricResult(name=name, verdict="NoData", message=f"canary: {canary.message}")
    evidence = _carried(previous)
    tail = 1.0 - test.quantile
    stable_quantile = stable.quantile(test.quantile)
    if evidence.limit is None:
        if stable.total * tail < QUANTILE_BASELINE_TAIL:
            return MetricResult(
                name=name,
                verdict="Waiting",
                stable_value=stable_quantile,
                stable_samples=stable.total,
                message=f"learning stable's quantile ({stable.total:.0f} observations)",
            )
        target = test.max_ratio * stable_quantile + test.max_increase
        edge = next((e for e in stable.edges if e >= target and math.isfinite(e)), None)
        if edge is None:
            return MetricResult(
                name=name,
                verdict="Waiting",
                stable_value=stable_quantile,
                message=f"the histogram's largest finite bucket is below the limit {target:.4g}: add buckets",
            )
        evidence = SequentialEvidence(
            baseline=baseline_rate(stable.total - stable.at_or_below(edge), stable.total), limit=edge
        )
    limit = evidence.limit
    assert limit is not None
    trials = canary.total if isinstance(canary, Buckets) else 0.0
    if trials <= 0:
        return MetricResult(
            name=name,
            verdict="Waiting",
            stable_value=stable_quantile,
            evidence=evidence,
            message="no canary observations yet",
        )
    assert isinstance(canary, Buckets)
    above = max(trials - canary.at_or_below(limit), 0.0)
    log_e = one_sample_log_e_value(above, trials, tail)
    peak = max(evidence.peak, log_e)
    canary_alpha = test.alpha * CANARY_ALPHA_SHARE
    upper = rate_bound(above, trials, alpha=canary_alpha, upper=True, prior_rate=evidence.baseline)
    lower = rate_bound(above, trials, alpha=canary_alpha, upper=False, prior_rate=evidence.baseline)
    share = above / trials
    needed = None
    if log_e >= math.log(1.0 / test.alpha):
        verdict: Verdict = "Fail"
        message: str | None = (
            f"{share:.3g} of canary observations above {limit:g} (at most {tail:.3g} allowed), with evidence"
        )
    elif upper < tail:
        verdict, message = "Pass", None
    else:
        verdict = "Waiting"
        needed = trials_to_pass(share, trials, tail, canary_alpha, evidence.baseline)
        message = f"{share:.3g} of canary observations above {limit:g}: {_needs(needed)}"
    return MetricResult(
        name=name,
        verdict=verdict,
        value=canary.quantile(test.quantile),
        stable_value=stable_quantile,
        limit=f"q{test.quantile:g} <= {test.max_ratio:g} x stable + {test.max_increase:g} (bucket {limit:g})",
        p_value=min(1.0, math.exp(-peak)),
        interval=[lower, upper],
        alpha=test.alpha,
        canary_samples=trials,
        stable_samples=stable.total,
        needed_samples=needed,
        evidence=evidence.model_copy(update={"peak": peak}),
        message=message,
    )


def _carried(previous: MetricResult | None) -> SequentialEvidence:
    """The sequential state the last look left in status, or a fresh one."""
    if previous is None or previous.evidence is None:
        return SequentialEvidence()
    return previous.evidence


def _harm_of(evidence: SequentialEvidence) -> HarmEvidence:
    """The harm test's state as status stored it (``-inf`` does not survive JSON: it is stored as null)."""
    if len(evidence.consumed) != 4 or len(evidence.log_sums) != len(HarmEvidence().log_sums):
        return HarmEvidence()
    canary_bad, canary_trials, stable_bad, stable_trials = evidence.consumed
    return HarmEvidence(
        consumed=RateCounts(canary_bad, canary_trials, stable_bad, stable_trials),
        log_sums=tuple(-math.inf if v is None else v for v in evidence.log_sums),
        looks=evidence.looks,
        step_starts=evidence.step_starts,
        peak=evidence.peak,
    )


def _evidence_of(harm: HarmEvidence, baseline: float | None, step: int | None) -> SequentialEvidence:
    consumed = harm.consumed
    return SequentialEvidence(
        consumed=[consumed.canary_bad, consumed.canary_trials, consumed.stable_bad, consumed.stable_trials],
        log_sums=[None if math.isinf(v) else v for v in harm.log_sums],
        looks=harm.looks,
        step=step,
        step_starts=harm.step_starts,
        peak=harm.peak,
        baseline=baseline,
    )


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.4g}"


def _needs(needed: float | None) -> str:
    if needed is None:
        return "not shown within the margin at this rate; waiting for more evidence"
    return f"about {needed:,.0f} more canary requests to pass"
