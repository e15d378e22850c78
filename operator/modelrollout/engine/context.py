"""What every handler shares: settings, the metric source, and bookkeeping that need not survive a restart."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from modelrollout.config import Settings
from modelrollout.metrics.source import MetricSource


@dataclass
class Context:
    settings: Settings
    metrics: MetricSource
    _last_sync: dict[tuple[str, str, str], float] = field(default_factory=dict)
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
