"""Benchmark of the statistics core, and a side-by-side with Evidently's data drift.

Run from the repository root (the command used for bench/RESULTS-stats.md)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_stats.py

``--quick`` shrinks everything for a smoke run; ``--no-evidently`` skips the
comparison (Evidently is in the ``bench`` extra: ``pip install -e '.[bench]'``).
Prints a Markdown section. Timings are wall-clock medians of repeated runs,
pinned to one BLAS/OpenMP thread when threadpoolctl is available.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from modelrollout.stats import (
    ArmTotals,
    Method,
    MsprtConfig,
    SequentialState,
    evaluate_binned,
    evaluate_quality,
    evaluate_samples,
    msprt_update,
)
from modelrollout.stats.drift import ks_samples

#: Evidently stattests whose ValueDrift value is a p-value (drift when below the threshold).
P_VALUE_TESTS = frozenset(
    {"ks", "chisquare", "z", "anderson", "cramer_von_mises", "fisher_exact", "g_test", "mannw", "t_test"}
)


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and minimum wall time in seconds over ``repeat`` calls (after one warm-up call)."""
    call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), min(samples)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def environment() -> list[str]:
    lines = [
        f"- Python {platform.python_version()}, numpy {np.__version__}, scipy {_version('scipy')}, "
        f"{os.cpu_count()} cores ({platform.machine()}), shared with other builds: timings are noisy",
        f"- OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}",
    ]
    if importlib.util.find_spec("threadpoolctl"):
        import threadpoolctl  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415

        for pool in threadpoolctl.threadpool_info():
            lines.append(
                f"- {pool.get('internal_api')} {pool.get('version')} ({pool.get('architecture', 'n/a')} kernel), "
                f"{pool.get('prefix')}"
            )
    return lines


def _version(module: str) -> str:
    return str(getattr(__import__(module), "__version__", "?"))


def bench_core(quick: bool) -> list[str]:
    rng = np.random.default_rng(0)
    features, bins = (200, 50) if quick else (1000, 50)
    reference = rng.poisson(200.0, (features, bins)).astype(np.float64)
    current = rng.poisson(200.0, (features, bins)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = ["| what | size | median | min |", "|---|---|---|---|"]
    median, best = timed(lambda: evaluate_binned(reference, current, edges), 20 if quick else 100)
    rows.append(
        f"| all 6 drift metrics, one `evaluate_binned` call | {features} features x {bins} bins "
        f"| {ms(median)} | {ms(best)} |"
    )
    for method in Method:
        median, best = timed(partial(evaluate_binned, reference, current, edges, methods=[method]), 30)
        rows.append(f"| `{method.value}` alone | {features} x {bins} | {ms(median)} | {ms(best)} |")
    median, best = timed(lambda: evaluate_quality(reference, current, edges, np.zeros(features)), 30)
    rows.append(f"| data quality (missing, range, outliers) | {features} x {bins} | {ms(median)} | {ms(best)} |")

    size = 100_000 if quick else 1_000_000
    left, right = rng.normal(0.0, 1.0, size), rng.normal(0.01, 1.0, size)
    median, best = timed(lambda: ks_samples(left, right), 3)
    rows.append(
        f"| KS two-sample (`scipy.stats.ks_2samp`) on raw samples | {size:,} per side | {ms(median)} | {ms(best)} |"
    )
    median, best = timed(lambda: evaluate_samples(left, right), 3)
    rows.append(
        f"| all 6 metrics on raw samples (`evaluate_samples`) | {size:,} per side | {ms(median)} | {ms(best)} |"
    )

    config = MsprtConfig(mixing_sd=0.01)
    batch_a, batch_b = ArmTotals.of_proportion(500, 50), ArmTotals.of_proportion(500, 55)
    updates = 10_000 if quick else 100_000

    def run_updates() -> None:
        state = SequentialState()
        for _ in range(updates):
            state = msprt_update(state, batch_a, batch_b, config)

    median, best = timed(run_updates, 3)
    rows.append(
        f"| mSPRT update per batch (`msprt_update`) | {updates:,} updates "
        f"| {median / updates * 1e6:.2f} us each | {best / updates * 1e6:.2f} us each |"
    )
    return rows


def drift_dataset(features: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference and current ``[rows, features]`` plus the true shift of each feature (in sd).

    A mix of shapes (normal, lognormal, uniform) with: 10% large shifts (0.5 sd), 10% small
    shifts (0.1 sd, near the usual thresholds), 10% a 30% wider spread, 70% unchanged.
    """
    rng = np.random.default_rng(seed)
    shapes = np.arange(features) % 3
    shift = np.zeros(features)
    scale = np.ones(features)
    shift[: features // 10] = 0.5
    shift[features // 10 : features // 5] = 0.1
    scale[features // 5 : 3 * features // 10] = 1.3

    def draw(n: int, with_change: bool) -> np.ndarray:
        base = rng.standard_normal((n, features))
        data = np.where(
            shapes == 1, np.exp(0.5 * base), np.where(shapes == 2, rng.uniform(-1.7, 1.7, (n, features)), base)
        )
        if with_change:
            spread = data.std(axis=0)
            data = data.mean(axis=0) + (data - data.mean(axis=0)) * scale + shift * spread
        return data

    return draw(rows, False), draw(rows, True), shift + (scale != 1)


def ours_binned(reference: np.ndarray, current: np.ndarray, bins: int) -> tuple[Any, np.ndarray]:
    """Histogram route: per-feature reference-quantile edges, then one vectorised call."""
    quantiles = np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1], axis=0).T
    features = reference.shape[1]
    ref_counts = np.empty((features, bins))
    cur_counts = np.empty((features, bins))
    for f in range(features):
        inner = quantiles[f]
        ref_counts[f] = np.bincount(np.searchsorted(inner, reference[:, f], side="left"), minlength=bins)
        cur_counts[f] = np.bincount(np.searchsorted(inner, current[:, f], side="left"), minlength=bins)
    edges = np.concatenate(
        [
            np.minimum(reference.min(axis=0), current.min(axis=0))[:, None],
            quantiles,
            np.maximum(reference.max(axis=0), current.max(axis=0))[:, None],
        ],
        axis=1,
    )
    return evaluate_binned(ref_counts, cur_counts, edges), edges


def bench_evidently(quick: bool) -> list[str]:
    if importlib.util.find_spec("evidently") is None:
        return ["Evidently is not installed (`pip install -e '.[bench]'`): comparison skipped."]
    import warnings  # noqa: PLC0415

    warnings.simplefilter("ignore")
    import evidently  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415
    import pandas as pd  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415
    from evidently import Report  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415
    from evidently.presets import DataDriftPreset  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415

    features, rows = (100, 2000) if quick else (1000, 2000)
    reference, current, change = drift_dataset(features, rows, seed=7)
    names = [f"f{i}" for i in range(features)]
    ref_frame, cur_frame = pd.DataFrame(reference, columns=names), pd.DataFrame(current, columns=names)
    changed = change != 0

    def evidently_run(**options: Any) -> tuple[float, dict[str, tuple[str, float, float]]]:
        Report([DataDriftPreset(**options)]).run(cur_frame.iloc[:, :5], ref_frame.iloc[:, :5])  # warm-up
        start = time.perf_counter()
        snapshot = Report([DataDriftPreset(**options)]).run(cur_frame, ref_frame)
        elapsed = time.perf_counter() - start
        found = {}
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if config.get("type", "").endswith("ValueDrift"):
                found[config["column"]] = (config["method"], float(metric["value"]), float(config["threshold"]))
        return elapsed, found

    def evidently_drifted(found: dict[str, tuple[str, float, float]]) -> np.ndarray:
        flags = []
        for name in names:
            method, value, threshold = found[name]
            p_value_test = "p_value" in method or method in P_VALUE_TESTS
            flags.append(value < threshold if p_value_test else value >= threshold)
        return np.array(flags)

    lines = [
        f"Data: {features} numeric features x {rows:,} rows per side (normal, lognormal, uniform); 10% shifted by "
        "0.5 sd, 10% by 0.1 sd, 10% with a 30% wider spread, 70% unchanged. Evidently "
        f"{evidently.__version__} with pandas {pd.__version__}, `Report([DataDriftPreset()])`, "
        "timed after a warm-up run.",
        "",
        "| run | Evidently | ours | speed-up | verdicts agree | flagged (Evidently / ours) "
        "| recall of true changes (Evidently / ours) | false alarms on unchanged (Evidently / ours) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def row(label: str, theirs_s: float, ours_s: float, theirs: np.ndarray, ours: np.ndarray) -> str:
        agree = float(np.mean(theirs == ours))
        return (
            f"| {label} | {theirs_s:.2f} s | {ours_s * 1e3:.1f} ms | {theirs_s / ours_s:,.0f}x | {agree:.1%} | "
            f"{int(theirs.sum())} / {int(ours.sum())} | {theirs[changed].mean():.0%} / {ours[changed].mean():.0%} | "
            f"{theirs[~changed].mean():.1%} / {ours[~changed].mean():.1%} |"
        )

    default_s, default_found = evidently_run()
    method_name = default_found[names[0]][0]
    theirs = evidently_drifted(default_found)
    start = time.perf_counter()
    ours = np.array(
        [
            evaluate_samples(reference[:, f], current[:, f], methods=[Method.WASSERSTEIN]).drifted
            for f in range(features)
        ]
    )
    ours_s = time.perf_counter() - start
    lines.append(
        row(
            f"Evidently default ({method_name}, 0.1) vs our exact raw Wasserstein (0.1 sd)",
            default_s,
            ours_s,
            theirs,
            ours,
        )
    )

    start = time.perf_counter()
    report, _ = ours_binned(reference, current, 20)
    binned_s = time.perf_counter() - start
    lines.append(
        row(
            "Evidently default vs our histogram route, all 6 metrics (20 quantile bins, binning included)",
            default_s,
            binned_s,
            theirs,
            report.drifted,
        )
    )
    wasserstein_binned_flags = report.method_codes[Method.WASSERSTEIN] == 2
    lines.append(
        row(
            "Evidently default vs our binned Wasserstein alone (20 bins)",
            default_s,
            binned_s,
            theirs,
            wasserstein_binned_flags,
        )
    )

    ks_s, ks_found = evidently_run(num_method="ks")
    theirs_ks = evidently_drifted(ks_found)
    start = time.perf_counter()
    results = [evaluate_samples(reference[:, f], current[:, f], methods=[Method.KS]) for f in range(features)]
    ours_ks_s = time.perf_counter() - start
    significant = np.array([r.score("ks").p_value < 0.05 for r in results])  # type: ignore[operator]
    gated = np.array([r.drifted for r in results])
    lines.append(row("KS p < 0.05, both on raw samples", ks_s, ours_ks_s, theirs_ks, significant))
    lines.append(row("Evidently KS vs ours KS with the minimum effect (D >= 0.1)", ks_s, ours_ks_s, theirs_ks, gated))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--no-evidently", action="store_true", help="skip the Evidently comparison")
    args = parser.parse_args()
    limiter: Any = None
    if importlib.util.find_spec("threadpoolctl"):
        import threadpoolctl  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415

        limiter = threadpoolctl.threadpool_limits(1)
    print("## Statistics core (`modelrollout.stats`)\n")
    print("\n".join(environment()))
    print("\n### Drift, quality and sequential kernels (one thread)\n")
    print("\n".join(bench_core(args.quick)))
    if not args.no_evidently:
        print("\n### Side by side with Evidently (data drift on raw samples)\n")
        print("\n".join(bench_evidently(args.quick)))
    if limiter is not None:
        limiter.restore_original_limits()
    return 0


if __name__ == "__main__":
    sys.exit(main())
