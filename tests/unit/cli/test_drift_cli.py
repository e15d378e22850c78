"""``modelrollout drift`` end to end: CSV and JSON inputs, output formats, exit codes, exact errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrollout.__main__ import main


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def reference_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["age,region"]
    for i in range(1000):
        rows.append(f"{rng.normal(40, 10):.3f},{['eu', 'us', 'apac'][i % 3]}")
    return _csv(tmp_path / "reference.csv", rows)


@pytest.fixture
def shifted_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    rows = ["age,region"]
    for i in range(800):
        age = "" if i % 40 == 0 else f"{rng.normal(46, 10):.3f}"
        rows.append(f"{age},{['eu', 'us', 'apac'][i % 3]}")
    return _csv(tmp_path / "current.csv", rows)


@pytest.fixture
def similar_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    rows = ["age,region"]
    for i in range(800):
        rows.append(f"{rng.normal(40, 10):.3f},{['eu', 'us', 'apac'][i % 3]}")
    return _csv(tmp_path / "similar.csv", rows)


def _run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["drift", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_raw_csv_drift_exits_1_with_the_stable_json_shape(
    reference_csv: Path, shifted_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _run_json(capsys, "--reference", str(reference_csv), "--current", str(shifted_csv))
    assert code == 1
    assert report["drifted"] is True
    assert report["summary"]["features"] == 2
    age, region = report["features"]
    assert (age["name"], age["type"], age["verdict"], age["drifted"]) == ("age", "numeric", "Drift", True)
    assert set(age["scores"]) == {
        "psi",
        "ks",
        "jensen_shannon",
        "chi_square",
        "wasserstein",
        "hellinger",
        "anderson_darling",
    }
    # Wasserstein: its permutation null; Anderson-Darling: asymptotic, or permutations when tied.
    assert set(age["p_values"]) == {"ks", "chi_square", "wasserstein", "anderson_darling"}
    assert age["missing_rate_current"] == pytest.approx(20 / 800)
    assert age["n_current"] == 780
    assert region["type"] == "categorical"
    assert set(region["scores"]) == {"psi", "jensen_shannon", "chi_square", "hellinger"}
    assert region["drifted"] is False


def test_no_drift_exits_0_and_prints_a_table(
    reference_csv: Path, similar_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["drift", "--reference", str(reference_csv), "--current", str(similar_csv), "--methods", "psi,ks"])
    out = capsys.readouterr().out
    assert code == 0
    header = out.splitlines()[0].split()
    assert header == ["feature", "type", "verdict", "n_ref", "n_cur", "missing", "psi", "ks"]
    assert "0 of 2 features drifted" in out


def test_json_histograms_on_both_sides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = {
        "model": {"name": "m"},
        "features": [
            {"name": "x", "type": "numeric", "edges": [0, 1, 2, 3], "counts": [300, 400, 300], "mean": 1.5},
            {"name": "c", "type": "categorical", "categories": ["a", "b"], "counts": [500, 500]},
        ],
    }
    current = {
        "features": [
            {"name": "x", "type": "numeric", "edges": ["-Inf", 0, 1, 2, 3, "+Inf"], "counts": [0, 100, 400, 400, 100]},
            {"name": "c", "type": "categorical", "categories": ["b", "a", "z"], "counts": [450, 500, 50]},
        ]
    }
    (tmp_path / "ref.json").write_text(json.dumps(reference))
    (tmp_path / "cur.json").write_text(json.dumps(current))
    code, report = _run_json(capsys, "--reference", str(tmp_path / "ref.json"), "--current", str(tmp_path / "cur.json"))
    assert code == 1
    x, c = report["features"]
    assert x["n_reference"] == 1000
    assert x["verdict"] == "Drift"
    assert c["scores"]["psi"] > 0.2  # the new category "z"


def test_json_reference_with_csv_current_bins_on_reference_edges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = {
        "features": [{"name": "age", "type": "numeric", "edges": [0, 30, 40, 50, 100], "counts": [160, 340, 340, 160]}]
    }
    (tmp_path / "ref.json").write_text(json.dumps(reference))
    rng = np.random.default_rng(3)
    current = _csv(tmp_path / "cur.csv", ["age", *(f"{v:.2f}" for v in rng.normal(40, 10, 500)), "150"])
    code, report = _run_json(capsys, "--reference", str(tmp_path / "ref.json"), "--current", str(current))
    assert code == 0
    assert report["features"][0]["n_current"] == 501


def test_zero_spread_reference_gives_a_finite_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = _csv(tmp_path / "r.csv", ["x", *["5"] * 200])
    current = _csv(tmp_path / "c.csv", ["x", *["6"] * 200])
    code, report = _run_json(
        capsys, "--reference", str(reference), "--current", str(current), "--methods", "wasserstein"
    )
    assert code == 1
    # The sd is floored at 0.001 * max(1, |mean|) = 0.005: a shift of 1 is 200 floored sds, not +inf.
    assert report["features"][0]["scores"]["wasserstein"] == pytest.approx(200.0)


def test_categorical_override_and_min_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = _csv(tmp_path / "r.csv", ["zip", "02139", "10001", "A1B"])
    current = _csv(tmp_path / "c.csv", ["zip", "02139", "02139", "10001"])
    code, report = _run_json(
        capsys, "--reference", str(reference), "--current", str(current), "--categorical", "zip", "--min-samples", "1"
    )
    assert report["features"][0]["type"] == "categorical"
    assert code in (0, 1)


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["drift", *args])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.strip()


def test_non_numeric_cell_in_a_numeric_column_names_file_line_and_column(
    tmp_path: Path, reference_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = _csv(tmp_path / "bad.csv", ["age,region", "31.5,eu", "", "4O,us"])
    assert _error(capsys, "--reference", str(reference_csv), "--current", str(current)) == (
        f"modelrollout drift: {current}:4:1: column 'age': '4O' is not a number "
        "(the column is numeric in the reference)"
    )


def test_a_typo_in_the_reference_says_why_the_column_is_numeric(
    tmp_path: Path, similar_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = _csv(tmp_path / "ref.csv", ["age,region", "31.5,eu", "thirty,us"])
    assert _error(capsys, "--reference", str(reference), "--current", str(similar_csv)) == (
        f"modelrollout drift: {reference}:3:1: column 'age': 'thirty' is not a number (the column is numeric "
        "because its first value '31.5' on line 2 is; pass --categorical age to treat it as categories)"
    )


def test_infinite_values_are_errors_not_data(
    tmp_path: Path, reference_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = _csv(tmp_path / "inf.csv", ["age,region", "inf,eu"])
    assert _error(capsys, "--reference", str(reference_csv), "--current", str(current)) == (
        f"modelrollout drift: {current}:2:1: column 'age': 'inf' is not a finite number "
        "(the column is numeric in the reference)"
    )


def test_short_row_and_header_problems(tmp_path: Path, reference_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = _csv(tmp_path / "short.csv", ["age,region", "31,eu", "32"])
    assert _error(capsys, "--reference", str(reference_csv), "--current", str(short)) == (
        f"modelrollout drift: {short}:3: 1 cells, but the header has 2 columns"
    )
    renamed = _csv(tmp_path / "renamed.csv", ["age,country", "31,eu"])
    assert _error(capsys, "--reference", str(reference_csv), "--current", str(renamed)) == (
        f"modelrollout drift: {renamed}:1: columns of the reference are missing: region"
    )
    duplicate = _csv(tmp_path / "dup.csv", ["age,age", "1,2"])
    assert _error(capsys, "--reference", str(duplicate), "--current", str(renamed)) == (
        f"modelrollout drift: {duplicate}:1:2: duplicate column name 'age'"
    )


def test_malformed_json_names_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"features": [\n  {"name": "x",, }\n]}')
    assert _error(capsys, "--reference", str(broken), "--current", str(broken)) == (
        f"modelrollout drift: {broken}:2:16: invalid JSON: Expecting property name enclosed in double quotes"
    )


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        (
            {"name": "x", "type": "numeric", "edges": [0, 1, 2], "counts": [1, 2, 3]},
            "features[0].counts: 3 edges need 2 counts, got 3",
        ),
        (
            {"name": "x", "type": "numeric", "edges": [0, 2, 1], "counts": [1, 2]},
            "features[0].edges[2]: edges must increase strictly (2 then 1)",
        ),
        (
            {"name": "x", "type": "numeric", "edges": [0, "+Inf", 5], "counts": [1, 2]},
            "features[0].edges[1]: '+Inf' is only allowed as the first or last edge",
        ),
        (
            {"name": "x", "type": "numeric", "edges": [0, 1], "counts": [-1]},
            "features[0].counts[0]: expected a non-negative count, got -1",
        ),
        (
            {"name": "x", "type": "text", "counts": [1]},
            'features[0].type: must be "numeric" or "categorical", got \'text\'',
        ),
        (
            {"name": "c", "type": "categorical", "categories": ["a", "a"], "counts": [1, 2]},
            "features[0].categories: categories must be unique",
        ),
        (
            {"type": "numeric", "edges": [0, 1], "counts": [1]},
            "features[0].name: expected a non-empty string, got nothing",
        ),
    ],
)
def test_histogram_file_structure_errors_name_the_json_path(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    feature: dict[str, Any],
    message: str,
) -> None:
    path = tmp_path / "ref.json"
    path.write_text(json.dumps({"features": [feature]}))
    assert _error(capsys, "--reference", str(path), "--current", str(path)) == f"modelrollout drift: {path}: {message}"


def test_mismatched_features_and_bins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"features": [{"name": "x", "type": "numeric", "edges": [0, 1, 2], "counts": [5, 5]}]}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"features": [{"name": "y", "type": "numeric", "edges": [0, 1, 2], "counts": [5, 5]}]}))
    assert _error(capsys, "--reference", str(ref), "--current", str(other)) == (
        f"modelrollout drift: {other}: features of the reference are missing: x"
    )
    shifted = tmp_path / "shifted.json"
    shifted.write_text(
        json.dumps({"features": [{"name": "x", "type": "numeric", "edges": [0, 1.5, 2], "counts": [5, 5]}]})
    )
    assert _error(capsys, "--reference", str(ref), "--current", str(shifted)) == (
        f"modelrollout drift: {shifted}: feature 'x': bins do not match the reference: edge 1.0 is not an edge "
        "of the source histogram; pass interpolate=True to split bins assuming uniform mass within them"
    )


def test_usage_errors(reference_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _error(
        capsys, "--reference", str(reference_csv), "--current", str(reference_csv), "--methods", "psi,kl"
    ) == (
        "modelrollout drift: --methods: unknown method kl; known: anderson_darling, chi_square, hellinger, "
        "jensen_shannon, ks, psi, wasserstein"
    )
    assert _error(capsys, "--reference", str(tmp_path / "nope.csv"), "--current", str(reference_csv)) == (
        f"modelrollout drift: {tmp_path / 'nope.csv'}: cannot read: No such file or directory"
    )
    histogram_file = tmp_path / "h.json"
    histogram_file.write_text(
        json.dumps({"features": [{"name": "age", "type": "numeric", "edges": [0, 1], "counts": [1]}]})
    )
    assert _error(capsys, "--reference", str(reference_csv), "--current", str(histogram_file)) == (
        f"modelrollout drift: {histogram_file}: a CSV reference needs a CSV current file (raw data on both sides)"
    )
