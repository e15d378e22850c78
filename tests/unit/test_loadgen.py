"""The load generator against real model servers: weights, stickiness, mirroring, bounds, feedback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from e2e.dataplane.loadgen import LoadConfig, run_load
from e2e.dataplane.servers import ServerHandle, ServerSpec, file_sd_entry, running_servers, write_file_sd
from modelrollout.stats.hashing import assign_arm, unit_hash

FAST = LoadConfig(requests=400, rate_per_second=2000, concurrency=4, seed=1)


@pytest.fixture(scope="module")
def servers() -> Iterator[list[ServerHandle]]:
    specs = [
        ServerSpec(revision="r1", role="stable"),
        ServerSpec(revision="r2", role="canary"),
        ServerSpec(revision="r3", role="shadow"),
    ]
    with running_servers(specs) as handles:
        yield handles


def counter(server: ServerHandle, sample: str, **labels: str) -> float:
    for family in text_string_to_metric_families(server.metrics_text()):
        for s in family.samples:
            if s.name == sample and s.labels == labels:
                value: float = s.value
                return value
    return 0.0


def test_traffic_follows_the_weights(servers: list[ServerHandle]) -> None:
    stable, canary, _ = servers
    report = run_load(lambda: {stable.url: 3, canary.url: 1}, FAST)
    assert report.sent == 400
    assert report.stopped_by == "count"
    # Binomial sd of the canary share at n=400 is ~0.022; 0.08 is > 3.5 sd.
    assert report.shares()[canary.url] == pytest.approx(0.25, abs=0.08)
    assert all(stats.errors == 0 for stats in report.by_backend.values())


def test_weights_are_re_read_while_running(servers: list[ServerHandle]) -> None:
    stable, canary, _ = servers
    started = time.monotonic()

    def weights() -> dict[str, float]:
        return {stable.url: 1.0} if time.monotonic() - started < 0.15 else {canary.url: 1.0}

    config = LoadConfig(requests=150, rate_per_second=500, refresh_seconds=0.05)
    report = run_load(weights, config)
    assert report.by_backend[stable.url].requests > 0
    assert report.by_backend[canary.url].requests > 0


def test_users_stick_to_the_backend_the_operator_would_assign(servers: list[ServerHandle]) -> None:
    stable, canary, _ = servers
    user_hash = partial(unit_hash, salt="exp-1")
    config = LoadConfig(requests=300, rate_per_second=2000, users=40, seed=2)
    report = run_load(lambda: {canary.url: 30, stable.url: 70}, config, user_hash=user_hash)
    arms = [canary.url, stable.url]
    for user, backends in report.backends_by_user.items():
        assert backends == {arms[assign_arm(user, [30, 70], salt="exp-1")]}
    assert len({next(iter(b)) for b in report.backends_by_user.values()}) == 2


def test_the_mirror_gets_a_copy_of_every_request_and_no_feedback(servers: list[ServerHandle]) -> None:
    stable, _, shadow = servers
    before = counter(shadow, "model_requests_total", code="200")
    feedback_before = counter(shadow, "model_feedback_total")
    report = run_load(lambda: {stable.url: 1}, LoadConfig(requests=100, rate_per_second=2000), mirror=shadow.url)
    assert report.mirrored[shadow.url] == report.sent == 100
    assert shadow.url not in report.by_backend
    assert counter(shadow, "model_requests_total", code="200") - before == 100
    assert counter(shadow, "model_feedback_total") == feedback_before


def test_runs_are_bounded_in_time_and_count(servers: list[ServerHandle]) -> None:
    stable = servers[0]
    started = time.monotonic()
    report = run_load(lambda: {stable.url: 1}, LoadConfig(requests=10_000, rate_per_second=40, max_seconds=0.5))
    assert time.monotonic() - started < 1.5
    assert report.stopped_by == "time"
    assert 15 <= report.sent <= 21
    assert run_load(lambda: {stable.url: 1}, LoadConfig(requests=0)).sent == 0


def test_a_routing_change_to_a_non_loopback_backend_stops_the_run(servers: list[ServerHandle]) -> None:
    answers = iter([{servers[0].url: 1.0}])
    config = LoadConfig(requests=100, rate_per_second=1000, refresh_seconds=0.01)
    with pytest.raises(ValueError, match="loopback"):
        run_load(lambda: next(answers, {"http://192.0.2.1:80": 1.0}), config)


def test_only_loopback_backends_are_accepted() -> None:
    with pytest.raises(ValueError, match="loopback"):
        run_load(lambda: {"http://10.0.0.1:8080": 1}, LoadConfig(requests=1))
    with pytest.raises(ValueError, match="loopback"):
        run_load(lambda: {"http://127.0.0.1:1": 1}, LoadConfig(requests=1), mirror="http://example.com")
    with pytest.raises(ValueError, match="nowhere"):
        run_load(lambda: {"http://127.0.0.1:1": 0}, LoadConfig(requests=1))


def test_feedback_makes_a_degraded_model_measurably_worse() -> None:
    specs = [ServerSpec(revision="good"), ServerSpec(revision="bad", faults={"degrade": 2.0}, seed=3)]
    with running_servers(specs) as (good, bad):
        config = LoadConfig(requests=200, rate_per_second=2000, batch_size=10, seed=4)
        report = run_load(lambda: {good.url: 1, bad.url: 1}, config)
        assert sum(stats.feedback_items for stats in report.by_backend.values()) == 2000
        accuracy = {
            server.revision: counter(server, "model_direction_correct_total") / counter(server, "model_feedback_total")
            for server in (good, bad)
        }
    # A perfect model gets ~0.77 in this world; noise twice the output scale drops it below ~0.62.
    assert accuracy["good"] - accuracy["bad"] > 0.08, accuracy


def test_client_side_drift_and_missing_values_reach_the_server_metrics() -> None:
    with running_servers([ServerSpec(revision="drift")]) as (server,):
        config = LoadConfig(
            requests=100,
            rate_per_second=2000,
            batch_size=5,
            shift={"rsi_14": 200.0},
            missing_rate=0.3,
            nan_rate=0.2,
            seed=5,
        )
        run_load(lambda: {server.url: 1}, config)
        observed = counter(server, "model_feature_observations_total", feature="return_5d")
        missing = counter(server, "model_feature_missing_total", feature="return_5d")
        out_of_range = counter(server, "model_feature_out_of_range_total", feature="rsi_14")
        rsi_present = observed - counter(server, "model_feature_missing_total", feature="rsi_14")
    assert observed == 500
    assert missing / observed == pytest.approx(0.5, abs=0.08)
    assert out_of_range == rsi_present


def test_file_sd_entries_carry_the_scrape_labels(servers: list[ServerHandle], tmp_path: Path) -> None:
    canary = servers[1]
    assert file_sd_entry(canary) == {
        "targets": [f"127.0.0.1:{canary.port}"],
        "labels": {"revision": "r2", "role": "canary", "model": "next-day-returns", "job": "model-server"},
    }
    path = tmp_path / "targets.json"
    write_file_sd(path, servers)
    assert [entry["labels"]["revision"] for entry in json.loads(path.read_text())] == ["r1", "r2", "r3"]
