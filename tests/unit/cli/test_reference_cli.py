"""``modelrollout reference build`` end to end: CSV in, JSON or ConfigMap out, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelrollout.__main__ import main
from modelrollout.references import REFERENCE_KEY, loads_reference


@pytest.fixture
def training_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["feature,segment,prediction,target"]
    for _ in range(200):
        x = rng.normal()
        rows.append(f"{x:.5f},{rng.choice(['a', 'b'])},{0.3 * x:.5f},{x + rng.normal():.5f}")
    path = tmp_path / "train.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_builds_json_to_a_file(training_csv: Path, tmp_path: Path) -> None:
    output = tmp_path / "reference.json"
    code = main(
        [
            "reference", "build", "--data", str(training_csv), "--bins", "5",
            "--prediction-column", "prediction", "--target-column", "target",
            "--model-name", "m", "--model-version", "2", "--output", str(output),
        ]
    )  # fmt: skip
    assert code == 0
    reference = loads_reference(output.read_text())
    assert [f.name for f in reference.features] == ["feature", "segment"]
    assert len(reference.feature("feature").counts) == 5  # type: ignore[union-attr]
    assert reference.model is not None
    assert (reference.model.name, reference.model.version) == ("m", "2")
    assert reference.performance is not None


def test_builds_a_configmap_to_stdout(training_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["reference", "build", "--data", str(training_csv), "--format", "configmap", "--name", "ref"]
    assert main([*args, "--namespace", "ml", "--exclude", "target"]) == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    assert manifest["metadata"] == {
        "name": "ref",
        "namespace": "ml",
        "labels": {"app.kubernetes.io/part-of": "modelrollout"},
    }
    reference = loads_reference(manifest["data"][REFERENCE_KEY])
    assert {f.name for f in reference.features} == {"feature", "segment", "prediction"}


def test_json_output_is_the_documented_camel_case_schema(
    training_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--prediction-column", "prediction", "--target-column", "target"]
    assert main(["reference", "build", "--data", str(training_csv), *args]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"features", "prediction", "performance"}
    assert set(document["performance"]) == {"baselineDirectionalAccuracy", "baselineMeanAbsError", "absErrorEdges"}
    assert set(document["features"][0]) == {"name", "type", "edges", "counts", "mean", "std", "min", "max"}
    assert set(document["features"][1]) == {"name", "type", "categories", "counts"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "configmap"], "needs --name"),
        (["--bins", "0"], "--bins must be at least 1"),
        (["--prediction-column", "nope"], "no column 'nope'"),
        (["--prediction-column", "segment"], "must be numeric"),
        (["--target-column", "target"], "needs a prediction column"),
    ],
)
def test_bad_input_exits_2(
    training_csv: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["reference", "build", "--data", str(training_csv), *extra]) == 2
    assert message in capsys.readouterr().err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reference", "build", "--data", str(tmp_path / "absent.csv")]) == 2
    assert "absent.csv" in capsys.readouterr().err
