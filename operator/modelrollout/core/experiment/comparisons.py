"""Each challenger against the champion: the primary comparison and the secondary metrics' tests.

Sequential experiments run an mSPRT whose state (p-value and interval, both
always valid) is carried in status from look to look, so a restarted operator
continues the same test. Fixed-horizon experiments report estimates at every
look and test only at the planned size, where their p-values mean what they
say. The statistics are :mod:`modelrollout.stats`'s; this module feeds them the
arms' totals and says which correction applies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modelrollout.api.experiment import (
    ExperimentMetric,
    ExperimentSpec,
    ExperimentStatus,
    SecondaryResult,
    SequentialStatus,
)
from modelrollout.core.experiment.readings import ArmData, finite, read_metric
from modelrollout.core.experiment.sizing import comparison_alpha, minimum_effect
from modelrollout.core.queries import Answer, QueryKey
from modelrollout.stats.comparisons import (
    SummaryStats,
    ratio_of_means,
    ratio_of_proportions,
    two_proportions,
    welch_t_test,
)
from modelrollout.stats.experiment import MeanArm, ProportionArm, analyze_fixed
from modelrollout.stats.multiple import benjamini_hochberg, holm
from modelrollout.stats.results import CheckVerdict, Interval, RatioEstimate
from modelrollout.stats.sequential import (
    MsprtConfig,
    SequentialResult,
    SequentialState,
    msprt_look,
    msprt_result,
)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One challenger against the champion on the primary metric, as :mod:`modelrollout.stats` read it."""

    arm: str
    estimate: float
    interval: Interval | None
    p_value: float | None
    adjusted_p_value: float | None
    verdict: CheckVerdict
    ratio: RatioEstimate | None
    state: SequentialState | None = None


def compare(spec: ExperimentSpec, status: ExperimentStatus, arms: Sequence[ArmData]) -> list[Comparison]:
    """Every challenger (``arms[1:]``) against the champion (``arms[0]``) on the primary metric."""
    if spec.sequential:
        return _compare_sequential(spec, status, arms)
    return _compare_fixed(spec, status, arms)


def reached_plan(status: ExperimentStatus, arms: Sequence[ArmData]) -> bool:
    """Every arm has the samples the design planned for it."""
    planned = {plan.name: plan.samples for plan in status.design.arms} if status.design else {}
    return bool(planned) and all(arm.count >= planned.get(arm.name, 0) for arm in arms)


def carried(state: SequentialState) -> SequentialStatus:
    """The mSPRT state as status keeps it for the next look."""
    return SequentialStatus(
        p_value=state.p_value,
        low=state.low if math.isfinite(state.low) else None,
        high=state.high if math.isfinite(state.high) else None,
        looks=state.looks,
    )


def _resumed(status: SequentialStatus | None) -> SequentialState:
    if status is None:
        return SequentialState()
    return SequentialState(
        p_value=status.p_value,
        low=-math.inf if status.low is None else status.low,
        high=math.inf if status.high is None else status.high,
        looks=status.looks,
    )


def _config(spec: ExperimentSpec, mixing_sd: float) -> MsprtConfig:
    return MsprtConfig(
        mixing_sd=mixing_sd,
        alpha=comparison_alpha(spec),
        min_samples=float(spec.min_samples),
        higher_is_better=spec.primary_metric.higher_is_better,
    )


def _finite_interval(interval: Interval) -> Interval | None:
    return interval if math.isfinite(interval.low) and math.isfinite(interval.high) else None


def _compare_sequential(spec: ExperimentSpec, status: ExperimentStatus, arms: Sequence[ArmData]) -> list[Comparison]:
    kind = spec.primary_metric.kind
    config = _config(spec, abs(minimum_effect(spec)))
    champion, challengers = arms[0], arms[1:]
    before = {arm.name: arm.sequential for arm in status.arms}
    comparisons = []
    for arm in challengers:
        state = msprt_look(_resumed(before.get(arm.name)), champion.totals(kind), arm.totals(kind), config)
        result: SequentialResult = msprt_result(state, config)
        measured = state.looks > 0 and math.isfinite(result.interval.low)
        comparisons.append(
            Comparison(
                arm=arm.name,
                estimate=result.estimate,
                interval=_finite_interval(result.interval),
                p_value=result.p_value if measured else None,
                adjusted_p_value=min(1.0, result.p_value * len(challengers)) if measured else None,
                verdict=result.verdict,
                ratio=_ratio(spec, champion, arm),
                state=state,
            )
        )
    return comparisons


def _compare_fixed(spec: ExperimentSpec, status: ExperimentStatus, arms: Sequence[ArmData]) -> list[Comparison]:
    """Estimates at every look; tests only at the planned size, where their p-values mean what they say."""
    kind = spec.primary_metric.kind
    champion = arms[0]
    if not reached_plan(status, arms) or min(arm.count for arm in arms) < 2:
        return [
            Comparison(a.name, a.value(kind) - champion.value(kind), None, None, None, CheckVerdict.INCONCLUSIVE, None)
            for a in arms[1:]
        ]
    analysis = analyze_fixed(
        _stats_arms(spec, arms),
        alpha=spec.alpha,
        higher_is_better=spec.primary_metric.higher_is_better,
        minimum_effect=abs(minimum_effect(spec)),
    )
    by_name = {arm.name: arm for arm in arms}
    return [
        Comparison(
            arm=c.arm,
            estimate=c.estimate,
            interval=c.interval,
            p_value=c.p_value,
            adjusted_p_value=c.adjusted_p_value,
            verdict=c.verdict,
            ratio=_ratio(spec, champion, by_name[c.arm]),
        )
        for c in analysis.comparisons
    ]


def _stats_arms(spec: ExperimentSpec, arms: Sequence[ArmData]) -> list[ProportionArm] | list[MeanArm]:
    if spec.primary_metric.kind == "proportion":
        return [ProportionArm(a.name, a.count, a.successes) for a in arms]
    return [MeanArm(a.name, a.count, a.mean, a.variance) for a in arms]


def _ratio(spec: ExperimentSpec, champion: ArmData, challenger: ArmData) -> RatioEstimate | None:
    """The challenger/champion ratio with a fixed-horizon interval, reported and never decided on."""
    confidence = 1.0 - comparison_alpha(spec)
    try:
        if spec.primary_metric.kind == "proportion":
            return ratio_of_proportions(
                champion.successes, champion.count, challenger.successes, challenger.count, confidence=confidence
            )
        return ratio_of_means(
            SummaryStats(champion.count, champion.mean, champion.variance),
            SummaryStats(challenger.count, challenger.mean, challenger.variance),
            confidence=confidence,
        )
    except (ValueError, ZeroDivisionError):
        return None


def secondary(
    spec: ExperimentSpec, status: ExperimentStatus, answers: Mapping[QueryKey, Answer]
) -> list[SecondaryResult]:
    """Secondary metrics: the same test as the primary, corrected across challengers and metrics by spec.correction.

    Sequential experiments run an mSPRT per metric and challenger whose mixing
    distribution is the primary metric's relative MDE applied to the champion's value.
    """
    previous = {(s.metric, s.arm): s for s in status.secondary}
    results: list[SecondaryResult] = []
    p_values: list[float] = []
    tested: list[int] = []
    for metric in spec.secondary_metrics:
        champion = read_metric(spec, metric, spec.champion.name, answers)
        for challenger in spec.challengers:
            before = previous.get((metric.name, challenger.name))
            arm = read_metric(spec, metric, challenger.name, answers)
            if isinstance(champion, str) or isinstance(arm, str):
                results.append(before or SecondaryResult(metric=metric.name, arm=challenger.name))
                continue
            result, p_value = _secondary_test(spec, metric, champion, arm, before)
            if p_value is not None:
                tested.append(len(results))
                p_values.append(p_value)
            results.append(result)
    if p_values:
        correct = holm if spec.correction == "holm" else benjamini_hochberg
        adjusted = correct(p_values, spec.alpha)
        for index, p, rejected in zip(tested, adjusted.adjusted, adjusted.rejected, strict=True):
            results[index] = results[index].model_copy(update={"p_value": float(p), "significant": bool(rejected)})
    return results


def _secondary_test(
    spec: ExperimentSpec, metric: ExperimentMetric, champion: ArmData, arm: ArmData, before: SecondaryResult | None
) -> tuple[SecondaryResult, float | None]:
    kind = metric.kind
    difference = arm.value(kind) - champion.value(kind)
    base = SecondaryResult(metric=metric.name, arm=arm.name, difference=finite(difference))
    if spec.sequential:
        scale = abs(champion.value(kind)) or math.sqrt(champion.totals(kind).variance)
        if not scale > 0:
            return base, None
        config = _config(spec, spec.primary_metric.minimum_detectable_effect * scale)
        config = MsprtConfig(config.mixing_sd, config.alpha, config.min_samples, metric.higher_is_better)
        state = msprt_look(
            _resumed(before.sequential if before else None), champion.totals(kind), arm.totals(kind), config
        )
        result = msprt_result(state, config)
        interval = _finite_interval(result.interval)
        measured = interval is not None
        return base.model_copy(
            update={
                "interval": [interval.low, interval.high] if interval else None,
                "sequential": carried(state),
            }
        ), (result.p_value if measured else None)
    if champion.count < 2 or arm.count < 2:
        return base, None
    try:
        if kind == "proportion":
            test = two_proportions(
                champion.successes, champion.count, arm.successes, arm.count, confidence=1 - spec.alpha
            )
        else:
            test = welch_t_test(
                SummaryStats(champion.count, champion.mean, champion.variance),
                SummaryStats(arm.count, arm.mean, arm.variance),
                confidence=1 - spec.alpha,
            )
    except ValueError:
        return base, None
    interval = test.interval
    return base.model_copy(update={"interval": [interval.low, interval.high] if interval else None}), test.p_value
