"""Waiting in tests: on a condition with :func:`wait_for`, or for time itself with :func:`pace`.

A test that needs something to have happened (a pod ready, a status written, an Event posted, a
scrape taken) asks for it with :func:`wait_for`, which polls a probe until it holds and fails with
what was awaited and what was last seen. A fixed sleep in its place is either too short on a busy
machine (a flaky test) or too long everywhere (a slow one).

:func:`pace` is for the few places where the passing of time is itself what is simulated or
observed: a load generator's schedule, a server's injected latency, a seeded moment for a crash, a
window over which a test asserts that nothing changed. It is not a wait for a condition.

Both sleep through ``_sleep`` below: no other module in ``tests/`` or ``e2e/`` sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# The clock and the sleep, module attributes so that the unit tests can run the loop on a fake clock.
_clock: Callable[[], float] = time.monotonic
_sleep: Callable[[float], None] = time.sleep

LAST_VALUE_CHARS = 500
"""How much of the last value seen a timeout message shows."""


def wait_for(probe: Callable[[], T | None], timeout: float, *, interval: float = 0.2, message: str = "condition") -> T:
    """Poll ``probe()`` every ``interval`` seconds until it returns something truthy, and return that.

    The probe is always called at least once, and once more at the deadline, so a condition that holds
    by then is seen however slowly the machine ran the loop. After ``timeout`` seconds without a truthy
    value it raises ``AssertionError`` naming ``message``, the timeout and the last value seen.
    Exceptions raised by the probe propagate: a probe that may fail transiently should catch what it
    expects and return a falsy value.
    """
    deadline = _clock() + timeout
    while True:
        last = probe()
        if last:
            return last
        remaining = deadline - _clock()
        if remaining <= 0:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {message}; last value: {_shorten(repr(last))}"
            )
        _sleep(min(interval, remaining))


def pace(seconds: float) -> None:
    """Let ``seconds`` pass on purpose: the passing of time is what is simulated, not a wait for a condition.

    For a load generator's schedule, a server's injected latency, the seeded moment of the next crash,
    or a window over which a test checks that nothing moved. Whatever should *have happened* after a
    while is awaited with :func:`wait_for` instead.
    """
    if seconds > 0:
        _sleep(seconds)


def _shorten(text: str) -> str:
    if len(text) <= LAST_VALUE_CHARS:
        return text
    return f"{text[:LAST_VALUE_CHARS]}... ({len(text)} characters)"
