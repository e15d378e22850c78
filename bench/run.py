"""``make bench``: run every benchmark side by side in one session and write docs/benchmarks.md.

Each section is a benchmark script's own Markdown output, headed by the exact
command that produced it, so every figure in the document can be reproduced.
Ratios (ours against Evidently) are measured in the same run, since these
machines are shared and absolute times drift between runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

SECTIONS: list[tuple[str, str, list[str]]] = [
    (
        "Statistics core (issue 4)",
        "Targets: all drift metrics over 1,000 features x 50 bins under 20 ms; a sequential update under 1 ms. "
        "Evidently's data-drift preset on the same data, side by side.",
        [PYTHON, "bench/bench_stats.py"],
    ),
    (
        "Local control plane (issue 3)",
        "Target: warm start under 20 s to a ready API server with nodes.",
        [PYTHON, "hack/bench_cluster.py", "--runs", "3", "--settle", "10"],
    ),
    (
        "ModelDeployment reaction and cost (issue 5)",
        "Target: a guardrail breach visible in Prometheus to 100% of traffic on stable under 5 s "
        "(1 s scrape, 2 s analysis interval).",
        [PYTHON, "bench/bench_rollout.py", "--runs", "3"],
    ),
    (
        "Canary verdicts (issue 11)",
        "Targets, defaults only, 1, 5, 50 and 500 requests/s, looks every 2 s and 30 s: healthy canaries rolled back "
        "at most 5% in every cell (2,000 rollouts each); 5x the stable error rate rolled back in at least 99% where "
        "the first step sees 200 canary requests; 100% errors rolled back within two looks of the 10th request; "
        "a canary beyond the margin promoted at most 5%. Seeded simulation through core.rollout.decide.",
        [PYTHON, "bench/bench_canary.py"],
    ),
    (
        "How fast a valid canary verdict can be (issue 11)",
        "A bad canary at 60 requests/s (5% weight, 20% against 1% errors): seconds from its first failure to a "
        "rollback, our harm test against an oracle that knows the ratio; the floor under any 5%-valid test.",
        [PYTHON, "bench/bench_canary_speed.py"],
    ),
    (
        "Ratio of means coverage (issue 13)",
        "Target: the ratio_of_means interval (Fieller, Welch t) holds its nominal 95% coverage on heavy tails; "
        "seeded simulation from (count, mean, variance), true ratio 1.1.",
        [PYTHON, "bench/bench_ratio_coverage.py", "--part", "summary"],
    ),
    (
        "Side by side with Argo Rollouts (issue 11)",
        "Targets: at 2 requests/s with 1% errors on both revisions, fewer false rollbacks than Argo Rollouts v1.10.2 "
        "(at most 1 of 20); at 60 requests/s a 20%-error canary back to 100% stable no slower (median of 9 runs). "
        "Long: up to 5 x --max-rollout-seconds (1800 s) for the healthy rollouts on 4 lanes, plus about 10 min; "
        "builds the peer once (about 10 min). `make bench-peers` runs it alone.",
        [PYTHON, "bench/bench_peers.py", "--rollouts", "20", "--lanes", "4", "--runs", "9"],
    ),
    (
        "DriftMonitor evaluation (issue 6)",
        "Targets: compute under 10 ms for 200 features; one query per metric family.",
        [PYTHON, "bench/bench_drift.py", "--features", "200", "--repeat", "30"],
    ),
    (
        "Drift calibration (issue 13)",
        "Targets: no-drift flags at most 5% in every cell; detection at least Evidently 0.7.23's default.",
        [PYTHON, "bench/bench_drift_calibration.py"],
    ),
    (
        "Drift: the cell behind Evidently, test against level (issue 13)",
        "The t(2) +0.1 sd cell at n = 1,000 with KS and Anderson-Darling at the same levels, beside the no-drift "
        "cells that bound the level.",
        [PYTHON, "bench/bench_drift_alpha.py"],
    ),
    (
        "Experiment: sample ratio mismatch on scraped counts (issue 14)",
        "A correct 50/50 split made Invalid by scrape timing alone, and how soon real mismatches are proven, with the "
        "plain chi-square test and with one scrape interval of allowance per arm.",
        [PYTHON, "bench/bench_srm_timing.py"],
    ),
    (
        "Scale: a fleet at rest on one operator (issue 15)",
        "Targets (at 10,000): RSS under 1 GiB; under 1 API request per ModelDeployment per hour at rest, counted by "
        "the API server (the operator's own FlowSchema); CPU at rest under 5% of a core; a spec change to its canary "
        "Deployment within 2 s at p99; 1,000 changes at once all acted on within 60 s, and an abort during that "
        "burst at 0% within 5 s. This machine's control plane limits the fleet (see the section's notes).",
        [PYTHON, "bench/bench_scale.py", "--sizes", "100,1000,2000", "--burst", "1000"],
    ),
    (
        "The API server's CPU per request, by kind (issue 15)",
        "Which of the operator's requests are worth saving: a custom resource's status write against a core "
        "object's write and an Event, on the local control plane.",
        [PYTHON, "bench/bench_write_cost.py", "--count", "600", "--rounds", "3"],
    ),
    (
        "CLI CSV reader (issue 16)",
        "Target: at most 2x the input's size in memory on 1,000,000 rows; "
        "the stdlib reader against pandas and pyarrow.",
        [PYTHON, "bench/bench_csv.py", "--rows", "1000000"],
    ),
]


def run(command: list[str]) -> tuple[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["operator", ".", "examples/model-server"])}
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    output = result.stdout.strip()
    if result.returncode != 0:
        output += f"\n\n(exit code {result.returncode})\n```\n{result.stderr.strip()[-3000:]}\n```"
    return output, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--only", help="run only sections whose title contains this text")
    args = parser.parse_args()
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python bench/run.py`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        "The machine is shared: compare figures within one run, not across runs.",
        "",
    ]
    for title, target, command in SECTIONS:
        if args.only and args.only.lower() not in title.lower():
            continue
        print(f"running: {title}", flush=True)
        output, elapsed = run(command)
        shown = " ".join(c if c != PYTHON else "python" for c in command)
        lines += [f"## {title}", "", target, "", f"Command: `{shown}` ({elapsed:.0f} s)", "", output, ""]
    lines += [
        "## Demo (issue 8)",
        "",
        "Target: `make demo` under 10 minutes with a warm build cache. Measured separately (it is a story, not a",
        "kernel): `PYTHONPATH=operator:.:examples/model-server python -m e2e.demo` printed",
        "`demo finished in 77s` with a warm cache on 2026-11-25 (six chapters, every process stopped at the end).",
        "From a cold machine add the one-off builds: the control plane (451 s measured by",
        "`python hack/bench_cluster.py --cold`) and helm and kustomize (about 90 s), so about 10 minutes in all.",
        "",
    ]
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
