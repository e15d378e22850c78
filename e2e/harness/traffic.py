"""Steady background traffic that follows the router, in short bounded bursts until stopped."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Mapping

from e2e.dataplane.loadgen import LoadConfig, run_load

BURST_SECONDS = 2.0


class Traffic:
    """Calls the load generator again and again (each call bounded) so the weights are re-read as they move."""

    def __init__(self, weights: Callable[[], Mapping[str, float]], *, rate: float = 40.0, **config: object) -> None:
        self._weights = weights
        self._config = LoadConfig(
            requests=int(rate * BURST_SECONDS) + 1,
            rate_per_second=rate,
            max_seconds=BURST_SECONDS,
            **config,  # type: ignore[arg-type]
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="traffic", daemon=True)
        self.sent = 0
        self.errors = 0
        self.bursts = 0

    def _loop(self) -> None:
        seed = 0
        while not self._stop.is_set():
            if not self._weights():
                self._stop.wait(0.2)
                continue
            seed += 1
            with contextlib.suppress(ValueError, OSError):
                report = run_load(self._weights, dataclasses.replace(self._config, seed=seed))
                self.sent += report.sent
                self.errors += sum(stats.errors for stats in report.by_backend.values())
                self.bursts += 1

    def reconfigure(self, **changes: object) -> None:
        """Change what clients send (a feature shift, missing values) from the next burst on."""
        self._config = dataclasses.replace(self._config, **changes)  # type: ignore[arg-type]

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        """Stop (idempotent, so a caller may stop traffic early inside its ``with`` block)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=BURST_SECONDS * 3)
