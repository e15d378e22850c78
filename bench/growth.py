"""Straight-line growth with its uncertainty: how a cost measured at a few fleet sizes extrapolates.

Ordinary least squares of ``y`` on ``x`` with the slope's standard error and a 95% prediction
interval (Student's t on n - 2 degrees of freedom) for one new measurement at ``x``: the
interval a run at that size would be expected to land in, which is wider than the mean's.

Run: ``python bench/growth.py 10000 < table.md`` refits a recorded ``bench_scale.py`` table
(its fleet and RSS columns) and prints the extrapolation.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Fit:
    slope: float
    slope_se: float
    intercept: float
    residual_sd: float
    n: int
    mean_x: float
    sxx: float

    def predict(self, x: float, level: float = 0.95) -> tuple[float, float]:
        """(the line's value at ``x``, half-width of the prediction interval for one measurement there)."""
        t = float(stats.t.ppf(0.5 + level / 2, self.n - 2))
        spread = self.residual_sd * math.sqrt(1 + 1 / self.n + (x - self.mean_x) ** 2 / self.sxx)
        return self.intercept + self.slope * x, t * spread


def fit(xs: Sequence[float], ys: Sequence[float]) -> Fit:
    """Least squares of ``ys`` on ``xs``; needs three points or more (one degree of freedom for the spread)."""
    if len(xs) != len(ys) or len(xs) < 3:
        raise ValueError("a fit with an uncertainty needs three points or more")
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = mean_y - slope * mean_x
    residuals = [y - (intercept + slope * x) for x, y in zip(xs, ys, strict=True)]
    residual_sd = math.sqrt(sum(r * r for r in residuals) / (n - 2))
    return Fit(slope, residual_sd / math.sqrt(sxx), intercept, residual_sd, n, mean_x, sxx)


def describe(xs: Sequence[float], ys: Sequence[float], at: float, unit: str) -> str:
    line = fit(xs, ys)
    value, half = line.predict(at)
    return (
        f"{line.slope * 1000:.1f} +- {line.slope_se * 1000:.1f} {unit} per 1,000 (n = {line.n}); "
        f"at {at:,.0f}: {value:.0f} {unit}, 95% prediction interval {value - half:.0f}-{value + half:.0f}"
    )


def main() -> int:
    at = float(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    sizes, rss = [], []
    for row in sys.stdin:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[1].replace(",", "").isdigit():
            sizes.append(float(cells[1].replace(",", "")))
            rss.append(float(cells[2]))
    print(f"operator RSS: {describe(sizes, rss, at, 'MiB')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
