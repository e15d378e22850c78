"""Sample ratio mismatch on scraped counts: false alarms from scrape timing, and real mismatches found.

An Experiment reads each arm's count from Prometheus at a look, and each count is as of its
targets' last scrape. Two arms scraped at different moments, or one whose scrape was missed
(a busy Prometheus, a slow target), differ by that much traffic whatever the assignment. The
check makes a result Invalid after three mismatching looks in a row; this bench measures how
often that happens to a correct 50/50 split, and how soon a real mismatch is proven, with the
plain chi-square test and with the timing allowance (each arm's allocated traffic over one
scrape interval when ``scrapeInterval`` is set, else over one look interval;
``core.experiment.evidence.timing_allowance``).

The model is worst-case for timing: a reading is the counter's value at the arm's last
successful scrape, without the extrapolation ``increase()`` applies to the end of its range.
Each arm has its own scrape phase (uniform over one interval), each scrape is missed with the
given probability, and requests arrive as Poisson processes at the arm's true share. An arm
whose target is discovered late loses the traffic before its first scrape (the e2e scenario's
queries count from the first sample in range, as docs/experiments.md "Counting exactly" shows).
A look at which an arm has no sample yet waits, as the Experiment's does.

    .venv/bin/python bench/bench_srm_timing.py [--runs 2000] [--seed 14]

Prints Markdown.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from modelrollout.core.experiment.evidence import SRM_LOOKS, sample_ratio_since  # noqa: E402
from modelrollout.stats.srm import SRM_ALPHA, sample_ratio_mismatch  # noqa: E402

WEIGHTS = (50.0, 50.0)


@dataclass(frozen=True)
class Setting:
    name: str
    rate: float
    """Requests per second into the experiment."""
    scrape: float
    """Scrape interval, seconds."""
    interval: float
    """Look interval, seconds."""
    horizon: float
    """Seconds the experiment runs."""
    missed: float
    """Probability that a scrape is missed."""
    discovered: float = 0.0
    """Seconds into the experiment before the champion's target is first scraped."""


SETTINGS = (
    Setting("the e2e scenario: 120 req/s, scrape 1 s, looks 2 s, 60 s", 120.0, 1.0, 2.0, 60.0, 0.0),
    Setting("the same, 30% of scrapes missed (a busy machine)", 120.0, 1.0, 2.0, 60.0, 0.3),
    Setting("the same, the champion's target discovered 3 s late", 120.0, 1.0, 2.0, 60.0, 0.0, 3.0),
    Setting("production: 50 req/s, scrape 30 s, looks 1 min, 6 h", 50.0, 30.0, 60.0, 6 * 3600.0, 0.0),
    Setting("the same, 10% of scrapes missed", 50.0, 30.0, 60.0, 6 * 3600.0, 0.1),
)
SPLITS = (0.5, 0.49, 0.45, 0.4)
"""The champion's true share; 0.5 is a correct split."""


def readings(setting: Setting, share: float, rng: np.random.Generator) -> np.ndarray:
    """Each arm's count as Prometheus last saw it, at every look (NaN before its first sample): (looks, arms)."""
    looks = np.arange(setting.interval, setting.horizon + 1e-9, setting.interval)
    shares = (share, 1.0 - share)
    found = np.full((looks.size, 2), np.nan)
    for arm, arm_share in enumerate(shares):
        phase = rng.uniform(0.0, setting.scrape)
        scrapes = np.arange(phase, setting.horizon + setting.scrape, setting.scrape)
        gaps = np.diff(np.concatenate(([0.0], scrapes)))
        counts = np.cumsum(rng.poisson(setting.rate * arm_share * gaps))
        late = setting.discovered if arm == 0 else 0.0
        seen = (rng.random(scrapes.size) >= setting.missed) & (scrapes >= late)
        if late > 0 and seen.any():
            counts = counts - counts[np.argmax(seen)]
        last_seen = np.maximum.accumulate(np.where(seen, np.arange(scrapes.size), -1))
        due = np.searchsorted(scrapes, looks, side="right") - 1
        latest = np.where(due >= 0, last_seen[np.maximum(due, 0)], -1)
        found[:, arm] = np.where(latest >= 0, counts[np.maximum(latest, 0)], np.nan)
    return found


def proven_at(setting: Setting, found: np.ndarray, *, allowance: float | None) -> float | None:
    """Seconds into the experiment when the mismatch held on SRM_LOOKS looks in a row, else None.

    ``allowance``: None for the plain test on counts since the start (before); else the check of
    ``core.experiment.evidence``: counts from the first look that measured every arm (which checks
    nothing), each arm allowed that many seconds of its traffic (``scrapeInterval``).
    """
    strikes = 0
    baseline: list[float] | None = None
    for index, counts in enumerate(found):
        elapsed = (index + 1) * setting.interval
        if np.isnan(counts).any():
            continue
        if allowance is None:
            mismatch = sample_ratio_mismatch(list(counts), WEIGHTS, alpha=SRM_ALPHA).mismatch
        elif baseline is None:
            baseline = list(counts)
            continue
        else:
            since = sample_ratio_since(
                list(counts), baseline, WEIGHTS, elapsed=elapsed, scrape_seconds=allowance, alpha=SRM_ALPHA
            )
            mismatch = since.mismatch
        strikes = strikes + 1 if mismatch else 0
        if strikes >= SRM_LOOKS:
            return elapsed
    return None


def cell(setting: Setting, share: float, runs: int, seed: int, *, allowance: float | None) -> str:
    rng = np.random.default_rng(
        [seed, int(share * 1000), int(setting.rate), int(setting.missed * 100), int(setting.discovered)]
    )
    times = [proven_at(setting, readings(setting, share, rng), allowance=allowance) for _ in range(runs)]
    found = [t for t in times if t is not None]
    rate = 100.0 * len(found) / runs
    if share == 0.5 or not found:
        return f"{rate:.1f}%"
    return f"{rate:.1f}% (median {_human(float(np.median(found)))})"


def _human(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    started = time.perf_counter()
    header = ["setting", "check"] + [
        "50/50: Invalid (false alarm)" if s == 0.5 else f"{s * 100:.0f}/{100 - s * 100:.0f}: proven" for s in SPLITS
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for setting in SETTINGS:
        runs = args.runs if setting.horizon <= 600 else max(args.runs // 4, 100)
        checks = (
            ("plain chi-square (before)", None),
            (f"from the first look, one scrape allowed ({setting.scrape:g} s: `scrapeInterval` set)", setting.scrape),
            (f"from the first look, one look allowed ({setting.interval:g} s: the default)", setting.interval),
        )
        for check, allowance in checks:
            cells = [cell(setting, share, runs, args.seed, allowance=allowance) for share in SPLITS]
            print(f"| {setting.name} ({runs} runs) | {check} | " + " | ".join(cells) + " |")
    print(
        f"\n{args.runs} seeded runs per row (a quarter for the 6 h rows), seed {args.seed}; "
        f"{time.perf_counter() - started:.0f} s."
    )


if __name__ == "__main__":
    main()
