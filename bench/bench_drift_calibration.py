"""Drift verdicts calibrated at every sample size, and as sensitive as Evidently's defaults (issue 13).

Three tables, all seeded:

1. **No drift**: both windows drawn from one distribution; the share of features whose
   verdict is Drift, with the defaults, for eight distributions at n = 100 ... 1,000,000 per
   side, on the raw-data path (``evaluate_samples`` / ``evaluate_categorical``, what
   ``modelrollout drift`` runs on CSV files, every method) and on the histogram path
   (``evaluate_binned``, what a DriftMonitor runs on Prometheus buckets, every method) with
   Prometheus-style buckets, equal-probability bins and 50 sparse bins. Histogram counts are
   drawn from the multinomial law of the binned distribution, which is exactly what binning
   raw draws gives.
2. **Drift**: mean shifts of 0.1, 0.25 and 0.5 reference standard deviations (``np.std`` of
   the reference sample, the unit of Evidently's normed Wasserstein), scale changes of 1.3x
   and 2x about the median, and a 10-point category shift, at n = 1,000 and 10,000: detection
   of our defaults next to Evidently 0.7.23's default stat test for the column (what its
   ``DataDriftPreset`` picks: KS p < 0.05 up to 1,000 reference rows, then normed Wasserstein
   >= 0.1; chi-square, then Jensen-Shannon for categories), with the time per feature.
3. **Large-sample sensitivity**: a +0.3 shift of a Cauchy and a 1.3x scale change of a t(2)
   at 100,000 rows.
(``ratio_of_means`` coverage has its own bench: ``bench/bench_ratio_coverage.py``.)

    .venv/bin/python bench/bench_drift_calibration.py               # the full tables (about an hour, loaded 2 cores)
    .venv/bin/python bench/bench_drift_calibration.py --skip-evidently   # the no-drift table only
    .venv/bin/python bench/bench_drift_calibration.py --features 200 --large-features 20 --drift-features 100

Raw numeric cells at n = 1,000,000 use ``--large-features`` (30) features, not 1,000: each
costs a KS test, a quantile binning and a Wasserstein distance on two million values
(1,000 such features per distribution would take hours on the shared 2-core machine).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from modelrollout.stats.drift import (  # noqa: E402
    CATEGORICAL_METHODS,
    NUMERIC_METHODS,
    SAMPLE_METHODS,
    evaluate_binned,
    evaluate_samples,
)
from modelrollout.stats.histograms import FloatArray  # noqa: E402

Sampler = Callable[[np.random.Generator, int], FloatArray]
CATEGORY_SHARES = np.array([0.35, 0.25, 0.15, 0.12, 0.08, 0.05])
SHIFTED_SHARES = np.array([0.25, 0.35, 0.15, 0.12, 0.08, 0.05])  # 10 points from the first to the second


def _mixture(rng: np.random.Generator, size: int) -> FloatArray:
    first = rng.random(size) < 0.7
    return np.where(first, rng.normal(0.0, 1.0, size), rng.normal(3.0, 0.5, size))


def _zero_inflated(rng: np.random.Generator, size: int) -> FloatArray:
    return np.where(rng.random(size) < 0.5, 0.0, rng.poisson(4.0, size)).astype(np.float64)


NUMERIC: dict[str, Sampler] = {
    "normal": lambda rng, size: rng.normal(0.0, 1.0, size),
    "lognormal": lambda rng, size: rng.lognormal(0.0, 1.0, size),
    "t(2)": lambda rng, size: rng.standard_t(2, size),
    "Cauchy": lambda rng, size: rng.standard_cauchy(size),
    "mixture": _mixture,
    "Poisson": lambda rng, size: rng.poisson(3.0, size).astype(np.float64),
    "zero-inflated": _zero_inflated,
}
DISTRIBUTIONS = [*NUMERIC, "categorical"]


@dataclass(frozen=True)
class Layout:
    name: str
    edges: FloatArray
    shares: FloatArray


def layouts(sample: FloatArray) -> list[Layout]:
    """Prometheus-style buckets (11 evenly spaced bounds over the 1-99% range, open-ended: 12 buckets),
    equal-probability deciles, and 50 bins over the 0.1-99.9% range (sparse in the tails)."""
    low, high = np.quantile(sample, [0.01, 0.99])
    prometheus = np.r_[-np.inf, np.linspace(low, high, 11), np.inf]
    deciles = np.r_[-np.inf, np.unique(np.quantile(sample, np.linspace(0, 1, 11)[1:-1])), np.inf]
    low, high = np.quantile(sample, [0.001, 0.999])
    sparse = np.r_[-np.inf, np.linspace(low, high, 49), np.inf]
    result = []
    for name, edges in (("Prometheus buckets", prometheus), ("equal-probability", deciles), ("50 sparse bins", sparse)):
        counts = np.histogram(sample, edges)[0].astype(np.float64)
        result.append(Layout(name, edges, counts / counts.sum()))
    return result


def no_drift_raw(name: str, n: int, features: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    if name == "categorical":
        reference = rng.multinomial(n, CATEGORY_SHARES, size=features).astype(np.float64)
        current = rng.multinomial(n, CATEGORY_SHARES, size=features).astype(np.float64)
        report = evaluate_binned(reference, current, methods=CATEGORICAL_METHODS, ordered=False)
        return float(report.drifted.mean())
    sampler = NUMERIC[name]
    flagged = 0
    for _ in range(features):
        flagged += evaluate_samples(sampler(rng, n), sampler(rng, n), methods=SAMPLE_METHODS).drifted
    return flagged / features


def no_drift_binned(layout: Layout, n: int, features: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    reference = rng.multinomial(n, layout.shares, size=features).astype(np.float64)
    current = rng.multinomial(n, layout.shares, size=features).astype(np.float64)
    report = evaluate_binned(reference, current, layout.edges, methods=NUMERIC_METHODS)
    return float(report.drifted.mean())


def drifted(kind: str, amount: float, reference: FloatArray, current: FloatArray) -> FloatArray:
    if kind == "shift":
        return current + amount * float(np.std(reference))
    median = float(np.median(reference))
    return median + (current - median) * amount


def evidently_verdict(reference: FloatArray, current: FloatArray, categorical: bool) -> bool:
    import pandas as pd  # noqa: PLC0415 - the bench extra
    from evidently.legacy.calculations.stattests.registry import get_stattest  # noqa: PLC0415
    from evidently.legacy.core import ColumnType  # noqa: PLC0415

    column_type = ColumnType.Categorical if categorical else ColumnType.Numerical
    ref, cur = pd.Series(reference), pd.Series(current)
    test = get_stattest(ref, cur, column_type, None)
    return bool(test(ref, cur, column_type, None).drifted)


def detection(
    name: str, kind: str, amount: float, n: int, *, features: int, seed: int
) -> tuple[float, float, float, float]:
    """(our detection, Evidently's, our ms per feature, Evidently's ms per feature)."""
    rng = np.random.default_rng(seed)
    ours = theirs = 0
    ours_time = theirs_time = 0.0
    for _ in range(features):
        if name == "categorical":
            reference = rng.choice(len(CATEGORY_SHARES), size=n, p=CATEGORY_SHARES)
            current = rng.choice(len(CATEGORY_SHARES), size=n, p=SHIFTED_SHARES)
            started = time.perf_counter()
            ref_counts = np.bincount(reference, minlength=len(CATEGORY_SHARES))[np.newaxis].astype(np.float64)
            cur_counts = np.bincount(current, minlength=len(CATEGORY_SHARES))[np.newaxis].astype(np.float64)
            ours += bool(evaluate_binned(ref_counts, cur_counts, methods=CATEGORICAL_METHODS, ordered=False).drifted[0])
            ours_time += time.perf_counter() - started
            labels = np.array(list("abcdef"))
            started = time.perf_counter()
            theirs += evidently_verdict(labels[reference], labels[current], categorical=True)
            theirs_time += time.perf_counter() - started
            continue
        reference = NUMERIC[name](rng, n)
        current = drifted(kind, amount, reference, NUMERIC[name](rng, n))
        started = time.perf_counter()
        ours += evaluate_samples(reference, current, methods=SAMPLE_METHODS).drifted
        ours_time += time.perf_counter() - started
        started = time.perf_counter()
        theirs += evidently_verdict(reference, current, categorical=False)
        theirs_time += time.perf_counter() - started
    return ours / features, theirs / features, 1000 * ours_time / features, 1000 * theirs_time / features


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=1000, help="features per no-drift cell (n <= 10,000)")
    parser.add_argument("--large-features", type=int, default=30, help="features per raw no-drift cell at 1,000,000")
    parser.add_argument("--binned-features", type=int, default=4000, help="features per histogram no-drift cell")
    parser.add_argument("--drift-features", type=int, default=200, help="features per drift cell")
    parser.add_argument(
        "--drift-features-10k", type=int, default=60, help="features per drift cell at n = 10,000 (permutations)"
    )
    parser.add_argument("--skip-evidently", action="store_true", help="only the no-drift table")
    parser.add_argument("--skip-no-drift", action="store_true", help="only the drift tables")
    parser.add_argument("--skip-raw", action="store_true", help="no-drift table: the histogram path only")
    parser.add_argument("--skip-binned", action="store_true", help="no-drift table: the raw path only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    started = time.monotonic()
    sizes = [100, 1_000, 10_000, 1_000_000]
    if not args.skip_no_drift:
        print("### No drift: share of features flagged as drifted (defaults, every method)\n")
        worst: dict[str, tuple[float, str]] = {}
        header = "| path | distribution | " + " | ".join(f"n = {n:,}" for n in sizes) + " |"
        print(header)
        print("|" + "---|" * (len(sizes) + 2))
        for index, name in enumerate([] if args.skip_raw else DISTRIBUTIONS):
            cells = []
            for n in sizes:
                count = args.large_features if n >= 1_000_000 and name != "categorical" else args.features
                rate = no_drift_raw(name, n, count, seed=1000 + 17 * index + n % 997)
                cells.append(f"{100 * rate:.1f}% ({count})")
                worst["raw"] = max(worst.get("raw", (0.0, "")), (rate, f"{name}, n = {n:,}"))
            print(f"| raw | {name} | " + " | ".join(cells) + " |", flush=True)
        big = np.random.default_rng(7)
        for index, name in enumerate({} if args.skip_binned else NUMERIC):
            for layout in layouts(NUMERIC[name](big, 2_000_000)):
                cells = []
                for n in sizes:
                    rate = no_drift_binned(layout, n, args.binned_features, seed=2000 + 31 * index + n % 991)
                    cells.append(f"{100 * rate:.1f}%")
                    worst[layout.name] = max(worst.get(layout.name, (0.0, "")), (rate, f"{name}, n = {n:,}"))
                print(f"| {layout.name} | {name} | " + " | ".join(cells) + " |", flush=True)
        print(
            f"\nFeatures per cell: raw {args.features} ({args.large_features} at n = 1,000,000 for numeric data), "
            f"histograms {args.binned_features}. Worst cell per path: "
            + "; ".join(f"{path} {100 * rate:.1f}% ({where})" for path, (rate, where) in worst.items())
            + "\n"
        )

    if not args.skip_evidently:
        print("### Drift: detection, ours (defaults, raw path) vs Evidently 0.7.23 default stat test\n")
        print("| distribution | drift | n | ours | Evidently | ours ms/feature | Evidently ms/feature |")
        print("|---|---|---|---|---|---|---|")
        changes = [("shift", 0.1), ("shift", 0.25), ("shift", 0.5), ("scale", 1.3), ("scale", 2.0)]
        behind = []
        for index, name in enumerate(DISTRIBUTIONS):
            cells = [("category", 0.1)] if name == "categorical" else changes
            for kind, amount in cells:
                label = {"shift": f"mean +{amount} sd", "scale": f"scale x{amount}", "category": "10-point shift"}[kind]
                for n in (1_000, 10_000):
                    ours, theirs, ours_ms, theirs_ms = detection(
                        name,
                        kind,
                        amount,
                        n,
                        features=args.drift_features if n < 10_000 else args.drift_features_10k,
                        seed=3000 + 13 * index + int(amount * 100) + n,
                    )
                    mark = "" if ours >= theirs else " (behind)"
                    if ours < theirs:
                        behind.append(f"{name} {label} n={n:,}")
                    print(
                        f"| {name} | {label} | {n:,} | {100 * ours:.1f}%{mark} | {100 * theirs:.1f}% "
                        f"| {ours_ms:.2f} | {theirs_ms:.2f} |",
                        flush=True,
                    )
        print(
            f"\n{args.drift_features} features per cell at n = 1,000, {args.drift_features_10k} at n = 10,000 "
            "(there our raw-path Wasserstein runs 300 permutations of 20,000 values per feature); "
            f"cells behind Evidently: {', '.join(behind) or 'none'}.\n",
            flush=True,
        )

        print("### Large-sample sensitivity (100,000 rows per side)\n")
        print("| change | ours | Evidently |")
        print("|---|---|---|")
        rng = np.random.default_rng(4)
        for label, sampler, change in (
            ("Cauchy +0.3", NUMERIC["Cauchy"], lambda x: x + 0.3),
            ("t(2) scale x1.3", NUMERIC["t(2)"], lambda x: x * 1.3),
        ):
            runs = 20
            ours = theirs = 0
            for _ in range(runs):
                reference, current = sampler(rng, 100_000), change(sampler(rng, 100_000))
                ours += evaluate_samples(reference, current).drifted
                theirs += evidently_verdict(reference, current, categorical=False)
            print(f"| {label} | {100 * ours / runs:.0f}% | {100 * theirs / runs:.0f}% |")
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
