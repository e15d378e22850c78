"""A small version of the canary-verdict benchmark (bench/bench_canary.py): the defaults, seeded, through decide."""

from __future__ import annotations

import pytest

from tests.support.canary_sim import Scenario, run_cell

pytestmark = pytest.mark.slow


def test_healthy_canaries_are_not_rolled_back_at_any_traffic_level() -> None:
    for seed, rate in enumerate((1, 50, 500)):
        cell = run_cell(Scenario(rate, look_seconds=30, horizon_seconds=3 * 3600), rollouts=60, seed=seed)
        assert cell.rolled_back <= 6, cell  # at most 5% expected; 6 of 60 leaves room for sampling noise
        if rate == 500:
            assert cell.promoted == cell.rollouts


def test_a_canary_failing_five_times_as_often_is_rolled_back() -> None:
    cell = run_cell(Scenario(50, look_seconds=2, canary_error_rate=0.05), rollouts=60, seed=7)
    assert cell.rolled_back == cell.rollouts
    assert cell.promoted == 0


def test_a_canary_failing_every_request_goes_within_two_looks_of_its_tenth_request() -> None:
    for rate in (1, 50):
        cell = run_cell(Scenario(rate, look_seconds=2, canary_error_rate=1.0), rollouts=40, seed=rate)
        assert cell.rolled_back == cell.rollouts
        assert cell.most_looks_after_tenth is not None
        assert cell.most_looks_after_tenth <= 2


def test_a_canary_beyond_the_margin_is_not_promoted() -> None:
    cell = run_cell(Scenario(500, look_seconds=2, canary_error_rate=0.02, horizon_seconds=1800), rollouts=60, seed=3)
    assert cell.promoted <= 3
