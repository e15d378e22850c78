"""Coverage of ``ratio_of_means`` intervals by seeded simulation (issue 13); prints Markdown.

Both arms come from one distribution, the challenger's scaled by 1.1, so the true ratio of
means is 1.1 whatever the shape. Each cell draws the samples, reduces them to (count, mean,
variance) as Prometheus would, and counts how often the interval holds 1.1:

* **delta (before)**: the delta-method log interval ``ratio_of_means`` used before issue 13,
  ``exp(log(ratio) +- z * sqrt(s_a^2 / (n_a m_a^2) + s_b^2 / (n_b m_b^2)))``, computed here
  by its formula so the two can be compared on the same samples;
* **Fieller**: ``ratio_of_means`` itself, called once per replication.

``--part bootstrap`` runs ``bootstrap_ratio_of_means`` on the raw samples instead (fewer
replications: every one is a bootstrap of its own), BCa up to ``--bca-max`` observations per
arm and the percentile method above, where BCa's jackknife (one statistic per observation)
dominates the time; Fieller on the same samples is shown next to it.
``--part bootstrap-splits`` does the same for the unequal allocations. Each command below
takes under three minutes of CPU (the tables in docs/benchmarks.md):

    nice -n 15 .venv/bin/python bench/bench_ratio_coverage.py --part summary
    nice -n 15 .venv/bin/python bench/bench_ratio_coverage.py --part bootstrap --sizes 30 100 1000
    nice -n 15 .venv/bin/python bench/bench_ratio_coverage.py --part bootstrap --sizes 10000 \\
        --boot-replications 150
    nice -n 15 .venv/bin/python bench/bench_ratio_coverage.py --part bootstrap-splits --boot-replications 200

A Monte-Carlo coverage from ``R`` replications has a standard error of about
``sqrt(0.95 * 0.05 / R)``: 0.5 points at 2,000, 1.3 at 300, 1.8 at 150.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from modelrollout.stats.comparisons import SummaryStats, bootstrap_ratio_of_means, ratio_of_means

TRUE_RATIO = 1.1
Z_975 = 1.959963984540054
Sampler = Callable[[np.random.Generator, tuple[int, ...]], NDArray[np.float64]]


@dataclass(frozen=True)
class Shape:
    """A positive metric's distribution; ``skewness`` is printed so the tables can be read by it."""

    name: str
    skewness: float
    draw: Sampler


def _lognormal(sigma: float) -> Shape:
    skewness = (math.exp(sigma**2) + 2) * math.sqrt(math.exp(sigma**2) - 1)
    return Shape(f"lognormal sigma {sigma:g}", skewness, lambda rng, size: rng.lognormal(0.0, sigma, size))


def _gamma(shape: float) -> Shape:
    return Shape(f"gamma shape {shape:g}", 2 / math.sqrt(shape), lambda rng, size: rng.gamma(shape, 1.0, size))


SHAPES = [
    _lognormal(0.5),
    _lognormal(1.0),
    _lognormal(1.5),
    _lognormal(2.0),
    _gamma(0.5),
    _gamma(2.0),
    Shape("normal (mean 10, sd 3)", 0.0, lambda rng, size: rng.normal(10.0, 3.0, size)),
]
SIZES = [30, 100, 1_000, 10_000]
#: Unequal allocation, (champion, challenger) observations: where one arm's skewness is not cancelled.
SPLITS = [(900, 100), (9_000, 1_000), (100, 900)]
SPLIT_SHAPES = ("lognormal sigma 1.5", "gamma shape 0.5")


def _draw(shape: Shape, rng: np.random.Generator, rows: int, n: int) -> NDArray[np.float64]:
    return shape.draw(rng, (rows, n))


def summary_cell(shape: Shape, n_a: int, n_b: int, replications: int, seed: int) -> tuple[float, float, float, float]:
    """(delta coverage, Fieller coverage, share of Fieller intervals without an upper bound, median high/low).

    Drawn in chunks of at most 2 million values per arm so n = 10,000 fits in memory.
    """
    rng = np.random.default_rng(seed)
    delta_hits = fieller_hits = unbounded = 0
    widths: list[float] = []
    chunk = max(1, 2_000_000 // max(n_a, n_b))
    for start in range(0, replications, chunk):
        rows = min(chunk, replications - start)
        a = _draw(shape, rng, rows, n_a)
        b = TRUE_RATIO * _draw(shape, rng, rows, n_b)
        mean_a, mean_b = a.mean(axis=1), b.mean(axis=1)
        var_a, var_b = a.var(axis=1, ddof=1), b.var(axis=1, ddof=1)
        se = np.sqrt(var_a / (n_a * mean_a**2) + var_b / (n_b * mean_b**2))
        delta_hits += int(np.sum(np.abs(np.log(mean_b / mean_a) - math.log(TRUE_RATIO)) <= Z_975 * se))
        for row in range(rows):
            interval = ratio_of_means(
                SummaryStats(n_a, float(mean_a[row]), float(var_a[row])),
                SummaryStats(n_b, float(mean_b[row]), float(var_b[row])),
            ).interval
            fieller_hits += interval.contains(TRUE_RATIO)
            unbounded += math.isinf(interval.high)
            widths.append(interval.high / interval.low if interval.low > 0 else math.inf)
    return delta_hits / replications, fieller_hits / replications, unbounded / replications, float(np.median(widths))


def bootstrap_cell(
    shape: Shape, n_a: int, n_b: int, *, replications: int, resamples: int, bca_max: int, seed: int
) -> tuple[str, float, float]:
    """(bootstrap method, its coverage, Fieller's coverage on the same raw samples)."""
    rng = np.random.default_rng(seed)
    method: Literal["BCa", "percentile"] = "BCa" if max(n_a, n_b) <= bca_max else "percentile"
    boot_hits = fieller_hits = 0
    for index in range(replications):
        a = _draw(shape, rng, 1, n_a)[0]
        b = TRUE_RATIO * _draw(shape, rng, 1, n_b)[0]
        estimate = bootstrap_ratio_of_means(a, b, n_resamples=resamples, seed=index, method=method)
        boot_hits += estimate.interval.contains(TRUE_RATIO)
        fieller_hits += ratio_of_means(SummaryStats.of(a), SummaryStats.of(b)).interval.contains(TRUE_RATIO)
    return method, boot_hits / replications, fieller_hits / replications


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def summary_tables(replications: int, sizes: list[int], seed: int) -> None:
    print(f"### From (count, mean, variance): nominal 95% intervals, {replications:,} replications per cell\n")
    print("Equal arms, true ratio 1.1. Unbounded: share of Fieller intervals with no upper limit (champion mean")
    print("not distinguishable from 0); width: median high / low of Fieller's interval.\n")
    print("| distribution | skewness | n per arm | delta (before) | Fieller (now) | unbounded | width |")
    print("|---|---|---|---|---|---|---|")
    for index, shape in enumerate(SHAPES):
        for n in sizes:
            delta, fieller, unbounded, width = summary_cell(shape, n, n, replications, seed + 100 * index + n)
            print(
                f"| {shape.name} | {shape.skewness:.3g} | {n:,} | {_pct(delta)} | {_pct(fieller)} "
                f"| {_pct(unbounded)} | {width:.3g} |",
                flush=True,
            )
    print("\n### Unequal allocation (what summaries cannot repair)\n")
    print("| distribution | champion n | challenger n | delta (before) | Fieller (now) | unbounded | width |")
    print("|---|---|---|---|---|---|---|")
    for index, shape in enumerate(SHAPES):
        if shape.name not in SPLIT_SHAPES:
            continue
        for n_a, n_b in SPLITS:
            delta, fieller, unbounded, width = summary_cell(shape, n_a, n_b, replications, seed + 7 * index + n_a)
            print(
                f"| {shape.name} | {n_a:,} | {n_b:,} | {_pct(delta)} | {_pct(fieller)} | {_pct(unbounded)} "
                f"| {width:.3g} |",
                flush=True,
            )


def bootstrap_table(
    *, replications: int, resamples: int, bca_max: int, sizes: list[int], splits: bool, seed: int
) -> None:
    print(
        f"### Raw samples: `bootstrap_ratio_of_means` ({resamples:,} resamples, BCa up to {bca_max:,} per arm, "
        f"percentile above), {replications:,} replications per cell\n"
    )
    print("| distribution | champion n | challenger n | bootstrap | its coverage | Fieller on the same samples |")
    print("|---|---|---|---|---|---|")
    for index, shape in enumerate(SHAPES):
        cells = [(n, n) for n in sizes] + (SPLITS if splits and shape.name in SPLIT_SHAPES else [])
        for n_a, n_b in cells:
            method, boot, fieller = bootstrap_cell(
                shape,
                n_a,
                n_b,
                replications=replications,
                resamples=resamples,
                bca_max=bca_max,
                seed=seed + 100 * index + n_a + 7 * n_b,
            )
            print(f"| {shape.name} | {n_a:,} | {n_b:,} | {method} | {_pct(boot)} | {_pct(fieller)} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("summary", "bootstrap", "bootstrap-splits"), default="summary")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="observations per arm")
    parser.add_argument("--replications", type=int, default=2000, help="per summary cell")
    parser.add_argument("--boot-replications", type=int, default=300, help="per bootstrap cell")
    parser.add_argument("--resamples", type=int, default=999, help="bootstrap resamples")
    parser.add_argument("--bca-max", type=int, default=1000, help="largest arm bootstrapped with BCa")
    parser.add_argument("--seed", type=int, default=1300)
    args = parser.parse_args()
    started = time.process_time()
    if args.part == "summary":
        summary_tables(args.replications, args.sizes, args.seed)
    else:
        bootstrap_table(
            replications=args.boot_replications,
            resamples=args.resamples,
            bca_max=args.bca_max,
            sizes=[] if args.part == "bootstrap-splits" else args.sizes,
            splits=args.part == "bootstrap-splits",
            seed=args.seed,
        )
    print(f"\n(CPU {time.process_time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
