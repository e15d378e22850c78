"""The experiment report: text, self-contained HTML with an inline SVG plot, and the CLI around them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from modelrollout.__main__ import main
from modelrollout.report import effect_plot, html_report, text_report
from modelrollout.report.svg import Point
from tests.unit.core.test_experiment import World, make_spec


@pytest.fixture(scope="module")
def promoted() -> World:
    world = World(make_spec(), truth={"champion": 0.5, "challenger": 0.6})
    world.run_until_done()
    assert world.status.decision is not None
    assert world.status.decision.outcome == "Promote"
    return world


def test_text_report_has_design_arms_tests_and_decision(promoted: World) -> None:
    text = text_report("exp", "ns", promoted.spec, promoted.status)
    design = promoted.status.design
    assert design is not None
    assert f"{design.samples_per_arm} samples per arm (mSPRT (always valid)" in text
    assert re.search(r"challenger\s+bbb222\s+\d+\s+0\.\d+\s+\+0\.\d+\s+\[\+", text)
    assert "Sample ratio mismatch: p = " in text
    assert "Promote challenger at" in text
    assert "reason: significantly better than champion: challenger: accuracy +" in text
    assert "recommendation: roll challenger out" in text
    assert "Concluded=True (Promote)" in text


def test_html_is_self_contained_and_plots_the_confidence_sequence(promoted: World) -> None:
    page = html_report("exp", "ns", promoted.spec, promoted.status)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "src=" not in page
    assert "href=" not in page
    assert re.findall(r"https?://[^\"]+", page) == ["http://www.w3.org/2000/svg"]
    assert page.count("<svg") == 1
    assert '<polygon class="interval"' in page
    assert '<polyline class="estimate"' in page
    assert "MDE +0.05" in page
    assert 'class="Promote"' in page


def test_html_escapes_what_users_wrote(promoted: World) -> None:
    status = promoted.status.model_copy(update={"message": "<img onerror=x>"})
    page = html_report("a<b", "ns", promoted.spec, status)
    assert "<img" not in page
    assert "&lt;img onerror=x&gt;" in page
    assert "a&lt;b" in page


def test_effect_plot_without_looks_and_with_unbounded_intervals() -> None:
    assert "no looks yet" in effect_plot([], title="t")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    points = [Point(t0, 0.01, None, None), Point(t0 + timedelta(seconds=60), 0.02, -0.01, 0.05)]
    svg = effect_plot(points, title="effect")
    assert "nan" not in svg
    assert "inf" not in svg
    assert "+1.0m" in svg


def test_cli_report_from_a_file_writes_html(
    promoted: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "exp.yaml"
    body = {
        "apiVersion": "modelrollout.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "returns", "namespace": "ml"},
        "spec": promoted.spec.to_wire(),
        "status": promoted.status.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    saved.write_text(yaml.safe_dump(body))
    page = tmp_path / "report.html"
    assert main(["experiment", "report", "returns", "--file", str(saved), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Experiment ml/returns: Concluded")
    assert f"HTML report written to {page}" in out
    assert "<svg" in page.read_text()


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "report", "x", "--file", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"kind": "Experiment", "spec": {"champion": {}}}))
    assert main(["experiment", "report", "x", "--file", str(broken)]) == 2
    assert "not a valid Experiment" in capsys.readouterr().err
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"kind": "ModelDeployment"}))
    assert main(["experiment", "report", "x", "--file", str(other)]) == 1
