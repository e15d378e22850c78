"""One look's statistics: what the data say, returned for the state machine to record and act on.

A look reads every arm's guardrails and primary metric, checks the sample ratio
(split mode), compares each challenger with the champion, tests the secondary
metrics and applies the stopping rules of :mod:`modelrollout.stats.experiment`
plus the planned-size stop. Nothing here changes status: :func:`look` returns a
:class:`Look`, and the state machine writes it and decides on it, safety first:
a guardrail breach, then a sample ratio mismatch, then the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from modelrollout.api.base import duration_seconds
from modelrollout.api.experiment import (
    SERIES_LIMIT,
    ArmResult,
    ExperimentSpec,
    ExperimentStatus,
    GuardrailResult,
    Outcome,
    SecondaryResult,
    SeriesPoint,
)
from modelrollout.core.experiment.comparisons import Comparison, carried, compare, reached_plan, secondary
from modelrollout.core.experiment.planning import arm_names
from modelrollout.core.experiment.readings import ArmData, finite, guardrails, read_metric
from modelrollout.core.experiment.sizing import minimum_effect
from modelrollout.core.queries import Answer, QueryKey
from modelrollout.stats.results import CheckVerdict
from modelrollout.stats.srm import SrmResult, sample_ratio_mismatch

SRM_LOOKS = 3
"""Consecutive mismatching looks that make a result Invalid.

Counts read from Prometheus at one instant are off by up to a scrape interval's
worth of traffic, differently per target (scrape phases differ), which early on
can look like a mismatch; a real one persists and grows, a timing artefact fades."""


@dataclass(frozen=True, slots=True)
class Breach:
    """Guardrails that challengers breached: the experiment stops and keeps the champion."""

    reason: str
    guardrails: Mapping[str, list[str]]
    """Arm -> the names of the guardrails it breached."""


@dataclass(frozen=True, slots=True)
class SampleRatio:
    """The chi-square check of the arms' counts against their weights (split mode only)."""

    p_value: float
    mismatches: int
    """Looks in a row whose counts mismatched, this one included; 0 when they match."""
    message: str
    """The p-value when the counts match, else the mismatch in words."""

    @property
    def proven(self) -> bool:
        """The mismatch held for :data:`SRM_LOOKS` looks in a row: the data cannot be trusted."""
        return self.mismatches >= SRM_LOOKS


@dataclass(frozen=True, slots=True)
class Baseline:
    """The first look that measured every arm: the sample ratio is counted from its counts, checked from the next."""

    message: str = "counting the arms from this look: the sample ratio is checked from the next"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the primary comparison concludes, and why."""

    outcome: Outcome
    winner: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Measured:
    """The results of a look that read every arm's primary metric, in status' terms."""

    arms: list[ArmResult]
    secondary: list[SecondaryResult]
    series: list[SeriesPoint]
    progress: str
    sample_ratio: SampleRatio | Baseline | None
    """None in shadow mode, whose counts follow the mirror, not an allocation."""
    verdict: Verdict | None
    """None while the data decide nothing yet."""


@dataclass(frozen=True, slots=True)
class Look:
    """What one look found."""

    guardrails: Mapping[str, list[GuardrailResult]]
    """Challenger -> its guardrails' results."""
    breach: Breach | None
    gaps: tuple[str, ...]
    """Why arms' primary metric could not be read; any gap leaves ``measured`` None."""
    measured: Measured | None


def look(spec: ExperimentSpec, status: ExperimentStatus, answers: Mapping[QueryKey, Answer], now: datetime) -> Look:
    """Read the answers to one look's plan against the status the look starts from."""
    results = {c.name: guardrails(spec, c.name, answers) for c in spec.challengers}
    breach = _breach(results)
    data = [read_metric(spec, spec.primary_metric, arm, answers) for arm in arm_names(spec)]
    gaps = tuple(d for d in data if isinstance(d, str))
    if gaps:
        return Look(results, breach, gaps, None)
    arms = [d for d in data if isinstance(d, ArmData)]
    comparisons = compare(spec, status, arms)
    measured = Measured(
        arms=_arm_results(spec, status, arms, comparisons, results),
        secondary=secondary(spec, status, answers),
        series=_series(status.series, now, comparisons),
        progress=_progress(status, arms),
        sample_ratio=_sample_ratio(spec, status, arms, now),
        verdict=_verdict(spec, status, arms, comparisons),
    )
    return Look(results, breach, gaps, measured)


def _breach(results: Mapping[str, list[GuardrailResult]]) -> Breach | None:
    breaches = [(arm, g) for arm, arm_results in results.items() for g in arm_results if g.breached]
    if not breaches:
        return None
    reason = "; ".join(f"{arm} breached guardrail {g.name} ({g.message})" for arm, g in breaches)
    breached: dict[str, list[str]] = {}
    for arm, guardrail in breaches:
        breached.setdefault(arm, []).append(guardrail.name)
    return Breach(reason, breached)


def _sample_ratio(
    spec: ExperimentSpec, status: ExperimentStatus, arms: Sequence[ArmData], now: datetime
) -> SampleRatio | Baseline | None:
    """Split mode only: a shadow's counts follow the mirror, not an allocation.

    The check counts from the first look that measured every arm (the
    :class:`Baseline`); see :func:`sample_ratio_since`.
    """
    if spec.mode == "Shadow":
        return None
    counted_from = {arm.name: arm.counted_from for arm in status.arms}
    baselines = [counted_from.get(arm.name) for arm in arms]
    if None in baselines:
        return Baseline()
    weights = [arm.weight for arm in (spec.champion, *spec.challengers)]
    scrape = scrape_interval(spec)
    srm = sample_ratio_since(
        [arm.count for arm in arms],
        [baseline or 0.0 for baseline in baselines],
        weights,
        elapsed=elapsed_seconds(status, now),
        scrape_seconds=duration_seconds(scrape),
        alpha=spec.srm_p_value,
    )
    if not srm.mismatch:
        return SampleRatio(srm.p_value, 0, f"p = {srm.p_value:.3g}")
    strikes = status.srm_mismatches + 1
    observed = ", ".join(f"{a.name} {count:.0f}" for a, count in zip(arms, srm.observed, strict=True))
    allocated = ", ".join(f"{a.name} {a.weight}" for a in (spec.champion, *spec.challengers))
    reason = (
        f"sample ratio mismatch: observed {observed} since the first look, against weights {allocated}, "
        f"beyond one scrape interval ({scrape}) of each arm's traffic "
        f"(chi-square p = {srm.p_value:.3g} < {spec.srm_p_value:g}"
    )
    if strikes < SRM_LOOKS:
        return SampleRatio(srm.p_value, strikes, f"{reason}, look {strikes} of {SRM_LOOKS})")
    return SampleRatio(srm.p_value, strikes, f"{reason} on {strikes} looks in a row): check assignment and logging")


def sample_ratio_since(
    counts: Sequence[float],
    counted_from: Sequence[float],
    weights: Sequence[float],
    *,
    elapsed: float,
    scrape_seconds: float,
    alpha: float,
) -> SrmResult:
    """The check on the counts since the baseline look, each arm allowed one scrape of its traffic.

    Traffic before an arm's first scrape is lost unevenly between the arms; the
    baseline removes it. ``counts`` are since the start, over ``elapsed`` seconds.
    """
    since = [max(count - start, 0.0) for count, start in zip(counts, counted_from, strict=True)]
    allowance = timing_allowance(sum(counts), weights, elapsed, scrape_seconds)
    return sample_ratio_mismatch(since, weights, alpha=alpha, allowance=allowance)


def scrape_interval(spec: ExperimentSpec) -> str:
    """``scrapeInterval``, else the look interval: a look more often than scrapes sees nothing new."""
    return spec.scrape_interval or spec.interval


def timing_allowance(total: float, weights: Sequence[float], elapsed: float, scrape_seconds: float) -> list[float]:
    """How far each arm's count may be off from scrape timing alone: its traffic over one scrape interval.

    A count is read as of its targets' last scrape, which trails the look by up
    to a scrape interval, differently per arm and per look: counted from a
    baseline look, the two lags partly cancel and the difference stays within
    one scrape of the arm's traffic. The arm's rate is its allocated share of
    the average rate since the start (``total`` over ``elapsed``): its own count
    would understate the rate of the arm that trails.
    """
    share = 1.0 if elapsed <= scrape_seconds else scrape_seconds / elapsed
    return [total * weight / sum(weights) * share for weight in weights]


def elapsed_seconds(status: ExperimentStatus, now: datetime) -> float:
    """Seconds since traffic was split (0 before)."""
    return (now - status.started_at).total_seconds() if status.started_at else 0.0


def _arm_results(
    spec: ExperimentSpec,
    status: ExperimentStatus,
    arms: Sequence[ArmData],
    comparisons: Sequence[Comparison],
    results: Mapping[str, list[GuardrailResult]],
) -> list[ArmResult]:
    kind = spec.primary_metric.kind
    by_arm = {c.arm: c for c in comparisons}
    previous = {arm.name: arm for arm in status.arms}
    updated = []
    for arm in arms:
        before = previous.get(arm.name) or ArmResult(name=arm.name)
        update: dict[str, object] = {
            "samples": round(arm.count),
            "counted_from": arm.count if before.counted_from is None else before.counted_from,
            "estimate": finite(arm.value(kind)),
            "guardrails": results.get(arm.name, []),
        }
        comparison = by_arm.get(arm.name)
        if comparison is not None:
            interval = comparison.interval
            ratio = comparison.ratio
            update |= {
                "difference": finite(comparison.estimate),
                "interval": [interval.low, interval.high] if interval else None,
                "relative_interval": [ratio.interval.low - 1, ratio.interval.high - 1]
                if ratio and math.isfinite(ratio.interval.low) and math.isfinite(ratio.interval.high)
                else None,
                "p_value": comparison.adjusted_p_value,
                "verdict": str(comparison.verdict),
                "sequential": carried(comparison.state) if comparison.state else None,
            }
        updated.append(before.model_copy(update=update))
    return updated


def _series(series: list[SeriesPoint], now: datetime, comparisons: Iterable[Comparison]) -> list[SeriesPoint]:
    points = list(series)
    for c in comparisons:
        if not math.isfinite(c.estimate):
            continue
        low, high = (c.interval.low, c.interval.high) if c.interval else (None, None)
        points.append(SeriesPoint(at=now, arm=c.arm, estimate=c.estimate, low=low, high=high))
    kept: list[SeriesPoint] = []
    counts: dict[str, int] = {}
    for point in reversed(points):
        counts[point.arm] = counts.get(point.arm, 0) + 1
        if counts[point.arm] <= SERIES_LIMIT:
            kept.append(point)
    return kept[::-1]


def _progress(status: ExperimentStatus, arms: Sequence[ArmData]) -> str:
    planned = status.design.samples_per_arm if status.design else None
    samples = min(arm.count for arm in arms)
    text = f"{samples:.0f} of {planned} samples per arm" if planned else f"{samples:.0f} samples per arm"
    return text + "; no decision yet"


def _verdict(
    spec: ExperimentSpec, status: ExperimentStatus, arms: Sequence[ArmData], comparisons: Sequence[Comparison]
) -> Verdict | None:
    """The stats package's rules (stats.experiment) over this look's comparisons, plus the planned-size stop.

    Promote the best significantly better challenger; KeepChampion when all are
    significantly worse or their intervals rule out the MDE (futility); at the
    planned size, a challenger not shown better keeps the champion. A fixed-horizon
    test says nothing before the planned size.
    """
    metric = spec.primary_metric
    reached = reached_plan(status, arms)
    if not spec.sequential and not reached:
        return None
    if min(arm.count for arm in arms) < spec.min_samples:
        return None
    champion = spec.champion.name
    sign = 1.0 if metric.higher_is_better else -1.0
    better = [c for c in comparisons if c.verdict is CheckVerdict.PASS]
    if better:
        best = max(better, key=lambda c: sign * c.estimate)
        return Verdict("Promote", best.arm, f"significantly better than {champion}: " + _effect(spec, arms[0], best))
    detail = "; ".join(_effect(spec, arms[0], c) for c in comparisons)
    if all(c.verdict is CheckVerdict.FAIL for c in comparisons):
        return Verdict("KeepChampion", None, f"every challenger is significantly worse than {champion}: {detail}")
    mde = abs(minimum_effect(spec))
    if all(_futile(c, metric.higher_is_better, mde) for c in comparisons):
        return Verdict("KeepChampion", None, f"the intervals rule out an improvement of {mde:.4g} or more: {detail}")
    if reached:
        planned = status.design.samples_per_arm if status.design else 0
        reason = f"no challenger is significantly better at the planned size ({planned}): {detail}"
        return Verdict("KeepChampion", None, reason)
    return None


def _futile(comparison: Comparison, higher_is_better: bool, mde: float) -> bool:
    """The interval rules out an improvement of the MDE or more (the rule of stats.experiment)."""
    interval = comparison.interval
    if interval is None:
        return False
    return interval.high < mde if higher_is_better else interval.low > -mde


def _effect(spec: ExperimentSpec, champion: ArmData, c: Comparison) -> str:
    """``challenger: metric +0.021 (+3.8%), 97.5% CI [+0.008, +0.034], p = 0.004``."""
    kind = spec.primary_metric.kind
    text = f"{c.arm}: {spec.primary_metric.name} {c.estimate:+.4g}"
    base = champion.value(kind)
    if base:
        text += f" ({c.estimate / base:+.1%})"
    if c.interval is not None:
        text += f", {c.interval.level:.1%} CI [{c.interval.low:+.4g}, {c.interval.high:+.4g}]"
    if c.adjusted_p_value is not None:
        text += f", p = {c.adjusted_p_value:.3g}"
    return text
