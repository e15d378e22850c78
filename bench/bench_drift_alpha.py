"""What decides the one drift cell where Evidently's default detects more: the test, or the level? (issue 13)

A location shift of 0.1 reference standard deviations of a Student t(2), 1,000 rows per side, is
the one drift cell of ``bench_drift_calibration.py`` where Evidently 0.7.23's default (KS at 5%)
detects more than our defaults (Anderson-Darling leading at about 3.2%, KS at 0.4%, the binned
distances and Wasserstein sharing the rest of a 4% budget). This bench runs both tests on the same
seeded pairs at the same levels, beside the no-drift cells that bound the level from above:

* **t(2), mean +0.1 sd, n = 1,000**: detection by KS and by Anderson-Darling (with our practical
  size, a KS statistic of at least 0.05) at 3.2%, 4% and 5%, and by our defaults.
* **No drift, normal, n = 100** (the worst no-drift cell of the raw path) and **t(2), n = 1,000**: the
  share flagged by the same tests at the same levels.

    .venv/bin/python bench/bench_drift_alpha.py [--features 4000] [--seed 13]

Prints Markdown.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from modelrollout.stats.anderson import anderson_darling  # noqa: E402
from modelrollout.stats.drift import DEFAULT_THRESHOLDS, SAMPLE_METHODS, evaluate_samples  # noqa: E402
from modelrollout.stats.histograms import FloatArray  # noqa: E402

LEVELS = (0.032, 0.04, 0.05)
Pair = Callable[[np.random.Generator], tuple[FloatArray, FloatArray]]


def t2_shifted(rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    reference = rng.standard_t(2, 1000)
    return reference, rng.standard_t(2, 1000) + 0.1 * float(np.std(reference))


def t2_same(rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    return rng.standard_t(2, 1000), rng.standard_t(2, 1000)


def normal_same_100(rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    return rng.normal(0.0, 1.0, 100), rng.normal(0.0, 1.0, 100)


CELLS: tuple[tuple[str, Pair], ...] = (
    ("t(2), mean +0.1 sd, n = 1,000 (detection)", t2_shifted),
    ("no drift: normal, n = 100 (flagged)", normal_same_100),
    ("no drift: t(2), n = 1,000 (flagged)", t2_same),
)


def run_cell(pair: Pair, features: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    ks_p, ad_p, gaps, ours = [], [], [], []
    for _ in range(features):
        reference, current = pair(rng)
        ks = stats.ks_2samp(reference, current)
        ks_p.append(float(ks.pvalue))
        gaps.append(float(ks.statistic))
        ad_p.append(anderson_darling(reference, current, level=LEVELS[0]).p_value)
        ours.append(evaluate_samples(reference, current, methods=SAMPLE_METHODS).drifted)
    ks_a, ad_a, gap_a = np.array(ks_p), np.array(ad_p), np.array(gaps)
    row = {"our defaults": float(np.mean(ours))}
    practical = gap_a >= DEFAULT_THRESHOLDS.ks_min_statistic
    for level in LEVELS:
        row[f"KS {level:.1%}"] = float(np.mean(ks_a < level))
        row[f"AD {level:.1%}"] = float(np.mean((ad_a < level) & practical))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=4000, help="pairs per cell")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    started = time.monotonic()
    rows = [(name, run_cell(pair, args.features, args.seed + index)) for index, (name, pair) in enumerate(CELLS)]
    columns = list(rows[0][1])
    print(f"| cell ({args.features:,} pairs, seed {args.seed}) | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, row in rows:
        print(f"| {name} | " + " | ".join(f"{row[c]:.1%}" for c in columns) + " |")
    standard_error = 100 * np.sqrt(0.05 * 0.95 / args.features)
    print(
        f"\nStandard error of a share near 5%: {standard_error:.2f} points; near 97%: "
        f"{100 * np.sqrt(0.03 * 0.97 / args.features):.2f}. {time.monotonic() - started:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
