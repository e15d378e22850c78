"""A live, readable timeline of what the operator decides, and the samples the demo report plots."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Status = dict[str, Any]


@dataclass
class Sample:
    t: float
    weight: int
    phase: str
    metrics: dict[str, float]


@dataclass
class Timeline:
    """Polls one resource's status and prints each change as one line: step, weight, guardrails, decision."""

    read: Callable[[], Status]
    label: str
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    interval: float = 0.25
    _last: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Timeline:
        self._thread = threading.Thread(target=self._loop, name=f"timeline-{self.label}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a transient API error must not end the timeline
                self.observe(self.read())
            self._stop.wait(self.interval)

    def observe(self, status: Status) -> None:
        now = time.monotonic() - self.started
        metrics = {
            m["name"]: float(m["value"])
            for m in (status.get("analysis") or {}).get("metrics", [])
            if m.get("value") is not None
        }
        self.samples.append(Sample(now, int(status.get("canaryWeight", 0)), str(status.get("phase")), metrics))
        key = describe(status, values=False)
        if key != self._last:
            self._last = key
            print(f"  [{now:6.1f}s] {self.label}: {describe(status)}", flush=True)


def describe(status: Status, *, values: bool = True) -> str:
    """One line; without ``values`` it changes only when a decision does, so the timeline is not a log."""
    current = (status.get("currentRevision") or {}).get("versionId", "-")
    stable = (status.get("stableRevision") or {}).get("versionId", "-")
    phase = status.get("phase", "Pending")
    parts = [f"{phase:<12}", f"current {current} stable {stable}"]
    if phase in ("Progressing", "Paused") and status.get("currentStepIndex") is not None:
        parts.append(f"step {status['currentStepIndex'] + 1} at {status.get('canaryWeight', 0)}%")
    analysis = status.get("analysis") or {}
    if analysis.get("verdict") and phase in ("Progressing", "Degraded"):
        shown = []
        for metric in analysis.get("metrics", []):
            value = metric.get("value")
            number = f"={value:.3g}" if values and isinstance(value, int | float) else ""
            shown.append(f"{metric['name']}{number} {metric['verdict']}")
        parts.append("guardrails: " + ", ".join(shown))
    if phase in ("Failed", "Degraded", "SmokeTesting") and status.get("message"):
        parts.append(str(status["message"]))
    return " | ".join(parts)
