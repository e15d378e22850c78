"""A seeded synthetic market shared by the training data, golden inputs and load generator.

Features are drawn here and realised next-day returns are the model's signal
plus noise, so feedback posted by the load generator makes directional
accuracy and abs error real numbers: a degraded model measurably loses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model_server.model import NUMERIC_FEATURES, SECTOR_EFFECTS, FloatArray, predict

SECTORS = tuple(SECTOR_EFFECTS)
SECTOR_WEIGHTS = np.array([0.28, 0.12, 0.2, 0.16, 0.14, 0.10])

# Idiosyncratic noise of the realised return; with the signal's spread this
# gives a perfect model roughly 65% directional accuracy.
RETURN_NOISE = 0.012


@dataclass(frozen=True)
class Batch:
    """Market observations: one row per instrument-day."""

    numeric: dict[str, FloatArray]
    sectors: list[str]

    def __len__(self) -> int:
        return len(self.sectors)

    def instances(self) -> list[dict[str, float | str | None]]:
        """Rows as the JSON objects ``/predict`` takes (NaN becomes a missing value)."""
        rows: list[dict[str, float | str | None]] = []
        for i, sector in enumerate(self.sectors):
            row: dict[str, float | str | None] = {}
            for name in NUMERIC_FEATURES:
                value = float(self.numeric[name][i])
                row[name] = None if np.isnan(value) else value
            row["sector"] = sector
            rows.append(row)
        return rows


def sample_batch(rng: np.random.Generator, size: int) -> Batch:
    return_5d = rng.normal(0.0, 0.035, size)
    numeric = {
        "return_1d": 0.015 * rng.standard_t(5, size) / np.sqrt(5 / 3),
        "return_5d": return_5d,
        "volatility_20d": rng.lognormal(np.log(0.2), 0.35, size),
        "volume_zscore": rng.normal(0.0, 1.0, size),
        "rsi_14": np.clip(50.0 + 250.0 * return_5d + rng.normal(0.0, 7.0, size), 0.0, 100.0),
    }
    sectors = rng.choice(SECTORS, size=size, p=SECTOR_WEIGHTS).tolist()
    return Batch(numeric=numeric, sectors=sectors)


def realised_returns(rng: np.random.Generator, batch: Batch) -> FloatArray:
    """Next-day returns that actually happen for ``batch`` (before any drift applied to inputs)."""
    noise: FloatArray = rng.normal(0.0, RETURN_NOISE, len(batch))
    result: FloatArray = predict(batch.numeric, batch.sectors) + noise
    return result
