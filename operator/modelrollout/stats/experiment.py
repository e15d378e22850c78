"""From per-arm data to a decision: Promote, KeepChampion, Inconclusive or Invalid.

The rules, in order:

1. **Invalid** when the arm counts do not match the configured allocation
   (sample ratio mismatch, :mod:`modelrollout.stats.srm`): the comparison
   itself cannot be trusted.
2. **Promote** when at least one challenger is significantly better than the
   champion after correcting for the number of challengers; the best such
   challenger (largest estimated improvement) is the winner.
3. **KeepChampion** when every challenger is significantly worse, or when the
   interval rules out an improvement of ``minimum_effect`` or more for every
   challenger (futility: the data say the hoped-for gain is not there).
4. **Inconclusive** otherwise: keep collecting data.

Fixed-horizon analyses correct with Holm; sequential (mSPRT) analyses run each
challenger's test at ``alpha / m`` (Bonferroni), which keeps both the p-values
and the confidence sequences simultaneously valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelrollout.stats.comparisons import SummaryStats, two_proportions, welch_t_test
from modelrollout.stats.multiple import holm
from modelrollout.stats.results import CheckVerdict, Decision, Interval
from modelrollout.stats.sequential import (
    ArmTotals,
    MsprtConfig,
    SequentialState,
    msprt_look,
    msprt_result,
)
from modelrollout.stats.srm import SRM_ALPHA, SrmResult, sample_ratio_mismatch


@dataclass(frozen=True, slots=True)
class ProportionArm:
    name: str
    count: float
    successes: float
    weight: float | None = None


@dataclass(frozen=True, slots=True)
class MeanArm:
    name: str
    count: float
    mean: float
    variance: float
    weight: float | None = None


Arm = ProportionArm | MeanArm


@dataclass(frozen=True, slots=True)
class ArmComparison:
    """One challenger against the champion; ``verdict`` PASS means significantly better."""

    arm: str
    method: str
    estimate: float
    interval: Interval
    p_value: float
    adjusted_p_value: float
    verdict: CheckVerdict


@dataclass(frozen=True, slots=True)
class ExperimentAnalysis:
    champion: str
    comparisons: tuple[ArmComparison, ...]
    srm: SrmResult | None
    decision: Decision
    winner: str | None
    reason: str


def analyze_fixed(
    arms: Sequence[Arm],
    *,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    minimum_effect: float | None = None,
    srm_alpha: float = SRM_ALPHA,
) -> ExperimentAnalysis:
    """Fixed-horizon analysis; the first arm is the champion, all arms of one kind."""
    champion, challengers = _split(arms)
    raw = []
    for arm in challengers:
        if isinstance(champion, ProportionArm) and isinstance(arm, ProportionArm):
            test = two_proportions(champion.successes, champion.count, arm.successes, arm.count, confidence=1.0 - alpha)
        elif isinstance(champion, MeanArm) and isinstance(arm, MeanArm):
            test = welch_t_test(
                SummaryStats(champion.count, champion.mean, champion.variance),
                SummaryStats(arm.count, arm.mean, arm.variance),
                confidence=1.0 - alpha,
            )
        else:
            raise ValueError("all arms must be of one kind: proportions or means")
        assert test.interval is not None
        raw.append((arm.name, test.method, test.estimate, test.interval, test.p_value))
    adjusted = holm([p for *_, p in raw], alpha).adjusted
    comparisons = tuple(
        ArmComparison(
            name,
            method,
            estimate,
            interval,
            p,
            float(adj),
            _direction(adj < alpha, estimate, higher_is_better),
        )
        for (name, method, estimate, interval, p), adj in zip(raw, adjusted, strict=True)
    )
    return _decide(champion.name, comparisons, _srm(arms, srm_alpha), higher_is_better, minimum_effect)


def analyze_sequential(
    snapshots: Sequence[Sequence[Arm]],
    *,
    mixing_sd: float,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    minimum_effect: float | None = None,
    min_samples: float = 100.0,
    srm_alpha: float = SRM_ALPHA,
) -> ExperimentAnalysis:
    """mSPRT over cumulative snapshots (one look per snapshot, arms in the same order each time)."""
    if not snapshots:
        raise ValueError("need at least one snapshot")
    champion, challengers = _split(snapshots[-1])
    config = MsprtConfig(
        mixing_sd=mixing_sd,
        alpha=alpha / len(challengers),
        min_samples=min_samples,
        higher_is_better=higher_is_better,
    )
    states = [SequentialState() for _ in challengers]
    for snapshot in snapshots:
        totals = [_totals(arm) for arm in snapshot]
        states = [msprt_look(state, totals[0], totals[i + 1], config) for i, state in enumerate(states)]
    comparisons = []
    for arm, state in zip(challengers, states, strict=True):
        result = msprt_result(state, config)
        comparisons.append(
            ArmComparison(
                arm=arm.name,
                method="mSPRT (always valid)",
                estimate=result.estimate,
                interval=result.interval,
                p_value=result.p_value,
                adjusted_p_value=min(1.0, result.p_value * len(challengers)),
                verdict=result.verdict,
            )
        )
    srm = _srm(snapshots[-1], srm_alpha)
    return _decide(champion.name, tuple(comparisons), srm, higher_is_better, minimum_effect)


def _decide(
    champion: str,
    comparisons: tuple[ArmComparison, ...],
    srm: SrmResult | None,
    higher_is_better: bool,
    minimum_effect: float | None,
) -> ExperimentAnalysis:
    def analysis(decision: Decision, winner: str | None, reason: str) -> ExperimentAnalysis:
        return ExperimentAnalysis(champion, comparisons, srm, decision, winner, reason)

    if srm is not None and srm.mismatch:
        return analysis(
            Decision.INVALID, None, f"sample ratio mismatch (p = {srm.p_value:.3g} < {srm.alpha}): check assignment"
        )
    better = [c for c in comparisons if c.verdict is CheckVerdict.PASS]
    if better:
        sign = 1.0 if higher_is_better else -1.0
        best = max(better, key=lambda c: sign * c.estimate)
        return analysis(Decision.PROMOTE, best.arm, f"{best.arm} is significantly better than {champion}")
    if all(c.verdict is CheckVerdict.FAIL for c in comparisons):
        return analysis(Decision.KEEP_CHAMPION, None, f"every challenger is significantly worse than {champion}")
    if minimum_effect is not None and all(_futile(c, higher_is_better, minimum_effect) for c in comparisons):
        return analysis(
            Decision.KEEP_CHAMPION, None, f"the intervals rule out an improvement of {minimum_effect:g} or more"
        )
    return analysis(Decision.INCONCLUSIVE, None, "no challenger is significantly different yet")


def _futile(comparison: ArmComparison, higher_is_better: bool, minimum_effect: float) -> bool:
    if higher_is_better:
        return comparison.interval.high < abs(minimum_effect)
    return comparison.interval.low > -abs(minimum_effect)


def _direction(significant: bool, estimate: float, higher_is_better: bool) -> CheckVerdict:
    if not significant or estimate == 0:
        return CheckVerdict.INCONCLUSIVE
    return CheckVerdict.PASS if (estimate > 0) == higher_is_better else CheckVerdict.FAIL


def _split(arms: Sequence[Arm]) -> tuple[Arm, list[Arm]]:
    if len(arms) < 2:
        raise ValueError("an experiment needs a champion and at least one challenger")
    if len({arm.name for arm in arms}) != len(arms):
        raise ValueError("arm names must be unique")
    return arms[0], list(arms[1:])


def _srm(arms: Sequence[Arm], alpha: float) -> SrmResult | None:
    weights = [arm.weight for arm in arms]
    if any(weight is None for weight in weights):
        return None
    return sample_ratio_mismatch([arm.count for arm in arms], [w for w in weights if w is not None], alpha=alpha)


def _totals(arm: Arm) -> ArmTotals:
    if isinstance(arm, ProportionArm):
        return ArmTotals.of_proportion(arm.count, arm.successes)
    return ArmTotals.of_summary(arm.count, arm.mean, arm.variance)
