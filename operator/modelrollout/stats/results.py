"""Typed, immutable results shared by every statistical routine.

Controllers copy these numbers into resource status and events, so every result
carries the evidence behind its verdict (statistic, p-value where one exists,
interval, effect size, sample sizes), not only the verdict.  Results are frozen
dataclasses with slots: cheap to build in vectorised loops and impossible to
mutate after a decision was taken on them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DriftVerdict(enum.StrEnum):
    """Outcome of a drift or data-quality check.

    NoDrift < Warning < Drift is the severity order that combines per-method verdicts into a
    feature verdict. InsufficientData is outside it: too little data overrides every score,
    because a score computed from a handful of observations says nothing.
    """

    INSUFFICIENT_DATA = "InsufficientData"
    NO_DRIFT = "NoDrift"
    WARNING = "Warning"
    DRIFT = "Drift"


class CheckVerdict(enum.StrEnum):
    """Outcome of a comparison against a baseline or a bound.

    INCONCLUSIVE is a real answer, not an error: the interval still straddles
    the bound, so neither PASS nor FAIL is supported by the data yet.
    """

    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


class Decision(enum.StrEnum):
    """What an experiment's evidence supports."""

    PROMOTE = "Promote"
    KEEP_CHAMPION = "KeepChampion"
    INCONCLUSIVE = "Inconclusive"
    INVALID = "Invalid"


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval (or confidence sequence at one time) at ``level``."""

    low: float
    high: float
    level: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class MethodScore:
    """One drift method's evidence for one feature."""

    method: str
    statistic: float
    p_value: float | None
    effect_size: float | None
    verdict: DriftVerdict
    #: The score that noise alone exceeds with probability ``alpha`` at these sample sizes and bins
    #: (``inf`` when too few observations to say); drift needs the score above it.
    noise_floor: float | None = None
    #: The significance level this method was given out of the feature's false-alarm budget.
    alpha: float | None = None


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """All requested drift methods for one feature and their combined verdict."""

    name: str
    kind: str
    n_reference: float
    n_current: float
    scores: tuple[MethodScore, ...]
    verdict: DriftVerdict

    @property
    def drifted(self) -> bool:
        return self.verdict is DriftVerdict.DRIFT

    def score(self, method: str) -> MethodScore:
        for score in self.scores:
            if score.method == method:
                return score
        raise KeyError(method)


@dataclass(frozen=True, slots=True)
class TestResult:
    """A two-sample test: an estimate of the difference (challenger minus champion) and its test."""

    __test__ = False  # not a pytest test class, despite the name

    method: str
    estimate: float
    statistic: float
    p_value: float
    interval: Interval | None
    effect_size: float | None
    n_champion: float
    n_challenger: float


@dataclass(frozen=True, slots=True)
class RatioEstimate:
    """A challenger/champion ratio with its confidence interval and how it was computed."""

    method: str
    ratio: float
    interval: Interval
    n_champion: float
    n_challenger: float


@dataclass(frozen=True, slots=True)
class RelativeCheck:
    """A relative-to-baseline check such as "challenger latency <= 110% of champion"."""

    ratio: RatioEstimate
    bound: float
    higher_is_better: bool
    verdict: CheckVerdict
