"""Regenerate the sample training data, reference and golden inputs (seeded, so reruns match).

From ``examples/model-server``::

    python data/generate.py --rows 5000 --seed 7 --csv /tmp/train.csv --golden data/golden.json
    modelrollout reference build --data /tmp/train.csv --bins 10 \\
        --prediction-column prediction --target-column next_day_return \\
        --model-name next-day-returns --model-version 1.0.0 --output data/reference.json
    modelrollout reference build ... --format configmap --name next-day-returns-reference \\
        --output data/reference-configmap.yaml

The CSV is not committed: the reference is what deployments consume.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_server.model import NUMERIC_FEATURES, predict
from model_server.world import realised_returns, sample_batch

GOLDEN_SIZE = 8


def write_training_csv(path: Path, rows: int, rng: np.random.Generator) -> None:
    batch = sample_batch(rng, rows)
    predictions = predict(batch.numeric, batch.sectors)
    actuals = realised_returns(rng, batch)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([*NUMERIC_FEATURES, "sector", "prediction", "next_day_return"])
        for i in range(rows):
            numeric = [f"{batch.numeric[name][i]:.6g}" for name in NUMERIC_FEATURES]
            writer.writerow([*numeric, batch.sectors[i], f"{predictions[i]:.6g}", f"{actuals[i]:.6g}"])


def write_golden(path: Path, rng: np.random.Generator) -> None:
    """Golden inputs with the exact predictions of this model; one row lacks a feature on purpose."""
    batch = sample_batch(rng, GOLDEN_SIZE)
    instances = batch.instances()
    instances[-1]["volume_zscore"] = None
    numeric = {
        name: np.array([np.nan if row[name] is None else row[name] for row in instances], dtype=float)
        for name in NUMERIC_FEATURES
    }
    expected = predict(numeric, batch.sectors).tolist()
    document = {"instances": instances, "expected": expected, "tolerance": 1e-9}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--golden", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    write_training_csv(args.csv, args.rows, rng)
    if args.golden:
        write_golden(args.golden, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
