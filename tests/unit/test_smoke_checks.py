"""Smoke checks against real model-server processes: each fault fails the right check for the right reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.dataplane import GOLDEN_INPUTS
from e2e.dataplane.servers import ServerHandle, ServerSpec, running_servers
from modelrollout.__main__ import main
from modelrollout.smoke import (
    CHECK_NAMES,
    GoldenInputs,
    HttpResponse,
    SmokeConfig,
    SmokeReport,
    load_golden,
    run_checks,
)

GOLDEN = load_golden(GOLDEN_INPUTS)
CONFIG = SmokeConfig(
    golden=GOLDEN,
    min_value=-1.0,
    max_value=1.0,
    latency_budget_ms=150.0,
    latency_requests=4,
    load_timeout_seconds=0.6,
    poll_interval_seconds=0.1,
    request_timeout_seconds=2.0,
)
FAULTS = {
    "healthy": {},
    "fail_load": {"fail_load": True},
    "error_rate": {"error_rate": 1.0},
    "out_of_range": {"out_of_range": True},
    "latency": {"latency_ms": 300},
    "nan_output": {"nan_output": True},
}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ServerHandle]]:
    specs = [ServerSpec(revision=name, role="canary", faults=faults) for name, faults in FAULTS.items()]
    with running_servers(specs) as handles:
        yield {handle.revision: handle for handle in handles}


def verdicts(report: SmokeReport) -> dict[str, str]:
    return {check.name: check.verdict for check in report.checks}


def test_a_healthy_server_passes_every_check(servers: dict[str, ServerHandle]) -> None:
    report = run_checks(servers["healthy"].url, CONFIG)
    assert report.passed, report.to_text()
    assert verdicts(report) == dict.fromkeys(CHECK_NAMES, "passed")
    assert report.check("latency").measured["p95Ms"] < 150
    assert report.summary().startswith("smoke checks passed")


@pytest.mark.parametrize(
    ("fault", "failing", "reason"),
    [
        ("fail_load", "loads", "did not answer 200 within 0.6s"),
        ("error_rate", "inference", "answered HTTP 500"),
        ("nan_output", "inference", "is nan"),
        ("out_of_range", "output_range", "8 of 8 predictions outside [-1, 1]"),
        ("latency", "latency", "over budget 150 ms"),
    ],
)
def test_each_fault_fails_its_own_check_first(
    servers: dict[str, ServerHandle], fault: str, failing: str, reason: str
) -> None:
    report = run_checks(servers[fault].url, CONFIG)
    assert not report.passed
    first = report.failures[0]
    assert first.name == failing
    assert reason in first.reason
    assert report.summary().splitlines()[0] == f"{failing}: {first.reason}"
    before = CHECK_NAMES[: CHECK_NAMES.index(failing)]
    assert all(verdicts(report)[name] == "passed" for name in before)


def test_fail_load_reports_the_last_health_answer(servers: dict[str, ServerHandle]) -> None:
    loads = run_checks(servers["fail_load"].url, CONFIG).check("loads")
    assert loads.measured["attempts"] >= 2
    assert "HTTP 503" in loads.reason
    assert "failed" in loads.reason


def test_dependent_checks_are_skipped_not_failed(servers: dict[str, ServerHandle]) -> None:
    report = run_checks(servers["error_rate"].url, CONFIG)
    assert [check.name for check in report.failures] == ["inference"]
    assert all(report.check(name).skipped for name in CHECK_NAMES[2:])


def test_a_degraded_server_fails_the_expected_predictions(servers: dict[str, ServerHandle]) -> None:
    servers["healthy"].set_faults(degrade=1.0)
    try:
        report = run_checks(servers["healthy"].url, CONFIG)
    finally:
        servers["healthy"].clear_faults()
    assert [check.name for check in report.failures] == ["expected"]
    assert "tolerance 1e-09" in report.failures[0].reason


def test_loads_polls_until_a_slow_model_is_ready() -> None:
    with running_servers([ServerSpec(revision="slow", load_seconds=1.0)]) as (handle,):
        loads = run_checks(handle.url, SmokeConfig(load_timeout_seconds=5, poll_interval_seconds=0.1)).check("loads")
    assert loads.passed
    assert loads.measured["attempts"] > 1


def test_nothing_listening_fails_loads() -> None:
    config = SmokeConfig(golden=GOLDEN, load_timeout_seconds=0.3, poll_interval_seconds=0.1)
    report = run_checks("http://127.0.0.1:9", config)
    assert report.failures[0].name == "loads"
    assert "no answer" in report.failures[0].reason


def test_without_golden_inputs_only_loads_runs(servers: dict[str, ServerHandle]) -> None:
    report = run_checks(servers["healthy"].url, SmokeConfig())
    assert report.passed
    assert [check.name for check in report.checks if not check.skipped] == ["loads"]


def test_shape_is_checked_per_instance_and_width() -> None:
    def client(method: str, url: str, *, body: bytes | None = None, timeout: float) -> HttpResponse:
        answer = {"predictions": [[0.1, 0.2]] * 2} if url.endswith("/predict") else {}
        return HttpResponse(200, json.dumps(answer).encode(), 0.001)

    golden = GoldenInputs(instances=({"x": 1},) * 3)
    report = run_checks("http://model:8080", SmokeConfig(golden=golden, expect_shape=2), client=client)
    assert report.check("output_shape").reason == "2 predictions for 3 instances"
    golden = GoldenInputs(instances=({"x": 1},) * 2)
    report = run_checks("http://model:8080", SmokeConfig(golden=golden), client=client)
    assert report.check("output_shape").reason == "prediction 0 has width 2, expected 1"


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="not an http"):
        run_checks("model:8080", SmokeConfig())
    with pytest.raises(ValueError, match="above max"):
        SmokeConfig(min_value=1, max_value=0)
    with pytest.raises(ValueError, match="expected predictions"):
        GoldenInputs.from_document({"instances": [{}], "expected": [1, 2]})


def test_cli_exit_codes_and_termination_log(
    servers: dict[str, ServerHandle], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "termination-log"
    common = ["--golden", str(GOLDEN_INPUTS), "--min", "-1", "--max", "1", "--termination-log", str(log)]
    common += ["--latency-requests", "3", "--timeout", "1"]

    assert main(["smoke", "--url", servers["healthy"].url, "--format", "json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True
    assert log.read_text().startswith("smoke checks passed")

    assert main(["smoke", "--url", servers["out_of_range"].url, *common]) == 1
    assert log.read_text().startswith("output_range: 8 of 8 predictions outside [-1, 1]")
    assert "FAILED  output_range" in capsys.readouterr().out

    bad_golden = tmp_path / "golden.json"
    bad_golden.write_text('{"rows": []}')
    assert main(["smoke", "--url", servers["healthy"].url, *common, "--golden", str(bad_golden)]) == 2
    assert log.read_text().startswith("smoke: bad input")


def test_cli_leaves_a_missing_default_termination_log_alone(servers: dict[str, ServerHandle]) -> None:
    default = Path("/dev/termination-log")
    existed = default.exists()
    assert main(["smoke", "--url", servers["healthy"].url, "--timeout", "1"]) == 0
    assert default.exists() == existed
