"""``modelrollout analyze`` end to end: decisions, JSON shape, exit codes and exact errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from modelrollout.__main__ import main


def _write(tmp_path: Path, document: Any, name: str = "experiment.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


PROMOTE: dict[str, Any] = {
    "metric": "conversion",
    "type": "proportion",
    "arms": [
        {"name": "champion", "weight": 0.5, "count": 10000, "successes": 1000},
        {"name": "challenger", "weight": 0.5, "count": 10050, "successes": 1150},
    ],
}


def test_significant_improvement_is_promoted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["analyze", "--data", str(_write(tmp_path, PROMOTE)), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (report["decision"], report["winner"]) == ("Promote", "challenger")
    comparison = report["comparisons"][0]
    chi2 = stats.chi2_contingency([[1000, 9000], [1150, 8900]], correction=False)
    assert comparison["p_value"] == pytest.approx(chi2.pvalue)
    assert comparison["interval"][0] > 0
    assert comparison["ratio_interval"][0] > 1
    assert report["srm"]["mismatch"] is False


def test_text_output_lists_arms_srm_and_decision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["analyze", "--data", str(_write(tmp_path, PROMOTE))])
    out = capsys.readouterr().out
    assert "challenger vs champion: difference +0.01443 95% CI [+0.005866, +0.02299]" in out
    assert "sample ratio: chi2 = 0.125, p = 0.724 (ok at 0.001)" in out
    assert out.rstrip().endswith("decision: Promote (challenger): challenger is significantly better than champion")


def test_sample_ratio_mismatch_is_invalid_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = {**PROMOTE, "arms": [{**PROMOTE["arms"][0], "count": 12000}, PROMOTE["arms"][1]]}
    code = main(["analyze", "--data", str(_write(tmp_path, document)), "--format", "json"])
    assert code == 1
    assert json.loads(capsys.readouterr().out)["decision"] == "Invalid"


def test_slower_latency_keeps_the_champion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = {
        "type": "mean",
        "higher_is_better": False,
        "arms": [
            {"name": "stable", "count": 5000, "mean": 120.0, "variance": 1600.0},
            {"name": "canary", "count": 800, "mean": 131.0, "variance": 1700.0},
        ],
    }
    code = main(["analyze", "--data", str(_write(tmp_path, document)), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["decision"] == "KeepChampion"
    assert report["srm"] is None
    assert report["comparisons"][0]["ratio"] == pytest.approx(131 / 120)
    low, high = report["comparisons"][0]["ratio_interval"]
    assert 1 < low < 131 / 120 < high


def test_a_ratio_without_an_upper_limit_is_reported_unbounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A champion mean of 1 with standard error 1.8 bounds no ratio from above (Fieller's interval)."""
    document = {
        "type": "mean",
        "arms": [
            {"name": "champion", "count": 30, "mean": 1.0, "variance": 100.0},
            {"name": "challenger", "count": 30, "mean": 5.0, "variance": 4.0},
        ],
    }
    path = str(_write(tmp_path, document))
    main(["analyze", "--data", path, "--format", "json"])
    low, high = json.loads(capsys.readouterr().out)["comparisons"][0]["ratio_interval"]
    assert 0 < low < 5
    assert high is None
    main(["analyze", "--data", path])
    assert f"ratio 5 [{low:.4g}, unbounded]" in capsys.readouterr().out


def test_sequential_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series = [
        {
            "label": f"t{n}",
            "arms": [
                {"name": "champion", "weight": 1, "count": n, "successes": n // 10},
                {"name": "challenger", "weight": 1, "count": n, "successes": n // 10},
            ],
        }
        for n in (2000, 8000, 16000)
    ]
    document = {"type": "proportion", "minimum_effect": 0.02, "series": series}
    code = main(["analyze", "--data", str(_write(tmp_path, document)), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["decision"] == "KeepChampion"  # the confidence sequence excludes +2 points
    assert report["analysis"] == "sequential (mSPRT, mixing sd 0.02, 3 looks)"
    assert report["comparisons"][0]["ratio"] is None


def _error(tmp_path: Path, capsys: pytest.CaptureFixture[str], document: Any) -> str:
    path = _write(tmp_path, document)
    assert main(["analyze", "--data", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.strip().replace(str(path), "FILE")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({**PROMOTE, "type": "ratio"}, 'type: must be "proportion" or "mean", got "ratio"'),
        (
            {**PROMOTE, "arms": [PROMOTE["arms"][0], {"name": "b", "weight": 0.5, "count": 100, "successes": 120}]},
            "arms[1].successes: 120 is more than the count 100",
        ),
        (
            {**PROMOTE, "arms": [PROMOTE["arms"][0], {"name": "b", "count": 100, "successes": 1}]},
            "arms: give a weight for every arm or for none",
        ),
        ({**PROMOTE, "arms": [PROMOTE["arms"][0]]}, "arms: expected at least 2 items"),
        (
            {**PROMOTE, "arms": [PROMOTE["arms"][0], {**PROMOTE["arms"][1], "mean": 3}]},
            "arms[1]: unknown key 'mean' for a proportion arm (allowed: count, name, successes, weight)",
        ),
        ({**PROMOTE, "alpha": 5}, "alpha: expected a number strictly between 0 and 1, got 5"),
        (
            {**PROMOTE, "series": []},
            '$: give either "arms" (fixed horizon) or "series" (sequential), not both or neither',
        ),
        ({**PROMOTE, "confidence": 0.9}, "$: unknown key confidence"),
        ([1, 2], "$: expected an object, got a list"),
    ],
)
def test_structure_errors_name_the_json_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: Any, message: str
) -> None:
    assert _error(tmp_path, capsys, document) == f"modelrollout analyze: FILE: {message}"


def test_series_must_be_cumulative(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arms = PROMOTE["arms"]
    series = [{"arms": arms}, {"arms": [{**arms[0], "count": 9000, "successes": 900}, arms[1]]}]
    assert _error(tmp_path, capsys, {"type": "proportion", "minimum_effect": 0.01, "series": series}) == (
        "modelrollout analyze: FILE: series[1].arms[0].count: "
        "decreases from 10000 to 9000; snapshots must be cumulative"
    )


def test_sequential_needs_a_mixing_sd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = {"type": "proportion", "series": [{"arms": PROMOTE["arms"]}]}
    assert _error(tmp_path, capsys, document) == (
        "modelrollout analyze: FILE: sequential.mixing_sd: needed (or minimum_effect): "
        "the effect size the test is tuned to"
    )


def test_invalid_json_names_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"type": "mean",\n "arms": [}')
    assert main(["analyze", "--data", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"modelrollout analyze: {path}:2:11: invalid JSON: Expecting value"
