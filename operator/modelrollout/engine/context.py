"""What every handler shares: settings, the metric source, and bookkeeping that need not survive a restart."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from modelrollout.config import Settings
from modelrollout.engine.freshness import WatchFreshness
from modelrollout.engine.tickwrites import HeldClearings
from modelrollout.metrics.source import MetricSource

RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 30.0
"""A failing tick is retried after 1, 2, 4... seconds, never more than 30 (kopf's own back-off is 60 s)."""


@dataclass(frozen=True, slots=True)
class _Failure:
    generation: int
    count: int
    retry_at: float


@dataclass
class Context:
    settings: Settings
    metrics: MetricSource
    freshness: WatchFreshness = field(default_factory=WatchFreshness)
    """Shared by the kinds: a DriftMonitor's action writes to the ModelDeployment it targets."""
    clearings: HeldClearings = field(default_factory=HeldClearings)
    """The outbox clearings waiting for a status write to ride on (:mod:`modelrollout.engine.tickwrites`)."""
    _last_sync: dict[tuple[str, str, str], float] = field(default_factory=dict)
    _failures: dict[tuple[str, str, str], _Failure] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def due(self, kind: str, namespace: str, name: str, every: float) -> bool:
        """Whether a resource at rest is due for re-verification (router drift, deleted objects)."""
        with self._lock:
            last = self._last_sync.get((kind, namespace, name))
            return last is None or time.monotonic() - last >= every

    def synced(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._last_sync[kind, namespace, name] = time.monotonic()

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._last_sync.pop((kind, namespace, name), None)
            self._failures.pop((kind, namespace, name), None)

    def backing_off(self, kind: str, namespace: str, name: str, generation: int) -> bool:
        """Whether a resource whose last tick failed should wait (a new spec generation tries at once)."""
        with self._lock:
            failure = self._failures.get((kind, namespace, name))
            return failure is not None and failure.generation == generation and time.monotonic() < failure.retry_at

    def failed(self, kind: str, namespace: str, name: str, generation: int) -> float:
        """Record a failed tick; returns the seconds until the next try (doubling from 1 s, at most 30 s)."""
        with self._lock:
            previous = self._failures.get((kind, namespace, name))
            count = previous.count + 1 if previous is not None and previous.generation == generation else 1
            delay = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2.0 ** (count - 1))
            self._failures[kind, namespace, name] = _Failure(generation, count, time.monotonic() + delay)
            return delay

    def retry_in(self, kind: str, namespace: str, name: str) -> float | None:
        """Seconds until a resource whose last tick failed is tried again; None when it did not fail."""
        with self._lock:
            failure = self._failures.get((kind, namespace, name))
            return None if failure is None else max(0.0, failure.retry_at - time.monotonic())

    def recovered(self, kind: str, namespace: str, name: str) -> bool:
        """Record a successful tick; True when the one before had failed (its condition is then cleared)."""
        with self._lock:
            return self._failures.pop((kind, namespace, name), None) is not None
