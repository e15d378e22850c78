"""``modelrollout drift``: compare a current data set with a reference, offline.

The same statistics the DriftMonitor runs in the cluster, for a CI pipeline
that should stop a model before it ships: exit status 1 when any feature
drifted, 0 when none did, 2 when an input file is malformed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelrollout.cli._files import (
    Column,
    HistogramFeature,
    InputError,
    Progress,
    is_json,
    read_csv_columns,
    read_histogram_file,
)
from modelrollout.stats.drift import (
    CATEGORICAL_METHODS,
    DEFAULT_BINS,
    SAMPLE_METHODS,
    BinnedFeature,
    DriftThresholds,
    Method,
    evaluate_categorical,
    evaluate_many,
    evaluate_samples,
)
from modelrollout.stats.histograms import HistogramError, from_samples, histogram, open_ended, rebin
from modelrollout.stats.results import DriftVerdict, FeatureDrift

EPILOG = """\
inputs:
  CSV files hold raw columns with a header row; numeric columns get every
  method, non-numeric columns are categorical (chi_square, psi,
  jensen_shannon, hellinger). anderson_darling needs raw numbers on both
  sides, so histogram (JSON) inputs leave it out. Empty cells and NA/NaN/null/None are missing
  and reported. JSON files (*.json) are histogram files:
    {"features": [
      {"name": "x", "type": "numeric", "edges": [0, 1, 2.5, "+Inf"], "counts": [10, 30, 5]},
      {"name": "sector", "type": "categorical", "categories": ["a", "b"], "counts": [7, 3]}]}
  A JSON reference (such as a DriftMonitor reference) can be compared with a
  CSV of current raw data, which is binned on the reference's edges.

verdicts (defaults, see docs/statistics.md):
  a score is drift when above its threshold and above its noise floor at
  these sample sizes (the exit status is wrong on same-distribution data at
  most 4% of the time): anderson_darling significant (the lead test on raw
  numbers) with a ks statistic >= 0.05; psi >= 0.2 (0.1 warning); ks statistic >= 0.05;
  chi_square Cramer's V >= 0.05; jensen_shannon (base 2) >= 0.1;
  wasserstein >= 0.1 reference standard deviations; hellinger >= 0.1.
  Fewer than --min-samples observations on either side, or noise floors
  above every threshold: InsufficientData.

exit status: 0 no drift, 1 drift in at least one feature, 2 bad input.
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "drift",
        help="compare a current data set with a reference (CSV or JSON histograms)",
        description="Per-feature drift scores and verdicts between a reference and a current data set.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reference", required=True, metavar="REF", help="reference CSV or JSON histogram file")
    parser.add_argument("--current", required=True, metavar="CUR", help="current CSV or JSON histogram file")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument(
        "--methods",
        metavar="LIST",
        help=f"comma-separated methods among {', '.join(m.value for m in Method)} (default: all that apply)",
    )
    parser.add_argument(
        "--bins",
        type=int,
        default=DEFAULT_BINS,
        metavar="N",
        help="reference-quantile bins for raw numeric columns (default %(default)d)",
    )
    parser.add_argument(
        "--min-samples",
        type=float,
        default=DriftThresholds().min_samples,
        metavar="N",
        help="observations needed on each side for a verdict (default %(default)g)",
    )
    parser.add_argument(
        "--categorical", metavar="COLUMNS", default="", help="comma-separated CSV columns to treat as categorical"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        methods = _methods(args.methods)
        if args.bins < 1:
            raise InputError("--bins", f"must be at least 1, got {args.bins}")
        thresholds = DriftThresholds(min_samples=args.min_samples)
        categorical = [name.strip() for name in args.categorical.split(",") if name.strip()]
        results, missing, skipped = _evaluate(args, methods, thresholds, categorical)
    except InputError as error:
        print(f"modelrollout drift: {error}", file=sys.stderr)
        return 2
    report = _report(args, methods, results, missing, skipped)
    if args.format == "json":
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(_text(report))
    return 1 if report["drifted"] else 0


def _methods(raw: str | None) -> tuple[Method, ...]:
    if raw is None:
        return SAMPLE_METHODS
    names = [name.strip() for name in raw.split(",") if name.strip()]
    known = {m.value for m in Method}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise InputError(
            "--methods", f"unknown method {', '.join(unknown) or '(none given)'}; known: {', '.join(sorted(known))}"
        )
    return tuple(Method(name) for name in dict.fromkeys(names))


Missing = dict[str, tuple[float, float]]


def _evaluate(
    args: argparse.Namespace, methods: tuple[Method, ...], thresholds: DriftThresholds, categorical: list[str]
) -> tuple[list[FeatureDrift], Missing, list[str]]:
    if is_json(args.reference):
        reference = read_histogram_file(args.reference)
        if is_json(args.current):
            return _binned(args.current, reference, read_histogram_file(args.current), methods, thresholds)
        if categorical:
            raise InputError("--categorical", "applies to CSV references only; a JSON reference declares its types")
        kinds = {feature.name: feature.kind for feature in reference}
        current = read_csv_columns(args.current, kinds=kinds, progress=Progress())
        return _binned(args.current, reference, _bin_columns(args.current, reference, current), methods, thresholds)
    if is_json(args.current):
        raise InputError(args.current, "a CSV reference needs a CSV current file (raw data on both sides)")
    ref_columns = read_csv_columns(args.reference, categorical=categorical, progress=Progress())
    kinds = {name: column.kind for name, column in ref_columns.items()}
    cur_columns = read_csv_columns(args.current, kinds=kinds, progress=Progress())
    return _raw(ref_columns, cur_columns, methods, thresholds, args.bins)


def _raw(
    reference: dict[str, Column],
    current: dict[str, Column],
    methods: tuple[Method, ...],
    thresholds: DriftThresholds,
    bins: int,
) -> tuple[list[FeatureDrift], Missing, list[str]]:
    results: list[FeatureDrift] = []
    skipped: list[str] = []
    missing: Missing = {}
    thresholds = _per_feature(thresholds, sum(1 for r in reference.values() if _applicable(methods, r.kind)))
    for name, ref in reference.items():
        cur = current[name]
        missing[name] = (
            _rate(ref.missing, len(ref.numbers) + len(ref.labels)),
            _rate(cur.missing, len(cur.numbers) + len(cur.labels)),
        )
        applicable = _applicable(methods, ref.kind)
        if not applicable:
            skipped.append(name)
            continue
        if ref.kind == "numeric":
            results.append(
                evaluate_samples(
                    np.asarray(ref.numbers),
                    np.asarray(cur.numbers),
                    name=name,
                    methods=applicable,
                    thresholds=thresholds,
                    bins=bins,
                )
            )
        else:
            results.append(
                evaluate_categorical(
                    Counter(ref.labels), Counter(cur.labels), name=name, methods=applicable, thresholds=thresholds
                )
            )
    return results, missing, skipped


def _bin_columns(path: str, reference: list[HistogramFeature], current: dict[str, Column]) -> list[HistogramFeature]:
    """Current raw columns as histograms on the reference's (open-ended) edges or categories."""
    binned: list[HistogramFeature] = []
    for feature in reference:
        column = current[feature.name]
        if feature.kind == "numeric":
            edges = open_ended(histogram(feature.edges or [], feature.counts)).edges
            counts = from_samples(np.asarray(column.numbers), edges).counts
            binned.append(
                HistogramFeature(feature.name, "numeric", counts.tolist(), edges=edges.tolist(), missing=column.missing)
            )
        else:
            tally = Counter(column.labels)
            categories = list(tally)
            binned.append(
                HistogramFeature(
                    feature.name,
                    "categorical",
                    [float(tally[c]) for c in categories],
                    categories=categories,
                    missing=column.missing,
                )
            )
    return binned


def _binned(
    current_path: str,
    reference: list[HistogramFeature],
    current: list[HistogramFeature],
    methods: tuple[Method, ...],
    thresholds: DriftThresholds,
) -> tuple[list[FeatureDrift], Missing, list[str]]:
    methods = tuple(m for m in methods if m is not Method.ANDERSON_DARLING)
    if not methods:
        raise InputError("--methods", "anderson_darling needs raw CSV data on both sides, not histograms")
    by_name = {feature.name: feature for feature in current}
    absent = [feature.name for feature in reference if feature.name not in by_name]
    if absent:
        raise InputError(current_path, f"features of the reference are missing: {', '.join(absent)}")
    extra = [name for name in by_name if name not in {feature.name for feature in reference}]
    if extra:
        raise InputError(current_path, f"features not in the reference: {', '.join(extra)}")
    features: list[BinnedFeature] = []
    missing: Missing = {}
    skipped: list[str] = []
    for ref in reference:
        cur = by_name[ref.name]
        if cur.kind != ref.kind:
            raise InputError(current_path, f"feature {ref.name!r} is {cur.kind} but {ref.kind} in the reference")
        missing[ref.name] = (_rate(ref.missing, sum(ref.counts)), _rate(cur.missing, sum(cur.counts)))
        if not _applicable(methods, ref.kind):
            skipped.append(ref.name)
            continue
        features.append(_aligned(current_path, ref, cur))
    results = evaluate_many(features, methods=methods, thresholds=_per_feature(thresholds, len(features)))
    return results, missing, skipped


def _per_feature(thresholds: DriftThresholds, features: int) -> DriftThresholds:
    """The exit status answers "did anything drift?", so alpha is split across the features (Bonferroni)."""
    return dataclasses.replace(thresholds, alpha=thresholds.alpha / max(1, features))


def _aligned(current_path: str, ref: HistogramFeature, cur: HistogramFeature) -> BinnedFeature:
    if ref.kind == "categorical":
        ref_categories, cur_categories = ref.categories or [], cur.categories or []
        ref_counts = dict(zip(ref_categories, ref.counts, strict=True))
        cur_counts = dict(zip(cur_categories, cur.counts, strict=True))
        categories = [*ref_categories, *sorted(set(cur_categories) - set(ref_categories))]
        return BinnedFeature(
            ref.name,
            np.array([ref_counts.get(c, 0.0) for c in categories]),
            np.array([cur_counts.get(c, 0.0) for c in categories]),
            categories=tuple(categories),
        )
    reference = histogram(ref.edges or [], ref.counts)
    current = histogram(cur.edges or [], cur.counts)
    if not np.array_equal(reference.edges, current.edges):
        reference = open_ended(reference)
        try:
            current = rebin(current, reference.edges)
        except HistogramError as error:
            raise InputError(current_path, f"feature {ref.name!r}: bins do not match the reference: {error}") from None
    return BinnedFeature(ref.name, reference.counts, current.counts, edges=reference.edges)


def _applicable(methods: tuple[Method, ...], kind: str) -> tuple[Method, ...]:
    return methods if kind == "numeric" else tuple(m for m in methods if m in CATEGORICAL_METHODS)


def _rate(missing: float, present: float) -> float:
    total = missing + present
    return missing / total if total > 0 else 0.0


def _report(
    args: argparse.Namespace,
    methods: tuple[Method, ...],
    results: Sequence[FeatureDrift],
    missing: Missing,
    skipped: list[str],
) -> dict[str, Any]:
    features = [
        {
            "name": result.name,
            "type": result.kind,
            "verdict": result.verdict.value,
            "drifted": result.drifted,
            "n_reference": result.n_reference,
            "n_current": result.n_current,
            "missing_rate_reference": missing[result.name][0],
            "missing_rate_current": missing[result.name][1],
            "scores": {s.method: _finite(s.statistic) for s in result.scores},
            "p_values": {s.method: _finite(s.p_value) for s in result.scores if s.p_value is not None},
            "effect_sizes": {s.method: _finite(s.effect_size) for s in result.scores if s.effect_size is not None},
            "verdicts": {s.method: s.verdict.value for s in result.scores},
        }
        for result in results
    ]
    counts = Counter(result.verdict for result in results)
    return {
        "reference": args.reference,
        "current": args.current,
        "methods": [m.value for m in methods],
        "drifted": any(result.drifted for result in results),
        "summary": {
            "features": len(results),
            "drift": counts[DriftVerdict.DRIFT],
            "warning": counts[DriftVerdict.WARNING],
            "no_drift": counts[DriftVerdict.NO_DRIFT],
            "insufficient_data": counts[DriftVerdict.INSUFFICIENT_DATA],
            "skipped": skipped,
        },
        "features": features,
    }


def _finite(value: float | None) -> float | None:
    """JSON has no infinities: a non-finite score (zero reference spread) is written as null."""
    return value if value is not None and math.isfinite(value) else None


def _text(report: dict[str, Any]) -> str:
    methods: list[str] = report["methods"]
    header = ["feature", "type", "verdict", "n_ref", "n_cur", "missing", *methods]
    rows = [header]
    for feature in report["features"]:
        cells = [
            feature["name"],
            feature["type"],
            feature["verdict"],
            f"{feature['n_reference']:.0f}",
            f"{feature['n_current']:.0f}",
            f"{feature['missing_rate_current']:.1%}",
        ]
        for method in methods:
            if method not in feature["scores"]:
                cells.append("-")
                continue
            score = feature["scores"][method]
            cell = "inf" if score is None else f"{score:.4g}"
            if method in feature["p_values"]:
                cell += f" (p={feature['p_values'][method]:.2g})"
            if feature["verdicts"][method] in (DriftVerdict.DRIFT, DriftVerdict.WARNING):
                cell += " *" if feature["verdicts"][method] == DriftVerdict.DRIFT else " ~"
            cells.append(cell)
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    summary = report["summary"]
    lines.append("")
    lines.append(
        f"{summary['drift']} of {summary['features']} features drifted "
        f"({summary['warning']} warning, {summary['insufficient_data']} insufficient data); "
        "* drift, ~ warning"
    )
    if summary["skipped"]:
        lines.append(f"skipped (no applicable method): {', '.join(summary['skipped'])}")
    return "\n".join(lines)
