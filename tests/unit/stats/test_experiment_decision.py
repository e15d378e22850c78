"""From arm data to Promote / KeepChampion / Inconclusive / Invalid."""

import pytest

from modelrollout.stats.experiment import MeanArm, ProportionArm, analyze_fixed, analyze_sequential
from modelrollout.stats.results import CheckVerdict, Decision


def test_a_significantly_better_challenger_is_promoted() -> None:
    analysis = analyze_fixed(
        [ProportionArm("champion", 10_000, 1_000, 0.5), ProportionArm("challenger", 10_000, 1_150, 0.5)]
    )
    assert analysis.decision is Decision.PROMOTE
    assert analysis.winner == "challenger"
    assert analysis.comparisons[0].verdict is CheckVerdict.PASS


def test_sample_ratio_mismatch_invalidates_the_experiment() -> None:
    analysis = analyze_fixed(
        [ProportionArm("champion", 10_000, 1_000, 0.5), ProportionArm("challenger", 11_000, 1_300, 0.5)]
    )
    assert analysis.decision is Decision.INVALID
    assert analysis.srm is not None
    assert analysis.srm.mismatch


def test_lower_is_better_metrics_keep_the_champion_when_the_challenger_is_slower() -> None:
    analysis = analyze_fixed(
        [MeanArm("champion", 5000, 120.0, 1600.0), MeanArm("challenger", 5000, 130.0, 1600.0)],
        higher_is_better=False,
    )
    assert analysis.decision is Decision.KEEP_CHAMPION


def test_futility_keeps_the_champion_when_the_hoped_for_gain_is_ruled_out() -> None:
    arms = [ProportionArm("champion", 200_000, 20_000), ProportionArm("challenger", 200_000, 20_050)]
    assert analyze_fixed(arms).decision is Decision.INCONCLUSIVE
    assert analyze_fixed(arms, minimum_effect=0.01).decision is Decision.KEEP_CHAMPION


def test_holm_across_challengers_can_withhold_a_marginal_win() -> None:
    arms = [
        ProportionArm("champion", 5000, 500),
        ProportionArm("b", 5000, 565),
        ProportionArm("c", 5000, 500),
        ProportionArm("d", 5000, 505),
    ]
    analysis = analyze_fixed(arms)
    b = analysis.comparisons[0]
    assert b.p_value < 0.05 < b.adjusted_p_value
    assert analysis.decision is Decision.INCONCLUSIVE


def test_sequential_analysis_over_cumulative_snapshots() -> None:
    snapshots = [
        [ProportionArm("champion", n, int(n * 0.10), 0.5), ProportionArm("challenger", n, int(n * 0.13), 0.5)]
        for n in (500, 1000, 2000, 4000, 8000)
    ]
    analysis = analyze_sequential(snapshots, mixing_sd=0.02)
    assert analysis.decision is Decision.PROMOTE
    assert analysis.comparisons[0].interval.low > 0


def test_arms_must_be_of_one_kind_and_uniquely_named() -> None:
    with pytest.raises(ValueError, match="one kind"):
        analyze_fixed([ProportionArm("a", 10, 1), MeanArm("b", 10, 1.0, 1.0)])
    with pytest.raises(ValueError, match="unique"):
        analyze_fixed([ProportionArm("a", 10, 1), ProportionArm("a", 10, 1)])
