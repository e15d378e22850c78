"""The work queue between watch events and reconciliations: client-go's workqueue, in threads.

A watch event, a change to an owned object, or a wake-up a kind asked for adds the
resource's key. A key is queued at most once however often it is added, and one worker
at a time processes it; a key added while it is being processed is processed again
afterwards, so no change is missed and no resource is reconciled by two threads at once.

Resources at rest are in the queue only while something happens to them: an idle fleet
costs no thread, no timer and no API request. Delayed adds (a step's next look, a
back-off, the periodic re-verification) wait in one heap served by one thread.

Keys go by :class:`Priority`: a rollback to carry out before a canary serving traffic, and
both before the rest, so neither a burst of a thousand spec changes nor the canaries it
starts holds up the one rollout that must be reverted now.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from enum import IntEnum

from modelrollout import telemetry

logger = logging.getLogger(__name__)

Key = Hashable


class Priority(IntEnum):
    """The order workers take keys in: every queued key of a lower value before any of a higher one."""

    ROLLBACK = 0
    """Traffic to take off a canary now: an abort the user asked for."""
    IN_TRAFFIC = 1
    """A canary serving traffic: its next look may find it degraded and roll it back."""
    NORMAL = 2
    IDLE = 3
    """Bookkeeping that may wait until nothing else is queued: an outbox clearing no status write picked up."""


class WorkQueue:
    """Keys to process, each by one worker at a time, by priority, some after a delay."""

    def __init__(self, process: Callable[[Key], None], *, workers: int, name: str = "reconcile") -> None:
        self._process = process
        self._workers = workers
        self._name = name
        self._lock = threading.Lock()
        self._work_queued = threading.Condition(self._lock)
        """Signalled when a key is queued: wakes one worker."""
        self._delays_changed = threading.Condition(self._lock)
        """Signalled when the earliest delayed wake-up may have changed: wakes the delay thread. Apart from
        ``_work_queued`` so that a key queued never wakes the delay thread instead of a worker, which would leave the
        key queued with every worker asleep."""
        self._lanes: tuple[deque[Key], ...] = tuple(deque() for _ in Priority)
        """One deque of waiting keys per priority."""
        self._queued: dict[Key, Priority] = {}
        """Each waiting key's lane."""
        self._processing: set[Key] = set()
        self._dirty: set[Key] = set()
        """Keys added while being processed: queued again when their worker is done."""
        self._asked: dict[Key, Priority] = {}
        """The highest priority each key was added with since a worker last took it."""
        self._delayed: list[tuple[float, int, Key, Priority]] = []
        self._due: dict[Key, float] = {}
        """Each delayed key's earliest wake-up: a later one is not added, a stale heap entry is skipped."""
        self._order = itertools.count()
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self._workers):
            self._spawn(self._work, f"{self._name}-{number}")
        self._spawn(self._wake_delayed, f"{self._name}-delays")

    def stop(self) -> None:
        """Let the workers finish what they are doing and end; queued keys are dropped."""
        with self._lock:
            self._stopping = True
            self._work_queued.notify_all()
            self._delays_changed.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    def add(self, key: Key, *, priority: Priority = Priority.NORMAL) -> None:
        """Process ``key`` soon, after the keys queued with a higher ``priority``."""
        telemetry.workqueue_adds_total.labels(self._name).inc()
        with self._lock:
            priority = min(priority, self._asked.get(key, priority))
            self._asked[key] = priority
            if key in self._processing:
                self._dirty.add(key)
                return
            lane = self._queued.get(key)
            if lane is not None:
                if priority < lane:
                    self._lanes[lane].remove(key)
                    self._enqueue(key, priority)
                return
            self._enqueue(key, priority)

    def _enqueue(self, key: Key, priority: Priority) -> None:
        self._queued[key] = priority
        self._lanes[priority].append(key)
        telemetry.workqueue_depth.labels(self._name).set(len(self._queued))
        self._work_queued.notify()

    def add_after(self, key: Key, seconds: float, *, priority: Priority = Priority.NORMAL) -> None:
        """Process ``key`` once ``seconds`` have passed (at once when not positive).

        A key waits for one wake-up at a time, the earliest asked for: an object ticked by its events
        and by its wake-ups does not pile up wake-ups.
        """
        if seconds <= 0:
            self.add(key, priority=priority)
            return
        with self._lock:
            due = time.monotonic() + seconds
            if self._due.get(key, float("inf")) <= due:
                return
            self._due[key] = due
            heapq.heappush(self._delayed, (due, next(self._order), key, priority))
            self._delays_changed.notify()

    def __len__(self) -> int:
        with self._lock:
            return len(self._queued)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _next(self) -> Key | None:
        with self._lock:
            while not self._stopping and not self._queued:
                self._work_queued.wait()
            if self._stopping:
                return None
            key = next(lane for lane in self._lanes if lane).popleft()
            del self._queued[key]
            telemetry.workqueue_depth.labels(self._name).set(len(self._queued))
            self._asked.pop(key, None)
            self._processing.add(key)
            return key

    def _done(self, key: Key) -> None:
        with self._lock:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._enqueue(key, self._asked.get(key, Priority.NORMAL))

    def _work(self) -> None:
        while (key := self._next()) is not None:
            try:
                self._process(key)
            except Exception:  # a bug in processing must not take the worker down with it
                logger.exception("processing %s failed", key)
            finally:
                self._done(key)

    def _wake_delayed(self) -> None:
        with self._lock:
            while not self._stopping:
                now = time.monotonic()
                due: list[tuple[Key, Priority]] = []
                while self._delayed and self._delayed[0][0] <= now:
                    when, _, key, priority = heapq.heappop(self._delayed)
                    if self._due.get(key) == when:
                        del self._due[key]
                        due.append((key, priority))
                if due:
                    self._lock.release()
                    try:
                        for key, priority in due:
                            self.add(key, priority=priority)
                    finally:
                        self._lock.acquire()
                    continue
                timeout = self._delayed[0][0] - now if self._delayed else None
                self._delays_changed.wait(timeout)
