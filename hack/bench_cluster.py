#!/usr/bin/env python3
"""Benchmark the local control plane: cold build (on request), warm start, memory, teardown.

Why: the test suite and CI budget depend on these numbers (CI has 90 minutes on two cores, and
every integration session starts a cluster), so we measure them rather than guess. Prints a
Markdown table for docs/benchmarks.md.

- cold build (``--cold``): a from-scratch build into a temporary cache with empty GOCACHE and
  GOMODCACHE, i.e. module downloads + compilation, as on a fresh CI machine. Slow (minutes).
- warm start: ``cluster.py up`` with cached binaries until the API server is ready, nodes are
  Ready, CRDs are Established and the default ServiceAccount exists (median of ``--runs``).
- memory: the sum of the resident set sizes of all control-plane processes after ``--settle``
  seconds of idling, with a per-component breakdown.
- teardown: ``cluster.py down`` until every process is gone and the state is removed.

Stops a cluster that runs in this checkout before measuring.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make `hack.localcluster` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hack.localcluster import cluster, procs

CLUSTER_PY = Path(cluster.__file__).resolve()


def _launcher(*args: str, env: dict[str, str] | None = None) -> float:
    """Run ``cluster.py <args>``; return wall seconds, fail loudly with its stderr."""
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(CLUSTER_PY), *args], capture_output=True, text=True, env=env, check=False
    )
    elapsed = time.monotonic() - began
    if result.returncode != 0:
        raise SystemExit(f"cluster.py {' '.join(args)} failed:\n{result.stderr}")
    return elapsed


def cold_build() -> float:
    """Seconds for a from-scratch build (downloads included) in throwaway caches."""
    scratch = Path(tempfile.mkdtemp(prefix="modelrollout-coldbuild-"))
    env = dict(os.environ)
    env.update(
        {
            "MODELROLLOUT_CACHE": str(scratch / "cache"),
            "GOCACHE": str(scratch / "gocache"),
            "GOMODCACHE": str(scratch / "gomodcache"),
        }
    )
    try:
        return _launcher("build", env=env)
    finally:
        subprocess.run(["go", "clean", "-modcache"], env=env, capture_output=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def memory(settle: float) -> dict[str, int]:
    """RSS per component after ``settle`` seconds."""
    time.sleep(settle)
    state = cluster.State.load()
    if state is None:
        raise SystemExit("no cluster state after up")
    return {name: procs.rss_bytes(pid) for name, pid in state.pids.items()}


def _mib(value: float) -> str:
    return f"{value / 2**20:.0f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="also measure a from-scratch build (minutes)")
    parser.add_argument("--runs", type=int, default=3, help="warm start/teardown repetitions")
    parser.add_argument("--settle", type=float, default=15.0, help="idle seconds before reading RSS")
    args = parser.parse_args()

    rows: list[tuple[str, str]] = []
    if args.cold:
        rows.append(("cold build (download + compile, 2 cores, niced)", f"{cold_build():.0f} s"))
    rows.append(("cached build check (`cluster.py build`)", f"{_launcher('build'):.2f} s"))

    _launcher("down")
    starts: list[float] = []
    downs: list[float] = []
    rss: dict[str, int] = {}
    for run in range(args.runs):
        starts.append(_launcher("up"))
        if run == 0:
            rss = memory(args.settle)
        downs.append(_launcher("down"))

    def summary(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} s (min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"

    rows.append(("warm start to ready API + Ready nodes + CRDs", summary(starts)))
    rows.append(("control-plane RSS (sum of processes)", _mib(sum(rss.values()))))
    rows += [(f"  RSS {name}", _mib(value)) for name, value in sorted(rss.items(), key=lambda kv: -kv[1])]
    rows.append(("teardown (`cluster.py down`)", summary(downs)))

    versions = cluster.Versions.load()
    print(
        f"Local control plane: Kubernetes {versions.kubernetes}, etcd {versions.etcd}, kwok {versions.kwok}; "
        f"{os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    print("| measure | value |\n|---|---|")
    for label, value in rows:
        print(f"| {label} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
