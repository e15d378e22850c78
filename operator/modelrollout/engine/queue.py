"""The work queue between watch events and reconciliations: client-go's workqueue, in threads.

A watch event, a change to an owned object, or a wake-up a kind asked for adds the
resource's key. A key is queued at most once however often it is added, and one worker
at a time processes it; a key added while it is being processed is processed again
afterwards, so no change is missed and no resource is reconciled by two threads at once.

Resources at rest are in the queue only while something happens to them: an idle fleet
costs no thread, no timer and no API request. Delayed adds (a step's next look, a
back-off, the periodic re-verification) wait in one heap served by one thread.

Urgent keys (a rollback to carry out, a circuit breaker) go before the others: a burst
of a thousand spec changes does not hold up the one rollout that must be reverted now.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

from modelrollout import telemetry

logger = logging.getLogger(__name__)

Key = Hashable


class WorkQueue:
    """Keys to process, each by one worker at a time, urgent ones first, some after a delay."""

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
        self._urgent: deque[Key] = deque()
        self._normal: deque[Key] = deque()
        self._queued: set[Key] = set()
        """Keys waiting in one of the two deques."""
        self._processing: set[Key] = set()
        self._dirty: set[Key] = set()
        """Keys added while being processed: queued again when their worker is done."""
        self._urgent_keys: set[Key] = set()
        self._delayed: list[tuple[float, int, Key]] = []
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

    def add(self, key: Key, *, urgent: bool = False) -> None:
        """Process ``key`` soon (before the others when ``urgent``)."""
        telemetry.workqueue_adds_total.labels(self._name).inc()
        with self._lock:
            if urgent:
                self._urgent_keys.add(key)
            if key in self._processing:
                self._dirty.add(key)
                return
            if key in self._queued:
                if urgent and key in self._normal:
                    self._normal.remove(key)
                    self._urgent.append(key)
                return
            self._queued.add(key)
            (self._urgent if urgent else self._normal).append(key)
            telemetry.workqueue_depth.labels(self._name).set(len(self._queued))
            self._work_queued.notify()

    def add_after(self, key: Key, seconds: float) -> None:
        """Process ``key`` once ``seconds`` have passed (at once when not positive).

        A key waits for one wake-up at a time, the earliest asked for: an object ticked by its events
        and by its wake-ups does not pile up wake-ups.
        """
        if seconds <= 0:
            self.add(key)
            return
        with self._lock:
            due = time.monotonic() + seconds
            if self._due.get(key, float("inf")) <= due:
                return
            self._due[key] = due
            heapq.heappush(self._delayed, (due, next(self._order), key))
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
            while not self._stopping and not (self._urgent or self._normal):
                self._work_queued.wait()
            if self._stopping:
                return None
            key = self._urgent.popleft() if self._urgent else self._normal.popleft()
            self._queued.discard(key)
            telemetry.workqueue_depth.labels(self._name).set(len(self._queued))
            self._urgent_keys.discard(key)
            self._processing.add(key)
            return key

    def _done(self, key: Key) -> None:
        with self._lock:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                urgent = key in self._urgent_keys
                self._queued.add(key)
                (self._urgent if urgent else self._normal).append(key)
                self._work_queued.notify()

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
                due: list[Key] = []
                while self._delayed and self._delayed[0][0] <= now:
                    when, _, key = heapq.heappop(self._delayed)
                    if self._due.get(key) == when:
                        del self._due[key]
                        due.append(key)
                if due:
                    self._lock.release()
                    try:
                        for key in due:
                            self.add(key)
                    finally:
                        self._lock.acquire()
                    continue
                timeout = self._delayed[0][0] - now if self._delayed else None
                self._delays_changed.wait(timeout)
