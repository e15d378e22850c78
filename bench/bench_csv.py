"""The CLI's CSV reader on 1,000,000 rows: time and memory, against the alternatives it was chosen from.

Target (issue 16): at most 2x the input's size in memory. Candidates, each in its own process
so peak memory is its own (peak RSS minus the RSS after imports, before reading):

* ``cli/_files`` (ours): the standard library's ``csv`` module, each column into a typed
  array (8 bytes a number; a categorical cell is a reference to one shared string);
* ``lists`` (the reader it replaced): the same parsing into Python lists of floats;
* ``pandas`` and ``pyarrow``: columnar C/C++ readers (neither is a dependency of the
  operator; pandas comes with the bench extra only).

Plus ``modelrollout drift`` end to end on two such files (reading, binning, every statistic).

Run: ``python bench/bench_csv.py [--rows 1000000]`` (prints Markdown).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = ("cli/_files", "lists", "pandas", "pyarrow")


def write_csv(path: Path, rows: int, seed: int, shift: float = 0.0) -> None:
    """Five numeric features and one categorical, like a day of model inputs (~53 bytes a row)."""
    import numpy as np  # noqa: PLC0415 - only the parent process writes files

    rng = np.random.default_rng(seed)
    columns = [rng.normal(shift, 1.0, rows).round(6) for _ in range(5)]
    sectors = np.array(["tech", "energy", "health", "finance", "retail"])[rng.integers(0, 5, rows)]
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["momentum_5d", "volatility_20d", "volume_zscore", "rsi_14", "beta", "sector"])
        for index in range(rows):
            writer.writerow([*(column[index] for column in columns), sectors[index]])


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def measure_one(candidate: str, path: Path) -> dict[str, float]:
    """Runs in the child: import, note the RSS, read, report time and the peak above that RSS."""
    if candidate == "cli/_files":
        from modelrollout.cli._files import read_csv_columns as read  # noqa: PLC0415
    elif candidate == "lists":
        read = _read_lists
    elif candidate == "pandas":
        import pandas  # noqa: PLC0415

        read = pandas.read_csv
    else:
        import pyarrow.csv  # noqa: PLC0415

        read = pyarrow.csv.read_csv
    baseline = rss_mib()
    started = time.perf_counter()
    result = read(str(path))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del result
    return {"seconds": seconds, "peak_mib": peak - baseline}


def _read_lists(path: str) -> dict[str, list[float] | list[str]]:
    """The replaced reader's shape: a Python list per column (a float object and a pointer per cell)."""
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        header = next(reader)
        columns: list[list[float] | list[str]] = [[] for _ in header]
        for row in reader:
            for index, cell in enumerate(row):
                try:
                    columns[index].append(float(cell))  # type: ignore[arg-type]
                except ValueError:
                    columns[index].append(cell)  # type: ignore[arg-type]
    return dict(zip(header, columns, strict=True))


def child(candidate: str, path: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--measure", candidate, "--file", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    measured: dict[str, float] = json.loads(result.stdout)
    return measured


def drift_end_to_end(reference: Path, current: Path) -> dict[str, float]:
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [sys.executable, "-m", "modelrollout", "drift", "--reference", str(reference), "--current", str(current)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": seconds, "peak_mib": max(peak, before) / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--measure", choices=CANDIDATES, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_one(args.measure, args.file)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        reference, current = Path(tmp) / "reference.csv", Path(tmp) / "current.csv"
        write_csv(reference, args.rows, seed=0)
        write_csv(current, args.rows, seed=1, shift=0.05)
        size = reference.stat().st_size / 2**20
        print(f"{args.rows:,} rows, 6 columns (5 numeric, 1 categorical), {size:.1f} MiB of CSV.\n")
        print("| reader | seconds | memory above imports (MiB) | memory / input |")
        print("|---|---:|---:|---:|")
        for candidate in CANDIDATES:
            try:
                measured = child(candidate, reference)
            except subprocess.CalledProcessError as error:
                print(f"| {candidate} | failed: {error.stderr.strip().splitlines()[-1]} | | |")
                continue
            ratio = measured["peak_mib"] / size
            print(f"| {candidate} | {measured['seconds']:.2f} | {measured['peak_mib']:.0f} | {ratio:.2f}x |")
        end_to_end = drift_end_to_end(reference, current)
        print(
            f"\n`modelrollout drift` on two such files (both read, six features, every method): "
            f"{end_to_end['seconds']:.1f} s, peak RSS {end_to_end['peak_mib']:.0f} MiB "
            f"(interpreter, numpy and scipy included)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
