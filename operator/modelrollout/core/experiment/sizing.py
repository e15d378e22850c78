"""The test's design: how many samples each arm needs, and how long the traffic takes to supply them.

An experiment is designed once, before any traffic moves: the sample size per
arm that detects the primary metric's minimum detectable effect at ``alpha``
and ``power`` (fixed-horizon, or the mSPRT's expected size when sequential),
and, from the traffic rate observed before the split, the expected duration.
The formulas are :mod:`modelrollout.stats`'s; this module says which apply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from modelrollout.api.base import duration_seconds
from modelrollout.api.experiment import ArmPlan, Design, ExperimentSpec
from modelrollout.core.experiment.planning import RATE, arm_names, query_key
from modelrollout.core.queries import Answer, QueryKey
from modelrollout.stats import power
from modelrollout.stats.power import SampleSize, sample_size_two_means, sample_size_two_proportions
from modelrollout.stats.sequential import msprt_sample_size

SEQUENTIAL_METHOD = "mSPRT (always valid)"


def shares(spec: ExperimentSpec) -> dict[str, float]:
    """Each arm's share of the traffic entering the experiment; a shadow sees all of it, as the champion does."""
    if spec.mode == "Shadow":
        return dict.fromkeys(arm_names(spec), 1.0)
    arms = (spec.champion, *spec.challengers)
    total = sum(arm.weight for arm in arms)
    return {arm.name: arm.weight / total for arm in arms}


def minimum_effect(spec: ExperimentSpec) -> float:
    """The relative MDE as an absolute difference, signed in the direction of an improvement."""
    metric = spec.primary_metric
    size = metric.baseline * metric.minimum_detectable_effect
    return size if metric.higher_is_better else -size


def comparison_alpha(spec: ExperimentSpec) -> float:
    """Each challenger's test runs at alpha / challengers (Bonferroni), as :mod:`modelrollout.stats.experiment`."""
    return spec.alpha / len(spec.challengers)


def observed_rate(spec: ExperimentSpec, answers: Mapping[QueryKey, Answer]) -> float:
    """Observations per second entering the experiment, from the answers to the design's plan; 0 when none."""
    rates = [answers.get(query_key(spec, RATE, arm, "value")) for arm in arm_names(spec)]
    numbers = [max(rate, 0.0) for rate in rates if isinstance(rate, float) and math.isfinite(rate)]
    traffic = sum(numbers) if numbers else 0.0
    if spec.traffic_rate_query is None:
        traffic /= duration_seconds(spec.window)
    return traffic


def design(spec: ExperimentSpec, traffic_rate: float | None) -> Design:
    """Sample size per arm for the primary metric's MDE at alpha and power, and how long it takes."""
    metric = spec.primary_metric
    effect = minimum_effect(spec)
    alpha = comparison_alpha(spec)
    share = shares(spec)
    champion = spec.champion.name
    if metric.kind == "proportion":
        variances = (
            metric.baseline * (1 - metric.baseline),
            (metric.baseline + effect) * (1 - metric.baseline - effect),
        )
    else:
        assert metric.baseline_std is not None  # the metric's rules guarantee it
        variances = (metric.baseline_std**2, metric.baseline_std**2)
    needed: dict[str, int] = {}
    durations: list[float] = []
    for challenger in spec.challengers:
        ratio = share[challenger.name] / share[champion]
        if spec.sequential:
            n = msprt_sample_size(effect, *variances, mixing_sd=abs(effect), alpha=alpha, power=spec.power, ratio=ratio)
            size = SampleSize(champion=math.ceil(n), challenger=math.ceil(n * ratio))
        elif metric.kind == "proportion":
            size = sample_size_two_proportions(metric.baseline, effect, alpha=alpha, power=spec.power, ratio=ratio)
        else:
            assert metric.baseline_std is not None
            size = sample_size_two_means(metric.baseline_std, effect, alpha=alpha, power=spec.power, ratio=ratio)
        needed[champion] = max(needed.get(champion, 0), size.champion)
        needed[challenger.name] = size.challenger
        if traffic_rate:
            durations.append(power.duration_seconds(size, traffic_rate, (share[champion], share[challenger.name])))
    method = SEQUENTIAL_METHOD
    if not spec.sequential:
        method = "two-proportion z-test" if metric.kind == "proportion" else "Welch t-test"
    return Design(
        samples_per_arm=max(needed.values()),
        method=method,
        minimum_effect=effect,
        alpha_per_comparison=alpha,
        arms=[ArmPlan(name=arm, share=share[arm], samples=needed[arm]) for arm in arm_names(spec)],
        traffic_rate=traffic_rate,
        expected_duration_seconds=max(durations) if durations else None,
    )
