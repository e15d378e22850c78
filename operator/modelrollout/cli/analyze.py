"""``modelrollout analyze``: the decision an experiment's data support, offline.

Reads per-arm results (proportions or summary statistics), or a series of
cumulative snapshots for an always-valid sequential analysis, and prints the
estimates, intervals, p-values, the sample-ratio-mismatch check and the
decision. Exit status 0 means Promote, 1 any other decision, 2 bad input, so
a pipeline can gate a release on it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from modelrollout.cli._files import InputError, JsonFields, read_json
from modelrollout.stats.comparisons import SummaryStats, ratio_of_means, ratio_of_proportions
from modelrollout.stats.experiment import (
    Arm,
    ExperimentAnalysis,
    MeanArm,
    ProportionArm,
    analyze_fixed,
    analyze_sequential,
)
from modelrollout.stats.results import Decision, RatioEstimate
from modelrollout.stats.srm import SRM_ALPHA

EPILOG = """\
input (JSON):
  {"metric": "conversion",            optional label
   "type": "proportion",              "proportion" or "mean"
   "higher_is_better": true,          optional, default true
   "alpha": 0.05,                     optional, default 0.05
   "minimum_effect": 0.01,            optional: absolute difference that matters
   "srm_alpha": 0.001,                optional, default 0.001
   "arms": [                          fixed horizon; the first arm is the champion
     {"name": "champion", "weight": 0.5, "count": 10000, "successes": 1000},
     {"name": "challenger", "weight": 0.5, "count": 10000, "successes": 1100}]}
  Mean arms have "count", "mean" and "variance" (sample variance) instead of
  "successes". "weight" is the configured traffic share; give it for every
  arm (any scale) to check the sample ratio, or for none.
  For a sequential (mSPRT, always-valid) analysis give, instead of "arms",
   "series": [{"label": "10:00", "arms": [...]}, {"label": "11:00", "arms": [...]}]
  cumulative snapshots with the same arms in the same order, and optionally
   "sequential": {"mixing_sd": 0.01, "min_samples": 100}
  (mixing_sd defaults to minimum_effect; one of them is required).

decision: Invalid on sample ratio mismatch; Promote when a challenger is
  significantly better (Holm across challengers; Bonferroni for sequential);
  KeepChampion when all are significantly worse, or the intervals rule out
  minimum_effect; Inconclusive otherwise. See docs/statistics.md.

exit status: 0 Promote, 1 KeepChampion, Inconclusive or Invalid, 2 bad input.
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="analyse an A/B experiment's results (fixed-horizon or sequential)",
        description="Estimates, intervals, p-values, SRM and the decision for an experiment's results.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, metavar="FILE", help="experiment results (JSON, see below)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        report = analyze_file(args.data)
    except InputError as error:
        print(f"modelrollout analyze: {error}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(_text(report))
    return 0 if report["decision"] == Decision.PROMOTE else 1


def analyze_file(path: str | Path) -> dict[str, Any]:
    """Parse, validate and analyse one experiment file into the JSON report."""
    fields = JsonFields(path)
    document = fields.mapping(read_json(path), "$")
    known = {
        "metric",
        "type",
        "higher_is_better",
        "alpha",
        "minimum_effect",
        "srm_alpha",
        "arms",
        "series",
        "sequential",
    }
    unknown = sorted(set(document) - known)
    if unknown:
        raise fields.fail("$", f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    kind = document.get("type")
    if kind not in ("proportion", "mean"):
        raise fields.fail("type", f'must be "proportion" or "mean", got {json.dumps(kind)}')
    metric = fields.text(document["metric"], "metric") if "metric" in document else None
    higher_is_better = fields.boolean(document.get("higher_is_better", True), "higher_is_better")
    alpha = fields.probability(document.get("alpha", 0.05), "alpha")
    srm_alpha = fields.probability(document.get("srm_alpha", SRM_ALPHA), "srm_alpha")
    minimum_effect = fields.optional_number(document.get("minimum_effect"), "minimum_effect")
    if ("arms" in document) == ("series" in document):
        raise fields.fail("$", 'give either "arms" (fixed horizon) or "series" (sequential), not both or neither')

    if "arms" in document:
        arms = _arms(fields, kind, document["arms"], "arms")
        try:
            analysis = analyze_fixed(
                arms, alpha=alpha, higher_is_better=higher_is_better, minimum_effect=minimum_effect, srm_alpha=srm_alpha
            )
        except ValueError as error:
            raise fields.fail("arms", str(error)) from None
        ratios = [_ratio(arms[0], arm, 1.0 - alpha) for arm in arms[1:]]
        method = "fixed-horizon"
    else:
        settings = fields.mapping(document.get("sequential", {}), "sequential")
        mixing_sd = fields.optional_number(settings.get("mixing_sd"), "sequential.mixing_sd") or minimum_effect
        if mixing_sd is None or mixing_sd <= 0:
            raise fields.fail(
                "sequential.mixing_sd", "needed (or minimum_effect): the effect size the test is tuned to"
            )
        min_samples = fields.count(settings.get("min_samples", 100), "sequential.min_samples")
        snapshots = _series(fields, kind, document["series"])
        arms = snapshots[-1]
        analysis = analyze_sequential(
            snapshots,
            mixing_sd=abs(mixing_sd),
            alpha=alpha,
            higher_is_better=higher_is_better,
            minimum_effect=minimum_effect,
            min_samples=min_samples,
            srm_alpha=srm_alpha,
        )
        ratios = [None for _ in arms[1:]]
        method = f"sequential (mSPRT, mixing sd {abs(mixing_sd):g}, {len(snapshots)} looks)"
    return _report(
        metric=metric,
        kind=kind,
        method=method,
        alpha=alpha,
        higher_is_better=higher_is_better,
        arms=arms,
        analysis=analysis,
        ratios=ratios,
    )


def _arms(fields: JsonFields, kind: str, raw: Any, where: str) -> list[Arm]:
    items = fields.list_of(raw, where, min_length=2)
    arms: list[Arm] = []
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        arm = fields.mapping(item, at)
        allowed = (
            {"name", "weight", "count", "successes"}
            if kind == "proportion"
            else {"name", "weight", "count", "mean", "variance"}
        )
        unknown = sorted(set(arm) - allowed)
        if unknown:
            raise fields.fail(
                at, f"unknown key {unknown[0]!r} for a {kind} arm (allowed: {', '.join(sorted(allowed))})"
            )
        name = fields.text(arm.get("name"), f"{at}.name")
        count = fields.count(arm.get("count"), f"{at}.count")
        weight = fields.count(arm["weight"], f"{at}.weight") if "weight" in arm else None
        if weight == 0:
            raise fields.fail(f"{at}.weight", "must be positive (an arm with no traffic is not in the experiment)")
        if kind == "proportion":
            successes = fields.count(arm.get("successes"), f"{at}.successes")
            if successes > count:
                raise fields.fail(f"{at}.successes", f"{successes:g} is more than the count {count:g}")
            if count == 0:
                raise fields.fail(f"{at}.count", "must be positive")
            arms.append(ProportionArm(name, count, successes, weight))
        else:
            mean = fields.number(arm.get("mean"), f"{at}.mean")
            variance = fields.count(arm.get("variance"), f"{at}.variance")
            if count < 2:
                raise fields.fail(f"{at}.count", "a mean arm needs at least 2 observations")
            arms.append(MeanArm(name, count, mean, variance, weight))
    names = [arm.name for arm in arms]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise fields.fail(f"{where}[{index}].name", f"duplicate arm {name!r}")
    weights = [arm.weight is None for arm in arms]
    if any(weights) and not all(weights):
        raise fields.fail(where, "give a weight for every arm or for none")
    return arms


def _series(fields: JsonFields, kind: str, raw: Any) -> list[list[Arm]]:
    snapshots: list[list[Arm]] = []
    for index, item in enumerate(fields.list_of(raw, "series", min_length=1)):
        at = f"series[{index}]"
        snapshot = fields.mapping(item, at)
        unknown = sorted(set(snapshot) - {"label", "arms"})
        if unknown:
            raise fields.fail(at, f"unknown key {unknown[0]!r} (allowed: arms, label)")
        arms = _arms(fields, kind, snapshot.get("arms"), f"{at}.arms")
        if snapshots:
            previous = snapshots[-1]
            if [a.name for a in arms] != [a.name for a in previous]:
                raise fields.fail(f"{at}.arms", "must name the same arms in the same order as the previous snapshot")
            for position, (now, before) in enumerate(zip(arms, previous, strict=True)):
                if now.count < before.count:
                    raise fields.fail(
                        f"{at}.arms[{position}].count",
                        f"decreases from {before.count:g} to {now.count:g}; snapshots must be cumulative",
                    )
        snapshots.append(arms)
    return snapshots


def _ratio(champion: Arm, challenger: Arm, confidence: float) -> RatioEstimate | None:
    """The challenger/champion ratio, reported next to the difference and never decided on.

    Mean arms arrive as (count, mean, variance) only, so the ratio is Fieller's interval
    (``ratio_of_means``); a bootstrap would need the raw observations, and on the heavy-tailed
    cells simulated for issue 13 it covered less than Fieller on the same samples anyway.
    """
    if isinstance(champion, ProportionArm) and isinstance(challenger, ProportionArm):
        return ratio_of_proportions(
            champion.successes, champion.count, challenger.successes, challenger.count, confidence=confidence
        )
    if isinstance(champion, MeanArm) and isinstance(challenger, MeanArm) and champion.mean > 0 and challenger.mean > 0:
        return ratio_of_means(
            SummaryStats(champion.count, champion.mean, champion.variance),
            SummaryStats(challenger.count, challenger.mean, challenger.variance),
            confidence=confidence,
        )
    return None


def _estimate(arm: Arm) -> float:
    return arm.successes / arm.count if isinstance(arm, ProportionArm) else arm.mean


def _report(
    *,
    metric: str | None,
    kind: str,
    method: str,
    alpha: float,
    higher_is_better: bool,
    arms: list[Arm],
    analysis: ExperimentAnalysis,
    ratios: list[RatioEstimate | None],
) -> dict[str, Any]:
    srm = analysis.srm
    return {
        "metric": metric,
        "type": kind,
        "analysis": method,
        "alpha": alpha,
        "higher_is_better": higher_is_better,
        "champion": analysis.champion,
        "arms": [{"name": arm.name, "count": arm.count, "estimate": _estimate(arm)} for arm in arms],
        "comparisons": [
            {
                "arm": comparison.arm,
                "method": comparison.method,
                "difference": comparison.estimate,
                "interval": [_finite(comparison.interval.low), _finite(comparison.interval.high)],
                "confidence": comparison.interval.level,
                "p_value": comparison.p_value,
                "adjusted_p_value": comparison.adjusted_p_value,
                "ratio": None if ratio is None else ratio.ratio,
                "ratio_interval": None
                if ratio is None
                else [_finite(ratio.interval.low), _finite(ratio.interval.high)],
                "verdict": comparison.verdict.value,
            }
            for comparison, ratio in zip(analysis.comparisons, ratios, strict=True)
        ],
        "srm": None
        if srm is None
        else {
            "statistic": srm.statistic,
            "p_value": srm.p_value,
            "alpha": srm.alpha,
            "mismatch": srm.mismatch,
            "observed": list(srm.observed),
            "expected": list(srm.expected),
        },
        "decision": analysis.decision.value,
        "winner": analysis.winner,
        "reason": analysis.reason,
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _text(report: dict[str, Any]) -> str:
    direction = "higher is better" if report["higher_is_better"] else "lower is better"
    label = f"{report['metric']}: " if report["metric"] else ""
    lines = [f"{label}{report['type']}, {direction}; {report['analysis']}, alpha {report['alpha']:g}", ""]
    width = max(len(arm["name"]) for arm in report["arms"])
    lines.append(f"{'arm'.ljust(width)}  {'count':>10}  estimate")
    for arm in report["arms"]:
        lines.append(f"{arm['name'].ljust(width)}  {arm['count']:>10g}  {arm['estimate']:.6g}")
    lines.append("")
    for c in report["comparisons"]:
        low, high = c["interval"]
        interval = f"[{_signed(low)}, {_signed(high)}]"
        line = (
            f"{c['arm']} vs {report['champion']}: difference {_signed(c['difference'])} "
            f"{c['confidence'] * 100:g}% {'CS' if 'mSPRT' in c['method'] else 'CI'} {interval}, "
            f"p = {c['p_value']:.3g} (adjusted {c['adjusted_p_value']:.3g})"
        )
        if c["ratio"] is not None:
            ratio_low, ratio_high = c["ratio_interval"]
            line += f", ratio {c['ratio']:.4g} [{_bound(ratio_low)}, {_bound(ratio_high)}]"
        lines.append(f"{line}: {c['verdict']}")
    srm = report["srm"]
    if srm is None:
        lines.append("sample ratio: not checked (no weights given)")
    else:
        status = "MISMATCH" if srm["mismatch"] else "ok"
        lines.append(
            f"sample ratio: chi2 = {srm['statistic']:.3g}, p = {srm['p_value']:.3g} ({status} at {srm['alpha']:g})"
        )
    winner = f" ({report['winner']})" if report["winner"] else ""
    lines.append(f"decision: {report['decision']}{winner}: {report['reason']}")
    return "\n".join(lines)


def _signed(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:+.4g}"


def _bound(value: float | None) -> str:
    """A ratio's limit: Fieller's interval has no upper limit while the champion mean is not clear of zero."""
    return "unbounded" if value is None else f"{value:.4g}"
