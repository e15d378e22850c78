"""Canary verdicts by seeded simulation through ``core.rollout.decide``, with the default analysis.

Cells: total traffic 1, 5, 50 and 500 requests/s, looks every 2 s and every
30 s, default steps 5 -> 25 -> 50 -> 100, one error-rate guardrail with its
defaults, stable failing 1% of requests. Scenarios per cell:

* A/A: the canary fails 1% too. Reported: false rollbacks (target at most 5%).
* 5x: the canary fails 5%. Reported: detection (target at least 99% wherever
  the first step sees 200 or more canary requests within the horizon).
* 100%: the canary fails every request. Reported: the most looks after the one
  that saw its 10th request (target at most 2).
* 2x: the canary fails 2%, beyond the default margin (1.5 x stable + 0.2
  points = 1.7%). Reported: promotions (target at most 5%).

A rollout ends promoted, rolled back, or undecided at the horizon (1 h of
canary time with 2 s looks, 6 h with 30 s looks): low traffic makes rollouts
slow, and an undecided rollout is one still waiting for evidence.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from tests.support.canary_sim import Scenario, simulate_rollout  # noqa: E402

RATES = (1.0, 5.0, 50.0, 500.0)
LOOKS = ((2.0, 3600.0), (30.0, 6 * 3600.0))
FIRST_WEIGHT = 0.05


@dataclass(frozen=True)
class Kind:
    name: str
    canary_error_rate: float
    rollouts_flag: str


KINDS = (Kind("A/A", 0.01, "aa"), Kind("5x", 0.05, "other"), Kind("100%", 1.0, "other"), Kind("2x", 0.02, "other"))


def _chunk(args: tuple[Scenario, int, int]) -> list[tuple[str, float, float, int | None]]:
    import numpy as np  # noqa: PLC0415 - imported in the worker

    scenario, rollouts, seed = args
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(rollouts):
        result = simulate_rollout(scenario, rng)
        results.append((result.outcome, result.seconds, result.canary_requests, result.looks_after_tenth))
    return results


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%"


def _minutes(values: list[float]) -> str:
    if not values:
        return "-"
    middle = sorted(values)[len(values) // 2]
    return f"{middle / 60:.1f} min" if middle >= 60 else f"{middle:.0f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aa-rollouts", type=int, default=2000, help="rollouts per A/A cell")
    parser.add_argument("--rollouts", type=int, default=500, help="rollouts per cell of the other scenarios")
    parser.add_argument("--workers", type=int, default=2, help="processes")
    parser.add_argument("--seed", type=int, default=20261130)
    args = parser.parse_args()

    cells: list[tuple[Kind, Scenario, int]] = []
    for kind in KINDS:
        for look, horizon in LOOKS:
            for rate in RATES:
                scenario = Scenario(rate, look, canary_error_rate=kind.canary_error_rate, horizon_seconds=horizon)
                cells.append((kind, scenario, args.aa_rollouts if kind.rollouts_flag == "aa" else args.rollouts))
    chunk = 50
    tasks = []
    for index, (_, scenario, rollouts) in enumerate(cells):
        for start in range(0, rollouts, chunk):
            tasks.append((index, (scenario, min(chunk, rollouts - start), args.seed + 1000 * index + start)))
    started = time.monotonic()
    outcomes: dict[int, list[tuple[str, float, float, int | None]]] = {i: [] for i in range(len(cells))}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for (index, _), results in zip(tasks, pool.map(_chunk, [t for _, t in tasks]), strict=True):
            outcomes[index].extend(results)
    elapsed = time.monotonic() - started

    print(
        "| scenario | looks | traffic (req/s) | rollouts | rolled back | promoted | undecided | median time to decision"
        " | first step's canary requests in the horizon | target | met |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    failures = 0
    for index, (kind, scenario, rollouts) in enumerate(cells):
        rows = outcomes[index]
        back = sum(r[0] == "rolled back" for r in rows)
        promoted = sum(r[0] == "promoted" for r in rows)
        undecided = sum(r[0] == "undecided" for r in rows)
        decided = [r[1] for r in rows if r[0] != "undecided"]
        exposure = scenario.requests_per_second * FIRST_WEIGHT * scenario.horizon_seconds
        if kind.name == "A/A":
            target, met = "rolled back <= 5%", back <= 0.05 * rollouts
        elif kind.name == "5x":
            applies = exposure >= 200
            target = "rolled back >= 99%" if applies else "(< 200 requests: no target)"
            met = back >= 0.99 * rollouts if applies else True
        elif kind.name == "100%":
            most = max((r[3] for r in rows if r[3] is not None), default=None)
            target = f"within 2 looks of the 10th request (most: {most})"
            met = back == rollouts and most is not None and most <= 2
        else:
            target, met = "promoted <= 5%", promoted <= 0.05 * rollouts
        failures += not met
        print(
            f"| {kind.name} | {scenario.look_seconds:g} s | {scenario.requests_per_second:g} | {rollouts} | "
            f"{_percent(back, rollouts)} | {_percent(promoted, rollouts)} | {_percent(undecided, rollouts)} | "
            f"{_minutes(decided)} | {math.floor(exposure):,} | {target} | {'yes' if met else 'NO'} |"
        )
    print()
    print(
        f"{len(cells)} cells, {sum(len(v) for v in outcomes.values()):,} rollouts in {elapsed:.0f} s with "
        f"{args.workers} processes; horizon 1 h of canary time with 2 s looks, 6 h with 30 s looks; "
        f"{failures} cell(s) missing their target."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
