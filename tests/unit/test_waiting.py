"""tests.support.waiting on a fake clock: no test here depends on how fast the machine is."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import waiting
from tests.support.waiting import pace, wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(waiting, "_clock", fake.monotonic)
    monkeypatch.setattr(waiting, "_sleep", fake.sleep)
    return fake


def sequence(*values: object) -> Callable[[], object]:
    """A probe that returns ``values`` in turn, then the last one for ever."""
    answers = list(values)

    def probe() -> object:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return probe


def test_returns_the_first_truthy_value_without_sleeping(clock: FakeClock) -> None:
    assert wait_for(lambda: {"phase": "Healthy"}, 5) == {"phase": "Healthy"}
    assert clock.sleeps == []


def test_polls_at_the_interval_until_the_probe_holds(clock: FakeClock) -> None:
    assert wait_for(sequence(None, 0, "", [], "ready"), 10, interval=0.5) == "ready"
    assert clock.sleeps == [0.5, 0.5, 0.5, 0.5]


def test_times_out_naming_the_message_the_timeout_and_the_last_value(clock: FakeClock) -> None:
    with pytest.raises(AssertionError) as raised:
        wait_for(sequence(None, 0, []), 3, message="phase Healthy")
    text = str(raised.value)
    assert "phase Healthy" in text
    assert "3s" in text
    assert "last value: []" in text
    assert clock.now == pytest.approx(1003.0)


def test_probes_once_more_at_the_deadline(clock: FakeClock) -> None:
    calls: list[float] = []

    def probe() -> bool:
        calls.append(clock.now)
        return clock.now >= 1001.0

    assert wait_for(probe, 1.0, interval=0.3) is True
    assert calls[-1] == pytest.approx(1001.0)
    assert clock.sleeps[-1] == pytest.approx(0.1), "the last sleep ends at the deadline, not beyond it"


def test_a_slow_probe_uses_up_the_timeout(clock: FakeClock) -> None:
    def slow() -> None:
        clock.now += 2.0

    with pytest.raises(AssertionError, match="timed out after 5s"):
        wait_for(slow, 5, interval=1.0)
    assert clock.now <= 1007.0


def test_the_probe_is_called_even_with_no_time_left(clock: FakeClock) -> None:
    assert wait_for(lambda: 42, 0) == 42
    with pytest.raises(AssertionError, match="last value: 0"):
        wait_for(lambda: 0, 0)


def test_a_long_last_value_is_truncated(clock: FakeClock) -> None:
    class Falsy:
        def __bool__(self) -> bool:
            return False

        def __repr__(self) -> str:
            return "y" * 10_000

    with pytest.raises(AssertionError) as raised:
        wait_for(Falsy, 1)
    text = str(raised.value)
    assert len(text) < 1000
    assert "(10000 characters)" in text


def test_probe_errors_propagate(clock: FakeClock) -> None:
    def broken() -> None:
        raise KeyError("status")

    with pytest.raises(KeyError):
        wait_for(broken, 5)


def test_pace_lets_the_time_pass(clock: FakeClock) -> None:
    pace(1.5)
    pace(0)
    pace(-1)
    assert clock.sleeps == [1.5]


def test_on_the_real_clock() -> None:
    state = {"calls": 0}

    def probe() -> bool:
        state["calls"] += 1
        return state["calls"] >= 3

    assert wait_for(probe, 60, interval=0.001) is True
    with pytest.raises(AssertionError, match=r"timed out after 0\.01s waiting for never"):
        wait_for(lambda: False, 0.01, interval=0.001, message="never")
