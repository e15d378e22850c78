"""The model: a fixed linear score squashed by tanh into a next-day return.

The same function is the "truth" of the synthetic market in
:mod:`model_server.world`, so an undegraded server is as good as the data
allows and any degradation shows up in directional accuracy and abs error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

NUMERIC_FEATURES = ("return_1d", "return_5d", "volatility_20d", "volume_zscore", "rsi_14")
CATEGORICAL_FEATURES = ("sector",)

# Standardisation (centre, scale) per feature and the weight of the standardised value.
# A missing value is imputed with the centre, i.e. it contributes nothing to the score.
CENTRES = np.array([0.0, 0.0, 0.2, 0.0, 50.0])
SCALES = np.array([0.015, 0.035, 0.07, 1.0, 12.0])
WEIGHTS = np.array([-0.55, 0.75, -0.30, 0.20, -0.25])
SECTOR_EFFECTS = {
    "technology": 0.25,
    "energy": -0.20,
    "financials": 0.05,
    "healthcare": 0.10,
    "consumer": 0.0,
    "utilities": -0.15,
}

# Largest predicted move: predictions live in (-OUTPUT_SCALE, OUTPUT_SCALE).
OUTPUT_SCALE = 0.02

FloatArray = npt.NDArray[np.float64]


def score(numeric: Mapping[str, FloatArray], sectors: Sequence[str | None]) -> FloatArray:
    """Linear score before squashing; NaN marks a missing numeric value."""
    matrix = np.column_stack([numeric[name] for name in NUMERIC_FEATURES])
    standardised = np.nan_to_num((matrix - CENTRES) / SCALES, nan=0.0)
    effects = np.array([SECTOR_EFFECTS.get(sector or "", 0.0) for sector in sectors])
    result: FloatArray = standardised @ WEIGHTS + effects
    return result


def predict(numeric: Mapping[str, FloatArray], sectors: Sequence[str | None]) -> FloatArray:
    result: FloatArray = OUTPUT_SCALE * np.tanh(score(numeric, sectors))
    return result
