"""The work queue: a key at most once in the queue, one worker per key, by priority, one wake-up each.

Worker threads are real; tests wait on events the processing sets, never on the clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

from modelrollout.engine.queue import Priority, WorkQueue
from tests.support.waiting import wait_for

WAIT = 10.0
"""Seconds a test waits for a worker before failing: generous, the machine may be busy."""


@contextmanager
def running(process: Callable[[Hashable], None], workers: int = 1) -> Iterator[WorkQueue]:
    queue = WorkQueue(process, workers=workers, name="test")
    queue.start()
    try:
        yield queue
    finally:
        queue.stop()


def test_a_key_added_many_times_while_waiting_is_processed_once() -> None:
    blocking, gate, done = threading.Event(), threading.Event(), threading.Event()
    seen: list[Hashable] = []

    def process(key: Hashable) -> None:
        if key == "blocker":
            blocking.set()
            gate.wait(WAIT)
            return
        seen.append(key)
        done.set()

    with running(process) as queue:
        queue.add("blocker")  # holds the only worker while "a" is added again and again
        assert blocking.wait(WAIT)
        for _ in range(5):
            queue.add("a")
        assert len(queue) == 1
        gate.set()
        assert done.wait(WAIT)
    assert seen == ["a"]


def test_a_key_added_while_it_is_processed_is_processed_again_after_never_at_the_same_time() -> None:
    started, release, twice = threading.Event(), threading.Event(), threading.Event()
    active: list[int] = []
    calls: list[int] = []
    lock = threading.Lock()

    def process(key: Hashable) -> None:
        with lock:
            active.append(1)
            calls.append(len(active))
        started.set()
        release.wait(WAIT)
        with lock:
            active.pop()
            if len(calls) == 2:
                twice.set()

    with running(process, workers=4) as queue:
        queue.add("a")
        assert started.wait(WAIT)
        queue.add("a")  # a change while it is being reconciled
        release.set()
        assert twice.wait(WAIT)
    assert calls == [1, 1], "processed twice, never by two workers at once"


def processed_while_busy(first: Hashable, meanwhile: Callable[[WorkQueue], None], count: int) -> list[Hashable]:
    """The order one worker processes keys in, when ``meanwhile`` adds keys while ``first`` is being processed."""
    started, gate, done = threading.Event(), threading.Event(), threading.Event()
    order: list[Hashable] = []

    def process(key: Hashable) -> None:
        order.append(key)
        if len(order) == 1:
            started.set()
            gate.wait(WAIT)
        if len(order) == count:
            done.set()

    with running(process) as queue:
        queue.add(first)
        assert started.wait(WAIT)
        meanwhile(queue)
        gate.set()
        assert done.wait(WAIT)
    return order


def test_a_rollback_goes_first_then_canaries_in_traffic_then_the_rest() -> None:
    def burst_then_rollback(queue: WorkQueue) -> None:
        for key in ("change-1", "change-2"):
            queue.add(key)
        queue.add("canary-1", priority=Priority.IN_TRAFFIC)
        queue.add("change-3")
        queue.add("canary-2", priority=Priority.IN_TRAFFIC)
        queue.add("rollback", priority=Priority.ROLLBACK)

    assert processed_while_busy("blocker", burst_then_rollback, 7)[1:] == [
        "rollback",
        "canary-1",
        "canary-2",
        "change-1",
        "change-2",
        "change-3",
    ]


def test_bookkeeping_waits_until_nothing_else_is_queued_and_work_on_its_key_takes_it_along() -> None:
    def clearings_then_a_burst(queue: WorkQueue) -> None:
        queue.add("clearing-1", priority=Priority.IDLE)
        queue.add("clearing-2", priority=Priority.IDLE)
        queue.add("change-1")
        queue.add("clearing-2")  # a change to the same resource: it goes with the changes, and takes the clearing

    assert processed_while_busy("blocker", clearings_then_a_burst, 4)[1:] == ["change-1", "clearing-2", "clearing-1"]


def test_a_queued_key_asked_for_sooner_moves_ahead_and_never_back() -> None:
    def queue_then_hurry(queue: WorkQueue) -> None:
        queue.add("a", priority=Priority.IN_TRAFFIC)
        queue.add("b")
        queue.add("b", priority=Priority.ROLLBACK)
        queue.add("b")  # a later, ordinary event does not undo the rollback's place

    assert processed_while_busy("blocker", queue_then_hurry, 3)[1:] == ["b", "a"]


def test_a_key_changed_while_processed_keeps_the_priority_it_was_asked_for() -> None:
    def change_then_abort(queue: WorkQueue) -> None:
        queue.add("waiting")
        queue.add("busy", priority=Priority.ROLLBACK)  # an abort while its last change is being processed

    assert processed_while_busy("busy", change_then_abort, 3) == ["busy", "busy", "waiting"]


def test_a_delayed_key_is_queued_with_its_priority() -> None:
    def change_then_wake_a_canary(queue: WorkQueue) -> None:
        queue.add("change")
        queue.add_after("canary", 0.01, priority=Priority.IN_TRAFFIC)
        wait_for(lambda: len(queue) == 2, timeout=WAIT, message="the canary's wake-up queued")

    assert processed_while_busy("blocker", change_then_wake_a_canary, 3) == ["blocker", "canary", "change"]


def test_a_delayed_key_waits_for_one_wake_up_the_earliest() -> None:
    woken = threading.Event()
    seen: list[Hashable] = []

    def process(key: Hashable) -> None:
        seen.append(key)
        woken.set()

    with running(process) as queue:
        queue.add_after("a", 3600.0)
        queue.add_after("a", 0.05)  # earlier: replaces the hour
        queue.add_after("a", 1800.0)  # later than the one waiting: dropped
        assert woken.wait(WAIT)
        assert seen == ["a"]
        assert queue._due == {}, "no wake-up left behind"


def test_a_failing_process_does_not_stop_the_worker() -> None:
    done = threading.Event()

    def process(key: Hashable) -> None:
        if key == "bad":
            raise RuntimeError("a bug")
        done.set()

    with running(process) as queue:
        queue.add("bad")
        queue.add("good")
        assert done.wait(WAIT)


def test_a_key_added_while_the_worker_waits_behind_the_delay_thread_wakes_the_worker() -> None:
    """The delay thread and the workers wait on the same lock; a key queued must wake a worker, not it.

    With one shared condition, the worker that had just processed "a" waited behind the delay thread, the
    notification for "b" woke the delay thread, and "b" stayed queued with the worker asleep: in e2e, a
    DriftMonitor stopped evaluating and a ModelDeployment never saw its new spec.
    """
    done: list[Hashable] = []
    processed = threading.Semaphore(0)

    def process(key: Hashable) -> None:
        done.append(key)
        processed.release()

    with running(process, workers=1) as queue:
        queue.add("a")
        assert processed.acquire(timeout=WAIT)
        wait_for(lambda: len(queue._work_queued._waiters) == 1, WAIT, message="the worker to wait again")  # type: ignore[attr-defined]
        queue.add("b")
        assert processed.acquire(timeout=WAIT), "b is processed"
    assert done == ["a", "b"]
